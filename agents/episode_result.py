"""The outcome of one concurrent-labs episode, shared by the single-env runner
(:mod:`labsched.agents.runner`) and the batched one (:mod:`labsched.agents.vector_rollout`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from labsched.envs._lib.rollout import Episode

__all__ = ["EpisodeResult", "episode_result"]


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        seed: env seed of the episode (common random numbers: same seed, same durations).
        cpe: cumulative prior experiments of the completed experiments.
        completed: experiments completed by the horizon (-1: unknown, the clairvoyant bound).
        steps: decision points visited.
        end_time: time at which the episode ended.
        regret: the regret of the Bayesian optimisation (regret mode; NaN otherwise).
    """

    seed: int
    cpe: int
    completed: int
    steps: int
    end_time: float
    regret: float = math.nan


def episode_result(episode: Episode) -> EpisodeResult:
    """The concurrent-labs outcome of a played episode (from its last ``info``)."""
    info = episode.info
    return EpisodeResult(
        int(episode.seed),
        int(info["cpe"]),
        int(info["completed"]),
        episode.steps,
        float(info["time"]),
        float(info.get("regret", math.nan)),
    )
