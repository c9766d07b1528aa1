"""Staged plans on the decision grid (:func:`snap_plan`) and Algorithm 1 (:func:`plan_staged`).

See :mod:`labsched.baselines.labs.staged` for the whole method and the measured effect of
planning on the grid.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from labsched.baselines.labs.staged_plan import StagedPlan, max_prob_uniform
from labsched.envs.labs.spec import LabSpec

__all__ = ["SnapMode", "plan_staged", "snap_plan"]

SnapMode = Literal["optimal", "ceil", "floor", "nearest"]

#: Largest ``stages * grid_points**2`` the exact grid dynamic programme may cost.
_DP_BUDGET = 10_000_000
#: Tie-break weight (per grid step away from the continuous plan) in the grid programme.
_TIE_BREAK = 1e-12


# --------------------------------------------------------------------------------------------
# Decision-grid plans
# --------------------------------------------------------------------------------------------


def _grid_slots(spec: LabSpec) -> int:
    """Index ``J`` of the last decision-grid point strictly before the horizon."""
    eps, h = spec.epoch, spec.horizon
    j = math.floor(h / eps + 1e-9)
    while j > 0 and j * eps >= h * (1.0 - 1e-9):
        j -= 1
    return j


def _plan_from_grid_starts(spec: LabSpec, plan: StagedPlan, starts: list[int], notes: str) -> StagedPlan:
    eps, h = spec.epoch, spec.horizon
    times = [j * eps for j in starts] + [h]
    stages = [(n_i, max(times[i + 1] - times[i], 0.0)) for i, n_i in enumerate(plan.sizes)]
    return StagedPlan.for_spec(spec, stages, notes)


def _optimal_grid_starts(spec: LabSpec, plan: StagedPlan, last: int) -> list[int] | None:
    """Exact max-probability grid start indices for ``plan.sizes`` (dynamic programme)."""
    eps, h = spec.epoch, spec.horizon
    sizes = np.asarray(plan.sizes, dtype=float)
    n_st = sizes.size
    cont = np.asarray(plan.start_times) / eps
    if n_st == 1:
        return [0]
    g = last + 1
    if (n_st - 1) * g * g > _DP_BUDGET:
        return None
    idx = np.arange(g)
    with np.errstate(invalid="ignore"):
        lp = np.asarray(plan.duration.logcdf(idx * eps), dtype=float)  # a stage of k grid steps
        lp_last = np.asarray(plan.duration.logcdf(np.maximum(h - idx * eps, 0.0)), dtype=float)
    lp[0] = -np.inf  # stages must have distinct start points
    diff = idx[:, None] - idx[None, :]  # [j, j'] = j - j'
    step_lp = np.where(diff >= 1, lp[np.clip(diff, 0, g - 1)], -np.inf)
    # val[j]: best log-probability of stages 1..i given stage i+1 starts at grid index j.
    val = sizes[0] * lp - _TIE_BREAK * np.abs(idx - cont[1])
    backs = []
    for i in range(1, n_st - 1):
        m = val[None, :] + sizes[i] * step_lp
        arg = np.argmax(m, axis=1)
        val = m[idx, arg] - _TIE_BREAK * np.abs(idx - cont[i + 1])
        backs.append(arg)
    total = val + sizes[-1] * lp_last
    j = int(np.argmax(total))
    if not total[j] > -np.inf:
        return None
    starts = [j]
    for arg in reversed(backs):
        j = int(arg[j])
        starts.append(j)
    starts.append(0)
    return starts[::-1]


def snap_plan(spec: LabSpec, plan: StagedPlan, mode: SnapMode = "optimal") -> StagedPlan:
    """Move a plan's stage start times onto the decision grid ``0, epoch, 2 epoch, ...``.

    The environment can only start experiments at decision points, so the schedule it
    executes has grid start times; the last stage always ends at the horizon.

    Modes:
        * ``"ceil"``: each start moves to the next grid point: what replaying an off-grid
          plan executes when earlier stages were safe.
        * ``"floor"``: each start moves to the previous grid point (time passes from a stage
          to the one before it; the last stage gains).
        * ``"nearest"``: each start moves to the nearest grid point.
        * ``"optimal"``: grid start times maximising the exact probability of a safe
          execution for the plan's stage sizes, by a dynamic programme over grid indices
          (a max-plus recursion over stages, ``O(N G^2)`` for ``G`` grid points; ties go to
          the starts nearest the continuous plan). If the programme would be too large or
          the grid admits no positive probability, ``"nearest"`` is used and noted.

    Args:
        spec: the problem (its ``epoch`` defines the grid).
        plan: the plan to move, usually from :func:`max_prob_uniform`.
        mode: one of the modes above.

    Returns:
        A plan with the same stage sizes and grid start times.

    Raises:
        ValueError: if the plan has more stages than grid points before the horizon (it
            cannot be executed with distinct stage start times), or for an unknown mode.
    """
    last = _grid_slots(spec)
    if plan.n_stages > last + 1:
        raise ValueError(
            f"{plan.n_stages} stages cannot start at distinct decision points: only {last + 1} "
            f"grid points (epoch={spec.epoch}) lie before the horizon {spec.horizon}"
        )
    eps = spec.epoch
    cont = [s / eps for s in plan.start_times]
    base = plan.notes + "; " if plan.notes else ""
    if mode == "optimal":
        found = _optimal_grid_starts(spec, plan, last)
        if found is not None:
            return _plan_from_grid_starts(spec, plan, found, base + "stage starts optimised on the grid")
        mode = "nearest"
        base += "grid programme unavailable (too large or zero probability), nearest grid points used; "
    if mode == "ceil":
        starts = [math.ceil(c - 1e-9) for c in cont]
    elif mode == "floor":
        starts = [math.floor(c + 1e-9) for c in cont]
    elif mode == "nearest":
        starts = [math.floor(c + 0.5) for c in cont]
    else:
        raise ValueError(f"unknown snap mode {mode!r}; use 'optimal', 'ceil', 'floor' or 'nearest'")
    starts = [min(max(j, 0), last) for j in starts]
    return _plan_from_grid_starts(spec, plan, starts, base + f"stage starts snapped to the grid ({mode})")


# --------------------------------------------------------------------------------------------
# Algorithm 1
# --------------------------------------------------------------------------------------------


def plan_staged(spec: LabSpec, *, snap_to_grid: bool = False) -> StagedPlan:
    """Algorithm 1: the p-safe uniform staged schedule with the most stages.

    ``N`` starts at ``ceil(n / l)`` (the fewest stages that fit ``n`` experiments on ``l``
    labs) and increases while :func:`max_prob_uniform` stays p-safe; the last p-safe plan is
    returned. More stages of a uniform schedule always mean a strictly higher CPE(S). As in the
    paper, the search stops at the first ``N`` that is not p-safe. ``N`` never exceeds ``n``
    (one experiment per stage), so the loop always terminates.

    For a log-concave CDF this returns a maximum-stage p-safe uniform schedule whenever one
    exists (Theorem 1). If even ``N = ceil(n / l)`` is not p-safe, that plan is returned as a
    best effort: its ``safe`` is False and ``notes`` says so.

    Args:
        spec: the problem.
        snap_to_grid: judge and return plans whose stage starts lie on the decision grid
            (``snap_plan(..., mode="optimal")`` applied to each candidate); ``N`` stops growing
            when the grid plan is no longer p-safe or has more stages than grid points.

    Returns:
        The plan.
    """
    n, n_labs = spec.n_experiments, spec.n_labs
    n0 = math.ceil(n / n_labs)

    def candidate(n_stages: int) -> StagedPlan | None:
        plan = max_prob_uniform(spec, n_stages)
        if not snap_to_grid:
            return plan
        try:
            return snap_plan(spec, plan, "optimal")
        except ValueError:
            return None

    best = candidate(n0)
    if best is None:  # more stages than decision points even at the minimum
        plan = max_prob_uniform(spec, n0)
        return dataclasses.replace(
            plan,
            notes=_join(
                plan.notes,
                f"best effort: the minimum {n0} stages cannot start at distinct decision points; "
                "plan not on the grid",
            ),
        )
    if not best.safe:
        return dataclasses.replace(
            best,
            notes=_join(
                best.notes,
                f"best effort: no uniform schedule is p-safe (N = ceil(n/l) = {n0} reaches "
                f"P(safe) = {best.p_safe_probability:.4g} < p = {spec.p_safe})",
            ),
        )
    for n_stages in range(n0 + 1, n + 1):
        cand = candidate(n_stages)
        if cand is None or not cand.safe:
            break
        best = cand
    return best


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
