"""The input box of a Bayesian-optimisation problem: validating ``bounds`` and the affine map to the
unit cube that the GP, the selectors and the objectives share."""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.envs._lib.validation import as_float_array

__all__ = ["check_bounds", "from_unit", "to_unit"]


def check_bounds(bounds: Any, dim: int | None = None, name: str = "bounds") -> np.ndarray:
    """``bounds`` as a read-only float array of shape ``(d, 2)``, one ``(low, high)`` row per dimension.

    Args:
        bounds: the box.
        dim: the required number of rows, or ``None``.
        name: the parameter name used in error messages.

    Raises:
        TypeError: for strings or entries that are not real numbers.
        ValueError: for a wrong shape, NaN or infinite entries, or a row without ``low < high``.
    """
    arr = as_float_array(name, bounds, "a sequence of (low, high) pairs")
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape (d, 2) (one (low, high) pair per dimension), got shape {arr.shape}"
        )
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name} must have {dim} (low, high) pairs, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    bad = np.flatnonzero(~(arr[:, 0] < arr[:, 1]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] must have low < high, got low={arr[i, 0]!r}, high={arr[i, 1]!r}")
    arr.setflags(write=False)
    return arr


def to_unit(X: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``(X - low) / (high - low)``: box coordinates to unit-cube coordinates (no clipping)."""
    return (X - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])


def from_unit(U: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``low + U * (high - low)``: unit-cube coordinates to box coordinates (no clipping)."""
    return bounds[:, 0] + U * (bounds[:, 1] - bounds[:, 0])
