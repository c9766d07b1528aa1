"""Trainable RL agents of labsched (stable-baselines3 / sb3-contrib).

``train(algo, spec, ...)`` trains MaskablePPO (default, with the env's action masks), PPO, A2C
or DQN on any ``LabSpec``; ``load_agent(path)`` returns a saved agent with a baseline-like
``predict``; ``compare(...)`` runs baselines and saved agents on the same seeds;
``throughput_vs_cartpole()`` prints training speed beside PPO on CartPole-v1.

Observation forms (the hyperparameter keys ``features`` and ``normalize``):

* the flat observation (``flatten=True``, length ``2 l + 4``), the default for ``MlpPolicy``
  (the shipped hyperparameter files add both options below);
* ``normalize: true``: ``VecNormalize`` of observations, its statistics saved with the model;
* ``features: true``: :class:`FeatureWrapper` appends features computed from the observation
  and the spec alone: free labs, time left in mean durations, waves of work left, and the
  probabilities of finishing the budget by ``h`` if all free labs start now / after waiting one
  decision interval (:mod:`labsched.agents.features`).

The reward is CPE divided by ``n (n - 1) / 2`` (``normalize_reward=True``); evaluations report
raw CPE. Needs the ``rl`` extra (stable-baselines3, sb3-contrib, PyYAML).
"""

from __future__ import annotations

from .comparison import CompareRow, compare
from .config import ALGORITHMS, algorithm_info, allowed_keys, load_hyperparams
from .features import FEATURE_NAMES, FeatureWrapper, LabFeatures
from .loading import LoadedAgent, load_agent
from .throughput import throughput_vs_cartpole
from .training import TrainResult, train

__all__ = [
    "ALGORITHMS",
    "FEATURE_NAMES",
    "CompareRow",
    "FeatureWrapper",
    "LabFeatures",
    "LoadedAgent",
    "TrainResult",
    "algorithm_info",
    "allowed_keys",
    "compare",
    "load_agent",
    "load_hyperparams",
    "throughput_vs_cartpole",
    "train",
]
