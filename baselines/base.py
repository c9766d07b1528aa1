"""The agent interface shared by every baseline scheduler.

A baseline sees exactly what an RL agent sees: the environment's observation (the ``Dict`` or
its flat ``Box`` form, single or batched by a ``VecEnv``) and the problem spec. It answers with
:meth:`BaselinePolicy.predict`, whose signature is stable-baselines3's, so
``stable_baselines3.common.evaluation.evaluate_policy`` runs it unchanged.

Per-episode memory (an offline plan, policy switching's previous choice) is kept per
environment index and reset whenever ``episode_start`` says so or the observation is an
initial state (time 0, nothing started).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from labsched.envs._lib.validation import check_int
from labsched.envs.labs.observation import LabState, decode_observation, is_batched
from labsched.envs.labs.spec import LabSpec

__all__ = ["BaselinePolicy", "LabState", "decode_observation"]


class BaselinePolicy(ABC):
    """Base class of the baseline schedulers.

    Subclasses implement :meth:`act` (and :meth:`begin_episode` when they keep per-episode
    memory). The action returned by :meth:`predict` is always valid: it is clipped to
    ``[0, max_valid]``.

    Args:
        spec: the problem (the env's ``lab_spec``).
        seed: seed of the policy's own generator (used by randomised policies and Monte-Carlo
            estimates), for reproducible decisions: an integer >= 0 or None.

    Raises:
        TypeError: for a spec that is not a ``LabSpec`` or a seed that is not an integer.
        ValueError: for a negative seed.
    """

    #: Registry name.
    name: ClassVar[str] = ""

    def __init__(self, spec: LabSpec, *, seed: int | None = None) -> None:
        if not isinstance(spec, LabSpec):
            raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
        self.spec = spec.scheduler_view  # with known_durations=False: the first guess, not the law
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.rng = np.random.default_rng(self.seed)
        self._memory: dict[int, Any] = {}

    # -------------------------------------------------------------- to implement
    def begin_episode(self, state: LabState) -> Any:
        """Per-episode memory for a new episode starting in ``state`` (default: None)."""
        return None

    @abstractmethod
    def act(self, state: LabState, memory: Any) -> int:
        """Number of experiments to start now in ``state``."""

    # -------------------------------------------------------------- SB3 protocol
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Choose actions, with stable-baselines3's signature.

        Args:
            observation: a single or batched (``VecEnv``) observation, ``Dict`` or flat.
            state: recurrent state (unused; returned unchanged).
            episode_start: per-env flags marking the first step of an episode.
            deterministic: unused (randomised baselines draw from their own generator).

        Returns:
            ``(actions, state)``: actions of shape ``()`` for a single observation or
            ``(n_envs,)`` for a batch.
        """
        states = decode_observation(observation, self.spec)
        actions = np.empty(len(states), dtype=np.int64)
        for i, s in enumerate(states):
            fresh = episode_start is not None and bool(np.asarray(episode_start).reshape(-1)[i])
            if fresh or s.is_initial or i not in self._memory:
                self._memory[i] = self.begin_episode(s)
            a = int(self.act(s, self._memory[i]))
            actions[i] = min(max(a, 0), s.max_valid)
        if is_batched(observation):
            return actions, state
        return actions.reshape(()), state

    def reset(self) -> None:
        """Forget all per-episode memory (a new evaluation)."""
        self._memory.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, seed={self.seed!r})"
