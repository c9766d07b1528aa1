"""Training under the paper's chance constraint P(all n complete by h) >= p.

The environments report ``info["cost"]``: 1.0 on the last step of an episode that did not
complete all ``n`` experiments by ``h`` (so an episode's cost is the violation indicator and its
mean is one minus the completion rate). Two ways of putting the constraint into training:

**Lagrangian** (``kind="lagrangian"``). The learner maximises ``E[return] - lambda E[cost]``:
:class:`ConstrainedVecEnv` subtracts ``lambda * cost`` from the reward of the step that carries
the cost, and after every rollout :class:`LagrangianCallback` updates the multiplier from the
episodes that ended in it by projected dual ascent,

    ``lambda <- max(0, lambda + lr * (mean_cost - target))``,

``target`` being the allowed violation rate ``1 - p``. This is the plain (integral-only) form of
the PID Lagrangian of Stooke, Achiam and Abbeel (2020); :class:`DualAscent` also takes a
proportional gain ``kp`` (``lambda = max(0, I + kp * error)``, ``I`` the projected integral),
which damps the oscillation of the multiplier at the cost of a noisier one. The default is
``kp = 0`` (plain dual ascent): a rollout of the shipped hyperparameters holds only ~30 episodes,
so the proportional term would mostly feed binomial noise into the reward. The multiplier and
the completion rate of the training episodes (per rollout and over the last
:data:`RUNNING_WINDOW` episodes) are written to ``constraint_log.csv`` and drawn in the
learning curve.

**Feasibility masks** (``kind="mask"``). An action that would leave the estimated probability of
finishing the budget below ``mask_threshold`` is masked (:func:`feasibility_masks`), in training
and, for a model trained so, when it is deployed (:class:`FeasibilityMaskedAgent`; the runner of
``labsched compare`` applies it from ``agent.json``). The estimate is the spec-derived feature of
:class:`~labsched.agents.features.LabFeatures`: ``p_finish_now`` (all free labs start now) and
``p_finish_wait`` (they all wait one decision interval). Both are products of per-lab factors;
starting ``a`` of the ``m`` experiments that can start now replaces ``a`` of the ``m`` "wait"
factors of the free labs by "now" factors, so ``P(a) = p_wait (p_now / p_wait) ** (a / m)``
(exact when the free labs carry equal shares of the remaining budget, a geometric interpolation
otherwise). ``P(a)`` grows with ``a``, so the largest valid action - the safest - is never
masked. ``kind="lagrangian+mask"`` uses both.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.features import FEATURE_NAMES, LabFeatures, flat_observation
from labsched.envs._lib.reporting import write_csv
from labsched.envs._lib.validation import check_choice, check_real
from labsched.envs.labs.observation import is_batched
from labsched.envs.labs.spec import LabSpec

try:  # the rl extra; without it the pure parts (dual update, masks) still import
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecEnvWrapper
except ImportError:  # pragma: no cover - depends on the install
    BaseCallback = VecEnvWrapper = object  # type: ignore[assignment, misc]

__all__ = [
    "CONSTRAINT_KINDS",
    "CONSTRAINT_LOG_FIELDS",
    "RUNNING_WINDOW",
    "ConstrainedVecEnv",
    "ConstraintConfig",
    "DualAscent",
    "FeasibilityMaskedAgent",
    "LagrangianCallback",
    "constrained_envs",
    "dual_update",
    "feasibility_masks",
    "finish_probabilities",
]

#: ``--constraint`` values.
CONSTRAINT_KINDS = ("lagrangian", "mask", "lagrangian+mask")
#: Training episodes behind the running completion rate.
RUNNING_WINDOW = 200
CONSTRAINT_LOG_FIELDS = (
    "timesteps",
    "lambda",
    "rollout_episodes",
    "rollout_completion",
    "running_completion",
    "target_completion",
)


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ConstraintConfig:
    """How training handles the constraint (see the module docstring).

    Attributes:
        kind: one of :data:`CONSTRAINT_KINDS`.
        target: allowed violation rate (episode cost), in (0, 1); None: ``1 - spec.p_safe``.
        lambda_lr: dual-ascent step size (>= 0; 0 keeps ``lambda`` fixed at ``lambda_init``).
        lambda_init: starting multiplier (>= 0).
        lambda_kp: proportional gain of the PID form (>= 0; 0: plain dual ascent).
        mask_threshold: feasibility-mask threshold in (0, 1) (``mask`` kinds only).
    """

    kind: str = "lagrangian"
    target: float | None = None
    lambda_lr: float = 0.5
    lambda_init: float = 0.0
    lambda_kp: float = 0.0
    mask_threshold: float = 0.9

    def __post_init__(self) -> None:
        check_choice("constraint", self.kind, CONSTRAINT_KINDS)
        if self.target is not None:
            check_real("target", self.target, 0.0, 1.0, low_open=True, high_open=True)
        check_real("lambda_lr", self.lambda_lr, 0.0)
        check_real("lambda_init", self.lambda_init, 0.0)
        check_real("lambda_kp", self.lambda_kp, 0.0)
        check_real("mask_threshold", self.mask_threshold, 0.0, 1.0, low_open=True, high_open=True)

    @property
    def lagrangian(self) -> bool:
        return self.kind in ("lagrangian", "lagrangian+mask")

    @property
    def masked(self) -> bool:
        return self.kind in ("mask", "lagrangian+mask")

    def resolve(self, spec: LabSpec) -> ConstraintConfig:
        """The same with ``target`` filled in from ``spec.p_safe``."""
        if self.target is not None:
            return self
        return dataclasses.replace(self, target=1.0 - spec.p_safe)

    def to_dict(self) -> dict[str, Any]:
        """For ``agent.json`` (``mask_threshold`` only with a mask)."""
        out = asdict(self)
        if not self.masked:
            out.pop("mask_threshold")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConstraintConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# ----------------------------------------------------------------------------- dual ascent
def dual_update(lam: float, mean_cost: float, target: float, lr: float) -> float:
    """One projected dual-ascent step: ``max(0, lam + lr * (mean_cost - target))``.

    Raises:
        ValueError: a negative ``lam`` or ``lr``, or ``mean_cost`` / ``target`` outside [0, 1].
    """
    check_real("lambda", lam, 0.0)
    check_real("lambda_lr", lr, 0.0)
    check_real("mean_cost", mean_cost, 0.0, 1.0)
    check_real("target", target, 0.0, 1.0)
    return max(0.0, float(lam) + float(lr) * (float(mean_cost) - float(target)))


class DualAscent:
    """The multiplier ``lambda``: projected integral term plus an optional proportional one.

    ``I <- max(0, I + lr * e)`` and ``lambda = max(0, I + kp * e)``, with ``e = mean_cost - target``
    (``kp = 0``: ``lambda = I``, plain dual ascent, :func:`dual_update`).

    Args:
        target: allowed violation rate in (0, 1).
        lr: step size (>= 0).
        init: starting multiplier (>= 0).
        kp: proportional gain (>= 0).
    """

    def __init__(self, target: float, lr: float, init: float = 0.0, kp: float = 0.0) -> None:
        self.target = check_real("target", target, 0.0, 1.0, low_open=True, high_open=True)
        self.lr = check_real("lambda_lr", lr, 0.0)
        self.kp = check_real("lambda_kp", kp, 0.0)
        self.integral = check_real("lambda_init", init, 0.0)
        self.value = self.integral

    def update(self, mean_cost: float) -> float:
        """Take one step from a rollout's mean episode cost; returns the new ``lambda``."""
        self.integral = dual_update(self.integral, mean_cost, self.target, self.lr)
        self.value = max(0.0, self.integral + self.kp * (float(mean_cost) - self.target))
        return self.value


# ----------------------------------------------------------------------------- feasibility
def finish_probabilities(flat: np.ndarray, spec: LabSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(p_finish_now, p_finish_wait)`` per row of flat observations (features appended or not)."""
    x = np.asarray(flat, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    raw = LabFeatures.for_spec(spec).obs_width
    if x.shape[1] == raw + len(FEATURE_NAMES):
        feats = x[:, raw:]
    else:
        feats = LabFeatures.for_spec(spec).batch(x[:, :raw])
    i_now, i_wait = FEATURE_NAMES.index("p_finish_now"), FEATURE_NAMES.index("p_finish_wait")
    return feats[:, i_now].astype(float), feats[:, i_wait].astype(float)


def feasibility_masks(
    valid: np.ndarray, p_now: np.ndarray, p_wait: np.ndarray, threshold: float
) -> np.ndarray:
    """Valid actions whose estimated P(finish) ``P(a)`` is at least ``threshold``.

    Args:
        valid: ``(batch, l + 1)`` valid-action masks (``a <= max_valid``).
        p_now, p_wait: the finish probabilities if all free labs start now / wait.
        threshold: in (0, 1).

    Returns:
        ``(batch, l + 1)`` masks; the largest valid action always stays allowed.
    """
    check_real("mask_threshold", threshold, 0.0, 1.0, low_open=True, high_open=True)
    valid = np.asarray(valid, dtype=bool)
    m = valid.sum(axis=1) - 1  # max_valid
    a = np.arange(valid.shape[1])[None, :]
    lo = np.log(np.clip(np.asarray(p_wait, dtype=float), 1e-300, 1.0))[:, None]
    hi = np.log(np.clip(np.asarray(p_now, dtype=float), 1e-300, 1.0))[:, None]
    frac = np.where(m[:, None] > 0, a / np.maximum(m, 1)[:, None], 1.0)
    log_p = lo + frac * (np.maximum(hi, lo) - lo)
    keep = valid & (log_p >= math.log(threshold))
    keep[np.arange(valid.shape[0]), m] = True
    return keep


# ----------------------------------------------------------------------------- the wrapper
class ConstrainedVecEnv(VecEnvWrapper):
    """Training (or evaluation) envs with the Lagrangian penalty and/or the feasibility mask.

    Wrap the raw vector env (below any ``VecNormalize``: the mask reads raw observations). The
    evaluation envs get the same wrapper without a penalty (``dual=None``), so both wrapper
    chains have the same shape (SB3 syncs ``VecNormalize`` statistics along them).

    Args:
        venv: the vector env (its infos carry ``cost`` on ended episodes).
        spec: the problem.
        dual: the multiplier (None: no penalty).
        mask_threshold: feasibility-mask threshold (None: the env's masks unchanged).
    """

    def __init__(
        self, venv: Any, spec: LabSpec, dual: DualAscent | None = None, mask_threshold: float | None = None
    ) -> None:
        super().__init__(venv)
        self.lab_spec = spec
        self.dual = dual
        self.mask_threshold = mask_threshold
        self.costs: list[float] = []
        self._obs: np.ndarray | None = None

    @property
    def lam(self) -> float:
        return 0.0 if self.dual is None else self.dual.value

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        return self._obs

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, done, infos = self.venv.step_wait()
        self._obs = obs
        if done.any():
            reward = np.array(reward, dtype=np.float32, copy=True)
            for e in np.flatnonzero(done).tolist():
                cost = _episode_cost(infos[e], self.lab_spec)
                self.costs.append(cost)
                if self.dual is not None:
                    reward[e] -= self.dual.value * cost
        return obs, reward, done, infos

    def pop_costs(self) -> list[float]:
        """Costs of the episodes ended since the last call."""
        out, self.costs = self.costs, []
        return out

    def action_masks(self) -> np.ndarray:
        valid = np.stack(self.venv.env_method("action_masks"))
        if self.mask_threshold is None or self._obs is None:
            return valid
        p_now, p_wait = finish_probabilities(self._obs, self.lab_spec)
        return feasibility_masks(valid, p_now, p_wait, self.mask_threshold)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            masks = self.action_masks()
            idx = range(self.num_envs) if indices is None else np.atleast_1d(indices).tolist()
            return [masks[i] for i in idx]
        return self.venv.env_method(method_name, *args, indices=indices, **kwargs)


def _episode_cost(info: Mapping[str, Any], spec: LabSpec) -> float:
    if "cost" in info:
        return float(info["cost"])
    if "completed" in info:
        return float(info["completed"] < spec.n_experiments)
    return float(not info.get("is_success", False))


# ----------------------------------------------------------------------------- the callback
class LagrangianCallback(BaseCallback):
    """After every rollout: update ``lambda`` from its ended episodes; log it (``constraint_log.csv``).

    Args:
        env: the :class:`ConstrainedVecEnv` of training (collects the episode costs).
        out: output folder (``None``: no file).
        verbose: print one line per update.
    """

    def __init__(self, env: ConstrainedVecEnv, out: str | Path | None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.env = env
        self.path = Path(out) / "constraint_log.csv" if out is not None else None
        self.window: deque[float] = deque(maxlen=RUNNING_WINDOW)
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        costs = self.env.pop_costs()
        self.window.extend(costs)
        dual = self.env.dual
        lam = dual.value if dual is not None else 0.0
        if costs and dual is not None:
            lam = dual.update(float(np.mean(costs)))
        target = dual.target if dual is not None else math.nan
        row = {
            "timesteps": int(self.num_timesteps),
            "lambda": float(lam),
            "rollout_episodes": len(costs),
            "rollout_completion": 1.0 - float(np.mean(costs)) if costs else math.nan,
            "running_completion": 1.0 - float(np.mean(self.window)) if self.window else math.nan,
            "target_completion": 1.0 - target,
        }
        self.rows.append(row)
        self.logger.record("constraint/lambda", row["lambda"])
        self.logger.record("constraint/running_completion", row["running_completion"])
        if self.path is not None:
            write_csv(self.rows, self.path, CONSTRAINT_LOG_FIELDS)
        if self.verbose:
            print(
                f"rollout @ {row['timesteps']}: lambda {lam:.3f}, completion "
                f"{row['rollout_completion']:.3f} (running {row['running_completion']:.3f})",
                file=sys.stderr,
            )


# ----------------------------------------------------------------------------- deployment
class FeasibilityMaskedAgent:
    """A loaded maskable agent whose masks also exclude actions below a feasibility threshold.

    Args:
        agent: a :class:`~labsched.agents.loading.LoadedAgent` of a masked algorithm.
        threshold: in (0, 1).
    """

    def __init__(self, agent: Any, threshold: float) -> None:
        if not getattr(agent, "masked", False):
            raise ValueError(
                "a feasibility mask needs a maskable agent (maskable_ppo), got "
                f"{getattr(agent, 'algo', agent)!r}"
            )
        self.agent = agent
        self.threshold = check_real("mask_threshold", threshold, 0.0, 1.0, low_open=True, high_open=True)
        self.spec = agent.spec

    def action_masks(self, observation: Any) -> np.ndarray:
        flat = flat_observation(observation, self.spec.n_labs)
        p_now, p_wait = finish_probabilities(flat, self.spec)
        return feasibility_masks(self.agent.action_masks(observation), p_now, p_wait, self.threshold)

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """Stable-baselines3's signature; the model chooses among the feasible actions."""
        batched = is_batched(observation)
        x = self.agent.model_observation(observation)
        masks = self.action_masks(observation)
        actions, _ = self.agent.model.predict(x, deterministic=deterministic, action_masks=masks)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        return (actions if batched else actions.reshape(())), state

    def reset(self) -> None:
        """Memoryless."""


def constrained_envs(
    env: Any, eval_env: Any, spec: LabSpec, config: ConstraintConfig, normalize: bool | Mapping[str, float]
) -> tuple[Any, Any, ConstrainedVecEnv]:
    """Wrap raw training and evaluation vector envs (made without ``VecNormalize``).

    Returns:
        ``(training env, evaluation env, the training ConstrainedVecEnv)``: the penalty (with a
        Lagrangian) on the training envs only, the mask (with a mask) on both, then the
        observation ``VecNormalize`` on both when ``normalize``.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    config = config.resolve(spec)
    dual = None
    if config.lagrangian:
        dual = DualAscent(config.target, config.lambda_lr, config.lambda_init, config.lambda_kp)
    threshold = config.mask_threshold if config.masked else None
    train_env = ConstrainedVecEnv(env, spec, dual, threshold)
    test_env = ConstrainedVecEnv(eval_env, spec, None, threshold)
    outer: list[Any] = [train_env, test_env]
    if normalize:
        opts = dict(normalize) if isinstance(normalize, Mapping) else {}
        outer = [
            VecNormalize(train_env, norm_obs=True, norm_reward=False, training=True, **opts),
            VecNormalize(test_env, norm_obs=True, norm_reward=False, training=False, **opts),
        ]
    return outer[0], outer[1], train_env
