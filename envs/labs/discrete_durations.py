"""Discrete duration laws (exact ties between experiments) and finite mixtures of any laws."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs._lib.validation import real_array
from labsched.envs.labs.continuous_durations import TruncatedNormal
from labsched.envs.labs.duration_model import ArrayLike, DurationModel, _positive, check_representable

__all__ = ["Deterministic", "Discrete", "Mixture"]


# --------------------------------------------------------------------------------------------
# Discrete models (exact ties; useful for tests)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deterministic(DurationModel):
    """Every experiment takes exactly ``value`` time units."""

    value: float = 1.0

    log_concave = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _positive("value", self.value, "Deterministic"))

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return (np.asarray(t, dtype=float) >= self.value).astype(float)

    def sf(self, t: ArrayLike) -> np.ndarray:
        return (np.asarray(t, dtype=float) < self.value).astype(float)

    def isf(self, q: ArrayLike) -> np.ndarray:
        return np.full(np.shape(q), self.value)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        return self.value if size is None else np.full(size, self.value)

    def sample_residual(self, rng: np.random.Generator, elapsed: ArrayLike) -> np.ndarray:
        return np.maximum(self.value - np.asarray(elapsed, dtype=float), 0.0)

    @property
    def mean(self) -> float:
        return self.value

    @property
    def support(self) -> tuple[float, float]:
        return (self.value, self.value)


@dataclass(frozen=True)
class Discrete(DurationModel):
    """Durations taking finitely many ``values`` with probabilities ``probs``.

    Ties between experiments happen with positive probability, which exercises simultaneous
    completions. ``log_concave`` is False: a step CDF is not log-concave in general.
    """

    values: tuple[float, ...] = (0.5, 1.0, 1.5)
    probs: tuple[float, ...] = (0.25, 0.5, 0.25)

    log_concave = False

    def __post_init__(self) -> None:
        vals = real_array("Discrete.values", self.values)
        probs = real_array("Discrete.probs", self.probs)
        if vals.ndim != 1 or vals.size == 0:
            raise ValueError("Discrete.values must be a non-empty 1-d sequence")
        if probs.shape != vals.shape:
            raise ValueError(
                f"Discrete.probs must have the same length as values ({vals.size}), got {probs.size}"
            )
        if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
            raise ValueError("Discrete.values must be finite and > 0")
        if np.any(probs < 0) or not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-9):
            raise ValueError("Discrete.probs must be >= 0 and sum to 1")
        order = np.argsort(vals)
        object.__setattr__(self, "values", tuple(float(v) for v in vals[order]))
        object.__setattr__(self, "probs", tuple(float(p) for p in probs[order]))
        check_representable(self, "values finite and > 0 whose probability-weighted sum (the mean) is finite")

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        v = np.asarray(self.values)
        p = np.asarray(self.probs)
        return v, p

    def cdf(self, t: ArrayLike) -> np.ndarray:
        v, p = self._arrays()
        c = np.concatenate([[0.0], np.cumsum(p)])
        return np.minimum(c[np.searchsorted(v, np.asarray(t, dtype=float), side="right")], 1.0)

    def sf(self, t: ArrayLike) -> np.ndarray:
        return np.maximum(1.0 - self.cdf(t), 0.0)

    def isf(self, q: ArrayLike) -> np.ndarray:
        v, p = self._arrays()
        tail = np.cumsum(p[::-1])[::-1]  # tail[i] = P(D >= v[i])
        # smallest v[i] with P(D > v[i]) <= q  <=>  tail[i+1] <= q
        s_after = np.append(tail[1:], 0.0)
        q = np.asarray(q, dtype=float)
        idx = np.searchsorted(-s_after, -q, side="left")
        return v[np.minimum(idx, v.size - 1)]

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        v, p = self._arrays()
        out = v[np.minimum(np.searchsorted(np.cumsum(p), rng.random(size), side="right"), v.size - 1)]
        return float(out) if size is None else out

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        vals, p = self._arrays()
        # P(D = v_i | D > e) proportional to p_i for v_i > e: invert within the kept support.
        keep = vals[None, :] > e.reshape(-1, 1)
        w = np.where(keep, p[None, :], 0.0)
        tot = w.sum(axis=1)
        cw = np.cumsum(w, axis=1)
        u = (1.0 - v.reshape(-1)) * tot
        idx = np.minimum((cw <= u[:, None]).sum(axis=1), vals.size - 1)
        d = vals[idx]
        res = np.where(tot > 0, np.maximum(d - e.reshape(-1), 0.0), 0.0)
        return res.reshape(e.shape)

    @property
    def mean(self) -> float:
        v, p = self._arrays()
        return float(v @ p)

    @property
    def support(self) -> tuple[float, float]:
        return (self.values[0], self.values[-1])


@dataclass(frozen=True)
class Mixture(DurationModel):
    """Finite mixture of duration models (e.g. quick and slow experiments).

    A bimodal mixture is the standard example of a duration law whose CDF is not log-concave,
    so ``log_concave`` is False unless there is a single component.
    """

    components: tuple[DurationModel, ...] = (
        TruncatedNormal(0.6, 0.1),
        TruncatedNormal(2.0, 0.2),
    )
    weights: tuple[float, ...] = (0.8, 0.2)

    def __post_init__(self) -> None:
        comps = _components(self.components)
        w = real_array("Mixture.weights", self.weights)
        if w.shape != (len(comps),):
            raise ValueError("Mixture.weights must have one weight per component")
        if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9):
            raise ValueError("Mixture.weights must be >= 0 and sum to 1")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "weights", tuple(float(x) for x in w))
        check_representable(self, "components whose weighted mean and quantiles are finite")

    @property
    def log_concave(self) -> bool:  # type: ignore[override]
        return len(self.components) == 1 and self.components[0].log_concave

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return sum(w * c.cdf(t) for c, w in zip(self.components, self.weights, strict=True))

    def sf(self, t: ArrayLike) -> np.ndarray:
        return sum(w * c.sf(t) for c, w in zip(self.components, self.weights, strict=True))

    def isf(self, q: ArrayLike) -> np.ndarray:
        # Bracketed bisection on the monotone survival function (vectorised, 80 halvings).
        q = np.asarray(q, dtype=float)
        lo = np.full(q.shape, min(c.support[0] for c in self.components))
        hi_support = max(c.support[1] for c in self.components)
        if math.isfinite(hi_support):
            hi = np.full(q.shape, hi_support)
        else:
            hi = np.maximum.reduce(
                [np.asarray(c.isf(np.maximum(q * 1e-3, 1e-300)), float) for c in self.components]
            )
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            above = self.sf(mid) > q
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        return hi

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        shape = () if size is None else size
        which = np.searchsorted(np.cumsum(self.weights), rng.random(shape), side="right")
        which = np.minimum(which, len(self.components) - 1)
        out = np.empty(np.shape(which))
        for i, comp in enumerate(self.components):
            mask = which == i
            out[mask] = comp.sample(rng, int(mask.sum()))
        return float(out) if size is None else out

    @property
    def mean(self) -> float:
        return float(sum(w * c.mean for c, w in zip(self.components, self.weights, strict=True)))

    @property
    def support(self) -> tuple[float, float]:
        return (min(c.support[0] for c in self.components), max(c.support[1] for c in self.components))


def _components(value: Any) -> tuple[DurationModel, ...]:
    """``Mixture.components`` as a non-empty tuple of models (a lone model is refused by name)."""
    expected = "a non-empty sequence of DurationModel, e.g. (TruncatedNormal(0.6, 0.1), Gamma(10, 0.2))"
    if isinstance(value, DurationModel):
        raise TypeError(
            f"Mixture.components must be {expected}, got a single {type(value).__name__}; "
            "wrap it in a tuple (with weights=(1.0,)) or use the model itself"
        )
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"Mixture.components must be {expected}, got {type(value).__name__}")
    comps = tuple(value)
    bad = [type(c).__name__ for c in comps if not isinstance(c, DurationModel)]
    if not comps or bad:
        got = "an empty sequence" if not comps else f"entries of type {', '.join(sorted(set(bad)))}"
        raise TypeError(f"Mixture.components must be {expected}, got {got}")
    return comps
