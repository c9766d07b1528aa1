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

import dataclasses
import hashlib
import inspect
import math
import tempfile
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from labsched.agents.config import ALGORITHMS
from labsched.agents.loading import METADATA_FILE, load_agent, load_sb3_model
from labsched.baselines.labs.synthetic import make_scheduler
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.threads import BLAS_ENV, single_threaded, single_threaded_blas
from labsched.envs._lib.validation import check_int
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.backends import BACKENDS, Progress, execute
from labsched.evaluation.cells import (
    DEFAULT_DURATION,
    Cell,
    agent_files,
    parse_objective,
    resolve_agent_path,
)
from labsched.evaluation.results_file import (
    COLUMNS,
    NONDETERMINISTIC,
    ResultsFile,
    ResultsFileError,
    load_results,
    normalise_row,
)

__all__ = [
    "BLAS_ENV",
    "COLUMNS",
    "DEFAULT_DURATION",
    "NONDETERMINISTIC",
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
    "sweep_cells",
    "sweep_markdown",
]

#: The former private name of :func:`labsched.evaluation.cells.agent_files`.
_agent_files = agent_files


@lru_cache(maxsize=8)
def _load_trained(path: str, sha256: str, class_name: str, spec: LabSpec) -> Any:
    """A bare stable-baselines3 / sb3-contrib model zip, loaded without unpickling anything
    (:func:`labsched.agents.loading.load_sb3_model`; cached per process, file content and spec).

    The class is ``class_name`` when given, else the algorithm the zip's plain JSON names.
    """
    del sha256  # part of the cache key only
    algo = None
    if class_name:
        by_class = {info.class_name: name for name, info in ALGORITHMS.items()}
        if class_name not in by_class:
            raise ValueError(f"unknown agent class {class_name!r}; available: {', '.join(sorted(by_class))}")
        algo = by_class[class_name]
    return load_sb3_model(path, spec, algo=algo)


@lru_cache(maxsize=8)
def _load_saved(path: str, sha256: str, algo: str) -> Any:
    """``labsched.agents.loading.load_agent`` (cached per process and file content)."""
    del sha256  # part of the cache key only
    return load_agent(path, algo=algo or None)


def build_agent(cell: Cell, spec: LabSpec) -> tuple[Any, bool, bool]:
    """The cell's agent for ``spec``.

    Returns:
        ``(agent, flat, maskable)``: anything with ``predict``, whether it needs the flat
        observation, and whether ``predict`` takes ``action_masks`` (MaskablePPO).
    """
    if cell.agent_path:
        zip_path = resolve_agent_path(cell.agent_path)
        if zip_path.with_name(METADATA_FILE).is_file():
            # Saved by ``labsched train``: its loader rebuilds the model's observation (features,
            # normalisation) and the action masks from the plain env observation.
            loaded = _load_saved(str(zip_path), cell.agent_sha256, cell.agent_class)
            return (loaded if loaded.spec == spec else loaded.with_spec(spec)), False, False
        model = _load_trained(str(zip_path), cell.agent_sha256, cell.agent_class, spec)
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
    return make_scheduler(name, spec, **options), False, False


def _array_hash(x: Any) -> str:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def run_cell(cell: Cell) -> dict[str, Any]:
    """Play the cell's episode and return its row (cell fields, id, seeds and outcomes).

    Outcome fields: ``cpe``, ``regret`` (optimum minus the true value at the predicted best
    observed input), ``completed`` (experiments completed by the horizon), ``best_value``,
    ``integrated_variance`` and ``rmse`` (the information goal: the GP's mean posterior variance
    and its mean's error on the fixed Sobol' set, :mod:`labsched.envs.bo.information`),
    ``init_hash`` (hash of the initial design: equal for every scheduler of a run index) and
    ``wall_time`` (seconds; the only field that is not a pure function of the cell).
    """
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
    info = play_episode(agent, env, cell.env_seed, action_masks=maskable).info
    row: dict[str, Any] = {"cell_id": cell.id, **dataclasses.asdict(cell)}
    row.update(
        env_seed=cell.env_seed,
        agent_seed=cell.agent_seed,
        cpe=int(info["cpe"]),
        regret=float(info["regret"]),
        completed=int(info["completed"]),
        best_value=float(info["best_value"]),
        integrated_variance=float(info["integrated_variance"]),
        rmse=float(info["rmse"]),
        init_hash=_array_hash(info["X"][: info["n_initial"]]),
        wall_time=time.perf_counter() - t0,
    )
    return row


def _worker(cell: Cell) -> dict[str, Any]:
    """:func:`run_cell` with BLAS held to one thread (runs inside worker processes)."""
    with single_threaded():
        return run_cell(cell)


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
        also says how many were run and how many resumed, and the wall time of the call); rows
        read back from the file are identical to freshly computed ones (``wall_time`` aside).

    Raises:
        ResultsFileError: if the existing file is corrupted (nothing is run then).
    """
    t0 = time.perf_counter()
    unique: dict[str, Cell] = {}
    for cell in cells:
        if not isinstance(cell, Cell):
            raise TypeError(f"cells must be Cell objects, got {type(cell).__name__}")
        unique.setdefault(cell.id, cell)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'loky', 'ray' or 'dask', got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    path = Path(results_path)
    with ResultsFile(path, resume) as store:
        done = store.rows
        pending = [c for cid, c in unique.items() if cid not in done]
        bar = Progress(len(pending), len(unique) - len(pending), progress and bool(pending))
        try:
            for row in execute(pending, n_jobs, backend, address, _worker):
                store.append(row)
                done[row["cell_id"]] = normalise_row(row)
                bar.update()
        finally:
            bar.close()
    return SweepRows(
        [done[cid] for cid in unique],
        n_run=len(pending),
        n_resumed=len(unique) - len(pending),
        seconds=time.perf_counter() - t0,
    )


class SweepRows(list):
    """The rows returned by :func:`run_sweep`: a list, with ``n_run`` (cells computed by this
    call), ``n_resumed`` (cells read back from the results file) and ``seconds`` (wall time of
    the call)."""

    def __init__(
        self, rows: Iterable[dict[str, Any]], n_run: int = 0, n_resumed: int = 0, seconds: float = 0.0
    ) -> None:
        super().__init__(rows)
        self.n_run = n_run
        self.n_resumed = n_resumed
        self.seconds = seconds


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


def sweep_cells(
    objectives: Sequence[str],
    schedulers: Sequence[str] = (),
    agents: Sequence[str] = (),
    horizons: Sequence[float] = (5.0,),
    runs: int = 10,
    selector: str = "simulation-matching",
    seed: int = 0,
    ps_simulations: int | None = None,
    **setting: Any,
) -> list[Cell]:
    """Cells of every objective x run x scheduler (and trained agent) x horizon.

    Args:
        objectives: objective names.
        schedulers: scheduler names (``sequential`` runs once per run with ``h = inf``).
        agents: trained agents (``.zip`` files or ``labsched train`` folders), labelled by stem.
        horizons: horizons.
        runs: runs per entry.
        selector: SelectBatch.
        seed: base seed.
        ps_simulations: PS's simulations per policy (None: its default).
        **setting: other :class:`Cell` fields (``n_experiments``, ``duration``, ...).

    Raises:
        ValueError: when neither schedulers nor agents are given, or ``runs < 1``.
        TypeError: when ``runs`` is not an integer.
    """
    runs = check_int("runs", runs, low=1)
    entries = [(s, "") for s in schedulers] + [(Path(a).stem, str(a)) for a in agents]
    if not entries:
        raise ValueError("give --schedulers and/or --agent")
    cells = []
    for objective in objectives:
        for run in range(runs):
            for name, path in entries:
                options = {"n_simulations": ps_simulations} if name == "ps" and ps_simulations else {}
                for h in horizons:
                    cells.append(
                        Cell(
                            objective=objective,
                            scheduler=name,
                            horizon=math.inf if name == "sequential" else float(h),
                            run=run,
                            selector=selector,
                            options=options,
                            agent_path=path,
                            seed=seed,
                            **setting,
                        )
                    )
    return cells


def sweep_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Mean regret, mean CPE and completion rate per (objective, scheduler, horizon), in Markdown."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["objective"], r["scheduler"], r["horizon"]), []).append(r)
    lines = [
        "| objective | scheduler | h | runs | mean regret | mean CPE | all completed |",
        "|---|---|---|---|---|---|---|",
    ]
    for (objective, name, h), rs in groups.items():
        n = len(rs)
        lines.append(
            f"| {objective} | {name} | {h:g} | {n} | {sum(r['regret'] for r in rs) / n:.4f} | "
            f"{sum(r['cpe'] for r in rs) / n:.1f} | "
            f"{sum(r['completed'] >= r['n_experiments'] for r in rs) / n:.2f} |"
        )
    return "\n".join(lines) + "\n"
