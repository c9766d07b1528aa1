"""Experiment-duration models.

Every model is a frozen dataclass exposing one interface:

* ``cdf(t)`` / ``sf(t)`` / ``logcdf(t)``: distribution and survival functions, vectorised;
* ``isf(q)``: inverse survival function (the ``t`` with ``sf(t) == q``);
* ``sample(rng, size)``: i.i.d. durations, drawn exactly by inversion;
* ``sample_residual(rng, elapsed)``: remaining time of experiments that have already run for
  ``elapsed`` (a draw of ``D - e`` conditioned on ``D > e``), vectorised over ``elapsed``;
* ``mean``, ``support`` and ``log_concave``.

``log_concave`` refers to the *cumulative distribution function* ``P_d`` being log-concave,
which is the property the staged-schedule results of Azimi, Fern & Fern rely on (a log-concave
density implies it, and so does any non-increasing density on ``[0, inf)``).

Sampling is by inversion of the survival function, ``D = isf(V * sf(e))`` with
``V ~ U(0, 1]``, done in log space for the normal-based models so that deep-tail conditioning
(``elapsed`` many standard deviations above the mean) stays exact.  No ``scipy.stats`` object is
touched in the hot path: only NumPy and ``scipy.special`` ufuncs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "Deterministic",
    "Discrete",
    "DurationModel",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Mixture",
    "TruncatedNormal",
    "Uniform",
]

ArrayLike = Any


def _positive(name: str, value: float, cls: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls}.{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{cls}.{name} must be finite and > 0, got {value!r}")
    return value


def _finite(name: str, value: float, cls: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls}.{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{cls}.{name} must be finite, got {value!r}")
    return value


def _uniform_open0(rng: np.random.Generator, size: Any) -> np.ndarray:
    """Uniform draws on (0, 1]: ``1 - U[0, 1)`` so that ``log`` never sees zero."""
    return 1.0 - rng.random(size)


class DurationModel(ABC):
    """Interface of a duration distribution on ``[0, inf)``.

    Subclasses implement :meth:`cdf`, :meth:`sf`, :meth:`isf`, :attr:`mean` and
    :attr:`support`; the sampling methods are derived from them and may be overridden with a
    more accurate or faster formula.
    """

    #: Whether the CDF is log-concave (Lemma 1 / Theorem 1 of the paper need this).
    log_concave: bool = True

    @abstractmethod
    def cdf(self, t: ArrayLike) -> np.ndarray:
        """P(D <= t), vectorised."""

    @abstractmethod
    def sf(self, t: ArrayLike) -> np.ndarray:
        """P(D > t), vectorised."""

    @abstractmethod
    def isf(self, q: ArrayLike) -> np.ndarray:
        """Inverse survival function: smallest ``t`` with ``sf(t) <= q``, for ``q`` in (0, 1]."""

    @property
    @abstractmethod
    def mean(self) -> float:
        """Expected duration E[D]."""

    @property
    @abstractmethod
    def support(self) -> tuple[float, float]:
        """Closed interval ``(low, high)`` containing all durations (``high`` may be inf)."""

    def logcdf(self, t: ArrayLike) -> np.ndarray:
        """log P(D <= t) (``-inf`` where the CDF is zero)."""
        with np.errstate(divide="ignore"):
            return np.log(self.cdf(t))

    def quantile(self, p: ArrayLike) -> np.ndarray:
        """Quantile function, ``P(D <= quantile(p)) >= p``."""
        return self.isf(1.0 - np.asarray(p, dtype=float))

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        """Draw i.i.d. durations.

        Args:
            rng: the NumPy generator every random draw comes from.
            size: output shape (``None`` for a scalar).

        Returns:
            Durations with the requested shape (a float when ``size`` is None).
        """
        out = self.isf(_uniform_open0(rng, size))
        return float(out) if size is None else out

    def sample_residual(self, rng: np.random.Generator, elapsed: ArrayLike) -> np.ndarray:
        """Remaining time of experiments that have been running for ``elapsed``.

        Draws ``D - e`` with ``D`` conditioned on ``D > e``, one draw per entry of ``elapsed``.
        Where ``P(D > e) == 0`` (the experiment should already have finished) the residual is 0.

        Args:
            rng: the NumPy generator every random draw comes from.
            elapsed: array of elapsed running times (>= 0).

        Returns:
            Array of residual durations, same shape as ``elapsed``.
        """
        e = np.asarray(elapsed, dtype=float)
        v = _uniform_open0(rng, e.shape)
        return self._residual_from_uniform(v, e)

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        s = self.sf(e)
        d = self.isf(np.where(s > 0.0, v * s, 1.0))
        return np.where(s > 0.0, np.maximum(d - e, 0.0), 0.0)


# --------------------------------------------------------------------------------------------
# Normal-based models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruncatedNormal(DurationModel):
    """Normal(mu, sigma^2) truncated to ``[low, high]`` (the paper's default: mu=1, sigma^2=0.1,
    truncated to ``(0, inf)``).

    Args:
        mu: mean of the parent normal.
        sigma: standard deviation of the parent normal (not its variance).
        low: lower truncation point, >= 0.
        high: upper truncation point, > low (may be ``inf``).
    """

    mu: float = 1.0
    sigma: float = math.sqrt(0.1)
    low: float = 0.0
    high: float = math.inf
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    log_concave = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _finite("mu", self.mu, "TruncatedNormal"))
        object.__setattr__(self, "sigma", _positive("sigma", self.sigma, "TruncatedNormal"))
        low = _finite("low", self.low, "TruncatedNormal")
        if low < 0.0:
            raise ValueError(f"TruncatedNormal.low must be >= 0 (durations), got {low!r}")
        if isinstance(self.high, bool) or not isinstance(self.high, (int, float, np.integer, np.floating)):
            raise TypeError(f"TruncatedNormal.high must be a real number, got {type(self.high).__name__}")
        high = float(self.high)
        if not high > low:
            raise ValueError(f"TruncatedNormal.high must be > low={low!r}, got {high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        a, b = (low - self.mu) / self.sigma, (high - self.mu) / self.sigma
        # log P(Z > a) and log P(Z > b) of the standard normal, used for log-space inversion.
        log_sa = float(special.log_ndtr(-a))
        log_sb = float(special.log_ndtr(-b)) if math.isfinite(b) else -math.inf
        if not math.isfinite(log_sa) or log_sa - log_sb < 1e-300:
            raise ValueError(
                "TruncatedNormal: the interval [low, high] carries no probability mass "
                f"(mu={self.mu}, sigma={self.sigma}, low={low}, high={high})"
            )
        self._cache["log_sa"] = log_sa
        self._cache["log_sb"] = log_sb
        self._cache["log_mass"] = log_sa + math.log(-math.expm1(log_sb - log_sa))

    @classmethod
    def from_variance(cls, mu: float = 1.0, variance: float = 0.1, **kwargs: float) -> TruncatedNormal:
        """Build from the parent normal's variance, as the paper states it (sigma^2 = 0.1)."""
        return cls(mu=mu, sigma=math.sqrt(_positive("variance", variance, "TruncatedNormal")), **kwargs)

    def _z(self, t: ArrayLike) -> np.ndarray:
        return (np.asarray(t, dtype=float) - self.mu) / self.sigma

    def _log_sf_parent(self, t: ArrayLike) -> np.ndarray:
        """log P(Z > z(t)) for the untruncated standard normal."""
        return special.log_ndtr(-self._z(t))

    def logsf(self, t: ArrayLike) -> np.ndarray:
        """log P(D > t)."""
        t = np.asarray(t, dtype=float)
        c = self._cache
        tt = np.clip(t, self.low, self.high)
        ls = self._log_sf_parent(tt)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(np.isfinite(c["log_sb"]), ls + np.log(-np.expm1(c["log_sb"] - ls)), ls)
        out = diff - c["log_mass"]
        out = np.where(t < self.low, 0.0, out)
        return np.where(t >= self.high, -np.inf, out)

    def sf(self, t: ArrayLike) -> np.ndarray:
        return np.exp(self.logsf(t))

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return -np.expm1(self.logsf(t))

    def logcdf(self, t: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.cdf(t))

    def _isf_log(self, logq: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`logsf`: the t with log P(D > t) == logq."""
        c = self._cache
        # log P(Z > z) = logq + log_mass + log(1 + exp(log_sb - logq - log_mass))
        lp = logq + c["log_mass"]
        if np.isfinite(c["log_sb"]):
            lp = np.logaddexp(lp, c["log_sb"])
        d = self.mu - self.sigma * special.ndtri_exp(lp)
        # Rounding can push the inverse a hair outside [low, high]; np.clip is slow on tiny arrays.
        d = np.maximum(d, self.low)
        return d if self.high == math.inf else np.minimum(d, self.high)

    def isf(self, q: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self._isf_log(np.log(np.asarray(q, dtype=float)))

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        if self._cache["log_mass"] < math.log(0.5):
            out = self._isf_log(np.log(_uniform_open0(rng, size)))
            return float(out) if size is None else out
        # Most of the parent normal's mass lies in [low, high] (true of the paper's setting):
        # exact rejection sampling, redrawing the rare rejects, is cheaper than inversion.
        x = self.mu + self.sigma * rng.standard_normal(1 if size is None else size)
        bad = (x <= self.low) | (x > self.high)
        while bad.any():
            x[bad] = self.mu + self.sigma * rng.standard_normal(int(bad.sum()))
            bad = (x <= self.low) | (x > self.high)
        return float(x[0]) if size is None else x

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        ls = self.logsf(e)
        finite = np.isfinite(ls)
        d = self._isf_log(np.log(v) + np.where(finite, ls, 0.0))
        return np.where(finite, np.maximum(d - e, 0.0), 0.0)

    @property
    def mean(self) -> float:
        # E[D] = mu + sigma (phi(a) - phi(b)) / mass, with the ratio formed in log space so that
        # a truncation far in a tail (mass ~ 1e-300 or below) stays exact.
        a = (self.low - self.mu) / self.sigma
        b = (self.high - self.mu) / self.sigma
        log_norm = 0.5 * math.log(2 * math.pi)
        log_mass = self._cache["log_mass"]
        ratio_a = math.exp(-0.5 * a * a - log_norm - log_mass)
        ratio_b = 0.0 if math.isinf(b) else math.exp(-0.5 * b * b - log_norm - log_mass)
        return self.mu + self.sigma * (ratio_a - ratio_b)

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)


@dataclass(frozen=True)
class LogNormal(DurationModel):
    """``D = exp(mu + sigma Z)`` with Z standard normal.

    The density is not log-concave, but the CDF ``Phi((log t - mu) / sigma)`` is.

    Args:
        mu: mean of ``log D``.
        sigma: standard deviation of ``log D`` (> 0).
    """

    mu: float = 0.0
    sigma: float = 0.3

    log_concave = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _finite("mu", self.mu, "LogNormal"))
        object.__setattr__(self, "sigma", _positive("sigma", self.sigma, "LogNormal"))

    @classmethod
    def from_mean_std(cls, mean: float, std: float) -> LogNormal:
        """Build the log-normal whose own mean and standard deviation are given."""
        mean = _positive("mean", mean, "LogNormal")
        std = _positive("std", std, "LogNormal")
        s2 = math.log1p((std / mean) ** 2)
        return cls(mu=math.log(mean) - 0.5 * s2, sigma=math.sqrt(s2))

    def _z(self, t: ArrayLike) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            return (np.log(np.maximum(t, 0.0)) - self.mu) / self.sigma

    def logsf(self, t: ArrayLike) -> np.ndarray:
        return special.log_ndtr(-self._z(t))

    def sf(self, t: ArrayLike) -> np.ndarray:
        return special.ndtr(-self._z(t))

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return special.ndtr(self._z(t))

    def logcdf(self, t: ArrayLike) -> np.ndarray:
        return special.log_ndtr(self._z(t))

    def _isf_log(self, logq: np.ndarray) -> np.ndarray:
        return np.exp(self.mu - self.sigma * special.ndtri_exp(logq))

    def isf(self, q: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self._isf_log(np.log(np.asarray(q, dtype=float)))

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        out = np.exp(self.mu + self.sigma * rng.standard_normal(size))
        return float(out) if size is None else out

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        d = self._isf_log(np.log(v) + self.logsf(e))
        return np.maximum(d - e, 0.0)

    @property
    def mean(self) -> float:
        return math.exp(self.mu + 0.5 * self.sigma**2)

    @property
    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)


# --------------------------------------------------------------------------------------------
# Other continuous models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gamma(DurationModel):
    """Gamma distribution with ``shape`` k and ``scale`` theta (mean k * theta).

    The CDF is log-concave for every shape (log-concave density for k >= 1, non-increasing
    density for k < 1).
    """

    shape: float = 10.0
    scale: float = 0.1

    log_concave = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _positive("shape", self.shape, "Gamma"))
        object.__setattr__(self, "scale", _positive("scale", self.scale, "Gamma"))

    def cdf(self, t: ArrayLike) -> np.ndarray:
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        return special.gammainc(self.shape, t / self.scale)

    def sf(self, t: ArrayLike) -> np.ndarray:
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        return special.gammaincc(self.shape, t / self.scale)

    def isf(self, q: ArrayLike) -> np.ndarray:
        return self.scale * special.gammainccinv(self.shape, np.asarray(q, dtype=float))

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray | float:
        out = rng.gamma(self.shape, self.scale, size)
        return float(out) if size is None else out

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        s = self.sf(e)
        ok = s > 1e-300
        d = self.isf(np.where(ok, v * s, 1.0))
        # Beyond ~1e-300 survival the gamma tail is exponential with rate 1/scale (up to a
        # polynomial factor); that limit is used where the CDF cannot be inverted in floats.
        return np.where(ok, np.maximum(d - e, 0.0), -np.log(v) * self.scale)

    @property
    def mean(self) -> float:
        return self.shape * self.scale

    @property
    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)


@dataclass(frozen=True)
class Exponential(DurationModel):
    """Exponential durations with the given ``mean`` (memoryless: residuals ~ the same law)."""

    mean_duration: float = 1.0

    log_concave = True

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "mean_duration", _positive("mean_duration", self.mean_duration, "Exponential")
        )

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return -np.expm1(-np.maximum(np.asarray(t, dtype=float), 0.0) / self.mean_duration)

    def sf(self, t: ArrayLike) -> np.ndarray:
        return np.exp(-np.maximum(np.asarray(t, dtype=float), 0.0) / self.mean_duration)

    def isf(self, q: ArrayLike) -> np.ndarray:
        return -self.mean_duration * np.log(np.asarray(q, dtype=float))

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        return -self.mean_duration * np.log(v)

    @property
    def mean(self) -> float:
        return self.mean_duration

    @property
    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)


@dataclass(frozen=True)
class Uniform(DurationModel):
    """Durations uniform on ``[low, high]`` with ``0 <= low < high``."""

    low: float = 0.5
    high: float = 1.5

    log_concave = True

    def __post_init__(self) -> None:
        low = _finite("low", self.low, "Uniform")
        high = _finite("high", self.high, "Uniform")
        if low < 0.0:
            raise ValueError(f"Uniform.low must be >= 0 (durations), got {low!r}")
        if not high > low:
            raise ValueError(f"Uniform.high must be > low={low!r}, got {high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def cdf(self, t: ArrayLike) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return np.clip((t - self.low) / (self.high - self.low), 0.0, 1.0)

    def sf(self, t: ArrayLike) -> np.ndarray:
        return 1.0 - self.cdf(t)

    def isf(self, q: ArrayLike) -> np.ndarray:
        return self.high - np.asarray(q, dtype=float) * (self.high - self.low)

    def _residual_from_uniform(self, v: np.ndarray, e: np.ndarray) -> np.ndarray:
        a = np.maximum(e, self.low)
        return np.where(e < self.high, a + (1.0 - v) * (self.high - a) - e, 0.0)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)


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
        vals = np.asarray(self.values, dtype=float)
        probs = np.asarray(self.probs, dtype=float)
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
        comps = tuple(self.components)
        w = np.asarray(self.weights, dtype=float)
        if len(comps) == 0 or not all(isinstance(c, DurationModel) for c in comps):
            raise TypeError("Mixture.components must be a non-empty sequence of DurationModel")
        if w.shape != (len(comps),):
            raise ValueError("Mixture.weights must have one weight per component")
        if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9):
            raise ValueError("Mixture.weights must be >= 0 and sum to 1")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "weights", tuple(float(x) for x in w))

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


def as_duration_model(obj: Any, name: str = "duration") -> DurationModel:
    """Validate that ``obj`` is a :class:`DurationModel` (raises ``TypeError`` otherwise)."""
    if not isinstance(obj, DurationModel):
        raise TypeError(
            f"{name} must be a labsched.envs.durations.DurationModel instance "
            f"(e.g. TruncatedNormal(), Gamma(shape, scale)), got {type(obj).__name__}"
        )
    return obj


def parse_duration(text: str) -> DurationModel:
    """Parse a command-line duration such as ``"truncnorm:1,0.316"`` or ``"gamma:10,0.1"``.

    Known forms: ``truncnorm:mu,sigma``, ``lognormal:mu,sigma``, ``gamma:shape,scale``,
    ``exponential:mean``, ``uniform:low,high``, ``deterministic:value``.
    """
    kinds: dict[str, type[DurationModel]] = {
        "truncnorm": TruncatedNormal,
        "lognormal": LogNormal,
        "gamma": Gamma,
        "exponential": Exponential,
        "uniform": Uniform,
        "deterministic": Deterministic,
    }
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    if kind not in kinds:
        raise ValueError(f"unknown duration kind {kind!r}; known: {', '.join(sorted(kinds))}")
    try:
        params: Sequence[float] = [float(a) for a in args.split(",") if a.strip()]
    except ValueError as exc:
        raise ValueError(f"duration parameters must be numbers, got {args!r}") from exc
    return kinds[kind](*params)
