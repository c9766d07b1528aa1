"""Gaussian-process regression for the Bayesian-optimisation layer (``SelectBatch``).

The model is a GP with a squared-exponential (RBF) kernel,

    k(x, x') = s2 * exp(-0.5 * sum_i ((u_i - u'_i) / ell_i) ** 2),

where ``u = (x - low) / (high - low)`` maps the box given by ``bounds`` onto the unit cube.  All
lengthscales are therefore *unit-cube* lengthscales: ``ell = 0.1`` means a tenth of the range of
every dimension, whatever the physical units.  Points outside the box are allowed (they are mapped
linearly beyond ``[0, 1]``).  Observations carry Gaussian noise of variance ``noise_variance``.

Outputs are standardised before the kernel sees them (``standardize=True``, the default):

* ``mean="constant"``: ``y_std = (y - mean(y)) / std(y)`` (population std, as scikit-learn's
  ``normalize_y=True``);
* ``mean="zero"``: ``y_std = y / rms(y)``, where ``rms(y) = sqrt(mean(y ** 2))`` is the spread of
  the data around the zero prior mean.

Without standardisation the constant mean only centres (``y - mean(y)``) and the zero mean leaves
``y`` alone.  A degenerate spread (all ``y`` equal) falls back to a scale of 1.  ``signal_variance``
and ``noise_variance`` are expressed in these standardised units; every prediction is returned in
the original units of ``y``.

Numerics
--------
The model keeps the lower Cholesky factor ``L`` of ``C = K + diag(noise + jitter)`` and
``alpha = C^-1 y_std``.  :meth:`GaussianProcess.add` appends one observation with a bordered
(rank-1) update of ``L`` in O(n^2); the standardisation changes with every new ``y``, so only
``alpha`` is recomputed, by two triangular solves (O(n^2)); the factor never is.
:meth:`~GaussianProcess.add_many` does the same for a block of points at once.

Jitter is added only when needed (the ladders live in :mod:`labsched.envs.bo.linalg`).  A
factor is accepted when every Cholesky pivot (the squared diagonal of ``L``) is at least
``1e-10 * signal_variance``; below that the pivot has lost most of its significant digits to
cancellation.  :meth:`~GaussianProcess.fit` first tries without jitter
and, on failure, retries with a jitter of ``1e-10, 1e-9, ..., 1e-4`` times ``signal_variance`` on
the whole diagonal.  :meth:`~GaussianProcess.add` gives a point whose pivot falls below the floor
just enough extra variance to lift the pivot to the floor (a per-point nugget, for instance for a
repeated point with ``noise_variance=0``).  The jitter actually used is reported by
:attr:`GaussianProcess.jitter`.

BLAS threads
------------
With ``limit_threads=True`` (the default) ``fit``, ``add_many``, ``predict``, ``predict_cov``,
``predict_cross_cov``, ``sample_posterior``, ``leave_one_out``, ``log_marginal_likelihood`` and
``fit_hyperparameters`` run with one BLAS thread (see :mod:`labsched.envs.bo.linalg` for why and
what it costs); ``add`` does not, as its matrix-vector work gains nothing from it.

Everything random takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import linalg

from labsched.envs._lib.validation import check_real, real_array
from labsched.envs.bo.box import check_bounds
from labsched.envs.bo.hyperparameters import (
    GPHyperparameters,
    HyperparameterFit,
    paper_hyperparameters,
    paper_lengthscale,
)
from labsched.envs.bo.likelihood import MarginalLikelihoodMixin
from labsched.envs.bo.linalg import (
    PIVOT_FLOOR,
    cholesky_with_jitter,
    pivots_ok,
    rbf,
    single_blas_thread,
    tri_solve,
)
from labsched.envs.bo.posterior import PosteriorMixin

__all__ = ["GPHyperparameters", "GaussianProcess", "HyperparameterFit"]

ArrayLike = Any


class GaussianProcess(PosteriorMixin, MarginalLikelihoodMixin):
    """GP regression with an RBF kernel on box-scaled inputs, updatable one point at a time.

    Args:
        bounds: array of shape ``(d, 2)``, one ``(low, high)`` row per input dimension; inputs are
            mapped to the unit cube with ``u = (x - low) / (high - low)`` before the kernel.
        hyperparameters: a :class:`GPHyperparameters`; ``None`` gives :meth:`paper_default`'s.
        limit_threads: run the hot methods with one BLAS thread (needs ``threadpoolctl``).

    Typical use::

        gp = GaussianProcess.paper_default(bounds).fit(X, y)
        mu, sd = gp.predict(candidates)
        gp.add(x_new, y_new)                                  # O(n^2)
        fantasy = gp.condition_on_pending(running_points)     # kriging believer
        draws = gp.sample_posterior(candidates, 100, np.random.default_rng(0))
    """

    def __init__(
        self,
        bounds: ArrayLike,
        hyperparameters: GPHyperparameters | None = None,
        *,
        limit_threads: bool = True,
    ) -> None:
        self._bounds = check_bounds(bounds)
        self._low = self._bounds[:, 0].copy()
        self._span = self._bounds[:, 1] - self._bounds[:, 0]
        self._dim = self._bounds.shape[0]
        if hyperparameters is None:
            hyperparameters = self.paper_hyperparameters(self._bounds)
        self._apply_hyperparameters(hyperparameters)
        self.limit_threads = bool(limit_threads)
        self._frozen_standardization: tuple[float, float] | None = None
        self._allocate(16)
        self._n = 0
        self._offset, self._scale = 0.0, 1.0
        self._alpha = np.zeros(0)

    # ---------------------------------------------------------------- paper default

    @staticmethod
    def paper_lengthscale(bounds: ArrayLike, *, literal_units: bool = False) -> float | tuple[float, ...]:
        """The paper's unit-cube lengthscale (see :func:`.hyperparameters.paper_lengthscale`)."""
        return paper_lengthscale(bounds, literal_units=literal_units)

    @staticmethod
    def paper_hyperparameters(bounds: ArrayLike, *, literal_units: bool = False) -> GPHyperparameters:
        """The hyperparameters used by :meth:`paper_default` (see :func:`paper_hyperparameters`)."""
        return paper_hyperparameters(bounds, literal_units=literal_units)

    @classmethod
    def paper_default(
        cls, bounds: ArrayLike, *, literal_units: bool = False, limit_threads: bool = True
    ) -> GaussianProcess:
        """The GP of the paper's experiments: an RBF kernel whose width is fixed at 1% of the box.

        Section 6 of Azimi, Fern & Fern fixes the width at ``0.01 * sum_i l_i``; this model reads
        it as ``exp(-|x - x'|^2 / w)`` on the unit cube, i.e. ``ell = sqrt(0.005 d)``, with
        standardised outputs, a constant mean, ``signal_variance = 1`` and ``noise_variance =
        1e-6``.  :func:`~labsched.envs.bo.hyperparameters.paper_hyperparameters` gives the
        measurements behind that reading and the settings the paper does not state.
        """
        return cls(
            bounds,
            cls.paper_hyperparameters(bounds, literal_units=literal_units),
            limit_threads=limit_threads,
        )

    # ---------------------------------------------------------------- state and properties

    def _apply_hyperparameters(self, hp: GPHyperparameters) -> None:
        if not isinstance(hp, GPHyperparameters):
            raise TypeError(f"hyperparameters must be a GPHyperparameters, got {type(hp).__name__}")
        self._ell = hp.lengthscales(self._dim)
        self._hp = hp
        self._s2 = hp.signal_variance
        self._noise = hp.noise_variance

    def _allocate(self, capacity: int) -> None:
        d = self._dim
        self._cap = capacity
        self._Xbuf = np.zeros((capacity, d))
        self._Ubuf = np.zeros((capacity, d))
        self._ybuf = np.zeros(capacity)
        self._Lbuf = np.zeros((capacity, capacity))
        self._jbuf = np.zeros(capacity)

    def _reserve(self, total: int) -> None:
        if total <= self._cap:
            return
        n = self._n
        old = (self._Xbuf, self._Ubuf, self._ybuf, self._Lbuf, self._jbuf)
        self._allocate(max(total, 2 * self._cap))
        self._Xbuf[:n], self._Ubuf[:n], self._ybuf[:n] = old[0][:n], old[1][:n], old[2][:n]
        self._Lbuf[:n, :n] = old[3][:n, :n]
        self._jbuf[:n] = old[4][:n]

    @property
    def bounds(self) -> np.ndarray:
        """The ``(d, 2)`` input box (read-only)."""
        return self._bounds

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def n_observations(self) -> int:
        return self._n

    @property
    def hyperparameters(self) -> GPHyperparameters:
        return self._hp

    @property
    def X(self) -> np.ndarray:
        """Observed inputs, original units, shape ``(n, d)`` (a copy)."""
        return self._Xbuf[: self._n].copy()

    @property
    def y(self) -> np.ndarray:
        """Observed outputs, original units (a copy)."""
        return self._ybuf[: self._n].copy()

    @property
    def cholesky_factor(self) -> np.ndarray:
        """Lower factor ``L`` with ``L L^T = K + diag(noise + jitter)`` (standardised units; a copy)."""
        return np.tril(self._Lbuf[: self._n, : self._n])

    @property
    def alpha(self) -> np.ndarray:
        """``(K + diag(noise + jitter))^-1 y_std`` (a copy)."""
        return self._alpha.copy()

    @property
    def jitter(self) -> np.ndarray:
        """Extra diagonal variance added to each observation for numerical stability (a copy)."""
        return self._jbuf[: self._n].copy()

    @property
    def standardization(self) -> tuple[float, float]:
        """``(offset, scale)`` with ``y_std = (y - offset) / scale``."""
        return self._offset, self._scale

    @property
    def theta(self) -> np.ndarray:
        """Log hyperparameters ``[log ell..., log signal_variance, log noise_variance]``.

        One ``log ell`` for an isotropic lengthscale, ``d`` of them for ARD.  A zero noise
        variance maps to ``-inf``.
        """
        ell = np.atleast_1d(np.asarray(self._hp.lengthscale, dtype=float))
        with np.errstate(divide="ignore"):
            return np.concatenate([np.log(ell), [math.log(self._s2), np.log(self._noise)]])

    def __repr__(self) -> str:
        return f"GaussianProcess(dim={self._dim}, n_observations={self._n}, hyperparameters={self._hp!r})"

    def copy(self) -> GaussianProcess:
        """An independent copy (arrays copied, nothing refactorised; O(n^2) memory traffic)."""
        new = object.__new__(GaussianProcess)
        new.__dict__.update(self.__dict__)
        n = self._n
        new._allocate(max(16, n + max(8, n // 2)))
        new._Xbuf[:n], new._Ubuf[:n], new._ybuf[:n] = self._Xbuf[:n], self._Ubuf[:n], self._ybuf[:n]
        new._Lbuf[:n, :n] = self._Lbuf[:n, :n]
        new._jbuf[:n] = self._jbuf[:n]
        new._alpha = self._alpha.copy()
        return new

    def set_hyperparameters(self, hyperparameters: GPHyperparameters) -> GaussianProcess:
        """Change the hyperparameters and refactorise the current data (returns ``self``).

        On failure (invalid hyperparameters, or a kernel matrix that cannot be factorised) the
        model is left as it was.
        """
        with self._unchanged_on_error():
            self._apply_hyperparameters(hyperparameters)
            if self._n:
                self._Lbuf = self._Lbuf.copy()
                self._jbuf = self._jbuf.copy()
                self._factorize()
            self._update_alpha()
        return self

    @contextlib.contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Restore every attribute if the block raises. The block must replace arrays it changes
        (fresh or copied buffers), not write into the saved ones."""
        saved = self.__dict__.copy()
        try:
            yield
        except BaseException:
            self.__dict__.update(saved)
            raise

    # ---------------------------------------------------------------- input handling

    def _points(self, name: str, X: Any) -> np.ndarray:
        arr = real_array(name, X)
        if arr.ndim != 2 or arr.shape[1] != self._dim:
            raise ValueError(f"{name} must have shape (n, {self._dim}), got shape {arr.shape}")
        return arr

    def _values(self, name: str, y: Any, n: int) -> np.ndarray:
        arr = real_array(name, y)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match the inputs, got shape {arr.shape}")
        return arr

    def _unit(self, X: np.ndarray) -> np.ndarray:
        return (X - self._low) / self._span

    def _scaled(self, U: np.ndarray) -> np.ndarray:
        return U / self._ell

    # ---------------------------------------------------------------- fitting and updates

    def _factorize(self) -> None:
        n = self._n
        Z = self._scaled(self._Ubuf[:n])
        K = rbf(Z, Z, self._s2)
        np.fill_diagonal(K, self._s2 + self._noise)
        L, j = cholesky_with_jitter(K, self._s2)
        self._Lbuf[:n, :n] = L
        self._jbuf[:n] = j

    def _update_alpha(self) -> None:
        n = self._n
        y = self._ybuf[:n]
        if self._frozen_standardization is not None:
            offset, scale = self._frozen_standardization
        else:
            offset = float(np.mean(y)) if (n and self._hp.mean == "constant") else 0.0
            scale = 1.0
            if n and self._hp.standardize:
                spread = float(np.sqrt(np.mean((y - offset) ** 2)))
                if spread > 1e-12 * float(np.max(np.abs(y))):
                    scale = spread
        self._offset, self._scale = offset, scale
        if n == 0:
            self._alpha = np.zeros(0)
            return
        L = np.asfortranarray(self._Lbuf[:n, :n])
        t = tri_solve(L, (y - offset) / scale)
        self._alpha = tri_solve(L, t, transpose=True)

    @single_blas_thread
    def fit(self, X: ArrayLike, y: ArrayLike) -> GaussianProcess:
        """Condition on ``(X, y)`` from scratch (full Cholesky; returns ``self``).

        ``X`` has shape ``(n, d)`` and ``y`` shape ``(n,)``, ``n >= 0``.  Clears any standardisation
        frozen by :meth:`condition_on_pending`.
        """
        Xa = self._points("X", X)
        ya = self._values("y", y, Xa.shape[0])
        n = Xa.shape[0]
        with self._unchanged_on_error():  # fresh buffers are allocated, so this restores everything
            self._frozen_standardization = None
            self._n = 0
            self._allocate(max(16, n + max(8, n // 2)))
            self._Xbuf[:n], self._Ubuf[:n], self._ybuf[:n] = Xa, self._unit(Xa), ya
            self._n = n
            if n:
                self._factorize()
            self._update_alpha()
        return self

    def _append_one(self, x: np.ndarray, u: np.ndarray, y: float) -> None:
        """Bordered Cholesky update for one point (does not touch ``alpha``)."""
        n = self._n
        s2 = self._s2
        L = self._Lbuf[:n, :n]
        z = self._scaled(u[None, :])
        k = rbf(self._scaled(self._Ubuf[:n]), z, s2)[:, 0]
        row = tri_solve(L, k) if n else k
        pivot = s2 + self._noise - float(row @ row)
        floor = PIVOT_FLOOR * s2
        jit = 0.0
        if not pivot >= floor:
            jit = floor - pivot
            pivot = floor
        self._reserve(n + 1)
        self._Xbuf[n], self._Ubuf[n], self._ybuf[n] = x, u, y
        self._Lbuf[n, :n] = row
        self._Lbuf[n, n] = math.sqrt(pivot)
        self._jbuf[n] = jit
        self._n = n + 1

    def add(self, x: ArrayLike, y: Any) -> GaussianProcess:
        """Append one observation in O(n^2): bordered Cholesky update, then ``alpha`` again.

        ``x`` has shape ``(d,)`` (or ``(1, d)``), ``y`` is a real number.  Returns ``self``.
        This method does not take the BLAS thread limit: its matrix-vector operations are not
        slowed by the competing pools, and entering the limit would cost about 15 microseconds.
        """
        xa = real_array("x", x)
        if xa.shape not in ((self._dim,), (1, self._dim)):
            raise ValueError(f"x must have shape ({self._dim},), got shape {xa.shape}")
        xa = xa.reshape(self._dim)
        yv = check_real("y", y.item() if isinstance(y, np.ndarray) and y.size == 1 else y)
        self._append_one(xa, self._unit(xa), yv)
        self._update_alpha()
        return self

    @single_blas_thread
    def add_many(self, X: ArrayLike, y: ArrayLike) -> GaussianProcess:
        """Append ``k`` observations with one block bordered update (O(n^2 k + n k^2 + k^3)).

        Equivalent to ``k`` calls of :meth:`add`; if a new pivot falls below the jitter floor the
        points are appended one at a time so that each gets its own jitter.  Returns ``self``.
        """
        Xa = self._points("X", X)
        ya = self._values("y", y, Xa.shape[0])
        k = Xa.shape[0]
        if k == 0:
            return self
        Ua = self._unit(Xa)
        n, s2 = self._n, self._s2
        Znew = self._scaled(Ua)
        S = rbf(Znew, Znew, s2)
        np.fill_diagonal(S, s2 + self._noise)
        if n:
            L = self._Lbuf[:n, :n]
            Kx = rbf(self._scaled(self._Ubuf[:n]), Znew, s2)
            B = tri_solve(L, Kx)
            S -= B.T @ B
        else:
            B = np.zeros((0, k))
        try:
            L22 = linalg.cholesky(S, lower=True, check_finite=False)
            ok = pivots_ok(L22, PIVOT_FLOOR * s2)
        except linalg.LinAlgError:
            ok = False
        if ok:
            self._reserve(n + k)
            self._Xbuf[n : n + k], self._Ubuf[n : n + k], self._ybuf[n : n + k] = Xa, Ua, ya
            self._Lbuf[n : n + k, :n] = B.T
            self._Lbuf[n : n + k, n : n + k] = L22
            self._jbuf[n : n + k] = 0.0
            self._n = n + k
        else:
            for i in range(k):
                self._append_one(Xa[i], Ua[i], float(ya[i]))
        self._update_alpha()
        return self
