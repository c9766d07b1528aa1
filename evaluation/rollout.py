"""Running agents on the environment: one episode, many episodes, summary statistics.

The episode loop itself is :func:`labsched.envs._lib.rollout.play_episode`; the functions here
are the concurrent-labs views of it, defined with the runner of the agents layer
(:mod:`labsched.agents.runner`) and re-exported under their historical names.
"""

from __future__ import annotations

import time

from labsched.agents.runner import (
    EpisodeResult,
    Predictor,
    RunSummary,
    run_episode,
    run_episodes,
    summarize,
)
from labsched.envs._lib.rollout import Episode, play_episode
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "Episode",
    "EpisodeResult",
    "Predictor",
    "RunSummary",
    "play_episode",
    "run_episode",
    "run_episodes",
    "summarize",
    "timed_run",
]


def timed_run(
    agent: Predictor, spec: LabSpec, n_episodes: int, seed: int = 0
) -> tuple[RunSummary, list[EpisodeResult]]:
    """:func:`run_episodes` and :func:`summarize` with the wall time measured."""
    t0 = time.perf_counter()
    results = run_episodes(agent, spec, n_episodes, seed)
    return summarize(results, spec.n_experiments, time.perf_counter() - t0), results
