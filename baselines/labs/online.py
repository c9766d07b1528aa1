"""Online baselines: sequential, OnFCP, OnMEL and a random floor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.envs.labs.spec import LabSpec

__all__ = ["LabCountEstimate", "OnFCP", "OnMEL", "RandomPolicy", "Sequential", "min_eager_labs"]


class Sequential(BaselinePolicy):
    """One experiment at a time: the unconstrained (h = infinity) reference.

    It ignores the horizon; evaluate it with a horizon long enough for ``n`` sequential runs
    to reach the sequential CPE ``n (n - 1) / 2``.
    """

    name = "sequential"

    def act(self, state: LabState, memory: Any) -> int:
        return 1 if state.running == 0 and state.remaining > 0 else 0


class OnFCP(BaselinePolicy):
    """Online fastest-completion policy: keep every lab busy while experiments remain."""

    name = "onfcp"

    def act(self, state: LabState, memory: Any) -> int:
        return state.max_valid


@dataclass(frozen=True)
class LabCountEstimate:
    """Result of the OnMEL lab-count search.

    Attributes:
        n_labs: the chosen number of labs ``k``.
        p_complete: estimated probability that all ``n`` complete by ``h`` with ``k`` labs.
        std_error: its Monte-Carlo standard error ``sqrt(p (1 - p) / N)``.
        n_simulations: Monte-Carlo sample size ``N``.
        safe: whether ``p_complete >= p_safe`` (False: no ``k <= l`` is safe; ``k = l``).
        curve: estimated completion probability for every ``k`` tried, ``{k: p}``.
    """

    n_labs: int
    p_complete: float
    std_error: float
    n_simulations: int
    safe: bool
    curve: dict[int, float]


def min_eager_labs(
    spec: LabSpec, n_simulations: int = 20_000, rng: np.random.Generator | None = None
) -> LabCountEstimate:
    """Fewest labs ``k`` for which keeping ``k`` labs busy completes all ``n`` by ``h`` with
    probability at least ``p_safe`` (Monte-Carlo, batched simulator).

    The completion probability increases with ``k``, so ``k`` is searched upwards from
    ``ceil(n * E[D] / h)``'s lower neighbours; if no ``k <= l`` is safe, ``k = l`` is returned
    with ``safe=False``.

    Args:
        spec: the problem.
        n_simulations: Monte-Carlo sample size per ``k`` (standard error at most
            ``0.5 / sqrt(N)``; about 0.0015 near p = 0.95 for the default 20,000).
        rng: generator for the simulation (a fixed default seed when omitted, so the result is
            a deterministic function of the spec).

    Raises:
        TypeError: for an ``n_simulations`` that is not an integer or an ``rng`` that is not a
            ``numpy.random.Generator``.
        ValueError: for ``n_simulations < 1``.
    """
    n_simulations = check_int("n_simulations", n_simulations, 1)
    rng = np.random.default_rng(0) if rng is None else check_generator("rng", rng)
    curve: dict[int, float] = {}
    n = spec.n_experiments
    # Any k below n E[D] / h cannot finish on average; starting just below it saves work.
    k0 = max(1, min(spec.n_labs, math.floor(n * spec.duration.mean / spec.horizon)))
    for k in range(k0, spec.n_labs + 1):
        out = simulate_keep_busy(spec, k, n_simulations, rng)
        p = float(out.all_completed(n).mean())
        curve[k] = p
        if p >= spec.p_safe:
            se = math.sqrt(p * (1 - p) / n_simulations)
            return LabCountEstimate(k, p, se, n_simulations, True, curve)
    p = curve[spec.n_labs]
    se = math.sqrt(p * (1 - p) / n_simulations)
    return LabCountEstimate(spec.n_labs, p, se, n_simulations, False, curve)


class OnMEL(BaselinePolicy):
    """Online minimum-eager-lab policy: OnFCP restricted to the fewest p-safe labs ``k``.

    ``k`` comes from :func:`min_eager_labs` (computed once, at construction). When no
    ``k <= l`` reaches ``p_safe`` the policy uses all ``l`` labs (best effort) and
    ``self.estimate.safe`` is False.

    Args:
        spec: the problem.
        n_simulations: Monte-Carlo sample size per candidate ``k`` (an integer >= 1).
        seed: seed of the Monte-Carlo estimate.

    Raises:
        TypeError: for an ``n_simulations`` that is not an integer (``2.5``, ``"5"``).
        ValueError: for ``n_simulations < 1``.
    """

    name = "onmel"

    def __init__(self, spec: LabSpec, *, n_simulations: int = 20_000, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        n_simulations = check_int("n_simulations", n_simulations, 1)
        self.estimate = min_eager_labs(spec, n_simulations, np.random.default_rng(seed or 0))
        self.k = self.estimate.n_labs

    def act(self, state: LabState, memory: Any) -> int:
        return max(0, min(self.k - state.running, state.remaining))


class RandomPolicy(BaselinePolicy):
    """A uniformly random valid action at every decision point (a sanity floor)."""

    name = "random"

    def act(self, state: LabState, memory: Any) -> int:
        return int(self.rng.integers(0, state.max_valid + 1))
