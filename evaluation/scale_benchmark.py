"""Scale benchmark: time and peak memory of the environment and every baseline over a grid of
problem sizes (``labsched benchmark --scale``).

Each cell (a subject, ``n`` experiments, ``l`` labs, an ``epoch``; horizon 5 and the paper's
duration law unless changed) runs in its own Python process, so that peaks do not accumulate and
a cell that runs away can be stopped:

* the subject is built (``setup``: the environment, or the baseline with ``seed=0``, which is
  where OfStaged, OfIL, OnMEL and the calibrated baselines plan), then one episode is played
  (seed 0); ``env`` picks uniformly random valid actions;
* **decision** times are the CPU time of each ``predict`` call (each ``step`` for ``env``), the
  **episode** time is the CPU and wall time of the whole episode; CPU time (of the cell's
  thread; BLAS is limited to one) is what the cell itself used, which keeps the figures
  comparable on a shared machine;
* **peak RSS** is the process's peak resident memory (Linux ``VmHWM``, else ``ru_maxrss``; the
  interpreter and its imports included, about 80 MiB);
* a cell that uses more than ``budget`` seconds of CPU (setup included; CPU rather than wall
  time, so that other load on the machine does not decide) is stopped and reported as
  ``skipped (budget)`` (a cell still running after ``10 x budget + 60`` s of wall time is
  stopped too); a cell at least as large (``n``, ``l`` not smaller, ``epoch`` not
  larger) of the same subject is then not started and reported the same way. A cell whose
  process exceeds ``memory_limit`` GiB of address space fails with ``MemoryError``. Cells are
  forked from a worker process that has labsched imported, so a cell starts in milliseconds.

Results: one :class:`ScaleCell` per cell, printed as a Markdown table (and written as
``table.md`` and ``table.csv`` with ``out``); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from labsched.baselines.registry import BASELINES, make
from labsched.envs._lib.reporting import markdown_table, write_csv
from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec

try:  # POSIX only: without it cells run without memory and CPU limits
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_LABS",
    "DEFAULT_N",
    "ScaleCell",
    "add_scale_arguments",
    "run_cell",
    "run_scale",
    "run_scale_from_args",
    "scale_markdown",
]

DEFAULT_N = (20, 200, 2_000)
DEFAULT_LABS = (10, 100, 1_000)
DEFAULT_EPOCHS = (0.1, 0.01, 0.001)
SKIPPED = "skipped (budget)"


@dataclass
class ScaleCell:
    """One cell of the scale benchmark (times in seconds, decision times in milliseconds).

    Attributes:
        subject: ``"env"`` or a baseline name.
        n: experiments. labs: labs. epoch: decision interval. horizon: the deadline.
        status: ``"ok"``, ``"skipped (budget)"`` or ``"failed: <error>"``.
        note: why a cell was skipped.
        setup_s: CPU time to build the subject.
        steps: decisions (env steps) in the episode.
        decision_ms_median / decision_ms_p90 / decision_ms_max: CPU time per decision.
        episode_cpu_s / episode_wall_s: the whole episode.
        peak_rss_mib: peak resident memory of the cell's process.
    """

    subject: str
    n: int
    labs: int
    epoch: float
    horizon: float
    status: str = "ok"
    note: str = ""
    setup_s: float = float("nan")
    steps: int = 0
    decision_ms_median: float = float("nan")
    decision_ms_p90: float = float("nan")
    decision_ms_max: float = float("nan")
    episode_cpu_s: float = float("nan")
    episode_wall_s: float = float("nan")
    peak_rss_mib: float = float("nan")


def _cpu() -> float:
    """CPU seconds of this thread (the cell's only busy one: BLAS runs one thread). Unlike the
    process clock, it keeps its resolution while the CPU budget's timer is armed."""
    return time.thread_time()


def _peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB.

    Linux's ``VmHWM`` (of this program image; ``ru_maxrss`` would also count the parent's memory
    at ``fork`` time), else ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if resource is None:  # pragma: no cover - Windows
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _build(subject: str, spec: LabSpec, env: ConcurrentLabsEnv) -> Any:
    if subject == "env":
        return None
    cls = BASELINES.get(subject)
    options: dict[str, Any] = {"seed": 0}
    if getattr(cls, "clairvoyant", False):
        options["env"] = env  # reads the episode's durations
    return make(subject, spec, **options)


def run_cell(subject: str, n: int, labs: int, epoch: float, horizon: float = 5.0) -> ScaleCell:
    """Build ``subject`` and play one episode in this process (see the module docstring)."""
    spec = LabSpec(n_experiments=n, n_labs=labs, horizon=horizon, epoch=epoch)
    cell = ScaleCell(subject, n, labs, epoch, horizon)
    t0 = _cpu()
    env = ConcurrentLabsEnv(spec)
    policy = _build(subject, spec, env)
    cell.setup_s = _cpu() - t0
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    mask = env.action_masks()
    times: list[float] = []
    wall0, cpu0 = time.perf_counter(), _cpu()
    done, start = False, np.array([True])
    while not done:
        t = _cpu()
        if policy is None:
            action = int(rng.integers(0, int(np.count_nonzero(mask))))
            obs, _, done, _, info = env.step(action)
            mask = info["action_mask"]
        else:
            action, _ = policy.predict(obs, None, start, True)
            start = np.array([False])
        times.append(_cpu() - t)
        if policy is not None:
            obs, _, done, _, info = env.step(action)
    cell.episode_cpu_s = _cpu() - cpu0
    cell.episode_wall_s = time.perf_counter() - wall0
    ms = 1e3 * np.asarray(times)
    cell.steps = int(ms.size)
    cell.decision_ms_median, cell.decision_ms_p90 = (float(x) for x in np.percentile(ms, [50, 90]))
    cell.decision_ms_max = float(ms.max())
    cell.peak_rss_mib = _peak_rss_mib()
    return cell


#: Set for the worker process: one BLAS thread, as the rest of labsched's measurements use.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Signals that stop a cell for its budget (the CPU timer, its rlimit backstop, the wall guard).
_BUDGET_EXITS = tuple(
    getattr(signal, name) for name in ("SIGPROF", "SIGXCPU", "SIGKILL") if hasattr(signal, name)
)


def _limit_and_run(params: dict[str, Any], budget: float, memory_limit: float) -> dict[str, Any]:
    """In a cell's process: address-space limit and CPU budget, then :func:`run_cell`."""
    if resource is not None:
        limit = int(memory_limit * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        backstop = math.ceil(budget) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (backstop, backstop + 5))
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_PROF, budget)  # SIGPROF (fatal) after `budget` s of CPU
    try:
        return {"cell": asdict(run_cell(**params))}
    except BaseException as exc:  # reported in the table, whatever it is
        return {"error": f"{type(exc).__name__}: {exc}"[:160]}


def _wall_guard(budget: float) -> float:
    """Wall seconds after which a cell is stopped whatever its CPU time (a hang, or a machine
    so busy that the cell gets under a tenth of a CPU)."""
    return 10.0 * budget + 60.0


def _serve_one(request: dict[str, Any]) -> dict[str, Any]:
    """In the worker: run one cell in a forked child, enforce the wall-time guard, report."""
    params, budget, memory_limit = request["cell"], request["budget"], request["memory_limit"]
    if not hasattr(os, "fork"):  # pragma: no cover - no isolation without fork
        return _limit_and_run(params, budget, memory_limit)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the cell's process
        os.close(read_fd)
        try:
            os.write(write_fd, json.dumps(_limit_and_run(params, budget, memory_limit)).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    guard = time.monotonic() + _wall_guard(budget)
    status, guarded = 0, False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > guard:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            guarded = True
            break
        time.sleep(0.01)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    if data:
        return json.loads(data)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in _BUDGET_EXITS:
        return {"budget": f"stopped by the wall-time guard ({_wall_guard(budget):g} s)" if guarded else "cpu"}
    return {"error": f"exit status {status}"}


def _serve() -> None:
    """The worker: one JSON request per line on stdin, one JSON answer per line on stdout."""
    for line in sys.stdin:
        print(json.dumps(_serve_one(json.loads(line))), flush=True)


class _Worker:
    """A process with labsched imported that forks one child per cell (fast, isolated cells:
    each child starts from the worker's memory, about 80 MiB, and its peaks are its own)."""

    def __init__(self, cache: str) -> None:
        env = dict(os.environ, LABSCHED_CACHE_DIR=cache, **{v: "1" for v in _THREAD_VARS})
        cmd = [sys.executable, "-m", "labsched.evaluation.scale_benchmark", "--serve"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def run(self, cell: ScaleCell, budget: float, memory_limit: float) -> ScaleCell:
        params = {"subject": cell.subject, "n": cell.n, "labs": cell.labs, "epoch": cell.epoch}
        params["horizon"] = cell.horizon
        request = {"cell": params, "budget": budget, "memory_limit": memory_limit}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "cell" in answer:
            return ScaleCell(**answer["cell"])
        if "budget" in answer:
            cell.status = SKIPPED
            cell.note = f"stopped at {budget:g} s of CPU" if answer["budget"] == "cpu" else answer["budget"]
        else:
            cell.status = "failed: " + answer["error"]
        return cell

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def _dominated(cell: ScaleCell, skipped: list[ScaleCell]) -> bool:
    """A smaller-or-equal cell of the same subject already ran out of budget."""
    return any(
        s.subject == cell.subject and s.n <= cell.n and s.labs <= cell.labs and s.epoch >= cell.epoch
        for s in skipped
    )


def run_scale(
    subjects: Sequence[str] | None = None,
    n_values: Sequence[int] = DEFAULT_N,
    lab_values: Sequence[int] = DEFAULT_LABS,
    epochs: Sequence[float] = DEFAULT_EPOCHS,
    *,
    horizon: float = 5.0,
    budget: float = 60.0,
    memory_limit: float = 4.0,
    out: str | Path | None = None,
    progress: bool = True,
) -> list[ScaleCell]:
    """Run the scale benchmark (see the module docstring) and print its table.

    Args:
        subjects: ``"env"`` and/or baseline names (default: ``env`` and every registered one).
        n_values: numbers of experiments. lab_values: numbers of labs. epochs: decision intervals.
        horizon: the deadline of every cell.
        budget: CPU-time budget per cell, in seconds.
        memory_limit: address-space limit per cell, in GiB.
        out: folder for ``table.md`` and ``table.csv`` (nothing written when None).
        progress: one line per finished cell on stderr.

    Raises:
        ValueError: for an unknown subject or a value out of range (message names it).
    """
    subjects = ["env", *sorted(BASELINES)] if subjects is None else list(subjects)
    for s in subjects:
        if s != "env":
            BASELINES.get(s)  # raises for an unknown name, listing the known ones
    budget = check_real("budget", budget, low=0.0, low_open=True)
    memory_limit = check_real("memory_limit", memory_limit, low=0.0, low_open=True)
    n_values = [check_int("n", v, 1) for v in n_values]
    lab_values = [check_int("labs", v, 1) for v in lab_values]
    epochs = sorted((check_real("epoch", e, low=0.0, low_open=True) for e in epochs), reverse=True)
    grid = [
        ScaleCell(s, n, labs, e, horizon)
        for s in subjects
        for e in epochs
        for n in sorted(n_values)
        for labs in sorted(lab_values)
    ]
    for c in grid:  # fail before running anything on a cell LabSpec rejects
        LabSpec(n_experiments=c.n, n_labs=c.labs, horizon=horizon, epoch=c.epoch)
    cells: list[ScaleCell] = []
    skipped: list[ScaleCell] = []
    with tempfile.TemporaryDirectory(prefix="labsched-scale-") as cache:
        worker = _Worker(cache)
        try:
            for i, cell in enumerate(grid, 1):
                t0 = time.perf_counter()
                if _dominated(cell, skipped):
                    cell.status, cell.note = SKIPPED, "a smaller cell ran out of budget"
                else:
                    cell = worker.run(cell, budget, memory_limit)
                if cell.status == SKIPPED:
                    skipped.append(cell)
                cells.append(cell)
                if progress:
                    print(
                        f"[{i}/{len(grid)}] {cell.subject} n={cell.n} l={cell.labs} epoch={cell.epoch:g}: "
                        f"{cell.status} ({time.perf_counter() - t0:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            worker.close()
    text = scale_markdown(cells, budget)
    print(text)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "table.md").write_text(text)
        write_csv(cells, folder / "table.csv", [f.name for f in fields(ScaleCell)])
    return cells


def _fmt(x: float, digits: int = 1) -> str:
    return "" if x != x else f"{x:.{digits}f}"


def scale_markdown(cells: Sequence[ScaleCell], budget: float | None = None) -> str:
    """The cells as a Markdown table (times: CPU unless marked wall)."""
    header = [
        "subject",
        "n",
        "l",
        "epoch",
        "status",
        "setup s",
        "steps",
        "decision ms (median / p90 / max)",
        "episode s (CPU / wall)",
        "peak RSS MiB",
    ]
    rows = []
    for c in cells:
        ok = c.status == "ok"
        rows.append(
            [
                c.subject,
                c.n,
                c.labs,
                f"{c.epoch:g}",
                c.status if not c.note else f"{c.status}: {c.note}",
                _fmt(c.setup_s, 2) if ok else "",
                c.steps if ok else "",
                f"{_fmt(c.decision_ms_median, 2)} / {_fmt(c.decision_ms_p90, 2)} / {_fmt(c.decision_ms_max)}"
                if ok
                else "",
                f"{_fmt(c.episode_cpu_s, 2)} / {_fmt(c.episode_wall_s, 2)}" if ok else "",
                _fmt(c.peak_rss_mib, 0) if ok else "",
            ]
        )
    note = f"Budget {budget:g} s of CPU per cell. " if budget is not None else ""
    return (
        markdown_table(header, rows, "lrrrl" + "r" * 5) + f"\n{note}Horizon {cells[0].horizon:g}.\n"
        if cells
        else ""
    )


def add_scale_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``labsched benchmark --scale`` (added to the benchmark's parser)."""
    g = parser.add_argument_group("scale benchmark (--scale)")
    g.add_argument(
        "--scale",
        action="store_true",
        help="run the scale benchmark instead: time and peak memory of the env and every "
        "baseline over n x l x epoch, one process per cell",
    )
    g.add_argument(
        "--budget", type=float, default=60.0, help="CPU-time budget per cell, seconds (default 60)"
    )
    g.add_argument("--out", default=None, help="folder for table.md and table.csv")
    g.add_argument(
        "--subjects", default=None, help="comma-separated: env and/or baseline names (default: all)"
    )
    g.add_argument("--n", default="20,200,2000", help="comma-separated numbers of experiments")
    g.add_argument("--labs", default="10,100,1000", help="comma-separated numbers of labs")
    g.add_argument("--epochs", default="0.1,0.01,0.001", help="comma-separated decision intervals")
    g.add_argument("--horizon", type=float, default=5.0, help="horizon of every cell (default 5)")
    g.add_argument(
        "--memory-limit", type=float, default=4.0, help="address-space limit per cell, GiB (default 4)"
    )
    return parser


def _split(text: str, kind: type) -> list[Any]:
    try:
        return [kind(x) for x in str(text).split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"expected a comma-separated list of {kind.__name__} values, got {text!r}") from exc


def run_scale_from_args(args: argparse.Namespace) -> list[ScaleCell]:
    """:func:`run_scale` with the options of :func:`add_scale_arguments`."""
    return run_scale(
        None if args.subjects is None else _split(args.subjects, str),
        _split(args.n, int),
        _split(args.labs, int),
        _split(args.epochs, float),
        horizon=args.horizon,
        budget=args.budget,
        memory_limit=args.memory_limit,
        out=args.out,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m labsched.evaluation.scale_benchmark [options]`` (``--serve``: the worker)."""
    parser = add_scale_arguments(
        argparse.ArgumentParser(prog="labsched benchmark --scale", description=__doc__)
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
    else:
        run_scale_from_args(args)


if __name__ == "__main__":
    main()
