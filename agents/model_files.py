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
import pickle
import re
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from labsched.agents.config import AlgorithmInfo, model_kwargs, validate_hyperparams

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

NORMALIZER_SUFFIX = "_vecnormalize.npz"
LEGACY_NORMALIZER_SUFFIX = "_vecnormalize.pkl"
NORMALIZER_FORMAT = 1
SERIALIZED = ":serialized:"
TRUST_HINT = (
    "only if you trust its source, load it with load_agent(..., trust=True) or "
    "'labsched compare --trust-model-file' (this runs any code the file contains)"
)


class UnsafeModelFileError(ValueError):
    """A model file that only unpickling (which can run arbitrary code) could load."""


def normalizer_path(zip_path: Path) -> Path:
    """Where the observation statistics of a model zip live (``<stem>_vecnormalize.npz``)."""
    return zip_path.with_name(f"{zip_path.stem}{NORMALIZER_SUFFIX}")


def legacy_normalizer_path(zip_path: Path) -> Path:
    """Where older labsched versions wrote them, pickled (``<stem>_vecnormalize.pkl``)."""
    return zip_path.with_name(f"{zip_path.stem}{LEGACY_NORMALIZER_SUFFIX}")


# ----------------------------------------------------------------------------- the normaliser


@dataclass
class RunningStats:
    """Mean, variance and count of a running statistic (SB3's ``RunningMeanStd`` fields)."""

    mean: np.ndarray
    var: np.ndarray
    count: float


@dataclass
class ObservationNormalizer:
    """The frozen observation statistics of a ``VecNormalize``, without pickle.

    ``normalize_obs`` computes exactly ``VecNormalize.normalize_obs``:
    ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` as float32.

    Attributes:
        obs_rms: observation statistics.
        clip_obs: clipping bound of normalised observations.
        epsilon: added to the variance.
        ret_rms: return statistics (reward normalisation; kept to rebuild a ``VecNormalize``).
        norm_reward, clip_reward, gamma: the ``VecNormalize`` reward settings.
    """

    obs_rms: RunningStats
    clip_obs: float = 10.0
    epsilon: float = 1e-8
    ret_rms: RunningStats | None = None
    norm_reward: bool = False
    clip_reward: float = 10.0
    gamma: float = 0.99

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        """Normalised observations (no statistics update)."""
        x = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return np.clip(x, -self.clip_obs, self.clip_obs).astype(np.float32)

    @classmethod
    def from_vec_normalize(cls, vn: Any) -> ObservationNormalizer:
        """The statistics of a ``VecNormalize`` (observations only, no ``Dict`` spaces)."""
        if not hasattr(vn, "obs_rms") or isinstance(vn.obs_rms, dict):
            kind = type(vn).__name__
            raise ValueError(f"only a VecNormalize of Box observations can be stored, got {kind}")

        def stats(rms: Any) -> RunningStats:
            return RunningStats(
                np.array(rms.mean, dtype=np.float64), np.array(rms.var, dtype=np.float64), float(rms.count)
            )

        return cls(
            stats(vn.obs_rms),
            float(vn.clip_obs),
            float(vn.epsilon),
            stats(vn.ret_rms),
            bool(vn.norm_reward),
            float(vn.clip_reward),
            float(vn.gamma),
        )

    def to_vec_normalize(self, venv: Any, training: bool = False) -> Any:
        """A ``VecNormalize`` around ``venv`` carrying these statistics."""
        from stable_baselines3.common.running_mean_std import RunningMeanStd
        from stable_baselines3.common.vec_env import VecNormalize

        norm = VecNormalize(
            venv,
            training=training,
            norm_obs=True,
            norm_reward=self.norm_reward,
            clip_obs=self.clip_obs,
            clip_reward=self.clip_reward,
            gamma=self.gamma,
            epsilon=self.epsilon,
        )
        for name, stats in (("obs_rms", self.obs_rms), ("ret_rms", self.ret_rms)):
            if stats is None:
                continue
            rms = RunningMeanStd(shape=np.shape(stats.mean))
            rms.mean, rms.var, rms.count = stats.mean.copy(), stats.var.copy(), stats.count
            setattr(norm, name, rms)
        return norm

    def save(self, path: str | Path) -> Path:
        """Write the statistics as plain arrays (``.npz``; no pickle)."""
        ret = self.ret_rms or RunningStats(np.zeros(()), np.ones(()), 1e-4)
        path = Path(path)
        with path.open("wb") as f:
            np.savez(
                f,
                format=np.int64(NORMALIZER_FORMAT),
                obs_mean=np.asarray(self.obs_rms.mean, dtype=np.float64),
                obs_var=np.asarray(self.obs_rms.var, dtype=np.float64),
                obs_count=np.float64(self.obs_rms.count),
                ret_mean=np.asarray(ret.mean, dtype=np.float64),
                ret_var=np.asarray(ret.var, dtype=np.float64),
                ret_count=np.float64(ret.count),
                clip_obs=np.float64(self.clip_obs),
                epsilon=np.float64(self.epsilon),
                norm_reward=np.bool_(self.norm_reward),
                clip_reward=np.float64(self.clip_reward),
                gamma=np.float64(self.gamma),
            )
        return path

    @classmethod
    def load(cls, path: str | Path, width: int | None = None) -> ObservationNormalizer:
        """Read :meth:`save`'s file (``allow_pickle=False``), checking every field.

        Args:
            path: the ``.npz`` file.
            width: the observation width the statistics must have (None: not checked).

        Raises:
            ValueError: naming the file, for anything but well-formed plain statistics.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k]) for k in npz.files}
        except Exception as exc:  # not an npz, object arrays, truncated...
            raise ValueError(
                f"observation statistics {str(path)!r} are not a plain-array .npz file "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return cls._from_arrays(arrays, str(path), width)

    @classmethod
    def _from_arrays(cls, a: dict[str, np.ndarray], name: str, width: int | None) -> ObservationNormalizer:
        def field(key: str, ndim: int) -> np.ndarray:
            if key not in a:
                raise ValueError(f"observation statistics {name!r} lack the array {key!r}")
            x = a[key]
            if x.dtype.kind not in "fiub" or x.ndim != ndim or not np.all(np.isfinite(x)):
                raise ValueError(
                    f"observation statistics {name!r}: {key!r} must be a finite real array of "
                    f"{ndim} dimension(s), got dtype {x.dtype} shape {x.shape}"
                )
            return x.astype(np.float64)

        if int(field("format", 0)) != NORMALIZER_FORMAT:
            raise ValueError(f"observation statistics {name!r} have an unknown format {a['format']}")
        mean, var = field("obs_mean", 1), field("obs_var", 1)
        if mean.shape != var.shape or np.any(var < 0):
            raise ValueError(f"observation statistics {name!r}: obs_mean/obs_var shapes differ or var < 0")
        if width is not None and mean.shape != (width,):
            raise ValueError(
                f"observation statistics {name!r} have width {mean.shape[0]}; the model sees {width}"
            )
        names = ("obs_count", "clip_obs", "epsilon", "clip_reward", "gamma")
        scalars = {k: float(field(k, 0)) for k in names}
        if scalars["clip_obs"] <= 0 or scalars["epsilon"] < 0:
            raise ValueError(f"observation statistics {name!r}: clip_obs must be > 0 and epsilon >= 0")
        ret_mean, ret_var = field("ret_mean", a["ret_mean"].ndim), field("ret_var", a["ret_var"].ndim)
        return cls(
            RunningStats(mean, var, scalars["obs_count"]),
            scalars["clip_obs"],
            scalars["epsilon"],
            RunningStats(ret_mean, ret_var, float(field("ret_count", 0))),
            bool(field("norm_reward", 0)),
            scalars["clip_reward"],
            scalars["gamma"],
        )


def save_normalizer(vec_normalize: Any, zip_path: Path) -> Path:
    """Write a ``VecNormalize``'s statistics beside ``zip_path`` in the safe ``.npz`` form."""
    return ObservationNormalizer.from_vec_normalize(vec_normalize).save(normalizer_path(Path(zip_path)))


def load_normalizer(zip_path: Path, width: int | None = None, trust: bool = False) -> ObservationNormalizer:
    """The observation statistics saved beside ``zip_path``.

    The ``.npz`` file when there is one; else an older pickled ``.pkl`` only with ``trust=True``.

    Raises:
        UnsafeModelFileError: only the pickled statistics exist and ``trust`` is False.
        ValueError: no statistics, or a malformed file.
    """
    npz, pkl = normalizer_path(zip_path), legacy_normalizer_path(zip_path)
    if npz.is_file():
        return ObservationNormalizer.load(npz, width)
    if pkl.is_file():
        if not trust:
            raise UnsafeModelFileError(
                f"refusing to unpickle {str(pkl)!r}: observation statistics in pickle form can run "
                f"code; {TRUST_HINT}, then re-save them safely with "
                f"labsched.agents.loading.upgrade_saved_agent"
            )
        with pkl.open("rb") as f:
            norm = ObservationNormalizer.from_vec_normalize(pickle.load(f))  # trusted by the caller
        if width is not None and norm.obs_rms.mean.shape != (width,):
            raise ValueError(f"observation statistics {str(pkl)!r} do not have width {width}")
        return norm
    raise ValueError(f"{str(zip_path)!r} needs its observation statistics {npz.name}, not found")


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
