"""Baselines in environments with ``action="labs"`` (``MultiBinary(l)``: start on exactly these labs).

Every baseline decides *how many* experiments to start. :class:`LabChoicePolicy` turns that count
``k`` into the ``MultiBinary`` action that starts on the ``k`` free labs fastest in expectation
(:attr:`~labsched.envs.labs.spec.LabSpec.lab_order`): where the count action ``k`` starts them, so
a baseline plays the same episodes, draw for draw, in either action mode.
``labsched.baselines.make(name, spec, action="labs")`` builds one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.baselines.base import BaselinePolicy
from labsched.envs.labs.observation import decode_observation, is_batched

__all__ = ["LabChoicePolicy", "fastest_free_labs"]


def fastest_free_labs(busy: np.ndarray, k: int, order: tuple[int, ...]) -> np.ndarray:
    """``(l,)`` int8: 1 on the ``k`` free labs (``busy`` False) first in ``order``."""
    out = np.zeros(len(order), dtype=np.int8)
    if k <= 0:
        return out
    free = [lab for lab in order if not busy[lab]][:k]
    out[free] = 1
    return out


class LabChoicePolicy:
    """A count baseline acting in an ``action="labs"`` environment (see the module docstring).

    ``predict`` has stable-baselines3's signature and returns ``(l,)`` (or ``(n_envs, l)``)
    ``int8`` zeros and ones; other attributes are the wrapped baseline's.

    Args:
        policy: the baseline deciding the number of starts.

    Raises:
        TypeError: for a policy that is not a :class:`~labsched.baselines.base.BaselinePolicy`.
    """

    def __init__(self, policy: BaselinePolicy) -> None:
        if not isinstance(policy, BaselinePolicy):
            raise TypeError(f"policy must be a labsched BaselinePolicy, got {type(policy).__name__}")
        self.policy = policy
        self.spec = policy.spec
        self._order = policy.spec.lab_order

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """The wrapped baseline's counts as ``MultiBinary`` choices of the fastest free labs."""
        counts, state = self.policy.predict(observation, state, episode_start, deterministic)
        states = decode_observation(observation, self.spec)
        k = np.asarray(counts).reshape(-1)
        choice = np.stack([fastest_free_labs(s.busy, int(k[i]), self._order) for i, s in enumerate(states)])
        return (choice if is_batched(observation) else choice[0]), state

    def reset(self) -> None:
        """Forget the wrapped baseline's per-episode memory."""
        self.policy.reset()

    def __getattr__(self, name: str) -> Any:
        if name == "policy":  # not yet set (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.policy, name)

    def __repr__(self) -> str:
        return f"LabChoicePolicy({self.policy!r})"
