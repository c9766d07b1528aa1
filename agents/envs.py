"""Training and evaluation environments of the RL agents (vectorised, seeded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

try:  # the rl extra; without it the module still imports (make_vec then needs it)
    from stable_baselines3.common.vec_env import VecEnvWrapper
except ImportError:  # pragma: no cover - depends on the install
    VecEnvWrapper = object  # type: ignore[assignment, misc]

from labsched.agents.config import VEC_ENV_KINDS, regret_mode
from labsched.agents.features import FeatureWrapper
from labsched.agents.vec_env import LabsVecEnv
from labsched.envs._lib.validation import check_choice
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.random_spec_env import RandomSpecEnv
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "RANDOM_ENV_OPTIONS",
    "ScaledReward",
    "SuccessInfo",
    "build_env",
    "build_random_env",
    "env_options",
    "make_random_vec",
    "make_vec",
]


class SuccessInfo(gym.Wrapper):
    """Set ``info["is_success"]`` at the end of an episode: all ``n`` experiments completed.

    SB3's ``EvalCallback`` turns it into the success (completion) rate of an evaluation.
    """

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["is_success"] = info["completed"] >= self.env.unwrapped.lab_spec.n_experiments
        return obs, reward, terminated, truncated, info


#: Env options of the Bayesian optimisation (regret mode); a CPE-trained env needs none of them.
_BO_OPTIONS = ("objective", "selector")


def env_options(
    env_kwargs: Mapping[str, Any] | None, evaluation: bool = False
) -> tuple[dict[str, Any], float]:
    """The ``ConcurrentLabsEnv`` options of training or evaluation envs, and the reward scale.

    ``env_kwargs`` are the checked hyperparameter (:func:`~labsched.agents.config.check_env_kwargs`).
    Training envs that reward CPE drop the objective (the optimisation cannot change a CPE
    reward; without it the native vector env can run them). Evaluation envs always pay raw CPE
    (``reward="cpe"``, ``normalize_reward=False``) and keep the objective, so that the last
    step's info carries the regret. ``reward_scale`` is not an env option: :func:`make_vec`
    scales the training rewards with it (1 for evaluation envs).
    """
    kwargs = dict(env_kwargs or {})
    scale = float(kwargs.pop("reward_scale", 1.0))
    if evaluation:
        kwargs["normalize_reward"] = False
        if "objective" in kwargs:
            kwargs["reward"] = "cpe"
        return kwargs, 1.0
    if not regret_mode(kwargs):
        for key in (*_BO_OPTIONS, "reward"):
            kwargs.pop(key, None)
    return kwargs, scale


class ScaledReward(VecEnvWrapper):
    """Rewards times ``scale`` (``reward_scale``: training rewards on a scale that suits PPO)."""

    def __init__(self, venv: Any, scale: float) -> None:
        super().__init__(venv)
        self.scale = np.float32(scale)

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, reward, done, infos = self.venv.step_wait()
        return obs, np.asarray(reward, dtype=np.float32) * self.scale, done, infos


def build_env(
    spec: LabSpec,
    features: bool = False,
    success_info: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
) -> gym.Env:
    """One env in the agents' observation form: flat (``flatten=True``), features optional.

    ``invalid_action="clip"``: algorithms without masking may ask for more experiments than can
    start; the env starts the largest valid number. ``env_kwargs`` go to the env as they are
    (regret mode: ``reward``, ``objective``, ``selector``), except ``reward_scale``, which is
    :func:`make_vec`'s.
    """
    kwargs = {"normalize_reward": True, **(env_kwargs or {})}
    kwargs.pop("reward_scale", None)
    env: gym.Env = ConcurrentLabsEnv(spec, flatten=True, invalid_action="clip", **kwargs)
    if features:
        env = FeatureWrapper(env)
    if success_info:
        env = SuccessInfo(env)
    return env


def make_vec(
    spec: LabSpec,
    n_envs: int,
    seed: int | None,
    *,
    features: bool = False,
    normalize: bool | Mapping[str, float] = False,
    env_kwargs: Mapping[str, Any] | None = None,
    evaluation: bool = False,
    vec_env: str = "native",
):
    """``make_vec_env`` of :func:`build_env`, optionally under ``VecNormalize`` (observations).

    Args:
        spec: the problem.
        n_envs: number of envs (env ``i`` is seeded ``seed + i``).
        seed: base seed.
        features: append the spec-derived features.
        normalize: ``VecNormalize`` of observations (``True`` or its ``clip_obs``/``epsilon``).
        env_kwargs: env options (``normalize_reward``, ``decide_on_completion``; regret mode
            ``reward``, ``objective``, ``selector``, ``reward_scale``: see :func:`env_options`).
        evaluation: an evaluation env: raw CPE rewards (``normalize_reward=False``; with an
            objective the regret is in the last step's info), success info, and a frozen
            ``VecNormalize`` (its statistics are synced from training).
        vec_env: ``"native"`` (the NumPy-batched :class:`~labsched.agents.vec_env.LabsVecEnv`,
            fastest, CPE rewards only; evaluation envs always use single envs), ``"dummy"`` or
            ``"subproc"`` (SB3's vector envs of single environments).

    Raises:
        ValueError: ``vec_env="native"`` for training envs in regret mode.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    check_choice("vec_env", vec_env, VEC_ENV_KINDS)
    kwargs, scale = env_options(env_kwargs, evaluation)
    if vec_env == "native" and not evaluation and regret_mode(kwargs):
        raise ValueError(
            "vec_env='native' has no regret mode (reward='regret'): use vec_env='dummy' or 'subproc'"
        )
    if vec_env == "native" and not evaluation:
        venv = LabsVecEnv(n_envs, spec, features=features, seed=seed, **kwargs)
    else:
        venv = make_vec_env(
            build_env,
            n_envs=n_envs,
            seed=seed,
            env_kwargs={"spec": spec, "features": features, "success_info": evaluation, "env_kwargs": kwargs},
            vec_env_cls=SubprocVecEnv if vec_env == "subproc" else DummyVecEnv,
        )
    if "reward_scale" in (env_kwargs or {}):  # evaluation envs too (scale 1): VecNormalize's sync
        venv = ScaledReward(venv, scale)  # walks the training and evaluation wrappers in step
    if normalize:
        opts = dict(normalize) if isinstance(normalize, Mapping) else {}
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=not evaluation, **opts)
    return venv


#: Env options a ``labsched/Random-v0`` training run takes (``env_kwargs``); the spec is drawn.
RANDOM_ENV_OPTIONS = ("normalize_reward", "decide_on_completion")


def build_random_env(
    success_info: bool = False, env_kwargs: Mapping[str, Any] | None = None, **layout: Any
) -> gym.Env:
    """One ``labsched/Random-v0`` env in the agents' form: flat observation, ``invalid_action="clip"``.

    ``env_kwargs``: :data:`RANDOM_ENV_OPTIONS` (``normalize_reward`` default True); ``layout``:
    :class:`~labsched.envs.labs.random_spec_env.RandomSpecEnv`'s ``max_labs``,
    ``max_experiments``, ``max_horizon`` (and ``distribution`` / ``specs``).
    """
    kwargs = {"normalize_reward": True, **(env_kwargs or {})}
    bad = sorted(set(kwargs) - set(RANDOM_ENV_OPTIONS))
    if bad:
        raise ValueError(
            f"labsched/Random-v0 env_kwargs {bad} are not supported; allowed: {list(RANDOM_ENV_OPTIONS)}"
        )
    env: gym.Env = RandomSpecEnv(flatten=True, invalid_action="clip", **layout, **kwargs)
    return SuccessInfo(env) if success_info else env


def make_random_vec(
    n_envs: int,
    seed: int | None,
    *,
    normalize: bool | Mapping[str, float] = False,
    env_kwargs: Mapping[str, Any] | None = None,
    evaluation: bool = False,
    vec_env: str = "dummy",
    **layout: Any,
):
    """SB3 vector env of :func:`build_random_env` (env ``i`` seeded ``seed + i``): training on
    ``labsched/Random-v0``. Masks reach MaskablePPO through each env's ``action_masks()``.

    Args:
        n_envs: number of envs.
        seed: base seed (each reset then draws a spec and an episode from the env's generator).
        normalize: ``VecNormalize`` of observations (``True`` or its ``clip_obs``/``epsilon``).
        env_kwargs: :data:`RANDOM_ENV_OPTIONS`.
        evaluation: raw CPE rewards, success info, a frozen ``VecNormalize``.
        vec_env: ``"dummy"`` or ``"subproc"`` (the native vector env holds one spec).
        **layout: :class:`RandomSpecEnv` options (``max_labs``, ``specs``, ...).

    Raises:
        ValueError: ``vec_env="native"`` or another unknown kind, or unsupported ``env_kwargs``.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    if vec_env == "native":
        raise ValueError("vec_env='native' holds one spec; labsched/Random-v0 trains on 'dummy' or 'subproc'")
    check_choice("vec_env", vec_env, ("dummy", "subproc"))
    kwargs = dict(env_kwargs or {})
    if evaluation:
        kwargs["normalize_reward"] = False
    venv = make_vec_env(
        build_random_env,
        n_envs=n_envs,
        seed=seed,
        env_kwargs={"success_info": evaluation, "env_kwargs": kwargs, **layout},
        vec_env_cls=SubprocVecEnv if vec_env == "subproc" else DummyVecEnv,
    )
    if normalize:
        opts = dict(normalize) if isinstance(normalize, Mapping) else {}
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=not evaluation, **opts)
    return venv
