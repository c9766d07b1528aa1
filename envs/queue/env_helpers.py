"""Plain helpers of :class:`~labsched.envs.queue.experiment_queue.ExperimentQueueEnv` kept out of
its module: action and episode-order validation, the best-schedule bound and the ``ansi``
rendering."""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.envs._lib.validation import check_int

__all__ = ["as_action", "checked_order", "most_successes", "render_text"]


def as_action(action: Any, n: int) -> int:
    """Validate an action (an integer, or a one-element integer array as SB3 passes it)."""
    if isinstance(action, np.ndarray) and action.size == 1 and np.issubdtype(action.dtype, np.integer):
        action = action.reshape(()).item()
    a = check_int("action", action)  # TypeError for anything but an integer
    if not 0 <= a < n:
        raise ValueError(f"action must be in [0, {n}), got {a}")
    return a


def checked_order(forced: Any, n: int) -> np.ndarray:
    """``reset(options={"order": ...})``: distinct experiment indices in ``[0, n)`` (int64)."""
    order = np.asarray(forced)
    if (
        order.ndim != 1
        or order.size == 0
        or not np.issubdtype(order.dtype, np.integer)
        or order.min() < 0
        or order.max() >= n
        or np.unique(order).size != order.size
    ):
        raise ValueError(f"options['order'] must be distinct experiment indices in [0, {n}), got {forced!r}")
    return order.astype(np.int64)


def most_successes(costs: np.ndarray, success: np.ndarray, budget: float) -> int:
    """The largest number of successful experiments whose costs fit ``budget`` together: the
    cheapest successes first (exchanging any chosen success for a cheaper unchosen one keeps
    the set feasible, so the cheapest ``m`` fit whenever any ``m`` do)."""
    c = np.sort(np.asarray(costs, dtype=float)[np.asarray(success, dtype=bool)])
    return int(np.searchsorted(np.cumsum(c), budget, side="right"))


def render_text(env: Any) -> str:
    """The ``ansi`` rendering of an ``ExperimentQueueEnv``: budget, queue slots, last actions."""
    t = env.budget
    lines = [
        f"budget {env._remaining}/{t} ({env._remaining / t:.0%})  Q(S)={env._q}  "
        f"deployed={env._n_deployed} explored={env._n_explored} backlog={len(env._backlog)}"
    ]
    mask = env.action_masks()
    for slot, e in enumerate(env._slots):
        if e < 0:
            lines.append(f"  [{slot:2d}] --")
            continue
        cost = int(env._costs[e])
        flag = "fits" if mask[slot] else "too big"
        extra = ""
        if env._explore and env._explored[slot]:
            extra = f"  explored: {env._explore_stat[slot]:+.4f}"
        lines.append(f"  [{slot:2d}] exp {int(e):3d}  cost {cost:>11,d} ({cost / t:6.2f} T, {flag}){extra}")
    for r in env._records[-3:]:
        lines.append(
            f"  step {r.step}: {r.kind} exp {r.experiment} (slot {r.slot}) cost {r.cost:,d}"
            + (f" -> {'success' if r.success else 'no success'}" if r.kind == "deploy" else "")
        )
    return "\n".join(lines)
