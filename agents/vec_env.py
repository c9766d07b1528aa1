"""stable-baselines3 on the native vector environment: an SB3 ``VecEnv`` adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

try:  # the rl extra; without it the module still imports (LabsVecEnv then says what is missing)
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices
except ImportError:  # pragma: no cover - depends on the install
    VecEnv = object  # type: ignore[assignment,misc]
    VecEnvIndices = Any  # type: ignore[misc]

from labsched.agents.config import require_rl_extra
from labsched.agents.features import LabFeatures
from labsched.envs._lib.validation import check_bool
from labsched.envs.labs.spec import LabSpec
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

__all__ = ["LabsVecEnv"]


class LabsVecEnv(VecEnv):
    """The native :class:`~labsched.envs.labs.vector_env.ConcurrentLabsVectorEnv` as an SB3 ``VecEnv``.

    SB3's rollout loop expects same-step autoreset: when a sub-environment's episode ends,
    ``step_wait`` returns the first observation of its next episode, ``done=True``, and the last
    observation in ``infos[i]["terminal_observation"]``. The adapter runs the vector env in
    ``SAME_STEP`` mode and translates its infos into SB3's list of dicts (empty for running
    episodes, so a step costs no Python work per sub-environment). Ended episodes report, like
    SB3's ``Monitor``, ``infos[i]["episode"] = {"r": return, "l": length, "t": 0.0}``, plus
    ``cpe``, ``completed`` and ``cost`` (1.0 when not all ``n`` experiments completed by ``h``).

    ``action_masks()`` (also through ``env_method("action_masks")``, which sb3-contrib's
    ``MaskablePPO`` calls) returns the ``(N, l + 1)`` masks, so masked training works directly,
    and ``VecNormalize`` can wrap the adapter. With ``features=True`` the observation is the flat
    one with :data:`~labsched.agents.features.FEATURE_NAMES` appended, computed for all
    sub-environments at once (:meth:`LabFeatures.batch`), exactly what ``FeatureWrapper`` gives a
    single environment.

    Args:
        num_envs: number of sub-environments.
        spec: the problem (default: the paper's setting).
        features: append the spec-derived features.
        normalize_reward: CPE reward divided by ``n (n - 1) / 2``.
        decide_on_completion: decision points at completions too.
        seed: seed of the first reset (sub-environment ``i`` gets ``seed + i``).
    """

    def __init__(
        self,
        num_envs: int,
        spec: LabSpec | None = None,
        *,
        features: bool = False,
        normalize_reward: bool = True,
        decide_on_completion: bool = True,
        seed: int | None = None,
    ) -> None:
        require_rl_extra("LabsVecEnv")
        self.venv = ConcurrentLabsVectorEnv(
            num_envs,
            spec,
            flatten=True,
            normalize_reward=normalize_reward,
            decide_on_completion=decide_on_completion,
            autoreset_mode=AutoresetMode.SAME_STEP,
            episode_log=False,
        )
        self.lab_spec = self.venv.lab_spec
        self.render_mode = None
        self._features = LabFeatures.for_spec(self.lab_spec) if check_bool("features", features) else None
        obs_space = self.venv.single_observation_space
        if self._features is not None:
            f_low, f_high = self._features.observation_bounds()
            obs_space = spaces.Box(
                np.concatenate([obs_space.low, f_low]).astype(np.float32),
                np.concatenate([obs_space.high, f_high]).astype(np.float32),
                dtype=np.float32,
            )
        super().__init__(num_envs, obs_space, self.venv.single_action_space)
        if seed is not None:
            self.seed(seed)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        done = terminated | truncated
        self._returns += reward
        self._lengths += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            final = info["final_info"]
            ended = np.flatnonzero(done)
            # The last observations of all ended episodes, with their features in one batch.
            last = self._obs(np.stack([np.asarray(info["final_obs"][e], dtype=np.float32) for e in ended]))
            for j, e in enumerate(ended.tolist()):
                infos[e] = {
                    "terminal_observation": last[j],
                    "TimeLimit.truncated": bool(truncated[e]),
                    "episode": {"r": float(self._returns[e]), "l": int(self._lengths[e]), "t": 0.0},
                    "cpe": int(final["cpe"][e]),
                    "completed": int(final["completed"][e]),
                    "cost": float(final["cost"][e]),
                }
            self._returns[done] = 0.0
            self._lengths[done] = 0
        return self._obs(obs), reward.astype(np.float32), done, infos

    def action_masks(self) -> np.ndarray:
        """``(N, l + 1)`` bool masks of the valid actions."""
        return self.venv.action_masks()

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = (
            getattr(self, attr_name)
            if attr_name in ("action_masks", "lab_spec")
            else getattr(self.venv, attr_name)
        )
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"LabsVecEnv sub-environments share one state; cannot set {attr_name!r}")

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        raise AttributeError(f"LabsVecEnv supports env_method('action_masks') only, not {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        return attr_name in ("action_masks", "lab_spec") or hasattr(self.venv, attr_name)

    # ------------------------------------------------------------------ internals
    def _obs(self, flat: np.ndarray) -> np.ndarray:
        if self._features is None:
            return flat
        return np.concatenate([flat, self._features.batch(flat)], axis=1, dtype=np.float32)

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
