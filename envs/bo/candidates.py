"""Candidate generation and optimisation for the selectors, kept apart from acquisition values.

:class:`SelectionContext` holds one ``select`` call in unit-cube coordinates
(``u = (x - low) / (high - low)``); :func:`generate_candidates` draws the finite candidate set the
model-based selectors score; :func:`polish_ei` climbs expected improvement from the best
candidates with L-BFGS-B; :func:`random_far_point` is the fallback when every candidate is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize
from scipy.spatial import cKDTree
from scipy.stats import qmc

from labsched.envs._lib.validation import real_array
from labsched.envs.bo.acquisition import Posterior
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.scores import CandidateScore, PickScores

__all__ = [
    "SelectionContext",
    "check_pending",
    "generate_candidates",
    "polish_ei",
    "random_far_point",
]


def check_pending(X_pending: Any, dim: int) -> np.ndarray:
    """``X_pending`` as a ``(p, dim)`` float array; ``None`` and empty inputs mean ``p = 0``."""
    if X_pending is None:
        return np.zeros((0, dim))
    arr = real_array("X_pending", X_pending)
    if arr.size == 0:
        return np.zeros((0, dim))
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"X_pending must have shape (p, {dim}) (p >= 0), got shape {arr.shape}")
    return arr


@dataclass
class SelectionContext:
    """Everything a selector needs about one call, in unit-cube coordinates."""

    gp: GaussianProcess
    low: np.ndarray
    span: np.ndarray
    ell: np.ndarray  # unit-cube lengthscales (d,)
    U_obs: np.ndarray  # (n, d)
    y_obs: np.ndarray  # (n,)
    U_pend: np.ndarray  # (p, d)
    X_pending: np.ndarray  # (p, d), original units
    min_distance: float
    picks: list[PickScores] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    def to_x(self, U: np.ndarray) -> np.ndarray:
        return self.low + np.clip(U, 0.0, 1.0) * self.span

    def record(
        self, u: np.ndarray, value: float, U: np.ndarray, values: np.ndarray, n_top: int, **extra: Any
    ) -> None:
        """Remember one pick for :attr:`Selector.last_scores`: the chosen unit-cube point ``u`` with
        its score and the ``n_top`` best of the candidates ``U`` by ``values`` (best first).

        ``extra`` may hold per-candidate arrays ``gains`` and ``durations`` (same order as ``U``)
        and a ``reason`` string.
        """
        gains, durations = extra.get("gains"), extra.get("durations")
        order = [i for i in np.argsort(-values, kind="stable")[:n_top] if np.isfinite(values[i])]
        top = tuple(
            CandidateScore(
                self.to_x(U[i : i + 1])[0],
                float(values[i]),
                None if gains is None else float(gains[i]),
                None if durations is None else float(durations[i]),
            )
            for i in order
        )
        self.picks.append(
            PickScores(self.to_x(u[None, :])[0], float(value), top, extra.get("reason", "argmax"))
        )

    def far_from(self, U: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Mask of rows of ``U`` at least ``min_distance`` away from every row of ``ref``."""
        if ref.shape[0] == 0 or U.shape[0] == 0:
            return np.ones(U.shape[0], dtype=bool)
        dist, _ = cKDTree(ref).query(U, k=1)
        return dist >= self.min_distance


def random_far_point(ctx: SelectionContext, ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform point at least ``min_distance`` from every row of ``ref`` (ValueError if none found)."""
    for _ in range(100):
        U = rng.random((256, ctx.dim))
        ok = np.flatnonzero(ctx.far_from(U, ref))
        if ok.size:
            return U[ok[0]]
    raise ValueError(
        f"could not find a point at least min_distance={ctx.min_distance} away from the "
        f"{ref.shape[0]} observed, pending and selected points; use a smaller min_distance"
    )


def generate_candidates(
    ctx: SelectionContext,
    rng: np.random.Generator,
    n_needed: int,
    *,
    n_sobol: int,
    n_local: int,
    n_best: int,
    local_scale: float,
) -> np.ndarray:
    """Unit-cube candidates, at least ``min_distance`` from each other and from old points.

    A scrambled Sobol' set of ``max(n_sobol, 4 n_needed)`` points seeded from ``rng`` plus
    ``n_local`` Gaussian perturbations (standard deviation ``local_scale`` GP lengthscales) around
    the ``n_best`` best observed inputs, clipped to the cube; points too close to an observed or
    pending input or to an earlier candidate are dropped, and uniform points top the set up when
    fewer than ``n_needed`` remain (ValueError if that fails).
    """
    d = ctx.dim
    n_sobol = max(n_sobol, 4 * n_needed)
    try:
        engine = qmc.Sobol(d, scramble=True, rng=rng)
    except TypeError:  # pragma: no cover - SciPy < 1.15 names the argument ``seed``
        engine = qmc.Sobol(d, scramble=True, seed=rng)
    sobol = engine.random_base2(max(0, math.ceil(math.log2(n_sobol))))[:n_sobol]
    parts = [sobol]
    n_best = min(n_best, ctx.y_obs.shape[0])
    if n_local and n_best:
        best = np.argsort(-ctx.y_obs, kind="stable")[:n_best]
        centres = ctx.U_obs[np.repeat(best, -(-n_local // n_best))[:n_local]]
        local = centres + rng.standard_normal((n_local, d)) * (local_scale * ctx.ell)
        parts.append(np.clip(local, 0.0, 1.0))
    U = np.concatenate(parts)
    keep = ctx.far_from(U, np.concatenate([ctx.U_obs, ctx.U_pend]))
    U = U[keep]
    # drop near-duplicates (clipping can pile perturbations up on the boundary)
    pairs = cKDTree(U).query_pairs(ctx.min_distance, output_type="ndarray")
    if pairs.size:
        drop = np.zeros(U.shape[0], dtype=bool)
        for i, j in pairs:  # keep the lower index of each close pair
            if not drop[i]:
                drop[j] = True
        U = U[~drop]
    for _ in range(20):  # top up with uniform points when min_distance removed too many
        if U.shape[0] >= n_needed:
            break
        extra = rng.random((4 * n_needed, d))
        extra = extra[ctx.far_from(extra, np.concatenate([ctx.U_obs, ctx.U_pend, U]))]
        for row in extra:
            if U.shape[0] >= 2 * n_needed:
                break
            if ctx.far_from(row[None, :], U)[0]:
                U = np.concatenate([U, row[None, :]])
    if U.shape[0] < n_needed:
        raise ValueError(
            f"could not place {n_needed} candidates at least min_distance={ctx.min_distance} apart "
            "and away from the observed and pending points; use a smaller min_distance"
        )
    return U


def polish_ei(
    post: Posterior, starts: np.ndarray, incumbent: float, maxiter: int
) -> list[tuple[float, np.ndarray]]:
    """L-BFGS-B on ``-EI`` inside the unit cube from each start; ``(EI, point)`` per start."""
    out = []
    bounds = [(0.0, 1.0)] * starts.shape[1]

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        ei, grad = post.ei_and_grad(u, incumbent)
        return -ei, -grad

    for u0 in starts:
        res = optimize.minimize(
            fun, u0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter}
        )
        u = np.clip(res.x, 0.0, 1.0)
        out.append((-float(fun(u)[0]), u))
    return out
