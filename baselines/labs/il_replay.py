"""Replaying IL schedules in a batch of ``R`` simulated executions at once: stage lengths,
stage-by-stage starts and ends with the tracker's semantics, the CPE of the new experiments and
whole-plan Monte-Carlo (the planning tables live in :mod:`labsched.baselines.labs.il_simulation`,
whose conventions apply here)."""

from __future__ import annotations

import sys

import numpy as np

from labsched.baselines.labs.il_tables import CHUNK_ELEMENTS
from labsched.baselines.labs.independent_lab import GRID_TOL, ILPlan
from labsched.envs.labs.engine import time_tolerance
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "SORT_WIDTH",
    "cpe_of_new",
    "prior_sums",
    "simulate_plan",
    "simulate_stages",
    "simulate_stages_by_stage",
    "split_lengths",
    "split_lengths_by_stage",
]

#: Rows with more completed experiments than this count prior pairs by sorting, not pairwise.
SORT_WIDTH = 48
_LITTLE_ENDIAN = sys.byteorder == "little"


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
    return np.moveaxis(split_lengths_by_stage(spec, start, n_stages, a_max), 0, -1)


def split_lengths_by_stage(spec: LabSpec, start: np.ndarray, n_stages: np.ndarray, a_max: int) -> np.ndarray:
    """:func:`split_lengths` with the stage axis first: ``(a_max, ...)``, contiguous per stage."""
    h, eps = spec.horizon, spec.epoch
    start = np.asarray(start, dtype=float)
    a = np.asarray(n_stages)
    width = h - start
    safe_a = np.maximum(a, 1)
    out = np.empty((a_max, *start.shape))
    prev = start
    for s in range(1, a_max + 1):
        inner = np.minimum(np.ceil((start + width * s / safe_a) / eps - GRID_TOL) * eps, h)
        b = np.where(s < a, inner, h)
        out[s - 1] = np.where(s <= a, b - prev, np.nan)
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
    starts, ends = simulate_stages_by_stage(
        spec,
        time,
        ideal,
        comp,
        np.moveaxis(lengths, 2, 0),
        np.moveaxis(durations, 2, 0),
        completion_decisions=completion_decisions,
    )
    return np.moveaxis(starts, 0, 2), np.moveaxis(ends, 0, 2)


def simulate_stages_by_stage(
    spec: LabSpec,
    time: float,
    ideal: np.ndarray,
    comp: np.ndarray,
    lengths: np.ndarray,
    durations: np.ndarray,
    *,
    completion_decisions: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulate_stages` with the stage axis first: ``lengths``, ``durations`` and the
    results are ``(A, R, L)`` (each stage a contiguous block when the inputs are)."""
    eps = spec.epoch
    starts = np.full(lengths.shape, np.inf)
    ends = np.full(lengths.shape, np.inf)
    ideal = np.array(ideal, dtype=float)
    comp = np.array(comp, dtype=float)
    for s in range(lengths.shape[0]):
        ln = lengths[s]
        act = ~np.isnan(ln)
        if not act.any():
            break
        over = comp > ideal
        grid_start = np.ceil(ideal / eps - GRID_TOL) * eps
        restart = comp if completion_decisions else np.ceil(comp / eps - GRID_TOL) * eps
        st = np.maximum(np.where(over, restart, grid_start), time)
        en = st + durations[s]
        np.copyto(starts[s], st, where=act)
        np.copyto(ends[s], en, where=act)
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
    n_done = done.sum(axis=1)
    tol = time_tolerance(h)
    if int(n_done.max()) > SORT_WIDTH:
        n_prior = _prior_sums_sorted(starts, ends, done, running_ends, tol)
    else:  # pairwise: pack the completed experiments into the first columns
        rr, cc = np.nonzero(done)
        col = np.cumsum(done, axis=1)[rr, cc] - 1
        width = int(col.max()) + 1
        st = np.full((n_rows, width), -np.inf)
        en = np.full((n_rows, width), np.inf)
        st[rr, col] = starts[rr, cc]
        en[rr, col] = ends[rr, cc]
        n_prior = prior_sums(st, en, running_ends, tol)
    return (n_prior + completed * n_done).astype(float)


def _prior_sums_sorted(
    starts: np.ndarray, ends: np.ndarray, done: np.ndarray, running_ends: np.ndarray, tol: float
) -> np.ndarray:
    """:func:`prior_sums` of the completed experiments by a sorted merge, without packing them.

    Keys are order-preserving integers: a non-negative float's bits shifted left, with the low
    bit 0 for an end and 1 for a start (``s + tol``), so an end equal to ``s + tol`` sorts before
    the start (counted, as ``e <= s + tol`` says). The starts of experiments that do not complete
    get key 1 and sort first (they count nothing); the ends of those experiments are after ``h +
    tol``, past every completed experiment's ``s + tol``, so they are left in. A start's count is
    its position in the merged order minus the starts before it.
    """
    n_rows, w = starts.shape
    r = running_ends.shape[1]
    n_col = 2 * w + r
    position = np.arange(n_col, dtype=np.int64)
    out = np.zeros(n_rows, dtype=np.int64)
    one, two = np.uint64(1), np.uint64(2)
    step = max(1, CHUNK_ELEMENTS // n_col)
    for lo in range(0, n_rows, step):
        sl = slice(lo, lo + step)
        keys = np.empty((min(step, n_rows - lo), n_col), dtype=np.uint64)
        keys[:, :w] = (ends[sl] + 0.0).view(np.uint64)
        keys[:, w : w + r] = (running_ends[sl] + 0.0).view(np.uint64)
        keys[:, w + r :] = (starts[sl] + tol).view(np.uint64)
        keys <<= one
        keys[:, w + r :] |= one
        keys += two
        keys[:, w + r :][~done[sl]] = one
        keys.sort(axis=1)
        is_start = keys.view(np.uint8)[:, ::8] & 1  # the low byte (little-endian) holds the tag
        if not _LITTLE_ENDIAN:
            is_start = (keys & one).astype(np.uint8)
        out[sl] = np.einsum("ij,j->i", is_start, position, dtype=np.int64) - w * (w - 1) // 2
    return out


def prior_sums(st: np.ndarray, en: np.ndarray, running_ends: np.ndarray, tol: float) -> np.ndarray:
    """Per row, the number of pairs (start ``s``, end ``e``) with ``e <= s + tol``.

    The ends are ``en`` and ``running_ends``; ``-inf`` starts and ``inf`` ends are padding.
    Narrow rows compare every pair (``O(W^2)`` per row, in row chunks of bounded size); wide
    rows (more than :data:`SORT_WIDTH` starts) merge by sorting (``O(W log W)``) keys that order
    exactly as the floats ``e`` and ``s + tol`` do (times are never negative), ends first on
    ties, so both count the same pairs (``e <= s + tol``, the env's event semantics: ties within
    ``tol``).
    """
    n_rows, width = st.shape
    out = np.zeros(n_rows, dtype=np.int64)
    r = running_ends.shape[1]
    if width > SORT_WIDTH:
        return _prior_sums_sorted(st, en, ~np.isneginf(st), running_ends, tol)
    step = max(1, CHUNK_ELEMENTS // (width * (width + r)))
    for lo in range(0, n_rows, step):
        sl = slice(lo, lo + step)
        st_tol = st[sl, :, None] + tol  # the env's event semantics: ties within tol
        n_prior = np.count_nonzero(en[sl, None, :] <= st_tol, axis=(1, 2))
        if r:
            n_prior += np.count_nonzero(running_ends[sl, None, :] <= st_tol, axis=(1, 2))
        out[sl] = n_prior
    return out


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
