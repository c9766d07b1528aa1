"""Running agents on the environment: one episode, many episodes, summary statistics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from labsched.envs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.spec import LabSpec

__all__ = ["EpisodeResult", "Predictor", "RunSummary", "run_episode", "run_episodes", "summarize"]


class Predictor(Protocol):
    """Anything with stable-baselines3's ``predict`` (baselines, SB3 models)."""

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        seed: env seed of the episode (common random numbers: same seed, same durations).
        cpe: cumulative prior experiments of the completed experiments.
        completed: experiments completed by the horizon.
        steps: decision points visited.
        end_time: time at which the episode ended.
    """

    seed: int
    cpe: int
    completed: int
    steps: int
    end_time: float


@dataclass(frozen=True)
class RunSummary:
    """Mean and standard error of a set of episodes.

    Attributes:
        n_episodes: number of episodes.
        mean_cpe: mean CPE.
        se_cpe: standard error of the mean CPE.
        completion_rate: share of episodes that completed all ``n`` experiments.
        mean_completed: mean number of completed experiments.
        seconds: wall time of the run.
    """

    n_episodes: int
    mean_cpe: float
    se_cpe: float
    completion_rate: float
    mean_completed: float
    seconds: float


def run_episode(
    agent: Predictor, env: ConcurrentLabsEnv, seed: int, deterministic: bool = True
) -> EpisodeResult:
    """Play one episode of ``env`` with ``agent`` from ``env.reset(seed=seed)``."""
    obs, info = env.reset(seed=seed)
    steps = 0
    start = True
    while True:
        action, _ = agent.predict(obs, episode_start=np.array([start]), deterministic=deterministic)
        start = False
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    return EpisodeResult(seed, int(info["cpe"]), int(info["completed"]), steps, float(info["time"]))


def run_episodes(
    agent: Predictor,
    spec: LabSpec,
    n_episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Play ``n_episodes`` episodes with seeds ``seed, seed + 1, ...``.

    Every agent run with the same ``seed`` meets the same duration draws (the env draws all
    ``n`` durations at reset, in start order): common random numbers across agents.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    env = ConcurrentLabsEnv(spec, **(env_kwargs or {}))
    return [run_episode(agent, env, seed + i) for i in range(n_episodes)]


def summarize(results: list[EpisodeResult], n_experiments: int, seconds: float = math.nan) -> RunSummary:
    """Mean CPE with its standard error, completion rate and mean completed count."""
    cpe = np.array([r.cpe for r in results], dtype=float)
    done = np.array([r.completed for r in results], dtype=float)
    se = float(cpe.std(ddof=1) / math.sqrt(len(cpe))) if len(cpe) > 1 else math.nan
    return RunSummary(
        n_episodes=len(results),
        mean_cpe=float(cpe.mean()),
        se_cpe=se,
        completion_rate=float((done >= n_experiments).mean()),
        mean_completed=float(done.mean()),
        seconds=seconds,
    )


def timed_run(
    agent: Predictor, spec: LabSpec, n_episodes: int, seed: int = 0
) -> tuple[RunSummary, list[EpisodeResult]]:
    """:func:`run_episodes` and :func:`summarize` with the wall time measured."""
    t0 = time.perf_counter()
    results = run_episodes(agent, spec, n_episodes, seed)
    return summarize(results, spec.n_experiments, time.perf_counter() - t0), results
