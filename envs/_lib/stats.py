"""Small, exact statistics for judging schedulers: means with t intervals, Wilson intervals of a
completion rate, the p-safe verdict and paired differences (pure NumPy/SciPy).

* :func:`mean_ci` - mean of per-episode values with a two-sided Student-t confidence interval.
* :func:`wilson_ci` - Wilson score interval of a proportion (``scipy.stats.binomtest(k, n)
  .proportion_ci(method="wilson")`` gives the same numbers).
* :func:`p_safe_verdict` - is the completion rate *not significantly below* ``p``? A one-sided
  exact binomial test of ``H0: rate >= p`` against ``rate < p``; the scheduler is p-safe when
  ``H0`` is not rejected at level ``alpha`` (``p_value >= alpha``).
* :func:`paired_difference` - mean of ``a - b`` over the same episodes (common random numbers)
  with a t interval, the paired t-test p-value and, optionally, the Wilcoxon signed-rank p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = [
    "MeanCI",
    "PSafeVerdict",
    "PairedDifference",
    "Proportion",
    "mean_ci",
    "p_safe_verdict",
    "paired_difference",
    "wilson_ci",
]


def _level(confidence: Any) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.integer, np.floating)):
        raise TypeError(f"confidence must be a real number in (0, 1), got {type(confidence).__name__}")
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence must satisfy 0 < confidence < 1, got {c!r}")
    return c


def _values(name: str, values: Any, min_size: int = 1) -> np.ndarray:
    x = np.asarray(values, dtype=float).reshape(-1) if not np.isscalar(values) else None
    if x is None:
        raise TypeError(f"{name} must be a sequence of numbers, got a scalar {values!r}")
    if x.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} value(s), got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must contain only finite numbers")
    return x


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class MeanCI:
    """Mean with a two-sided confidence interval.

    Attributes:
        mean: sample mean.
        std_error: ``s / sqrt(n)`` (0 for a single value).
        low: lower end of the interval.
        high: upper end.
        n: sample size.
        confidence: interval level.
    """

    mean: float
    std_error: float
    low: float
    high: float
    n: int
    confidence: float


@dataclass(frozen=True)
class Proportion:
    """A proportion ``k / n`` with its Wilson score interval.

    Attributes:
        successes: ``k``.
        n: trials.
        rate: ``k / n``.
        std_error: ``sqrt(rate (1 - rate) / n)``.
        low: Wilson lower bound.
        high: Wilson upper bound.
        confidence: interval level.
    """

    successes: int
    n: int
    rate: float
    std_error: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class PSafeVerdict:
    """The p-safe verdict of a completion count.

    Attributes:
        completion: the completion rate with its Wilson 95% interval.
        p: the demanded completion probability.
        p_value: one-sided exact binomial p-value ``P(X <= k | n, p)``.
        alpha: the test level.
        safe: ``p_value >= alpha`` (completion not significantly below ``p``).
    """

    completion: Proportion
    p: float
    p_value: float
    alpha: float
    safe: bool


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a - b`` over paired episodes.

    Attributes:
        diff: mean difference with its t interval.
        t_p_value: two-sided paired t-test p-value (1.0 when every difference is 0).
        wilcoxon_p_value: two-sided Wilcoxon signed-rank p-value (None unless asked; 1.0 when
            every difference is 0).
    """

    diff: MeanCI
    t_p_value: float
    wilcoxon_p_value: float | None = None


def mean_ci(values: Any, confidence: float = 0.95) -> MeanCI:
    """Mean of ``values`` with a two-sided Student-t interval.

    Args:
        values: 1-D finite numbers (at least 1; with 1 the interval is the point).
        confidence: interval level in (0, 1).

    Raises:
        ValueError: empty input, non-finite values or a level outside (0, 1).
    """
    level = _level(confidence)
    x = _values("values", values)
    n, mean = x.size, float(x.mean())
    if n == 1:
        return MeanCI(mean, 0.0, mean, mean, 1, level)
    se = float(x.std(ddof=1) / math.sqrt(n))
    half = float(_st.t.ppf(0.5 + level / 2.0, n - 1)) * se
    return MeanCI(mean, se, mean - half, mean + half, n, level)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Proportion:
    """Wilson score interval of the proportion ``successes / n``.

    Args:
        successes: number of successes ``0 <= k <= n``.
        n: number of trials (>= 1).
        confidence: two-sided level in (0, 1).
    """
    level = _level(confidence)
    n = _count("n", n, 1)
    k = _count("successes", successes, 0)
    if k > n:
        raise ValueError(f"successes must be <= n={n}, got {k}")
    z = float(_st.norm.ppf(0.5 + level / 2.0))
    rate = k / n
    denom = 1.0 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denom
    # The Wilson bounds are exactly 0 at k = 0 and 1 at k = n (avoid rounding just inside).
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Proportion(k, n, rate, math.sqrt(rate * (1 - rate) / n), low, high, level)


def p_safe_verdict(successes: int, n: int, p: float, alpha: float = 0.05) -> PSafeVerdict:
    """Whether a completion count is p-safe: not significantly below ``p``.

    One-sided exact binomial test of ``H0: rate >= p`` against ``H1: rate < p``
    (``scipy.stats.binomtest(k, n, p, alternative="less")``); p-safe when ``p_value >= alpha``.

    Args:
        successes: episodes that completed all experiments.
        n: episodes.
        p: demanded completion probability in (0, 1).
        alpha: test level in (0, 1).
    """
    alpha = _alpha(alpha)
    prop = wilson_ci(successes, n, 0.95)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p must be a real number in (0, 1), got {type(p).__name__}")
    if not 0.0 < float(p) < 1.0:
        raise ValueError(f"p must satisfy 0 < p < 1, got {p!r}")
    pv = float(_st.binom.cdf(prop.successes, prop.n, float(p)))
    pv = min(pv, 1.0)
    return PSafeVerdict(prop, float(p), pv, alpha, pv >= alpha)


def _alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a real number in (0, 0.5), got {type(alpha).__name__}")
    if not 0.0 < float(alpha) < 0.5:
        raise ValueError(f"alpha must satisfy 0 < alpha < 0.5, got {alpha!r}")
    return float(alpha)


def paired_difference(
    a: Any, b: Any, confidence: float = 0.95, *, wilcoxon: bool = False
) -> PairedDifference:
    """Mean of ``a - b`` over the same episodes, with a t interval and paired tests.

    Args:
        a: per-episode values of the first method.
        b: per-episode values of the reference, same episodes in the same order.
        confidence: interval level in (0, 1).
        wilcoxon: also compute the Wilcoxon signed-rank p-value.

    Raises:
        ValueError: arrays of different lengths, fewer than 2 pairs or non-finite values.
    """
    x = _values("a", a, 2)
    y = _values("b", b, 2)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length (paired episodes), got {x.size} and {y.size}")
    d = x - y
    ci = mean_ci(d, confidence)
    if np.all(d == d[0]):
        t_p = 1.0 if d[0] == 0 else 0.0
    else:
        t_p = float(_st.ttest_rel(x, y).pvalue)
    w_p = None
    if wilcoxon:
        w_p = 1.0 if np.all(d == 0) else float(_st.wilcoxon(x, y).pvalue)
    return PairedDifference(ci, t_p, w_p)
