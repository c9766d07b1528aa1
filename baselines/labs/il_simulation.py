"""Vectorised Monte-Carlo machinery for IL schedules (used by policy switching).

Everything here works on a batch of ``R`` simulated executions ("rows") at once, with one NumPy
operation per *stage* or per *candidate number of labs*, never a Python loop per row.

Conventions shared with :mod:`labsched.baselines.labs.independent_lab` (snapped plans):

* Boundary indices ``g = 0 .. N`` name the times ``tau_g = g * epoch`` for ``g < N`` and
  ``tau_N = h`` (``N = ceil(h / epoch)``): the decision grid plus the horizon.
* ``Hs[a, g]`` is the log-probability that ``a`` stages splitting ``[tau_g, h]`` evenly on the
  grid (:func:`~labsched.baselines.labs.independent_lab.stage_boundaries`) all hold their
  experiments; ``Hs[0, g]`` is 0 at ``g = N`` and ``-inf`` elsewhere.
* A *lab* of a simulated plan is described by its ideal clock (planned end of its current
  stage), the completion time of its current experiment (``-inf`` when idle) and the lengths of
  the stages still to start; :func:`simulate_stages` replays it with the tracker's semantics
  (stage end = max(ideal end, completion); start at the completion after an overrun, else at the
  first grid point at or after the stage end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from labsched.baselines.labs.il_replay import cpe_of_new, simulate_plan, simulate_stages, split_lengths
from labsched.baselines.labs.independent_lab import GRID_TOL, ILPlan, LabSchedule, stage_boundaries
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "BatchPlan",
    "GridTables",
    "batch_row_plan",
    "cpe_of_new",
    "grid_tables",
    "plan_batch",
    "running_tables",
    "simulate_plan",
    "simulate_stages",
    "split_lengths",
]

_LOG_P_SLACK = 1e-12


def _logcdf(dist: DurationModel, t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(dist.logcdf(np.maximum(t, 0.0)), dtype=float)
    return np.where(t <= 0.0, -np.inf, out)


def _logsf(dist: DurationModel, t: np.ndarray) -> np.ndarray:
    logsf = getattr(dist, "logsf", None)
    if logsf is not None:
        return np.asarray(logsf(t), dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(dist.sf(t), dtype=float))


@dataclass
class GridTables:
    """Per-spec tables on the decision grid (see the module docstring).

    Attributes:
        spec: the problem.
        n_points: ``N``, index of the horizon in :attr:`times`.
        times: ``(N + 1,)`` boundary times ``tau_g``.
    """

    spec: LabSpec
    n_points: int
    times: np.ndarray
    _hs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def hs(self, a_max: int) -> np.ndarray:
        """``Hs[a, g]`` for ``a = 0 .. a_max`` (extended lazily and cached)."""
        if self._hs.shape[0] <= a_max:
            self._hs = self._build(max(a_max, 2 * self._hs.shape[0], 4))
        return self._hs

    def _build(self, a_max: int) -> np.ndarray:
        spec, tau, n = self.spec, self.times, self.n_points
        h, eps = spec.horizon, spec.epoch
        out = np.full((a_max + 1, n + 1), -np.inf)
        out[0, n] = 0.0
        for a in range(1, a_max + 1):
            j = np.arange(1, a)
            inner = tau[:, None] + (h - tau[:, None]) * j[None, :] / a
            inner = np.minimum(np.ceil(inner / eps - GRID_TOL) * eps, h)
            b = np.concatenate([tau[:, None], inner, np.full((n + 1, 1), h)], axis=1)
            out[a] = _logcdf(spec.duration, np.diff(b, axis=1)).sum(axis=1)
        return out


@lru_cache(maxsize=32)
def grid_tables(spec: LabSpec) -> GridTables:
    """The (cached) :class:`GridTables` of ``spec``."""
    eps, h = spec.epoch, spec.horizon
    n = int(math.ceil(h / eps - GRID_TOL))
    times = np.minimum(np.arange(n + 1) * eps, h)
    times[n] = h
    return GridTables(spec, n, times)


def running_tables(
    spec: LabSpec, g0: int, elapsed: np.ndarray, plan_points: np.ndarray, a_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best plan of each running lab for each plan time and number of new experiments.

    For running experiment ``j`` (elapsed ``elapsed[j]`` at the decision time ``tau_{g0}``), plan
    time ``tau_g`` (``g`` in ``plan_points``) and ``a`` new experiments, the first stage may end at
    any boundary ``b > g``; its value is ``log P(D <= e_j + tau_b - tau_g0 | D > e_j + tau_g -
    tau_g0) + Hs[a, b]``.

    Args:
        spec: the problem.
        g0: grid index of the decision time.
        elapsed: ``(r,)`` elapsed times at the decision time.
        plan_points: ``(K,)`` grid indices (``g0 <= g < N``) of the plan times needed.
        a_max: largest number of new experiments per lab needed.

    Returns:
        ``(G, B)``: ``(r, K, a_max + 1)`` best log-safety and the boundary index achieving it.
    """
    tab = grid_tables(spec)
    tau = tab.times[g0:]  # boundary times from the decision time on
    hs = tab.hs(a_max)[: a_max + 1, g0:]  # (A1, Nb)
    rel = plan_points - g0  # (K,)
    ls = _logsf(spec.duration, elapsed[:, None] + (tau - tau[0])[None, :])  # (r, Nb)
    ls_k = ls[:, rel]  # (r, K)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.exp(ls[:, None, :] - ls_k[:, :, None])  # (r, K, Nb)
        logp = np.log1p(-np.minimum(ratio, 1.0))
    dead = ~np.isfinite(ls_k)
    logp = np.where(dead[:, :, None], 0.0, logp)
    later = np.arange(tau.size)[None, :] > rel[:, None]  # (K, Nb)
    logp = np.where(later[None, :, :], logp, -np.inf)
    vals = logp[:, :, None, :] + hs[None, None, :, :]  # (r, K, A1, Nb)
    best = vals.argmax(axis=3)
    g_best = np.take_along_axis(vals, best[..., None], axis=3)[..., 0]
    # No feasible first boundary: keep the stage open to the horizon (as the scalar planner does).
    b_abs = np.where(np.isneginf(g_best), tab.n_points, best + g0)
    return g_best, b_abs


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


def _plan_rows(
    spec: LabSpec,
    remaining: int,
    plan_g: np.ndarray,
    still: np.ndarray,
    g_tab: np.ndarray,
    b_tab: np.ndarray,
    k_index: np.ndarray,
) -> BatchPlan:
    """The planner of :func:`plan_batch`, without deduplication.

    Every candidate number of new labs is evaluated for every row at once (arrays of shape
    ``(R, k_max + 1, r)``), and each row keeps the smallest safe one.
    """
    n_rows, r = still.shape
    m = int(remaining)
    tab = grid_tables(spec)
    log_p = math.log(spec.p_safe) - _LOG_P_SLACK
    n_run = still.sum(axis=1)
    rank = np.cumsum(still, axis=1) - 1
    k_hi = np.minimum(spec.n_labs - n_run, m)
    k_lo = np.where((n_run > 0) | (m == 0), 0, 1)
    a1 = g_tab.shape[2]
    if r and a1 < m + 1:
        raise ValueError(f"running tables cover {a1 - 1} new experiments per lab, {m} are needed")
    hs = tab.hs(m + 2)
    a_top = hs.shape[0] - 1
    flat_g = g_tab.reshape(-1)
    offs = (np.arange(r) * (g_tab.shape[1] * a1))[None, :] + (k_index * a1)[:, None]  # (R, r)
    g_col = plan_g[:, None]

    def evaluate(k_new: np.ndarray) -> tuple[np.ndarray, ...]:
        """Log-safety of every row with ``k_new`` (shape ``(R, K)``) new labs."""
        rr = n_run[:, None]
        q, rem = np.divmod(m + rr, np.maximum(rr + k_new, 1))
        extra = q[:, :, None] - 1 + (rank[:, None, :] < rem[:, :, None])  # (R, K, r)
        if r:
            a = np.minimum(np.maximum(extra, 0), a1 - 1)
            vals = flat_g[offs[:, None, :] + a]
            total = np.where(still[:, None, :], vals, 0.0).sum(axis=2)
        else:
            total = np.zeros(k_new.shape)
        n_big = np.minimum(np.maximum(rem - rr, 0), k_new)
        n_small = k_new - n_big
        h_big = hs[np.minimum(q + 1, a_top), g_col]
        h_small = hs[np.minimum(q, a_top), g_col]
        with np.errstate(invalid="ignore"):
            total = (
                total
                + np.where(n_big > 0, n_big * h_big, 0.0)
                + np.where(n_small > 0, n_small * h_small, 0.0)
            )
        return total, extra, q, n_big

    if m > 0:
        ks = np.arange(int(k_hi.max(initial=0)) + 1)[None, :]
        total, *_ = evaluate(np.broadcast_to(ks, (n_rows, ks.shape[1])))
        good = (ks >= k_lo[:, None]) & (ks <= k_hi[:, None]) & (total >= log_p)
        chosen = np.where(good.any(axis=1), good.argmax(axis=1), np.maximum(k_hi, k_lo))
    else:
        chosen = np.zeros(n_rows, dtype=int)
    total, extra, q, n_big = (x[:, 0] for x in evaluate(chosen[:, None]))
    extra = np.where(still, extra, -1)
    slot = np.arange(int(chosen.max(initial=0)))[None, :]
    new_loads = np.where(
        slot < n_big[:, None], q[:, None] + 1, np.where(slot < chosen[:, None], q[:, None], 0)
    )
    if r:
        a = np.minimum(np.maximum(extra, 0), a1 - 1)
        first = np.where(still, b_tab.reshape(-1)[offs + a], tab.n_points)
    else:
        first = np.zeros((n_rows, 0), dtype=int)
    return BatchPlan(chosen, extra, first, new_loads, total >= log_p, total)


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

    All rows share the remaining budget ``m`` and the set of experiments running at the
    decision time (sorted longest-running first); each row has its own plan time and its own
    subset ``still`` of those experiments still running then. The rule is the scalar planner's:
    even load over reused + new labs, larger loads to running labs longest-running first, the
    fewest new labs that reach ``p``, else the most possible. Rows with the same plan time and
    the same subset are planned once.

    Args:
        spec: the problem.
        remaining: ``m``, experiments not started (the same in every row).
        plan_g: ``(R,)`` grid index of each row's plan time (``< N``).
        still: ``(R, r)`` running experiment ``j`` is still running at the plan time.
        g_tab: ``(r, K, A1)`` from :func:`running_tables`.
        b_tab: ``(r, K, A1)`` from :func:`running_tables`.
        k_index: ``(R,)`` index of each row's plan time in the tables' plan points.

    Returns:
        A :class:`BatchPlan`.
    """
    n_rows, r = still.shape
    if n_rows > 8 and r <= 48:
        key = (plan_g.astype(np.int64) << r) | (still.astype(np.int64) << np.arange(r, dtype=np.int64)).sum(
            axis=1
        )
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        if first.size < n_rows:
            bp = _plan_rows(spec, remaining, plan_g[first], still[first], g_tab, b_tab, k_index[first])
            return BatchPlan(
                bp.n_new[inverse],
                bp.run_extra[inverse],
                bp.run_first[inverse],
                bp.new_loads[inverse],
                bp.safe[inverse],
                bp.log_safety[inverse],
            )
    return _plan_rows(spec, remaining, plan_g, still, g_tab, b_tab, k_index)


def batch_row_plan(
    spec: LabSpec,
    bp: BatchPlan,
    row: int,
    plan_g: int,
    elapsed: np.ndarray,
    g_tab: np.ndarray,
    k_index: int,
) -> ILPlan:
    """The :class:`~labsched.baselines.labs.independent_lab.ILPlan` of one row of a batch plan.

    Args:
        spec: the problem.
        bp: the batch plan.
        row: which row.
        plan_g: grid index of that row's plan time.
        elapsed: ``(r,)`` elapsed times *at the plan time* of the running experiments (sorted
            longest-running first, as given to :func:`running_tables`).
        g_tab: the tables' best log-safety ``(r, K, A1)``.
        k_index: index of ``plan_g`` among the tables' plan points.
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
        logp = float(g_tab[j, k_index, a]) if a < g_tab.shape[2] else -math.inf
        bounds = (b1, *stage_boundaries(b1, h, a, eps)) if a else (b1,)
        labs.append(LabSchedule(a, bounds, j, float(elapsed[j]), logp))
    hs = tab.hs(int(bp.new_loads[row].max(initial=0)) + 1)
    for load in bp.new_loads[row]:
        if load > 0:
            labs.append(
                LabSchedule(
                    int(load), stage_boundaries(t, h, int(load), eps), None, None, float(hs[load, plan_g])
                )
            )
    lp = float(bp.log_safety[row])
    notes = [f"intermediate stage boundaries snapped to the epoch grid ({eps})"]
    if not bp.safe[row]:
        notes.append(
            f"best effort: no p-safe IL plan exists (best P(safe)={math.exp(lp):.4g} < p={spec.p_safe})"
        )
    return ILPlan(t, h, tuple(labs), math.exp(lp), spec.p_safe, bool(bp.safe[row]), eps, tuple(notes))
