"""Continuous duration laws: truncated normal, log-normal, gamma, exponential and uniform.

Sampling is by inversion of the survival function, ``D = isf(V * sf(e))`` with
``V ~ U(0, 1]``, done in log space for the normal-based models so that deep-tail conditioning
(``elapsed`` many standard deviations above the mean) stays exact.  No ``scipy.stats`` object is
touched in the hot path: only NumPy and ``scipy.special`` ufuncs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from labsched.envs.labs.duration_model import (
    ArrayLike,
    DurationModel,
    _finite,
    _positive,
    _uniform_open0,
    check_representable,
)

__all__ = ["Exponential", "Gamma", "LogNormal", "TruncatedNormal", "Uniform"]

#: Log of the largest double: ``exp`` of anything above overflows.
_LOG_HUGE = math.log(np.finfo(float).max)
#: Log of the smallest positive (subnormal) double: ``exp`` of anything below is 0.
_LOG_TINY = math.log(np.finfo(float).smallest_subnormal)
#: The standard normal's ``1 - 2**-53`` quantile (see ``duration_model.EXTREME_SF``).
_Z_EXTREME = float(-special.ndtri(2.0**-53))


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
        check_representable(self, "mu, sigma, low and high giving a finite mean and quantiles (<< 1e308)")

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

    def sample_columns(self, rngs: list[np.random.Generator], n: int) -> np.ndarray:
        if self._cache["log_mass"] < math.log(0.5) or not rngs:
            return super().sample_columns(rngs, n)
        # The first normal draw of every generator, written in place into one preallocated
        # block and transformed and checked in one pass; the rare columns with rejects redraw
        # exactly as sample() does.
        z = np.empty((len(rngs), n))
        for rng, row in zip(rngs, z, strict=True):
            rng.standard_normal(out=row)
        x = z.T
        x *= self.sigma
        x += self.mu
        bad = (x <= self.low) | (x > self.high)
        for j in np.flatnonzero(bad.any(axis=0)).tolist():
            col, b = x[:, j], bad[:, j]
            while b.any():
                col[b] = self.mu + self.sigma * rngs[j].standard_normal(int(b.sum()))
                b = (col <= self.low) | (col > self.high)
        return x

    def sample_episode_columns(self, rngs: list[np.random.Generator], n: int, episodes: int) -> np.ndarray:
        """``(episodes, n, len(rngs))`` durations: ``[q, :, j]`` equals the ``q``-th of
        ``episodes`` successive ``sample(rngs[j], n)`` calls, drawn with one call per generator.

        In the rejection regime a generator's normal draws form one stream: each ``sample`` call
        takes the next ``n`` values and redraws its rejects from the values that follow, so the
        next ``episodes * n`` values hold all the episodes unless one has rejects; only those
        generators replay the stream in Python (and draw past the block where rejects need it).
        """
        if self._cache["log_mass"] < math.log(0.5) or not rngs:
            out = np.empty((episodes, n, len(rngs)))
            for j, rng in enumerate(rngs):
                for q in range(episodes):
                    out[q, :, j] = self.sample(rng, n)
            return out
        x = np.empty((len(rngs), episodes * n))
        for rng, row in zip(rngs, x, strict=True):
            rng.standard_normal(out=row)
        x *= self.sigma
        x += self.mu
        bad = (x <= self.low) | (x > self.high)
        for j in np.flatnonzero(bad.any(axis=1)).tolist():
            x[j] = self._replay_stream(rngs[j], x[j], n, episodes)
        return x.reshape(len(rngs), episodes, n).transpose(1, 2, 0)

    def _replay_stream(
        self, rng: np.random.Generator, block: np.ndarray, n: int, episodes: int
    ) -> np.ndarray:
        """The ``episodes`` successive ``sample(rng, n)`` draws of a stream whose next values
        (already transformed) are ``block``, which has a reject; values past the block come from
        ``rng``. Episodes before the first reject are the block's values as they stand; the others
        replay ``sample`` on Python floats (a few values, where NumPy calls cost more)."""
        low, high = self.low, self.high
        out = block.copy()
        stream = block.tolist()
        last_bad = np.flatnonzero((block <= low) | (block > high))
        pos = int(last_bad[0]) // n * n
        last_bad = int(last_bad[-1])

        def take(count: int) -> list[float]:
            nonlocal pos
            if pos + count > len(stream):
                more = self.mu + self.sigma * rng.standard_normal(pos + count - len(stream))
                stream.extend(more.tolist())
            pos += count
            return stream[pos - count : pos]

        for q in range(pos // n, episodes):
            if pos > last_bad:  # no reject left in the block: the rest is contiguous, if all good
                rest = take((episodes - q) * n)
                if not any(v <= low or v > high for v in rest):
                    out[q * n :] = rest
                    break
                pos -= len(rest)
            x = take(n)
            bad = [i for i, v in enumerate(x) if v <= low or v > high]
            while bad:  # as sample(): the rejects, in order, take the stream's next values
                for i, v in zip(bad, take(len(bad)), strict=True):
                    x[i] = v
                bad = [i for i in bad if x[i] <= low or x[i] > high]
            out[q * n : (q + 1) * n] = x
        return out

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
        log_mean = self.mu + 0.5 * self.sigma * self.sigma  # no OverflowError for a huge sigma
        log_top = self.mu + _Z_EXTREME * self.sigma
        if not (_LOG_TINY < log_mean and log_mean < _LOG_HUGE and log_top < _LOG_HUGE):
            raise ValueError(
                f"LogNormal(mu={self.mu!r}, sigma={self.sigma!r}) cannot be used: its mean "
                f"exp(mu + sigma**2 / 2) or its 1 - 2**-53 quantile exp(mu + {_Z_EXTREME:.3f} sigma) "
                f"is not a finite double > 0; allowed: {_LOG_TINY:.2f} < mu + sigma**2 / 2 and "
                f"mu + {_Z_EXTREME:.3f} * sigma < {_LOG_HUGE:.2f} (log of the largest double)"
            )

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
        check_representable(self, "shape > 0 and scale > 0 with shape * scale (the mean) well below 1e308")

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
        check_representable(self, "0 < mean_duration < 4.9e306 (its 1 - 2**-53 quantile is 36.7 times it)")

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
        check_representable(self, "0 <= low < high with low + high < 1.79e308 (the mean is finite)")

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
