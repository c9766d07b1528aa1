"""The problem specification shared by the environment, the baselines and the agents."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labsched.envs.labs import durations as _durations
from labsched.envs.labs.durations import DurationModel, TruncatedNormal, as_duration_model

__all__ = ["LabSpec"]


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"LabSpec.{name} must be an integer >= {low}, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"LabSpec.{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"LabSpec.{name} must be a real number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True)
class LabSpec:
    """A budgeted concurrent-experiment scheduling problem (Azimi, Fern & Fern, section 2).

    The defaults are the paper's evaluation setting: 20 experiments, 10 labs, durations from a
    normal with mean 1 and variance 0.1 truncated to (0, inf), horizon 5, p = 0.95.

    Attributes:
        n_experiments: budget ``n`` of experiments that may be run (>= 1).
        n_labs: number ``l`` of labs that can run experiments at once (>= 1).
        horizon: time ``h`` by which experiments must complete (finite, > 0).
        duration: the known duration distribution ``p_d`` (a ``DurationModel``).
        p_safe: probability ``p`` demanded by p-safe schedules (0 < p < 1).
        epoch: decision interval ``Delta`` (0 < epoch <= horizon).
    """

    n_experiments: int = 20
    n_labs: int = 10
    horizon: float = 5.0
    duration: DurationModel = field(default_factory=TruncatedNormal)
    p_safe: float = 0.95
    epoch: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_experiments", _check_int("n_experiments", self.n_experiments, 1))
        object.__setattr__(self, "n_labs", _check_int("n_labs", self.n_labs, 1))
        h = _check_real("horizon", self.horizon)
        if not (math.isfinite(h) and h > 0.0):
            raise ValueError(f"LabSpec.horizon must be finite and > 0, got {h!r}")
        object.__setattr__(self, "horizon", h)
        as_duration_model(self.duration, "LabSpec.duration")
        p = _check_real("p_safe", self.p_safe)
        if not 0.0 < p < 1.0:
            raise ValueError(f"LabSpec.p_safe must satisfy 0 < p_safe < 1, got {p!r}")
        object.__setattr__(self, "p_safe", p)
        eps = _check_real("epoch", self.epoch)
        if not (math.isfinite(eps) and 0.0 < eps <= h):
            raise ValueError(f"LabSpec.epoch must satisfy 0 < epoch <= horizon={h!r}, got {eps!r}")
        object.__setattr__(self, "epoch", eps)

    def replace(self, **changes: Any) -> LabSpec:
        """A copy with some fields changed (validated again); unknown names raise ``TypeError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"LabSpec has no field(s) {unknown}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)

    @property
    def n_epochs(self) -> int:
        """Number of decision epochs ``floor(h / Delta)`` (with a tolerance for rounding)."""
        return int(math.floor(self.horizon / self.epoch + 1e-9))

    @property
    def max_cpe(self) -> int:
        """CPE of a fully sequential execution, ``n (n - 1) / 2``: the largest possible CPE."""
        return self.n_experiments * (self.n_experiments - 1) // 2

    @property
    def sequential_horizon(self) -> float:
        """A horizon long enough for ``n`` experiments run one after another.

        ``n`` times the duration's ``1 - 1e-9`` quantile (or its upper bound when finite), times
        1.01, and never shorter than ``horizon``: the sequential reference completes in
        practically every episode.
        """
        high = self.duration.support[1]
        per = high if math.isfinite(high) else float(self.duration.isf(1e-9))
        return max(self.horizon, self.n_experiments * per * 1.01)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form of the spec (duration model included; see :meth:`from_dict`)."""
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabSpec:
        """The spec saved by :meth:`to_dict`.

        Raises:
            ValueError: for an unknown duration model type.
        """
        return cls(**{k: _from_jsonable(v) for k, v in data.items()})


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, _durations.DurationModel):
        return {
            "type": type(obj).__name__,
            **{f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init},
        }
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else "-inf"
    return obj


def _from_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict) and "type" in obj:
        cls = getattr(_durations, obj["type"], None)
        if not (isinstance(cls, type) and issubclass(cls, _durations.DurationModel)):
            raise ValueError(f"unknown duration model {obj['type']!r} in saved spec")
        return cls(**{k: _from_jsonable(v) for k, v in obj.items() if k != "type"})
    if isinstance(obj, list):
        return tuple(_from_jsonable(x) for x in obj)
    if obj in ("inf", "-inf"):
        return float(obj)
    return obj
