"""The configuration of a campaign and the random streams it derives from its seed.

A :class:`CampaignConfig` is everything :meth:`Campaign.create` was given, validated and in a
JSON-serialisable form: it is the payload of the journal's first event, so a journal alone
rebuilds the campaign.

Random streams (:func:`seed_streams`) mirror the environment's regret mode exactly, so that a
simulated campaign makes the environment's decisions (see :mod:`labsched.agents.campaign`): a
``numpy`` generator seeded with ``seed`` (what ``env.reset(seed=seed)`` makes) first draws the
``n`` experiment durations, then three 63-bit seeds, for the initial design, the observation
noise and the selector, as :class:`~labsched.envs.bo.episode.BOEpisode` does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.loading import spec_from_dict, spec_to_dict
from labsched.baselines.registry import make as make_baseline
from labsched.envs._lib.validation import check_int, check_real, real_array
from labsched.envs.bo.gp import GaussianProcess, GPHyperparameters
from labsched.envs.bo.selectors import make_selector
from labsched.envs.labs.spec import LabSpec

__all__ = ["GOALS", "STOP_RULES", "CampaignConfig", "SeedStreams", "code_version", "seed_streams"]

#: Campaign goals: find the maximum, or learn the function everywhere.
GOALS = ("optimize", "learn")
#: ``stop_when`` keys: posterior sd at the recommended input, expected gain of the next batch.
STOP_RULES = ("sd_at_best", "batch_gain")

_VERSION_CACHE: list[str] = []


def code_version() -> str:
    """``labsched <version> src:<hash>``: the package version and a hash of the deciding code.

    The hash covers the source files that make or explain decisions (this package, the GP, the
    selectors and the schedulers), so two journals with equal versions decided with equal code.
    """
    if not _VERSION_CACHE:
        try:
            version = metadata.version("labsched")
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
            version = "0+unknown"
        here = Path(__file__).resolve()
        root = here.parents[2]
        files = sorted(here.parent.glob("*.py"))
        files += sorted((root / "envs" / "bo").glob("*.py")) + sorted((root / "baselines").rglob("*.py"))
        digest = hashlib.sha256()
        for f in files:
            if f.is_file():
                digest.update(f.name.encode())
                digest.update(f.read_bytes())
        _VERSION_CACHE.append(f"labsched {version} src:{digest.hexdigest()[:12]}")
    return _VERSION_CACHE[0]


@dataclass(frozen=True)
class SeedStreams:
    """The seed-derived randomness of a campaign (the environment's order of draws).

    Attributes:
        durations: ``n`` durations, the ``i``-th for the ``i``-th experiment started (used only
            by a simulated lab).
        init_seed: seed of the initial-design stream.
        noise_seed: seed of the observation-noise stream (simulated lab only).
        select_seed: seed of the selector's stream.
    """

    durations: tuple[float, ...]
    init_seed: int
    noise_seed: int
    select_seed: int

    def initial_design(self, n_initial: int, bounds: np.ndarray) -> np.ndarray:
        """The environment's random initial design: ``n_initial`` uniform points in ``bounds``."""
        u = np.random.default_rng(self.init_seed).random((n_initial, bounds.shape[0]))
        lo, hi = bounds[:, 0], bounds[:, 1]
        return np.clip(lo + u * (hi - lo), lo, hi)

    def noise(self, n_initial: int, n_experiments: int, noise_std: float) -> np.ndarray:
        """Noise draws of the initial design then of each experiment (by start order)."""
        rng = np.random.default_rng(self.noise_seed)
        return rng.standard_normal(n_initial + n_experiments) * noise_std


def seed_streams(seed: int, spec: LabSpec) -> SeedStreams:
    """Draw the streams exactly as ``ConcurrentLabsEnv.reset(seed=seed)`` does in regret mode."""
    rng = np.random.default_rng(seed)
    durations = np.asarray(spec.duration.sample(rng, spec.n_experiments)).tolist()
    seeds = rng.integers(0, 2**63 - 1, size=3)
    return SeedStreams(tuple(durations), int(seeds[0]), int(seeds[1]), int(seeds[2]))


def check_bounds(bounds: Any) -> tuple[tuple[float, float], ...]:
    """``bounds`` as ``((low, high), ...)`` with finite ``low < high`` (ValueError otherwise)."""
    try:
        arr = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a sequence of (low, high) pairs, got {bounds!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"bounds must have shape (d, 2) with d >= 1 (one (low, high) per input), got {bounds!r}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 0] >= arr[:, 1]):
        raise ValueError(f"bounds must be finite with low < high in every dimension, got {arr.tolist()}")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def check_points(name: str, X: Any, dim: int) -> np.ndarray:
    """``X`` as a finite ``(m, dim)`` float array (a ``(dim,)`` vector counts as one row)."""
    arr = real_array(name, X)
    if arr.ndim == 1 and arr.shape[0] == dim:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (m, {dim}) (one row per input), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _check_stop_when(stop_when: Any) -> dict[str, float]:
    if stop_when is None:
        return {}
    if not isinstance(stop_when, dict):
        raise TypeError(
            f"stop_when must be a dict such as {{'sd_at_best': 0.05}}, got {type(stop_when).__name__}"
        )
    out = {}
    for key, value in stop_when.items():
        if key not in STOP_RULES:
            raise ValueError(f"stop_when keys must be among {list(STOP_RULES)}, got {key!r}")
        out[key] = check_real(f"stop_when[{key!r}]", value, 0.0, low_open=True)
    return out


def _scheduler_kind(scheduler: Any, spec: LabSpec, options: dict[str, Any]) -> str:
    """``"agent"`` for an existing saved-agent path, ``"baseline"`` for a registered name."""
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise TypeError(
            f"scheduler must be a baseline name or a saved agent path (a string), got {scheduler!r}"
        )
    p = Path(scheduler)
    if p.exists() or (p.suffix != ".zip" and p.with_suffix(".zip").exists()):
        return "agent"
    try:
        make_baseline(scheduler.strip(), spec, **options)
    except ValueError as exc:
        raise ValueError(
            f"unknown scheduler {scheduler!r} (and no saved agent at that path): {exc}"
        ) from None
    return "baseline"


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign configuration (the journal's ``create`` event).

    Attributes:
        spec: the scheduling problem (budget, labs, horizon, duration law, epoch) in the user's
            time unit.
        bounds: one ``(low, high)`` per input dimension.
        scheduler: a registered baseline name or a saved agent path.
        scheduler_kind: ``"baseline"`` or ``"agent"``.
        selector: a registered selector name.
        goal: ``"optimize"`` or ``"learn"``.
        seed: the campaign seed (non-negative integer).
        scheduler_options: constructor options of the baseline (the seed defaults to ``seed``).
        selector_options: constructor options of the selector.
        gp: ``"paper"`` or a dict of :class:`GPHyperparameters` fields.
        noise_std: expected observation noise sd (adds the environment's noise floor to the GP).
        initial_X: inputs of results known before the campaign (may be empty).
        initial_y: their outcomes.
        stop_when: thresholds (see :data:`STOP_RULES`).
        simulation: for a simulated campaign, ``{"objective": name, "noise_std": s}``.
        code_version: :func:`code_version` at creation.
    """

    spec: LabSpec
    bounds: tuple[tuple[float, float], ...]
    scheduler: str
    scheduler_kind: str
    selector: str
    goal: str
    seed: int
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    selector_options: dict[str, Any] = field(default_factory=dict)
    gp: Any = "paper"
    noise_std: float = 0.0
    initial_X: tuple[tuple[float, ...], ...] = ()
    initial_y: tuple[float, ...] = ()
    stop_when: dict[str, float] = field(default_factory=dict)
    simulation: dict[str, Any] | None = None
    code_version: str = ""

    @classmethod
    def build(
        cls,
        *,
        spec: Any,
        bounds: Any,
        scheduler: Any,
        selector: Any,
        goal: Any,
        seed: Any,
        scheduler_options: dict[str, Any] | None = None,
        selector_options: dict[str, Any] | None = None,
        gp: Any = "paper",
        noise_std: Any = 0.0,
        initial_data: Any = None,
        stop_when: Any = None,
        simulation: dict[str, Any] | None = None,
    ) -> CampaignConfig:
        """Validate user arguments (clear ``TypeError`` / ``ValueError`` naming the argument)."""
        if not isinstance(spec, LabSpec):
            raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
        b = check_bounds(bounds)
        kind = _scheduler_kind(scheduler, spec, dict(scheduler_options or {}))
        if not isinstance(selector, str):
            raise TypeError(f"selector must be a registered selector name, got {type(selector).__name__}")
        make_selector(selector, **(selector_options or {}))  # raises for unknown names / options
        if goal not in GOALS:
            raise ValueError(f"goal must be one of {list(GOALS)}, got {goal!r}")
        seed = check_int("seed", seed, 0)
        if isinstance(gp, GPHyperparameters):
            gp = asdict(gp)
        elif gp != "paper" and not isinstance(gp, dict):
            raise ValueError(f"gp must be 'paper' or a GPHyperparameters, got {gp!r}")
        noise_std = check_real("noise_std", noise_std, 0.0)
        X0, y0 = _check_initial(initial_data, len(b))
        config = cls(
            spec=spec,
            bounds=b,
            scheduler=scheduler.strip() if kind == "baseline" else scheduler,
            scheduler_kind=kind,
            selector=selector.strip().lower(),
            goal=goal,
            seed=seed,
            scheduler_options=dict(scheduler_options or {}),
            selector_options=dict(selector_options or {}),
            gp=gp,
            noise_std=noise_std,
            initial_X=tuple(tuple(float(v) for v in row) for row in X0),
            initial_y=tuple(float(v) for v in y0),
            stop_when=_check_stop_when(stop_when),
            simulation=simulation,
            code_version=code_version(),
        )
        config.hyperparameters()  # validates a gp dict
        return config

    @property
    def dim(self) -> int:
        """Input dimension."""
        return len(self.bounds)

    @property
    def bounds_array(self) -> np.ndarray:
        """Bounds as a ``(d, 2)`` array."""
        return np.array(self.bounds, dtype=float)

    def hyperparameters(self) -> GPHyperparameters:
        """The GP hyperparameters (the environment's rule for ``gp="paper"``)."""
        if isinstance(self.gp, dict):
            gp = dict(self.gp)
            if isinstance(gp.get("lengthscale"), list):
                gp["lengthscale"] = tuple(gp["lengthscale"])
            return GPHyperparameters(**gp)
        hp = GaussianProcess.paper_hyperparameters(self.bounds_array)
        if self.noise_std > 0:
            hp = hp.replace(noise_variance=max(hp.noise_variance, 1e-4))
        return hp

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable form (the ``create`` event payload)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["spec"] = spec_to_dict(self.spec)
        out["bounds"] = [list(p) for p in self.bounds]
        out["initial_X"] = [list(r) for r in self.initial_X]
        out["initial_y"] = list(self.initial_y)
        if isinstance(self.gp, dict):
            out["gp"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.gp.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignConfig:
        """Inverse of :meth:`to_json`."""
        d = dict(data)
        d["spec"] = spec_from_dict(d["spec"])
        d["bounds"] = tuple(tuple(p) for p in d["bounds"])
        d["initial_X"] = tuple(tuple(r) for r in d["initial_X"])
        d["initial_y"] = tuple(d["initial_y"])
        return cls(**d)


def _check_initial(initial_data: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if initial_data is None:
        return np.zeros((0, dim)), np.zeros(0)
    if not isinstance(initial_data, (tuple, list)) or len(initial_data) != 2:
        raise TypeError("initial_data must be a pair (X, y) of known inputs and outcomes")
    X = check_points("initial_data X", initial_data[0], dim)
    y = real_array("initial_data y", initial_data[1]).reshape(-1)
    if y.shape != (X.shape[0],):
        raise ValueError(f"initial_data y must have {X.shape[0]} values (one per row of X), got {y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise ValueError("initial_data y must be finite (no NaN or inf)")
    return X, y


def is_finite_real(value: Any) -> bool:
    """Whether ``value`` is a finite real number (not a bool)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(float(value))
    )
