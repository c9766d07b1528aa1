"""Baselines for an unknown duration law: re-plan on an online estimate (issue 14).

With ``LabSpec(known_durations=False)`` a scheduler is told only a first guess of the duration
law (:attr:`~labsched.envs.labs.spec.LabSpec.scheduler_view`). :class:`EstimatedDurations` wraps
a baseline that needs the law (policy switching, OnMEL, calibrated keep-``k``-busy) and runs it
on the current estimate of the law instead of the law itself:

* **What it sees.** Only the observation, decoded with the scheduler's view of the spec (the
  wrapper keeps ``spec.scheduler_view``, never the true law). Between two decision points it
  finds the experiments that ended (a lab busy before and idle now; or a start made at the last
  decision, on the free labs in placement order, whose lab is idle again) and their durations:
  exact when the environment decides at completions (its default, ``decide_on_completion=True``),
  where every end is a decision point; otherwise the end is taken at the decision point that
  reveals it (an overestimate by less than one epoch). Failed experiments count too (a failure
  is a draw of the law). Running experiments give right-censored elapsed times. With
  ``lab_speeds`` times are multiplied by the lab's speed (durations of the common law).
* **Estimate.** :func:`~labsched.envs.labs.duration_estimate.estimate_duration` (a
  Normal-Inverse-Gamma posterior mean of the mean and variance with the first guess as prior,
  worth ``prior_weight`` observations, censored times by EM; the first guess's family), every
  episode from the first guess (what one campaign learns is not carried to the next).
* **Re-planning.** At every decision point where an experiment can start the estimate is
  updated; when its mean or standard deviation has moved by more than ``replan_rtol`` (relative)
  from the law the inner policy was built on, the inner policy is rebuilt on the spec with the
  estimated law. Its episode memory (policy switching's committed schedule) is kept, so a
  committed schedule stays a candidate.
  Before any data the inner policy is the baseline given the first guess.

Registered names: ``ps-estimated``, ``onmel-estimated``, ``keep-busy-estimated`` (calibrated
keep-``k``-busy). OnMEL and keep-busy re-simulate their choice at each rebuild, with 4,000
simulations by default (options are passed to the inner policy). Baselines that do not use the
law (``onfcp``, ``sequential``, ``random``) need no wrapper; ``ofil``/``ofstaged`` plan once per
episode and gain nothing from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.calibrated import CalibratedKeepBusy
from labsched.baselines.labs.online import OnMEL
from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.envs._lib.validation import check_bool, check_real
from labsched.envs.labs.duration_estimate import DEFAULT_PRIOR_WEIGHT, DurationEstimate, estimate_duration
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "ESTIMATED_BASELINES",
    "EstimatedDurations",
    "EstimatedKeepBusy",
    "EstimatedOnMEL",
    "EstimatedPolicySwitching",
]

#: Shortest duration recorded (an end revealed at the decision point of its start).
_MIN_DURATION = 1e-12


@dataclass
class _Episode:
    """Per-episode memory: what was seen at the last decision point and the inner policy."""

    time: float
    busy: np.ndarray
    start: np.ndarray
    started: int
    inner: BaselinePolicy
    inner_memory: Any
    built_on: tuple[float, float]
    estimate: DurationEstimate
    ended: list[float] = dataclasses.field(default_factory=list)


class EstimatedDurations(BaselinePolicy):
    """A baseline run on an online estimate of the duration law (see the module docstring).

    Args:
        spec: the problem; only ``spec.scheduler_view`` is kept (the first guess stands for the
            law when ``known_durations`` is False; with known durations the guess is the law).
        base: the wrapped :class:`BaselinePolicy` subclass (its constructor takes
            ``(spec, seed=..., **options)``); subclasses fix it.
        seed: seed of the inner policy.
        prior_weight: weight of the first guess, in observations (finite, > 0).
        censoring: use the elapsed times of running experiments (right-censored).
        replan_rtol: rebuild the inner policy when the estimated mean or standard deviation has
            moved by more than this fraction since it was built (finite, >= 0; 0 rebuilds at
            every change; default ``default_replan_rtol``: 0.01 for policy switching, whose
            rebuild is cheap, 0.05 for the simulated OnMEL and keep-busy choices).
        **options: options of the inner policy (``n_simulations=...``).

    Raises:
        TypeError, ValueError: for a bad option (the inner policy's are checked by building it
            once on the first guess).
    """

    name = "estimated"
    #: Marks the wrappers for unknown laws, so that default lists (compare, leaderboard, scale
    #: benchmark) can leave them out where the law is known: they are several times slower.
    estimates_durations: ClassVar[bool] = True
    base: ClassVar[type[BaselinePolicy] | None] = None
    base_defaults: ClassVar[dict[str, Any]] = {}
    default_replan_rtol: ClassVar[float] = 0.01

    def __init__(
        self,
        spec: LabSpec,
        *,
        base: type[BaselinePolicy] | None = None,
        seed: int | None = None,
        prior_weight: float = DEFAULT_PRIOR_WEIGHT,
        censoring: bool = True,
        replan_rtol: float | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(spec, LabSpec):
            raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
        super().__init__(spec.scheduler_view, seed=seed)
        base = base if base is not None else type(self).base
        if not (isinstance(base, type) and issubclass(base, BaselinePolicy)):
            raise TypeError(f"base must be a BaselinePolicy subclass, got {base!r}")
        self.base_policy = base
        self.prior_weight = check_real("prior_weight", prior_weight, 0.0, low_open=True)
        self.censoring = check_bool("censoring", censoring)
        if replan_rtol is None:
            replan_rtol = type(self).default_replan_rtol
        self.replan_rtol = check_real("replan_rtol", replan_rtol, 0.0)
        self.options = {**type(self).base_defaults, **options}
        self.guess: DurationModel = self.spec.duration
        self._speed = np.asarray(self.spec.lab_speed_factors, dtype=float)
        self._order = np.asarray(self.spec.lab_order, dtype=np.int64)
        self._first = self._build(self.guess)  # checks the inner options at once
        self.n_rebuilds = 0

    def _build(self, law: DurationModel) -> BaselinePolicy:
        est = self.spec.replace(duration=law, known_durations=True, duration_guess=None)
        assert self.base_policy is not None
        return self.base_policy(est, seed=self.seed, **self.options)

    # ------------------------------------------------------------------ protocol
    def begin_episode(self, state: LabState) -> _Episode:
        inner = self._first
        guess = estimate_duration(self.guess, prior_weight=self.prior_weight)
        busy = np.asarray(state.busy, dtype=bool).copy()
        return _Episode(
            time=state.time,
            busy=busy,
            start=np.where(busy, state.time - np.asarray(state.elapsed, dtype=float), np.nan),
            started=state.started,
            inner=inner,
            inner_memory=inner.begin_episode(self._inner_state(state, inner)),
            built_on=(guess.mean, guess.std),
            estimate=guess,
        )

    def act(self, state: LabState, memory: _Episode) -> int:
        self._observe(state, memory)
        if state.max_valid > 0:  # the law matters only where something can start
            self._update(state, memory)
        return int(memory.inner.act(self._inner_state(state, memory.inner), memory.inner_memory))

    def estimate(self, env_index: int = 0) -> DurationEstimate | None:
        """The current estimate of environment ``env_index``'s episode (None before one)."""
        memory = self._memory.get(env_index)
        return memory.estimate if isinstance(memory, _Episode) else None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _inner_state(state: LabState, inner: BaselinePolicy) -> LabState:
        return dataclasses.replace(state, spec=inner.spec)

    def _observe(self, state: LabState, mem: _Episode) -> None:
        """Record the experiments that ended since the last decision point (base-law units)."""
        t = state.time
        busy = np.asarray(state.busy, dtype=bool)
        for lab in np.flatnonzero(mem.busy & ~busy).tolist():
            mem.ended.append(max(t - float(mem.start[lab]), _MIN_DURATION) * float(self._speed[lab]))
        new = state.started - mem.started
        if new > 0:  # started at the last decision on the free labs in placement order
            placed = [lab for lab in self._order.tolist() if not mem.busy[lab]][:new]
            for lab in placed:
                if not busy[lab]:
                    mem.ended.append(max(t - mem.time, _MIN_DURATION) * float(self._speed[lab]))
        mem.start = np.where(busy, t - np.asarray(state.elapsed, dtype=float), np.nan)
        mem.busy = busy.copy()
        mem.time = t
        mem.started = state.started

    def _update(self, state: LabState, mem: _Episode) -> None:
        running = ()
        if self.censoring and mem.busy.any():
            running = np.maximum(state.time - mem.start[mem.busy], 0.0) * self._speed[mem.busy]
        if not mem.ended and len(running) == 0:
            return
        est = estimate_duration(self.guess, mem.ended, running, prior_weight=self.prior_weight)
        mem.estimate = est
        m0, s0 = mem.built_on
        tol = self.replan_rtol
        if abs(est.mean - m0) > tol * m0 or abs(est.std - s0) > tol * max(s0, 1e-12):
            mem.inner = self._build(est.law)
            mem.built_on = (est.mean, est.std)
            self.n_rebuilds += 1

    def __repr__(self) -> str:
        base = self.base_policy.__name__ if self.base_policy is not None else None
        return (
            f"{type(self).__name__}(base={base}, prior_weight={self.prior_weight}, "
            f"censoring={self.censoring}, replan_rtol={self.replan_rtol}, seed={self.seed!r})"
        )


class EstimatedPolicySwitching(EstimatedDurations):
    """Policy switching on the estimated law (``ps-estimated``)."""

    name = "ps-estimated"
    base = PolicySwitching


class EstimatedOnMEL(EstimatedDurations):
    """OnMEL on the estimated law (``onmel-estimated``; 4,000 simulations per choice of ``k``)."""

    name = "onmel-estimated"
    base = OnMEL
    base_defaults: ClassVar[dict[str, Any]] = {"n_simulations": 4000}
    default_replan_rtol: ClassVar[float] = 0.05


class EstimatedKeepBusy(EstimatedDurations):
    """Calibrated keep-``k``-busy on the estimated law (``keep-busy-estimated``; 4,000
    simulations per calibration, no disk cache)."""

    name = "keep-busy-estimated"
    base = CalibratedKeepBusy
    base_defaults: ClassVar[dict[str, Any]] = {"n_simulations": 4000, "cache": False}
    default_replan_rtol: ClassVar[float] = 0.05


#: The wrappers registered by name in :mod:`labsched.baselines.registry`.
ESTIMATED_BASELINES: tuple[type[EstimatedDurations], ...] = (
    EstimatedPolicySwitching,
    EstimatedOnMEL,
    EstimatedKeepBusy,
)
