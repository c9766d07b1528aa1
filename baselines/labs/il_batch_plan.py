"""The IL planner of :func:`~labsched.baselines.labs.independent_lab.plan_from_state`, for many
states at once (policy switching plans ``pi_i`` in every simulation with it).

All rows share the remaining budget ``m`` and the experiments running at the decision time
(sorted longest-running first); each row has its own plan time and its own subset ``still`` of
those experiments still running then. The rule is the scalar planner's: even load over reused +
new labs, larger loads to running labs longest-running first, the fewest new labs that reach
``p``, else the most possible. The search over the number of new labs skips the counts whose new
labs alone already miss ``p`` and drops a row as soon as it is safe, so the work is
``O(rows x r)`` per count tried and the memory ``O(rows x r)``; the running labs' first stages
come from :class:`~labsched.baselines.labs.il_tables.RunningPlans`, computed only for the (plan
time, load) pairs looked up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from labsched.baselines.labs.il_plan import ILPlan, LabSchedule, stage_boundaries
from labsched.baselines.labs.il_tables import CHUNK_ELEMENTS, DenseRunning, grid_tables
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "BatchPlan",
    "RowPlans",
    "batch_row_plan",
    "new_loads",
    "plan_batch",
    "plan_rows",
    "plan_rows_unique",
    "row_extra",
    "to_batch_plan",
    "unique_rows",
]

_LOG_P_SLACK = 1e-12


class RunningLookup(Protocol):
    """What the planner needs from :class:`~labsched.baselines.labs.il_tables.RunningPlans`."""

    r: int
    width: int

    @property
    def g(self) -> np.ndarray: ...

    @property
    def b(self) -> np.ndarray: ...

    @property
    def g_rows(self) -> np.ndarray: ...

    @property
    def b_rows(self) -> np.ndarray: ...

    def columns(self, k_index: np.ndarray, a: np.ndarray) -> np.ndarray: ...


@dataclass
class RowPlans:
    """Compact per-row plans: new labs ``chosen`` (``q``/``q + 1`` experiments each, ``n_big`` of
    the larger), running labs by :func:`row_extra`; ``total`` is the log-safety, ``safe`` whether
    it reaches ``p``."""

    chosen: np.ndarray
    q: np.ndarray
    rem: np.ndarray
    n_big: np.ndarray
    total: np.ndarray
    safe: np.ndarray


@dataclass
class BatchPlan:
    """Per-row IL plans made by :func:`plan_batch`.

    Attributes:
        n_new: ``(R,)`` new labs opened.
        run_extra: ``(R, r)`` new experiments given to each running lab (-1: not running).
        run_first: ``(R, r)`` boundary index ending each running lab's current stage.
        new_loads: ``(R, K_max)`` experiments per new lab (0: lab not opened).
        safe: ``(R,)`` whether the plan is p-safe.
        log_safety: ``(R,)`` log-probability of a safe execution of the plan.
    """

    n_new: np.ndarray
    run_extra: np.ndarray
    run_first: np.ndarray
    new_loads: np.ndarray
    safe: np.ndarray
    log_safety: np.ndarray


def row_extra(q: np.ndarray, rem: np.ndarray, still: np.ndarray) -> np.ndarray:
    """``(R, r)`` new experiments of each running lab (-1 where it is not running)."""
    rank = np.cumsum(still, axis=1) - 1
    extra = q[:, None] - 1 + (rank < rem[:, None])
    return np.where(still, extra, -1)


def new_loads(rp: RowPlans, width: int | None = None) -> np.ndarray:
    """``(R, width)`` experiments per new lab (default width: the largest ``chosen``)."""
    w = int(rp.chosen.max(initial=0)) if width is None else width
    slot = np.arange(w)[None, :]
    q = rp.q[:, None]
    return np.where(slot < rp.n_big[:, None], q + 1, np.where(slot < rp.chosen[:, None], q, 0))


def _new_lab_terms(
    spec: LabSpec, m: int, rr: np.ndarray, k_new: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loads and the new labs' log-safety terms for ``k_new`` new labs (negative: skip).

    Returns:
        ``(big, small, q, rem, n_big)``: the terms of the ``n_big`` labs with ``q + 1``
        experiments and of the others (with ``q``), then the loads.
    """
    tab = grid_tables(spec)
    q, rem = np.divmod(m + rr, np.maximum(rr + k_new, 1))
    n_big = np.minimum(np.maximum(rem - rr, 0), k_new)
    n_small = k_new - n_big
    g = np.broadcast_to(g, k_new.shape)
    h_big, h_small = np.zeros(k_new.shape), np.zeros(k_new.shape)
    big, small = (n_big > 0) & (k_new >= 0), (n_small > 0) & (k_new >= 0)
    h_big[big] = tab.at(q[big] + 1, g[big])
    h_small[small] = tab.at(q[small], g[small])
    with np.errstate(invalid="ignore"):
        return np.where(big, n_big * h_big, 0.0), np.where(small, n_small * h_small, 0.0), q, rem, n_big


def _evaluate(
    spec: LabSpec,
    m: int,
    rows: np.ndarray,
    k_new: np.ndarray,
    plan_g: np.ndarray,
    still: np.ndarray,
    k_index: np.ndarray,
    running: RunningLookup,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-safety of rows ``rows`` with ``k_new`` (``(len(rows), B)``; negative: skip) new labs.

    Returns:
        ``(total, q, rem, n_big)``, each ``(len(rows), B)``.
    """
    st = still[rows]
    rr = st.sum(axis=1)[:, None]
    big, small, q, rem, n_big = _new_lab_terms(spec, m, rr, k_new, plan_g[rows][:, None])
    if st.shape[1]:
        # Each running lab gets q - 1 or q (the first rem in rank order) new experiments: two
        # (plan time, load) pairs per (row, count), each gathering all r labs' values at once.
        rank = np.cumsum(st, axis=1) - 1
        top = running.width - 1
        valid = k_new >= 0
        kk = np.broadcast_to(k_index[rows][:, None], k_new.shape)
        low = running.columns(kk, np.where(valid, np.clip(q - 1, 0, top), 0))
        high = running.columns(kk, np.where(valid & (rem > 0), np.clip(q, 0, top), 0))
        use = st[:, None, :] & valid[:, :, None]
        first = rank[:, None, :] < rem[:, :, None]  # (R, B, r): the labs that get q
        g_rows = running.g_rows  # after the look-ups, which may grow it
        vals = np.where(use & first, g_rows[high], np.where(use, g_rows[low], 0.0))
        total = vals.sum(axis=2)
    else:
        total = np.zeros(k_new.shape)
    return total + big + small, q, rem, n_big


def _candidates(
    spec: LabSpec,
    m: int,
    rows: np.ndarray,
    plan_g: np.ndarray,
    n_run: np.ndarray,
    k_lo: np.ndarray,
    k_hi: np.ndarray,
) -> np.ndarray:
    """``(len(rows), span)``: numbers of new labs ``k_lo + i <= k_hi`` that may be safe.

    The running labs' terms are never positive and floating-point addition is monotone, so
    ``(0 + new-lab terms)`` bounds the total from above: where it is below ``log p`` the
    number is unsafe without looking at the running labs.
    """
    log_p = math.log(spec.p_safe) - _LOG_P_SLACK
    # The bound depends on the row through (plan time, running labs) only: once per distinct pair.
    n_r = n_run[rows].astype(np.int64)
    key = plan_g[rows].astype(np.int64) * (int(n_r.max(initial=0)) + 1) + n_r
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    u = rows[first]
    span = int((k_hi[u] - k_lo[u]).max(initial=-1)) + 1
    ks = k_lo[u][:, None] + np.arange(max(span, 0))[None, :]
    valid = ks <= k_hi[u][:, None]
    big, small, *_ = _new_lab_terms(spec, m, n_run[u][:, None], np.where(valid, ks, -1), plan_g[u][:, None])
    return (valid & ((0.0 + big) + small >= log_p))[inverse.reshape(-1)]


def plan_rows(
    spec: LabSpec,
    remaining: int,
    plan_g: np.ndarray,
    still: np.ndarray,
    k_index: np.ndarray,
    running: RunningLookup,
    *,
    totals: np.ndarray | None = None,
) -> RowPlans:
    """The planner (see the module docstring) for every row, without deduplication.

    The numbers of new labs that may be safe (:func:`_candidates`) are tried in blocks (as
    many at once as :data:`~labsched.baselines.labs.il_tables.CHUNK_ELEMENTS` allows),
    smallest first; a row leaves the search at its first safe number.

    Args:
        spec: the problem.
        remaining: ``m``, experiments not started (the same in every row).
        plan_g: ``(R,)`` grid index of each row's plan time (``< N``).
        still: ``(R, r)`` running experiment ``j`` is still running at the plan time.
        k_index: ``(R,)`` index of each row's plan time among the running lookup's plan points.
        running: the running labs' first stages.
        totals: ``(R,)`` rows whose log-safety is wanted even when no plan is safe (default:
            all); the others get NaN then (their plan and ``safe=False`` are exact).
    """
    n_rows, r = still.shape
    m = int(remaining)
    log_p = math.log(spec.p_safe) - _LOG_P_SLACK
    n_run = still.sum(axis=1)
    k_hi = np.minimum(spec.n_labs - n_run, m)
    k_lo = np.where((n_run > 0) | (m == 0), 0, 1)
    chosen = np.where(m > 0, np.maximum(k_hi, k_lo), 0)
    found = np.full(n_rows, np.nan)  # log-safety of the rows found safe by the search
    todo = np.flatnonzero((k_lo <= k_hi) & (m > 0))
    span = int((k_hi[todo] - k_lo[todo]).max(initial=-1)) + 1
    step = max(1, CHUNK_ELEMENTS // max(span, 1))
    for lo in range(0, todo.size, step):
        rows = todo[lo : lo + step]
        left = _candidates(spec, m, rows, plan_g, n_run, k_lo, k_hi)
        act = np.flatnonzero(left.any(axis=1))
        while act.size:
            width = max(1, CHUNK_ELEMENTS // (act.size * max(r, 1)))
            rank = np.cumsum(left[act], axis=1)
            take = left[act] & (rank <= width)
            ii, pos = np.nonzero(take)
            ks = np.full((act.size, int(rank[:, -1].clip(max=width).max())), -1)
            ks[ii, rank[ii, pos] - 1] = k_lo[rows[act]][ii] + pos
            total, *_ = _evaluate(spec, m, rows[act], ks, plan_g, still, k_index, running)
            ok = (ks >= 0) & (total >= log_p)
            hit = ok.any(axis=1)
            at = ok[hit].argmax(axis=1)
            chosen[rows[act[hit]]] = ks[hit, at]
            found[rows[act[hit]]] = total[hit, at]
            left[act] &= ~take
            act = act[~hit & left[act].any(axis=1)]
    rr = n_run
    q, rem = np.divmod(m + rr, np.maximum(rr + chosen, 1))
    n_big = np.minimum(np.maximum(rem - rr, 0), chosen)
    total = found.copy()
    searched = np.zeros(n_rows, dtype=bool)
    searched[todo] = True
    need = np.isnan(found) & (~searched | (True if totals is None else np.asarray(totals, dtype=bool)))
    rows = np.flatnonzero(need)
    if rows.size:
        total[rows] = _evaluate(spec, m, rows, chosen[rows][:, None], plan_g, still, k_index, running)[0][
            :, 0
        ]
    return RowPlans(chosen, q, rem, n_big, total, ~np.isnan(found) | (total >= log_p))


def unique_rows(plan_g: np.ndarray, still: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of the distinct ``(plan time, still)`` rows (rows with the same plan)."""
    r = still.shape[1]
    if r + int(plan_g.max(initial=0)).bit_length() <= 62:  # one int64 key per row
        bits = (still.astype(np.int64) << np.arange(r, dtype=np.int64)).sum(axis=1)
        key = (plan_g.astype(np.int64) << r) | bits
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        packed = np.concatenate(
            [plan_g.astype(np.int64).view(np.uint8).reshape(-1, 8), np.packbits(still, axis=1)], axis=1
        )
        _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def plan_rows_unique(
    spec: LabSpec,
    remaining: int,
    plan_g: np.ndarray,
    still: np.ndarray,
    k_index: np.ndarray,
    running: RunningLookup,
    *,
    totals: np.ndarray | None = None,
) -> RowPlans:
    """:func:`plan_rows`, planning rows with the same plan time and running subset once."""
    if still.shape[0] > 8:
        first, inverse = unique_rows(plan_g, still)
        if first.size < still.shape[0]:
            wanted = None
            if totals is not None:  # a distinct row's total is wanted if any of its copies' is
                wanted = np.zeros(first.size, dtype=bool)
                np.logical_or.at(wanted, inverse, np.asarray(totals, dtype=bool))
            rp = plan_rows(
                spec, remaining, plan_g[first], still[first], k_index[first], running, totals=wanted
            )
            return RowPlans(*(getattr(rp, f)[inverse] for f in RowPlans.__dataclass_fields__))
    return plan_rows(spec, remaining, plan_g, still, k_index, running, totals=totals)


def to_batch_plan(
    rp: RowPlans, still: np.ndarray, k_index: np.ndarray, running: RunningLookup, n_points: int
) -> BatchPlan:
    """The :class:`BatchPlan` of compact row plans (``n_points``: the grid's horizon index ``N``)."""
    extra = row_extra(rp.q, rp.rem, still)
    first = np.full(still.shape, n_points, dtype=np.int64)
    if still.shape[1]:
        top = running.width - 1
        low = running.columns(k_index, np.clip(rp.q - 1, 0, top))
        high = running.columns(k_index, np.where(rp.rem > 0, np.clip(rp.q, 0, top), 0))
        b_rows = running.b_rows
        rank = np.cumsum(still, axis=1) - 1
        first = np.where(still, np.where(rank < rp.rem[:, None], b_rows[high], b_rows[low]), n_points)
    return BatchPlan(rp.chosen, extra, first, new_loads(rp), rp.safe, rp.total)


def plan_batch(
    spec: LabSpec,
    remaining: int,
    plan_g: np.ndarray,
    still: np.ndarray,
    g_tab: np.ndarray,
    b_tab: np.ndarray,
    k_index: np.ndarray,
) -> BatchPlan:
    """:func:`~labsched.baselines.labs.independent_lab.plan_from_state` for many states at once.

    Args:
        spec: the problem.
        remaining: ``m``, experiments not started (the same in every row).
        plan_g: ``(R,)`` grid index of each row's plan time (``< N``).
        still: ``(R, r)`` running experiment ``j`` is still running at the plan time.
        g_tab: ``(r, K, A1)`` from :func:`~labsched.baselines.labs.il_tables.running_tables`.
        b_tab: ``(r, K, A1)`` from the same.
        k_index: ``(R,)`` index of each row's plan time in the tables' plan points.

    Returns:
        A :class:`BatchPlan` (a running lab not running at its row's plan time has extra -1 and
        first boundary ``N``).
    """
    m = int(remaining)
    if still.shape[1] and g_tab.shape[2] < m + 1:
        raise ValueError(f"running tables cover {g_tab.shape[2] - 1} new experiments per lab, {m} are needed")
    running = DenseRunning(g_tab, b_tab)
    rp = plan_rows_unique(spec, m, plan_g, still, k_index, running)
    return to_batch_plan(rp, still, k_index, running, grid_tables(spec).n_points)


def batch_row_plan(
    spec: LabSpec,
    bp: BatchPlan,
    row: int,
    plan_g: int,
    elapsed: np.ndarray,
    running: RunningLookup,
    k_index: int,
) -> ILPlan:
    """The :class:`~labsched.baselines.labs.independent_lab.ILPlan` of one row of a batch plan.

    Args:
        spec: the problem.
        bp: the batch plan.
        row: which row.
        plan_g: grid index of that row's plan time.
        elapsed: ``(r,)`` elapsed times *at the plan time* of the running experiments (sorted
            longest-running first, as given to the running lookup).
        running: the running labs' first stages the plan was made with.
        k_index: index of ``plan_g`` among the lookup's plan points.
    """
    tab = grid_tables(spec)
    eps, h = spec.epoch, spec.horizon
    t = float(tab.times[plan_g])
    labs: list[LabSchedule] = []
    for j in range(bp.run_extra.shape[1]):
        a = int(bp.run_extra[row, j])
        if a < 0:
            continue
        b1 = float(tab.times[bp.run_first[row, j]])
        if a < running.width:
            col = int(running.columns(np.array([k_index]), np.array([a]))[0])
            logp = float(running.g[j, col])
        else:
            logp = -math.inf
        bounds = (b1, *stage_boundaries(b1, h, a, eps)) if a else (b1,)
        labs.append(LabSchedule(a, bounds, j, float(elapsed[j]), logp))
    for load in bp.new_loads[row]:
        if load > 0:
            hs = float(tab.row(int(load))[plan_g])
            labs.append(LabSchedule(int(load), stage_boundaries(t, h, int(load), eps), None, None, hs))
    lp = float(bp.log_safety[row])
    notes = [f"intermediate stage boundaries snapped to the epoch grid ({eps})"]
    if not bp.safe[row]:
        notes.append(
            f"best effort: no p-safe IL plan exists (best P(safe)={math.exp(lp):.4g} < p={spec.p_safe})"
        )
    return ILPlan(t, h, tuple(labs), math.exp(lp), spec.p_safe, bool(bp.safe[row]), eps, tuple(notes))
