"""The interface every experiment-duration model implements, and the checks they share.

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

Every model checks at construction that its parameters give a usable law in floating point
(:func:`check_representable`): a finite mean > 0 and a finite largest quantile, so that an
environment never meets an ``OverflowError`` or an infinite duration later.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["EXTREME_SF", "DurationModel", "as_duration_model", "check_representable"]

ArrayLike = Any

#: The smallest survival probability a sampler can invert: sampling draws ``V`` in ``(0, 1]`` on
#: a grid of ``2**-53``, so ``isf(EXTREME_SF)`` is the longest duration a model can produce.
EXTREME_SF = 2.0**-53


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

    def sample_columns(self, rngs: list[np.random.Generator], n: int) -> np.ndarray:
        """``(n, len(rngs))`` durations, column ``j`` equal to ``sample(rngs[j], n)``.

        The vector environment draws every reset episode's durations from that episode's own
        generator (so each sub-environment reproduces the single environment); subclasses may
        batch the arithmetic as long as each column stays exactly ``sample(rngs[j], n)``.
        """
        out = np.empty((n, len(rngs)))
        for j, rng in enumerate(rngs):
            out[:, j] = self.sample(rng, n)
        return out

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


def check_representable(model: DurationModel, allowed: str = "") -> None:
    """Refuse parameters whose law cannot be used in floating point.

    The mean must be finite and > 0 (the environment scales elapsed times by ``1 / E[D]``), and
    the longest duration a sampler can draw, ``isf(EXTREME_SF)`` (the ``1 - 2**-53`` quantile),
    must be finite.

    Args:
        model: a freshly constructed model.
        allowed: the allowed parameter range, stated in the error (e.g. ``"mu + sigma**2 / 2 <
            709.78"``); a generic statement is used when empty.

    Raises:
        ValueError: naming the model, its parameters and the allowed range.
    """
    try:
        mean = float(model.mean)
    except OverflowError:
        mean = math.inf
    with np.errstate(all="ignore"):
        top = float(np.asarray(model.isf(EXTREME_SF), dtype=float))
    if math.isfinite(mean) and mean > 0.0 and math.isfinite(top):
        return
    what = (
        f"its mean duration is {mean!r}"
        if not (math.isfinite(mean) and mean > 0.0)
        else f"its 1 - 2**-53 quantile (the longest duration it can draw) is {top!r}"
    )
    rule = allowed or "parameters giving a finite mean > 0 and finite quantiles in double precision"
    raise ValueError(f"{model!r} cannot be used: {what}; allowed: {rule}")


def as_duration_model(obj: Any, name: str = "duration") -> DurationModel:
    """Validate that ``obj`` is a :class:`DurationModel` (raises ``TypeError`` otherwise)."""
    if not isinstance(obj, DurationModel):
        raise TypeError(
            f"{name} must be a labsched.envs.labs.durations.DurationModel instance "
            f"(e.g. TruncatedNormal(), Gamma(shape, scale)), got {type(obj).__name__}"
        )
    return obj
