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

Jitter is added only when needed.  A factor is accepted when every Cholesky pivot (the squared
diagonal of ``L``) is at least ``1e-10 * signal_variance``; below that the pivot has lost most of
its significant digits to cancellation.  :meth:`~GaussianProcess.fit` first tries without jitter
and, on failure, retries with a jitter of ``1e-10, 1e-9, ..., 1e-4`` times ``signal_variance`` on
the whole diagonal.  :meth:`~GaussianProcess.add` gives a point whose pivot falls below the floor
just enough extra variance to lift the pivot to the floor (a per-point nugget, for instance for a
repeated point with ``noise_variance=0``).  The jitter actually used is reported by
:attr:`GaussianProcess.jitter`.

BLAS threads
------------
NumPy and SciPy each load their own OpenBLAS, each with one thread per core.  On a small machine
those pools compete with each other and with any other busy process; a call then waits for a
descheduled BLAS thread.  Measured on 2 cores with one other busy process, an unlimited
``predict`` took about 12 ms whatever its size, against 0.2-6 ms with one thread.  With
``limit_threads=True`` (the default) ``fit``, ``add_many``, ``predict``, ``predict_cov``,
``sample_posterior``, ``leave_one_out``, ``log_marginal_likelihood`` and ``fit_hyperparameters``
run under ``threadpoolctl``'s one-thread BLAS limit (about 30 microseconds per call); ``add``
does not, as its matrix-vector work gains nothing from it.  Without ``threadpoolctl`` the option
does nothing.

Everything random takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from scipy import linalg, optimize
from scipy.spatial.distance import cdist

from ._validation import real_array

try:  # optional: only used to keep BLAS single-threaded inside the hot methods
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - exercised only without threadpoolctl
    ThreadpoolController = None

__all__ = ["GPHyperparameters", "GaussianProcess", "HyperparameterFit"]

ArrayLike = Any
F = TypeVar("F", bound=Callable[..., Any])

#: Smallest accepted Cholesky pivot, relative to the signal variance.
_PIVOT_FLOOR = 1e-10
#: Jitter ladder of :meth:`GaussianProcess.fit`, relative to the signal variance.
_FIT_JITTERS = tuple(_PIVOT_FLOOR * 10.0**k for k in range(7))
#: Jitter ladder for factorising a posterior covariance (relative to its largest variance).
_COV_JITTERS = (0.0, 1e-12, 1e-10, 1e-8)
_LOG_2PI = math.log(2.0 * math.pi)
#: BLAS triangular solve for one right-hand side (far less call overhead than solve_triangular).
_trsv = linalg.get_blas_funcs("trsv", dtype=np.float64)


# --------------------------------------------------------------------------------------------
# validation helpers


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _positive(name: str, value: Any) -> float:
    v = _real(name, value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {v!r}")
    return v


def _non_negative(name: str, value: Any) -> float:
    v = _real(name, value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
    return v


def _check_bounds(bounds: Any) -> np.ndarray:
    b = real_array("bounds", bounds)
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise ValueError(f"bounds must have shape (d, 2) with rows (low, high), got shape {b.shape}")
    bad = np.flatnonzero(~(b[:, 0] < b[:, 1]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds[{i}] must satisfy low < high, got low={b[i, 0]!r}, high={b[i, 1]!r}")
    b.setflags(write=False)
    return b


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _check_log_bounds(name: str, pair: Any) -> tuple[float, float]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a (low, high) pair")
    lo, hi = _positive(f"{name}[0]", pair[0]), _positive(f"{name}[1]", pair[1])
    if not lo < hi:
        raise ValueError(f"{name} must satisfy low < high, got {pair!r}")
    return math.log(lo), math.log(hi)


# --------------------------------------------------------------------------------------------
# BLAS thread limiting

_controller_cache: list[Any] = []
_limit_state = threading.local()


def _controller() -> Any:
    """The BLAS libraries loaded so far (NumPy's and SciPy's), selected once and cached."""
    if ThreadpoolController is None:  # pragma: no cover
        return None
    if not _controller_cache:
        _controller_cache.append(ThreadpoolController().select(user_api="blas"))
    return _controller_cache[0]


def _single_blas_thread(method: F) -> F:
    """Run ``method`` under a one-thread BLAS limit when ``self.limit_threads`` (not re-entrant)."""

    @functools.wraps(method)
    def wrapper(self: GaussianProcess, *args: Any, **kwargs: Any) -> Any:
        if not self.limit_threads or getattr(_limit_state, "active", False):
            return method(self, *args, **kwargs)
        ctl = _controller()
        if ctl is None:  # pragma: no cover
            return method(self, *args, **kwargs)
        _limit_state.active = True
        try:
            with ctl.limit(limits=1):
                return method(self, *args, **kwargs)
        finally:
            _limit_state.active = False

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# hyperparameters


@dataclass(frozen=True)
class GPHyperparameters:
    """Hyperparameters of :class:`GaussianProcess` (frozen and validated).

    Attributes:
        lengthscale: RBF lengthscale in unit-cube coordinates; a positive scalar (isotropic) or
            one positive value per input dimension (ARD, stored as a tuple).
        signal_variance: kernel amplitude ``s2`` (> 0), in standardised output units.
        noise_variance: observation-noise variance (>= 0), in standardised output units.
        mean: prior mean, ``"constant"`` (the data mean) or ``"zero"``.
        standardize: whether outputs are scaled to unit spread before fitting (see the module
            docstring for the exact transform).
    """

    lengthscale: float | tuple[float, ...]
    signal_variance: float = 1.0
    noise_variance: float = 1e-6
    mean: Literal["constant", "zero"] = "constant"
    standardize: bool = True

    def __post_init__(self) -> None:
        ls = self.lengthscale
        if isinstance(ls, (str, bytes, bool)):
            raise TypeError(f"lengthscale must be a positive number or a sequence of them, got {ls!r}")
        if np.ndim(ls) == 0:
            value: float | tuple[float, ...] = _positive("lengthscale", ls)
        else:
            arr = np.asarray(ls)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"lengthscale must be a scalar or a non-empty 1-d sequence, got {ls!r}")
            value = tuple(_positive(f"lengthscale[{i}]", v) for i, v in enumerate(arr.tolist()))
        object.__setattr__(self, "lengthscale", value)
        object.__setattr__(self, "signal_variance", _positive("signal_variance", self.signal_variance))
        object.__setattr__(self, "noise_variance", _non_negative("noise_variance", self.noise_variance))
        if self.mean not in ("constant", "zero"):
            raise ValueError(f"mean must be 'constant' or 'zero', got {self.mean!r}")
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be a bool, got {type(self.standardize).__name__}")
        object.__setattr__(self, "standardize", bool(self.standardize))

    @property
    def ard(self) -> bool:
        """Whether there is one lengthscale per dimension."""
        return isinstance(self.lengthscale, tuple)

    def lengthscales(self, dim: int) -> np.ndarray:
        """The lengthscale as a length-``dim`` array (ValueError if an ARD length disagrees)."""
        if isinstance(self.lengthscale, tuple):
            if len(self.lengthscale) != dim:
                raise ValueError(
                    f"lengthscale has {len(self.lengthscale)} entries but the inputs have {dim} dimensions"
                )
            return np.array(self.lengthscale)
        return np.full(dim, self.lengthscale)

    def replace(self, **changes: Any) -> GPHyperparameters:
        """A validated copy with some fields changed."""
        import dataclasses

        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class HyperparameterFit:
    """Outcome of :meth:`GaussianProcess.fit_hyperparameters`.

    Attributes:
        hyperparameters: the hyperparameters now in use.
        log_marginal_likelihood: their log marginal likelihood (standardised output units, as
            scikit-learn reports it).
        initial_log_marginal_likelihood: the same for the starting hyperparameters.
        n_starts: number of local optimisations (the current point plus the restarts).
        n_evaluations: likelihood-and-gradient evaluations, all starts together.
        converged: whether L-BFGS-B reported success for the winning start; it often stops with
            an abnormal line search when an optimum sits on a bound, which is harmless.
    """

    hyperparameters: GPHyperparameters
    log_marginal_likelihood: float
    initial_log_marginal_likelihood: float
    n_starts: int
    n_evaluations: int
    converged: bool


# --------------------------------------------------------------------------------------------
# numerical kernels


def _rbf(za: np.ndarray, zb: np.ndarray, s2: float) -> np.ndarray:
    """``s2 * exp(-0.5 * |za_i - zb_j|^2)`` for lengthscale-divided inputs, shape (len(za), len(zb))."""
    k = cdist(za, zb, "sqeuclidean")
    k *= -0.5
    np.exp(k, out=k)
    k *= s2
    return k


def _pivots_ok(lower: np.ndarray, floor: float) -> bool:
    d = np.diagonal(lower)
    return bool(d.size == 0 or np.min(d * d) >= floor)


def _cholesky_with_jitter(k: np.ndarray, s2: float) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``k + j I`` with the smallest ``j`` on the ladder that works."""
    floor = _PIVOT_FLOOR * s2
    for j in (0.0, *(s2 * r for r in _FIT_JITTERS)):
        a = k if j == 0.0 else k + j * np.eye(k.shape[0])
        try:
            low = linalg.cholesky(a, lower=True, check_finite=False)
        except linalg.LinAlgError:
            continue
        if _pivots_ok(low, floor):
            return low, j
    raise linalg.LinAlgError(
        f"kernel matrix is not positive definite even with jitter {s2 * _FIT_JITTERS[-1]:.3g}; "
        "check for NaNs or use a larger noise_variance"
    )


def _psd_sqrt(cov: np.ndarray) -> tuple[np.ndarray, str]:
    """A matrix ``A`` with ``A @ A.T ~= cov`` for a symmetric PSD ``cov``.

    Cholesky with the smallest working jitter from ``(0, 1e-12, 1e-10, 1e-8) * max(diag)``; if all
    fail, an eigendecomposition with negative eigenvalues clipped to zero.  Returns ``(A, how)``.
    """
    m = cov.shape[0]
    if m == 0:
        return np.zeros((0, 0)), "empty"
    scale = float(np.max(np.diagonal(cov)))
    if not scale > 0.0:
        scale = 1.0
    for rel in _COV_JITTERS:
        a = cov if rel == 0.0 else cov + (rel * scale) * np.eye(m)
        try:
            return linalg.cholesky(a, lower=True, check_finite=False), f"cholesky(jitter={rel * scale:.3g})"
        except linalg.LinAlgError:
            continue
    w, q = linalg.eigh(cov, check_finite=False)
    np.clip(w, 0.0, None, out=w)
    return q * np.sqrt(w), "eigh"


# --------------------------------------------------------------------------------------------
# the model


class GaussianProcess:
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
        self._bounds = _check_bounds(bounds)
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
        """Unit-cube RBF lengthscale of the paper's fixed "kernel width = 0.01 * sum_i l_i".

        The width ``w`` is read as the denominator of ``exp(-|x - x'|^2 / w)``, so the
        lengthscale is ``sqrt(w / 2)``.  By default the formula is applied on the unit cube
        (``l_i = 1``): ``ell = sqrt(0.005 * d)``, i.e. 0.1 for d = 2, 0.122 for d = 3 and 0.173
        for d = 6, whatever the physical ranges.  With ``literal_units=True`` it is applied in the
        original units (``w = 0.01 * sum(high - low)``, isotropic there) and converted to per-
        dimension unit-cube lengthscales ``sqrt(w / 2) / (high_i - low_i)``; the two agree on
        ``[0, 1]^d``.  See :meth:`paper_default` for why this reading was chosen.
        """
        b = _check_bounds(bounds)
        span = b[:, 1] - b[:, 0]
        if literal_units:
            ell = math.sqrt(0.01 * float(np.sum(span)) / 2.0)
            return tuple((ell / span).tolist())
        return math.sqrt(0.01 * b.shape[0] / 2.0)

    @classmethod
    def paper_hyperparameters(cls, bounds: ArrayLike, *, literal_units: bool = False) -> GPHyperparameters:
        """The hyperparameters used by :meth:`paper_default`."""
        return GPHyperparameters(
            lengthscale=cls.paper_lengthscale(bounds, literal_units=literal_units),
            signal_variance=1.0,
            noise_variance=1e-6,
            mean="constant",
            standardize=True,
        )

    @classmethod
    def paper_default(
        cls, bounds: ArrayLike, *, literal_units: bool = False, limit_threads: bool = True
    ) -> GaussianProcess:
        """The GP of the paper's experiments: an RBF kernel whose width is fixed at 1% of the box.

        Section 6 of Azimi, Fern & Fern fixes the RBF "kernel width" at ``0.01 * sum_i l_i``,
        ``l_i`` being the extent of the input space along dimension ``i``.  On ``[0, 1]^d`` that
        is ``w = 0.01 d``, and it can be read in two ways:

        * as the lengthscale itself, ``ell = 0.01 d`` (0.02 in 2-d): inputs 0.1 apart then have
          correlation ``exp(-12.5) ~ 4e-6``, and the posterior drops back to the prior mean a
          short way from every observation;
        * as the denominator of ``exp(-|x - x'|^2 / w)``, i.e. ``ell = sqrt(w / 2) =
          sqrt(0.005 d)``: 0.1 in 2-d, 0.122 in 3-d, 0.173 in 6-d.

        This constructor uses the second reading.  Measured on uniformly random designs (mean of
        20 designs, 2,000 test points; Cosines and Rosenbrock on ``[0, 1]^2``, Hartmann-3 and
        Hartmann-6; other settings as below), the first reading is no better than predicting the
        data mean, while the second learns the function in 2-d and 3-d:

        ==============  =========================  ================================
        function, n     test RMSE / sd(f),         leave-one-out log density (nats
                        ell = 0.01d vs sqrt(.005d)  per point, standardised), same
        ==============  =========================  ================================
        Cosines, 20     1.00 vs 0.70               -1.39 vs -0.85
        Cosines, 50     0.94 vs 0.39               -1.33 vs +0.02
        Rosenbrock, 50  0.93 vs 0.34               -1.31 vs +0.07
        Hartmann-3, 50  1.00 vs 0.60               -1.41 vs -0.90
        Hartmann-6, 50  1.01 vs 0.95               -1.42 vs -1.36
        ==============  =========================  ================================

        (A standard normal scores -1.42 nats.)  In 6-d neither width is informative with so few
        random points; maximising the marginal likelihood (:meth:`fit_hyperparameters`) does
        better in every row, with lengthscales of 0.16-0.35 (0.9 on Rosenbrock).

        The formula is applied to the unit-cube coordinates (``l_i = 1``), so the lengthscale is
        ``sqrt(0.005 * d)`` in every dimension and the model does not depend on the units of the
        inputs.  (Applied in physical units the paper's formula mixes a length with a squared
        length and is not unit invariant; ``literal_units=True`` does that instead, which differs
        only on boxes other than ``[0, 1]^d``, e.g. 0.045 instead of 0.141 on Shekel's
        ``[0, 10]^4``.)  The settings the paper does not state are: standardised outputs with a
        constant mean, ``signal_variance = 1`` and ``noise_variance = 1e-6`` (the benchmark
        functions are noise free).
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
        saved = self.__dict__.copy()
        try:
            self._apply_hyperparameters(hyperparameters)
            if self._n:
                self._Lbuf = self._Lbuf.copy()
                self._jbuf = self._jbuf.copy()
                self._factorize()
            self._update_alpha()
        except BaseException:
            self.__dict__.update(saved)
            raise
        return self

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
        K = _rbf(Z, Z, self._s2)
        np.fill_diagonal(K, self._s2 + self._noise)
        L, j = _cholesky_with_jitter(K, self._s2)
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
        t = _trsv(L, (y - offset) / scale, lower=1)
        self._alpha = _trsv(L, t, lower=1, trans=1)

    @_single_blas_thread
    def fit(self, X: ArrayLike, y: ArrayLike) -> GaussianProcess:
        """Condition on ``(X, y)`` from scratch (full Cholesky; returns ``self``).

        ``X`` has shape ``(n, d)`` and ``y`` shape ``(n,)``, ``n >= 0``.  Clears any standardisation
        frozen by :meth:`condition_on_pending`.
        """
        Xa = self._points("X", X)
        ya = self._values("y", y, Xa.shape[0])
        n = Xa.shape[0]
        saved = self.__dict__.copy()  # fresh buffers are allocated, so this restores everything
        try:
            self._frozen_standardization = None
            self._n = 0
            self._allocate(max(16, n + max(8, n // 2)))
            self._Xbuf[:n], self._Ubuf[:n], self._ybuf[:n] = Xa, self._unit(Xa), ya
            self._n = n
            if n:
                self._factorize()
            self._update_alpha()
        except BaseException:
            self.__dict__.update(saved)
            raise
        return self

    def _append_one(self, x: np.ndarray, u: np.ndarray, y: float) -> None:
        """Bordered Cholesky update for one point (does not touch ``alpha``)."""
        n = self._n
        s2 = self._s2
        L = self._Lbuf[:n, :n]
        z = self._scaled(u[None, :])
        k = _rbf(self._scaled(self._Ubuf[:n]), z, s2)[:, 0]
        row = _trsv(L, k, lower=1) if n else k
        pivot = s2 + self._noise - float(row @ row)
        floor = _PIVOT_FLOOR * s2
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
        yv = _real("y", y.item() if isinstance(y, np.ndarray) and y.size == 1 else y)
        if not math.isfinite(yv):
            raise ValueError(f"y must be finite, got {yv!r}")
        self._append_one(xa, self._unit(xa), yv)
        self._update_alpha()
        return self

    @_single_blas_thread
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
        S = _rbf(Znew, Znew, s2)
        np.fill_diagonal(S, s2 + self._noise)
        if n:
            L = self._Lbuf[:n, :n]
            Kx = _rbf(self._scaled(self._Ubuf[:n]), Znew, s2)
            B = linalg.solve_triangular(L, Kx, lower=True, check_finite=False)
            S -= B.T @ B
        else:
            B = np.zeros((0, k))
        try:
            L22 = linalg.cholesky(S, lower=True, check_finite=False)
            ok = _pivots_ok(L22, _PIVOT_FLOOR * s2)
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

    # ---------------------------------------------------------------- prediction

    def _cross(self, Xs: np.ndarray) -> np.ndarray:
        """``K(X_obs, Xs)`` of shape (n, m), Fortran-ordered (it is the transpose of a C array)."""
        Zs = self._scaled(self._unit(Xs))
        return _rbf(Zs, self._scaled(self._Ubuf[: self._n]), self._s2).T

    @_single_blas_thread
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
            V = linalg.solve_triangular(
                self._Lbuf[:n, :n], KsT, lower=True, overwrite_b=True, check_finite=False
            )
            var_std = self._s2 - np.einsum("ij,ij->j", V, V)
            np.clip(var_std, 0.0, None, out=var_std)
        if not return_std:
            return mean
        if include_noise:
            var_std = var_std + self._noise
        return mean, self._scale * np.sqrt(var_std)

    @_single_blas_thread
    def predict_cov(self, Xs: ArrayLike, *, include_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Joint posterior at the rows of ``Xs``: ``(mean (m,), covariance (m, m))``, original units.

        The covariance is symmetrised and its diagonal clipped at zero; ``include_noise`` adds
        the noise variance to the diagonal.
        """
        Xa = self._points("Xs", Xs)
        n = self._n
        Zs = self._scaled(self._unit(Xa))
        cov = _rbf(Zs, Zs, self._s2)
        np.fill_diagonal(cov, self._s2)
        if n == 0:
            mean = np.full(Xa.shape[0], self._offset)
        else:
            KsT = self._cross(Xa)
            mean = self._offset + self._scale * (self._alpha @ KsT)
            V = linalg.solve_triangular(
                self._Lbuf[:n, :n], KsT, lower=True, overwrite_b=True, check_finite=False
            )
            cov -= V.T @ V
            cov += cov.T
            cov *= 0.5
            diag = np.einsum("ii->i", cov)
            np.clip(diag, 0.0, None, out=diag)
        if include_noise:
            cov[np.diag_indices_from(cov)] += self._noise
        cov *= self._scale**2
        return mean, cov

    @_single_blas_thread
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
        _check_rng(rng)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an integer, got {type(n_samples).__name__}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        mean, cov = self.predict_cov(Xs, include_noise=include_noise)
        A, _ = _psd_sqrt(cov)
        z = rng.standard_normal((int(n_samples), mean.shape[0]))
        return mean + z @ A.T

    def condition_on_pending(
        self, X_pending: ArrayLike, y_pending: ArrayLike | None = None
    ) -> GaussianProcess:
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
            yp = np.full(Xp.shape[0], _real("y_pending", y_pending))
            if not np.all(np.isfinite(yp)):
                raise ValueError("y_pending must be finite")
        else:
            yp = self._values("y_pending", y_pending, Xp.shape[0])
        child = self.copy()
        child._frozen_standardization = (self._offset, self._scale)
        child.add_many(Xp, yp)
        return child

    @_single_blas_thread
    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form leave-one-out predictive mean and variance of each observation.

        ``mean_i = y_i - alpha_i / [K^-1]_ii`` and ``var_i = 1 / [K^-1]_ii`` (variance of the noisy
        held-out observation), in original units; the standardisation and hyperparameters of the
        full data set are kept.  O(n^3).
        """
        n = self._n
        if n < 2:
            raise ValueError("leave_one_out needs at least 2 observations")
        Linv = linalg.solve_triangular(self._Lbuf[:n, :n], np.eye(n), lower=True, check_finite=False)
        kinv_diag = np.einsum("ij,ij->j", Linv, Linv)
        mean_std = (self._ybuf[:n] - self._offset) / self._scale - self._alpha / kinv_diag
        return self._offset + self._scale * mean_std, self._scale**2 / kinv_diag

    # ---------------------------------------------------------------- marginal likelihood

    def _check_theta(self, theta: Any) -> np.ndarray:
        t = real_array("theta", theta)
        if t.ndim != 1 or t.shape[0] not in (3, self._dim + 2):
            raise ValueError(
                f"theta must have length 3 (isotropic) or {self._dim + 2} (one lengthscale per dimension), "
                f"got shape {t.shape}"
            )
        return t

    def _lml(
        self, theta: np.ndarray, sqd: np.ndarray, y_std: np.ndarray, eval_gradient: bool
    ) -> tuple[float, np.ndarray]:
        """Log marginal likelihood of ``y_std`` and its gradient w.r.t. ``theta``.

        ``sqd`` holds the per-dimension squared unit-cube differences, shape (n, n, d).
        """
        n = y_std.shape[0]
        p = theta.shape[0] - 2
        ell = np.exp(theta[:p])
        s2, noise = math.exp(theta[p]), math.exp(theta[p + 1])
        r2 = sqd @ (1.0 / ell**2) if p > 1 else sqd.sum(axis=2) / ell[0] ** 2
        Kf = s2 * np.exp(-0.5 * r2)
        K = Kf.copy()
        K[np.diag_indices(n)] += noise
        L, _ = _cholesky_with_jitter(K, s2)
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

    def _lml_data(self) -> tuple[np.ndarray, np.ndarray]:
        n = self._n
        U = self._Ubuf[:n]
        sqd = (U[:, None, :] - U[None, :, :]) ** 2
        y_std = (self._ybuf[:n] - self._offset) / self._scale
        return sqd, y_std

    @_single_blas_thread
    def log_marginal_likelihood(
        self, theta: ArrayLike | None = None, eval_gradient: bool = False
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
        lml, grad = self._lml(t, sqd, y_std, eval_gradient)
        return (lml, grad) if eval_gradient else lml

    @_single_blas_thread
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
        if isinstance(n_restarts, bool) or not isinstance(n_restarts, (int, np.integer)) or n_restarts < 0:
            raise ValueError(f"n_restarts must be an integer >= 0, got {n_restarts!r}")
        if n_restarts > 0:
            _check_rng(rng)
        ard = self._hp.ard if ard is None else bool(ard)
        p = self._dim if ard else 1
        ls_b = _check_log_bounds("lengthscale_bounds", lengthscale_bounds)
        sv_b = _check_log_bounds("signal_variance_bounds", signal_variance_bounds)
        nv_b = _check_log_bounds("noise_variance_bounds", noise_variance_bounds)
        box = np.array([ls_b] * p + [sv_b, nv_b])

        ell0 = self._ell if ard else np.array([float(np.exp(np.mean(np.log(self._ell))))])
        with np.errstate(divide="ignore"):
            theta0 = np.concatenate([np.log(ell0), [math.log(self._s2), np.log(self._noise)]])
        theta0 = np.clip(theta0, box[:, 0], box[:, 1])
        starts = [theta0]
        for _ in range(int(n_restarts)):
            starts.append(rng.uniform(box[:, 0], box[:, 1]))

        sqd, y_std = self._lml_data()
        n_eval = 0

        def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
            nonlocal n_eval
            n_eval += 1
            try:
                lml, grad = self._lml(t, sqd, y_std, True)
            except linalg.LinAlgError:
                return 1e25, np.zeros_like(t)
            return -lml, -grad

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
        hp = self._hp.replace(
            lengthscale=tuple(np.exp(best_t[:p]).tolist()) if ard else float(np.exp(best_t[0])),
            signal_variance=float(np.exp(best_t[p])),
            noise_variance=float(np.exp(best_t[p + 1])),
        )
        self.set_hyperparameters(hp)
        return HyperparameterFit(hp, best_lml, lml0, len(starts), n_eval, converged)
