"""Synthetic schedulers: simple, deliberately different policies (keep ``K`` labs busy, random
starts, fixed staged schedules), and :func:`make_scheduler`, which builds any scheduler from its
name.

Scheduler names (what a sweep cell or the Figure-1 experiment names):

* ``staged:SIZES[@LENGTHS]`` - a fixed staged schedule, e.g. ``staged:10,6,4`` (front-loaded)
  or ``staged:4,6,10@1,1.5,2.5``; stage lengths default to ``h / N`` each. Replayed by
  :class:`~labsched.baselines.labs.staged.OfStaged` with an explicit plan (no safety
  optimisation).
* ``busy:K`` - keep ``K`` labs busy (refill at once), K = 1..l; ``busy:l`` is OnFCP.
* ``bernoulli:P`` - at every decision point each startable experiment starts with probability
  ``P`` (a random scheduler; its draws come from the scheduler's seed).
* a registered baseline's name: ``onfcp``, ``onmel``, ``ofstaged``, ``ofil``, ``ps``, ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.staged import OfStaged, StagedPlan
from labsched.baselines.registry import make
from labsched.envs._lib.registry import Registry
from labsched.envs.labs.spec import LabSpec

__all__ = ["SCHEDULER_FAMILIES", "BernoulliStarts", "KeepBusy", "make_scheduler", "scheduler_family"]


class KeepBusy(BaselinePolicy):
    """Keep ``k`` labs busy: start experiments whenever fewer than ``k`` are running."""

    name = "busy"

    def __init__(self, spec: LabSpec, k: int, *, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        if not 1 <= int(k) <= spec.n_labs:
            raise ValueError(f"busy:K needs 1 <= K <= n_labs={spec.n_labs}, got {k}")
        self.k = int(k)

    def act(self, state: LabState, memory: Any) -> int:
        return max(0, min(self.k - state.running, state.max_valid))

    def __repr__(self) -> str:
        return f"KeepBusy(k={self.k})"


class BernoulliStarts(BaselinePolicy):
    """At every decision point, each experiment that could start does so with probability ``p``."""

    name = "bernoulli"

    def __init__(self, spec: LabSpec, p: float, *, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"bernoulli:P needs 0 < P <= 1, got {p}")
        self.p = float(p)

    def begin_episode(self, state: LabState) -> Any:
        return None

    def act(self, state: LabState, memory: Any) -> int:
        if state.max_valid == 0:
            return 0
        return int(self.rng.binomial(state.max_valid, self.p))

    def __repr__(self) -> str:
        return f"BernoulliStarts(p={self.p})"


def _numbers(text: str, kind: type, what: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from exc


def _busy(name: str, arg: str, spec: LabSpec, seed: int | None) -> BaselinePolicy:
    return KeepBusy(spec, int(arg), seed=seed)


def _bernoulli(name: str, arg: str, spec: LabSpec, seed: int | None) -> BaselinePolicy:
    return BernoulliStarts(spec, float(arg), seed=seed)


def _staged(name: str, arg: str, spec: LabSpec, seed: int | None) -> BaselinePolicy:
    sizes_text, _, lengths_text = arg.partition("@")
    sizes = _numbers(sizes_text, int, name)
    if not sizes:
        raise ValueError(f"{name}: no stage sizes")
    if lengths_text:
        lengths = _numbers(lengths_text, float, name)
        if len(lengths) != len(sizes):
            raise ValueError(f"{name}: {len(sizes)} stage sizes but {len(lengths)} lengths")
    else:
        lengths = [spec.horizon / len(sizes)] * len(sizes)
    plan = StagedPlan.for_spec(spec, list(zip(sizes, lengths, strict=True)), notes=f"figure 1: {name}")
    return OfStaged(spec, plan=plan, seed=seed)


#: ``family -> factory(name, argument, spec, seed)`` of the ``family:ARG`` scheduler names.
SCHEDULER_FAMILIES: Registry[Callable[[str, str, LabSpec, int | None], BaselinePolicy]] = Registry(
    "scheduler family"
)
SCHEDULER_FAMILIES.add("staged", _staged)
SCHEDULER_FAMILIES.add("busy", _busy)
SCHEDULER_FAMILIES.add("bernoulli", _bernoulli)


def make_scheduler(name: str, spec: LabSpec, *, seed: int | None = None, **options: Any) -> BaselinePolicy:
    """A scheduler from its name: ``staged:...``, ``busy:K``, ``bernoulli:P`` or a baseline name.

    Raises:
        ValueError: for an unknown name or family, or a bad argument (``busy:0``).
    """
    family, sep, arg = name.partition(":")
    if not sep:
        return make(name, spec, seed=seed, **options)
    if options:
        raise ValueError(f"scheduler {name!r} takes no options, got {sorted(options)}")
    if family.strip().lower() not in SCHEDULER_FAMILIES:
        known = ", ".join(SCHEDULER_FAMILIES)
        raise ValueError(f"unknown scheduler family {family.strip().lower()!r} in {name!r}; known: {known}")
    return SCHEDULER_FAMILIES.get(family)(name, arg, spec, seed)


def scheduler_family(name: str) -> str:
    """``staged``, ``busy``, ``bernoulli`` or ``baseline``."""
    family, sep, _ = name.partition(":")
    return family if sep else "baseline"
