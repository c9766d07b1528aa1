"""The one episode loop of labsched: any policy with stable-baselines3's ``predict`` on any
Gymnasium environment. Evaluation, comparisons, sweeps and benchmarks all call it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["Episode", "Predictor", "play_episode"]


class Predictor(Protocol):
    """Anything with stable-baselines3's ``predict`` (baselines, loaded agents, SB3 models)."""

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class Episode:
    """What one episode produced.

    Attributes:
        seed: the seed given to ``env.reset``.
        total_reward: sum of the rewards.
        steps: number of ``env.step`` calls.
        info: the info dict of the last step.
    """

    seed: int | None
    total_reward: float
    steps: int
    info: dict[str, Any] = field(repr=False)


def play_episode(
    policy: Predictor,
    env: Any,
    seed: int | None = None,
    *,
    deterministic: bool = True,
    action_masks: bool = False,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> Episode:
    """Play one episode of ``env`` with ``policy`` from ``env.reset(seed=seed, options=options)``.

    Args:
        policy: anything with ``predict(obs, state, episode_start, deterministic)``; a recurrent
            policy's state is carried between steps.
        env: a Gymnasium environment.
        seed: reset seed.
        deterministic: passed to ``predict``.
        action_masks: pass ``action_masks=env.action_masks()`` to ``predict`` (sb3-contrib's
            maskable models).
        options: reset options.
        max_steps: stop after this many steps (``None``: run until terminated or truncated).

    Returns:
        An :class:`Episode`.
    """
    obs, info = env.reset(seed=seed, options=options)
    state = None
    start = np.array([True])
    total, steps = 0.0, 0
    while max_steps is None or steps < max_steps:
        if action_masks:
            action, state = policy.predict(
                obs,
                state=state,
                episode_start=start,
                deterministic=deterministic,
                action_masks=env.action_masks(),
            )
        else:
            action, state = policy.predict(obs, state=state, episode_start=start, deterministic=deterministic)
        start = np.array([False])
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            break
    return Episode(seed, total, steps, info)
