"""The raw benchmark functions, ``(m, d)`` arrays to ``(m,)`` values without checks, all
module-level functions or small callable classes so that every built-in objective pickles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = [
    "MICH5_MAX",
    "MICH5_X",
    "Hartmann",
    "ackley",
    "branin",
    "cosines",
    "levy",
    "michalewicz",
    "michalewicz_coordinate_max",
    "michalewicz_optimum",
    "rosenbrock",
    "shekel",
]


def cosines(X: np.ndarray) -> np.ndarray:
    u = 1.6 * X - 0.5
    return 1.0 - np.sum(u**2 - 0.3 * np.cos(3.0 * np.pi * u), axis=1)


def rosenbrock(X: np.ndarray) -> np.ndarray:
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


@dataclass(frozen=True)
class Hartmann:
    """The Hartmann function of dimension 3 or 6 (a picklable callable, ``(m, d)`` -> ``(m,)``)."""

    dim: int

    def __call__(self, X: np.ndarray) -> np.ndarray:
        A, P = _HART_A[self.dim], _HART_P[self.dim]
        inner = np.sum(A * (X[:, None, :] - P) ** 2, axis=2)  # (m, 4)
        return np.exp(-inner) @ _HART_ALPHA


def michalewicz(X: np.ndarray) -> np.ndarray:
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


def shekel(X: np.ndarray) -> np.ndarray:
    sq = np.sum((X[:, :, None] - _SHEKEL_A[None, :, :]) ** 2, axis=1)  # (m, 10)
    return np.sum(1.0 / (_SHEKEL_C + sq), axis=1)


def branin(X: np.ndarray) -> np.ndarray:
    x1, x2 = X[:, 0], X[:, 1]
    b, c, r, s, t = 5.1 / (4.0 * np.pi**2), 5.0 / np.pi, 6.0, 10.0, 1.0 / (8.0 * np.pi)
    return -((x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1.0 - t) * np.cos(x1) + s)


def ackley(X: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(X**2, axis=1))
    return 20.0 * np.exp(-0.2 * rms) + np.exp(np.mean(np.cos(2.0 * np.pi * X), axis=1)) - 20.0 - np.e


def levy(X: np.ndarray) -> np.ndarray:
    w = 1.0 + (X - 1.0) / 4.0
    head = np.sin(np.pi * w[:, 0]) ** 2
    mid = np.sum((w[:, :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(np.pi * w[:, :-1] + 1.0) ** 2), axis=1)
    tail = (w[:, -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * np.pi * w[:, -1]) ** 2)
    return -(head + mid + tail)


# --------------------------------------------------------------------------------------------
# Michalewicz optimum (separable: one 1-d problem per coordinate)

# Coordinate-wise maximisers and maxima of sin(x) sin(i x^2 / pi)^20 on [0, pi], i = 1..5, found
# on a 400,001-point grid and refined by bounded Brent search (see michalewicz_coordinate_max).
MICH5_X = (2.202905520186834, 1.5707963267948966, 1.2849915705402832, 1.9230584698680722, 1.7204697725650733)
MICH5_MAX = 4.687658179088144


def michalewicz_coordinate_max(i: int, n_grid: int = 400_001) -> tuple[float, float]:
    """Maximiser and maximum of ``sin(t) sin(i t^2 / pi)^20`` on ``[0, pi]``."""

    def g(t: Any) -> Any:
        return np.sin(t) * np.sin(i * np.square(t) / np.pi) ** 20

    t = np.linspace(0.0, np.pi, n_grid)
    k = int(np.argmax(g(t)))
    a, b = t[max(k - 1, 0)], t[min(k + 1, n_grid - 1)]
    res = minimize_scalar(lambda s: -g(s), bounds=(a, b), method="bounded", options={"xatol": 1e-13})
    best_t, best_v = (float(res.x), float(-res.fun)) if -res.fun >= g(t[k]) else (float(t[k]), float(g(t[k])))
    return best_t, best_v


def michalewicz_optimum(dim: int) -> tuple[tuple[float, ...], float]:
    if dim == 5:
        return MICH5_X, MICH5_MAX
    if dim < 5:
        return MICH5_X[:dim], float(michalewicz(np.array([MICH5_X[:dim]]))[0])
    pairs = [michalewicz_coordinate_max(i) for i in range(1, dim + 1)]
    return tuple(p[0] for p in pairs), float(sum(p[1] for p in pairs))
