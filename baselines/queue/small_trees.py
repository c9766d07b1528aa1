"""Least-squares regression trees for the tiny training sets of the queue protocol (tens of
experiments, about 60 features), grown with whole-array NumPy operations.

A scikit-learn tree costs about 2 ms per fit on these data, almost all of it input and parameter
validation; the boosters fit thousands of trees per protocol split (and the cross-validated
LGBM tens of thousands), so they grow theirs here instead: every node's best split over every
feature and threshold comes from one cumulative sum over the presorted columns
(:class:`SortedColumns`, computed once per design matrix). The split criterion is the
reduction of the squared error (scikit-learn's ``squared_error``), thresholds are midpoints
between the closest distinct values of the node's rows on either side, and ties between
equally good splits go to the lowest threshold position, then the lowest feature index, so a
fit is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SmallTree", "SortedColumns", "fit_tree"]


@dataclass(frozen=True)
class SortedColumns:
    """A design matrix with every column presorted (shared by every tree grown on it).

    Attributes:
        x: ``(n, p)`` design rows.
        order: ``(p, n)`` row order of each column, ascending (one column per row of the
            array, so the cumulative sums run along contiguous memory).
        gap: ``(p, n - 1)`` whether sorted positions ``k`` and ``k + 1`` of a column differ (a
            split may go between them).
        threshold: ``(p, n - 1)`` midpoints between sorted neighbours.
    """

    x: np.ndarray
    order: np.ndarray
    gap: np.ndarray
    threshold: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> SortedColumns:
        """Presort ``x`` (2-D, at least two rows)."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"x must be 2-D with at least two rows, got shape {x.shape}")
        order = np.ascontiguousarray(np.argsort(x, axis=0, kind="stable").T)
        xs = np.take_along_axis(x.T, order, axis=1)
        return cls(x, order, xs[:, :-1] < xs[:, 1:], 0.5 * (xs[:, :-1] + xs[:, 1:]))


@dataclass(frozen=True)
class SmallTree:
    """A fitted binary tree: node ``i`` is a leaf when ``feature[i] < 0``, otherwise rows with
    ``x[feature[i]] <= threshold[i]`` go to ``left[i]`` and the others to ``right[i]``.

    Attributes:
        feature, threshold, left, right: the node arrays (node 0 is the root).
        depth: the tree's depth (number of splits on the longest path).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    depth: int

    @property
    def n_nodes(self) -> int:
        """Number of nodes (leaves included)."""
        return int(self.feature.size)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The leaf (node index) of every row of ``x``."""
        x = np.asarray(x, dtype=float)
        node = np.zeros(x.shape[0], dtype=np.int64)
        rows = np.arange(x.shape[0])
        for _ in range(self.depth):
            f = self.feature[node]
            inner = f >= 0
            go_left = x[rows, np.where(inner, f, 0)] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return node


def _best_split(
    cols: SortedColumns, member: np.ndarray, g: np.ndarray, min_leaf: int
) -> tuple[int, float] | None:
    """The best ``(feature, threshold)`` for the rows ``member`` and targets ``g``, or None."""
    n_cum = np.cumsum(member[cols.order], axis=1)
    s_cum = np.cumsum(np.where(member, g, 0.0)[cols.order], axis=1)
    n_left, s_left = n_cum[:, :-1], s_cum[:, :-1]
    n_all, s_all = n_cum[0, -1], s_cum[0, -1]
    n_right, s_right = n_all - n_left, s_all - s_left
    ok = cols.gap & (n_left >= min_leaf) & (n_right >= min_leaf)
    if not ok.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(ok, s_left**2 / n_left + s_right**2 / n_right, -np.inf)
    k = int(np.argmax(gain.T))  # first maximum: lowest position, then lowest feature
    pos, feat = divmod(k, gain.shape[0])
    if gain[feat, pos] - s_all**2 / n_all <= 1e-12:
        return None
    # the midpoint between the closest members on either side (as scikit-learn), so rows
    # outside ``member`` fall where they would in a tree grown on the members alone
    order = cols.order[feat]
    inside = member[order]
    low = cols.x[order[: pos + 1][inside[: pos + 1]][-1], feat]
    high = cols.x[order[pos + 1 :][inside[pos + 1 :]][0], feat]
    cut = 0.5 * (low + high)
    return feat, float(cut if cut < high else low)  # neighbouring floats: the midpoint rounds up


def fit_tree(
    cols: SortedColumns, g: np.ndarray, rows: np.ndarray, *, max_depth: int, min_leaf: int = 1
) -> SmallTree:
    """Grow a least-squares regression tree of ``g`` on the rows ``rows`` of ``cols.x``.

    Args:
        cols: the presorted design matrix.
        g: ``(n,)`` targets (only the entries of ``rows`` are used).
        rows: ``(n,)`` boolean mask of the rows the tree is grown on (e.g. a subsample).
        max_depth: maximal depth (>= 1).
        min_leaf: fewest rows of ``rows`` in a leaf (>= 1).

    Returns:
        The fitted :class:`SmallTree`.
    """
    g = np.asarray(g, dtype=float)
    feature, threshold, left, right = [-1], [0.0], [-1], [-1]
    frontier = [(0, np.asarray(rows, dtype=bool))]
    depth = 0
    for level in range(max_depth):
        nxt = []
        for node, member in frontier:
            if int(member.sum()) < 2 * min_leaf:
                continue
            split = _best_split(cols, member, g, min_leaf)
            if split is None:
                continue
            f, t = split
            goes_left = cols.x[:, f] <= t
            feature[node], threshold[node] = f, t
            for child_rows, side in ((member & goes_left, left), (member & ~goes_left, right)):
                side[node] = len(feature)
                feature.append(-1)
                threshold.append(0.0)
                left.append(-1)
                right.append(-1)
                nxt.append((side[node], child_rows))
            depth = level + 1
        frontier = nxt
    return SmallTree(
        np.asarray(feature, dtype=np.int64),
        np.asarray(threshold, dtype=float),
        np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64),
        depth,
    )
