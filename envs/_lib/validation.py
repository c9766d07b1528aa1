"""Argument checks shared by every labsched package.

Each check either returns the value in its canonical type or raises a ``TypeError`` (wrong
type) / ``ValueError`` (right type, outside the allowed range) whose message names the parameter
and the allowed values. Nothing is coerced silently: ``True`` is not an integer, ``2.7`` is not a
count and ``"3"`` is not a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_bool",
    "check_choice",
    "check_generator",
    "check_int",
    "check_probability",
    "check_real",
    "real_array",
]

_REAL_TYPES = (int, float, np.integer, np.floating)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional).

    Raises:
        TypeError: for anything but an integer (``bool`` and floats such as ``2.0`` included).
        ValueError: outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an integer{_range(low, high)}, got {value!r} ({type(value).__name__})"
        )
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {v}")
    return v


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a ``float`` in the given (closed or open) interval.

    Raises:
        TypeError: for anything but a real number (``bool`` and strings included).
        ValueError: NaN, an infinite value when ``finite``, or a value outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, _REAL_TYPES):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    interval = _interval(low, high, low_open, high_open)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be a finite real number{interval}, got {v!r}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        raise ValueError(f"{name} must be a real number{interval}, got {v!r}")
    return v


def check_probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """A probability in ``[0, 1]`` (ends optionally excluded)."""
    return check_real(name, value, 0.0, 1.0, low_open=open_low, high_open=open_high)


def check_bool(name: str, value: Any) -> bool:
    """``value`` when it is a ``bool`` (or NumPy bool); strings such as ``"no"`` are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices`` (exact string match)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_generator(name: str, value: Any) -> np.random.Generator:
    """``value`` when it is a ``numpy.random.Generator`` (the only accepted source of randomness)."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator, got {type(value).__name__}")
    return value


def as_float_array(name: str, value: Any, what: str = "an array of real numbers") -> np.ndarray:
    """``value`` as a new float array, of any shape; NaN and infinities are not checked here.

    Args:
        name: the parameter name used in error messages.
        value: the array-like.
        what: how the message for a string describes the expected value.

    Raises:
        TypeError: when ``value`` is a string or holds anything but real numbers (booleans,
            objects, strings).
        ValueError: for ragged nested sequences.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of real numbers: {exc}") from None
    if raw.size and raw.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {raw.dtype}")
    return raw.astype(float)


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float array.

    Raises:
        TypeError: when ``value`` is a string or holds anything but real numbers.
        ValueError: for ragged nested sequences and NaN or infinite entries.
    """
    arr = as_float_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return ""
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    return (
        f" in {'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    )
