"""Batched Monte-Carlo simulation of many independent executions at once, in NumPy.

The environment steps one execution in plain Python; schedulers that estimate probabilities or
expected CPE by simulation (OnMEL, policy switching) need thousands of executions per decision.
This module simulates them column-wise: one NumPy operation per *experiment*, never a Python loop
per *episode*.

A simulation may start from a mid-episode state (:class:`SimState`): experiments already
running are given residual durations drawn conditionally on their elapsed times
(``DurationModel.sample_residual``).

Timing convention (identical to :class:`~labsched.envs.ConcurrentLabsEnv` with
``decide_on_completion=True``): an experiment started at time ``s`` has as prior count the
number of experiments that ended at or before ``s``; it counts toward CPE if it ends at or
before the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.labs.engine import LabsBatch
from labsched.envs.labs.spec import LabSpec

__all__ = ["BatchOutcome", "SimState", "prior_counts", "simulate_keep_busy"]


@dataclass(frozen=True)
class SimState:
    """A mid-episode state to simulate from.

    Attributes:
        time: current time ``t``.
        completed: experiments completed so far.
        started: experiments started so far (completed + running).
        running_elapsed: elapsed time of each running experiment.
        running_prior: prior count of each running experiment (optional; when given, their
            CPE contribution is included in the simulated CPE).
    """

    time: float = 0.0
    completed: int = 0
    started: int = 0
    running_elapsed: tuple[float, ...] = ()
    running_prior: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        r = len(self.running_elapsed)
        if self.time < 0:
            raise ValueError(f"SimState.time must be >= 0, got {self.time}")
        if self.completed < 0 or self.started < self.completed:
            raise ValueError("SimState needs 0 <= completed <= started")
        if self.started - self.completed != r:
            raise ValueError(
                f"SimState: started - completed ({self.started - self.completed}) must equal the "
                f"number of running experiments ({r})"
            )
        if self.running_prior is not None and len(self.running_prior) != r:
            raise ValueError("SimState.running_prior must have one entry per running experiment")


@dataclass(frozen=True)
class BatchOutcome:
    """Results of ``E`` simulated executions.

    Attributes:
        cpe: (E,) CPE of the experiments that complete by the horizon (running experiments
            of the initial state contribute only if their priors were given).
        completed: (E,) experiments completed by the horizon, including those completed before
            the initial state.
        starts: (E, m) start times of the experiments started by the simulated policy.
        ends: (E, m) their end times.
        priors: (E, m) their prior counts.
        initial_ends: (E, r) end times drawn for the experiments running in the initial state.
    """

    cpe: np.ndarray
    completed: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    priors: np.ndarray
    initial_ends: np.ndarray

    def all_completed(self, n_experiments: int) -> np.ndarray:
        """(E,) boolean: all ``n_experiments`` completed by the horizon."""
        return self.completed >= n_experiments


def prior_counts(
    starts: np.ndarray,
    ends: np.ndarray,
    initial_ends: np.ndarray | None = None,
    completed: int = 0,
    *,
    tol: float = 0.0,
) -> np.ndarray:
    """Prior count of each started experiment: experiments ended at or before its start.

    Args:
        starts: (E, m) start times of the new experiments, in start order.
        ends: (E, m) their end times (``ends > starts``).
        initial_ends: (E, r) end times of experiments already running at the initial state.
        completed: experiments completed before the initial state.
        tol: event times closer than this are one instant (the engine's
            :func:`~labsched.envs.labs.engine.time_tolerance`).

    Returns:
        (E, m) integer array.
    """
    # An experiment started at or after s_j cannot have ended by s_j (durations > 0), so the
    # full comparison is exact; a strict lower triangle would save half of it.
    s = starts[:, :, None] + tol
    counts = (ends[:, None, :] <= s).sum(axis=2)
    if initial_ends is not None and initial_ends.shape[1]:
        counts += (initial_ends[:, None, :] <= s).sum(axis=2)
    return counts + completed


def simulate_keep_busy(
    spec: LabSpec,
    n_busy: int,
    n_episodes: int,
    rng: np.random.Generator,
    *,
    state: SimState | None = None,
    durations: np.ndarray | None = None,
) -> BatchOutcome:
    """Simulate "keep ``n_busy`` labs busy" (OnFCP on ``n_busy`` labs) ``n_episodes`` times.

    Whenever fewer than ``n_busy`` experiments run and budget remains, a new experiment starts at
    once (at the exact completion time). With ``n_busy = l`` this is OnFCP; with the fewest safe
    ``n_busy`` it is OnMEL. The executions run on the batched event engine
    (:class:`~labsched.envs.labs.engine.LabsBatch`, event to event, past the horizon until every
    experiment has started), so they follow the environment's event semantics exactly.

    Args:
        spec: the problem.
        n_busy: number of labs kept busy, ``1 <= n_busy <= l``.
        n_episodes: number of independent executions ``E``.
        rng: source of every random draw.
        state: start state (default: the empty state at time 0).
        durations: optional (E, m) durations of the ``m = n - started`` new experiments, in start
            order (drawn from ``spec.duration`` otherwise).

    Returns:
        A :class:`BatchOutcome`.
    """
    n_busy = check_int("n_busy", n_busy, 1, spec.n_labs)
    E = check_int("n_episodes", n_episodes, 1)
    check_generator("rng", rng)
    state = state or SimState()
    m = spec.n_experiments - state.started
    if m < 0:
        raise ValueError("state.started exceeds spec.n_experiments")
    if durations is None:
        durations = np.asarray(spec.duration.sample(rng, (E, m)), dtype=float)
    elif durations.shape != (E, m):
        raise ValueError(f"durations must have shape {(E, m)}, got {durations.shape}")
    r = len(state.running_elapsed)
    if r:
        elapsed = np.broadcast_to(np.asarray(state.running_elapsed, dtype=float), (E, r))
        initial_ends = float(state.time) + spec.duration.sample_residual(rng, elapsed)
    else:
        initial_ends = np.empty((E, 0))
    batch = _initial_batch(spec, state, n_busy, durations, initial_ends)
    while True:
        remaining = m - (batch.started - state.started)
        k = np.minimum(np.maximum(n_busy - batch.running, 0), remaining)
        batch.start(k)
        if (batch.started == spec.n_experiments).all():
            break
        batch.advance()
    return _outcome(spec, state, batch, initial_ends)


def _initial_batch(
    spec: LabSpec, state: SimState, n_busy: int, durations: np.ndarray, initial_ends: np.ndarray
) -> LabsBatch:
    """An event-to-event engine in ``state``: running experiments in the first labs."""
    E, r = initial_ends.shape
    batch = LabsBatch(spec, E, grid=False, n_labs=max(n_busy, r))
    full = np.zeros((spec.n_experiments, E))
    full[state.started :] = durations.T
    batch.reset_rows(slice(None), full)
    batch.t[:] = float(state.time)
    batch.started[:] = state.started
    batch.completed[:] = state.completed
    batch.running[:] = r
    if r:
        batch.lab_end[:r] = initial_ends.T
        # Priors of running experiments count only when given (BatchOutcome.cpe's convention).
        if state.running_prior is not None:
            batch.lab_prior[:r] = np.asarray(state.running_prior)[:, None]
    return batch


def _outcome(spec: LabSpec, state: SimState, batch: LabsBatch, initial_ends: np.ndarray) -> BatchOutcome:
    """The :class:`BatchOutcome` of a finished simulation (new experiments in start order)."""
    h, s0 = spec.horizon, state.started
    # Reductions run over the contiguous (m, E) layout; the outcome exposes (E, m) views.
    starts_t = batch.exp_start[s0:]
    ends_t = batch.exp_end[s0:]
    priors_t = batch.exp_prior[s0:]
    done_new = ends_t <= h + batch.tol
    cpe = np.where(done_new, priors_t, 0).sum(axis=0)
    completed = state.completed + done_new.sum(axis=0)
    starts, ends, priors = starts_t.T, ends_t.T, priors_t.T
    if initial_ends.shape[1]:
        done_init = initial_ends <= h + batch.tol
        completed = completed + done_init.sum(axis=1)
        if state.running_prior is not None:
            cpe = cpe + (done_init * np.asarray(state.running_prior)[None, :]).sum(axis=1)
    return BatchOutcome(
        cpe=cpe, completed=completed, starts=starts, ends=ends, priors=priors, initial_ends=initial_ends
    )
