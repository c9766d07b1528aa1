"""Observation statistics that cannot run code: a ``VecNormalize``'s running mean and variance
stored as plain arrays (``<stem>_vecnormalize.npz``, read with ``allow_pickle=False``) beside a
model zip; the older pickled form loads only when trusted. Part of the safe model files of
:mod:`labsched.agents.model_files`."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "NORMALIZER_SUFFIX",
    "TRUST_HINT",
    "ObservationNormalizer",
    "RunningStats",
    "UnsafeModelFileError",
    "legacy_normalizer_path",
    "load_normalizer",
    "normalizer_path",
    "save_normalizer",
]

NORMALIZER_SUFFIX = "_vecnormalize.npz"
LEGACY_NORMALIZER_SUFFIX = "_vecnormalize.pkl"
NORMALIZER_FORMAT = 1
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
