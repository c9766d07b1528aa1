"""Input-dependent experiment durations (issue 14): a cost surface over the optimisation box.

In regret and information modes the environment knows each experiment's input ``x`` when it
starts; with ``duration_fn`` the experiment's duration is its base draw (the duration law's draw,
on its lab) times ``duration_fn(x)``. So a selector can trade what an input teaches against how
long it takes (cost-aware selection).

``duration_fn`` is either a callable ``x -> positive scale`` (``x`` the ``(d,)`` input in the
objective's units; it must return a finite real scalar > 0) or the name of a built-in cost
surface (:data:`COST_SURFACES`), defined on the box scaled to the unit cube ``u`` in
``[0, 1]^d`` and averaging 1 over it:

* ``"constant"``: 1 everywhere (the base law unchanged);
* ``"linear"``: ``0.5 + mean(u)``, from 0.5 at the lower corner to 1.5 at the upper one;
* ``"bowl"``: ``0.5 + 6 mean((u - 0.5)**2)``, 0.5 at the centre, 2 at the corners;
* ``"ridge"``: ``1 + 0.5 sin(2 pi u_1)``, varying along the first coordinate only.

Built-ins are instances of :class:`CostSurface`, a module-level class, so environments using
them pickle (subprocess vector environments, parallel evaluation); a user's lambda does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from labsched.envs._lib.registry import Registry

__all__ = ["COST_SURFACES", "CostSurface", "duration_scales", "make_duration_fn"]


def _constant(u: np.ndarray) -> float:
    return 1.0


def _linear(u: np.ndarray) -> float:
    return 0.5 + float(np.mean(u))


def _bowl(u: np.ndarray) -> float:
    return 0.5 + 6.0 * float(np.mean((u - 0.5) ** 2))


def _ridge(u: np.ndarray) -> float:
    return 1.0 + 0.5 * math.sin(2.0 * math.pi * float(u[0]))


#: Built-in cost surfaces on the unit cube: ``name -> f(u) -> scale`` (mean 1 over the cube).
COST_SURFACES: Registry[Callable[[np.ndarray], float]] = Registry("cost surface")
COST_SURFACES.add("constant", _constant)
COST_SURFACES.add("linear", _linear)
COST_SURFACES.add("bowl", _bowl)
COST_SURFACES.add("ridge", _ridge)


class CostSurface:
    """A built-in cost surface on a box (picklable).

    Args:
        name: one of ``sorted(COST_SURFACES)``.
        bounds: the objective's ``(low, high)`` pairs; inputs are scaled to the unit cube and
            clipped to it.
    """

    def __init__(self, name: str, bounds: Any) -> None:
        self.name = COST_SURFACES.canonical(name)
        b = np.asarray(bounds, dtype=float).reshape(-1, 2)
        self._low = b[:, 0].copy()
        self._width = b[:, 1] - b[:, 0]

    def __call__(self, x: Any) -> float:
        u = np.clip((np.asarray(x, dtype=float).reshape(-1) - self._low) / self._width, 0.0, 1.0)
        return COST_SURFACES.get(self.name)(u)

    def __repr__(self) -> str:
        return f"CostSurface({self.name!r})"


def make_duration_fn(duration_fn: Any, bounds: Any) -> Callable[[np.ndarray], Any] | None:
    """``duration_fn`` as a callable: ``None`` stays ``None``, a name gives its
    :class:`CostSurface` on ``bounds``, a callable is kept.

    Raises:
        TypeError: for anything else (the message names ``duration_fn``).
        ValueError: for an unknown name (listing the built-ins).
    """
    if duration_fn is None:
        return None
    if isinstance(duration_fn, str):
        try:
            return CostSurface(duration_fn, bounds)
        except ValueError as exc:
            raise ValueError(f"duration_fn: {exc}") from None
    if not callable(duration_fn):
        raise TypeError(
            f"duration_fn must be a callable x -> scale > 0 or one of {sorted(COST_SURFACES)}, "
            f"got {type(duration_fn).__name__}"
        )
    return duration_fn


def duration_scales(duration_fn: Callable[[np.ndarray], Any], X: np.ndarray) -> list[float]:
    """``duration_fn(x)`` for each row of ``X``, checked.

    Raises:
        TypeError: when a value is not a real scalar (an array of size > 1, a string, ...).
        ValueError: when a value is NaN, infinite or <= 0.
    """
    out = []
    for x in np.asarray(X, dtype=float):
        v = duration_fn(x)
        if isinstance(v, np.ndarray) and v.size == 1:
            v = v.reshape(()).item()
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"duration_fn must return a real scalar > 0 (a duration scale), got {v!r} "
                f"({type(v).__name__}) at x={x.tolist()}"
            )
        s = float(v)
        if not (math.isfinite(s) and s > 0.0):
            raise ValueError(f"duration_fn must return a finite scale > 0, got {s!r} at x={x.tolist()}")
        out.append(s)
    return out
