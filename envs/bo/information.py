"""Information-gain acquisition values and the integrated-variance goal.

Acquisition classes (built on one model, called on an ``(m, d)`` array of inputs, larger is better):

* :class:`IntegratedVarianceReduction` - the expected drop of the posterior variance of the latent
  function, averaged over a fixed quasi-random set ``Z`` covering the box, when one more
  (noisy) observation is made at ``x``:
  ``IVR(x) = mean_z cov_n(z, x)^2 / (var_n(x) + noise)``.  For a GP the drop does not depend on
  the observed value, so it is exact, and ``IV_n - IVR(x)`` is the integrated variance of the
  model conditioned on ``x`` (as BoTorch's ``qNegIntegratedPosteriorVariance``, which reports
  minus the latter).
* :class:`MaxValueEntropy` - max-value entropy search (Wang & Jegelka 2017): the mutual information
  between an observation at ``x`` and the maximum value ``y*``, averaged over ``K`` samples of
  ``y*``: ``mean_k [gamma_k phi(gamma_k) / (2 Phi(gamma_k)) - log Phi(gamma_k)]`` with
  ``gamma_k = (y*_k - mu(x)) / sigma(x)`` (nats; the noise-free form of the paper, fitting this
  package's near-noiseless GP).  :func:`sample_max_values` draws ``y*`` from a Gumbel fitted to
  ``P(y* < y) ~ prod_i Phi((y - mu_i) / sigma_i)`` over a candidate set (the paper's Gumbel
  approximation) or as maxima of joint posterior draws over the candidates.

The goal: :func:`integrated_variance` (the mean posterior variance over :func:`integration_points`,
a fixed unscrambled Sobol' set mapped onto the box) and :func:`posterior_rmse` (the posterior mean
against the true function on the same set) are what the labs environment reports at the end of
an episode and pays with ``reward="information"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special
from scipy.stats import qmc

from labsched.envs._lib.validation import check_choice, check_generator, check_int
from labsched.envs.bo.acquisition import incumbent
from labsched.envs.bo.box import check_bounds, from_unit
from labsched.envs.bo.gp import GaussianProcess

__all__ = [
    "DEFAULT_INTEGRATION_POINTS",
    "IntegratedVarianceReduction",
    "MaxValueEntropy",
    "integrated_variance",
    "integration_points",
    "posterior_rmse",
    "sample_max_values",
]

#: Size of the fixed Sobol' set of the integrated-variance goal.
DEFAULT_INTEGRATION_POINTS = 1024


@functools.lru_cache(maxsize=32)
def _unit_sobol(dim: int, n: int) -> np.ndarray:
    m = max(0, math.ceil(math.log2(n)))
    pts = qmc.Sobol(dim, scramble=False).random_base2(m)[:n]
    pts.setflags(write=False)
    return pts


def integration_points(bounds: Any, n: int = DEFAULT_INTEGRATION_POINTS) -> np.ndarray:
    """The fixed integration set: the first ``n`` points of the unscrambled Sobol' sequence of
    dimension ``d`` (``n`` is rounded up to a power of two for generation, then cut), mapped
    onto ``bounds``.  Deterministic: the same bounds and ``n`` always give the same points."""
    b = check_bounds(bounds)
    n = check_int("n", n, 1)
    return from_unit(_unit_sobol(b.shape[0], n), b)


def integrated_variance(gp: GaussianProcess, Z: np.ndarray) -> float:
    """Mean posterior variance of the latent function over the rows of ``Z`` (original units).

    With ``Z = integration_points(bounds)`` this approximates ``(1 / |box|) * integral var(x) dx``.
    """
    _, std = gp.predict(Z)
    return float(np.mean(std * std))


def posterior_rmse(gp: GaussianProcess, f: Callable[[np.ndarray], Any], Z: np.ndarray) -> float:
    """Root mean squared error of the posterior mean against ``f`` over the rows of ``Z``."""
    mean = gp.predict(Z, return_std=False)
    truth = np.asarray(f(Z), dtype=float).reshape(Z.shape[0])
    return float(np.sqrt(np.mean((mean - truth) ** 2)))


class IntegratedVarianceReduction:
    """``IVR(x) = mean_z cov_n(z, x)^2 / (var_n(x) + noise)`` over the integration set ``Z``.

    Args:
        model: the GP (for a batch: conditioned on the pending and already chosen inputs).
        Z: the ``(q, d)`` integration set, e.g. :func:`integration_points`.

    ``integrated_variance(model, Z) - IVR(x)`` equals ``integrated_variance`` of the model
    conditioned on one observation at ``x`` (with the model's noise variance).
    """

    def __init__(self, model: GaussianProcess, Z: np.ndarray) -> None:
        self.model = model
        self.Z = Z
        scale = model.standardization[1]
        self.noise = model.hyperparameters.noise_variance * scale**2

    def __call__(self, X: np.ndarray) -> np.ndarray:
        cov = self.model.predict_cross_cov(self.Z, X)  # (q, m)
        _, std = self.model.predict(X)
        denom = std * std + self.noise
        with np.errstate(divide="ignore", invalid="ignore"):
            red = np.mean(cov * cov, axis=0) / denom
        return np.where(denom > 0.0, red, 0.0)


class MaxValueEntropy:
    """Max-value entropy search (Wang & Jegelka 2017) for maximisation, in nats.

    Args:
        model: the GP (for a batch: conditioned on the pending and already chosen inputs).
        max_values: ``(K,)`` samples of the maximum value ``y*`` (:func:`sample_max_values`).
    """

    def __init__(self, model: GaussianProcess, max_values: np.ndarray) -> None:
        self.model = model
        self.max_values = np.asarray(max_values, dtype=float).reshape(-1)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        mean, std = self.model.predict(X)
        sd = np.maximum(std, 1e-12 * max(float(np.max(std, initial=0.0)), 1e-300))
        gamma = (self.max_values[None, :] - mean[:, None]) / sd[:, None]  # (m, K)
        log_cdf = special.log_ndtr(gamma)
        log_pdf = -0.5 * gamma * gamma - 0.5 * math.log(2.0 * math.pi)
        value = 0.5 * gamma * np.exp(log_pdf - log_cdf) - log_cdf
        return np.where(std > 0.0, np.mean(value, axis=1), 0.0)


def sample_max_values(
    model: GaussianProcess,
    Xc: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    method: str = "gumbel",
    max_points: int = 512,
) -> np.ndarray:
    """``n`` samples of the maximum value of the latent function, each above the incumbent.

    Args:
        model: the GP.
        Xc: ``(m, d)`` candidate inputs standing for the domain.
        n: number of samples.
        rng: the only source of randomness.
        method: ``"gumbel"`` (Wang & Jegelka's Gumbel fit to ``prod_i Phi((y - mu_i) / sigma_i)``,
            its quartiles found by bisection) or ``"sample"`` (the maxima of ``n`` joint posterior
            draws over at most ``max_points`` of the candidates, a random subset when more).
        max_points: cap on the candidates of a joint draw (its cost is cubic).
    """
    n = check_int("n", n, 1)
    check_generator("rng", rng)
    method = check_choice("method", method, ("gumbel", "sample"))
    floor = incumbent(model)
    scale = model.standardization[1]
    if method == "sample":
        idx = np.arange(Xc.shape[0])
        if idx.size > max_points:
            idx = np.sort(rng.choice(idx, size=max_points, replace=False))
        draws = model.sample_posterior(Xc[idx], n, rng)
        return np.maximum(draws.max(axis=1), floor + 1e-6 * scale)
    mean, std = model.predict(Xc)
    std = np.maximum(std, 1e-9 * scale)

    def log_cdf(y: float) -> float:  # log P(y* < y)
        return float(np.sum(special.log_ndtr((y - mean) / std)))

    lo = max(float(np.max(mean)), floor)
    hi = lo + 10.0 * float(np.max(std)) + 1e-9 * scale
    while log_cdf(hi) < math.log(0.99):  # pragma: no cover - 10 sd almost always suffice
        hi += 10.0 * float(np.max(std))
    quartiles = []
    for q in (0.25, 0.5, 0.75):
        a, b = lo, hi
        if log_cdf(a) >= math.log(q):
            quartiles.append(a)
            continue
        for _ in range(60):
            mid = 0.5 * (a + b)
            a, b = (mid, b) if log_cdf(mid) < math.log(q) else (a, mid)
        quartiles.append(0.5 * (a + b))
    y25, y50, y75 = quartiles
    beta = max((y75 - y25) / (math.log(-math.log(0.25)) - math.log(-math.log(0.75))), 1e-9 * scale)
    loc = y50 + beta * math.log(-math.log(0.5))
    u = rng.random(n)
    return np.maximum(loc - beta * np.log(-np.log(u)), floor + 1e-6 * scale)
