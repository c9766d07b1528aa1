"""Argument checks shared by the modules of ``labsched.envs``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["real_array"]


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float array.

    Raises:
        TypeError: when ``value`` is a string or holds anything but real numbers.
        ValueError: for ragged nested sequences and NaN or infinite entries.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of real numbers: {exc}") from None
    if raw.size and raw.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {raw.dtype}")
    arr = raw.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr
