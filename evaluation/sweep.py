"""Reproducible, resumable, parallel evaluation sweeps in regret mode.

A sweep is a list of :class:`Cell` s. A cell names one regret-mode episode completely: the
problem setting, the objective, the horizon, the scheduler (a baseline name, a Figure-1
scheduler such as ``"busy:3"``, or a trained stable-baselines3 agent), the run index, the
selector and the scheduler's options. :func:`run_cell` plays that one episode and returns a row;
it is a pure function of the cell, so the same cell gives the same numbers in any process, on
any worker, in any order.

Seeds and common random numbers
    The environment's seed is a hash of the setting (n, l, p, epoch, duration law, noise), the
    objective, the base seed and the run index: **not** of the scheduler, the selector or the
    horizon. Every scheduler of a run index therefore meets the same initial design, the same
    duration draws (in start order) and the same noise draws, at every horizon. Leaving the
    horizon out is deliberate: the horizon-free references (sequential with h = infinity, and
    OnFCP) are computed once per run and compared with every horizon's schedulers, which is only
    paired if all horizons share the draws. Randomised schedulers get their own seed, a hash
    of the environment seed, the scheduler and its options.

Results file (CSV, one row per cell, written as cells finish)
    The first line is a fixed header (:data:`COLUMNS`); every row ends with a newline and is
    flushed as soon as its cell finishes, so an interrupted sweep leaves every finished cell on
    disk. Floats are written with ``repr`` and read back bit-for-bit.

Resume and corruption policy
    With ``resume=True`` (the default) cells whose id is already in the file are not run again.
    The file is validated first and nothing doubtful is reused:

    * a wrong header, a row with the wrong number of fields, an unparsable value, a row whose
      ``cell_id`` does not match its own fields (edited by hand, or written by another version),
      an empty line in the middle, or the same id twice with different values, raises
      :class:`ResultsFileError` naming the file and the line;
    * the one exception is the **last line when it lacks its newline**: that is what an
      interrupted write leaves behind, so it is dropped with a :class:`UserWarning` (naming file
      and line) and the file is cut back to the end of the last complete row before appending;
      its cell is recomputed. A complete-looking final line *with* a newline is never guessed
      at: if it does not parse, it is an error;
    * the same id twice with identical values (ignoring ``wall_time``) is accepted (one is used).

    ``resume=False`` starts the file afresh (its old content is discarded). While a sweep runs
    it holds an exclusive ``flock`` on the file, so a second sweep on the same file fails at once
    instead of interleaving rows. If a cell raises, the rows already written stay and a new run
    with ``resume=True`` continues from there.

Backends
    ``"loky"`` (joblib's processes, the default; ``n_jobs=1`` runs in-process), ``"ray"``
    (``ray.util.joblib``; ``address`` of a running cluster, or a local one of ``n_jobs`` CPUs)
    and ``"dask"`` (``dask.distributed.Client(address)``, or a ``LocalCluster`` of ``n_jobs``
    single-threaded worker processes). Each worker runs with BLAS limited to one thread
    (environment variables for spawned workers, ``threadpoolctl`` inside the task). Results are
    consumed as they finish (``return_as="generator_unordered"``); for backends that cannot
    stream (Ray's joblib backend) cells are dispatched in chunks of ``4 * n_jobs`` and written
    after each chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from labsched.envs.durations import TruncatedNormal, parse_duration
from labsched.envs.spec import LabSpec

__all__ = [
    "BLAS_ENV",
    "COLUMNS",
    "DEFAULT_DURATION",
    "Cell",
    "ResultsFileError",
    "SweepRows",
    "build_agent",
    "load_results",
    "measure_scaling",
    "parse_objective",
    "resolve_agent_path",
    "run_cell",
    "run_sweep",
    "single_threaded_blas",
]

#: The paper's duration law in the command-line form of :func:`~labsched.envs.durations.parse_duration`.
DEFAULT_DURATION = f"truncnorm:1,{math.sqrt(0.1)!r}"
#: Thread limits given to worker processes.
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_TRAINED_CLASSES = ("MaskablePPO", "RecurrentPPO", "QRDQN", "TRPO", "ARS", "PPO", "A2C", "DQN")


class ResultsFileError(ValueError):
    """A results file that cannot be trusted (the message names the file and the line)."""


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


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


#: Written by ``labsched train`` beside the model zip (see :mod:`labsched.agents.loading`).
_AGENT_METADATA = "agent.json"


def resolve_agent_path(path: str | Path) -> Path:
    """The model zip of ``path``: the zip itself, or in a ``labsched train`` folder its
    ``best_model.zip`` (else ``model.zip``)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best_model.zip", "model.zip"):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"no best_model.zip or model.zip in {str(p)!r}")
    if not p.is_file():
        raise FileNotFoundError(f"trained agent {str(path)!r} not found")
    return p


def _agent_files(zip_path: Path) -> list[Path]:
    """The model zip and what is saved beside it that changes its behaviour."""
    extra = [zip_path.with_name(_AGENT_METADATA), zip_path.with_name(f"{zip_path.stem}_vecnormalize.pkl")]
    return [zip_path, *(f for f in extra if f.is_file())]


def _agent_sha256(path: str) -> str:
    h = hashlib.sha256()
    for f in _agent_files(resolve_agent_path(path)):
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
            ``"bernoulli:0.2"``, ``"staged:10,6,4"``; see :mod:`labsched.evaluation.figure1`), or
            a label for the trained agent in ``agent_path``.
        horizon: the horizon ``h``; ``math.inf`` is the unconstrained reference, run with
            :func:`~labsched.evaluation.cpe_table.sequential_horizon`.
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
        from .cpe_table import sequential_horizon

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
        return base.replace(horizon=sequential_horizon(base))

    def replace(self, **changes: Any) -> Cell:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------------
# Objectives, agents and the episode
# --------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*$")


@lru_cache(maxsize=64)
def parse_objective(text: str):
    """``"name"`` or ``"name@lo:hi[,lo:hi...]"`` as an :class:`~labsched.envs.objectives.Objective`.

    One ``lo:hi`` pair applies to every dimension; otherwise one pair per dimension. The box must
    contain the function's maximiser (see ``make_objective``).
    """
    from labsched.envs.objectives import make_objective

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


@lru_cache(maxsize=8)
def _load_trained(path: str, sha256: str, class_name: str) -> Any:
    """Load a stable-baselines3 / sb3-contrib model (cached per process and file content)."""
    del sha256  # part of the cache key only
    classes = _trained_classes()
    if class_name:
        if class_name not in classes:
            raise ValueError(f"unknown agent class {class_name!r}; available: {', '.join(classes)}")
        return classes[class_name].load(path, device="cpu")
    guess = _guess_class(path)
    order = ([guess] if guess in classes else []) + [c for c in classes if c != guess]
    errors = []
    for name in order:
        try:
            return classes[name].load(path, device="cpu")
        except Exception as exc:  # a wrong class fails in many ways; try the next one
            errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
    raise ValueError(f"could not load {path} with any of {order}:\n  " + "\n  ".join(errors))


@lru_cache(maxsize=8)
def _load_saved(path: str, sha256: str, algo: str) -> Any:
    """``labsched.agents.loading.load_agent`` (cached per process and file content)."""
    del sha256  # part of the cache key only
    from labsched.agents.loading import load_agent

    return load_agent(path, algo=algo or None)


def _trained_classes() -> dict[str, Any]:
    """Available model classes, sb3-contrib first (imported lazily)."""
    found: dict[str, Any] = {}
    for module in ("sb3_contrib", "stable_baselines3"):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        for name in _TRAINED_CLASSES:
            if name not in found and hasattr(mod, name):
                found[name] = getattr(mod, name)
    if not found:
        raise ImportError("loading a trained agent needs stable-baselines3 (pip install 'labsched[rl]')")
    return found


def _guess_class(path: str) -> str:
    """The model class suggested by the zip's saved hyperparameters ("" when unsure)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data").decode())
    except Exception:
        return ""
    policy = json.dumps(data.get("policy_class", "")).lower()
    if "maskable" in policy:
        return "MaskablePPO"
    if "recurrent" in policy or "lstm" in policy:
        return "RecurrentPPO"
    if "quantile" in policy or "n_quantiles" in data.get("policy_kwargs", {}):
        return "QRDQN"
    if "exploration_initial_eps" in data or "target_update_interval" in data:
        return "DQN"
    if "clip_range" in data and "n_epochs" in data:
        return "PPO"
    if "n_steps" in data and "clip_range" not in data:
        return "A2C"
    return ""


def build_agent(cell: Cell, spec: LabSpec) -> tuple[Any, bool, bool]:
    """The cell's agent for ``spec``.

    Returns:
        ``(agent, flat, maskable)``: anything with ``predict``, whether it needs the flat
        observation, and whether ``predict`` takes ``action_masks`` (MaskablePPO).
    """
    if cell.agent_path:
        from gymnasium import spaces

        zip_path = resolve_agent_path(cell.agent_path)
        if zip_path.with_name(_AGENT_METADATA).is_file():
            # Saved by ``labsched train``: its loader rebuilds the model's observation (features,
            # normalisation) and the action masks from the plain env observation.
            loaded = _load_saved(str(zip_path), cell.agent_sha256, cell.agent_class)
            return (loaded if loaded.spec == spec else loaded.with_spec(spec)), False, False
        model = _load_trained(str(zip_path), cell.agent_sha256, cell.agent_class)
        space = model.observation_space
        flat = isinstance(space, spaces.Box)
        expected = 2 * spec.n_labs + 4
        if flat and tuple(space.shape) != (expected,):
            raise ValueError(
                f"{cell.agent_path}: observation shape {space.shape} does not fit n_labs={spec.n_labs} "
                f"(flat observations have length 2 l + 4 = {expected})"
            )
        maskable = "action_masks" in inspect.signature(model.predict).parameters
        return model, flat, maskable
    name = cell.scheduler
    options = {"seed": cell.agent_seed, **cell.options_dict}
    if ":" in name:
        from .figure1 import make_scheduler

        return make_scheduler(name, spec, **options), False, False
    from labsched import baselines

    return baselines.make(name, spec, **options), False, False


def _array_hash(x: Any) -> str:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def run_cell(cell: Cell) -> dict[str, Any]:
    """Play the cell's episode and return its row (cell fields, id, seeds and outcomes).

    Outcome fields: ``cpe``, ``regret`` (optimum minus the true value at the predicted best
    observed input), ``completed`` (experiments completed by the horizon), ``best_value``,
    ``init_hash`` (hash of the initial design: equal for every scheduler of a run index) and
    ``wall_time`` (seconds; the only field that is not a pure function of the cell).
    """
    from labsched.envs.concurrent_labs import ConcurrentLabsEnv

    t0 = time.perf_counter()
    spec = cell.spec()
    agent, flat, maskable = build_agent(cell, spec)
    env = ConcurrentLabsEnv(
        spec,
        reward="regret",
        objective=parse_objective(cell.objective),
        selector=cell.selector,
        noise_std=cell.noise_std,
        flatten=flat,
    )
    obs, info = env.reset(seed=cell.env_seed)
    first = True
    while True:
        if maskable:
            action, _ = agent.predict(obs, action_masks=env.action_masks(), deterministic=True)
        else:
            action, _ = agent.predict(obs, episode_start=np.array([first]), deterministic=True)
        first = False
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    row: dict[str, Any] = {"cell_id": cell.id, **dataclasses.asdict(cell)}
    row.update(
        env_seed=cell.env_seed,
        agent_seed=cell.agent_seed,
        cpe=int(info["cpe"]),
        regret=float(info["regret"]),
        completed=int(info["completed"]),
        best_value=float(info["best_value"]),
        init_hash=_array_hash(info["X"][: info["n_initial"]]),
        wall_time=time.perf_counter() - t0,
    )
    return row


def _worker(cell: Cell) -> dict[str, Any]:
    """:func:`run_cell` with BLAS held to one thread (runs inside worker processes)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        return run_cell(cell)
    with threadpool_limits(limits=1):
        return run_cell(cell)


# --------------------------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------------------------

_CELL_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float}[str(f.type)] for f in dataclasses.fields(Cell)
}
_RESULT_TYPES: dict[str, type] = {
    "env_seed": int,
    "agent_seed": int,
    "cpe": int,
    "regret": float,
    "completed": int,
    "best_value": float,
    "init_hash": str,
    "wall_time": float,
}
#: Columns of a results file, in order.
COLUMNS: tuple[str, ...] = ("cell_id", *_CELL_TYPES, *_RESULT_TYPES)
_TYPES: dict[str, type] = {"cell_id": str, **_CELL_TYPES, **_RESULT_TYPES}
#: Fields that may differ between two computations of the same cell.
NONDETERMINISTIC = frozenset({"wall_time"})
_INT_RE = re.compile(r"^-?\d+$")
_PARTIAL_ROW_RE = re.compile(r"^([0-9a-f]{16},|[0-9a-f]{0,16}$)")


def _format(value: Any, kind: type) -> str:
    if kind is float:
        return repr(float(value))
    if kind is int:
        return str(int(value))
    return str(value)


def _parse(text: str, kind: type) -> Any:
    if kind is int:
        if not _INT_RE.match(text):
            raise ValueError(f"not an integer: {text!r}")
        return int(text)
    if kind is float:
        return float(text)
    return text


def _header_line() -> str:
    return ",".join(COLUMNS) + "\n"


def _row_line(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    import csv

    csv.writer(buf, lineterminator="\n").writerow([_format(row[c], _TYPES[c]) for c in COLUMNS])
    return buf.getvalue()


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for c in COLUMNS:
        if c in NONDETERMINISTIC:
            continue
        x, y = a[c], b[c]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


@dataclass
class _Scan:
    rows: dict[str, dict[str, Any]]
    good_bytes: int  # length of the trusted prefix (header and complete rows)
    dropped_line: int | None  # 1-based number of a dropped truncated final line
    empty: bool  # no header yet


def _scan(path: Path) -> _Scan:
    """Read and validate a results file (see the module docstring for the policy)."""
    import csv

    data = path.read_bytes()
    if not data:
        return _Scan({}, 0, None, True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ResultsFileError(f"{path}: line {line}: not UTF-8 text (corrupted file?)") from exc
    lines = text.split("\n")
    # A final piece without newline is an interrupted write; "" after a final newline is normal.
    tail = lines.pop()
    dropped = None
    if tail:
        dropped = len(lines) + 1
        # Only what an interrupted write can leave: a prefix of the header, or of a row (which
        # starts with a 16-hex-digit id). Anything else is garbage, not a truncation.
        plausible = _header_line().startswith(tail) if not lines else bool(_PARTIAL_ROW_RE.match(tail))
        if not plausible:
            raise ResultsFileError(
                f"{path}: line {dropped}: final line without newline does not look like an interrupted "
                f"write of a results row ({tail[:80]!r}); not a labsched sweep results file?"
            )
    good_bytes = len(data) - len(tail.encode("utf-8"))
    if not lines:  # only a partial header
        return _Scan({}, 0, dropped, True)
    if lines[0] + "\n" != _header_line():
        raise ResultsFileError(
            f"{path}: line 1: wrong header (not a labsched sweep results file, or one written by a "
            f"different version);\n  expected: {_header_line().strip()}\n  found:    {lines[0][:300]}\n"
            "Use another results path, or delete the file to start afresh."
        )
    rows: dict[str, dict[str, Any]] = {}
    where: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise ResultsFileError(f"{path}: line {number}: empty line inside the results")
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            raise ResultsFileError(f"{path}: line {number}: unparsable CSV ({exc})") from exc
        if len(fields) != len(COLUMNS):
            raise ResultsFileError(
                f"{path}: line {number}: {len(fields)} fields, expected {len(COLUMNS)} ({line[:120]!r})"
            )
        row = {}
        for column, raw in zip(COLUMNS, fields, strict=True):
            try:
                row[column] = _parse(raw, _TYPES[column])
            except ValueError as exc:
                raise ResultsFileError(f"{path}: line {number}: column {column!r}: {exc}") from exc
        if not math.isfinite(row["regret"]) or row["regret"] < 0:
            raise ResultsFileError(
                f"{path}: line {number}: regret must be finite and >= 0, got {row['regret']}"
            )
        try:
            cell = Cell(**{k: row[k] for k in _CELL_TYPES})
        except (TypeError, ValueError, OSError) as exc:
            raise ResultsFileError(f"{path}: line {number}: invalid cell fields: {exc}") from exc
        if cell.id != row["cell_id"]:
            raise ResultsFileError(
                f"{path}: line {number}: cell_id {row['cell_id']} does not match the row's own fields "
                f"(expected {cell.id}); the row was edited or written by another version"
            )
        old = rows.get(cell.id)
        if old is not None:
            if not _same_values(old, row):
                raise ResultsFileError(
                    f"{path}: line {number}: cell {cell.id} appears again (first on line {where[cell.id]}) "
                    "with different values; refusing to choose between them"
                )
            continue
        rows[cell.id] = row
        where[cell.id] = number
    return _Scan(rows, good_bytes, dropped, False)


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """The validated rows of a results file (the file is not modified).

    Raises:
        ResultsFileError: for a corrupted file (see the module docstring); a truncated final
            line is ignored with a warning.
    """
    path = Path(path)
    scan = _scan(path)
    if scan.dropped_line is not None:
        warnings.warn(
            f"{path}: line {scan.dropped_line}: incomplete final line (interrupted write) ignored",
            UserWarning,
            stacklevel=2,
        )
    return list(scan.rows.values())


class _ResultsFile:
    """Append-only, locked access to a results file during a sweep."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.resume = resume

    def __enter__(self) -> _ResultsFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a+b")
        try:
            _lock(self.f, self.path)
            if self.resume:
                scan = _scan(self.path)
                if scan.dropped_line is not None:
                    warnings.warn(
                        f"{self.path}: line {scan.dropped_line}: incomplete final line (interrupted write) "
                        "dropped; its cell will be recomputed",
                        UserWarning,
                        stacklevel=3,
                    )
                    self.f.truncate(scan.good_bytes)
                self.rows = scan.rows
                empty = scan.empty
            else:
                self.f.truncate(0)
                self.rows = {}
                empty = True
            self.f.seek(0, os.SEEK_END)
            if empty:
                self.f.truncate(0)
                self.f.write(_header_line().encode())
                self.f.flush()
        except BaseException:
            self.f.close()
            raise
        return self

    def append(self, row: dict[str, Any]) -> None:
        self.f.write(_row_line(row).encode())
        self.f.flush()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self.f.fileno())
        self.f.close()


def _lock(f: Any, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise RuntimeError(f"{path} is locked: another sweep is writing to it") from exc


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Set one BLAS/OpenMP thread in the environment (inherited by joblib's loky workers)."""
    old = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update(BLAS_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stream(pending: Sequence[Cell], n_jobs: int) -> Iterator[dict[str, Any]]:
    """Run through the active joblib backend, yielding rows as they finish."""
    from joblib import Parallel, delayed

    try:
        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError as exc:
        if "return_as" not in str(exc):
            raise
        runner = None
    if runner is not None:
        yield from runner(delayed(_worker)(c) for c in pending)
        return
    # The backend cannot stream (Ray's): dispatch in chunks, writing after each one.
    chunk = max(1, 4 * n_jobs) if n_jobs > 0 else 16
    for i in range(0, len(pending), chunk):
        yield from Parallel(n_jobs=n_jobs)(delayed(_worker)(c) for c in pending[i : i + chunk])


def _execute(
    pending: Sequence[Cell], n_jobs: int, backend: str, address: str | None
) -> Iterator[dict[str, Any]]:
    if backend == "loky":
        if n_jobs == 1:
            for cell in pending:
                yield _worker(cell)
            return
        import joblib

        with single_threaded_blas(), joblib.parallel_config(backend="loky", inner_max_num_threads=1):
            yield from _stream(pending, n_jobs)
    elif backend == "ray":
        yield from _execute_ray(pending, n_jobs, address)
    elif backend == "dask":
        yield from _execute_dask(pending, n_jobs, address)
    else:
        raise ValueError(f"backend must be 'loky', 'ray' or 'dask', got {backend!r}")


def _execute_ray(pending: Sequence[Cell], n_jobs: int, address: str | None) -> Iterator[dict[str, Any]]:
    try:
        import joblib
        import ray
        from ray.util.joblib import register_ray
    except ImportError as exc:
        raise ImportError("backend='ray' needs Ray: pip install 'labsched[ray]'") from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": dict(BLAS_ENV)},
            "log_to_driver": False,
            "include_dashboard": False,
        }
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(n_jobs, 1), **kwargs)
        started = True
    try:
        register_ray()
        with joblib.parallel_config(backend="ray"):
            yield from _stream(pending, n_jobs)
    finally:
        if started:
            ray.shutdown()


def _execute_dask(pending: Sequence[Cell], n_jobs: int, address: str | None) -> Iterator[dict[str, Any]]:
    try:
        import joblib
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'labsched[dask]'") from exc
    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(Client(address))
        else:
            stack.enter_context(single_threaded_blas())
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=max(n_jobs, 1),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        del client  # the active client is what joblib's dask backend uses
        with joblib.parallel_config(backend="dask"):
            yield from _stream(pending, n_jobs if address is None else -1)


class _Progress:
    """tqdm when available, otherwise a line every 5% of the cells."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        self.total, self.enabled, self.count = total, enabled, 0
        self.t0 = time.perf_counter()
        self.bar = None
        self.next_line = 0
        if not enabled:
            return
        desc = "sweep" + (f" ({skipped} cells already done)" if skipped else "")
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="cell", file=sys.stderr, smoothing=0.05)
        except ImportError:
            print(f"{desc}: {total} cells to run", file=sys.stderr, flush=True)

    def update(self) -> None:
        self.count += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        elif self.count >= self.next_line or self.count == self.total:
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / self.count * (self.total - self.count)
            print(
                f"[{self.count}/{self.total}] {elapsed:.0f}s, about {eta:.0f}s left",
                file=sys.stderr,
                flush=True,
            )
            self.next_line = self.count + max(1, self.total // 20)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sweep(
    cells: Iterable[Cell],
    results_path: str | Path,
    *,
    n_jobs: int = 2,
    backend: str = "loky",
    address: str | None = None,
    resume: bool = True,
    progress: bool = True,
) -> SweepRows:
    """Run every cell not yet in ``results_path`` and return the rows of all ``cells``.

    Args:
        cells: the cells (duplicates are run once).
        results_path: the CSV results file (created, or resumed: see the module docstring).
        n_jobs: parallel workers (loky: 1 runs in-process).
        backend: ``"loky"``, ``"ray"`` or ``"dask"``.
        address: Ray or Dask scheduler address (None: a local cluster of ``n_jobs`` workers).
        resume: skip cells already in the file (False: start the file afresh).
        progress: show a progress bar with ETA on stderr.

    Returns:
        One row per distinct cell, in the order of ``cells`` (a :class:`SweepRows` list, which
        also says how many were run and how many resumed); rows read back from the file are
        identical to freshly computed ones (``wall_time`` aside).

    Raises:
        ResultsFileError: if the existing file is corrupted (nothing is run then).
    """
    unique: dict[str, Cell] = {}
    for cell in cells:
        if not isinstance(cell, Cell):
            raise TypeError(f"cells must be Cell objects, got {type(cell).__name__}")
        unique.setdefault(cell.id, cell)
    if backend not in ("loky", "ray", "dask"):
        raise ValueError(f"backend must be 'loky', 'ray' or 'dask', got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    path = Path(results_path)
    with _ResultsFile(path, resume) as store:
        done = store.rows
        pending = [c for cid, c in unique.items() if cid not in done]
        bar = _Progress(len(pending), len(unique) - len(pending), progress and bool(pending))
        try:
            for row in _execute(pending, n_jobs, backend, address):
                store.append(row)
                done[row["cell_id"]] = _normalise(row)
                bar.update()
        finally:
            bar.close()
    return SweepRows([done[cid] for cid in unique], n_run=len(pending), n_resumed=len(unique) - len(pending))


class SweepRows(list):
    """The rows returned by :func:`run_sweep`: a list, with ``n_run`` (cells computed by this
    call) and ``n_resumed`` (cells read back from the results file)."""

    def __init__(self, rows: Iterable[dict[str, Any]], n_run: int = 0, n_resumed: int = 0) -> None:
        super().__init__(rows)
        self.n_run = n_run
        self.n_resumed = n_resumed


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """The row with the exact types it has when read back from a results file."""
    return {
        c: _parse(_format(row[c], _TYPES[c]), _TYPES[c]) if _TYPES[c] is not str else row[c] for c in COLUMNS
    }


def measure_scaling(
    cells: Sequence[Cell],
    workers: Sequence[int] = (1, 2),
    *,
    backend: str = "loky",
    address: str | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Wall time of the same sweep with different worker counts, each into a fresh file.

    With ``warmup``, a few cells are run first with the same worker count, so worker start-up
    and imports are not counted (loky reuses its workers).

    Returns:
        ``{"cells": len(cells), "seconds": {n: s}, "speedup": {n: seconds[first] / seconds[n]}}``.
    """
    cells = list(cells)
    seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="labsched-scaling-") as tmp:
        for n in workers:
            if warmup and backend == "loky":
                head = cells[: max(2 * n, 2)]
                run_sweep(head, Path(tmp) / f"warmup-{n}.csv", n_jobs=n, resume=False, progress=False)
            t0 = time.perf_counter()
            run_sweep(
                cells,
                Path(tmp) / f"run-{n}.csv",
                n_jobs=n,
                backend=backend,
                address=address,
                resume=False,
                progress=False,
            )
            seconds[n] = time.perf_counter() - t0
    first = seconds[workers[0]]
    return {"cells": len(cells), "seconds": seconds, "speedup": {n: first / s for n, s in seconds.items()}}
