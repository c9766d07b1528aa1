"""Replaying an independent-lab plan against observations: the virtual-lab schedule tracker.

Each virtual lab keeps an *ideal clock*, the planned end of its current stage. When its
experiment finishes after that end (an overrun) the stage ends at the completion and the clock
moves there; the next stage then ends one stage length later. The next experiment starts at the
first decision point at or after the stage end, so a late start caused by the decision grid does
not shift later stages (delays do not accumulate), while an overrun does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from labsched.baselines.labs.il_plan import ILPlan
from labsched.envs.labs.spec import LabSpec

__all__ = ["ScheduleTracker", "snap_time"]


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

    The environment starts ``k`` experiments in the free labs fastest in expectation (the
    lowest-numbered when labs are equal; ``lab_order``), so the tracker knows which physical
    lab each of its starts went to; a physical lab that was busy and is now
    idle has finished its experiment (only the agent starts experiments). The completion time is
    taken to be the time it is first observed, which is exact when the environment adds a
    decision point at every completion (``decide_on_completion=True``, its default).

    Args:
        plan: the plan to replay.
        running_phys: physical lab of each running experiment, indexed like the
            ``running_elapsed`` given to the planner (empty for an offline plan).
        epoch: the decision interval (used for time tolerances).
        lab_order: the labs fastest first (``LabSpec.lab_order``; default: index order).
    """

    def __init__(
        self,
        plan: ILPlan,
        running_phys: Sequence[int],
        epoch: float,
        lab_order: Sequence[int] | None = None,
    ) -> None:
        self.plan = plan
        self.lab_order = None if lab_order is None else [int(i) for i in lab_order]
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
        if self.lab_order is None:
            free = [int(i) for i in np.flatnonzero(~np.asarray(busy, dtype=bool))]
        else:
            free = [i for i in self.lab_order if not busy[i]]
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
