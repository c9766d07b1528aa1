"""Replaying IL schedules in a batch of ``R`` simulated executions at once: stage lengths,
stage-by-stage starts and ends with the tracker's semantics, the CPE of the new experiments and
whole-plan Monte-Carlo (the planning tables live in :mod:`labsched.baselines.labs.il_simulation`,
whose conventions apply here)."""

from __future__ import annotations

import numpy as np

from labsched.baselines.labs.independent_lab import GRID_TOL, ILPlan
from labsched.envs.labs.engine import time_tolerance
from labsched.envs.labs.spec import LabSpec

__all__ = ["cpe_of_new", "simulate_plan", "simulate_stages", "split_lengths"]


def split_lengths(spec: LabSpec, start: np.ndarray, n_stages: np.ndarray, a_max: int) -> np.ndarray:
    """Stage lengths of grid-snapped even splits of ``[start, h]``, vectorised.

    Args:
        spec: the problem.
        start: ``(...)`` start times.
        n_stages: ``(...)`` numbers of stages (0 allowed).
        a_max: size of the last axis (>= ``n_stages.max()``).

    Returns:
        ``(..., a_max)`` lengths, NaN beyond each entry's ``n_stages``.
    """
    h, eps = spec.horizon, spec.epoch
    start = np.asarray(start, dtype=float)
    a = np.asarray(n_stages)
    width = h - start
    safe_a = np.maximum(a, 1)
    out = np.full((*start.shape, a_max), np.nan)
    prev = start
    for s in range(1, a_max + 1):
        inner = np.minimum(np.ceil((start + width * s / safe_a) / eps - GRID_TOL) * eps, h)
        b = np.where(s < a, inner, h)
        out[..., s - 1] = np.where(s <= a, b - prev, np.nan)
        prev = b
    return out


def simulate_stages(
    spec: LabSpec,
    time: float,
    ideal: np.ndarray,
    comp: np.ndarray,
    lengths: np.ndarray,
    durations: np.ndarray,
    *,
    completion_decisions: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Replay IL labs stage by stage in ``R`` rows at once.

    Args:
        spec: the problem.
        time: current time (no start happens before it).
        ideal: ``(R, L)`` planned end of each lab's current stage (for an idle lab: the earliest
            start of its next experiment).
        comp: ``(R, L)`` completion time of each lab's current experiment (``-inf``: idle).
        lengths: ``(R, L, A)`` lengths of the stages still to start (NaN: none).
        durations: ``(R, L, A)`` durations of the experiments of those stages.
        completion_decisions: an overrunning lab restarts at the exact completion (the env's
            ``decide_on_completion=True``), else at the next grid point.

    Returns:
        ``(starts, ends)``, each ``(R, L, A)``, ``inf`` where no experiment runs.
    """
    eps = spec.epoch
    a_max = lengths.shape[2]
    starts = np.full(lengths.shape, np.inf)
    ends = np.full(lengths.shape, np.inf)
    ideal = np.array(ideal, dtype=float)
    comp = np.array(comp, dtype=float)
    for s in range(a_max):
        ln = lengths[:, :, s]
        act = ~np.isnan(ln)
        if not act.any():
            break
        over = comp > ideal
        grid_start = np.ceil(ideal / eps - GRID_TOL) * eps
        restart = comp if completion_decisions else np.ceil(comp / eps - GRID_TOL) * eps
        st = np.maximum(np.where(over, restart, grid_start), time)
        en = st + durations[:, :, s]
        starts[:, :, s] = np.where(act, st, np.inf)
        ends[:, :, s] = np.where(act, en, np.inf)
        ideal = np.where(act, np.maximum(ideal, comp) + ln, ideal)
        comp = np.where(act, en, comp)
    return starts, ends


def cpe_of_new(
    spec: LabSpec,
    starts: np.ndarray,
    ends: np.ndarray,
    running_ends: np.ndarray,
    completed: int,
    max_new: int,
) -> np.ndarray:
    """CPE of the new experiments that complete by ``h``, per row.

    A new experiment's prior count is ``completed`` plus the experiments (running at the
    decision time or new) that ended at or before its start.

    Args:
        spec: the problem.
        starts: ``(R, S)`` start times of new experiments (``inf`` for empty slots).
        ends: ``(R, S)`` their end times.
        running_ends: ``(R, r)`` end times of the experiments running at the decision time.
        completed: experiments completed at the decision time.
        max_new: upper bound on the new experiments per row (the remaining budget).

    Returns:
        ``(R,)`` CPE contributions.
    """
    n_rows = starts.shape[0]
    h = spec.horizon
    # Only experiments that complete by h score, and only they can end before a scoring start.
    done = ends <= h + time_tolerance(h)
    if max_new <= 0 or not done.any():
        return np.zeros(n_rows)
    rr, cc = np.nonzero(done)
    col = np.cumsum(done, axis=1)[rr, cc] - 1
    width = int(col.max()) + 1
    st = np.full((n_rows, width), -np.inf)
    en = np.full((n_rows, width), np.inf)
    st[rr, col] = starts[rr, cc]
    en[rr, col] = ends[rr, cc]
    st_tol = st[:, :, None] + time_tolerance(h)  # the env's event semantics: ties within tol
    n_prior = np.count_nonzero(en[:, None, :] <= st_tol, axis=(1, 2))
    if running_ends.shape[1]:
        n_prior += np.count_nonzero(running_ends[:, None, :] <= st_tol, axis=(1, 2))
    return (n_prior + completed * done.sum(axis=1)).astype(float)


def simulate_plan(
    spec: LabSpec,
    plan: ILPlan,
    n_simulations: int,
    rng: np.random.Generator,
    *,
    running_ends: np.ndarray | None = None,
    completed: int = 0,
    completion_decisions: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo executions of an IL plan with the tracker's semantics.

    Args:
        spec: the problem.
        plan: the plan (new labs and, for a plan from a state, reused labs).
        n_simulations: number of executions ``E``.
        rng: source of the durations.
        running_ends: ``(E, r)`` completion times of the experiments running at the plan time
            (required when the plan reuses labs), indexed like the plan's ``running_index``.
        completed: experiments completed before the plan time.
        completion_decisions: overruns restart at the exact completion (else at the next epoch).

    Returns:
        ``(cpe, n_done, safe)``: per execution, the CPE of the plan's new experiments completed
        by ``h``, the number of them completed by ``h``, and whether every experiment (reused
        ones included) finished inside its planned stage.
    """
    n_sim = int(n_simulations)
    r = 0 if running_ends is None else running_ends.shape[1]
    run = np.empty((n_sim, 0)) if running_ends is None else np.asarray(running_ends, dtype=float)
    labs = plan.labs
    n_labs = r + sum(1 for lab in labs if lab.is_new)
    n_stage = max([1, *(lab.n_experiments for lab in labs)])
    ideal = np.full((n_sim, n_labs), plan.start_time)
    comp = np.full((n_sim, n_labs), -np.inf)
    comp[:, :r] = run
    lens = np.full((n_sim, n_labs, n_stage), np.nan)
    col = r
    for lab in labs:
        lengths = lab.new_stage_lengths(plan.start_time)
        if lab.is_new:
            c = col
            col += 1
        else:
            assert lab.running_index is not None
            c = lab.running_index
            ideal[:, c] = lab.boundaries[0]
        lens[:, c, : len(lengths)] = lengths
    durations = np.asarray(spec.duration.sample(rng, (n_sim, n_labs, n_stage)), dtype=float)
    starts, ends = simulate_stages(
        spec, plan.start_time, ideal, comp, lens, durations, completion_decisions=completion_decisions
    )
    cpe = cpe_of_new(
        spec, starts.reshape(n_sim, -1), ends.reshape(n_sim, -1), run, completed, plan.n_experiments
    )
    n_done = (ends <= spec.horizon + time_tolerance(spec.horizon)).sum(axis=(1, 2))
    # Safe: every experiment ends by its planned stage end, computed along the ideal clock.
    stage_end = np.cumsum(np.nan_to_num(lens), axis=2) + ideal[:, :, None]
    safe = np.all((ends <= stage_end + 1e-12) | np.isnan(lens), axis=(1, 2))
    if r:
        first_end = np.array([lab.boundaries[0] for lab in labs if not lab.is_new])
        idx = np.array([lab.running_index for lab in labs if not lab.is_new], dtype=int)
        safe &= np.all(run[:, idx] <= first_end[None, :] + 1e-12, axis=1)
    return cpe, n_done, safe
