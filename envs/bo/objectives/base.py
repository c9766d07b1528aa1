"""The :class:`Objective` record: a function to maximise over a box, with its known optimum."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labsched.envs.bo.box import check_bounds

__all__ = ["BatchFn", "Bounds", "Objective", "as_bounds_tuple", "bounds_tolerance"]

Bounds = tuple[tuple[float, float], ...]
BatchFn = Callable[[np.ndarray], np.ndarray]


def as_bounds_tuple(bounds: object, dim: int | None = None) -> Bounds:
    """Validate ``bounds`` (one ``(low, high)`` pair per dimension) and return it as float pairs."""
    arr = check_bounds(bounds, dim)
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def bounds_tolerance(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Slack allowed outside the box, so that round-off in ``low + u * (high - low)`` is accepted."""
    return 1e-9 * (hi - lo)


@dataclass(frozen=True)
class Objective:
    """A benchmark function to be **maximised** over a box.

    Attributes:
        name: registry name (e.g. ``"hartmann6"``).
        dim: input dimension ``d``.
        bounds: one ``(low, high)`` pair per dimension.
        optimum_value: the maximum of the function over ``bounds`` (an estimate when
            ``optimum_estimated`` is true).
        optimizer: a point of ``bounds`` attaining ``optimum_value``, or ``None`` if unknown.
        formula: a short text formula.
        notes: how this form relates to the paper's and to the usual definition.
        fn: the raw function, mapping an ``(m, d)`` array to an ``(m,)`` array (no checks).
        optimum_estimated: true when ``optimum_value`` was found numerically, not known exactly.

    Calling the objective validates the input: an array of shape ``(d,)`` gives a float and one of
    shape ``(m, d)`` gives an ``(m,)`` array. Points must lie in ``bounds`` (up to a relative
    slack of 1e-9 of each side's length) and be finite.
    """

    name: str
    dim: int
    bounds: Bounds
    optimum_value: float
    optimizer: tuple[float, ...] | None
    formula: str
    notes: str
    fn: BatchFn = field(repr=False, compare=False)
    optimum_estimated: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int | np.integer) or self.dim < 1:
            raise ValueError(f"dim must be a positive integer; got {self.dim!r}")
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "bounds", as_bounds_tuple(self.bounds, self.dim))
        if not math.isfinite(float(self.optimum_value)):
            raise ValueError(f"optimum_value must be finite; got {self.optimum_value!r}")
        object.__setattr__(self, "optimum_value", float(self.optimum_value))
        if self.optimizer is not None:
            opt = np.asarray(self.optimizer, dtype=float)
            if opt.shape != (self.dim,):
                raise ValueError(f"optimizer must have shape ({self.dim},); got shape {opt.shape}")
            lo, hi = self.lower, self.upper
            tol = bounds_tolerance(lo, hi)
            if np.any(opt < lo - tol) or np.any(opt > hi + tol):
                raise ValueError(f"optimizer {tuple(opt.tolist())} lies outside bounds {self.bounds}")
            object.__setattr__(self, "optimizer", tuple(float(v) for v in opt))
        if not callable(self.fn):
            raise ValueError("fn must be callable")

    # ---- box helpers ------------------------------------------------------------------------

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds as a ``(d,)`` array."""
        return np.array([b[0] for b in self.bounds])

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds as a ``(d,)`` array."""
        return np.array([b[1] for b in self.bounds])

    def _as_batch(self, x: object, what: str = "x") -> tuple[np.ndarray, bool]:
        arr = np.asarray(x, dtype=float)
        d = self.dim
        if arr.ndim == 1 and arr.shape[0] == d:
            return arr[None, :], True
        if arr.ndim == 2 and arr.shape[1] == d:
            return arr, False
        raise ValueError(f"{self.name}: expected {what} of shape ({d},) or (m, {d}); got shape {arr.shape}")

    def _check_inside(self, X: np.ndarray) -> None:
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{self.name}: x must be finite (got NaN or inf)")
        lo, hi = self.lower, self.upper
        tol = bounds_tolerance(lo, hi)
        outside = (lo - tol > X) | (hi + tol < X)
        if np.any(outside):
            row, col = (int(v) for v in np.argwhere(outside)[0])
            raise ValueError(
                f"{self.name}: x[..., {col}] = {X[row, col]!r} lies outside bounds[{col}] = "
                f"{self.bounds[col]} (expected points of shape ({self.dim},) or (m, {self.dim}) "
                f"inside bounds)"
            )

    # ---- evaluation -------------------------------------------------------------------------

    def __call__(self, x: object) -> float | np.ndarray:
        """Evaluate at one point (shape ``(d,)`` -> float) or a batch (``(m, d)`` -> ``(m,)``)."""
        X, single = self._as_batch(x)
        self._check_inside(X)
        if X.shape[0] == 0:
            return np.empty(0)
        vals = np.asarray(self.fn(X), dtype=float).reshape(X.shape[0])
        return float(vals[0]) if single else vals

    def regret(self, x: object) -> float | np.ndarray:
        """``optimum_value - f(x)``: non-negative up to round-off when the optimum is exact."""
        return self.optimum_value - self(x)

    def sample_uniform(self, rng: np.random.Generator | int | None = None, m: int = 1) -> np.ndarray:
        """``m`` points drawn uniformly from the box, shape ``(m, d)`` (``rng``: Generator or seed)."""
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 0:
            raise ValueError(f"m must be a non-negative integer; got {m!r}")
        gen = np.random.default_rng(rng)
        return self.scale_from_unit(gen.random((int(m), self.dim)))

    def scale_from_unit(self, u: object) -> np.ndarray:
        """Map points of the unit cube (``(d,)`` or ``(m, d)``) affinely onto the box."""
        U, single = self._as_batch(u, what="u")
        if not np.all(np.isfinite(U)) or np.any(U < 0.0) or np.any(U > 1.0):
            raise ValueError(f"{self.name}: u must lie in [0, 1]^{self.dim}")
        lo, hi = self.lower, self.upper
        X = np.clip(lo + U * (hi - lo), lo, hi)
        return X[0] if single else X

    def scale_to_unit(self, x: object) -> np.ndarray:
        """Inverse of :meth:`scale_from_unit`: map points of the box onto the unit cube."""
        X, single = self._as_batch(x)
        self._check_inside(X)
        lo, hi = self.lower, self.upper
        U = np.clip((X - lo) / (hi - lo), 0.0, 1.0)
        return U[0] if single else U
