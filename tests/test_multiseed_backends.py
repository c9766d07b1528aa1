"""``train_seeds`` and ``labsched train --seeds`` on the sweeps' backends (loky, Dask, Ray)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import labsched.cli_train as cli_train
from labsched import LabSpec
from labsched.agents.multiseed import SEED_BACKENDS, train_seeds
from labsched.cli import main

TINY = LabSpec(n_experiments=6, n_labs=3, horizon=3.0)
BASE = {
    "n_steps": 32,
    "batch_size": 64,
    "n_epochs": 1,
    "learning_rate": 1e-3,
    "features": True,
    "normalize": True,
    "n_envs": 2,
    "policy_kwargs": "dict(net_arch=[16, 16], activation_fn=nn.Tanh)",
}
TRAIN = dict(
    algo="maskable_ppo",
    spec=TINY,
    total_timesteps=128,
    hyperparams=BASE,
    eval_freq=0,
    eval_episodes=2,
    n_eval_envs=2,
    references=None,
    plot=False,
    verbose=0,
)


def _rows(out: Path) -> list[dict[str, str]]:
    """seeds_summary.csv without the timing column, with each seed folder relative to ``out``."""
    with open(out / "seeds_summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        del row["seconds"]
        row["out"] = Path(row["out"]).relative_to(out).as_posix()
    return rows


# --- validation (no training) ---------------------------------------------------------------


def test_seed_backends_are_the_sweeps():
    assert set(SEED_BACKENDS) == {"loky", "dask", "ray"}


@pytest.mark.parametrize("backend", ["spark", "Dask", "", None, 3])
def test_train_seeds_rejects_an_unknown_backend(tmp_path, backend):
    with pytest.raises(ValueError, match=r"backend must be one of \['loky', 'dask', 'ray'\]"):
        train_seeds("0-1", tmp_path, backend=backend, **TRAIN)
    assert not (tmp_path / "seeds_summary.csv").exists()


def test_train_seeds_rejects_an_address_with_loky(tmp_path):
    with pytest.raises(ValueError, match=r"address needs backend 'dask' or 'ray'.*'tcp://10\.0\.0\.5:8786'"):
        train_seeds("0-1", tmp_path, backend="loky", address="tcp://10.0.0.5:8786", **TRAIN)


@pytest.mark.parametrize("address", ["", "   ", 8786])
def test_train_seeds_rejects_an_empty_or_non_string_address(tmp_path, address):
    with pytest.raises(ValueError, match="address must be a non-empty scheduler address"):
        train_seeds("0-1", tmp_path, backend="dask", address=address, **TRAIN)


@pytest.fixture
def captured(monkeypatch):
    """Replace the CLI's train_seeds by a recorder of its arguments."""
    calls: list[dict] = []

    def fake(seeds, out, **kwargs):
        calls.append({"seeds": seeds, "out": out, **kwargs})
        return []

    monkeypatch.setattr(cli_train, "train_seeds", fake)
    monkeypatch.setattr(cli_train, "require_rl_extra", lambda what: None)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return calls


@pytest.mark.parametrize(
    "extra", [["--backend", "dask"], ["--backend", "loky"], ["--address", "tcp://127.0.0.1:8786"]]
)
def test_cli_backend_and_address_need_seeds(captured, capsys, extra):
    assert main(["train", "--no-progress", *extra]) == 2
    assert "--backend and --address choose where --seeds run: give --seeds too" in capsys.readouterr().err
    assert captured == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--address", "tcp://127.0.0.1:8786"], "--address needs --backend ray or dask, got --backend loky"),
        (["--backend", "dask", "--address", "http://h:8786"], "--address of a dask cluster must be"),
        (["--backend", "dask", "--address", "host-without-port"], "--address of a dask cluster must be"),
        (["--backend", "ray", "--address", "h:70000"], "--address of a ray cluster must be"),
    ],
)
def test_cli_rejects_an_address_the_backend_cannot_use(captured, capsys, extra, message):
    assert main(["train", "--seeds", "0-1", "--out", "x", *extra]) == 2
    assert message in capsys.readouterr().err
    assert captured == []


def test_cli_rejects_an_unknown_backend(captured, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--seeds", "0-1", "--backend", "spark"])
    assert "invalid choice: 'spark'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "env", "backend", "address"),
    [
        ([], {}, "loky", None),
        (["--backend", "dask"], {}, "dask", None),
        (["--backend", "dask", "--address", " tcp://10.0.0.5:8786 "], {}, "dask", "tcp://10.0.0.5:8786"),
        (["--backend", "dask"], {"DASK_SCHEDULER_ADDRESS": "10.0.0.5:8786"}, "dask", "10.0.0.5:8786"),
        (["--backend", "ray", "--address", "auto"], {}, "ray", "auto"),
        (["--backend", "loky"], {"RAY_ADDRESS": "10.0.0.5:6379"}, "loky", None),
    ],
)
def test_cli_passes_backend_and_address_to_train_seeds(
    captured, monkeypatch, tmp_path, extra, env, backend, address
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = str(tmp_path / "s")
    assert main(["train", "--seeds", "0-2", "--jobs", "3", "--out", out, *extra]) == 0
    assert len(captured) == 1
    call = captured[0]
    assert (call["seeds"], call["out"], call["n_jobs"]) == ("0-2", out, 3)
    assert (call["backend"], call["address"]) == (backend, address)


# --- the same runs on every backend (short trainings) ----------------------------------------


@pytest.fixture(scope="module")
def loky_rows(tmp_path_factory):
    pytest.importorskip("sb3_contrib")
    pytest.importorskip("yaml")
    out = tmp_path_factory.mktemp("loky")
    runs = train_seeds([0, 1], out, n_jobs=2, backend="loky", **TRAIN)
    assert [r.seed for r in runs] == [0, 1]
    return _rows(out)


@pytest.mark.slow
def test_two_seeds_on_a_dask_cluster_match_loky(loky_rows, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        runs = train_seeds([0, 1], tmp_path, n_jobs=2, backend="dask", address=address, **TRAIN)
        assert len(cluster.workers) == 2
    assert cluster.status.name == "closed"
    assert [r.seed for r in runs] == [0, 1]
    rows = _rows(tmp_path)
    assert [r["out"] for r in rows] == ["seed0", "seed1"]
    assert all(int(r["timesteps"]) >= 128 for r in rows)
    assert rows == loky_rows  # each seed's row equals its loky run exactly (timing aside)
    assert (tmp_path / "seed0" / "model.zip").is_file()
