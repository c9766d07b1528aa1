"""An RL agent for the experiment queue: sb3-contrib's MaskablePPO trained on the training
experiments of one split of the synthetic dataset (the paper's Table 4 protocol as environment
settings). :mod:`labsched.evaluation.queue` compares it with the greedy schedulers.

Needs the ``rl`` extra (stable-baselines3, sb3-contrib, torch) and the ``queue`` extra
(scikit-learn, for the splits); both are imported when an agent is trained.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from labsched.envs._lib.threads import torch_threads
from labsched.envs.queue.dataset import ExperimentDataset
from labsched.envs.queue.experiment_queue import ExperimentQueueEnv
from labsched.envs.queue.generation import cached_dataset
from labsched.envs.queue.splits import stratified_splits
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = [
    "AGENT_ENV_KWARGS",
    "DEFAULT_PPO_PARAMS",
    "QueueAgentResult",
    "SplitEpisodes",
    "WallClockStop",
    "split_env",
    "train_queue_agent",
]

#: The paper's Table 4 protocol as environment settings (T = 3 * 10^5, 10^5 per deployment).
AGENT_ENV_KWARGS = dict(deployment_interactions=100_000, budget=300_000, max_queue=8, outcome="bootstrap")

#: MaskablePPO's settings unless ``hyperparams`` overrides them.
DEFAULT_PPO_PARAMS: dict[str, Any] = dict(
    n_steps=256,
    batch_size=256,
    n_epochs=10,
    gamma=1.0,
    gae_lambda=0.95,
    learning_rate=3e-4,
    ent_coef=0.01,
    policy_kwargs=dict(net_arch=[128, 128]),
)


class SplitEpisodes(gym.Wrapper):
    """Episodes of an ``ExperimentQueueEnv`` that queue only the experiments ``indices``.

    Each reset queues a random permutation of ``indices`` (drawn from the reset seed) through
    ``reset(options={"order": ...})``; ``action_masks`` forwards the env's (for MaskablePPO).
    """

    def __init__(self, env: ExperimentQueueEnv, indices: np.ndarray) -> None:
        super().__init__(env)
        self._idx = np.asarray(indices, dtype=np.int64)
        self._order_rng = np.random.default_rng()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._order_rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        opts = dict(options or {})
        opts.setdefault("order", self._order_rng.permutation(self._idx))
        return self.env.reset(seed=seed, options=opts)

    def action_masks(self) -> np.ndarray:
        """The valid actions of the wrapped env."""
        return self.env.unwrapped.action_masks()


def split_env(dataset: ExperimentDataset, indices: np.ndarray, **env_kwargs: Any) -> SplitEpisodes:
    """An ``ExperimentQueueEnv`` on ``dataset`` whose episodes use only ``indices``.

    Feature normalisation uses the whole pool's features (pre-experiment features only, no
    outcome), so train and test episodes share one scale.
    """
    return SplitEpisodes(ExperimentQueueEnv(dataset=dataset, **env_kwargs), indices)


class WallClockStop:
    """A stable-baselines3 step callback (the functional form): stop after ``minutes`` of wall
    time from its creation, printing progress to stderr every 20 s when ``progress``."""

    def __init__(self, minutes: float, model: Any, *, progress: bool = True) -> None:
        self.seconds = 60.0 * float(minutes)
        self.model = model
        self.progress = progress
        self.t0 = time.perf_counter()
        self.last = self.t0

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        now = time.perf_counter()
        if self.progress and now - self.last > 20:
            self.last = now
            steps = self.model.num_timesteps
            print(f"[agent] {steps} steps, {now - self.t0:.0f} s", file=sys.stderr, flush=True)
        return now - self.t0 < self.seconds


@dataclass
class QueueAgentResult:
    """A queue agent trained by :func:`train_queue_agent`.

    Attributes:
        model: the trained MaskablePPO model.
        train_idx, test_idx: the split's training and test experiments (dataset indices).
        timesteps: environment steps trained.
        seconds: wall time of training.
        dataset: the experiment dataset.
        env_kwargs: the ``ExperimentQueueEnv`` settings of its episodes.
        model_path: where the model was saved (None without ``out``).
    """

    model: Any
    train_idx: np.ndarray
    test_idx: np.ndarray
    timesteps: int
    seconds: float
    dataset: ExperimentDataset
    env_kwargs: dict[str, Any]
    model_path: Path | None


def train_queue_agent(
    *,
    experiment_type: str = "interleaving",
    split: int = 0,
    seed: int = 0,
    dataset_seed: int = 0,
    minutes: float = 3.0,
    total_timesteps: int = 300_000,
    n_envs: int = 4,
    env_kwargs: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> QueueAgentResult:
    """Train sb3-contrib's MaskablePPO on the queue environment's training experiments.

    The environment is ``ExperimentQueueEnv`` with the flat observation and
    :data:`AGENT_ENV_KWARGS` (the paper's Table 4 protocol), its episodes restricted to the
    training part of split ``split`` of :func:`~labsched.envs.queue.splits.stratified_splits`
    (the evaluation protocol's splits for ``seed``); training stops at ``total_timesteps`` or
    after ``minutes`` of wall time, on one torch thread.

    Args:
        experiment_type: ``"interleaving"`` or ``"ab"`` (the dataset ``cached_dataset(
            QueueWorldSpec(experiment_type=...), dataset_seed)``).
        split, seed: which split of the protocol's splits (10% test) to train on.
        dataset_seed: seed of the generated dataset.
        minutes, total_timesteps: training budget (whichever ends first).
        n_envs: parallel environments of the ``DummyVecEnv``.
        env_kwargs: environment settings over :data:`AGENT_ENV_KWARGS`.
        hyperparams: MaskablePPO settings over :data:`DEFAULT_PPO_PARAMS`.
        out: folder to save the model in (``maskable_ppo_<type>_split<k>.zip``).
        progress: progress lines on stderr.

    Returns:
        A :class:`QueueAgentResult`.
    """
    from sb3_contrib import MaskablePPO  # optional heavy dependency (the rl extra)
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch_threads(1)
    ds = cached_dataset(QueueWorldSpec(experiment_type=experiment_type), dataset_seed)
    tr, te = stratified_splits(ds.success, split + 1, 0.1, seed)[split]
    kw = {**AGENT_ENV_KWARGS, **(env_kwargs or {}), "flatten": True}
    venv = DummyVecEnv([lambda: split_env(ds, tr, **kw) for _ in range(n_envs)])
    venv.seed(seed)
    params = {**copy.deepcopy(DEFAULT_PPO_PARAMS), **(hyperparams or {})}
    model = MaskablePPO("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", **params)
    stop = WallClockStop(minutes, model, progress=progress)
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=stop)
    secs = time.perf_counter() - t0
    model_path = None
    if out is not None:
        model_path = Path(out) / f"maskable_ppo_{experiment_type}_split{split}.zip"
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
    return QueueAgentResult(
        model=model,
        train_idx=tr,
        test_idx=te,
        timesteps=int(model.num_timesteps),
        seconds=secs,
        dataset=ds,
        env_kwargs=kw,
        model_path=model_path,
    )
