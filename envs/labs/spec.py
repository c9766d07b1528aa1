"""The problem specification shared by the environment, the baselines and the agents."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
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


#: The fields beyond the paper's setting, with their defaults: ``repr`` and :meth:`LabSpec.to_dict`
#: show them only when they differ (so the paper's specs keep their cache keys and saved forms).
_EXTENSIONS = {
    "failure_prob": 0.0,
    "lab_durations": None,
    "lab_speeds": None,
    "known_durations": True,
    "duration_guess": None,
}


@dataclass(frozen=True, repr=False)
class LabSpec:
    """A budgeted concurrent-experiment scheduling problem (Azimi, Fern & Fern, section 2).

    The defaults are the paper's evaluation setting: 20 experiments, 10 labs, durations from a
    normal with mean 1 and variance 0.1 truncated to (0, inf), horizon 5, p = 0.95, equal labs
    and no failures.

    Beyond the paper (issue 14): ``failure_prob`` makes experiments fail (an experiment started
    on lab ``i`` fails with probability ``q_i``, discovered when it ends: its lab time and budget
    slot are spent, it yields no result and adds nothing to CPE, and prior counts count only
    successful completions); ``lab_durations`` and ``lab_speeds`` make labs differ (an
    experiment on lab ``i`` takes a draw of ``lab_durations[i]`` divided by ``lab_speeds[i]``).
    Lists equal to the default are stored as the default (``lab_speeds=[1, 1]`` is ``None``, a
    list of equal failure probabilities is that float), so equal problems compare equal.

    Attributes:
        n_experiments: budget ``n`` of experiments that may be run (>= 1).
        n_labs: number ``l`` of labs that can run experiments at once (>= 1).
        horizon: time ``h`` by which experiments must complete (finite, > 0).
        duration: the known duration distribution ``p_d`` (a ``DurationModel``): every lab's law
            unless ``lab_durations`` says otherwise, and the unit of the observation's times.
        p_safe: probability ``p`` demanded by p-safe schedules (0 < p < 1).
        epoch: decision interval ``Delta`` (0 < epoch <= horizon).
        failure_prob: probability that an experiment fails, a float in ``[0, 1]`` or one per lab.
        lab_durations: ``None`` (every lab has ``duration``) or one ``DurationModel`` per lab.
        lab_speeds: ``None`` (all 1) or one speed factor ``> 0`` per lab: durations on lab ``i``
            are divided by ``lab_speeds[i]`` (speed 2 halves them).
        known_durations: whether schedulers are told ``duration`` (True, the paper's setting).
            With False the environment still draws from ``duration`` but shows schedulers only
            :attr:`scheduler_view`, whose law is the first guess ``duration_guess``; baselines
            estimate the law online (``labsched.baselines.labs.estimated``). Needs labs sharing
            one law (``lab_durations=None``; ``lab_speeds`` are known factors and allowed).
        duration_guess: the schedulers' first guess of the law when ``known_durations=False``
            (``None``: the paper's ``TruncatedNormal()``); refused when durations are known.
    """

    n_experiments: int = 20
    n_labs: int = 10
    horizon: float = 5.0
    duration: DurationModel = field(default_factory=TruncatedNormal)
    p_safe: float = 0.95
    epoch: float = 0.1
    failure_prob: float | tuple[float, ...] = 0.0
    lab_durations: tuple[DurationModel, ...] | None = None
    lab_speeds: tuple[float, ...] | None = None
    known_durations: bool = True
    duration_guess: DurationModel | None = None

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
        nl = self.n_labs
        object.__setattr__(self, "failure_prob", _check_failure_prob(self.failure_prob, nl))
        speeds = _per_lab("lab_speeds", self.lab_speeds, nl)
        if speeds is not None:
            speeds = tuple(_check_speed(i, v) for i, v in enumerate(speeds))
            speeds = None if all(v == 1.0 for v in speeds) else speeds
        object.__setattr__(self, "lab_speeds", speeds)
        laws = _per_lab("lab_durations", self.lab_durations, nl)
        if laws is not None:
            laws = tuple(as_duration_model(m, f"LabSpec.lab_durations[{i}]") for i, m in enumerate(laws))
            laws = None if all(m == self.duration for m in laws) else laws
        object.__setattr__(self, "lab_durations", laws)
        _check_unknown_durations(self)

    def __repr__(self) -> str:
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in _EXTENSIONS or getattr(self, f.name) != _EXTENSIONS[f.name]
        ]
        return f"{type(self).__qualname__}({', '.join(parts)})"

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
        per = 0.0
        for law, speed in zip(self.lab_laws, self.lab_speed_factors, strict=True):
            high = law.support[1]
            per = max(per, (high if math.isfinite(high) else float(law.isf(1e-9))) / speed)
        return max(self.horizon, self.n_experiments * per * 1.01)

    # ------------------------------------------------------------------ labs beyond the paper
    @property
    def has_failures(self) -> bool:
        """Whether some lab's experiments may fail (a failure probability > 0)."""
        return any(q > 0.0 for q in self.lab_failure_probs)

    @property
    def heterogeneous(self) -> bool:
        """Whether per-lab durations or speeds are set (the observation then shows each lab's
        expected duration)."""
        return self.lab_durations is not None or self.lab_speeds is not None

    @property
    def lab_failure_probs(self) -> tuple[float, ...]:
        """Failure probability of each lab's experiments."""
        q = self.failure_prob
        return q if isinstance(q, tuple) else (q,) * self.n_labs

    @property
    def lab_laws(self) -> tuple[DurationModel, ...]:
        """Duration law of each lab (before its speed factor)."""
        return self.lab_durations if self.lab_durations is not None else (self.duration,) * self.n_labs

    @property
    def lab_speed_factors(self) -> tuple[float, ...]:
        """Speed factor of each lab (1.0 when ``lab_speeds`` is None)."""
        return self.lab_speeds if self.lab_speeds is not None else (1.0,) * self.n_labs

    @property
    def lab_mean_durations(self) -> tuple[float, ...]:
        """Expected duration of an experiment on each lab, ``E[D_i] / speed_i``."""
        return tuple(
            float(law.mean) / s for law, s in zip(self.lab_laws, self.lab_speed_factors, strict=True)
        )

    @property
    def lab_order(self) -> tuple[int, ...]:
        """Labs fastest first in expectation (ties by lab index): where ``k`` starts go."""
        means = self.lab_mean_durations
        return tuple(sorted(range(self.n_labs), key=means.__getitem__))

    # ------------------------------------------------------------------ unknown durations
    @property
    def first_guess(self) -> DurationModel:
        """The duration law schedulers are given: ``duration`` when ``known_durations``, else
        ``duration_guess`` (the paper's ``TruncatedNormal()`` when that is None)."""
        if self.known_durations:
            return self.duration
        return self.duration_guess if self.duration_guess is not None else TruncatedNormal()

    @property
    def scheduler_view(self) -> LabSpec:
        """The problem as a scheduler may know it: ``self`` when durations are known, else a copy
        whose ``duration`` is :attr:`first_guess` (the true law left out; idempotent). Policies of
        a spec with ``known_durations=False`` are built from this view, and the environment's
        observation (elapsed times in units of the law's mean, ``lab_duration``) uses it."""
        guess = self.first_guess
        if self.known_durations or (self.duration == guess and self.duration_guess == guess):
            return self
        return dataclasses.replace(self, duration=guess, duration_guess=guess)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form of the spec (duration model included; see :meth:`from_dict`)."""
        return {
            f.name: _to_jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in _EXTENSIONS or getattr(self, f.name) != _EXTENSIONS[f.name]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabSpec:
        """The spec saved by :meth:`to_dict`.

        Raises:
            ValueError: for an unknown duration model type.
        """
        return cls(**{k: _from_jsonable(v) for k, v in data.items()})


def _per_lab(name: str, value: Any, n_labs: int) -> tuple | None:
    """``None``, or ``value`` as a tuple of ``n_labs`` entries (``TypeError``/``ValueError``
    naming the field otherwise)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"LabSpec.{name} must be None or a list with one entry per lab (n_labs={n_labs}), "
            f"got {type(value).__name__}"
        )
    items = tuple(value)
    if len(items) != n_labs:
        raise ValueError(
            f"LabSpec.{name} must have one entry per lab: length n_labs={n_labs}, got length {len(items)}"
        )
    return items


def _check_probability(name: str, value: Any) -> float:
    q = _check_real(name, value)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"LabSpec.{name} must be a probability in [0, 1], got {q!r}")
    return q


def _check_failure_prob(value: Any, n_labs: int) -> float | tuple[float, ...]:
    """A float in [0, 1], or a tuple of one per lab (stored as the float when all are equal)."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        probs = _per_lab("failure_prob", value, n_labs)
        assert probs is not None
        probs = tuple(_check_probability(f"failure_prob[{i}]", q) for i, q in enumerate(probs))
        return probs[0] if len(set(probs)) == 1 else probs
    return _check_probability("failure_prob", value)


def _check_unknown_durations(spec: LabSpec) -> None:
    """Validate ``known_durations`` and ``duration_guess`` (after the other fields)."""
    known = spec.known_durations
    if not isinstance(known, (bool, np.bool_)):
        raise TypeError(f"LabSpec.known_durations must be True or False, got {type(known).__name__}")
    object.__setattr__(spec, "known_durations", bool(known))
    if spec.duration_guess is not None:
        as_duration_model(spec.duration_guess, "LabSpec.duration_guess")
        if known:
            raise ValueError(
                "LabSpec.duration_guess is the schedulers' first guess of an unknown law: it needs "
                "known_durations=False (got known_durations=True)"
            )
    if not known and spec.lab_durations is not None:
        raise ValueError(
            "LabSpec.known_durations=False needs labs sharing one duration law (lab_durations=None); "
            "lab_speeds (known speed factors) are allowed"
        )


def _check_speed(i: int, value: Any) -> float:
    v = _check_real(f"lab_speeds[{i}]", value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"LabSpec.lab_speeds[{i}] must be finite and > 0, got {v!r}")
    return v


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
