"""Sweeps under attack: impossible result values, empty run counts, killed parallel sweeps."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labsched.evaluation.sweep import (
    COLUMNS,
    Cell,
    ResultsFileError,
    load_results,
    run_sweep,
    sweep_cells,
)


def _valid_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.csv"
    cell = Cell(objective="cosines", scheduler="onfcp", n_experiments=8, n_labs=4, selector="random")
    run_sweep([cell], path, n_jobs=1, progress=False)
    return path


def _with_value(path: Path, column: str, value: str) -> None:
    header, line = path.read_text().splitlines()[:2]
    fields = next(csv.reader([line]))
    fields[COLUMNS.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    path.write_text(header + "\n" + buf.getvalue())


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("cpe", "999999", r"cpe must be in \[0, n \(n - 1\) / 2 = 28\] for n_experiments=8, got 999999"),
        ("cpe", "-1", r"cpe must be in \[0, .*got -1"),
        ("completed", "-5", r"completed must be in \[0, n_experiments=8\], got -5"),
        ("completed", "9", r"completed must be in \[0, n_experiments=8\], got 9"),
        ("best_value", "inf", "best_value must be finite, got inf"),
        ("best_value", "nan", "best_value must be finite, got nan"),
        ("regret", "-0.5", "regret must be finite and >= 0, got -0.5"),
        ("regret", "inf", "regret must be finite and >= 0, got inf"),
        ("rmse", "-1.0", "rmse must be NaN or finite and >= 0"),
        ("integrated_variance", "inf", "integrated_variance must be NaN or finite and >= 0"),
        ("env_seed", "12", r"env_seed must be \d+ \(derived from the cell's fields\), got 12"),
        ("agent_seed", "-3", r"agent_seed must be \d+ \(derived from the cell's fields\), got -3"),
        ("init_hash", "not-a-hash", "init_hash must be 16 lowercase hex digits"),
        ("wall_time", "-2.0", "wall_time must be finite and >= 0 seconds, got -2.0"),
        ("wall_time", "nan", "wall_time must be finite and >= 0 seconds, got nan"),
    ],
)
def test_impossible_result_values_are_refused_naming_file_line_and_column(tmp_path, column, value, message):
    path = _valid_file(tmp_path)
    assert len(load_results(path)) == 1
    _with_value(path, column, value)
    with pytest.raises(ResultsFileError, match=r"sweep\.csv: line 2: " + message):
        load_results(path)
    # a sweep does not resume from such a file either, and leaves it as it was
    text = path.read_text()
    cell = Cell(objective="cosines", scheduler="onfcp", n_experiments=8, n_labs=4, selector="random")
    with pytest.raises(ResultsFileError, match="line 2"):
        run_sweep([cell], path, n_jobs=1, progress=False)
    assert path.read_text() == text


def test_the_committed_results_file_is_still_valid():
    committed = Path(__file__).resolve().parents[1] / "docs" / "results" / "information" / "sweep.csv"
    rows = load_results(committed)
    assert len(rows) == 3000
    assert all(0 <= r["cpe"] <= r["n_experiments"] * (r["n_experiments"] - 1) // 2 for r in rows)


@pytest.mark.parametrize("runs", [0, -1])
def test_sweep_cells_rejects_empty_run_counts(runs):
    with pytest.raises(ValueError, match=rf"runs must be an integer >= 1, got {runs}"):
        sweep_cells(["cosines"], ["ofil"], runs=runs)


def test_sweep_cells_rejects_non_integer_run_counts():
    with pytest.raises(TypeError, match="runs must be an integer"):
        sweep_cells(["cosines"], ["ofil"], runs=2.5)
    assert len(sweep_cells(["cosines"], ["ofil"], runs=2)) == 2


@pytest.mark.parametrize("runs", ["0", "-1"])
def test_sweep_cli_rejects_empty_run_counts(tmp_path, capsys, runs):
    from labsched.cli import main

    code = main(["sweep", "--schedulers", "ofil", "--runs", runs, "--no-progress", "--out", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert f"runs must be an integer >= 1, got {runs}" in err
    assert not (tmp_path / "sweep.csv").exists()


# ------------------------------------------------------------------ killed parallel sweeps

_SWEEP = """
import sys
from labsched.evaluation.sweep import run_sweep, sweep_cells
cells = sweep_cells(["cosines"], ["ps"], runs=400, n_experiments=20, n_labs=10)
run_sweep(cells, sys.argv[1], n_jobs=2, progress=False)
"""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(d.name))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _loky_workers(pid: int) -> list[int]:
    workers = []
    for child in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"popen_loky_posix" in cmdline:
            workers.append(child)
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, None)])
def test_a_killed_parallel_sweep_leaves_no_worker_alive(tmp_path, sig, status):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SWEEP, str(tmp_path / "sweep.csv")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_default_signals,  # a shell's background job would start it with SIGINT ignored
    )
    everything = [proc.pid]
    try:
        deadline = time.monotonic() + 90
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = _loky_workers(proc.pid)
        assert len(workers) == 2, "the sweep never started its two loky workers"
        time.sleep(1.0)  # let them pick up cells
        everything += _descendants(proc.pid)
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        assert code == (status if status is not None else -sig)  # SIGINT: KeyboardInterrupt
        deadline = time.monotonic() + 5
        while any(_running(p) for p in everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in everything if _running(p)], "processes of the sweep survived it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in everything[1:]:
            if _running(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
