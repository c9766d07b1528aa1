"""Objectives from names, :class:`Objective` records or user callables: :func:`make_objective`, and
:func:`estimate_maximum` for callables without a known optimum."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from labsched.envs.bo.objectives.base import BatchFn, Objective, as_bounds_tuple
from labsched.envs.bo.objectives.builtin import from_name, restrict

__all__ = ["estimate_maximum", "make_objective"]


def _scalar(value: object) -> float:
    arr = np.asarray(value, dtype=float)
    if arr.size != 1:
        raise ValueError(f"the objective must return a single number for one point; got shape {arr.shape}")
    return float(arr.reshape(()))


@dataclass(frozen=True)
class _Looped:
    """A scalar-only user function applied row by row (picklable when ``fn`` is)."""

    fn: Callable

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.array([_scalar(self.fn(row)) for row in X], dtype=float)


@dataclass(frozen=True)
class _Batched:
    """A vectorised user function with its output shape checked (picklable when ``fn`` is)."""

    fn: Callable

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fn(X), dtype=float)
        if out.size != X.shape[0] or out.ndim > 2:
            raise ValueError(
                f"a vectorised objective must return {X.shape[0]} values for x of shape {X.shape}; "
                f"got shape {out.shape}"
            )
        return out.reshape(X.shape[0])


def _vectorise(fn: Callable, lo: np.ndarray, hi: np.ndarray, vectorized: bool | None) -> tuple[BatchFn, bool]:
    """Return ``(batch_fn, is_vectorised)`` for a user callable.

    ``batch_fn`` maps ``(m, d)`` to ``(m,)``. If ``vectorized`` is None it is detected: ``fn`` is
    evaluated point by point on a small probe batch of ``d + 2`` points (a row count different from
    ``d``, so a scalar-only function indexing ``x[0]``, ``x[1]``... cannot return the right shape
    by accident) and once on the whole batch; ``fn`` counts as vectorised only if the batched call
    returns ``m`` values agreeing with the point-by-point ones. Otherwise ``fn`` is called once per
    point (a Python loop).
    """

    looped, batched = _Looped(fn), _Batched(fn)

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
    box = as_bounds_tuple(bounds)
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
        obj = spec if isinstance(spec, Objective) else from_name(spec)
        if bounds is not None:
            obj = restrict(obj, bounds)
        if name is not None and name != obj.name:
            obj = replace(obj, name=name)
        return obj
    if not callable(spec):
        raise TypeError(f"spec must be a name, an Objective or a callable; got {type(spec).__name__}")
    if bounds is None:
        raise ValueError("bounds is required for a callable objective: one (low, high) pair per dimension")
    box = as_bounds_tuple(bounds)
    lo, hi = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    fn, is_vec = _vectorise(spec, lo, hi, vectorized)
    label = name or getattr(spec, "__name__", "") or "custom"
    if label == "<lambda>":
        label = "custom"
    how = "vectorised (called on (m, d) batches)" if is_vec else "scalar-only (called once per point)"
    x_opt, value, source, estimated = _callable_optimum(
        fn, box, label, optimum_value, optimizer, n_samples=n_samples, n_polish=n_polish, seed=seed
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


def _callable_optimum(
    fn: BatchFn,
    box: tuple[tuple[float, float], ...],
    label: str,
    optimum_value: float | None,
    optimizer: Sequence[float] | None,
    *,
    n_samples: int,
    n_polish: int,
    seed: int | None,
) -> tuple[tuple[float, ...] | None, float, str, bool]:
    """``(optimizer, optimum, how it was obtained, estimated?)`` of a user callable."""
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
    return x_opt, value, source, estimated
