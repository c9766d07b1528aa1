"""Log marginal likelihood of the GP and its maximisation over the log hyperparameters.

:class:`MarginalLikelihoodMixin` (a base class of ``GaussianProcess``) adds the model's
``log_marginal_likelihood``, ``fit_hyperparameters`` and ``leave_one_out``; it reads the model's
observations, factor, standardisation and hyperparameters (``_n``, ``_Ubuf``, ``_ybuf``,
``_Lbuf``, ``_alpha``, ``_offset``, ``_scale``, ``_hp``, ``_ell``, ``_s2``, ``_noise``, ``_dim``).
The functions work on the standardised outputs ``y_std`` and on ``sqd``, the per-dimension
squared unit-cube differences of the inputs (shape ``(n, n, d)``); the log hyperparameters
``theta`` are ``[log ell..., log signal_variance, log noise_variance]`` with one ``log ell``
(isotropic) or one per dimension (ARD). :class:`~labsched.envs.bo.gp.GaussianProcess` calls them
from ``log_marginal_likelihood`` and ``fit_hyperparameters``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, optimize

from labsched.envs._lib.validation import check_generator, check_int, check_real, real_array
from labsched.envs.bo.hyperparameters import HyperparameterFit
from labsched.envs.bo.linalg import cholesky_with_jitter, single_blas_thread, tri_solve

__all__ = [
    "LikelihoodOptimum",
    "MarginalLikelihoodMixin",
    "check_log_bounds",
    "log_marginal_likelihood",
    "maximize_log_marginal_likelihood",
]

ArrayLike = Any

_LOG_2PI = math.log(2.0 * math.pi)


def check_log_bounds(name: str, pair: Any) -> tuple[float, float]:
    """``log`` of a ``(low, high)`` pair of positive numbers with ``low < high``."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a (low, high) pair")
    lo = check_real(f"{name}[0]", pair[0], 0.0, low_open=True)
    hi = check_real(f"{name}[1]", pair[1], 0.0, low_open=True)
    if not lo < hi:
        raise ValueError(f"{name} must satisfy low < high, got {pair!r}")
    return math.log(lo), math.log(hi)


def log_marginal_likelihood(
    theta: np.ndarray, sqd: np.ndarray, y_std: np.ndarray, eval_gradient: bool
) -> tuple[float, np.ndarray]:
    """Log marginal likelihood of ``y_std`` and (optionally) its gradient w.r.t. ``theta``.

    Returns ``(lml, grad)``; ``grad`` is empty without ``eval_gradient``.
    """
    n = y_std.shape[0]
    p = theta.shape[0] - 2
    ell = np.exp(theta[:p])
    s2, noise = math.exp(theta[p]), math.exp(theta[p + 1])
    r2 = sqd @ (1.0 / ell**2) if p > 1 else sqd.sum(axis=2) / ell[0] ** 2
    Kf = s2 * np.exp(-0.5 * r2)
    K = Kf.copy()
    K[np.diag_indices(n)] += noise
    L, _ = cholesky_with_jitter(K, s2)
    alpha = linalg.cho_solve((L, True), y_std, check_finite=False)
    lml = -0.5 * float(y_std @ alpha) - float(np.sum(np.log(np.diagonal(L)))) - 0.5 * n * _LOG_2PI
    if not eval_gradient:
        return lml, np.zeros(0)
    W = np.outer(alpha, alpha) - linalg.cho_solve((L, True), np.eye(n), check_finite=False)
    WK = W * Kf
    grad = np.empty(p + 2)
    if p > 1:
        grad[:p] = 0.5 * np.einsum("ij,ijk->k", WK, sqd) / ell**2
    else:
        grad[0] = 0.5 * float(np.sum(WK * r2))
    grad[p] = 0.5 * float(np.sum(WK))
    grad[p + 1] = 0.5 * noise * float(np.trace(W))
    return lml, grad


@dataclass(frozen=True)
class LikelihoodOptimum:
    """The best log hyperparameters found by :func:`maximize_log_marginal_likelihood`.

    Attributes:
        theta: the winning log hyperparameters.
        log_marginal_likelihood: their log marginal likelihood.
        initial_log_marginal_likelihood: the same for the first start.
        n_starts: number of local optimisations.
        n_evaluations: likelihood-and-gradient evaluations, all starts together.
        converged: whether L-BFGS-B reported success for the winning start.
    """

    theta: np.ndarray
    log_marginal_likelihood: float
    initial_log_marginal_likelihood: float
    n_starts: int
    n_evaluations: int
    converged: bool


def maximize_log_marginal_likelihood(
    starts: list[np.ndarray], box: np.ndarray, sqd: np.ndarray, y_std: np.ndarray, maxiter: int
) -> LikelihoodOptimum:
    """L-BFGS-B with analytic gradients from every start, inside ``box`` (rows ``(low, high)``).

    The first start is the current point; the result is the best local optimum, or the first
    start itself when no optimum beats it (then ``converged`` is false).
    """
    n_eval = 0

    def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal n_eval
        n_eval += 1
        try:
            lml, grad = log_marginal_likelihood(t, sqd, y_std, True)
        except linalg.LinAlgError:
            return 1e25, np.zeros_like(t)
        return -lml, -grad

    theta0 = starts[0]
    lml0 = -objective(theta0)[0]
    runs = []  # (lml, theta, converged) of every local optimisation, then the starting point
    for t0 in starts:
        res = optimize.minimize(
            objective, t0, jac=True, method="L-BFGS-B", bounds=box, options={"maxiter": int(maxiter)}
        )
        if np.isfinite(res.fun):
            runs.append((-float(res.fun), res.x, bool(res.success)))
    runs.append((lml0, theta0, False))
    best_lml, best_t, converged = max(runs, key=lambda r: r[0])
    return LikelihoodOptimum(best_t, best_lml, lml0, len(starts), n_eval, converged)


class MarginalLikelihoodMixin:
    """Model evidence and validation methods of the GP (see the module docstring)."""

    @single_blas_thread
    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form leave-one-out predictive mean and variance of each observation.

        ``mean_i = y_i - alpha_i / [K^-1]_ii`` and ``var_i = 1 / [K^-1]_ii`` (variance of the noisy
        held-out observation), in original units; the standardisation and hyperparameters of the
        full data set are kept.  O(n^3).
        """
        n = self._n
        if n < 2:
            raise ValueError("leave_one_out needs at least 2 observations")
        Linv = tri_solve(self._Lbuf[:n, :n], np.eye(n))
        kinv_diag = np.einsum("ij,ij->j", Linv, Linv)
        mean_std = (self._ybuf[:n] - self._offset) / self._scale - self._alpha / kinv_diag
        return self._offset + self._scale * mean_std, self._scale**2 / kinv_diag

    def _check_theta(self, theta: Any) -> np.ndarray:
        t = real_array("theta", theta)
        if t.ndim != 1 or t.shape[0] not in (3, self._dim + 2):
            raise ValueError(
                f"theta must have length 3 (isotropic) or {self._dim + 2} (one lengthscale per dimension), "
                f"got shape {t.shape}"
            )
        return t

    def _lml_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension squared unit-cube differences ``(n, n, d)`` and the standardised outputs."""
        n = self._n
        U = self._Ubuf[:n]
        sqd = (U[:, None, :] - U[None, :, :]) ** 2
        y_std = (self._ybuf[:n] - self._offset) / self._scale
        return sqd, y_std

    @single_blas_thread
    def log_marginal_likelihood(
        self: Any, theta: ArrayLike | None = None, eval_gradient: bool = False
    ) -> float | tuple[float, np.ndarray]:
        """Log marginal likelihood of the standardised outputs (as scikit-learn reports it).

        Args:
            theta: log hyperparameters (see :attr:`theta`); ``None`` uses the current ones and,
                without a gradient, the current factor (including any per-point jitter).
                Length 3 means an isotropic lengthscale, ``d + 2`` one per dimension.
            eval_gradient: also return the gradient with respect to ``theta``.

        The standardisation of the current data is kept fixed.  Add ``-n * log(scale)`` (see
        :attr:`standardization`) for the density of ``y`` in original units.
        """
        if self._n == 0:
            raise ValueError("log_marginal_likelihood needs at least one observation")
        if theta is None and not eval_gradient:  # O(n) from the current factor and alpha
            n = self._n
            y_std = (self._ybuf[:n] - self._offset) / self._scale
            log_det = float(np.sum(np.log(np.diagonal(self._Lbuf[:n, :n]))))
            return -0.5 * float(y_std @ self._alpha) - log_det - 0.5 * n * _LOG_2PI
        t = self.theta if theta is None else self._check_theta(theta)
        if not np.all(np.isfinite(t)):
            raise ValueError("theta must be finite (a zero noise_variance has no log)")
        sqd, y_std = self._lml_data()
        lml, grad = log_marginal_likelihood(t, sqd, y_std, eval_gradient)
        return (lml, grad) if eval_gradient else lml

    @single_blas_thread
    def fit_hyperparameters(
        self,
        rng: np.random.Generator | None = None,
        *,
        n_restarts: int = 3,
        ard: bool | None = None,
        lengthscale_bounds: tuple[float, float] = (1e-2, 10.0),
        signal_variance_bounds: tuple[float, float] = (1e-2, 100.0),
        noise_variance_bounds: tuple[float, float] = (1e-8, 1.0),
        maxiter: int = 200,
    ) -> HyperparameterFit:
        """Maximise the log marginal likelihood over the log hyperparameters, then refit.

        L-BFGS-B with analytic gradients over ``log ell`` (one, or one per dimension when
        ``ard``; default: the current form), ``log signal_variance`` and ``log noise_variance``,
        each kept inside the given bounds.  It starts from the current values (clipped into
        the bounds) and from ``n_restarts`` points drawn uniformly in log space from ``rng``.
        The best optimum replaces the current hyperparameters unless it is worse than the start.
        ``mean`` and ``standardize`` are kept, and so is the current standardisation.
        """
        if self._n < 1:
            raise ValueError("fit_hyperparameters needs at least one observation")
        n_restarts = check_int("n_restarts", n_restarts, 0)
        if n_restarts > 0:
            check_generator("rng", rng)
        ard = self._hp.ard if ard is None else bool(ard)
        p = self._dim if ard else 1
        ls_b = check_log_bounds("lengthscale_bounds", lengthscale_bounds)
        sv_b = check_log_bounds("signal_variance_bounds", signal_variance_bounds)
        nv_b = check_log_bounds("noise_variance_bounds", noise_variance_bounds)
        box = np.array([ls_b] * p + [sv_b, nv_b])

        ell0 = self._ell if ard else np.array([float(np.exp(np.mean(np.log(self._ell))))])
        with np.errstate(divide="ignore"):
            theta0 = np.concatenate([np.log(ell0), [math.log(self._s2), np.log(self._noise)]])
        theta0 = np.clip(theta0, box[:, 0], box[:, 1])
        starts = [theta0]
        for _ in range(n_restarts):
            starts.append(rng.uniform(box[:, 0], box[:, 1]))
        sqd, y_std = self._lml_data()
        best = maximize_log_marginal_likelihood(starts, box, sqd, y_std, maxiter)
        t = best.theta
        hp = self._hp.replace(
            lengthscale=tuple(np.exp(t[:p]).tolist()) if ard else float(np.exp(t[0])),
            signal_variance=float(np.exp(t[p])),
            noise_variance=float(np.exp(t[p + 1])),
        )
        self.set_hyperparameters(hp)
        return HyperparameterFit(
            hp,
            best.log_marginal_likelihood,
            best.initial_log_marginal_likelihood,
            best.n_starts,
            best.n_evaluations,
            best.converged,
        )
