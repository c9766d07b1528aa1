"""Significance tests of online experiments and their power.

An interleaving experiment's verdict is the paper's Equation 1 with a two-sided binomial sign
test over the non-tied sessions; an A/B test's is the click-through-rate difference with a
pooled two-proportion z-test. The power functions give the probability ``P(e)`` that an
experiment of ``n`` sessions succeeds (normal approximations). All functions are vectorised.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

__all__ = [
    "ABOutcome",
    "InterleavingOutcome",
    "ab_power",
    "ab_test",
    "fast_verdicts",
    "interleaving_power",
    "interleaving_test",
]


class InterleavingOutcome(NamedTuple):
    """An interleaving experiment's counts and verdict (arrays when vectorised).

    Attributes:
        n_sessions: sessions run.
        wins_a, wins_b, ties: session counts.
        statistic: Equation 1, ``(wins_b + ties / 2) / n - 1/2`` (0 for ``n = 0``).
        z: sign-test z score ``(wins_b - wins_a) / sqrt(wins_a + wins_b)`` (0 without wins).
        p_value: two-sided binomial sign test over the non-tied sessions.
        success: ``p_value < alpha and wins_b > wins_a``.
    """

    n_sessions: Any
    wins_a: Any
    wins_b: Any
    ties: Any
    statistic: Any
    z: Any
    p_value: Any
    success: Any


class ABOutcome(NamedTuple):
    """An A/B test's counts and verdict (arrays when vectorised).

    Attributes:
        n_sessions: sessions run (``sessions_a + sessions_b``).
        sessions_a, clicks_a, sessions_b, clicks_b: per-arm sessions and sessions with a click.
        statistic: ``CTR_B - CTR_A`` (the paper's ``sigma_B - sigma_A``).
        z: pooled two-proportion z score.
        p_value: two-sided p-value of the z-test.
        success: ``p_value < alpha and CTR_B > CTR_A``.
    """

    n_sessions: Any
    sessions_a: Any
    clicks_a: Any
    sessions_b: Any
    clicks_b: Any
    statistic: Any
    z: Any
    p_value: Any
    success: Any


def interleaving_test(wins_a: Any, wins_b: Any, ties: Any, alpha: float) -> InterleavingOutcome:
    """Equation 1 and the two-sided sign test for (arrays of) interleaving counts."""
    wa = np.asarray(wins_a, dtype=np.int64)
    wb = np.asarray(wins_b, dtype=np.int64)
    tt = np.asarray(ties, dtype=np.int64)
    n = wa + wb + tt
    decided = wa + wb
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.where(n > 0, (wb + 0.5 * tt) / np.maximum(n, 1) - 0.5, 0.0)
        z = np.where(decided > 0, (wb - wa) / np.sqrt(np.maximum(decided, 1)), 0.0)
    lo = np.minimum(wa, wb)
    # special.bdtr is the binomial CDF (the ufunc, without scipy.stats' per-call overhead)
    p = np.where(decided > 0, np.minimum(1.0, 2.0 * special.bdtr(lo, np.maximum(decided, 1), 0.5)), 1.0)
    p = np.where(wa == wb, 1.0, p)
    success = (p < alpha) & (wb > wa)
    return InterleavingOutcome(n, wa, wb, tt, statistic, z, p, success)


def ab_test(sessions_a: Any, clicks_a: Any, sessions_b: Any, clicks_b: Any, alpha: float) -> ABOutcome:
    """Click-through-rate difference and the two-sided pooled two-proportion z-test."""
    na = np.asarray(sessions_a, dtype=np.int64)
    ca = np.asarray(clicks_a, dtype=np.int64)
    nb = np.asarray(sessions_b, dtype=np.int64)
    cb = np.asarray(clicks_b, dtype=np.int64)
    ok = (na > 0) & (nb > 0)
    fa = ca / np.maximum(na, 1)
    fb = cb / np.maximum(nb, 1)
    pooled = (ca + cb) / np.maximum(na + nb, 1)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / np.maximum(na, 1) + 1.0 / np.maximum(nb, 1)))
    statistic = np.where(ok, fb - fa, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(ok & (se > 0), statistic / np.where(se > 0, se, 1.0), 0.0)
    p = 2.0 * special.ndtr(-np.abs(z))  # = 2 * stats.norm.sf(|z|)
    success = (p < alpha) & (statistic > 0)
    return ABOutcome(na + nb, na, ca, nb, cb, statistic, z, p, success)


def interleaving_power(probs: np.ndarray, n_sessions: Any, alpha: float) -> np.ndarray:
    """Probability ``P(e)`` that an interleaving experiment of ``n`` sessions succeeds.

    ``probs`` is ``(..., 3)`` (A wins, B wins, tie). Normal approximation of the sign test:
    ``X = wins_B - wins_A`` has mean ``n (p_B - p_A)`` and variance
    ``n (p_A + p_B - (p_B - p_A)^2)``; success is ``X > z_{1 - alpha/2} sqrt(n (p_A + p_B))``.
    """
    probs = np.asarray(probs, dtype=float)
    n = np.asarray(n_sessions, dtype=float)
    pa, pb = probs[..., 0], probs[..., 1]
    d = pb - pa
    zc = -special.ndtri(alpha / 2.0)  # = stats.norm.isf(alpha / 2)
    var = np.maximum(n * (pa + pb - d * d), 1e-300)
    return special.ndtr((n * d - zc * np.sqrt(n * (pa + pb))) / np.sqrt(var))


def ab_power(ctr: np.ndarray, n_sessions: Any, alpha: float) -> np.ndarray:
    """Probability ``P(e)`` that an A/B test of ``n`` sessions (``n // 2`` on A) succeeds.

    ``ctr`` is ``(..., 2)`` true click-through rates (A, B). Normal approximation of the
    z-test: ``CTR_B - CTR_A`` must exceed ``z_{1 - alpha/2}`` pooled standard errors.
    """
    ctr = np.asarray(ctr, dtype=float)
    n = np.asarray(n_sessions, dtype=float)
    na = np.floor(n / 2.0)
    nb = n - na
    pa, pb = ctr[..., 0], ctr[..., 1]
    pooled = (na * pa + nb * pb) / np.maximum(n, 1)
    zc = -special.ndtri(alpha / 2.0)  # = stats.norm.isf(alpha / 2)
    inv = 1.0 / np.maximum(na, 1) + 1.0 / np.maximum(nb, 1)
    se0 = np.sqrt(pooled * (1 - pooled) * inv)
    se1 = np.maximum(np.sqrt(pa * (1 - pa) / np.maximum(na, 1) + pb * (1 - pb) / np.maximum(nb, 1)), 1e-300)
    return special.ndtr((pb - pa - zc * se0) / se1)


def fast_verdicts(
    experiment_type: str, law: np.ndarray, n_sessions: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(success, statistic)`` of one run of ``n_sessions`` sessions per experiment.

    The same draws and verdicts as ``ExperimentDataset.sample_outcomes`` (one multinomial per
    interleaving experiment, or one binomial per A/B arm, from ``rng`` in that order), without
    building the full outcome records: what the queue environment needs at every reset.

    Args:
        experiment_type: ``"interleaving"`` or ``"ab"``.
        law: ``(E, 3)`` normalised (A wins, B wins, tie) probabilities, or ``(E, 2)`` CTRs.
        n_sessions: ``(E,)`` sessions per run.
        rng: the generator.
        alpha: significance level.
    """
    n = np.asarray(n_sessions, dtype=np.int64)
    if experiment_type == "interleaving":
        if n.size == 0:
            return np.zeros(0, dtype=bool), np.zeros(0)
        wa, wb, ties = rng.multinomial(n, law).T
        # interleaving_test's verdict and Equation 1, with the sign test only where B leads.
        statistic = (wb + 0.5 * ties) / np.maximum(n, 1) - 0.5
        statistic[n == 0] = 0.0
        success = wb > wa
        lead = np.flatnonzero(success)
        success[lead] = 2.0 * special.bdtr(wa[lead], wa[lead] + wb[lead], 0.5) < alpha
        return success, statistic
    na = n // 2
    nb = n - na
    ca = rng.binomial(na, law[:, 0])
    cb = rng.binomial(nb, law[:, 1])
    # ab_test's verdict and statistic, with the z-test only where B's CTR is higher.
    ok = (na > 0) & (nb > 0)
    statistic = np.where(ok, cb / np.maximum(nb, 1) - ca / np.maximum(na, 1), 0.0)
    success = statistic > 0
    up = np.flatnonzero(success)
    pooled = (ca[up] + cb[up]) / (na[up] + nb[up])
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / na[up] + 1.0 / nb[up]))
    z = np.divide(statistic[up], se, out=np.zeros(up.size), where=se > 0)
    success[up] = 2.0 * special.ndtr(-z) < alpha
    return success, statistic
