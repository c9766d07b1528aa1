"""Benchmark objectives for Bayesian optimisation, in the maximisation convention of the paper.

Each benchmark is an :class:`Objective`: a box (``bounds``), a known maximum (``optimum_value``)
and a maximiser (``optimizer``), a one-line ``formula``, ``notes`` on how our form relates to the
paper's Table 1 and to the usual (minimised) definition, and a vectorised ``__call__``. The
regret of a point is ``optimum_value - f(x)``, the quantity the paper reports in its Table 2.

The six synthetic functions of Azimi, Fern & Fern (section 6, Table 1) are provided:
``cosines`` (2-d), ``rosenbrock`` (2-d), ``hartmann3``, ``hartmann6``, ``michalewicz5`` and
``shekel4``, with the constants of their standard published definitions (Dixon & Szegő 1978 for
Hartmann and Shekel, Michalewicz 1994, Anderson, Moore & Cohn 2000 for Cosines and the shifted
Rosenbrock). Three extras that Bayesian-optimisation users expect are negated so that they are
maximised too: ``branin``, ``ackley`` (any dimension) and ``levy`` (any dimension).

The paper's two real-data benchmarks, *Hydrogen* and *FuelCell*, are regression models fitted to
laboratory data that was never published. They are deliberately absent: any stand-in would be an
invention, not the paper's benchmark.

Optimum values are stored to double precision. Where the literature quotes rounded values
(Hartmann 3.86278 and 3.32237, Shekel 10.5364, Michalewicz 4.687658), we refined them by local
optimisation from the published maximiser (Michalewicz: per coordinate, since it is separable)
and stored the refined value and maximiser.

:func:`make_objective` builds an objective from a registered name (``"hartmann(6)"``,
``"Shekel"``, ``"ackley(5)"``...), returns an :class:`Objective` unchanged, or wraps a user
callable given its ``bounds``; for a callable without a known optimum the maximum is estimated
numerically (:func:`estimate_maximum`) and the objective is marked ``optimum_estimated=True``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["OBJECTIVES", "Objective", "estimate_maximum", "make_objective"]

Bounds = tuple[tuple[float, float], ...]
BatchFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_bounds(bounds: object, dim: int | None = None) -> Bounds:
    """Validate ``bounds`` (one ``(low, high)`` pair per dimension) and return it as floats."""
    try:
        arr = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a sequence of (low, high) pairs; got {bounds!r}") from exc
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"bounds must have shape (d, 2) (one (low, high) pair per dimension); got shape {arr.shape}"
        )
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"bounds must have {dim} (low, high) pairs; got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"bounds must be finite; got {arr.tolist()}")
    bad = np.flatnonzero(arr[:, 0] >= arr[:, 1])
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds[{i}] must have low < high; got ({arr[i, 0]}, {arr[i, 1]})")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def _bounds_tolerance(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Slack allowed outside the box, so that round-off in ``low + u * (high - low)`` is accepted."""
    return 1e-9 * (hi - lo)


# --------------------------------------------------------------------------------------------
# the Objective record


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
        object.__setattr__(self, "bounds", _check_bounds(self.bounds, self.dim))
        if not math.isfinite(float(self.optimum_value)):
            raise ValueError(f"optimum_value must be finite; got {self.optimum_value!r}")
        object.__setattr__(self, "optimum_value", float(self.optimum_value))
        if self.optimizer is not None:
            opt = np.asarray(self.optimizer, dtype=float)
            if opt.shape != (self.dim,):
                raise ValueError(f"optimizer must have shape ({self.dim},); got shape {opt.shape}")
            lo, hi = self.lower, self.upper
            tol = _bounds_tolerance(lo, hi)
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
        tol = _bounds_tolerance(lo, hi)
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


# --------------------------------------------------------------------------------------------
# raw (unchecked) functions: (m, d) -> (m,)


def _cosines(X: np.ndarray) -> np.ndarray:
    u = 1.6 * X - 0.5
    return 1.0 - np.sum(u**2 - 0.3 * np.cos(3.0 * np.pi * u), axis=1)


def _rosenbrock(X: np.ndarray) -> np.ndarray:
    x, y = X[:, 0], X[:, 1]
    return 10.0 - 100.0 * (y - x**2) ** 2 - (1.0 - x) ** 2


_HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HART_A = {
    3: np.array([[3.0, 10.0, 30.0], [0.1, 10.0, 35.0], [3.0, 10.0, 30.0], [0.1, 10.0, 35.0]]),
    6: np.array(
        [
            [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
            [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
            [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
            [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
        ]
    ),
}
_HART_P = {
    3: 1e-4
    * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]], float),
    6: 1e-4
    * np.array(
        [
            [1312, 1696, 5569, 124, 8283, 5886],
            [2329, 4135, 8307, 3736, 1004, 9991],
            [2348, 1451, 3522, 2883, 3047, 6650],
            [4047, 8828, 8732, 5743, 1091, 381],
        ],
        float,
    ),
}


def _hartmann_fn(dim: int) -> BatchFn:
    A, P = _HART_A[dim], _HART_P[dim]

    def f(X: np.ndarray) -> np.ndarray:
        inner = np.sum(A * (X[:, None, :] - P) ** 2, axis=2)  # (m, 4)
        return np.exp(-inner) @ _HART_ALPHA

    return f


def _michalewicz(X: np.ndarray) -> np.ndarray:
    i = np.arange(1, X.shape[1] + 1)
    return np.sum(np.sin(X) * np.sin(i * X**2 / np.pi) ** 20, axis=1)


_SHEKEL_C = 0.1 * np.array([1.0, 2.0, 2.0, 4.0, 4.0, 6.0, 3.0, 7.0, 5.0, 5.0])
_SHEKEL_A = np.array(  # column i is the centre of term i (rows: coordinates j = 1..4)
    [
        [4.0, 1.0, 8.0, 6.0, 3.0, 2.0, 5.0, 8.0, 6.0, 7.0],
        [4.0, 1.0, 8.0, 6.0, 7.0, 9.0, 3.0, 1.0, 2.0, 3.6],
        [4.0, 1.0, 8.0, 6.0, 3.0, 2.0, 5.0, 8.0, 6.0, 7.0],
        [4.0, 1.0, 8.0, 6.0, 7.0, 9.0, 3.0, 1.0, 2.0, 3.6],
    ]
)


def _shekel(X: np.ndarray) -> np.ndarray:
    sq = np.sum((X[:, :, None] - _SHEKEL_A[None, :, :]) ** 2, axis=1)  # (m, 10)
    return np.sum(1.0 / (_SHEKEL_C + sq), axis=1)


def _branin(X: np.ndarray) -> np.ndarray:
    x1, x2 = X[:, 0], X[:, 1]
    b, c, r, s, t = 5.1 / (4.0 * np.pi**2), 5.0 / np.pi, 6.0, 10.0, 1.0 / (8.0 * np.pi)
    return -((x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1.0 - t) * np.cos(x1) + s)


def _ackley(X: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(X**2, axis=1))
    return 20.0 * np.exp(-0.2 * rms) + np.exp(np.mean(np.cos(2.0 * np.pi * X), axis=1)) - 20.0 - np.e


def _levy(X: np.ndarray) -> np.ndarray:
    w = 1.0 + (X - 1.0) / 4.0
    head = np.sin(np.pi * w[:, 0]) ** 2
    mid = np.sum((w[:, :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(np.pi * w[:, :-1] + 1.0) ** 2), axis=1)
    tail = (w[:, -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * np.pi * w[:, -1]) ** 2)
    return -(head + mid + tail)


# --------------------------------------------------------------------------------------------
# Michalewicz optimum (separable: one 1-d problem per coordinate)

# Coordinate-wise maximisers and maxima of sin(x) sin(i x^2 / pi)^20 on [0, pi], i = 1..5, found
# on a 400,001-point grid and refined by bounded Brent search (see _michalewicz_coordinate_max).
_MICH5_X = (2.202905520186834, 1.5707963267948966, 1.2849915705402832, 1.9230584698680722, 1.7204697725650733)
_MICH5_MAX = 4.687658179088144


def _michalewicz_coordinate_max(i: int, n_grid: int = 400_001) -> tuple[float, float]:
    """Maximiser and maximum of ``sin(t) sin(i t^2 / pi)^20`` on ``[0, pi]``."""
    from scipy.optimize import minimize_scalar  # imported lazily: scipy is slow to import

    def g(t):
        return np.sin(t) * np.sin(i * np.square(t) / np.pi) ** 20

    t = np.linspace(0.0, np.pi, n_grid)
    k = int(np.argmax(g(t)))
    a, b = t[max(k - 1, 0)], t[min(k + 1, n_grid - 1)]
    res = minimize_scalar(lambda s: -g(s), bounds=(a, b), method="bounded", options={"xatol": 1e-13})
    best_t, best_v = (float(res.x), float(-res.fun)) if -res.fun >= g(t[k]) else (float(t[k]), float(g(t[k])))
    return best_t, best_v


def _michalewicz_optimum(dim: int) -> tuple[tuple[float, ...], float]:
    if dim == 5:
        return _MICH5_X, _MICH5_MAX
    if dim < 5:
        return _MICH5_X[:dim], float(_michalewicz(np.array([_MICH5_X[:dim]]))[0])
    pairs = [_michalewicz_coordinate_max(i) for i in range(1, dim + 1)]
    return tuple(p[0] for p in pairs), float(sum(p[1] for p in pairs))


# --------------------------------------------------------------------------------------------
# factories of the built-in benchmarks

_MAXIMISED = "We maximise the negative of the usual minimised form; not one of the paper's benchmarks."


def _cosines_obj() -> Objective:
    return Objective(
        name="cosines",
        dim=2,
        bounds=((0.0, 1.0), (0.0, 1.0)),
        optimum_value=1.6,
        optimizer=(0.3125, 0.3125),
        formula="1 - (u^2 + v^2 - 0.3 cos(3 pi u) - 0.3 cos(3 pi v)),  u = 1.6 x - 0.5, v = 1.6 y - 0.5",
        notes=(
            "Same form as the paper's Table 1 (from Anderson, Moore & Cohn 2000), on the unit square. "
            "It is separable; each coordinate is best at u = 0 (x = 0.3125), giving exactly 1.6. "
            "Some libraries (e.g. GPyOpt) list (0.3143, 0.3025) with value 1.5962 as the optimum; that "
            "point is not the maximiser."
        ),
        fn=_cosines,
    )


def _rosenbrock_obj() -> Objective:
    return Objective(
        name="rosenbrock",
        dim=2,
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        optimum_value=10.0,
        optimizer=(1.0, 1.0),
        formula="10 - 100 (y - x^2)^2 - (1 - x)^2",
        notes=(
            "The paper's form: 10 minus the usual 2-d Rosenbrock valley, maximised, max 10 at (1, 1). "
            "The paper does not state its box (it cites Anderson et al. 2000 and Azimi et al. 2010); "
            "we use [-2, 2]^2, a common box for 2-d Rosenbrock. The paper's Rosenbrock regrets (about "
            "0.01 after 25 experiments) are surprisingly small for such a box: the best of 25 uniform "
            "points has mean regret about 3.5 on [-2, 2]^2 but about 0.25 on [0, 1]^2, which hints at a "
            "smaller box. make_objective('rosenbrock', bounds=[(0, 1), (0, 1)]) gives that variant, with "
            "the same optimum."
        ),
        fn=_rosenbrock,
    )


_HART_X = {
    3: (0.114588876658731, 0.5556488946164454, 0.8525469846864273),
    6: (
        0.2016895108274795,
        0.15001069212015156,
        0.4768739738147954,
        0.2753324305645073,
        0.3116516166960791,
        0.6573005340902542,
    ),
}
_HART_MAX = {3: 3.862779787332663, 6: 3.3223680114155147}


def _hartmann(dim: int) -> Objective:
    quoted = {3: "3.86278", 6: "3.32237"}[dim]
    return Objective(
        name=f"hartmann{dim}",
        dim=dim,
        bounds=tuple((0.0, 1.0) for _ in range(dim)),
        optimum_value=_HART_MAX[dim],
        optimizer=_HART_X[dim],
        formula=(
            f"sum_{{i=1..4}} alpha_i exp(-sum_{{j=1..{dim}}} A_ij (x_j - P_ij)^2), alpha = (1, 1.2, 3, 3.2)"
        ),
        notes=(
            "Standard Hartmann constants (Dixon & Szegő 1978). The usual form is minimised (a leading "
            "minus sign); we return the positive sum, maximised. The paper's Table 1 writes the outer "
            "sum with upper limit d and a factor 4 before alpha_i; the outer sum actually runs over the "
            "four terms i = 1..4 with no extra factor (the '4' reads as the misplaced upper limit), which "
            f"is the form used here. Maximum (usually quoted as {quoted}) refined to double precision by "
            "local optimisation from the published maximiser."
        ),
        fn=_hartmann_fn(dim),
    )


def _michalewicz_obj(dim: int = 5) -> Objective:
    if dim < 1:
        raise ValueError(f"michalewicz needs dim >= 1; got {dim}")
    x_opt, f_opt = _michalewicz_optimum(dim)
    return Objective(
        name=f"michalewicz{dim}",
        dim=dim,
        bounds=tuple((0.0, math.pi) for _ in range(dim)),
        optimum_value=f_opt,
        optimizer=x_opt,
        formula=f"sum_{{i=1..{dim}}} sin(x_i) sin(i x_i^2 / pi)^20",
        notes=(
            "Michalewicz (1994) with steepness m = 10 (exponent 20). The usual form is minimised and "
            "carries a leading minus sign; the paper's Table 1 prints that minimised form although the "
            "paper maximises, so we return the sum without the minus sign. The function is separable: "
            "the maximiser and maximum come from one 1-d search per coordinate (a 400,001-point grid "
            "on [0, pi] refined by bounded Brent search); for d = 5 the maximum is 4.687658179..."
        ),
        fn=_michalewicz,
    )


_SHEKEL_X = (4.000746868270634, 3.9995094800857736, 4.000746868270634, 3.9995094800857736)
_SHEKEL_MAX = 10.536443153483528


def _shekel_obj() -> Objective:
    return Objective(
        name="shekel4",
        dim=4,
        bounds=tuple((0.0, 10.0) for _ in range(4)),
        optimum_value=_SHEKEL_MAX,
        optimizer=_SHEKEL_X,
        formula=(
            "sum_{i=1..10} 1 / (c_i + sum_{j=1..4} (x_j - A_ji)^2), c = (1, 2, 2, 4, 4, 6, 3, 7, 5, 5) / 10"
        ),
        notes=(
            "Shekel with m = 10 terms and the standard c and A (Dixon & Szegő 1978; the paper calls c "
            "'alpha'). The usual form is minimised (a leading minus sign); we return the positive sum. "
            "The paper's Table 1 puts the sum over i inside the denominator; the standard definition, "
            "used here, sums one reciprocal per term. The maximum lies near, not at, (4, 4, 4, 4) "
            "(f(4, 4, 4, 4) = 10.53628); refined by local optimisation to 10.536443..."
        ),
        fn=_shekel,
    )


def _branin_obj() -> Objective:
    return Objective(
        name="branin",
        dim=2,
        bounds=((-5.0, 10.0), (0.0, 15.0)),
        optimum_value=-5.0 / (4.0 * math.pi),
        optimizer=(math.pi, 2.275),
        formula="-[(x2 - 5.1 x1^2 / (4 pi^2) + 5 x1 / pi - 6)^2 + 10 (1 - 1 / (8 pi)) cos(x1) + 10]",
        notes=(
            _MAXIMISED + " Maximum -5 / (4 pi) = -0.397887... attained at three points: (-pi, 12.275), "
            "(pi, 2.275) (stored) and (3 pi, 2.475)."
        ),
        fn=_branin,
    )


def _ackley_obj(dim: int = 2) -> Objective:
    if dim < 1:
        raise ValueError(f"ackley needs dim >= 1; got {dim}")
    return Objective(
        name="ackley" if dim == 2 else f"ackley{dim}",
        dim=dim,
        bounds=tuple((-32.768, 32.768) for _ in range(dim)),
        optimum_value=0.0,
        optimizer=tuple(0.0 for _ in range(dim)),
        formula="20 exp(-0.2 sqrt(mean(x^2))) + exp(mean(cos(2 pi x))) - 20 - e",
        notes=_MAXIMISED + " Constants a = 20, b = 0.2, c = 2 pi; maximum 0 at the origin.",
        fn=_ackley,
    )


def _levy_obj(dim: int = 2) -> Objective:
    if dim < 1:
        raise ValueError(f"levy needs dim >= 1; got {dim}")
    return Objective(
        name="levy" if dim == 2 else f"levy{dim}",
        dim=dim,
        bounds=tuple((-10.0, 10.0) for _ in range(dim)),
        optimum_value=0.0,
        optimizer=tuple(1.0 for _ in range(dim)),
        formula=(
            "-[sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2 (1 + 10 sin^2(pi w_i + 1)) "
            "+ (w_d - 1)^2 (1 + sin^2(2 pi w_d))],  w = 1 + (x - 1) / 4"
        ),
        notes=_MAXIMISED + " Maximum 0 at x = (1, ..., 1).",
        fn=_levy,
    )


# --------------------------------------------------------------------------------------------
# registry

OBJECTIVES: dict[str, Objective] = {
    obj.name: obj
    for obj in (
        _cosines_obj(),
        _rosenbrock_obj(),
        _hartmann(3),
        _hartmann(6),
        _michalewicz_obj(5),
        _shekel_obj(),
        _branin_obj(),
        _ackley_obj(2),
        _levy_obj(2),
    )
}
"""The built-in benchmarks by name (default dimensions; see :func:`make_objective` for others)."""

# family alias -> (family, default dimension or None if the dimension must be given)
_FAMILIES: dict[str, tuple[str, int | None]] = {
    "cosines": ("cosines", 2),
    "cosine": ("cosines", 2),
    "rosenbrock": ("rosenbrock", 2),
    "rosen": ("rosenbrock", 2),
    "hartmann": ("hartmann", None),
    "hartman": ("hartmann", None),
    "hart": ("hartmann", None),
    "michalewicz": ("michalewicz", 5),
    "michal": ("michalewicz", 5),
    "shekel": ("shekel", 4),
    "branin": ("branin", 2),
    "ackley": ("ackley", 2),
    "levy": ("levy", 2),
}

_FIXED_DIMS = {"cosines": (2,), "rosenbrock": (2,), "hartmann": (3, 6), "shekel": (4,), "branin": (2,)}

_SPEC_RE = re.compile(r"^([a-z]+?)(?:(\d+)|\((\d+)\))?$")


def _known_names_message() -> str:
    return (
        f"known names: {', '.join(OBJECTIVES)}; aliases: cosine, rosen, hart3/hartman3/hartmann(3), "
        "hart6/hartman6/hartmann(6), michal, michalewicz (5-d), shekel; any dimension: ackley(d), "
        "levy(d), michalewicz(d)"
    )


def _from_name(spec: str) -> Objective:
    key = re.sub(r"[\s_\-]", "", spec.strip().lower())
    if key in OBJECTIVES:
        return OBJECTIVES[key]
    match = _SPEC_RE.match(key)
    if match is None or match.group(1) not in _FAMILIES:
        raise ValueError(f"unknown objective {spec!r}; {_known_names_message()}")
    family, default_dim = _FAMILIES[match.group(1)]
    digits = match.group(2) or match.group(3)
    dim = int(digits) if digits is not None else default_dim
    if dim is None:
        raise ValueError(f"{spec!r} needs a dimension: hartmann3 or hartmann6 (e.g. 'hartmann(6)')")
    allowed = _FIXED_DIMS.get(family)
    if allowed is not None and dim not in allowed:
        raise ValueError(
            f"{family} is defined here for d in {allowed}; got d = {dim} from {spec!r}; "
            + _known_names_message()
        )
    if dim < 1:
        raise ValueError(f"{spec!r}: the dimension must be >= 1")
    if family == "cosines":
        return OBJECTIVES["cosines"]
    if family == "rosenbrock":
        return OBJECTIVES["rosenbrock"]
    if family == "hartmann":
        return OBJECTIVES[f"hartmann{dim}"]
    if family == "shekel":
        return OBJECTIVES["shekel4"]
    if family == "branin":
        return OBJECTIVES["branin"]
    if family == "michalewicz":
        return OBJECTIVES["michalewicz5"] if dim == 5 else _michalewicz_obj(dim)
    if family == "ackley":
        return OBJECTIVES["ackley"] if dim == 2 else _ackley_obj(dim)
    return OBJECTIVES["levy"] if dim == 2 else _levy_obj(dim)


def _restrict(obj: Objective, bounds: object) -> Objective:
    """``obj`` on a sub-box of its domain that still contains its maximiser (same optimum)."""
    new = _check_bounds(bounds, obj.dim)
    lo, hi = np.array([b[0] for b in new]), np.array([b[1] for b in new])
    tol = _bounds_tolerance(obj.lower, obj.upper)
    if np.any(lo < obj.lower - tol) or np.any(hi > obj.upper + tol):
        raise ValueError(
            f"bounds {new} must lie inside the standard domain {obj.bounds} of {obj.name} (its optimum is "
            "only known there); wrap the raw function with make_objective(fn, bounds=...) instead"
        )
    if obj.optimizer is None:
        raise ValueError(f"bounds cannot be changed for {obj.name}: its maximiser is unknown")
    x = np.asarray(obj.optimizer)
    if np.any(x < lo) or np.any(x > hi):
        raise ValueError(
            f"bounds {new} exclude the maximiser {obj.optimizer} of {obj.name}, so its optimum would "
            "change; wrap the raw function with make_objective(fn, bounds=...) instead"
        )
    if new == obj.bounds:
        return obj
    return replace(obj, bounds=new, notes=f"{obj.notes} Domain restricted to {new} (optimum unchanged).")


# --------------------------------------------------------------------------------------------
# user callables


def _scalar(value: object) -> float:
    arr = np.asarray(value, dtype=float)
    if arr.size != 1:
        raise ValueError(f"the objective must return a single number for one point; got shape {arr.shape}")
    return float(arr.reshape(()))


def _vectorise(fn: Callable, lo: np.ndarray, hi: np.ndarray, vectorized: bool | None) -> tuple[BatchFn, bool]:
    """Return ``(batch_fn, is_vectorised)`` for a user callable.

    ``batch_fn`` maps ``(m, d)`` to ``(m,)``. If ``vectorized`` is None it is detected: ``fn`` is
    evaluated point by point on a small probe batch of ``d + 2`` points (a row count different from
    ``d``, so a scalar-only function indexing ``x[0]``, ``x[1]``... cannot return the right shape
    by accident) and once on the whole batch; ``fn`` counts as vectorised only if the batched call
    returns ``m`` values agreeing with the point-by-point ones. Otherwise ``fn`` is called once per
    point (a Python loop).
    """

    def looped(X: np.ndarray) -> np.ndarray:
        return np.array([_scalar(fn(row)) for row in X], dtype=float)

    def batched(X: np.ndarray) -> np.ndarray:
        out = np.asarray(fn(X), dtype=float)
        if out.size != X.shape[0] or out.ndim > 2:
            raise ValueError(
                f"a vectorised objective must return {X.shape[0]} values for x of shape {X.shape}; "
                f"got shape {out.shape}"
            )
        return out.reshape(X.shape[0])

    if vectorized is True:
        return batched, True
    if vectorized is False:
        return looped, False
    d = lo.shape[0]
    probe = lo + (hi - lo) * np.random.default_rng(20111212).random((d + 2, d))
    try:
        reference = looped(probe)
    except Exception as exc:  # the function may accept batches only
        try:
            batched(probe)
        except Exception:
            raise ValueError(
                f"could not evaluate the objective on points of shape ({d},) nor on a batch of shape "
                f"{probe.shape}: {exc}"
            ) from exc
        return batched, True
    try:
        ok = bool(np.allclose(batched(probe), reference, rtol=1e-9, atol=1e-12, equal_nan=True))
    except Exception:
        ok = False
    return (batched, True) if ok else (looped, False)


def estimate_maximum(
    fn: BatchFn,
    bounds: object,
    *,
    n_samples: int = 2**14,
    n_polish: int = 20,
    seed: int | None = 0,
) -> tuple[tuple[float, ...], float]:
    """Estimate ``max f`` over a box: a scrambled Sobol sample, then L-BFGS-B from its best points.

    ``fn`` maps ``(m, d)`` arrays to ``(m,)``. ``n_samples`` (rounded up to a power of two) Sobol
    points are evaluated; from the ``n_polish`` best, L-BFGS-B (finite-difference gradients, kept
    inside ``bounds``) climbs to a local maximum. The best point seen is returned with its value.
    This is a lower bound on the true maximum: it can miss narrow peaks, so treat it as an estimate.
    Non-finite values are ignored.
    """
    from scipy.optimize import minimize  # imported lazily: scipy is slow to import
    from scipy.stats import qmc

    box = _check_bounds(bounds)
    lo, hi = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    d = lo.shape[0]
    if n_samples < 1 or n_polish < 0:
        raise ValueError("n_samples must be >= 1 and n_polish >= 0")
    sobol = qmc.Sobol(d, scramble=True, seed=seed)
    X = lo + (hi - lo) * sobol.random_base2(max(0, math.ceil(math.log2(n_samples))))
    X = np.clip(X, lo, hi)
    vals = np.asarray(fn(X), dtype=float).reshape(X.shape[0])
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    if not np.any(np.isfinite(vals)):
        raise ValueError("the objective returned no finite value on the Sobol sample")
    best = int(np.argmax(vals))
    best_x, best_v = X[best].copy(), float(vals[best])

    def neg(x: np.ndarray) -> float:
        v = float(np.asarray(fn(np.clip(x, lo, hi)[None, :]), dtype=float).reshape(-1)[0])
        return -v if math.isfinite(v) else math.inf

    for k in np.argsort(-vals, kind="stable")[:n_polish]:
        if not np.isfinite(vals[k]):
            break
        res = minimize(
            neg,
            X[k],
            method="L-BFGS-B",
            bounds=list(zip(lo, hi, strict=True)),
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
        )
        x = np.clip(res.x, lo, hi)
        v = -neg(x)
        if v > best_v:
            best_x, best_v = x, v
    return tuple(float(v) for v in best_x), best_v


def make_objective(
    spec: str | Objective | Callable,
    *,
    bounds: object = None,
    optimum_value: float | None = None,
    optimizer: Sequence[float] | None = None,
    name: str | None = None,
    vectorized: bool | None = None,
    n_samples: int = 2**14,
    n_polish: int = 20,
    seed: int | None = 0,
) -> Objective:
    """Build an :class:`Objective`.

    ``spec`` may be:

    * a registered name, case-insensitive, ignoring spaces, ``_`` and ``-``: the keys of
      :data:`OBJECTIVES` and aliases such as ``"hart3"``, ``"Hartmann(6)"``, ``"michalewicz"``
      (5-d), ``"michalewicz(10)"``, ``"shekel"``, ``"rosen"``, ``"ackley(5)"``, ``"levy(3)"``.
      ``bounds`` may then shrink the domain to a sub-box that still contains the maximiser (e.g.
      ``make_objective("rosenbrock", bounds=[(0, 1), (0, 1)])``); the optimum is unchanged.
    * an :class:`Objective`, returned as is (``bounds`` restricts it as above).
    * a callable ``fn`` with ``bounds`` (required). ``fn`` may be vectorised (``(m, d)`` ->
      ``(m,)``) or scalar-only (``(d,)`` -> number); this is detected on a small probe batch unless
      ``vectorized`` is given (see ``_vectorise``), and scalar-only functions are looped over rows.
      If ``optimum_value`` is given it is trusted; if only ``optimizer`` is given, the optimum is
      ``fn(optimizer)``; otherwise both are estimated by :func:`estimate_maximum` (``n_samples``
      Sobol points, ``n_polish`` L-BFGS-B runs, ``seed``) and ``optimum_estimated`` is set.

    Raises:
        ValueError: unknown name (the message lists the known ones), invalid ``bounds``, or
            options that do not apply to ``spec``.
    """
    callable_only = {"optimum_value": optimum_value, "optimizer": optimizer, "vectorized": vectorized}
    if isinstance(spec, Objective | str):
        given = [k for k, v in callable_only.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to a user callable, not to {spec!r}")
        obj = spec if isinstance(spec, Objective) else _from_name(spec)
        if bounds is not None:
            obj = _restrict(obj, bounds)
        if name is not None and name != obj.name:
            obj = replace(obj, name=name)
        return obj
    if not callable(spec):
        raise TypeError(f"spec must be a name, an Objective or a callable; got {type(spec).__name__}")
    if bounds is None:
        raise ValueError("bounds is required for a callable objective: one (low, high) pair per dimension")
    box = _check_bounds(bounds)
    lo, hi = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    fn, is_vec = _vectorise(spec, lo, hi, vectorized)
    label = name or getattr(spec, "__name__", "") or "custom"
    if label == "<lambda>":
        label = "custom"
    how = "vectorised (called on (m, d) batches)" if is_vec else "scalar-only (called once per point)"
    estimated = False
    if optimum_value is not None:
        value = float(optimum_value)
        x_opt = None if optimizer is None else tuple(float(v) for v in optimizer)
        source = "optimum supplied by the user"
    elif optimizer is not None:
        x_opt = tuple(float(v) for v in optimizer)
        probe = Objective(label, len(box), box, 0.0, x_opt, "", "", fn)  # validates the optimizer
        value = float(probe(np.asarray(x_opt)))
        source = "optimum = f(optimizer), with the optimizer supplied by the user"
    else:
        x_opt, value = estimate_maximum(fn, box, n_samples=n_samples, n_polish=n_polish, seed=seed)
        estimated = True
        source = (
            f"optimum ESTIMATED numerically (best of a {2 ** max(0, math.ceil(math.log2(n_samples)))}-point "
            f"scrambled Sobol sample, seed {seed}, polished by L-BFGS-B from its {n_polish} best points); "
            "it is a lower bound, so regrets may be slightly negative"
        )
    return Objective(
        name=label,
        dim=len(box),
        bounds=box,
        optimum_value=value,
        optimizer=x_opt,
        formula="user-supplied callable",
        notes=f"User callable, {how}; {source}.",
        fn=fn,
        optimum_estimated=estimated,
    )
