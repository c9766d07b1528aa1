"""Model files that cannot run code: safe reading of a saved agent's files.

A stable-baselines3 zip stores its non-JSON attributes (schedules, spaces, the policy class,
``policy_kwargs`` holding classes, buffers) as cloudpickle under a ``":serialized:"`` key, and
``VecNormalize.save`` writes a pickle: loading either runs whatever code the file names. This
module never unpickles by default:

* the observation normaliser is an :class:`ObservationNormalizer` stored as plain arrays in
  ``<stem>_vecnormalize.npz`` (read with ``allow_pickle=False``);
* :func:`load_model` reads the zip's ``data`` JSON itself, replaces every pickled entry by a
  value rebuilt from labsched's metadata (the algorithm, the hyperparameters, the observation and
  action spaces of the env the agent was trained on) through SB3's ``custom_objects``, checks that
  every ``.pth`` entry loads with ``torch.load(weights_only=True)``, and refuses the file with an
  :class:`UnsafeModelFileError` (naming the file and the entry) when something cannot be replaced.

``trust=True`` restores plain SB3 / pickle loading for third-party files. **It runs any code the
file contains: use it only for files from a source you trust.**
"""

from __future__ import annotations

import inspect
import io
import json
import re
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

from gymnasium import spaces

from labsched.agents.config import AlgorithmInfo, model_kwargs, validate_hyperparams
from labsched.agents.normalizer_file import (
    NORMALIZER_SUFFIX,
    TRUST_HINT,
    ObservationNormalizer,
    RunningStats,
    UnsafeModelFileError,
    legacy_normalizer_path,
    load_normalizer,
    normalizer_path,
    save_normalizer,
)

__all__ = [
    "NORMALIZER_SUFFIX",
    "ObservationNormalizer",
    "RunningStats",
    "UnsafeModelFileError",
    "guess_algorithm",
    "legacy_normalizer_path",
    "load_model",
    "load_normalizer",
    "normalizer_path",
    "read_model_data",
    "save_normalizer",
    "serialized_keys",
]

SERIALIZED = ":serialized:"


# ----------------------------------------------------------------------------- the SB3 zip


def read_model_data(zip_path: Path) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 zip, as plain JSON (nothing deserialised)."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            raw = z.read("data")
        data = json.loads(raw.decode())
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{str(zip_path)!r} is not a stable-baselines3 model zip with a JSON 'data' entry ({exc})"
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{str(zip_path)!r}: the 'data' entry is not a JSON object")
    return data


def _carries_serialized(value: Any) -> bool:
    if isinstance(value, dict):
        return SERIALIZED in value or any(_carries_serialized(v) for v in value.values())
    if isinstance(value, list):
        return any(_carries_serialized(v) for v in value)
    return False


def serialized_keys(data: dict[str, Any]) -> list[str]:
    """Top-level keys of a zip's ``data`` holding a pickled (``":serialized:"``) value anywhere."""
    return sorted(k for k, v in data.items() if _carries_serialized(v))


def check_torch_entries(zip_path: Path) -> None:
    """Every ``.pth`` entry must load with ``torch.load(weights_only=True)`` (tensors only).

    SB3 loads them the same way; checking here names the refused entry and keeps the guarantee
    whatever SB3 version is installed.
    """
    import torch

    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            if not name.endswith(".pth"):
                continue
            try:
                torch.load(io.BytesIO(z.read(name)), map_location="cpu", weights_only=True)
            except Exception as exc:
                raise UnsafeModelFileError(
                    f"refusing {str(zip_path)!r}: its entry {name!r} is not plain tensors "
                    f"(torch.load(weights_only=True) failed: {type(exc).__name__}); {TRUST_HINT}"
                ) from exc


_POLICY_MODULES = {
    "sb3_contrib.common.maskable.policies": "maskable_ppo",
    "stable_baselines3.dqn.policies": "dqn",
}


def guess_algorithm(data: dict[str, Any]) -> str | None:
    """The labsched algorithm a zip's plain ``data`` hints at (None when unsure)."""
    policy = data.get("policy_class")
    module = policy.get("__module__") if isinstance(policy, dict) else None
    if module in _POLICY_MODULES:
        return _POLICY_MODULES[module]
    if module == "stable_baselines3.common.policies":
        return "ppo" if "clip_range" in data else "a2c"
    return None


_ACTIVATION_REPR = re.compile(r"^<class 'torch\.nn\.modules\.activation\.(\w+)'>$")
_PLAIN_POLICY_KWARGS = ("net_arch", "ortho_init", "share_features_extractor", "normalize_images")


def _policy_kwargs_from_hints(entry: dict[str, Any]) -> dict[str, Any] | None:
    """``policy_kwargs`` rebuilt from the plain text SB3 writes beside the pickle (or None)."""
    import torch.nn as nn

    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in (":type:", SERIALIZED):
            continue
        if key == "activation_fn":
            m = _ACTIVATION_REPR.match(str(value))
            if not m or not isinstance(getattr(nn, m.group(1), None), type):
                return None
            out[key] = getattr(nn, m.group(1))
        elif key in _PLAIN_POLICY_KWARGS and not _carries_serialized(value):
            out[key] = value
        else:
            return None
    return out if entry.get(":type:") == "<class 'dict'>" else None


def _class_default(cls: type, key: str) -> Any:
    param = inspect.signature(cls.__init__).parameters.get(key)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _replacements(
    data: dict[str, Any], info: AlgorithmInfo, hyperparams: dict[str, Any], obs_space: Any, act_space: Any
) -> dict[str, Any]:
    """A value for each attribute SB3 pickles, rebuilt from metadata (absent when it cannot be)."""
    from stable_baselines3.common.utils import FloatSchedule

    cls = info.load_class()
    kwargs = model_kwargs(validate_hyperparams(info, hyperparams)) if hyperparams else {}

    def setting(key: str) -> Any:
        return kwargs[key] if key in kwargs else _class_default(cls, key)

    window = data.get("_stats_window_size", 100)
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else 100
    policy = hyperparams.get("policy") or (
        "MultiInputPolicy" if isinstance(obs_space, spaces.Dict) else "MlpPolicy"
    )
    out: dict[str, Any] = {
        "observation_space": obs_space,
        "action_space": act_space,
        "learning_rate": setting("learning_rate"),
        "lr_schedule": FloatSchedule(setting("learning_rate")),
        "clip_range": setting("clip_range"),
        "clip_range_vf": setting("clip_range_vf"),
        "train_freq": setting("train_freq"),
        "exploration_schedule": None,  # rebuilt by DQN._setup_model
        "rollout_buffer_class": None,  # None: the algorithm's default buffer
        "replay_buffer_class": None,
        "_last_obs": None,  # training state: a new learn() resets the env
        "_last_original_obs": None,
        "_last_episode_starts": None,
        "ep_info_buffer": deque(maxlen=window),
        "ep_success_buffer": deque(maxlen=window),
    }
    if isinstance(policy, str) and policy in getattr(cls, "policy_aliases", {}):
        out["policy_class"] = cls.policy_aliases[policy]
    if "policy_kwargs" in kwargs:
        out["policy_kwargs"] = kwargs["policy_kwargs"]
    elif isinstance(data.get("policy_kwargs"), dict):
        hinted = _policy_kwargs_from_hints(data["policy_kwargs"])
        if hinted is not None:
            out["policy_kwargs"] = hinted
    return out


def _refuse(zip_path: Path, key: str, why: str) -> UnsafeModelFileError:
    return UnsafeModelFileError(f"refusing {str(zip_path)!r}: its entry data[{key!r}] {why}; {TRUST_HINT}")


def _check_hints(zip_path: Path, data: dict[str, Any], custom: dict[str, Any], info: AlgorithmInfo) -> None:
    """The plain text SB3 writes beside each pickle must agree with what replaces it."""
    policy = data.get("policy_class")
    if "policy_class" in custom and isinstance(policy, dict) and "__module__" in policy:
        if policy["__module__"] != custom["policy_class"].__module__:
            raise ValueError(
                f"{str(zip_path)!r}: its policy comes from {policy['__module__']}, not from "
                f"{custom['policy_class'].__module__} ({info.class_name}): is the algorithm "
                f"{info.name!r} right?"
            )
    obs = data.get("observation_space")
    space = custom.get("observation_space")
    if isinstance(obs, dict) and isinstance(obs.get("_shape"), list) and isinstance(space, spaces.Box):
        want = tuple(space.shape)
        if tuple(obs["_shape"]) != want:
            raise ValueError(
                f"{str(zip_path)!r} was trained on observations of shape {tuple(obs['_shape'])}, "
                f"not {want} (the spec or the observation form does not match the model)"
            )
    act = data.get("action_space")
    if "action_space" in custom and isinstance(act, dict) and "n" in act:
        if str(act["n"]) != str(custom["action_space"].n):
            raise ValueError(
                f"{str(zip_path)!r} has {act['n']} actions, not {custom['action_space'].n} (n_labs + 1)"
            )
    kwargs = data.get("policy_kwargs")
    if "policy_kwargs" in custom and isinstance(kwargs, dict):
        hinted = _policy_kwargs_from_hints(kwargs) or {}
        for key in ("net_arch", "activation_fn"):
            if key in hinted and hinted[key] != custom["policy_kwargs"].get(key):
                raise ValueError(
                    f"{str(zip_path)!r}: its policy_kwargs {key}={hinted[key]!r} differ from the "
                    f"metadata's {custom['policy_kwargs'].get(key)!r}"
                )


def load_model(
    zip_path: Path,
    info: AlgorithmInfo,
    *,
    observation_space: Any = None,
    action_space: Any = None,
    hyperparams: dict[str, Any] | None = None,
    trust: bool = False,
    device: str = "cpu",
) -> Any:
    """Load an SB3 / sb3-contrib model zip without unpickling anything (unless ``trust``).

    Args:
        zip_path: the model zip.
        info: its algorithm (one load, with this class).
        observation_space, action_space: the spaces of the env it was trained on.
        hyperparams: its labsched hyperparameters (``policy``, ``policy_kwargs``, schedules).
        trust: plain ``cls.load``: **unpickles the zip's entries, which can run any code**.
        device: torch device.

    Raises:
        UnsafeModelFileError: a pickled entry that cannot be rebuilt from the metadata, or a
            ``.pth`` entry that is not plain tensors (the message names the file and the entry).
        ValueError: a file that is not a model zip, or that does not match the metadata.
    """
    cls = info.load_class()
    if trust:
        return cls.load(str(zip_path), device=device)
    data = read_model_data(zip_path)
    replace = _replacements(data, info, dict(hyperparams or {}), observation_space, action_space)
    custom: dict[str, Any] = {}
    for key in serialized_keys(data):
        if key not in replace or (key.endswith("_space") and replace[key] is None):
            raise _refuse(zip_path, key, "is pickled (code or data) and cannot be rebuilt from the metadata")
        custom[key] = replace[key]
    _check_hints(zip_path, data, custom, info)
    check_torch_entries(zip_path)
    try:
        return cls.load(str(zip_path), device=device, custom_objects=custom)
    except (RuntimeError, KeyError, AssertionError) as exc:
        raise ValueError(
            f"{str(zip_path)!r} does not load as {info.class_name} with its metadata: {exc}"
        ) from exc
