"""Independent-lab (IL) plans: the plan data and the stage arithmetic they are built from.

A :class:`LabSchedule` is one lab's experiment count and stage boundaries; an :class:`ILPlan` is
the labs of one schedule with its safety probability. :func:`stage_boundaries` splits a time
interval into stages (optionally on the decision grid) and :func:`log_cond_cdf` is the safety
probability of a running experiment's stage. See :mod:`labsched.baselines.labs.independent_lab`
for the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs.labs.durations import DurationModel

__all__ = ["GRID_TOL", "ILPlan", "LabSchedule", "grid_ceil", "log_cond_cdf", "stage_boundaries"]

#: Tolerance, in units of the epoch, when deciding whether a time lies on the decision grid.
GRID_TOL = 1e-6


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
