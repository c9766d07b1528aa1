"""The audit record of one batch decision: which inputs a selector chose, with what score, and which
candidates came closest (``Selector.last_scores`` / ``select(..., return_scores=True)``).

A campaign journal or dashboard stores these records; :meth:`SelectionScores.as_dict` gives plain
JSON-ready Python values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CandidateScore", "PickScores", "SelectionScores"]


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class CandidateScore:
    """One scored candidate of a pick.

    Attributes:
        x: the candidate input, shape ``(d,)``, in the model's units.
        value: the score that ranked it (the acquisition value; for cost-aware selectors the gain
            per cost).
        gain: the acquisition value before any cost adjustment (``None`` when not cost-aware).
        duration: the expected duration used for the cost (``None`` when not cost-aware).
    """

    x: np.ndarray
    value: float
    gain: float | None = None
    duration: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain Python values (``NaN`` and infinities become ``None``)."""
        return {
            "x": [float(v) for v in self.x],
            "value": _num(self.value),
            "gain": _num(self.gain),
            "duration": _num(self.duration),
        }


@dataclass(frozen=True)
class PickScores:
    """One input of the batch, in order of selection.

    Attributes:
        x: the returned input, shape ``(d,)``.
        value: its score (``NaN`` when the selector has none, as for ``"random"``).
        top: the best candidates of this pick, best first (the chosen one usually first; with a
            tie, polishing or a cost-aware rule it may differ, see ``reason``).
        reason: how the pick was made, e.g. ``"argmax"``, ``"polished"``, ``"tie: shorter
            duration"``, ``"medoid"`` or ``"uniform"``.
    """

    x: np.ndarray
    value: float
    top: tuple[CandidateScore, ...] = ()
    reason: str = "argmax"

    def as_dict(self) -> dict[str, Any]:
        """Plain Python values."""
        return {
            "x": [float(v) for v in self.x],
            "value": _num(self.value),
            "reason": self.reason,
            "top": [c.as_dict() for c in self.top],
        }


@dataclass(frozen=True)
class SelectionScores:
    """The audit record of one :meth:`Selector.select` call.

    Attributes:
        selector: the selector's registry name.
        criterion: what the values measure (``"expected improvement"``, ``"max-value entropy
            (nats)"``, ``"integrated variance reduction"``...).
        picks: one :class:`PickScores` per returned input, in the order of the returned array.
    """

    selector: str
    criterion: str
    picks: tuple[PickScores, ...]

    @classmethod
    def from_picks(
        cls, selector: str, criterion: str, X: np.ndarray, picks: Sequence[PickScores]
    ) -> SelectionScores:
        """The record for the returned inputs ``X``; picks the selector did not record get ``NaN``.

        Each pick's ``x`` is replaced by the input actually returned (after clipping to the box
        and the distinctness safety net).
        """
        out = []
        for i, x in enumerate(X):
            if i < len(picks):
                p = picks[i]
                out.append(PickScores(x.copy(), p.value, p.top, p.reason))
            else:
                out.append(PickScores(x.copy(), math.nan, (), "uniform"))
        return cls(selector, criterion, tuple(out))

    def as_dict(self) -> dict[str, Any]:
        """Plain Python values (for a JSON journal)."""
        return {
            "selector": self.selector,
            "criterion": self.criterion,
            "picks": [p.as_dict() for p in self.picks],
        }
