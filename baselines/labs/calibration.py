"""Calibration results (:class:`Calibration`, :class:`CalibrationPoint`) and their cache: memoised
per process and stored as JSON files, so that a calibrated baseline is calibrated once per setting."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labsched.envs.labs.spec import LabSpec

__all__ = ["MEMO", "RULE_VERSION", "Calibration", "CalibrationPoint", "cached_calibration"]

#: Bumped whenever the calibration rule changes (part of the cache key).
RULE_VERSION = 1
#: Calibrations of this process, by (kind, spec, options).
MEMO: dict[Any, Calibration] = {}
_PRINTED: set[Any] = set()


@dataclass(frozen=True)
class CalibrationPoint:
    """Estimates of one knob value on its calibration episodes.

    Attributes:
        knob: the knob value (PS's internal threshold ``q``, or keep-busy's ``k``).
        episodes: calibration episodes (or simulations) behind the estimates.
        completion: fraction of them that completed all ``n`` experiments by ``h``.
        completion_se: its standard error ``sqrt(c (1 - c) / N)``.
        completion_low: one-sided Wilson lower confidence bound (level ``1 - alpha``).
        cpe: mean CPE.
        cpe_se: its standard error.
    """

    knob: float
    episodes: int
    completion: float
    completion_se: float
    completion_low: float
    cpe: float
    cpe_se: float


@dataclass(frozen=True)
class Calibration:
    """Result of a calibration.

    Attributes:
        chosen: the estimates of the chosen knob value.
        feasible: whether the chosen value passed the rule (False: no candidate did; the safest
            was taken).
        p: the demanded completion probability.
        alpha: one-sided level of the lower confidence bound.
        points: every candidate evaluated (screen estimates, then pooled ones for confirmed).
        episodes: total calibration episodes run.
        seconds: wall time of the calibration (0 when read from a cache).
    """

    chosen: CalibrationPoint
    feasible: bool
    p: float
    alpha: float
    points: tuple[CalibrationPoint, ...]
    episodes: int
    seconds: float

    @property
    def knob(self) -> float:
        """The chosen knob value."""
        return self.chosen.knob

    def summary(self, name: str) -> str:
        """One line for humans."""
        c = self.chosen
        tag = "" if self.feasible else " (NOT feasible: no candidate passed; safest used)"
        return (
            f"{name}: knob={c.knob:g} completion={c.completion:.3f}+-{c.completion_se:.3f} "
            f"(lower bound {c.completion_low:.3f} vs p={self.p:g}) cpe={c.cpe:.2f}+-{c.cpe_se:.2f} "
            f"[{c.episodes} episodes; {self.episodes} in all, {self.seconds:.1f} s]{tag}"
        )


def _cache_dir() -> Path:
    return Path(os.environ.get("LABSCHED_CACHE_DIR") or Path.home() / ".cache" / "labsched")


def _library_version() -> str:
    try:
        from importlib.metadata import version

        return version("labsched")
    except Exception:  # not installed as a distribution
        return "0"


def cached_calibration(
    kind: str, spec: LabSpec, opts: dict[str, Any], cache: bool, compute: Any
) -> Calibration:
    """``compute(spec, opts)`` timed, memoised in this process and kept in a JSON file of the cache
    folder (``$LABSCHED_CACHE_DIR``, default ``~/.cache/labsched``) keyed by the kind, the spec,
    the options, the library version and the rule version; ``cache=False`` always computes.
    Prints the result's summary once per key on stderr."""
    key = (kind, spec, tuple(sorted(opts.items())))
    if cache and key in MEMO:
        return MEMO[key]
    text = json.dumps([kind, repr(spec), repr(sorted(opts.items())), _library_version(), RULE_VERSION])
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    path = _cache_dir() / f"calibration-{digest}.json"
    result = _load(path) if cache else None
    source = "cache"
    if result is None:
        start = time.perf_counter()
        result = compute(spec, opts)
        result = Calibration(**{**_fields(result), "seconds": time.perf_counter() - start})
        source = "calibrated"
        if cache:
            _save(path, result, text)
    if cache:
        MEMO[key] = result
    if key not in _PRINTED:
        _PRINTED.add(key)
        print(f"[labsched] {result.summary(kind)} ({source})", file=sys.stderr)
    return result


def _fields(c: Calibration) -> dict[str, Any]:
    return {f: getattr(c, f) for f in ("chosen", "feasible", "p", "alpha", "points", "episodes", "seconds")}


def _save(path: Path, result: Calibration, key_text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"key": key_text, "result": asdict(result)}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs a recalibration next time


def _load(path: Path) -> Calibration | None:
    try:
        data = json.loads(path.read_text())["result"]
        points = tuple(CalibrationPoint(**pt) for pt in data["points"])
        chosen = CalibrationPoint(**data["chosen"])
        return Calibration(
            chosen,
            bool(data["feasible"]),
            float(data["p"]),
            float(data["alpha"]),
            points,
            int(data["episodes"]),
            float(data["seconds"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
