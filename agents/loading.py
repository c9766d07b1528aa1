"""Saved agents: the metadata next to a model zip, and :func:`load_agent`.

``labsched train`` writes, in its output folder, ``model.zip`` (the final policy),
``best_model.zip`` (the best evaluation), for each a ``<stem>_vecnormalize.pkl`` when
observations are normalised, and ``agent.json``: the algorithm, the spec, the observation form
(features, normalisation), the env options and the training results. :func:`load_agent`
reads it and returns a :class:`LoadedAgent`, whose ``predict`` takes the plain environment's
observations (``Dict`` or flat, single or batched), rebuilds the model's observation from them
(features, normalisation), computes the action mask from the observation and the spec, and
answers like a baseline: it plugs into :func:`labsched.evaluation.rollout.run_episodes` and
``evaluate_policy``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from labsched.baselines.base import decode_observation
from labsched.envs import durations as _durations
from labsched.envs.spec import LabSpec

from .config import algorithm_info
from .features import LabFeatures, flat_observation

__all__ = ["METADATA_FILE", "LoadedAgent", "load_agent", "spec_from_dict", "spec_to_dict"]

METADATA_FILE = "agent.json"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- spec <-> JSON


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, _durations.DurationModel):
        return {
            "type": type(obj).__name__,
            **{f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init},
        }
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else "-inf"
    return obj


def _from_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict) and "type" in obj:
        cls = getattr(_durations, obj["type"], None)
        if not (isinstance(cls, type) and issubclass(cls, _durations.DurationModel)):
            raise ValueError(f"unknown duration model {obj['type']!r} in saved spec")
        return cls(**{k: _from_jsonable(v) for k, v in obj.items() if k != "type"})
    if isinstance(obj, list):
        return tuple(_from_jsonable(x) for x in obj)
    if obj in ("inf", "-inf"):
        return float(obj)
    return obj


def spec_to_dict(spec: LabSpec) -> dict[str, Any]:
    """A JSON-serialisable form of a spec (duration model included)."""
    return {f.name: _to_jsonable(getattr(spec, f.name)) for f in dataclasses.fields(spec)}


def spec_from_dict(data: dict[str, Any]) -> LabSpec:
    """Inverse of :func:`spec_to_dict`."""
    return LabSpec(**{k: _from_jsonable(v) for k, v in data.items()})


# ----------------------------------------------------------------------------- the loaded agent


class LoadedAgent:
    """A trained model behind a baseline-like ``predict``.

    Attributes:
        model: the stable-baselines3 / sb3-contrib model.
        algo: algorithm name.
        spec: the spec the observations are decoded with (the training spec unless changed
            with :meth:`with_spec`).
        features: whether the model sees the spec-derived features.
        normalizer: the ``VecNormalize`` statistics (or None).
        masked: whether the model takes action masks.
        metadata: the content of ``agent.json``.
        path: the model zip.
    """

    def __init__(
        self,
        model: Any,
        algo: str,
        spec: LabSpec,
        features: bool = False,
        normalizer: Any = None,
        metadata: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.model = model
        self.algo = algorithm_info(algo).name
        self.masked = algorithm_info(algo).masked
        self.spec = spec
        self.features = bool(features)
        self.normalizer = normalizer
        self.metadata = metadata or {}
        self.path = path
        self._feats = LabFeatures.for_spec(spec) if self.features else None

    @property
    def training_spec(self) -> LabSpec:
        saved = self.metadata.get("spec")
        return spec_from_dict(saved) if saved else self.spec

    def with_spec(self, spec: LabSpec) -> LoadedAgent:
        """The same model, decoding observations (and computing features) with another spec.

        Only specs with the training ``n_labs`` fit the model's input.
        """
        if spec.n_labs != self.spec.n_labs:
            raise ValueError(
                f"model {self.path or ''} was trained with n_labs={self.spec.n_labs}; "
                f"cannot act on n_labs={spec.n_labs}"
            )
        return LoadedAgent(
            self.model, self.algo, spec, self.features, self.normalizer, self.metadata, self.path
        )

    def model_observation(self, observation: Any) -> np.ndarray:
        """What the model sees for a plain env observation: ``(batch, width)`` float32."""
        nl = self.spec.n_labs
        flat = flat_observation(observation, nl)
        raw_width = 2 * nl + 4
        if flat.shape[1] != raw_width:
            raise ValueError(
                f"observation has width {flat.shape[1]}; expected the env's flat observation of "
                f"width 2 * n_labs + 4 = {raw_width} (or its Dict form)"
            )
        x = flat
        if self._feats is not None:
            x = np.concatenate([flat, self._feats(flat)], axis=1)
        if self.normalizer is not None:
            x = self.normalizer.normalize_obs(x)
        return x.astype(np.float32)

    def action_masks(self, observation: Any) -> np.ndarray:
        """``(batch, l + 1)`` valid-action masks decoded from the observation and the spec."""
        states = decode_observation(observation, self.spec)
        ks = np.arange(self.spec.n_labs + 1)
        return np.stack([ks <= s.max_valid for s in states])

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Choose actions, with stable-baselines3's signature (masks computed here).

        Returns:
            ``(actions, state)``: shape ``()`` for a single observation, ``(batch,)`` for a batch.
        """
        batched = _is_batched(observation)
        x = self.model_observation(observation)
        masks = self.action_masks(observation)
        if self.masked:
            actions, _ = self.model.predict(x, deterministic=deterministic, action_masks=masks)
        else:
            actions, _ = self.model.predict(x, deterministic=deterministic)
        actions = np.minimum(np.asarray(actions, dtype=np.int64).reshape(-1), masks.sum(axis=1) - 1)
        return (actions if batched else actions.reshape(())), state

    def reset(self) -> None:
        """Nothing to forget (the policy is memoryless); for symmetry with the baselines."""

    def make_env(self, **kwargs: Any):
        """A plain env of this agent's spec (``predict`` takes its observations as they are)."""
        from labsched.envs.concurrent_labs import ConcurrentLabsEnv

        return ConcurrentLabsEnv(self.spec, **kwargs)

    def make_model_env(self, n_envs: int = 1, seed: int | None = None):
        """The vectorised env in the model's own observation form (what it was trained on), for
        calling ``agent.model.predict`` directly; a frozen ``VecNormalize`` carries the stats."""
        from .envs import make_vec

        venv = make_vec(
            self.spec,
            n_envs,
            seed,
            features=self.features,
            normalize=False,
            env_kwargs=self.metadata.get("env_kwargs"),
            evaluation=True,
        )
        if self.normalizer is not None:
            from stable_baselines3.common.vec_env import VecNormalize

            norm = VecNormalize(venv, norm_obs=True, norm_reward=False, training=False)
            norm.obs_rms = self.normalizer.obs_rms
            norm.clip_obs, norm.epsilon = self.normalizer.clip_obs, self.normalizer.epsilon
            venv = norm
        return venv

    def __repr__(self) -> str:
        return f"LoadedAgent(algo={self.algo!r}, path={str(self.path)!r}, features={self.features})"


def _is_batched(observation: Any) -> bool:
    if isinstance(observation, dict):
        return np.asarray(observation["busy"]).ndim == 2
    return np.asarray(observation).ndim == 2


def _resolve_zip(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in ("best_model.zip", "model.zip"):
            if (p / name).is_file():
                return p / name
        raise ValueError(f"no best_model.zip or model.zip in folder {str(p)!r}")
    if p.suffix != ".zip" and p.with_suffix(".zip").is_file():
        p = p.with_suffix(".zip")
    if not p.is_file():
        raise ValueError(f"saved model {str(path)!r} not found")
    return p


def normalizer_path(zip_path: Path) -> Path:
    """Where the ``VecNormalize`` statistics of a model zip live."""
    return zip_path.with_name(f"{zip_path.stem}_vecnormalize.pkl")


def load_agent(
    path: str | Path, *, algo: str | None = None, spec: LabSpec | None = None, device: str = "cpu"
) -> LoadedAgent:
    """Load a saved agent.

    Args:
        path: a model zip written by ``labsched train`` (``.../best_model.zip``, ``.../model.zip``)
            or its folder (then ``best_model.zip``, else ``model.zip``).
        algo: the algorithm, for a zip without ``agent.json`` beside it.
        spec: decode observations with this spec instead of the training one (same ``n_labs``);
            required, with ``algo``, for a zip without ``agent.json``.
        device: torch device.

    Returns:
        A :class:`LoadedAgent` (``predict`` like a baseline; ``.model`` is the SB3 model).
    """
    zip_path = _resolve_zip(path)
    meta_file = zip_path.with_name(METADATA_FILE)
    if meta_file.is_file():
        metadata = json.loads(meta_file.read_text())
        algo = algo or metadata["algo"]
        train_spec = spec_from_dict(metadata["spec"])
        features = bool(metadata.get("observation", {}).get("features", False))
    else:
        if algo is None or spec is None:
            raise ValueError(
                f"no {METADATA_FILE} next to {str(zip_path)!r}: pass algo= and spec= to load a bare model zip"
            )
        metadata, train_spec, features = {}, spec, False
    info = algorithm_info(algo)
    model = info.load_class().load(str(zip_path), device=device)
    normalizer = None
    norm_file = normalizer_path(zip_path)
    if metadata.get("observation", {}).get("normalize"):
        if not norm_file.is_file():
            raise ValueError(
                f"{str(zip_path)!r} needs its observation statistics {norm_file.name}, not found"
            )
        with norm_file.open("rb") as f:
            normalizer = pickle.load(f)
    agent = LoadedAgent(model, info.name, train_spec, features, normalizer, metadata, zip_path)
    if spec is not None and spec != train_spec:
        agent = agent.with_spec(spec)
    return agent
