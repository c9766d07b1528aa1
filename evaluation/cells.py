"""Sweep cells: one regret-mode episode named completely, with its seeds and its id.

See :mod:`labsched.evaluation.sweep` for how seeds give common random numbers across
schedulers and horizons.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.loading import METADATA_FILE, normalizer_path, resolve_model_path
from labsched.envs.bo.objectives import Objective, make_objective
from labsched.envs.labs.durations import TruncatedNormal, parse_duration
from labsched.envs.labs.spec import LabSpec

__all__ = ["DEFAULT_DURATION", "Cell", "agent_files", "parse_objective", "resolve_agent_path"]

#: The paper's duration law in the command-line form of :func:`~labsched.envs.labs.durations.parse_duration`.
DEFAULT_DURATION = f"truncnorm:1,{math.sqrt(0.1)!r}"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical_options(options: Any) -> str:
    if options is None or options == "":
        return ""
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Cell.options must be a dict or its JSON text, got {options!r}") from exc
    if not isinstance(options, dict):
        raise TypeError(f"Cell.options must be a dict, got {type(options).__name__}")
    if not options:
        return ""
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def resolve_agent_path(path: str | Path) -> Path:
    """The model zip of ``path``: the zip itself, or in a ``labsched train`` folder its
    ``best_model.zip`` (else ``model.zip``); see :func:`labsched.agents.loading.resolve_model_path`."""
    return resolve_model_path(path)


def agent_files(zip_path: Path) -> list[Path]:
    """The model zip and what is saved beside it that changes its behaviour."""
    extra = [zip_path.with_name(METADATA_FILE), normalizer_path(zip_path)]
    return [zip_path, *(f for f in extra if f.is_file())]


def _agent_sha256(path: str) -> str:
    h = hashlib.sha256()
    for f in agent_files(resolve_agent_path(path)):
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Cell:
    """One regret-mode episode of a sweep, fully specified.

    Attributes:
        objective: objective name (``"cosines"``, ``"hartmann3"``, ...), optionally restricted
            to a sub-box: ``"rosenbrock@0:1"`` (every dimension) or ``"rosenbrock@0:1,0:1"``.
        scheduler: a baseline name (``"ps"``), a Figure-1 scheduler (``"busy:3"``,
            ``"bernoulli:0.2"``, ``"staged:10,6,4"``; see :mod:`labsched.evaluation.labs.figure1`), or
            a label for the trained agent in ``agent_path``.
        horizon: the horizon ``h``; ``math.inf`` is the unconstrained reference, run with
            :attr:`LabSpec.sequential_horizon`.
        run: run index (with ``seed``, it fixes the environment's random draws).
        selector: SelectBatch (``"simulation-matching"``, ``"kb-ei"``, ``"thompson"``, ``"random"``).
        n_experiments, n_labs, p_safe, epoch: the problem (defaults: the paper's setting).
        duration: duration law, e.g. ``"truncnorm:1,0.316..."`` (default: the paper's).
        options: the scheduler's constructor options (a dict, stored as canonical JSON).
        agent_path: a trained agent to evaluate instead of a baseline: a ``labsched train``
            output folder or model zip (with ``agent.json`` beside it: loaded by
            :func:`labsched.agents.loading.load_agent`, features and normalisation included), or a
            bare stable-baselines3 / sb3-contrib ``.zip``.
        agent_class: the bare zip's class name (``"PPO"``, ``"MaskablePPO"``, ...) or the
            ``labsched train`` algorithm; empty: detected.
        agent_sha256: content hash of the model and its saved metadata and normalisation
            statistics (filled in automatically), so a retrained model never reuses old results.
        noise_std: observation noise of the objective.
        seed: base seed of the sweep.
    """

    objective: str = "cosines"
    scheduler: str = "sequential"
    horizon: float = 5.0
    run: int = 0
    selector: str = "simulation-matching"
    n_experiments: int = 20
    n_labs: int = 10
    p_safe: float = 0.95
    epoch: float = 0.1
    duration: str = DEFAULT_DURATION
    options: str = ""
    agent_path: str = ""
    agent_class: str = ""
    agent_sha256: str = ""
    noise_std: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("objective", "scheduler", "selector", "duration", "agent_path", "agent_class"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Cell.{name} must be a string, got {type(value).__name__}")
            if "\n" in value or "\r" in value:
                raise ValueError(f"Cell.{name} must be a single line, got {value!r}")
        if not self.scheduler:
            raise ValueError("Cell.scheduler must not be empty")
        for name in ("run", "n_experiments", "n_labs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Cell.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.run < 0:
            raise ValueError(f"Cell.run must be >= 0, got {self.run}")
        for name in ("horizon", "p_safe", "epoch", "noise_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"Cell.{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.horizon > 0 or math.isnan(self.horizon):
            raise ValueError(
                f"Cell.horizon must be > 0 (inf for the unconstrained reference), got {self.horizon}"
            )
        object.__setattr__(self, "options", _canonical_options(self.options))
        if self.agent_path and not self.agent_sha256:
            object.__setattr__(self, "agent_sha256", _agent_sha256(self.agent_path))

    # ------------------------------------------------------------------ derived values
    @property
    def id(self) -> str:
        """Stable id: a hash of every field (16 hex digits)."""
        return _digest(dataclasses.asdict(self))[:16]

    @property
    def options_dict(self) -> dict[str, Any]:
        """The scheduler options as a dict."""
        return json.loads(self.options) if self.options else {}

    @property
    def env_seed(self) -> int:
        """The environment's seed: setting, objective, base seed and run index, nothing else."""
        key = {
            "setting": [self.n_experiments, self.n_labs, self.p_safe, self.epoch, self.duration],
            "noise_std": self.noise_std,
            "objective": self.objective,
            "seed": self.seed,
            "run": self.run,
        }
        return int(_digest(key)[:15], 16)

    @property
    def agent_seed(self) -> int:
        """Seed of the scheduler's own generator (randomised schedulers, PS simulations)."""
        return int(_digest([self.env_seed, self.scheduler, self.options])[:15], 16)

    def spec(self) -> LabSpec:
        """The problem this cell runs (an infinite horizon becomes the sequential horizon)."""
        duration = TruncatedNormal() if self.duration == DEFAULT_DURATION else parse_duration(self.duration)
        base = LabSpec(
            n_experiments=self.n_experiments,
            n_labs=self.n_labs,
            horizon=self.horizon if math.isfinite(self.horizon) else max(1.0, self.epoch),
            duration=duration,
            p_safe=self.p_safe,
            epoch=self.epoch,
        )
        if math.isfinite(self.horizon):
            return base
        return base.replace(horizon=base.sequential_horizon)

    def replace(self, **changes: Any) -> Cell:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_BOX_RE = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*$")


@lru_cache(maxsize=64)
def parse_objective(text: str) -> Objective:
    """``"name"`` or ``"name@lo:hi[,lo:hi...]"`` as an :class:`~labsched.envs.bo.objectives.Objective`.

    One ``lo:hi`` pair applies to every dimension; otherwise one pair per dimension. The box must
    contain the function's maximiser (see ``make_objective``).
    """
    name, sep, box = text.partition("@")
    obj = make_objective(name.strip())
    if not sep:
        return obj
    pairs = []
    for part in box.split(","):
        m = _BOX_RE.match(part)
        if m is None:
            raise ValueError(f"objective box must look like 'name@lo:hi' or 'name@lo:hi,lo:hi', got {text!r}")
        pairs.append((float(m.group(1)), float(m.group(2))))
    if len(pairs) == 1:
        pairs = pairs * obj.dim
    return make_objective(obj, bounds=pairs)
