"""Batched evaluation of saved agents on the native vector environment.

:func:`run_episodes_batched` plays episodes ``seed, seed + 1, ..., seed + E - 1`` like
:func:`labsched.agents.runner.run_episodes`, but on
:class:`~labsched.envs.labs.vector_env.ConcurrentLabsVectorEnv` in chunks of at most ``batch``
sub-environments, with one ``predict`` call per batch step for the whole chunk. Sub-environment
``i`` of a chunk reset with seed ``s`` follows exactly the single environment's episode after
``reset(seed=s + i)`` (the vector env's tested contract), and each sub-environment plays only its
first episode: once it ends, its outcome is recorded, it leaves the batch given to ``predict``,
and whatever its autoreset does afterwards is ignored. For a policy whose action for an
observation does not depend on the other rows of the batch (a saved agent: a feed-forward
network, row-wise features and masks) the results are those of ``run_episodes``, episode for
episode; the speed comes from the network, the features and the engine working on arrays.

Only CPE mode is batched (:func:`vector_env_supports`): regret and information modes run a
Gaussian process per episode and stay on the single-env path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from labsched.agents.episode_result import EpisodeResult
from labsched.envs._lib.rollout import Predictor
from labsched.envs._lib.validation import check_bool, check_int
from labsched.envs.labs.spec import LabSpec
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

__all__ = ["DEFAULT_BATCH", "VECTOR_ENV_OPTIONS", "run_episodes_batched", "vector_env_supports"]

#: Sub-environments per chunk by default (memory stays a few MB per chunk).
DEFAULT_BATCH = 1024
#: Single-env options the native vector env takes (besides ``reward="cpe"`` and spec fields).
VECTOR_ENV_OPTIONS = ("decide_on_completion", "invalid_action", "normalize_reward", "flatten")


def vector_env_supports(env_kwargs: Mapping[str, Any] | None) -> bool:
    """Whether :func:`run_episodes_batched` can play episodes with these single-env options.

    True in CPE mode (no ``objective``, ``reward`` absent or ``"cpe"``) when every option is one
    of :data:`VECTOR_ENV_OPTIONS` or a ``LabSpec`` field (an override of the spec).
    """
    kwargs = dict(env_kwargs or {})
    if kwargs.pop("objective", None) is not None or kwargs.pop("reward", "cpe") != "cpe":
        return False
    allowed = set(VECTOR_ENV_OPTIONS) | {f.name for f in dataclasses.fields(LabSpec)}
    return set(kwargs) <= allowed


def run_episodes_batched(
    agent: Predictor,
    spec: LabSpec,
    n_episodes: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    deterministic: bool = True,
) -> list[EpisodeResult]:
    """Play ``n_episodes`` episodes with seeds ``seed, seed + 1, ...`` on the native vector env.

    Args:
        agent: a memoryless policy with stable-baselines3's ``predict`` that takes a batch of
            observations (a :class:`~labsched.agents.loading.LoadedAgent`, a
            :class:`~labsched.agents.constrained.FeasibilityMaskedAgent`, a baseline); its
            recurrent state is not carried between steps.
        spec: the problem.
        n_episodes: episodes to play (>= 1).
        seed: env seed of the first episode (>= 0).
        env_kwargs: the single env's options; only those of :func:`vector_env_supports`.
        batch: sub-environments per chunk (>= 1).
        deterministic: passed to ``predict``.

    Returns:
        One :class:`~labsched.agents.episode_result.EpisodeResult` per episode, in seed order, as
        :func:`labsched.agents.runner.run_episodes` returns them (``regret`` NaN).

    Raises:
        ValueError: ``n_episodes``, ``seed`` or ``batch`` out of range, or options the vector env
            does not take (regret mode).
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    seed = check_int("seed", seed, 0)
    batch = check_int("batch", batch, 1)
    check_bool("deterministic", deterministic)
    if not vector_env_supports(env_kwargs):
        raise ValueError(
            f"env_kwargs {dict(env_kwargs or {})!r} are not supported by the vector env: only CPE mode "
            f"with options {list(VECTOR_ENV_OPTIONS)} or LabSpec fields (use run_episodes)"
        )
    out: list[EpisodeResult] = []
    env: ConcurrentLabsVectorEnv | None = None
    for first in range(0, int(n_episodes), batch):
        size = min(batch, int(n_episodes) - first)
        if env is None or env.num_envs != size:
            env = ConcurrentLabsVectorEnv(size, spec, episode_log=False, **dict(env_kwargs or {}))
        out.extend(_play_chunk(agent, env, seed + first, deterministic))
    return out


def _play_chunk(
    agent: Predictor, env: ConcurrentLabsVectorEnv, seed: int, deterministic: bool
) -> list[EpisodeResult]:
    """The first episode of every sub-environment of ``env`` after ``reset(seed=seed)``."""
    n = env.num_envs
    obs, _ = env.reset(seed=seed)
    playing = np.ones(n, dtype=bool)
    first_step = np.ones(n, dtype=bool)
    steps = np.zeros(n, dtype=np.int64)
    cpe = np.zeros(n, dtype=np.int64)
    completed = np.zeros(n, dtype=np.int64)
    end_time = np.zeros(n, dtype=float)
    actions = np.zeros(n, dtype=np.int64)
    while playing.any():
        rows = np.flatnonzero(playing)
        view = obs if rows.size == n else _take_rows(obs, rows)
        start = first_step[rows]
        chosen, _ = agent.predict(view, state=None, episode_start=start, deterministic=deterministic)
        actions[:] = 0  # ended sub-environments: any valid action (their next step is ignored)
        actions[rows] = np.asarray(chosen, dtype=np.int64).reshape(-1)
        obs, _, terminated, truncated, info = env.step(actions)
        first_step[:] = False
        steps[rows] += 1
        ended = (terminated | truncated) & playing
        if ended.any():
            cpe[ended] = info["cpe"][ended]
            completed[ended] = info["completed"][ended]
            end_time[ended] = info["time"][ended]
            playing &= ~ended
    return [
        EpisodeResult(seed + i, int(cpe[i]), int(completed[i]), int(steps[i]), float(end_time[i]))
        for i in range(n)
    ]


def _take_rows(obs: Any, rows: np.ndarray) -> Any:
    """The rows ``rows`` of a batched ``Dict`` or flat observation."""
    if isinstance(obs, dict):
        return {k: v[rows] for k, v in obs.items()}
    return obs[rows]
