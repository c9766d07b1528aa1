"""Saved agents: the metadata next to a model zip, and :func:`load_agent`.

``labsched train`` writes, in its output folder, ``model.zip`` (the final policy),
``best_model.zip`` (the best evaluation), for each a ``<stem>_vecnormalize.npz`` (plain arrays)
when observations are normalised, and ``agent.json``: the algorithm, the spec, the observation form
(features, normalisation), the env options, the hyperparameters and the training results.
:func:`load_agent` reads it and returns a :class:`LoadedAgent`, whose ``predict`` takes the plain
environment's observations (``Dict`` or flat, single or batched), rebuilds the model's observation
from them (features, normalisation), computes the action mask from the observation and the spec,
and answers like a baseline: it plugs into :func:`labsched.evaluation.rollout.run_episodes` and
``evaluate_policy``.

Security: loading never unpickles anything by default (see :mod:`labsched.agents.model_files`):
the normaliser is plain arrays and every pickled entry of the SB3 zip is rebuilt from
``agent.json``. ``load_agent(path, trust=True)`` is plain SB3 / pickle loading for third-party
files: **it runs any code the files contain.**
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.config import algorithm_info
from labsched.agents.envs import build_env, make_vec
from labsched.agents.features import LabFeatures, flat_observation
from labsched.agents.model_actions import model_actions
from labsched.agents.model_files import (
    ObservationNormalizer,
    UnsafeModelFileError,
    guess_algorithm,
    legacy_normalizer_path,
    load_model,
    load_normalizer,
    normalizer_path,
    read_model_data,
    save_normalizer,
)
from labsched.agents.random_agent import RANDOM_ID, RandomSpecAgent, layout_env
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.observation import is_batched
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "METADATA_FILE",
    "LoadedAgent",
    "ModelNotFoundError",
    "ObservationNormalizer",
    "UnsafeModelFileError",
    "load_agent",
    "load_sb3_model",
    "normalizer_path",
    "resolve_model_path",
    "save_normalizer",
    "spec_from_dict",
    "spec_to_dict",
    "upgrade_saved_agent",
]

METADATA_FILE = "agent.json"
#: 2: normaliser statistics in ``.npz``, hyperparameters in ``agent.json``; 1: a pickled
#: normaliser (loaded only with ``trust=True``), hyperparameters in ``hyperparams.yml``.
FORMAT_VERSION = 2
HYPERPARAMS_FILE = "hyperparams.yml"


# ----------------------------------------------------------------------------- spec <-> JSON


def spec_to_dict(spec: LabSpec) -> dict[str, Any]:
    """A JSON-serialisable form of a spec: :meth:`LabSpec.to_dict`."""
    return spec.to_dict()


def spec_from_dict(data: dict[str, Any]) -> LabSpec:
    """Inverse of :func:`spec_to_dict`: :meth:`LabSpec.from_dict`."""
    return LabSpec.from_dict(data)


# ----------------------------------------------------------------------------- the loaded agent


class LoadedAgent:
    """A trained model behind a baseline-like ``predict``.

    Attributes:
        model: the stable-baselines3 / sb3-contrib model.
        algo: algorithm name.
        spec: the spec the observations are decoded with (the training spec unless changed
            with :meth:`with_spec`).
        features: whether the model sees the spec-derived features.
        normalizer: the observation statistics, an :class:`ObservationNormalizer` (or None).
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

    def _flat(self, observation: Any) -> np.ndarray:
        """The flat ``(batch, obs_width)`` float32 form of a plain env observation, checked
        (``2 l + 4``, or ``3 l + 4`` when labs differ)."""
        nl = self.spec.n_labs
        if isinstance(observation, dict) and np.shape(observation["busy"])[-1:] != (nl,):
            raise ValueError(
                f"observation 'busy' has shape {np.shape(observation['busy'])}; expected {nl} labs "
                f"(n_labs={nl} of the agent's spec)"
            )
        flat = flat_observation(observation, nl)
        raw_width = LabFeatures.for_spec(self.spec).obs_width
        if flat.shape[1] != raw_width:
            layout = "3 * n_labs + 4 (labs that differ)" if raw_width != 2 * nl + 4 else "2 * n_labs + 4"
            raise ValueError(
                f"observation has width {flat.shape[1]}; expected the env's flat observation of "
                f"width {layout} = {raw_width} (or its Dict form)"
            )
        return flat

    def model_observation(self, observation: Any) -> np.ndarray:
        """What the model sees for a plain env observation: ``(batch, width)`` float32."""
        flat = self._flat(observation)
        x = flat
        if self._feats is not None:
            # A batch takes the vectorised features (equal to the row-by-row ones up to ~1e-15,
            # below float32 resolution); one observation keeps the row form it always had.
            feats = self._feats.batch(flat) if flat.shape[0] > 1 else self._feats(flat)
            x = np.concatenate([flat, feats], axis=1)
        if self.normalizer is not None:
            x = self.normalizer.normalize_obs(x)
        return x.astype(np.float32)

    def action_masks(self, observation: Any) -> np.ndarray:
        """``(batch, l + 1)`` valid-action masks decoded from the observation and the spec:
        ``k <= min(free labs, unstarted experiments)`` (``LabState.max_valid``, vectorised)."""
        nl, n = self.spec.n_labs, self.spec.n_experiments
        flat = self._flat(observation)
        free = nl - (flat[:, :nl] > 0.5).sum(axis=1)
        unstarted = n - np.rint(flat[:, -1].astype(float) * n).astype(np.int64)  # started / n: last column
        return np.arange(nl + 1)[None, :] <= np.minimum(free, unstarted)[:, None]

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
        batched = is_batched(observation)
        x = self.model_observation(observation)
        masks = self.action_masks(observation)
        actions = model_actions(self.model, x, masks, self.masked, deterministic)
        return (actions if batched else actions.reshape(())), state

    def reset(self) -> None:
        """Nothing to forget (the policy is memoryless); for symmetry with the baselines."""

    def make_env(self, **kwargs: Any) -> ConcurrentLabsEnv:
        """A plain env of this agent's spec (``predict`` takes its observations as they are)."""
        return ConcurrentLabsEnv(self.spec, **kwargs)

    def make_model_env(self, n_envs: int = 1, seed: int | None = None):
        """The vectorised env in the model's own observation form (what it was trained on), for
        calling ``agent.model.predict`` directly; a frozen ``VecNormalize`` carries the stats."""
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
            venv = self.normalizer.to_vec_normalize(venv, training=False)
        return venv

    def __repr__(self) -> str:
        return f"LoadedAgent(algo={self.algo!r}, path={str(self.path)!r}, features={self.features})"


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A saved model that is not where it was said to be (a ``ValueError`` too: a user error)."""


def resolve_model_path(path: str | Path) -> Path:
    """The model zip of ``path``: the zip itself (``.zip`` may be left out), or in a
    ``labsched train`` folder its ``best_model.zip`` (else ``model.zip``).

    Raises:
        ModelNotFoundError: when there is no such zip.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("best_model.zip", "model.zip"):
            if (p / name).is_file():
                return p / name
        raise ModelNotFoundError(f"no best_model.zip or model.zip in folder {str(p)!r}")
    if p.suffix != ".zip" and p.with_suffix(".zip").is_file():
        p = p.with_suffix(".zip")
    if not p.is_file():
        raise ModelNotFoundError(f"saved model {str(path)!r} not found")
    return p


#: The former private name of :func:`resolve_model_path`.
_resolve_zip = resolve_model_path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "algo" not in data or "spec" not in data:
        raise ValueError(f"{str(path)!r} is not a labsched {METADATA_FILE} (needs 'algo' and 'spec')")
    if data.get("format", 1) not in (1, FORMAT_VERSION):
        raise ValueError(
            f"{str(path)!r} has format {data.get('format')!r}; this labsched reads formats 1 and "
            f"{FORMAT_VERSION} (a newer labsched wrote it?)"
        )
    return data


def saved_hyperparams(zip_path: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters of a ``labsched train`` folder: ``agent.json``'s, else (format 1)
    ``hyperparams.yml`` read with ``yaml.safe_load`` (plain data only)."""
    if isinstance(metadata.get("hyperparams"), dict):
        return dict(metadata["hyperparams"])
    yml = zip_path.with_name(HYPERPARAMS_FILE)
    if not metadata or not yml.is_file():
        return {}
    import yaml

    try:
        params = yaml.safe_load(yml.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{str(yml)!r} is not plain YAML data: {exc}") from exc
    if not isinstance(params, dict):
        raise ValueError(f"{str(yml)!r} does not hold a mapping of hyperparameters")
    return params


def load_agent(
    path: str | Path,
    *,
    algo: str | None = None,
    spec: LabSpec | None = None,
    device: str = "cpu",
    trust: bool = False,
) -> LoadedAgent | RandomSpecAgent:
    """Load a saved agent, without running any code from its files (unless ``trust``).

    The algorithm, the observation form and the policy come from ``agent.json`` (one load with
    one class); the zip's pickled entries are rebuilt from it and the normaliser is read from
    plain arrays. A file that would need unpickling raises
    :class:`~labsched.agents.model_files.UnsafeModelFileError` naming it.

    Args:
        path: a model zip written by ``labsched train`` (``.../best_model.zip``, ``.../model.zip``)
            or its folder (then ``best_model.zip``, else ``model.zip``).
        algo: the algorithm; required (with ``spec``) for a bare zip without ``agent.json``
            unless ``trust``.
        spec: decode observations with this spec instead of the training one (same ``n_labs``);
            required for a bare zip without ``agent.json``.
        device: torch device.
        trust: load with plain ``pickle`` / SB3 ``load`` (older labsched folders, third-party
            zips). **Warning: unpickling runs any code the files contain; pass True only for
            files from a source you trust.**

    Returns:
        A :class:`LoadedAgent` (``predict`` like a baseline; ``.model`` is the SB3 model); for
        an agent trained on ``labsched/Random-v0`` (``agent.json``'s ``env_id``) a
        :class:`~labsched.agents.random_agent.RandomSpecAgent`, bound to ``spec`` if given.
    """
    zip_path = resolve_model_path(path)
    meta_file = zip_path.with_name(METADATA_FILE)
    if meta_file.is_file():
        metadata = _read_json(meta_file)
        if metadata.get("env_id") == RANDOM_ID:
            return _load_random_agent(zip_path, metadata, algo, spec, device, trust)
        algo = algo or metadata["algo"]
        train_spec = spec_from_dict(metadata["spec"])
        observation = metadata.get("observation", {})
        features, normalize = bool(observation.get("features")), bool(observation.get("normalize"))
    else:
        if spec is None or (algo is None and not trust):
            raise ValueError(
                f"no {METADATA_FILE} next to {str(zip_path)!r}: pass algo= and spec= to load a bare "
                f"model zip (or spec= and trust=True for a trusted one)"
            )
        algo = algo or guess_algorithm(read_model_data(zip_path))
        if algo is None:
            raise ValueError(f"cannot tell the algorithm of {str(zip_path)!r}: pass algo=")
        metadata, train_spec, features, normalize = {}, spec, False, False
    info = algorithm_info(algo)
    env = build_env(train_spec, features=features, env_kwargs=metadata.get("env_kwargs"))
    model = load_model(
        zip_path,
        info,
        observation_space=env.observation_space,
        action_space=env.action_space,
        hyperparams=saved_hyperparams(zip_path, metadata),
        trust=trust,
        device=device,
    )
    width = int(env.observation_space.shape[0])
    normalizer = load_normalizer(zip_path, width, trust) if normalize else None
    agent = LoadedAgent(model, info.name, train_spec, features, normalizer, metadata, zip_path)
    if spec is not None and spec != train_spec:
        agent = agent.with_spec(spec)
    return agent


def _load_random_agent(
    zip_path: Path, metadata: dict[str, Any], algo: str | None, spec: LabSpec | None, device: str, trust: bool
) -> RandomSpecAgent:
    """:func:`load_agent` of a ``labsched/Random-v0`` folder: the spaces come from the layout
    that ``agent.json`` records (``random_env``)."""
    info = algorithm_info(algo or metadata["algo"])
    layout = layout_env(metadata.get("random_env"))
    model = load_model(
        zip_path,
        info,
        observation_space=layout.observation_space,
        action_space=layout.action_space,
        hyperparams=saved_hyperparams(zip_path, metadata),
        trust=trust,
        device=device,
    )
    normalize = bool(metadata.get("observation", {}).get("normalize"))
    width = int(layout.observation_space.shape[0])
    normalizer = load_normalizer(zip_path, width, trust) if normalize else None
    agent = RandomSpecAgent(model, info.name, layout, normalizer, metadata, zip_path)
    return agent if spec is None else agent.with_spec(spec)


def load_sb3_model(
    path: str | Path,
    spec: LabSpec,
    *,
    algo: str | None = None,
    trust: bool = False,
    device: str = "cpu",
) -> Any:
    """A bare SB3 / sb3-contrib model zip (no ``agent.json``) for ``spec``'s env, without unpickling.

    One load with one class: ``algo``, else the algorithm the zip's plain JSON names (its policy's
    module). The observation form (flat ``Box`` or ``Dict``) is read from the zip's plain JSON and
    the spaces are rebuilt from ``spec``; ``trust=True`` is plain ``cls.load`` (**runs any code the
    file contains**).

    Returns:
        The SB3 model (its ``predict`` takes the env's observations in the form it was trained on).
    """
    zip_path = resolve_model_path(path)
    data = read_model_data(zip_path)
    algo = algo or guess_algorithm(data)
    if algo is None:
        raise ValueError(f"cannot tell the algorithm of {str(zip_path)!r}: pass algo= (agent_class)")
    hint = data.get("observation_space")
    flat = not (isinstance(hint, dict) and "spaces.dict.Dict" in str(hint.get(":type:", "")))
    env = ConcurrentLabsEnv(spec, flatten=flat)
    return load_model(
        zip_path,
        algorithm_info(algo),
        observation_space=env.observation_space,
        action_space=env.action_space,
        trust=trust,
        device=device,
    )


def upgrade_saved_agent(path: str | Path, *, remove_pickles: bool = False) -> list[Path]:
    """Re-save an older ``labsched train`` folder in the safe format, loading it with ``trust=True``.

    Writes ``<stem>_vecnormalize.npz`` beside each model zip that has pickled statistics, and
    the hyperparameters (from ``hyperparams.yml``) into ``agent.json`` (format 2). **Warning: this
    unpickles the old files, which runs any code they contain: only for folders you trust.**

    Args:
        path: the folder (or one of its model zips).
        remove_pickles: delete the ``.pkl`` statistics once the safe copy loads identically.

    Returns:
        The files written.
    """
    folder = Path(path) if Path(path).is_dir() else resolve_model_path(path).parent
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        raise ValueError(f"no {METADATA_FILE} in {str(folder)!r}: not a labsched train folder")
    metadata = _read_json(meta_file)
    zips = [folder / n for n in ("model.zip", "best_model.zip") if (folder / n).is_file()]
    old = {z: load_agent(z, trust=True) for z in zips}  # before any safe copy exists
    written: list[Path] = []
    for zip_path, agent in old.items():
        if agent.normalizer is not None and not normalizer_path(zip_path).is_file():
            written.append(agent.normalizer.save(normalizer_path(zip_path)))
    metadata["hyperparams"] = saved_hyperparams(folder / METADATA_FILE, metadata)
    metadata["format"] = FORMAT_VERSION
    meta_file.write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    written.append(meta_file)
    for zip_path, agent in old.items():
        _check_same(agent, load_agent(zip_path))
        if remove_pickles and legacy_normalizer_path(zip_path).is_file():
            legacy_normalizer_path(zip_path).unlink()
    return written


def _check_same(old: LoadedAgent, new: LoadedAgent) -> None:
    """The safe copy must see the same observations and hold the same weights."""
    probe = np.random.default_rng(0).uniform(0, 1, (64, 2 * new.spec.n_labs + 4))
    same_obs = np.array_equal(old.model_observation(probe), new.model_observation(probe))
    a, b = old.model.policy.state_dict(), new.model.policy.state_dict()
    same_weights = a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    if not (same_obs and same_weights):
        raise RuntimeError(f"the safe copy of {str(new.path)!r} does not behave like the original")
