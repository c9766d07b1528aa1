"""Metrics of one schedule of the experiment queue: the paper's AUC (Equation 4), realised
Q(S) (Equation 5) and expected Q(S) (Equation 2), and Fact 1's greedy order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import permutations

import numpy as np

__all__ = ["auc_rows", "brute_force_best_order", "expected_q", "greedy_order", "schedule_auc", "schedule_q"]


def schedule_auc(order: Sequence[int], statistic: Sequence[float], success: Sequence[bool]) -> float:
    """Equation 4: the share of evaluation pairs the schedule puts in the right order.

    The evaluation pairs are the unordered pairs of experiments of which at least one is
    successful and whose outcomes ``statistic`` differ; a pair is in the right order when the
    experiment with the larger outcome is scheduled first.

    Args:
        order: the schedule, a permutation of ``range(n)`` (best first).
        statistic: ``(n,)`` outcomes ``sigma(e)``.
        success: ``(n,)`` success labels.

    Returns:
        The AUC in [0, 1], or NaN when there is no evaluation pair.
    """
    order = np.asarray(order, dtype=np.int64)
    return float(auc_rows(order[None, :], np.asarray(statistic, float), np.asarray(success, bool))[0])


def auc_rows(orders: np.ndarray, statistic: np.ndarray, success: np.ndarray) -> np.ndarray:
    """:func:`schedule_auc` of every row of ``orders`` ``(R, n)``."""
    n = statistic.size
    if orders.shape[-1] != n or not np.array_equal(
        np.sort(orders, axis=1), np.broadcast_to(np.arange(n), orders.shape)
    ):
        raise ValueError(f"each order must be a permutation of range({n})")
    a, b = np.triu_indices(n, 1)
    keep = (success[a] | success[b]) & (statistic[a] != statistic[b])
    a, b = a[keep], b[keep]
    if a.size == 0:
        return np.full(orders.shape[0], np.nan)
    pos = np.empty_like(orders)
    np.put_along_axis(pos, orders, np.arange(n)[None, :].repeat(orders.shape[0], 0), axis=1)
    right = (pos[:, a] - pos[:, b]) * np.sign(statistic[a] - statistic[b])[None, :] < 0
    return right.mean(axis=1)


def schedule_q(
    order: Sequence[int], success: Sequence[bool], costs: Sequence[float] | float, budget: float
) -> int:
    """Equation 5: successful experiments among those whose cumulative cost fits ``budget``.

    Experiment ``order[i]`` counts when ``sum(costs[order[:i + 1]]) <= budget`` (so the
    schedule stops at the first experiment that does not fit).
    """
    order = np.asarray(order, dtype=np.int64)
    succ = np.asarray(success, dtype=bool)
    c = np.broadcast_to(np.asarray(costs, dtype=float), succ.shape)
    fits = np.cumsum(c[order]) <= budget
    return int(np.sum(succ[order] & fits))


def expected_q(
    order: Sequence[int], probability: Sequence[float], costs: Sequence[float] | float, budget: float
) -> float:
    """Equation 2: the expected number of successes of a schedule, ``sum P(S(i)) [fits]``."""
    order = np.asarray(order, dtype=np.int64)
    p = np.asarray(probability, dtype=float)
    c = np.broadcast_to(np.asarray(costs, dtype=float), p.shape)
    fits = np.cumsum(c[order]) <= budget
    return float(np.sum(p[order] * fits))


def greedy_order(probability: Sequence[float]) -> np.ndarray:
    """Fact 1's greedy schedule: decreasing probability of success (stable for ties)."""
    return np.argsort(-np.asarray(probability, dtype=float), kind="stable")


def brute_force_best_order(
    probability: Sequence[float], costs: Sequence[float] | float, budget: float
) -> tuple[np.ndarray, float]:
    """The schedule maximising :func:`expected_q` over all ``n!`` orders (small ``n`` only)."""
    p = np.asarray(probability, dtype=float)
    if p.size > 9:
        raise ValueError(f"brute force over {p.size}! orders is too slow; use at most 9 experiments")
    best, best_v = None, -math.inf
    for perm in permutations(range(p.size)):
        v = expected_q(perm, p, costs, budget)
        if v > best_v + 1e-12:
            best, best_v = np.array(perm), v
    return best, best_v
