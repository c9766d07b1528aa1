"""Linear algebra of the Bayesian-optimisation layer: the RBF kernel, triangular solves, Cholesky
with jitter, matrix square roots and the one-thread BLAS limit.

Every numerical helper of :mod:`labsched.envs.bo` lives here once:

* :func:`rbf` - the squared-exponential kernel on lengthscale-divided inputs;
* :func:`tri_solve` - ``L^-1 b`` or ``L^-T b`` for a lower-triangular ``L`` (BLAS ``trsv`` for one
  right-hand side, which has far less call overhead than ``solve_triangular``; LAPACK for a
  matrix of right-hand sides);
* :func:`cholesky_with_jitter` - the kernel-matrix factorisation of the GP (pivot floor and the
  nugget ladder :data:`NUGGET_LADDER`);
* :func:`psd_sqrt` - a square root of a posterior covariance (Cholesky with the jitter ladder
  :data:`JITTER_LADDER`, then an eigendecomposition);
* :func:`one_blas_thread` / :func:`single_blas_thread` - run NumPy/SciPy with one BLAS thread.

Jitter. Two ladders exist because two different questions are asked. A *kernel matrix* must be
factorised with every pivot above :data:`PIVOT_FLOOR` (relative to the signal variance) so that
``alpha`` keeps its digits; it climbs :data:`NUGGET_LADDER` up to ``1e-4`` and fails loudly
beyond. A *posterior covariance* only needs some square root for sampling: it climbs
:data:`JITTER_LADDER` (relative to its largest variance, at most ``1e-8``, so draws are barely
perturbed) and then falls back on an exact eigendecomposition with negative eigenvalues clipped.
:data:`JITTER_LADDER` is the one ladder for every covariance square root of the package
(``GaussianProcess.sample_posterior``, Thompson sampling, simulation matching, MES).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist

try:  # optional: only used to keep BLAS single-threaded inside the hot methods
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - exercised only without threadpoolctl
    ThreadpoolController = None

__all__ = [
    "JITTER_LADDER",
    "NUGGET_LADDER",
    "PIVOT_FLOOR",
    "cholesky_with_jitter",
    "one_blas_thread",
    "psd_sqrt",
    "rbf",
    "single_blas_thread",
    "tri_solve",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Smallest accepted Cholesky pivot of a kernel matrix, relative to the signal variance.
PIVOT_FLOOR = 1e-10
#: Nugget ladder of the kernel-matrix factorisation, relative to the signal variance.
NUGGET_LADDER = tuple(PIVOT_FLOOR * 10.0**k for k in range(7))
#: Jitter ladder for the square root of a posterior covariance (relative to its largest variance).
JITTER_LADDER = (0.0, 1e-12, 1e-10, 1e-8)

#: BLAS triangular solve for one right-hand side.
_trsv = linalg.get_blas_funcs("trsv", dtype=np.float64)


def rbf(za: np.ndarray, zb: np.ndarray, s2: float) -> np.ndarray:
    """``s2 * exp(-0.5 * |za_i - zb_j|^2)`` for lengthscale-divided inputs, shape (len(za), len(zb))."""
    k = cdist(za, zb, "sqeuclidean")
    k *= -0.5
    np.exp(k, out=k)
    k *= s2
    return k


def tri_solve(
    lower: np.ndarray, b: np.ndarray, *, transpose: bool = False, overwrite_b: bool = False
) -> np.ndarray:
    """``L^-1 b`` (or ``L^-T b`` with ``transpose``) for a lower-triangular ``L``.

    A vector ``b`` goes to BLAS ``trsv`` (``L`` should then be Fortran-ordered to avoid a copy);
    a matrix ``b`` of right-hand sides (one per column) to LAPACK through ``solve_triangular``.
    """
    if b.ndim == 1:
        return _trsv(lower, b, lower=1, trans=1 if transpose else 0)
    return linalg.solve_triangular(
        lower, b, lower=True, trans=1 if transpose else 0, overwrite_b=overwrite_b, check_finite=False
    )


def pivots_ok(lower: np.ndarray, floor: float) -> bool:
    """Whether every pivot (squared diagonal entry) of a Cholesky factor is at least ``floor``."""
    d = np.diagonal(lower)
    return bool(d.size == 0 or np.min(d * d) >= floor)


def cholesky_with_jitter(k: np.ndarray, s2: float) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``k + j I`` with the smallest ``j`` in ``(0, *NUGGET_LADDER * s2)``
    whose pivots all reach ``PIVOT_FLOOR * s2``; returns ``(L, j)``.

    Raises:
        numpy.linalg.LinAlgError: when even the largest nugget fails.
    """
    floor = PIVOT_FLOOR * s2
    for j in (0.0, *(s2 * r for r in NUGGET_LADDER)):
        a = k if j == 0.0 else k + j * np.eye(k.shape[0])
        try:
            low = linalg.cholesky(a, lower=True, check_finite=False)
        except linalg.LinAlgError:
            continue
        if pivots_ok(low, floor):
            return low, j
    raise linalg.LinAlgError(
        f"kernel matrix is not positive definite even with jitter {s2 * NUGGET_LADDER[-1]:.3g}; "
        "check for NaNs or use a larger noise_variance"
    )


def psd_sqrt(cov: np.ndarray) -> tuple[np.ndarray, str]:
    """A matrix ``A`` with ``A @ A.T ~= cov`` for a symmetric PSD ``cov``; returns ``(A, how)``.

    Cholesky with the smallest working jitter from ``JITTER_LADDER * max(diag)``; if all fail, an
    eigendecomposition with negative eigenvalues clipped to zero (``how == "eigh"``).
    """
    m = cov.shape[0]
    if m == 0:
        return np.zeros((0, 0)), "empty"
    scale = float(np.max(np.diagonal(cov)))
    if not scale > 0.0:
        scale = 1.0
    for rel in JITTER_LADDER:
        a = cov if rel == 0.0 else cov + (rel * scale) * np.eye(m)
        try:
            return linalg.cholesky(a, lower=True, check_finite=False), f"cholesky(jitter={rel * scale:.3g})"
        except linalg.LinAlgError:
            continue
    w, q = linalg.eigh(cov, check_finite=False)
    np.clip(w, 0.0, None, out=w)
    return q * np.sqrt(w), "eigh"


# --------------------------------------------------------------------------------------------
# BLAS thread limiting
#
# NumPy and SciPy each load their own OpenBLAS with one thread per core; on a small machine the
# pools compete and every small matrix operation waits for a descheduled thread (measured: an
# unlimited GP predict took about 12 ms whatever its size, 0.2-6 ms with one thread). The
# controller is selected once and cached, so entering the limit costs about 30 microseconds
# (``labsched.envs._lib.threads.single_threaded`` re-inspects the libraries on every call).

_controller_cache: list[Any] = []
_limit_state = threading.local()


def _controller() -> Any:
    """The BLAS libraries loaded so far (NumPy's and SciPy's), selected once and cached."""
    if ThreadpoolController is None:  # pragma: no cover
        return None
    if not _controller_cache:
        _controller_cache.append(ThreadpoolController().select(user_api="blas"))
    return _controller_cache[0]


@contextlib.contextmanager
def one_blas_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block with one BLAS thread when ``enabled`` (re-entrant; no-op without threadpoolctl)."""
    ctl = _controller() if enabled and not getattr(_limit_state, "active", False) else None
    if ctl is None:
        yield
        return
    _limit_state.active = True
    try:
        with ctl.limit(limits=1):
            yield
    finally:
        _limit_state.active = False


def single_blas_thread(method: F) -> F:
    """Decorate a method to run under :func:`one_blas_thread` when ``self.limit_threads``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.limit_threads or getattr(_limit_state, "active", False):
            return method(self, *args, **kwargs)
        with one_blas_thread(True):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
