"""Weighted k-medoids with fixed medoids (greedy build, then PAM swaps), the batch step of
simulation matching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from labsched.envs._lib.validation import check_int, real_array

__all__ = ["KMedoidsResult", "k_medoids"]


@dataclass(frozen=True)
class KMedoidsResult:
    """Outcome of :func:`k_medoids`.

    Attributes:
        indices: the ``k`` free medoids, as row indices into ``points`` (in order of selection
            by the greedy build, as later replaced by swaps).
        cost: weighted sum of the distances from every point to its nearest medoid (fixed or
            free).
        labels: for every point, its nearest medoid: ``0 .. f - 1`` are the ``f`` fixed medoids
            and ``f + j`` is ``indices[j]``.
        n_swaps: how many swap steps improved the greedy solution.
    """

    indices: np.ndarray
    cost: float
    labels: np.ndarray
    n_swaps: int


def k_medoids(
    points: Any,
    k: int,
    *,
    weights: Any = None,
    fixed: Any = None,
    allowed: Any = None,
    max_swaps: int = 100,
) -> KMedoidsResult:
    """Weighted k-medoids with optional fixed medoids (greedy build, then PAM swaps).

    Chooses ``k`` rows of ``points`` (the free medoids) minimising
    ``sum_i weights_i * min(dist(points_i, nearest free medoid), dist(points_i, nearest fixed))``
    with Euclidean distances.  The fixed medoids are arbitrary coordinates (they need not be
    rows of ``points``) that are always part of the solution and never swapped out.

    The free medoids are first chosen greedily, each time taking the row that lowers the cost
    most (ties go to the lowest index).  Then, as in PAM, the best single swap of a free medoid
    for a non-medoid row is applied while it lowers the cost, at most ``max_swaps`` times; the
    cost change of all ``k x m`` swaps is computed at once from each point's nearest and second
    nearest medoid (Schubert & Rousseeuw's FastPAM1 decomposition), in O(m^2 (k + 1)) per step.

    Args:
        points: ``(m, d)`` array.
        k: number of free medoids, ``1 <= k <= number of allowed rows``.
        weights: ``(m,)`` non-negative weights (default all ones), e.g. multiplicities.
        fixed: ``(f, d)`` fixed medoids, or ``None``.
        allowed: ``(m,)`` boolean mask of rows that may become medoids (default all).
        max_swaps: cap on the number of improving swaps (0 keeps the greedy solution).
    """
    P, w, F, ok = _check_inputs(points, weights, fixed, allowed)
    m = P.shape[0]
    k = check_int("k", k, 1)
    max_swaps = check_int("max_swaps", max_swaps, 0)
    if k > int(ok.sum()):
        raise ValueError(f"k = {k} exceeds the number of rows allowed as medoids ({int(ok.sum())})")

    D = cdist(P, P)
    nf = F.shape[0]
    DF = cdist(P, F) if nf else np.zeros((m, 0))
    cur = DF.min(axis=1) if nf else np.full(m, np.inf)

    chosen, cur = _greedy_build(D, w, cur, ok, k)

    # PAM swaps, best improvement first
    n_swaps = 0
    med = np.array(chosen)
    total = float(w @ cur)
    while n_swaps < max_swaps:
        Dall = np.concatenate([DF, D[:, med]], axis=1)  # (m, nf + k)
        order = np.argsort(Dall, axis=1)
        near = order[:, 0]
        dn = Dall[np.arange(m), near]
        ds = Dall[np.arange(m), order[:, 1]] if Dall.shape[1] > 1 else np.full(m, np.inf)
        gain = np.maximum(dn[:, None] - D, 0.0)  # (m, m): how much a new medoid c helps point i
        A = -(w @ gain)  # cost change for points that keep their medoid
        E = w[:, None] * (np.minimum(D, ds[:, None]) - dn[:, None] + gain)
        onehot = np.zeros((k, m))
        is_free = near >= nf
        onehot[near[is_free] - nf, np.flatnonzero(is_free)] = 1.0
        delta = A[None, :] + onehot @ E  # (k, m): replace free medoid j by row c
        cand = ok.copy()
        cand[med] = False
        delta[:, ~cand] = np.inf
        j, c = np.unravel_index(int(np.argmin(delta)), delta.shape)
        if not delta[j, c] < -1e-12 * max(total, 1e-300):
            break
        med[j] = c
        n_swaps += 1
        total = float(w @ np.minimum(DF.min(axis=1) if nf else np.inf, D[:, med].min(axis=1)))

    Dall = np.concatenate([DF, D[:, med]], axis=1)
    labels = np.argmin(Dall, axis=1)
    cost = float(w @ Dall[np.arange(m), labels])
    return KMedoidsResult(indices=med.copy(), cost=cost, labels=labels, n_swaps=n_swaps)


def _greedy_build(
    D: np.ndarray, w: np.ndarray, cur: np.ndarray, ok: np.ndarray, k: int
) -> tuple[list[int], np.ndarray]:
    """``k`` medoids chosen one at a time, each the allowed row lowering the weighted cost most
    (ties to the lowest index), with ``cur`` the distances to the nearest medoid so far; returns
    the chosen rows and the updated distances."""
    chosen: list[int] = []
    free_mask = ok.copy()
    for _ in range(k):
        cost = w @ np.minimum(cur[:, None], D)
        cost[~free_mask] = np.inf
        c = int(np.argmin(cost))
        chosen.append(c)
        free_mask[c] = False
        cur = np.minimum(cur, D[:, c])
    return chosen, cur


def _check_inputs(
    points: Any, weights: Any, fixed: Any, allowed: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(points, weights, fixed medoids, allowed mask)`` of :func:`k_medoids`."""
    P = real_array("points", points)
    if P.ndim != 2 or P.shape[0] < 1:
        raise ValueError(f"points must have shape (m, d) with m >= 1, got shape {P.shape}")
    m, d = P.shape
    if weights is None:
        w = np.ones(m)
    else:
        w = real_array("weights", weights)
        if w.shape != (m,):
            raise ValueError(f"weights must have shape ({m},), got shape {w.shape}")
        if np.any(w < 0.0):
            raise ValueError("weights must be non-negative")
    if fixed is None:
        F = np.zeros((0, d))
    else:
        F = real_array("fixed", fixed)
        if F.size == 0:
            F = np.zeros((0, d))
        if F.ndim != 2 or F.shape[1] != d:
            raise ValueError(f"fixed must have shape (f, {d}), got shape {F.shape}")
    if allowed is None:
        ok = np.ones(m, dtype=bool)
    else:
        ok = np.asarray(allowed)
        if ok.shape != (m,) or ok.dtype != bool:
            raise ValueError(f"allowed must be a boolean array of shape ({m},)")
        ok = ok.copy()
    return P, w, F, ok
