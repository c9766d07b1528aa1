"""Acquisition values of the Bayesian-optimisation layer, kept apart from candidate generation.

Functions of posterior moments (:func:`expected_improvement`, :func:`probability_of_improvement`),
the incumbent of a model (:func:`incumbent`), a gradient-capable snapshot of a GP posterior
(:class:`Posterior`, used to polish EI maxima) and the small acquisition classes the selectors
score candidates with: :class:`ExpectedImprovement` here, :class:`~labsched.envs.bo.information.
MaxValueEntropy` and :class:`~labsched.envs.bo.information.IntegratedVarianceReduction` in
:mod:`labsched.envs.bo.information`.  An acquisition object is built on one model and called on an
``(m, d)`` array of inputs in the model's units; it returns ``(m,)`` values, larger is better.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special
from scipy.spatial.distance import cdist

from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.linalg import tri_solve

__all__ = [
    "ExpectedImprovement",
    "Posterior",
    "ei_unsafe",
    "expected_improvement",
    "incumbent",
    "probability_of_improvement",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def expected_improvement(mean: Any, std: Any, incumbent: Any) -> np.ndarray:
    """Expected improvement over ``incumbent`` for **maximisation**, elementwise.

    ``EI = E[max(f - incumbent, 0)] = (mean - incumbent) * Phi(z) + std * phi(z)`` with
    ``z = (mean - incumbent) / std``; where ``std`` is zero it is ``max(mean - incumbent, 0)``.
    The arguments broadcast against each other.
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    imp = mu - np.asarray(incumbent, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = imp / sd
        ei = imp * special.ndtr(z) + sd * np.exp(-0.5 * z * z) / _SQRT_2PI
    return np.where(sd > 0.0, np.maximum(ei, 0.0), np.maximum(imp, 0.0))


def ei_unsafe(imp: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Expected improvement from ``imp = mean - incumbent`` and ``sd > 0`` (no special cases)."""
    z = imp / sd
    out = special.ndtr(z)
    out *= imp
    z *= z
    z *= -0.5
    np.exp(z, out=z)
    z *= sd
    z *= 1.0 / _SQRT_2PI
    out += z
    return out


def probability_of_improvement(mean: np.ndarray, std: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Probability that ``f`` exceeds ``target`` (maximisation); where ``std`` is zero, 0 or 1."""
    imp = mean - target
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = special.ndtr(imp / std)
    return np.where(std > 0.0, pi, (imp > 0.0).astype(float))


def incumbent(gp: GaussianProcess) -> float:
    """Best posterior mean over the points the model is conditioned on (real and fantasy)."""
    if gp.n_observations == 0:
        return float(gp.standardization[0])
    return float(np.max(gp.predict(gp.X, return_std=False)))


class Posterior:
    """A read-only snapshot of a GP's posterior on unit-cube inputs, with gradients.

    Built from the GP's public state (observed inputs, ``alpha``, Cholesky factor,
    standardisation and hyperparameters); used to polish acquisition maxima with L-BFGS-B.
    """

    def __init__(self, gp: GaussianProcess) -> None:
        hp = gp.hyperparameters
        b = gp.bounds
        self.ell = hp.lengthscales(gp.dim)
        self.s2 = hp.signal_variance
        self.offset, self.scale = gp.standardization
        self.n = gp.n_observations
        self.U = (gp.X - b[:, 0]) / (b[:, 1] - b[:, 0])
        self.L = np.asfortranarray(gp.cholesky_factor)
        self.alpha = gp.alpha
        self.inv_ell2 = 1.0 / self.ell**2

    def mean_std(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at the rows of ``U`` (unit cube)."""
        if self.n == 0:
            return np.full(U.shape[0], self.offset), np.full(U.shape[0], self.scale * math.sqrt(self.s2))
        K = self.s2 * np.exp(-0.5 * cdist(U / self.ell, self.U / self.ell, "sqeuclidean"))
        mean = self.offset + self.scale * (K @ self.alpha)
        V = tri_solve(self.L, K.T)
        var = np.clip(self.s2 - np.einsum("ij,ij->j", V, V), 0.0, None)
        return mean, self.scale * np.sqrt(var)

    def ei_and_grad(self, u: np.ndarray, incumbent: float) -> tuple[float, np.ndarray]:
        """Expected improvement (in standardised units) at one point and its gradient in ``u``."""
        if self.n == 0:
            sd = math.sqrt(self.s2)
            z = (self.offset - incumbent) / self.scale / sd
            return float(sd * (z * special.ndtr(z) + math.exp(-0.5 * z * z) / _SQRT_2PI)), np.zeros_like(u)
        diff = u[None, :] - self.U  # (n, d)
        k = self.s2 * np.exp(-0.5 * ((diff * diff) @ self.inv_ell2))
        G = -diff * self.inv_ell2  # d k_i / d u = k_i * G_i
        mu = (self.offset - incumbent) / self.scale + float(k @ self.alpha)
        dmu = (self.alpha * k) @ G
        v = tri_solve(self.L, k)
        var = self.s2 - float(v @ v)
        if not var > 1e-18 * self.s2:
            return max(mu, 0.0), (dmu if mu > 0.0 else np.zeros_like(u))
        w = tri_solve(self.L, v, transpose=True)
        dvar = -2.0 * ((w * k) @ G)
        sd = math.sqrt(var)
        dsd = dvar / (2.0 * sd)
        z = mu / sd
        cdf = float(special.ndtr(z))
        pdf = math.exp(-0.5 * z * z) / _SQRT_2PI
        return mu * cdf + sd * pdf, cdf * dmu + pdf * dsd


class ExpectedImprovement:
    """Expected improvement of ``model`` over its :func:`incumbent` (maximisation).

    Args:
        model: the (possibly fantasised) GP.
        best_f: the incumbent; default :func:`incumbent` of ``model``.
    """

    def __init__(self, model: GaussianProcess, best_f: float | None = None) -> None:
        self.model = model
        self.best_f = incumbent(model) if best_f is None else float(best_f)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        mean, std = self.model.predict(X)
        return expected_improvement(mean, std, self.best_f)
