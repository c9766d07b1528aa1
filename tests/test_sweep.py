"""Sweeps: pure cells, common random numbers, resume, corruption, backends, trained agents."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.evaluation import sweep
from labsched.evaluation.sweep import (
    COLUMNS,
    NONDETERMINISTIC,
    Cell,
    ResultsFileError,
    build_agent,
    load_results,
    parse_objective,
    run_cell,
    run_sweep,
)


def _cells(n_runs: int = 3, schedulers=("onfcp", "ofil", "busy:3"), selector: str = "random") -> list[Cell]:
    return [
        Cell(
            objective="cosines", scheduler=s, horizon=5.0, run=r, selector=selector, n_experiments=8, n_labs=4
        )
        for r in range(n_runs)
        for s in schedulers
    ]


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in NONDETERMINISTIC} for r in rows]


# ------------------------------------------------------------------------------------- cells


def test_cell_id_is_stable_and_sensitive_to_every_field():
    a = Cell(objective="hartmann3", scheduler="ps", horizon=5.0, run=3, options={"n_simulations": 50})
    b = Cell(objective="hartmann3", scheduler="ps", horizon=5, run=3, options='{"n_simulations":50}')
    assert a == b and a.id == b.id and len(a.id) == 16
    assert a.options == '{"n_simulations":50}' and a.options_dict == {"n_simulations": 50}
    ids = {a.id}
    for change in [
        {"objective": "cosines"},
        {"scheduler": "ofil"},
        {"horizon": 6.0},
        {"run": 4},
        {"selector": "kb-ei"},
        {"options": {}},
        {"n_labs": 9},
        {"seed": 1},
    ]:
        ids.add(a.replace(**change).id)
    assert len(ids) == 9


def test_env_seed_ignores_scheduler_selector_and_horizon_but_not_the_run():
    a = Cell(objective="cosines", scheduler="ps", horizon=4.0, run=0)
    same = [
        a.replace(scheduler="onfcp"),
        a.replace(horizon=6.0),
        a.replace(horizon=math.inf, scheduler="sequential"),
        a.replace(selector="kb-ei"),
    ]
    assert {c.env_seed for c in same} == {a.env_seed}
    assert a.replace(run=1).env_seed != a.env_seed
    assert a.replace(objective="hartmann3").env_seed != a.env_seed
    assert a.replace(seed=7).env_seed != a.env_seed
    # infinite horizon: the sequential reference gets a horizon long enough for all n
    assert a.replace(horizon=math.inf).spec().horizon > 20 * 1.5


def test_cell_validation():
    with pytest.raises(ValueError, match="horizon"):
        Cell(horizon=0.0)
    with pytest.raises(TypeError):
        Cell(run=1.5)
    with pytest.raises(ValueError, match="single line"):
        Cell(scheduler="a\nb")
    with pytest.raises(ValueError, match="unknown baseline"):
        run_cell(Cell(scheduler="nope", selector="random"))


def test_objective_box_syntax():
    obj = parse_objective("rosenbrock@0:1")
    assert obj.bounds == ((0.0, 1.0), (0.0, 1.0)) and obj.optimum_value == 10.0
    assert parse_objective("rosenbrock@0:1,0:1.5").bounds == ((0.0, 1.0), (0.0, 1.5))
    with pytest.raises(ValueError):
        parse_objective("rosenbrock@zero")


# ----------------------------------------------------------------- purity and random numbers


def test_run_cell_row_has_cell_fields_and_outcomes():
    cell = Cell(objective="cosines", scheduler="ofstaged", run=1, selector="random")
    row = run_cell(cell)
    assert list(row) == list(COLUMNS)
    assert row["cell_id"] == cell.id and row["scheduler"] == "ofstaged" and row["run"] == 1
    assert row["regret"] >= 0 and 0 <= row["completed"] <= 20 and row["cpe"] >= 0 and row["wall_time"] > 0


def test_same_cell_in_another_process_gives_identical_numbers():
    cell = Cell(
        objective="hartmann3",
        scheduler="ps",
        horizon=5.0,
        run=2,
        selector="kb-ei",
        options={"n_simulations": 30},
    )
    here = run_cell(cell)
    code = (
        "import json, sys\n"
        "from labsched.evaluation.sweep import Cell, run_cell\n"
        "cell = Cell(**json.loads(sys.argv[1]))\n"
        "print(json.dumps(run_cell(cell)))\n"
    )
    fields = {k: getattr(cell, k) for k in Cell.__dataclass_fields__}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fields)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert _strip([here]) == _strip([there])


def test_common_random_numbers_across_schedulers():
    base = Cell(objective="hartmann3", scheduler="onfcp", horizon=5.0, run=4, selector="random")
    rows = [run_cell(base.replace(scheduler=s)) for s in ("onfcp", "ofil", "busy:2")]
    rows.append(run_cell(base.replace(scheduler="sequential", horizon=math.inf)))
    assert len({r["init_hash"] for r in rows}) == 1  # same initial design for every scheduler
    assert run_cell(base.replace(run=5))["init_hash"] != rows[0]["init_hash"]
    # the same duration draws, in start order, whatever the schedule
    durations = []
    for s in ("onfcp", "busy:2"):
        cell = base.replace(scheduler=s)
        spec = cell.spec()
        agent, _, _ = build_agent(cell, spec)
        env = ConcurrentLabsEnv(spec, reward="regret", objective="hartmann3", selector="random")
        obs, info = env.reset(seed=cell.env_seed)
        done = False
        while not done:
            action, _ = agent.predict(obs)
            obs, _, done, _, info = env.step(action)
        durations.append({rec.index: rec.end - rec.start for rec in info["log"]})
    common = set(durations[0]) & set(durations[1])
    assert len(common) >= 5
    assert all(abs(durations[0][i] - durations[1][i]) < 1e-12 for i in common)


# ------------------------------------------------------------------------ resume and files


def test_resume_runs_only_the_missing_cells(tmp_path, monkeypatch):
    cells = _cells()
    path = tmp_path / "sweep.csv"
    half = cells[: len(cells) // 2]
    first = run_sweep(half, path, n_jobs=1, progress=False)
    assert len(load_results(path)) == len(half)

    calls = []
    real = sweep.run_cell

    def counting(cell):
        calls.append(cell.id)
        return real(cell)

    monkeypatch.setattr(sweep, "run_cell", counting)
    rows = run_sweep(cells, path, n_jobs=1, progress=False)
    assert sorted(calls) == sorted(c.id for c in cells[len(half) :])
    assert [r["cell_id"] for r in rows] == [c.id for c in cells]
    assert rows[: len(half)] == first  # reused exactly as read back
    calls.clear()
    again = run_sweep(cells, path, n_jobs=1, progress=False)
    assert calls == [] and again == rows
    # rows read back equal freshly computed ones (floats round-trip exactly)
    assert _strip(rows) == _strip([real(c) for c in cells])


def test_no_resume_starts_afresh(tmp_path):
    cells = _cells(1)
    path = tmp_path / "sweep.csv"
    run_sweep(cells, path, n_jobs=1, progress=False)
    run_sweep(cells[:1], path, n_jobs=1, progress=False, resume=False)
    assert len(load_results(path)) == 1


def _write_valid(tmp_path):
    path = tmp_path / "sweep.csv"
    run_sweep(_cells(1), path, n_jobs=1, progress=False)
    return path


def test_garbage_line_raises_naming_file_and_line(tmp_path):
    path = _write_valid(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, "this is not a row\n")
    path.write_text("".join(lines))
    with pytest.raises(ResultsFileError, match=r"sweep\.csv: line 3"):
        run_sweep(_cells(1), path, n_jobs=1, progress=False)


def test_wrong_header_raises(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ResultsFileError, match="line 1: wrong header"):
        run_sweep(_cells(1), path, n_jobs=1, progress=False)
    assert path.read_text() == "a,b,c\n1,2,3\n"  # nothing overwritten
    path.write_bytes((",".join(COLUMNS) + "\r\n").encode())
    with pytest.raises(ResultsFileError, match="line 1 ends in CR LF"):
        run_sweep(_cells(1), path, n_jobs=1, progress=False)


def _split(line: str) -> list[str]:
    return next(csv.reader([line]))


def _join(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def test_unparsable_value_and_edited_row_raise(tmp_path):
    path = _write_valid(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    row = _split(lines[1])
    row[COLUMNS.index("cpe")] = "lots"
    path.write_text(lines[0] + _join(row) + "".join(lines[2:]))
    with pytest.raises(ResultsFileError, match="line 2: column 'cpe'"):
        load_results(path)
    # a changed cell field no longer matches the row's id
    row = _split(lines[1])
    row[COLUMNS.index("scheduler")] = "ofstaged"
    path.write_text(lines[0] + _join(row) + "".join(lines[2:]))
    with pytest.raises(ResultsFileError, match=r"line 2: cell_id .* does not match"):
        load_results(path)
    row = _split(lines[1])[:-2]
    path.write_text(lines[0] + _join(row) + "".join(lines[2:]))
    with pytest.raises(ResultsFileError, match=r"line 2: .* fields, expected"):
        load_results(path)


def test_duplicate_ids_with_different_values_raise(tmp_path):
    path = _write_valid(tmp_path)
    text = path.read_text()
    row = _split(text.splitlines()[1])
    row[COLUMNS.index("wall_time")] = "99.0"  # only wall_time differs: accepted
    path.write_text(text + _join(row))
    assert len(load_results(path)) == 3
    row[COLUMNS.index("regret")] = "0.123"
    path.write_text(text + _join(row))
    with pytest.raises(ResultsFileError, match=r"line 5: cell .* appears again .* line 2"):
        load_results(path)


def test_truncated_final_line_is_dropped_with_warning_and_recomputed(tmp_path, monkeypatch):
    cells = _cells(1)
    path = tmp_path / "sweep.csv"
    run_sweep(cells, path, n_jobs=1, progress=False)
    text = path.read_text()
    last = text.splitlines(keepends=True)[-1]
    path.write_text(text[: len(text) - len(last) // 2])  # an interrupted write
    with pytest.warns(UserWarning, match=r"line 4: incomplete final line"):
        assert len(load_results(path)) == 2

    calls = []
    real = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda c: calls.append(c.id) or real(c))
    with pytest.warns(UserWarning, match="dropped"):
        rows = run_sweep(cells, path, n_jobs=1, progress=False)
    assert calls == [cells[-1].id] and len(rows) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_results(path)) == 3  # the file is whole again


def test_final_line_without_newline_that_is_not_a_row_prefix_is_an_error(tmp_path):
    path = _write_valid(tmp_path)
    path.write_text(path.read_text() + "garbage without newline")
    with pytest.raises(ResultsFileError, match="does not look like an interrupted write"):
        load_results(path)


def test_a_second_sweep_on_a_locked_file_fails(tmp_path):
    import fcntl

    path = _write_valid(tmp_path)
    with open(path, "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="locked"):
            run_sweep(_cells(1), path, n_jobs=1, progress=False)


# ---------------------------------------------------------------------------- backends


def test_loky_workers_give_the_serial_rows(tmp_path):
    cells = _cells(2)
    serial = run_sweep(cells, tmp_path / "a.csv", n_jobs=1, progress=False)
    parallel = run_sweep(cells, tmp_path / "b.csv", n_jobs=2, progress=False)
    assert _strip(serial) == _strip(parallel)


@pytest.mark.slow  # starts a local Ray instance (~30 s on 2 cores)
def test_ray_backend_gives_the_same_rows(tmp_path):
    pytest.importorskip("ray")
    cells = _cells(2)
    local = run_sweep(cells, tmp_path / "a.csv", n_jobs=1, progress=False)
    remote = run_sweep(cells, tmp_path / "b.csv", n_jobs=2, backend="ray", progress=False)
    assert _strip(local) == _strip(remote)


@pytest.mark.slow  # starts a local Dask cluster (~15 s on 2 cores)
def test_dask_backend_gives_the_same_rows(tmp_path):
    pytest.importorskip("dask.distributed")
    cells = _cells(2)
    local = run_sweep(cells, tmp_path / "a.csv", n_jobs=1, progress=False)
    remote = run_sweep(cells, tmp_path / "b.csv", n_jobs=2, backend="dask", progress=False)
    assert _strip(local) == _strip(remote)


# ------------------------------------------------------------------------ trained agents


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    pytest.importorskip("stable_baselines3")
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from stable_baselines3 import PPO

    from labsched import LabSpec

    folder = tmp_path_factory.mktemp("models")
    spec = LabSpec(n_experiments=8, n_labs=4)
    ppo = PPO(
        "MlpPolicy", ConcurrentLabsEnv(spec, flatten=True), n_steps=32, batch_size=32, n_epochs=1, seed=0
    )
    ppo.learn(32)
    ppo.save(folder / "ppo_flat.zip")
    masked = sb3_contrib.MaskablePPO(
        "MultiInputPolicy", ConcurrentLabsEnv(spec), n_steps=32, batch_size=32, n_epochs=1, seed=0
    )
    masked.learn(32)
    masked.save(folder / "maskable_dict.zip")
    return folder


def test_trained_agents_are_loaded_with_their_class(tiny_models):
    for name, cls, flat, maskable in [
        ("ppo_flat", "PPO", True, False),
        ("maskable_dict", "MaskablePPO", False, True),
    ]:
        cell = Cell(
            objective="cosines",
            scheduler=name,
            agent_path=str(tiny_models / f"{name}.zip"),
            n_experiments=8,
            n_labs=4,
            selector="random",
        )
        assert len(cell.agent_sha256) == 64
        model, is_flat, is_maskable = build_agent(cell, cell.spec())
        assert type(model).__name__ == cls and is_flat is flat and is_maskable is maskable
        a, b = run_cell(cell), run_cell(cell)
        assert _strip([a]) == _strip([b]) and 0 <= a["completed"] <= 8


def test_trained_agent_with_wrong_lab_count_is_rejected(tiny_models):
    cell = Cell(scheduler="ppo", agent_path=str(tiny_models / "ppo_flat.zip"), n_labs=5, selector="random")
    with pytest.raises(ValueError, match="observations of shape"):
        run_cell(cell)


def test_labsched_train_output_is_loaded_with_features_and_normalisation(tmp_path):
    pytest.importorskip("labsched.agents.loading")
    pytest.importorskip("stable_baselines3")
    from labsched.cli import main

    out = tmp_path / "run"
    args = ["train", "-n", "8", "-l", "4", "--horizon", "3", "--algo", "ppo", "--total-timesteps", "64"]
    args += ["--features", "--normalize", "--out", str(out), "--no-progress", "--no-plot"]
    args += ["--eval-freq", "1000000", "--hyperparams", "n_envs=1", "n_steps=32", "batch_size=32"]
    try:
        code = main(args)
    except SystemExit as exc:  # the train command's options changed
        pytest.skip(f"labsched train did not accept the options: {exc}")
    assert code == 0
    cell = Cell(objective="cosines", scheduler="trained", agent_path=str(out), n_experiments=8, n_labs=4)
    cell = cell.replace(horizon=4.0, selector="random")
    assert [f.name for f in sweep._agent_files(sweep.resolve_agent_path(out))] == [
        "best_model.zip",
        "agent.json",
        "best_model_vecnormalize.npz",
    ]
    agent, flat, maskable = build_agent(cell, cell.spec())
    assert type(agent).__name__ == "LoadedAgent" and agent.features and agent.normalizer is not None
    assert not flat and not maskable and agent.spec.horizon == 4.0
    a, b = run_cell(cell), run_cell(cell)
    assert _strip([a]) == _strip([b]) and 0 <= a["completed"] <= 8


def test_sweep_cli_with_schedulers(tmp_path, capsys):
    from labsched.cli import main

    code = main(
        [
            "sweep",
            "--schedulers",
            "onfcp",
            "busy:2",
            "--runs",
            "2",
            "-n",
            "8",
            "-l",
            "4",
            "--selector",
            "random",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| cosines | busy:2 | 5 | 2 |" in out
    assert len(load_results(tmp_path / "sweep.csv")) == 4
    assert np.isfinite([r["regret"] for r in load_results(tmp_path / "sweep.csv")]).all()
