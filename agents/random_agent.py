"""Saved ``labsched/Random-v0`` agents: one network for every spec that fits the padded spaces.

An agent trained on :class:`~labsched.envs.labs.random_spec_env.RandomSpecEnv` reads the padded
observation (labs up to ``max_labs``, the spec's summary). ``agent.json`` records the env id and
the layout (``random_env``: ``max_labs``, ``max_experiments``, ``max_horizon`` and the training
distribution), which rebuilds the observation space without unpickling anything.

:class:`RandomSpecAgent` answers like a baseline:

* on ``RandomSpecEnv`` observations (``Dict`` or flat, single or batched) of any spec;
* after :meth:`RandomSpecAgent.with_spec`, also on a ``ConcurrentLabsEnv`` observation of that
  spec (``Dict`` or flat): it builds the padded observation ``RandomSpecEnv`` shows for the same
  state (exactly: the spec's static entries are read from a ``RandomSpecEnv`` reset on it), so
  the agent runs under :func:`labsched.agents.compare` and the runner's common random numbers.

Any other observation (a ``ConcurrentLabsEnv`` one with no spec given, or of another layout) is
refused with a ``ValueError`` naming the layout found and the one expected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from labsched.agents.config import algorithm_info
from labsched.agents.features import LabFeatures, flat_observation
from labsched.agents.model_actions import model_actions
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.observation import is_batched
from labsched.envs.labs.random_spec_env import RANDOM_ID, RandomSpecEnv, SpecDistribution
from labsched.envs.labs.spec import LabSpec

__all__ = ["RANDOM_ID", "RandomSpecAgent", "layout_env", "random_layout"]


def random_layout(env: RandomSpecEnv) -> dict[str, Any]:
    """The JSON form of ``env``'s observation layout (``agent.json``'s ``random_env``)."""
    return {
        "max_labs": int(env.max_labs),
        "max_experiments": int(env.max_experiments),
        "max_horizon": float(env.max_horizon),
        "distribution": dataclasses.asdict(env.distribution),
    }


def layout_env(layout: Mapping[str, Any] | None) -> RandomSpecEnv:
    """A flat ``RandomSpecEnv`` with the layout of :func:`random_layout` (defaults when None).

    Raises:
        ValueError: a layout that is not a mapping, or with unknown keys or bad values.
    """
    layout = dict(layout or {})
    unknown = sorted(set(layout) - {"max_labs", "max_experiments", "max_horizon", "distribution"})
    if unknown:
        raise ValueError(f"random_env layout has unknown keys {unknown}")
    dist = layout.pop("distribution", None)
    if dist is not None:
        if not isinstance(dist, Mapping):
            raise ValueError(f"random_env.distribution must be a mapping, got {type(dist).__name__}")
        fields = {f.name for f in dataclasses.fields(SpecDistribution)}
        if not set(dist) <= fields:
            raise ValueError(f"random_env.distribution has unknown keys {sorted(set(dist) - fields)}")
        dist = SpecDistribution(**{k: tuple(v) if isinstance(v, list) else v for k, v in dist.items()})
    return RandomSpecEnv(dist, flatten=True, **layout)


class RandomSpecAgent:
    """A ``labsched/Random-v0`` model behind a baseline-like ``predict`` (see the module docstring).

    It has the attributes of :class:`~labsched.agents.loading.LoadedAgent` (``model``, ``algo``,
    ``masked``, ``features`` (always False), ``normalizer``, ``metadata``, ``path``) and:

    Attributes:
        layout: a flat :class:`RandomSpecEnv` with the training layout.
        spec: None (RandomSpecEnv observations only), or the spec whose ``ConcurrentLabsEnv``
            observations are accepted too (:meth:`with_spec`).
        width: the padded flat observation's width (``5 max_labs + 12``).
    """

    def __init__(
        self,
        model: Any,
        algo: str,
        layout: RandomSpecEnv,
        normalizer: Any = None,
        metadata: dict[str, Any] | None = None,
        path: Path | None = None,
        spec: LabSpec | None = None,
    ) -> None:
        self.model = model
        self.algo = algorithm_info(algo).name
        self.masked = algorithm_info(algo).masked
        self.spec = spec
        self.features = False
        self.normalizer = normalizer
        self.metadata = metadata or {}
        self.path = path
        self.env_id = RANDOM_ID
        self.layout = layout
        self.max_labs = layout.max_labs
        self._slices: dict[str, slice] = {}
        start = 0
        for key, space in layout.dict_observation_space.spaces.items():
            size = spaces.flatdim(space)
            self._slices[key] = slice(start, start + size)
            start += size
        self.width = start
        self._template: np.ndarray | None = None
        if spec is not None:
            obs, _ = layout.reset(seed=0, options={"spec": spec})  # checks that the spec fits
            self._template = np.asarray(obs, dtype=np.float32)

    @property
    def training_spec(self) -> LabSpec | None:
        """None: a new spec every training episode."""
        return None

    def with_spec(self, spec: LabSpec) -> RandomSpecAgent:
        """The same model, also taking ``ConcurrentLabsEnv`` observations of ``spec``.

        Raises:
            TypeError: ``spec`` is not a LabSpec.
            ValueError: ``spec`` does not fit the padded spaces (more labs than ``max_labs``, ...).
        """
        if not isinstance(spec, LabSpec):
            raise TypeError(f"spec must be a LabSpec, got {type(spec).__name__}")
        return RandomSpecAgent(
            self.model, self.algo, self.layout, self.normalizer, self.metadata, self.path, spec
        )

    def _mismatch(self, found: str) -> ValueError:
        hint = (
            f"or a ConcurrentLabsEnv observation of {self.spec}"
            if self.spec is not None
            else "(for a ConcurrentLabsEnv observation, bind its spec first: agent.with_spec(spec))"
        )
        return ValueError(
            f"this agent was trained on {RANDOM_ID} and takes RandomSpecEnv observations (max_labs="
            f"{self.max_labs}: a Dict with 'lab_mask' and 'spec', or flat of width {self.width}) {hint}; "
            f"got {found}"
        )

    def _flat(self, observation: Any) -> np.ndarray:
        """The padded flat ``(batch, width)`` float32 observation, checked (converted from a
        ``ConcurrentLabsEnv`` observation of the bound spec)."""
        if isinstance(observation, Mapping):
            if "lab_mask" in observation:
                parts = []
                for key, sl in self._slices.items():
                    if key not in observation:
                        raise self._mismatch(f"a Dict without the key {key!r}")
                    parts.append(
                        np.asarray(observation[key], dtype=np.float32).reshape(-1, sl.stop - sl.start)
                    )
                return np.concatenate(parts, axis=1)
            if self.spec is None:
                raise self._mismatch(f"a ConcurrentLabsEnv Dict observation (keys {sorted(observation)})")
            busy = np.shape(observation.get("busy", ()))[-1:]
            if busy != (self.spec.n_labs,):
                raise self._mismatch(
                    f"a Dict observation whose 'busy' has shape {np.shape(observation.get('busy'))}"
                )
            return self._pad(flat_observation(dict(observation), self.spec.n_labs))
        flat = np.asarray(observation, dtype=np.float32)
        flat = flat.reshape(-1, flat.shape[-1]) if flat.ndim else flat.reshape(1, 1)
        if flat.shape[1] == self.width:
            return flat
        if self.spec is not None and flat.shape[1] == LabFeatures.for_spec(self.spec).obs_width:
            return self._pad(flat)
        raise self._mismatch(f"a flat observation of width {flat.shape[1]}")

    def _pad(self, inner: np.ndarray) -> np.ndarray:
        """RandomSpecEnv's observation of the bound spec for ``ConcurrentLabsEnv`` flat rows."""
        nl = self.spec.n_labs
        out = np.repeat(self._template[None, :], inner.shape[0], axis=0)
        s = self._slices
        out[:, s["busy"].start : s["busy"].start + nl] = inner[:, :nl]
        out[:, s["completed"]] = inner[:, nl : nl + 1]
        out[:, s["elapsed"].start : s["elapsed"].start + nl] = inner[:, nl + 1 : 2 * nl + 1]
        out[:, s["remaining_budget"]] = inner[:, -3:-2]
        out[:, s["remaining_time"]] = inner[:, -2:-1]
        out[:, s["started"]] = inner[:, -1:]
        return out

    def model_observation(self, observation: Any) -> np.ndarray:
        """What the model sees: the padded flat observation, normalised, ``(batch, width)``."""
        x = self._flat(observation)
        if self.normalizer is not None:
            x = self.normalizer.normalize_obs(x)
        return x.astype(np.float32)

    def _masks(self, flat: np.ndarray) -> np.ndarray:
        """``(batch, max_labs + 1)``: ``k <= min(free labs, unstarted experiments)``."""
        s = self._slices
        labs = np.rint(flat[:, s["lab_mask"]].sum(axis=1)).astype(np.int64)
        free = labs - np.rint(flat[:, s["busy"]].sum(axis=1)).astype(np.int64)
        n = np.rint(flat[:, s["spec"].start].astype(float) * self.layout.max_experiments).astype(np.int64)
        started = np.rint(flat[:, s["started"].start].astype(float) * n).astype(np.int64)
        return np.arange(self.max_labs + 1)[None, :] <= np.minimum(free, n - started)[:, None]

    def action_masks(self, observation: Any) -> np.ndarray:
        """``(batch, max_labs + 1)`` valid-action masks decoded from the observation."""
        return self._masks(self._flat(observation))

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Choose actions (stable-baselines3's signature; masks computed here).

        Returns:
            ``(actions, state)``: shape ``()`` for a single observation, ``(batch,)`` for a batch.

        Raises:
            ValueError: an observation of another layout (see the module docstring).
        """
        batched = is_batched(observation) if isinstance(observation, Mapping) else np.ndim(observation) == 2
        flat = self._flat(observation)
        masks = self._masks(flat)
        x = self.normalizer.normalize_obs(flat) if self.normalizer is not None else flat
        actions = model_actions(self.model, x.astype(np.float32), masks, self.masked, deterministic)
        return (actions if batched else actions.reshape(())), state

    def make_env(self, **kwargs: Any) -> RandomSpecEnv | ConcurrentLabsEnv:
        """A plain env ``predict`` takes as it is: ``ConcurrentLabsEnv`` of the bound spec, else
        a ``RandomSpecEnv`` of the training layout (``kwargs`` go to the env)."""
        if self.spec is not None:
            return ConcurrentLabsEnv(self.spec, **kwargs)
        return RandomSpecEnv(
            self.layout.distribution,
            max_labs=self.layout.max_labs,
            max_experiments=self.layout.max_experiments,
            max_horizon=self.layout.max_horizon,
            **kwargs,
        )

    def reset(self) -> None:
        """Nothing to forget (the policy is memoryless); for symmetry with the baselines."""

    def __repr__(self) -> str:
        bound = f", spec={self.spec}" if self.spec is not None else ""
        return f"RandomSpecAgent(algo={self.algo!r}, path={str(self.path)!r}{bound})"
