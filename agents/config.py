"""Algorithms and hyperparameters, in the style of rl-baselines3-zoo.

One YAML file per algorithm in ``agents/hyperparams/`` (``maskable_ppo.yml``, ``ppo.yml``,
``a2c.yml``, ``dqn.yml``). Its top-level keys are env ids (:data:`ENV_IDS`: the base entry of
each env) and optional *setting* keys such as ``"n=8,l=4,h=3"`` (fields ``n``, ``l``, ``h``,
``epoch``, ``p_safe``); training on ``labsched/ConcurrentLabs-v0`` merges every setting key that
matches the spec over its base entry, the more specific (more fields) last. Training on
``labsched/Random-v0`` (a new spec every episode) takes its own entry only. ``key=value``
overrides (``--hyperparams``) come on top.

Keys: everything the algorithm's constructor takes (``learning_rate``, ``n_steps``,
``batch_size``, ``gamma``, ``ent_coef``, ``policy_kwargs``, ...) plus the zoo's and ours:

``n_envs``       parallel training envs
``vec_env``      ``native`` (default: all ``n_envs`` episodes in one NumPy-batched env,
                 :class:`labsched.agents.LabsVecEnv`), ``dummy`` or ``subproc`` (SB3's vector
                 envs of single environments)
``n_timesteps``  training budget (``--total-timesteps`` overrides it)
``policy``       ``MlpPolicy`` (the observation is a flat vector)
``features``     append the spec-derived features of :mod:`labsched.agents.features`
``normalize``    ``VecNormalize`` of observations (``true``, or ``{clip_obs: 10.0}``); rewards are
                 not normalised by it (the env's ``normalize_reward`` already scales CPE)
``env_kwargs``   env options: ``normalize_reward`` (default true), ``decide_on_completion``;
                 regret mode: ``objective`` (a registered objective such as ``cosines``),
                 ``selector`` (default ``kb-ei``), ``reward`` (``regret``, the default with an
                 objective, or ``cpe``; ``regret`` without an objective optimises ``cosines``)
                 and ``reward_scale`` (> 0, default 1: multiplies the training reward)

``learning_rate`` and ``clip_range`` accept ``lin_<value>`` (linear decay to 0, as in the zoo);
``policy_kwargs`` is a mapping or the zoo's string form ``"dict(net_arch=[64, 64],
activation_fn=nn.Tanh)"``. Unknown keys and bad values raise ``ValueError`` naming them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsched.agents.hyperparam_values import (
    LIN_SCHEDULE,
    RANGES,
    bad_value,
    check_by_default,
    check_float_value,
    check_int_value,
    check_schedule,
    parse_policy_kwargs,
)
from labsched.envs import bo
from labsched.envs.labs.random_spec_env import RANDOM_ID
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "ALGORITHMS",
    "ENV_ID",
    "ENV_IDS",
    "REWARD_MODES",
    "AlgorithmInfo",
    "LinearSchedule",
    "MissingExtraError",
    "algorithm_info",
    "allowed_keys",
    "check_env_id",
    "check_env_kwargs",
    "hyperparams_path",
    "load_hyperparams",
    "model_kwargs",
    "parse_overrides",
    "regret_mode",
    "require_rl_extra",
    "validate_hyperparams",
]

ENV_ID = "labsched/ConcurrentLabs-v0"
#: Env ids agents train on: one spec (:data:`ENV_ID`), or a new random spec every episode
#: (``labsched/Random-v0``, :class:`~labsched.envs.labs.random_spec_env.RandomSpecEnv`).
ENV_IDS = (ENV_ID, RANDOM_ID)


def check_env_id(env_id: str) -> str:
    """``env_id`` if agents can train on it.

    Raises:
        ValueError: for any other id, listing the allowed ones.
    """
    if env_id not in ENV_IDS:
        raise ValueError(f"env_id must be one of {', '.join(ENV_IDS)}; got {env_id!r}")
    return env_id


HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"


@dataclass(frozen=True)
class AlgorithmInfo:
    """An algorithm the agents can train.

    Attributes:
        name: registry name (``maskable_ppo``, ``ppo``, ``a2c``, ``dqn``).
        module: module holding the class.
        class_name: the stable-baselines3 / sb3-contrib class.
        masked: whether it uses the env's action masks (otherwise invalid actions are clipped
            by the env, ``invalid_action="clip"``).
    """

    name: str
    module: str
    class_name: str
    masked: bool

    def load_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.class_name)

    @property
    def default_file(self) -> Path:
        return HYPERPARAMS_DIR / f"{self.name}.yml"


ALGORITHMS: dict[str, AlgorithmInfo] = {
    "maskable_ppo": AlgorithmInfo("maskable_ppo", "sb3_contrib", "MaskablePPO", True),
    "ppo": AlgorithmInfo("ppo", "stable_baselines3", "PPO", False),
    "a2c": AlgorithmInfo("a2c", "stable_baselines3", "A2C", False),
    "dqn": AlgorithmInfo("dqn", "stable_baselines3", "DQN", False),
}


def algorithm_info(name: str) -> AlgorithmInfo:
    """Look an algorithm up by name (case-insensitive; ``MaskablePPO``, ``maskable-ppo`` work too).

    Raises:
        ValueError: for an unknown name, listing the allowed ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"algorithm must be a string, one of {sorted(ALGORITHMS)}; got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = {"maskableppo": "maskable_ppo"}.get(key, key)
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[key]


class MissingExtraError(ImportError):
    """An optional dependency of labsched (an extra such as ``rl``) is not installed."""


#: The modules of the ``rl`` extra.
RL_MODULES = ("stable_baselines3", "sb3_contrib", "yaml")


def require_rl_extra(what: str = "training") -> None:
    """Raise :class:`MissingExtraError` naming the missing modules of the ``rl`` extra, if any."""
    missing = [m for m in RL_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}: pip install 'labsched[rl]'")


# ----------------------------------------------------------------------------- keys and checks

#: Keys that ``train`` sets itself and a hyperparameter file may not.
_RESERVED = {"self", "env", "seed", "verbose", "device", "tensorboard_log", "_init_setup_model"}
#: Our keys beyond the algorithm's constructor (see the module docstring).
EXTRA_KEYS = ("env_kwargs", "features", "n_envs", "n_timesteps", "normalize", "policy", "vec_env")
#: Training vector-env kinds (the ``vec_env`` key): the NumPy-batched native env, or SB3's
#: ``DummyVecEnv`` / ``SubprocVecEnv`` of single environments.
VEC_ENV_KINDS = ("native", "dummy", "subproc")
#: Training reward modes (the ``env_kwargs`` key ``reward``): CPE, or minus the regret of the
#: Bayesian optimisation the schedule drives (paid on the last step of an episode).
REWARD_MODES = ("cpe", "regret")
_ENV_BOOL_KWARGS = ("normalize_reward", "decide_on_completion")
_ENV_KWARGS = (*_ENV_BOOL_KWARGS, "reward", "objective", "selector", "reward_scale")
_NORMALIZE_KWARGS = {"clip_obs": float, "epsilon": float}
_POLICIES = ("MlpPolicy",)


def _signature_defaults(info: AlgorithmInfo) -> dict[str, Any]:
    params = inspect.signature(info.load_class().__init__).parameters
    return {k: p.default for k, p in params.items() if k not in _RESERVED and k != "policy"}


def allowed_keys(algo: str | AlgorithmInfo) -> list[str]:
    """Every key a hyperparameter entry may hold for ``algo``."""
    info = algo if isinstance(algo, AlgorithmInfo) else algorithm_info(algo)
    return sorted(set(_signature_defaults(info)) | set(EXTRA_KEYS))


def validate_hyperparams(algo: str | AlgorithmInfo, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key and value; returns the normalised hyperparameters (YAML-serialisable).

    Raises:
        ValueError: naming the unknown key(s) (listing the allowed ones) or the bad value.
    """
    info = algo if isinstance(algo, AlgorithmInfo) else algorithm_info(algo)
    name = info.name
    defaults = _signature_defaults(info)
    allowed = set(defaults) | set(EXTRA_KEYS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for {name}; allowed: {', '.join(sorted(allowed))}"
        )
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in ("learning_rate", "clip_range"):
            out[key] = check_schedule(name, key, value)
        elif key == "policy":
            if value not in _POLICIES:
                raise bad_value(
                    name, key, value, f"one of {list(_POLICIES)} (the observation is a flat vector)"
                )
            out[key] = value
        elif key == "vec_env":
            if value not in VEC_ENV_KINDS:
                raise bad_value(name, key, value, f"one of {list(VEC_ENV_KINDS)}")
            out[key] = value
        elif key == "features":
            if not isinstance(value, bool):
                raise bad_value(name, key, value, "true or false")
            out[key] = value
        elif key == "normalize":
            if isinstance(value, bool):
                out[key] = value
            elif isinstance(value, Mapping) and set(value) <= set(_NORMALIZE_KWARGS):
                out[key] = {
                    k: check_float_value(name, f"normalize.{k}", v, 0.0, open_low=True)
                    for k, v in value.items()
                }
            else:
                raise bad_value(
                    name, key, value, f"true, false or a mapping with keys {sorted(_NORMALIZE_KWARGS)}"
                )
        elif key == "env_kwargs":
            out[key] = check_env_kwargs(value, name)
        elif key == "policy_kwargs":
            out[key] = parse_policy_kwargs(name, value)
        elif key in RANGES:
            kind, *args = RANGES[key]
            out[key] = (
                check_int_value(name, key, value, *args)
                if kind == "int"
                else check_float_value(name, key, value, *args)
            )
        elif key == "train_freq":
            if isinstance(value, (list, tuple)) and len(value) == 2 and value[1] in ("step", "episode"):
                out[key] = [check_int_value(name, key, value[0], 1), value[1]]
            else:
                out[key] = check_int_value(name, key, value, 1)
        else:
            out[key] = check_by_default(name, key, value, defaults.get(key))
    if "batch_size" in out and out["batch_size"] < 2 and info.name in ("ppo", "maskable_ppo"):
        raise bad_value(name, "batch_size", out["batch_size"], "an integer >= 2")
    return out


_EXAMPLES = {"objective": "cosines", "selector": "kb-ei"}


def _registered_name(kind: str, value: Any, make: Any) -> str:
    """``value`` stripped, once ``make`` (the registry's constructor) accepts it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"env_kwargs.{kind} must be the name of a registered {kind} such as {_EXAMPLES[kind]!r}, "
            f"got {value!r}"
        )
    try:
        make(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"env_kwargs.{kind}: {exc}") from None
    return value.strip()


def check_env_kwargs(value: Any, algo: str = "training") -> dict[str, Any]:
    """Check the ``env_kwargs`` hyperparameter; returns it normalised.

    Objective and selector names are checked against the registries of :mod:`labsched.envs.bo`.
    With an objective, ``reward`` defaults to ``"regret"`` and ``selector`` to ``"kb-ei"``;
    ``reward="regret"`` without an objective gets the env's default objective, ``"cosines"``.

    Raises:
        ValueError: an unknown key, a bad value (naming the key and what it must be), an unknown
            objective or selector (listing the registered names) or a selector without objective.
    """
    if not isinstance(value, Mapping) or not set(value) <= set(_ENV_KWARGS):
        raise bad_value(algo, "env_kwargs", value, f"a mapping with keys among {sorted(_ENV_KWARGS)}")
    out: dict[str, Any] = {}
    for k in _ENV_BOOL_KWARGS:
        if k in value:
            if not isinstance(value[k], bool):
                raise bad_value(algo, f"env_kwargs.{k}", value[k], "true or false")
            out[k] = value[k]
    if "objective" in value:
        out["objective"] = _registered_name("objective", value["objective"], bo.make_objective)
    if "selector" in value:
        if "objective" not in out and value.get("reward") != "regret":
            raise ValueError(
                f"env_kwargs.selector={value['selector']!r} needs an objective (env_kwargs.objective, "
                "--objective): the selector chooses the inputs of the Bayesian optimisation"
            )
        out["selector"] = _registered_name("selector", value["selector"], bo.make_selector)
    if "reward" in value:
        if value["reward"] not in REWARD_MODES:
            raise bad_value(algo, "env_kwargs.reward", value["reward"], f"one of {list(REWARD_MODES)}")
        out["reward"] = value["reward"]
    reward = out.get("reward", "regret" if "objective" in out else "cpe")
    if reward == "regret" or "objective" in out:
        out["reward"] = reward
        out.setdefault("objective", "cosines")
        out.setdefault("selector", "kb-ei")
    if "reward_scale" in value:
        out["reward_scale"] = check_float_value(
            algo, "env_kwargs.reward_scale", value["reward_scale"], 0.0, open_low=True
        )
    return out


def regret_mode(env_kwargs: Mapping[str, Any] | None) -> bool:
    """Whether ``env_kwargs`` train on the regret (which the native vector env cannot)."""
    return (env_kwargs or {}).get("reward") == "regret"


# ----------------------------------------------------------------------------- files and overrides


def hyperparams_path(algo: str) -> Path:
    """The shipped hyperparameter file of ``algo``."""
    return algorithm_info(algo).default_file


_SETTING_FIELDS = {
    "n": "n_experiments",
    "l": "n_labs",
    "h": "horizon",
    "epoch": "epoch",
    "p_safe": "p_safe",
}


def _parse_setting_key(key: str, source: str) -> dict[str, float]:
    out = {}
    for part in key.split(","):
        name, eq, val = part.partition("=")
        name = name.strip()
        if not eq or name not in _SETTING_FIELDS:
            raise ValueError(
                f"{source}: top-level key {key!r} is neither an env id {list(ENV_IDS)} nor a setting such as "
                f"'n=20,l=10,h=5' (fields: {', '.join(_SETTING_FIELDS)})"
            )
        try:
            out[name] = float(val)
        except ValueError as exc:
            raise ValueError(f"{source}: setting key {key!r}: {name} must be a number, got {val!r}") from exc
    return out


def _setting_matches(setting: Mapping[str, float], spec: LabSpec) -> bool:
    return all(
        math.isclose(float(getattr(spec, _SETTING_FIELDS[k])), v, rel_tol=1e-9, abs_tol=1e-12)
        for k, v in setting.items()
    )


def _yaml():
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is in the rl extra
        raise ImportError("hyperparameter files need PyYAML: pip install pyyaml (labsched[rl])") from exc
    return yaml


def load_hyperparams(
    algo: str,
    spec: LabSpec | None = None,
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    env_id: str = ENV_ID,
) -> dict[str, Any]:
    """Resolve the hyperparameters of ``algo`` for ``spec``: file entries, then overrides.

    Args:
        algo: algorithm name.
        spec: the problem (selects the matching setting entries; unused for ``Random-v0``).
        path: a YAML file (default: the shipped ``agents/hyperparams/<algo>.yml``).
        overrides: a mapping, or ``"key=value"`` strings (values parsed as YAML).
        env_id: the entry to start from (:data:`ENV_IDS`); ``labsched/Random-v0`` takes its own
            entry (empty if the file has none) and no setting entries.

    Returns:
        The validated hyperparameters (YAML-serialisable; schedules still as ``"lin_..."``).

    Raises:
        ValueError: an unknown ``env_id`` (listing the allowed ones), a missing or malformed
            file, unknown keys or bad values.
    """
    info = algorithm_info(algo)
    check_env_id(env_id)
    spec = spec or LabSpec()
    path = Path(path) if path is not None else info.default_file
    if not path.is_file():
        raise ValueError(f"hyperparameter file {str(path)!r} not found")
    data = _yaml().safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: must map the env id or settings to hyperparameters")
    merged: dict[str, Any] = {}
    settings = []
    for key, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{path}: entry {key!r} must be a mapping of hyperparameters")
        if key == env_id:
            merged.update(entry)
        elif key in ENV_IDS:
            continue  # another env's entry
        else:
            setting = _parse_setting_key(str(key), str(path))
            if env_id == ENV_ID and _setting_matches(setting, spec):
                settings.append((len(setting), entry))
    for _, entry in sorted(settings, key=lambda s: s[0]):
        merged.update(entry)
    if overrides:
        merged.update(overrides if isinstance(overrides, Mapping) else parse_overrides(overrides))
    return validate_hyperparams(info, merged)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["gamma=0.999", "policy_kwargs=dict(net_arch=[64, 64])"]`` to a mapping (YAML values)."""
    out: dict[str, Any] = {}
    yaml = _yaml()
    for item in items:
        key, eq, raw = str(item).partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"hyperparameter override {item!r} must look like key=value")
        raw = raw.strip()
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads 3e-4 as a string
                if value.is_integer() and re.fullmatch(r"[-+]?\d+", raw):
                    value = int(value)
            except ValueError:
                pass
        out[key] = value
    return out


# ----------------------------------------------------------------------------- to constructor kwargs


class LinearSchedule:
    """``lin_<value>``: from ``value`` at the start of training down to 0 at the end (picklable)."""

    def __init__(self, initial: float) -> None:
        self.initial = float(initial)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial

    def __repr__(self) -> str:
        return f"LinearSchedule({self.initial!r})"


def _schedule(value: float | str) -> Any:
    if isinstance(value, str):
        return LinearSchedule(float(LIN_SCHEDULE.match(value).group(1)))
    return float(value)


def model_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor keyword arguments from validated hyperparameters (our extra keys removed)."""
    import torch.nn as nn

    kwargs = {k: v for k, v in params.items() if k not in EXTRA_KEYS}
    for key in ("learning_rate", "clip_range"):
        if key in kwargs:
            kwargs[key] = _schedule(kwargs[key])
    if "policy_kwargs" in kwargs:
        pk = dict(kwargs["policy_kwargs"])
        if "activation_fn" in pk:
            pk["activation_fn"] = getattr(nn, pk["activation_fn"])
        kwargs["policy_kwargs"] = pk
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    return kwargs
