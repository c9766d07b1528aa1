"""Training and evaluation environments of the RL agents (vectorised, seeded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from labsched.agents.config import VEC_ENV_KINDS
from labsched.agents.features import FeatureWrapper
from labsched.agents.vec_env import LabsVecEnv
from labsched.envs._lib.validation import check_choice
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec

__all__ = ["SuccessInfo", "build_env", "make_vec"]


class SuccessInfo(gym.Wrapper):
    """Set ``info["is_success"]`` at the end of an episode: all ``n`` experiments completed.

    SB3's ``EvalCallback`` turns it into the success (completion) rate of an evaluation.
    """

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["is_success"] = info["completed"] >= self.env.unwrapped.lab_spec.n_experiments
        return obs, reward, terminated, truncated, info


def build_env(
    spec: LabSpec,
    features: bool = False,
    success_info: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
) -> gym.Env:
    """One env in the agents' observation form: flat (``flatten=True``), features optional.

    ``invalid_action="clip"``: algorithms without masking may ask for more experiments than can
    start; the env starts the largest valid number.
    """
    kwargs = {"normalize_reward": True, **(env_kwargs or {})}
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
        env_kwargs: env options (``normalize_reward``, ``decide_on_completion``).
        evaluation: an evaluation env: raw CPE rewards (``normalize_reward=False``), success
            info, and a frozen ``VecNormalize`` (its statistics are synced from training).
        vec_env: ``"native"`` (the NumPy-batched :class:`~labsched.agents.vec_env.LabsVecEnv`,
            fastest; evaluation envs always use single envs), ``"dummy"`` or ``"subproc"``
            (SB3's vector envs of single environments).
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    check_choice("vec_env", vec_env, VEC_ENV_KINDS)
    kwargs = dict(env_kwargs or {})
    if evaluation:
        kwargs["normalize_reward"] = False
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
    if normalize:
        opts = dict(normalize) if isinstance(normalize, Mapping) else {}
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=not evaluation, **opts)
    return venv
