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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labsched.envs.spec import LabSpec

__all__ = ["BaselinePolicy", "LabState", "decode_observation"]

_FLAT_TAIL = 4  # completed, remaining_budget, remaining_time, started (plus 2 l lab values)


@dataclass(frozen=True)
class LabState:
    """The scheduling state decoded from one observation.

    Attributes:
        time: current time ``t``.
        completed: experiments completed so far.
        started: experiments started so far.
        busy: (l,) bool, lab running an experiment.
        elapsed: (l,) elapsed running time of each lab's experiment (0 where idle), in time units.
        spec: the problem spec.
    """

    time: float
    completed: int
    started: int
    busy: np.ndarray
    elapsed: np.ndarray
    spec: LabSpec

    @property
    def running(self) -> int:
        """Number of experiments running."""
        return int(self.busy.sum())

    @property
    def free_labs(self) -> int:
        """Number of idle labs."""
        return self.spec.n_labs - self.running

    @property
    def remaining(self) -> int:
        """Experiments not yet started (remaining budget)."""
        return self.spec.n_experiments - self.started

    @property
    def remaining_time(self) -> float:
        """Time left until the horizon."""
        return max(self.spec.horizon - self.time, 0.0)

    @property
    def max_valid(self) -> int:
        """Largest valid action: ``min(free labs, remaining budget)``."""
        return min(self.free_labs, self.remaining)

    @property
    def running_elapsed(self) -> np.ndarray:
        """Elapsed times of the running experiments, in lab order."""
        return self.elapsed[self.busy]

    @property
    def is_initial(self) -> bool:
        """True at the start of an episode (time 0, nothing started)."""
        return self.started == 0 and self.time <= 1e-9 * self.spec.horizon


def _counts(x: np.ndarray, n: int) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * n).astype(int)


def decode_observation(observation: Any, spec: LabSpec) -> list[LabState]:
    """Decode an observation, single or batched, ``Dict`` or flat, into :class:`LabState` s.

    Args:
        observation: what the env (or a ``VecEnv``) returned.
        spec: the env's ``lab_spec``.

    Returns:
        One state per environment (a list of length 1 for an unbatched observation).
    """
    n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
    mean = float(spec.duration.mean)
    if isinstance(observation, dict):
        busy = np.asarray(observation["busy"]).reshape(-1, nl).astype(bool)
        elapsed = np.asarray(observation["elapsed"], dtype=float).reshape(-1, nl)
        completed = _counts(observation["completed"], n).reshape(-1)
        started = _counts(observation["started"], n).reshape(-1)
        rem_t = np.asarray(observation["remaining_time"], dtype=float).reshape(-1)
    else:
        flat = np.asarray(observation, dtype=float)
        width = 2 * nl + _FLAT_TAIL
        if flat.shape[-1] != width:
            raise ValueError(
                f"flat observation must have length 2 * n_labs + 4 = {width}, got shape {flat.shape}"
            )
        flat = flat.reshape(-1, width)
        busy = flat[:, :nl] > 0.5
        completed = _counts(flat[:, nl], n)
        elapsed = flat[:, nl + 1 : 2 * nl + 1]
        rem_t = flat[:, 2 * nl + 2]
        started = _counts(flat[:, 2 * nl + 3], n)
    times = np.clip(h * (1.0 - rem_t), 0.0, h)
    return [
        LabState(
            time=float(times[i]),
            completed=int(completed[i]),
            started=int(started[i]),
            busy=busy[i],
            elapsed=np.where(busy[i], elapsed[i] * mean, 0.0),
            spec=spec,
        )
        for i in range(busy.shape[0])
    ]


def _is_batched(observation: Any, spec: LabSpec) -> bool:
    if isinstance(observation, dict):
        return np.asarray(observation["busy"]).ndim == 2
    return np.asarray(observation).ndim == 2


class BaselinePolicy(ABC):
    """Base class of the baseline schedulers.

    Subclasses implement :meth:`act` (and :meth:`begin_episode` when they keep per-episode
    memory). The action returned by :meth:`predict` is always valid: it is clipped to
    ``[0, max_valid]``.

    Args:
        spec: the problem (the env's ``lab_spec``).
        seed: seed of the policy's own generator (used by randomised policies and Monte-Carlo
            estimates), for reproducible decisions.
    """

    #: Registry name.
    name: ClassVar[str] = ""

    def __init__(self, spec: LabSpec, *, seed: int | None = None) -> None:
        if not isinstance(spec, LabSpec):
            raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
        self.spec = spec
        self.seed = seed
        self.rng = np.random.default_rng(seed)
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
        if _is_batched(observation, self.spec):
            return actions, state
        return actions.reshape(()), state

    def reset(self) -> None:
        """Forget all per-episode memory (a new evaluation)."""
        self._memory.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, seed={self.seed!r})"
