"""Planning independent-lab schedules: the offline plan and the plan from a mid-episode state.

:func:`plan_independent_labs` is the paper's offline plan (fewest labs whose even plan is
``p``-safe); :func:`plan_from_state` plans from a running state (reused labs first), as policy
switching needs. The distribution and stage-length rules are in the module docstring of
:mod:`labsched.baselines.labs.independent_lab`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from labsched.baselines.labs.il_plan import (
    GRID_TOL,
    ILPlan,
    LabSchedule,
    _lengths,
    _logcdf,
    grid_ceil,
    log_cond_cdf,
    stage_boundaries,
)
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = ["plan_from_state", "plan_independent_labs"]

#: Slack when comparing a log-probability with ``log p`` (absorbs rounding only).
_LOG_P_SLACK = 1e-12


def _new_lab(
    dist: DurationModel, start: float, horizon: float, count: int, epoch: float | None
) -> LabSchedule:
    bounds = stage_boundaries(start, horizon, count, epoch)
    logp = float(np.sum(_logcdf(dist, _lengths(start, bounds)))) if count else 0.0
    return LabSchedule(count, bounds, None, None, logp)


def _running_lab(
    dist: DurationModel,
    start: float,
    horizon: float,
    index: int,
    elapsed: float,
    count: int,
    epoch: float | None,
) -> LabSchedule:
    """Best plan of a reused lab: choose the end of its current stage, split the rest evenly."""
    if count == 0:
        logp = float(log_cond_cdf(dist, elapsed, horizon - start))
        return LabSchedule(0, (float(horizon),), index, float(elapsed), logp)
    if epoch is not None:
        g_first = int(np.ceil(start / epoch - GRID_TOL))
        first = (g_first + np.arange(0, int(math.ceil(horizon / epoch)) + 2)) * epoch
        first = first[(first > start + GRID_TOL * epoch) & (first < horizon - GRID_TOL * epoch)]
        if first.size == 0:
            bounds = (float(horizon),) * (count + 1)
            return LabSchedule(count, bounds, index, float(elapsed), -math.inf)
        values = log_cond_cdf(dist, elapsed, first - start)
        rest = np.empty((first.size, count))
        for j in range(1, count):
            rest[:, j - 1] = np.minimum(grid_ceil(first + (horizon - first) * j / count, epoch), horizon)
        rest[:, count - 1] = horizon
        lens = np.diff(np.concatenate([first[:, None], rest], axis=1), axis=1)
        values = values + _logcdf(dist, lens).sum(axis=1)
        best = int(np.argmax(values))
        if not np.isfinite(values[best]):
            bounds = (float(horizon),) * (count + 1)
            return LabSchedule(count, bounds, index, float(elapsed), -math.inf)
        b1 = float(first[best])
        return LabSchedule(
            count, (b1, *(float(b) for b in rest[best])), index, float(elapsed), float(values[best])
        )
    # Continuous: dense scan, then golden-section refinement around the best point.
    width = horizon - start

    def objective(x: np.ndarray) -> np.ndarray:
        return log_cond_cdf(dist, elapsed, x) + count * _logcdf(dist, (width - x) / count)

    xs = np.linspace(0.0, width, 1025)[1:-1]
    vals = objective(xs)
    i = int(np.argmax(vals))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
    if np.isfinite(vals[i]):
        g = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(60):
            a_, b_ = hi - g * (hi - lo), lo + g * (hi - lo)
            if objective(np.array([a_]))[0] >= objective(np.array([b_]))[0]:
                hi = b_
            else:
                lo = a_
    x = 0.5 * (lo + hi) if np.isfinite(vals[i]) else float(xs[i])
    val = float(objective(np.array([x]))[0])
    if val < vals[i]:
        x, val = float(xs[i]), float(vals[i])
    b1 = start + x
    bounds = (b1, *stage_boundaries(b1, horizon, count, None))
    return LabSchedule(count, bounds, index, float(elapsed), val)


def _loads(n_running: int, n_new: int, remaining: int) -> list[int]:
    """Even spread of ``remaining + n_running`` load over the labs, larger loads first."""
    n_total = n_running + n_new
    q, rem = divmod(remaining + n_running, n_total)
    return [q + 1 if i < rem else q for i in range(n_total)]


# size: 93 lines: a 25-line docstring and four small closures sharing the per-call plan caches.
def plan_from_state(
    spec: LabSpec,
    remaining: int,
    time: float = 0.0,
    running_elapsed: Sequence[float] = (),
    *,
    snap_to_grid: bool = True,
    n_new_labs: int | None = None,
) -> ILPlan:
    """IL plan from a mid-episode state (footnote 1 of the paper's section 5).

    Running labs are reused first; new labs are added, fewest first, until the plan is
    ``p``-safe (see the module docstring for the distribution and stage-length rules). If no
    number of new labs is safe, the plan with the most new labs possible
    (``min(free labs, remaining)``) is returned with ``safe=False``. Never raises for a valid
    state and never loops more than ``l`` times.

    Args:
        spec: the problem.
        remaining: experiments not started yet (``m``).
        time: current time ``t``.
        running_elapsed: elapsed time of each running experiment (at most ``l`` of them).
        snap_to_grid: put intermediate stage boundaries on the ``spec.epoch`` grid.
        n_new_labs: force this many new labs instead of searching for the fewest safe number
            (the plan's ``safe`` flag still tells whether it reaches ``p``).

    Returns:
        The :class:`ILPlan`; its reused labs come first, in the order of ``running_elapsed``
        sorted longest-running first.
    """
    dist, h, p, nl = spec.duration, spec.horizon, spec.p_safe, spec.n_labs
    elapsed = [float(e) for e in running_elapsed]
    r, m = len(elapsed), int(remaining)
    if r > nl:
        raise ValueError(f"{r} running experiments but only {nl} labs")
    if m < 0:
        raise ValueError(f"remaining must be >= 0, got {m}")
    epoch = spec.epoch if snap_to_grid else None
    notes: list[str] = []
    if snap_to_grid:
        notes.append(f"intermediate stage boundaries snapped to the epoch grid ({spec.epoch})")
    order = sorted(range(r), key=lambda j: (-elapsed[j], j))
    log_p = math.log(p)

    run_cache: dict[tuple[int, int], LabSchedule] = {}
    new_cache: dict[int, LabSchedule] = {}

    def run_lab(j: int, count: int) -> LabSchedule:
        if (j, count) not in run_cache:
            run_cache[j, count] = _running_lab(dist, time, h, j, elapsed[j], count, epoch)
        return run_cache[j, count]

    def new_lab(count: int) -> LabSchedule:
        if count not in new_cache:
            new_cache[count] = _new_lab(dist, time, h, count, epoch)
        return new_cache[count]

    def build(n_new: int) -> tuple[LabSchedule, ...]:
        if m == 0:
            return tuple(run_lab(j, 0) for j in order)
        loads = _loads(r, n_new, m)
        labs = [run_lab(j, loads[i] - 1) for i, j in enumerate(order)]
        labs += [new_lab(loads[r + i]) for i in range(n_new)]
        return tuple(labs)

    def total(labs: tuple[LabSchedule, ...]) -> float:
        return float(sum(lab.log_safety for lab in labs))

    if time >= h:
        notes.append("no time left before the horizon: nothing is planned")
        labs = tuple(LabSchedule(0, (float(h),), j, elapsed[j], -math.inf) for j in order)
        prob = 1.0 if m == 0 and r == 0 else 0.0
        return ILPlan(float(time), h, labs, prob, p, m == 0 and r == 0, epoch, tuple(notes))
    max_new = min(nl - r, m)
    min_new = 0 if (r > 0 or m == 0) else 1
    if n_new_labs is not None:
        if not min_new <= n_new_labs <= max_new:
            raise ValueError(f"n_new_labs must be in [{min_new}, {max_new}] here, got {n_new_labs}")
        labs = build(int(n_new_labs))
        lp = total(labs)
        return ILPlan(float(time), h, labs, math.exp(lp), p, lp >= log_p - _LOG_P_SLACK, epoch, tuple(notes))
    labs: tuple[LabSchedule, ...] = ()
    for n_new in range(min_new, max_new + 1):
        labs = build(n_new)
        if total(labs) >= log_p - _LOG_P_SLACK:
            lp = total(labs)
            return ILPlan(float(time), h, labs, math.exp(lp), p, True, epoch, tuple(notes))
    lp = total(labs) if labs else -math.inf
    notes.append(
        f"best effort: no p-safe IL plan exists (best P(safe)={math.exp(lp):.4g} < p={p} with "
        f"{r} reused + {max_new} new labs); using every lab it can"
    )
    return ILPlan(float(time), h, labs, math.exp(lp), p, False, epoch, tuple(notes))


def plan_independent_labs(spec: LabSpec, *, snap_to_grid: bool = False) -> ILPlan:
    """The paper's offline IL plan: fewest labs ``k`` whose even plan is ``p``-safe.

    ``n mod k`` labs get ``floor(n/k) + 1`` experiments and the rest ``floor(n/k)``; lab ``i``'s
    stages all last ``h / m_i`` (or their grid-snapped versions), and the safety probability is
    ``prod_i P_d(h / m_i) ** m_i``. ``k`` runs over ``1 .. min(l, n)`` (more labs than
    experiments would be idle); if none is safe, ``k = min(l, n)`` is returned with
    ``safe=False`` and a note. Equal to ``plan_from_state(spec, n, 0.0, ())``.

    Args:
        spec: the problem.
        snap_to_grid: snap intermediate boundaries to the ``spec.epoch`` grid.
    """
    return _plan_independent_labs_cached(spec, bool(snap_to_grid))


@lru_cache(maxsize=64)
def _plan_independent_labs_cached(spec: LabSpec, snap_to_grid: bool) -> ILPlan:
    dist, n, h, p = spec.duration, spec.n_experiments, spec.horizon, spec.p_safe
    epoch = spec.epoch if snap_to_grid else None
    log_p = math.log(p)
    k_max = min(spec.n_labs, n)
    notes: list[str] = []
    if snap_to_grid:
        notes.append(f"intermediate stage boundaries snapped to the epoch grid ({spec.epoch})")
    labs: tuple[LabSchedule, ...] = ()
    lp = -math.inf
    cache: dict[int, LabSchedule] = {}  # n // k takes O(sqrt(n)) values: each lab plan once

    def new_lab(count: int) -> LabSchedule:
        if count not in cache:
            cache[count] = _new_lab(dist, 0.0, h, count, epoch)
        return cache[count]

    for k in range(1, k_max + 1):
        q, rem = divmod(n, k)
        big, small = new_lab(q + 1), new_lab(q)
        labs = (big,) * rem + (small,) * (k - rem)
        lp = float(sum(lab.log_safety for lab in labs))
        if lp >= log_p - _LOG_P_SLACK:
            return ILPlan(0.0, h, labs, math.exp(lp), p, True, epoch, tuple(notes))
    if k_max < spec.n_labs:
        notes.append(f"only {k_max} labs are useful for n={n} experiments")
    notes.append(
        f"best effort: no p-safe IL plan with k <= {k_max} labs (P(safe)={math.exp(lp):.4g} < p={p}); "
        f"using k={k_max}"
    )
    return ILPlan(0.0, h, labs, math.exp(lp), p, False, epoch, tuple(notes))
