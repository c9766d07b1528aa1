"""Independent-lab (IL) schedules and the offline IL scheduler OfIL (Azimi, Fern & Fern, sec. 4.2).

An IL schedule runs ``k`` labs independently of each other. Lab ``i`` runs ``m_i`` experiments
back to back in *stages*: stage ``j`` has a planned length ``d_i^j``, and it ends when that length
has passed or when its experiment finishes, whichever is later (experiments are never killed).
An execution is *safe* when every experiment finishes inside its stage, so the probability of a
safe execution of a plan is a product of CDF values, one factor per stage. The offline scheduler
uses the fewest labs whose plan is safe with probability at least ``p``.

Reading of the paper used here (section 4.2 and footnote 1 of section 5):

* **Plain plan** (:func:`plan_independent_labs`, time 0, nothing running): for ``k = 1 .. l`` the
  ``n`` experiments are spread as evenly as possible (``n mod k`` labs get ``floor(n/k) + 1``,
  the others ``floor(n/k)``), every stage of lab ``i`` lasts ``h / m_i``, and the safety
  probability is ``prod_i P_d(h / m_i) ** m_i``. The smallest ``k`` reaching ``p`` is returned;
  when none does, the plan with the most useful labs (``min(l, n)``) is returned with
  ``safe=False`` and a note.
* **Grid snapping** (``snap_to_grid=True``): schedulers only act at decision points, which are
  the multiples of ``spec.epoch`` (plus completion instants). A stage boundary that falls between
  two epochs would start its experiment late and eat into the next stage, so a snapped plan puts
  every intermediate boundary on the epoch grid: boundary ``j`` of a lab with ``a`` stages that
  starts at ``s`` is ``ceil_grid(s + j (h - s) / a)``, the last one is ``h``. From a grid point
  this is the most even split of the whole epochs into ``a`` stages (longer stages first), which
  maximises the safety probability among on-grid splits for a log-concave CDF. The safety
  probability of a snapped plan is computed for the snapped lengths, and ``k`` is chosen with it.
  In the paper's setting (``n=20, l=10, epoch 0.1, h in {4, 5, 6}``) ``h / m_i`` is already on
  the grid and both modes give the same plan. Measured elsewhere (20,000 simulated executions
  on the grid): snapping does not change *when* experiments start (an unsnapped boundary is
  delayed to the same epoch), but it makes the stated probability the true one. Gamma(4, 0.25),
  ``h=5.3``: unsnapped plan states 0.8753, its executions are safe 0.866 of the time; snapped
  states 0.8741, observed 0.874. LogNormal(0, 0.5), ``h=7, l=8``: 0.5474 stated vs 0.526
  observed unsnapped, 0.5462 vs 0.5448 snapped. :class:`OfIL` therefore snaps by default.
* **Plan from a mid-episode state** (:func:`plan_from_state`, used by policy switching): ``m``
  experiments not started yet, time ``t``, and running experiments with elapsed times ``e``.
  Every running experiment keeps its lab (those labs are reused first); its current experiment
  is that lab's first stage, safe with probability ``P(D <= e + x | D > e) =
  (P_d(e + x) - P_d(e)) / (1 - P_d(e))`` when the stage ends ``x`` after ``t``. New labs are
  opened, fewest first, only when the running labs alone are not ``p``-safe.

  *Distribution*: with ``r`` running labs and ``k_new`` new ones, the load (running experiment
  plus new ones) ``m + r`` is spread as evenly as possible over the ``r + k_new`` labs, as in
  the plain plan, a running experiment counting as one unit of its lab's load. The labs that
  get the larger load ``floor + 1`` are the running labs first, longest-running first (for a
  duration law with increasing failure rate they have the smallest expected residual), then new
  labs. With nothing running this is exactly the plain plan.

  *Stage lengths*: a new lab splits ``[t, h]`` evenly (snapped or not). A running lab with
  ``a`` new experiments chooses the end ``t + x`` of its current stage by a 1-d maximisation of
  ``log P(D <= e + x | D > e) + a log P_d((h - t - x) / a)`` (over grid points when snapped,
  else numerically), and splits the rest evenly: the same equal-lengths argument as the paper's
  (Lemma 1) applies to the ``a`` new stages, and only the first stage is different. A running
  lab that gets no new experiment keeps its stage open until ``h``.

Execution semantics (:class:`ScheduleTracker`, used by :class:`OfIL` and by policy switching):
each virtual lab keeps an *ideal clock*, the planned end of its current stage. When its
experiment finishes after that end (an overrun) the stage ends at the completion and the clock
moves there; the next stage then ends one stage length later. The next experiment starts at the
first decision point at or after the stage end, so a late start caused by the decision grid
does not shift later stages (delays do not accumulate), while an overrun does (the paper's
"the stage ends when its experiment finishes").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from labsched.envs.durations import DurationModel
from labsched.envs.spec import LabSpec

from .base import BaselinePolicy, LabState

__all__ = [
    "ILPlan",
    "LabSchedule",
    "OfIL",
    "ScheduleTracker",
    "grid_ceil",
    "log_cond_cdf",
    "plan_from_state",
    "plan_independent_labs",
    "snap_time",
    "stage_boundaries",
]

#: Tolerance, in units of the epoch, when deciding whether a time lies on the decision grid.
GRID_TOL = 1e-6
#: Slack when comparing a log-probability with ``log p`` (absorbs rounding only).
_LOG_P_SLACK = 1e-12


# --------------------------------------------------------------------------------------------
# Small numerical helpers
# --------------------------------------------------------------------------------------------


def grid_ceil(x: Any, epoch: float) -> Any:
    """Smallest multiple of ``epoch`` that is >= ``x`` (up to a relative tolerance), vectorised.

    The result is computed as ``j * epoch``, the same float the environment uses for its
    ``j``-th decision point.
    """
    return np.ceil(np.asarray(x, dtype=float) / epoch - GRID_TOL) * epoch


def log_cond_cdf(dist: DurationModel, elapsed: Any, extra: Any) -> np.ndarray:
    """``log P(D <= e + x | D > e)``, vectorised over ``elapsed = e`` and ``extra = x``.

    Where ``P(D > e) == 0`` (an experiment that should already have finished) the probability
    is taken as 1, matching ``DurationModel.sample_residual`` (residual 0).
    """
    e = np.asarray(elapsed, dtype=float)
    x = np.asarray(extra, dtype=float)
    logsf = getattr(dist, "logsf", None)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if logsf is not None:
            ls_e = np.asarray(logsf(e), dtype=float)
            ratio = np.exp(np.asarray(logsf(e + x), dtype=float) - ls_e)
            dead = ~np.isfinite(ls_e)
        else:
            s_e = np.asarray(dist.sf(e), dtype=float)
            ratio = np.asarray(dist.sf(e + x), dtype=float) / s_e
            dead = s_e <= 0.0
        out = np.log1p(-np.minimum(ratio, 1.0))
    out = np.where(dead, 0.0, out)
    return np.where(x <= 0.0, np.where(dead, 0.0, -np.inf), out)


def _logcdf(dist: DurationModel, t: Any) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(dist.logcdf(np.maximum(t, 0.0)), dtype=float)
    return np.where(t <= 0.0, -np.inf, out)


def stage_boundaries(
    start: float, horizon: float, n_stages: int, epoch: float | None = None
) -> tuple[float, ...]:
    """End times of ``n_stages`` stages splitting ``[start, horizon]`` as evenly as possible.

    Args:
        start: start of the first stage.
        horizon: end of the last stage.
        n_stages: number of stages (0 gives an empty tuple).
        epoch: decision grid; when given, intermediate boundaries are rounded up to multiples of
            ``epoch`` (and capped at ``horizon``), so that every stage starts at a decision point.

    Returns:
        ``n_stages`` boundaries, the last one equal to ``horizon``.
    """
    if n_stages <= 0:
        return ()
    width = horizon - start
    inner = [start + width * j / n_stages for j in range(1, n_stages)]
    if epoch is not None:
        inner = [min(float(grid_ceil(b, epoch)), horizon) for b in inner]
    return (*(float(b) for b in inner), float(horizon))


def _lengths(start: float, boundaries: Sequence[float]) -> np.ndarray:
    return np.diff(np.concatenate([[start], np.asarray(boundaries, dtype=float)]))


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabSchedule:
    """The plan of one (virtual) lab of an IL schedule.

    Attributes:
        n_experiments: new experiments this lab starts (``m_i`` of the paper).
        boundaries: absolute planned end times of its stages. For a reused lab the first entry
            ends the stage of the experiment already running in it, so there are
            ``n_experiments + 1`` entries; a new lab has ``n_experiments``.
        running_index: index (into the ``running_elapsed`` given to the planner) of the
            experiment running in this lab, or ``None`` for a new lab.
        running_elapsed: elapsed time of that experiment at planning time (``None`` for new).
        log_safety: log-probability that all of this lab's experiments finish in their stages.
    """

    n_experiments: int
    boundaries: tuple[float, ...]
    running_index: int | None = None
    running_elapsed: float | None = None
    log_safety: float = 0.0

    @property
    def is_new(self) -> bool:
        """True for a lab opened by the plan (no experiment running in it at planning time)."""
        return self.running_index is None

    def stage_lengths(self, start_time: float) -> tuple[float, ...]:
        """Planned stage lengths, measured from the plan's ``start_time``."""
        return tuple(float(x) for x in _lengths(start_time, self.boundaries))

    def new_stage_lengths(self, start_time: float) -> tuple[float, ...]:
        """Lengths of the stages of the *new* experiments only (what a tracker replays)."""
        lengths = self.stage_lengths(start_time)
        return lengths if self.is_new else lengths[1:]


@dataclass(frozen=True)
class ILPlan:
    """An independent-lab schedule.

    Attributes:
        start_time: time the plan is made (0 for the offline plan).
        horizon: the deadline ``h``.
        labs: the virtual labs, reused (running) labs first, then new labs.
        probability: probability of a safe execution (all experiments finish inside their
            stages), the exact product of CDF factors of the planned stage lengths.
        p_target: the required ``p``.
        safe: ``probability >= p_target``.
        epoch: decision grid the boundaries are snapped to (``None`` if not snapped).
        notes: human-readable remarks (best effort, snapping, ...).
    """

    start_time: float
    horizon: float
    labs: tuple[LabSchedule, ...]
    probability: float
    p_target: float
    safe: bool
    epoch: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def n_labs(self) -> int:
        """Number of labs ``k`` the plan uses (reused + new)."""
        return len(self.labs)

    @property
    def n_new_labs(self) -> int:
        """Labs opened by the plan."""
        return sum(1 for lab in self.labs if lab.is_new)

    @property
    def n_reused_labs(self) -> int:
        """Labs whose running experiment the plan keeps."""
        return self.n_labs - self.n_new_labs

    @property
    def counts(self) -> tuple[int, ...]:
        """New experiments per lab (``m_i``)."""
        return tuple(lab.n_experiments for lab in self.labs)

    @property
    def n_experiments(self) -> int:
        """New experiments the plan starts (``sum m_i``)."""
        return sum(self.counts)

    @property
    def stage_lengths(self) -> tuple[tuple[float, ...], ...]:
        """Planned stage lengths of every lab (from ``start_time``)."""
        return tuple(lab.stage_lengths(self.start_time) for lab in self.labs)

    @property
    def log_probability(self) -> float:
        """``log`` of :attr:`probability` (``-inf`` when it is 0)."""
        return float(sum(lab.log_safety for lab in self.labs))

    def describe(self) -> str:
        """One line: ``k``, reused/new labs, P(safe) and each lab's count and stage lengths."""
        parts = []
        for lab in self.labs:
            lens = ",".join(f"{x:.3g}" for x in lab.stage_lengths(self.start_time))
            tag = "new" if lab.is_new else f"run{lab.running_index}"
            parts.append(f"{tag}:{lab.n_experiments}[{lens}]")
        flag = "safe" if self.safe else "NOT p-safe"
        return (
            f"k={self.n_labs} ({self.n_reused_labs} reused + {self.n_new_labs} new) "
            f"P(safe)={self.probability:.6f} ({flag}, p={self.p_target}) labs: {' '.join(parts)}"
        )


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
    for k in range(1, k_max + 1):
        q, rem = divmod(n, k)
        big, small = _new_lab(dist, 0.0, h, q + 1, epoch), _new_lab(dist, 0.0, h, q, epoch)
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


# --------------------------------------------------------------------------------------------
# Replaying a plan against observations
# --------------------------------------------------------------------------------------------


@dataclass
class _VirtualLab:
    phys: int  # physical lab running this lab's current experiment, -1 when idle
    ideal_end: float  # planned end of the current stage (start time of the next when idle)
    lengths: list[float] = field(default_factory=list)  # stage lengths still to start


class ScheduleTracker:
    """Replays an :class:`ILPlan` in the environment, tracking virtual labs from observations.

    The environment starts ``k`` experiments in the lowest-numbered free labs, so the tracker
    knows which physical lab each of its starts went to; a physical lab that was busy and is now
    idle has finished its experiment (only the agent starts experiments). The completion time is
    taken to be the time it is first observed, which is exact when the environment adds a
    decision point at every completion (``decide_on_completion=True``, its default).

    Args:
        plan: the plan to replay.
        running_phys: physical lab of each running experiment, indexed like the
            ``running_elapsed`` given to the planner (empty for an offline plan).
        epoch: the decision interval (used for time tolerances).
    """

    def __init__(self, plan: ILPlan, running_phys: Sequence[int], epoch: float) -> None:
        self.plan = plan
        self.tol = 1e-4 * epoch
        self.labs: list[_VirtualLab] = []
        t0 = plan.start_time
        for lab in plan.labs:
            lengths = list(lab.new_stage_lengths(t0))
            if lab.is_new:
                self.labs.append(_VirtualLab(-1, t0, lengths))
            else:
                assert lab.running_index is not None
                self.labs.append(
                    _VirtualLab(int(running_phys[lab.running_index]), lab.boundaries[0], lengths)
                )

    @property
    def remaining(self) -> int:
        """Experiments of the plan not started yet."""
        return sum(len(v.lengths) for v in self.labs)

    def observe(self, time: float, busy: np.ndarray) -> None:
        """Record completions: a tracked physical lab that is idle now has finished."""
        for v in self.labs:
            if v.phys >= 0 and not busy[v.phys]:
                v.phys = -1
                v.ideal_end = max(v.ideal_end, time)

    def due(self, time: float) -> list[int]:
        """Virtual labs whose next experiment should start now."""
        return [
            i for i, v in enumerate(self.labs) if v.phys < 0 and v.lengths and time >= v.ideal_end - self.tol
        ]

    def start(self, time: float, busy: np.ndarray, count: int) -> int:
        """Start ``count`` due experiments; returns how many (the action to send)."""
        due = self.due(time)
        free = [int(i) for i in np.flatnonzero(~np.asarray(busy, dtype=bool))]
        count = min(count, len(due), len(free))
        for v_idx, phys in zip(due[:count], free[:count], strict=True):
            v = self.labs[v_idx]
            v.phys = phys
            v.ideal_end = v.ideal_end + v.lengths.pop(0)
        return count

    def snapshot(self) -> list[tuple[int, float, tuple[float, ...]]]:
        """``(physical lab or -1, ideal stage end, remaining stage lengths)`` per virtual lab."""
        return [(v.phys, v.ideal_end, tuple(v.lengths)) for v in self.labs]


def snap_time(time: float, spec: LabSpec) -> float:
    """An observed time put back on the decision grid when it is within rounding of a grid point.

    Observations carry time as a float32 fraction of the horizon, so a decision at ``j * epoch``
    is observed up to ~1e-7 off; the grid value is returned then (else ``time`` unchanged).
    """
    j = round(time / spec.epoch)
    tol = min(1e-5 * max(spec.horizon, 1.0), 0.01 * spec.epoch)
    if abs(time - j * spec.epoch) <= tol:
        return j * spec.epoch
    return time


class OfIL(BaselinePolicy):
    """Offline independent-lab scheduler: compute the IL plan once, replay it in every episode.

    Each virtual lab runs its experiments back to back; stage ``j`` ends ``d`` after the end of
    stage ``j - 1`` or when its experiment finishes, whichever is later, and the next experiment
    starts at the first decision point at or after that stage end.

    Args:
        spec: the problem.
        snap_to_grid: snap stage boundaries to the decision grid (default True: a boundary
            between two epochs would otherwise start its experiment late, shortening the stage
            actually available; see the module docstring). In the paper's setting both modes
            give the same plan.
        seed: unused (OfIL is deterministic); accepted for a uniform constructor.

    Attributes:
        plan: the :class:`ILPlan` replayed.
    """

    name = "ofil"

    def __init__(self, spec: LabSpec, *, snap_to_grid: bool = True, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        self.snap_to_grid = bool(snap_to_grid)
        self.plan = plan_independent_labs(spec, snap_to_grid=self.snap_to_grid)

    def begin_episode(self, state: LabState) -> ScheduleTracker:
        return ScheduleTracker(self.plan, (), self.spec.epoch)

    def act(self, state: LabState, memory: ScheduleTracker) -> int:
        t = snap_time(state.time, self.spec)
        memory.observe(t, state.busy)
        due = memory.due(t)
        if not due:
            return 0
        return memory.start(t, state.busy, min(len(due), state.max_valid))
