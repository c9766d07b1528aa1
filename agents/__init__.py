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

from labsched.envs._lib.lazy import lazy_attributes

# Names load on first use (PEP 562): training and callbacks import stable-baselines3 and torch,
# which take seconds; `import labsched.agents.<module>` of a light module stays quick.
_LAZY = {
    "labsched.agents.comparison": ("CompareRow", "compare"),
    "labsched.agents.config": ("ALGORITHMS", "algorithm_info", "allowed_keys", "load_hyperparams"),
    "labsched.agents.features": ("FEATURE_NAMES", "FeatureWrapper", "LabFeatures"),
    "labsched.agents.loading": ("LoadedAgent", "load_agent"),
    "labsched.agents.random_agent": ("RandomSpecAgent",),
    "labsched.agents.throughput": ("throughput_vs_cartpole",),
    "labsched.agents.training": ("TrainResult", "train"),
    "labsched.agents.vec_env": ("LabsVecEnv",),
}
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "ALGORITHMS",
    "FEATURE_NAMES",
    "CompareRow",
    "FeatureWrapper",
    "LabFeatures",
    "LabsVecEnv",
    "LoadedAgent",
    "RandomSpecAgent",
    "TrainResult",
    "algorithm_info",
    "allowed_keys",
    "compare",
    "load_agent",
    "load_hyperparams",
    "throughput_vs_cartpole",
    "train",
]
