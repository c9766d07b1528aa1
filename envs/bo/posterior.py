"""Posterior queries of :class:`~labsched.envs.bo.gp.GaussianProcess`: means, variances,
covariances, joint draws and fantasy models (kriging believer / constant liar).

:class:`PosteriorMixin` is a base class of ``GaussianProcess`` and reads its state: the
observations ``_Ubuf[:_n]``, the lower factor ``_Lbuf[:_n, :_n]``, ``_alpha``, the output
standardisation ``_offset``/``_scale``, the hyperparameters ``_s2``/``_noise`` and the input
helpers ``_points``/``_values``/``_unit``/``_scaled``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int, check_real
from labsched.envs.bo.linalg import psd_sqrt, rbf, single_blas_thread, tri_solve

__all__ = ["PosteriorMixin"]

ArrayLike = Any


class PosteriorMixin:
    """Prediction methods shared by the GP model (see the module docstring for what it reads)."""

    def _cross(self, Xs: np.ndarray) -> np.ndarray:
        """``K(X_obs, Xs)`` of shape (n, m), Fortran-ordered (it is the transpose of a C array)."""
        Zs = self._scaled(self._unit(Xs))
        return rbf(Zs, self._scaled(self._Ubuf[: self._n]), self._s2).T

    @single_blas_thread
    def predict(
        self, Xs: ArrayLike, return_std: bool = True, *, include_noise: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean (and standard deviation) at the rows of ``Xs``, in original units.

        Args:
            Xs: candidate points, shape ``(m, d)``.
            return_std: also return the posterior standard deviation (``variance = std ** 2``).
            include_noise: predict a noisy observation instead of the latent function (adds the
                noise variance).

        Returns:
            ``mean`` of shape ``(m,)``, or ``(mean, std)``.
        """
        Xa = self._points("Xs", Xs)
        n = self._n
        if n == 0:
            mean = np.full(Xa.shape[0], self._offset)
            var_std = np.full(Xa.shape[0], self._s2)
        else:
            KsT = self._cross(Xa)
            mean = self._offset + self._scale * (self._alpha @ KsT)
            if not return_std:
                return mean
            V = tri_solve(self._Lbuf[:n, :n], KsT, overwrite_b=True)
            var_std = self._s2 - np.einsum("ij,ij->j", V, V)
            np.clip(var_std, 0.0, None, out=var_std)
        if not return_std:
            return mean
        if include_noise:
            var_std = var_std + self._noise
        return mean, self._scale * np.sqrt(var_std)

    @single_blas_thread
    def predict_cov(self, Xs: ArrayLike, *, include_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Joint posterior at the rows of ``Xs``: ``(mean (m,), covariance (m, m))``, original units.

        The covariance is symmetrised and its diagonal clipped at zero; ``include_noise`` adds
        the noise variance to the diagonal.
        """
        Xa = self._points("Xs", Xs)
        n = self._n
        Zs = self._scaled(self._unit(Xa))
        cov = rbf(Zs, Zs, self._s2)
        np.fill_diagonal(cov, self._s2)
        if n == 0:
            mean = np.full(Xa.shape[0], self._offset)
        else:
            KsT = self._cross(Xa)
            mean = self._offset + self._scale * (self._alpha @ KsT)
            V = tri_solve(self._Lbuf[:n, :n], KsT, overwrite_b=True)
            cov -= V.T @ V
            cov += cov.T
            cov *= 0.5
            diag = np.einsum("ii->i", cov)
            np.clip(diag, 0.0, None, out=diag)
        if include_noise:
            cov[np.diag_indices_from(cov)] += self._noise
        cov *= self._scale**2
        return mean, cov

    @single_blas_thread
    def predict_cross_cov(self, Xa: ArrayLike, Xb: ArrayLike) -> np.ndarray:
        """Posterior covariance of the latent function between the rows of ``Xa`` and ``Xb``.

        Returns an ``(len(Xa), len(Xb))`` array in original units (``predict_cov(X)[1]`` without
        the symmetrisation and clipping when ``Xa`` and ``Xb`` are both ``X``).
        """
        A = self._points("Xa", Xa)
        B = self._points("Xb", Xb)
        cov = rbf(self._scaled(self._unit(A)), self._scaled(self._unit(B)), self._s2)
        n = self._n
        if n:
            L = self._Lbuf[:n, :n]
            Va = tri_solve(L, self._cross(A), overwrite_b=True)
            Vb = tri_solve(L, self._cross(B), overwrite_b=True)
            cov -= Va.T @ Vb
        cov *= self._scale**2
        return cov

    @single_blas_thread
    def sample_posterior(
        self,
        Xs: ArrayLike,
        n_samples: int,
        rng: np.random.Generator,
        *,
        include_noise: bool = False,
    ) -> np.ndarray:
        """Joint draws of the latent function at the rows of ``Xs``; shape ``(n_samples, m)``.

        The posterior covariance is factorised by Cholesky with the smallest working jitter in
        ``(0, 1e-12, 1e-10, 1e-8) * max variance`` and, failing that, by an eigendecomposition
        with negative eigenvalues clipped to zero.  All randomness comes from ``rng``.
        """
        check_generator("rng", rng)
        n_samples = check_int("n_samples", n_samples, 1)
        mean, cov = self.predict_cov(Xs, include_noise=include_noise)
        A, _ = psd_sqrt(cov)
        z = rng.standard_normal((int(n_samples), mean.shape[0]))
        return mean + z @ A.T

    def condition_on_pending(self, X_pending: ArrayLike, y_pending: ArrayLike | None = None) -> Any:
        """A "fantasy" copy that also conditions on experiments still running.

        With ``y_pending=None`` each pending point is given its current posterior mean (kriging
        believer), otherwise the supplied values (e.g. a constant liar).  The copy keeps the
        parent's output standardisation frozen, so believer values leave the posterior mean
        unchanged and only shrink the variance.  The points are added with the same bordered
        Cholesky update as :meth:`add_many`; ``self`` is not modified.
        """
        Xp = self._points("X_pending", X_pending)
        if y_pending is None:
            yp = self.predict(Xp, return_std=False)
        elif np.ndim(y_pending) == 0:
            yp = np.full(Xp.shape[0], check_real("y_pending", y_pending))
        else:
            yp = self._values("y_pending", y_pending, Xp.shape[0])
        child = self.copy()
        child._frozen_standardization = (self._offset, self._scale)
        child.add_many(Xp, yp)
        return child
