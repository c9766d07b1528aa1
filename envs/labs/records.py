"""The record of one experiment of an execution (the environments' logs)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ExperimentRecord"]


class ExperimentRecord(NamedTuple):
    """One experiment of an execution.

    Attributes:
        index: start order (0 for the first experiment started).
        lab: lab that ran it.
        start: start time.
        end: completion time (``None`` for an experiment still running at the horizon).
        prior: number of experiments that had completed when it started.
    """

    index: int
    lab: int
    start: float
    end: float | None
    prior: int
