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
number of experiments that completed successfully at or before ``s``; it counts toward CPE if it
ends at or before the horizon without failing.

Failures and heterogeneous labs (:mod:`~labsched.envs.labs.lab_columns`) are simulated with the
environment's rules: keep-``k``-busy runs on the ``k`` labs fastest in expectation (where the
environment's starts go). A :class:`SimState` does not say which labs run its experiments: they
are taken to run on the fastest labs, in order, and draw their residual durations (and
failures) from those labs' laws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.labs.engine import LabsBatch
from labsched.envs.labs.lab_columns import LabColumns, lab_columns
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
        completed: (E,) experiments completed successfully by the horizon, including those
            completed before the initial state.
        starts: (E, m) start times of the experiments started by the simulated policy.
        ends: (E, m) their end times.
        priors: (E, m) their prior counts.
        initial_ends: (E, r) end times drawn for the experiments running in the initial state.
        failed: (E,) experiments (new or initially running) that failed by the horizon, or
            ``None`` when the spec has no failures.
        new_failed: (E, m) bool, the new experiments that fail (whenever they end), or ``None``.
    """

    cpe: np.ndarray
    completed: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    priors: np.ndarray
    initial_ends: np.ndarray
    failed: np.ndarray | None = None
    new_failed: np.ndarray | None = None

    def all_completed(self, n_experiments: int) -> np.ndarray:
        """(E,) boolean: all ``n_experiments`` ended by the horizon (completed, or failed when
        the spec has failures: the environment's ``cost`` is 0)."""
        ended = self.completed if self.failed is None else self.completed + self.failed
        return ended >= n_experiments


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
            order, under the labs' common law (before lab speeds); drawn from it otherwise. Not
            accepted when labs have different laws (``LabSpec.lab_durations``).

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
    r = len(state.running_elapsed)
    cols = lab_columns(spec, max(n_busy, r))
    if durations is None:
        table = _draw_table(cols, rng, E, m)
    elif cols.quantile_draws:
        raise ValueError(
            "simulate_keep_busy(durations=...) needs labs sharing one duration law; LabSpec.lab_durations "
            "gives different laws: leave durations=None"
        )
    elif durations.shape != (E, m):
        raise ValueError(f"durations must have shape {(E, m)}, got {durations.shape}")
    else:
        table = np.asarray(durations, dtype=float).T[None]
    if r:
        initial_ends = float(state.time) + _residuals(spec, cols, rng, state.running_elapsed, E)
    else:
        initial_ends = np.empty((E, 0))
    fail_u = rng.random((m, E)) if cols.fail is not None else None
    init_fail = rng.random((r, E)) < cols.fail[:r, None] if cols.fail is not None else None
    batch = _initial_batch(spec, state, n_busy, table, initial_ends, fail_u, init_fail)
    while True:
        remaining = m - (batch.started - state.started)
        k = np.minimum(np.maximum(n_busy - batch.running, 0), remaining)
        batch.start(k)
        if (batch.started == spec.n_experiments).all():
            break
        batch.advance()
    return _outcome(spec, state, batch, initial_ends, init_fail)


def _draw_table(cols: LabColumns, rng: np.random.Generator, E: int, m: int) -> np.ndarray:
    """``(laws, m, E)`` durations of the new experiments under each law (start order)."""
    if not cols.quantile_draws:
        return np.asarray(cols.laws[0].sample(rng, (E, m)), dtype=float).T[None]
    v = 1.0 - rng.random((E, m))
    return np.stack([np.asarray(law.isf(v), dtype=float).T for law in cols.laws])


def _residuals(
    spec: LabSpec, cols: LabColumns, rng: np.random.Generator, elapsed: tuple[float, ...], E: int
) -> np.ndarray:
    """``(E, r)`` residual durations of the running experiments (on the first ``r`` columns)."""
    r = len(elapsed)
    e = np.broadcast_to(np.asarray(elapsed, dtype=float), (E, r))
    if not spec.heterogeneous:
        return spec.duration.sample_residual(rng, e)
    out = np.empty((E, r))
    for j in range(r):
        law = cols.laws[0 if cols.law_of is None else cols.law_of[j]]
        speed = 1.0 if cols.speed is None else float(cols.speed[j])
        out[:, j] = law.sample_residual(rng, e[:, j] * speed) / speed
    return out


def _initial_batch(
    spec: LabSpec,
    state: SimState,
    n_busy: int,
    table: np.ndarray,
    initial_ends: np.ndarray,
    fail_u: np.ndarray | None,
    init_fail: np.ndarray | None,
) -> LabsBatch:
    """An event-to-event engine in ``state``: running experiments in the first (fastest) labs."""
    E, r = initial_ends.shape
    batch = LabsBatch(spec, E, grid=False, n_labs=max(n_busy, r))
    full = np.zeros((table.shape[0], spec.n_experiments, E))
    full[:, state.started :] = table
    full_u = None
    if fail_u is not None:
        full_u = np.ones((spec.n_experiments, E))
        full_u[state.started :] = fail_u
    batch.reset_rows(slice(None), full, full_u)
    batch.t[:] = float(state.time)
    batch.started[:] = state.started
    batch.completed[:] = state.completed
    batch.running[:] = r
    if r:
        batch.lab_end[:r] = initial_ends.T
        # Priors of running experiments count only when given (BatchOutcome.cpe's convention).
        if state.running_prior is not None:
            batch.lab_prior[:r] = np.asarray(state.running_prior)[:, None]
        if init_fail is not None:
            batch.lab_fail[:r] = init_fail
    return batch


def _outcome(
    spec: LabSpec, state: SimState, batch: LabsBatch, initial_ends: np.ndarray, init_fail: np.ndarray | None
) -> BatchOutcome:
    """The :class:`BatchOutcome` of a finished simulation (new experiments in start order)."""
    h, s0 = spec.horizon, state.started
    # Reductions run over the contiguous (m, E) layout; the outcome exposes (E, m) views.
    starts_t = batch.exp_start[s0:]
    ends_t = batch.exp_end[s0:]
    priors_t = batch.exp_prior[s0:]
    ended_new = ends_t <= h + batch.tol
    fail_new = batch.exp_fail[s0:] if init_fail is not None else None
    done_new = ended_new if fail_new is None else ended_new & ~fail_new
    cpe = np.where(done_new, priors_t, 0).sum(axis=0)
    completed = state.completed + done_new.sum(axis=0)
    failed = None if fail_new is None else (ended_new & fail_new).sum(axis=0)
    starts, ends, priors = starts_t.T, ends_t.T, priors_t.T
    if initial_ends.shape[1]:
        done_init = initial_ends <= h + batch.tol
        if init_fail is not None:
            failed = failed + (done_init & init_fail.T).sum(axis=1)
            done_init = done_init & ~init_fail.T
        completed = completed + done_init.sum(axis=1)
        if state.running_prior is not None:
            cpe = cpe + (done_init * np.asarray(state.running_prior)[None, :]).sum(axis=1)
    return BatchOutcome(
        cpe=cpe,
        completed=completed,
        starts=starts,
        ends=ends,
        priors=priors,
        initial_ends=initial_ends,
        failed=failed,
        new_failed=None if fail_new is None else fail_new.T,
    )
