"""The campaign planner: env parity, ask/tell semantics, errors that change nothing, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import labsched  # noqa: F401  (registers the envs)
from labsched import LabSpec
from labsched.baselines import make
from labsched.campaign import Campaign, JournalError, simulate
from labsched.cli import main
from labsched.envs._lib.rollout import play_episode

SPEC = LabSpec(n_experiments=8, n_labs=3, horizon=4.0)


def _env_run(scheduler, objective, seed, noise=0.0, selector="kb-ei"):
    env = gym.make(
        "labsched/ConcurrentLabs-v0",
        spec=SPEC,
        reward="regret",
        objective=objective,
        selector=selector,
        noise_std=noise,
    )
    return play_episode(make(scheduler, SPEC, seed=seed), env, seed=seed).info


@pytest.mark.parametrize(
    ("scheduler", "objective", "seed", "noise"),
    [
        ("ps", "cosines", 0, 0.0),
        ("ps", "branin", 3, 0.1),
        ("onfcp", "hartmann3", 1, 0.0),
        ("random", "cosines", 2, 0.0),
    ],
)
def test_simulated_campaign_makes_the_env_decisions(tmp_path, scheduler, objective, seed, noise):
    info = _env_run(scheduler, objective, seed, noise)
    c = simulate(
        tmp_path / "c.db", objective=objective, spec=SPEC, scheduler=scheduler, seed=seed, noise_std=noise
    )
    env_runs = sorted(info["log"] + info["unfinished"], key=lambda r: r.index)
    hist = c.history()
    assert [(r.index, r.lab, r.start, r.prior) for r in env_runs] == [
        (o.id, o.lab, o.started_at, o.prior) for o in hist
    ]
    assert [r.end for r in info["log"]] == [c.state.orders[i].finished_at for i in c.state.data_order]
    X, y = c.state.data()
    np.testing.assert_array_equal(X, info["X"])  # initial design, then inputs in completion order
    np.testing.assert_array_equal(y, info["y"])
    np.testing.assert_array_equal(c.recommendation()["x"], info["best_x"])
    # the reopened journal replays to the same state
    again = Campaign.open(tmp_path / "c.db")
    assert again.history() == hist


def _campaign(tmp_path, name="c.db", **kw):
    args = dict(spec=SPEC, bounds=[(0.0, 1.0), (0.0, 1.0)], scheduler="ps", selector="kb-ei", seed=0)
    args.update(kw)
    return Campaign.create(tmp_path / name, **args)


def test_ask_tell_fail_semantics(tmp_path):
    c = _campaign(tmp_path)
    assert c.next_ask_time() == 0.0
    orders = c.ask(now=0.0)
    assert len(orders) == 3 and [o.lab for o in orders] == [0, 1, 2]
    assert all(o.status == "running" for o in c.history())
    # asking again at the same time (answer lost) gives the same orders, nothing new started
    assert c.ask(now=0.0) == orders and len(c.history()) == 3
    assert Campaign.open(tmp_path / "c.db").ask(now=0.0) == orders
    assert c.next_ask_time() == pytest.approx(0.1)
    done = c.tell(orders[1].id, y=0.7, finished_at=1.0)
    assert done.status == "done" and done.y == 0.7 and done.finished_at == 1.0
    assert c.next_ask_time() == 1.0  # a result arrived: ask now
    failed = c.fail(orders[0].id, finished_at=1.0)
    assert failed.status == "failed" and failed.y is None
    st = c.status()
    assert (st.started, st.running, st.done, st.failed, st.remaining_budget) == (3, 1, 1, 1, 5)
    new = c.ask(now=1.0)
    assert all(o.lab in (0, 1) for o in new) and all(o.prior == 2 for o in new)
    rec = c.recommendation()
    assert rec["x"] == list(orders[1].x) and rec["y"] == 0.7


def test_errors_change_nothing(tmp_path):
    c = _campaign(tmp_path)
    orders = c.ask(now=0.0)
    c.tell(orders[0].id, y=1.0, finished_at=1.0)
    n = len(c.events())
    with pytest.raises(ValueError, match="unknown order id 7"):
        c.tell(7, y=1.0, finished_at=2.0)
    with pytest.raises(ValueError, match="already done"):
        c.tell(orders[0].id, y=2.0, finished_at=2.0)
    with pytest.raises(ValueError, match="already done"):
        c.fail(orders[0].id, finished_at=2.0)
    with pytest.raises(ValueError, match="earlier than the last event"):
        c.tell(orders[1].id, y=1.0, finished_at=0.5)
    with pytest.raises(ValueError, match="earlier than the last event"):
        c.ask(now=0.5)
    for bad in (float("nan"), float("inf"), "1.0", None):
        with pytest.raises(ValueError, match="y must be a finite real number"):
            c.tell(orders[1].id, y=bad, finished_at=2.0)
    with pytest.raises(ValueError, match="finished_at must be a finite"):
        c.tell(orders[1].id, y=1.0, finished_at=float("nan"))
    with pytest.raises(TypeError, match="order id must be an integer"):
        c.tell("1", y=1.0, finished_at=2.0)
    assert len(c.events()) == n
    assert Campaign.open(tmp_path / "c.db").history() == c.history()


def test_bad_configuration_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="bounds must have shape"):
        _campaign(tmp_path, bounds=[0.0, 1.0])
    with pytest.raises(ValueError, match="low < high"):
        _campaign(tmp_path, bounds=[(1.0, 0.0)])
    with pytest.raises(ValueError, match="bounds must be finite"):
        _campaign(tmp_path, bounds=[(0.0, float("inf"))])
    with pytest.raises(TypeError, match=r"spec must be a labsched\.LabSpec"):
        _campaign(tmp_path, spec={"n_experiments": 3})
    with pytest.raises(ValueError, match="unknown scheduler 'nope'"):
        _campaign(tmp_path, scheduler="nope")
    with pytest.raises(ValueError, match="selector"):
        _campaign(tmp_path, selector="nope")
    with pytest.raises(ValueError, match="goal must be one of"):
        _campaign(tmp_path, goal="win")
    with pytest.raises(ValueError, match="stop_when keys"):
        _campaign(tmp_path, stop_when={"sd": 0.1})
    with pytest.raises(ValueError, match=r"initial_data X must have shape \(m, 2\)"):
        _campaign(tmp_path, initial_data=(np.zeros((3, 3)), np.zeros(3)))
    with pytest.raises(ValueError, match="initial_data y must have 3 values"):
        _campaign(tmp_path, initial_data=(np.zeros((3, 2)), np.zeros(2)))
    with pytest.raises(ValueError, match="initial_data y must contain only finite"):
        _campaign(tmp_path, initial_data=(np.zeros((1, 2)), [float("nan")]))
    assert not (tmp_path / "c.db").exists()  # nothing was created by a rejected call
    c = _campaign(tmp_path)
    with pytest.raises(ValueError, match=r"X must have shape \(m, 2\)"):
        c.posterior(np.zeros((2, 3)))
    with pytest.raises(FileExistsError, match="already holds"):
        _campaign(tmp_path)
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="not a campaign journal"):
        Campaign.open(tmp_path / "junk.db")
    with pytest.raises(FileNotFoundError):
        Campaign.open(tmp_path / "missing.db")


def test_rationale_thresholds_and_jsonl(tmp_path):
    c = simulate(
        tmp_path / "c.db",
        objective="cosines",
        spec=SPEC,
        scheduler="ps",
        seed=0,
        stop_when={"sd_at_best": 0.05, "batch_gain": 1e-12},
    )
    decisions = c.decisions()
    first = decisions[0]
    assert (
        first["orders"] == [0, 1, 2] and first["seed"] == 0 and first["code_version"].startswith("labsched ")
    )
    assert first["scheduler_view"]["chosen_policy"] == "pi0"
    assert len(first["chosen"]) == 3 and all(ch["sd"] >= 0 for ch in first["chosen"])
    assert first["gp"]["lengthscale"] == pytest.approx(0.1)
    # kb-ei audits its own picks: those are reported, the stand-in scores are kept beside them
    assert first["candidates_kind"].startswith("expected improvement (the selector's own scores")
    assert first["selector_scores"]["selector"] == "kb-ei" and len(first["selector_scores"]["picks"]) == 3
    assert 1 <= len(first["top_candidates"]) <= 10 and len(first["standin"]["top_candidates"]) == 10
    values = [cand["value"] for cand in first["top_candidates"]]
    assert values == sorted(values, reverse=True)
    assert any(len(d["scheduler_view"].get("policies", {})) > 1 for d in decisions)
    st = c.status()
    assert st.thresholds["sd_at_best"]["crossed"] == (st.recommendation["sd"] < 0.05)
    assert st.thresholds["batch_gain"]["crossed"] is False and st.stop is True
    lines = c.export_jsonl(tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["decision"] for line in lines] == list(range(len(decisions)))


def test_cli_roundtrip(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    assert main(["campaign", "new", db, "--bounds", "0:1,0:2", "-n", "4", "-l", "2", "--horizon", "3"]) == 0
    assert main(["campaign", "ask", db, "--now", "0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [o["id"] for o in lines] == [0, 1]
    assert main(["campaign", "tell", db, "0", "--y", "1.5", "--at", "1"]) == 0
    assert main(["campaign", "tell", db, "0", "--y", "1.5", "--at", "1"]) == 2
    assert "already done" in capsys.readouterr().err
    assert main(["campaign", "fail", db, "1", "--at", "1.2"]) == 0
    capsys.readouterr()
    assert main(["campaign", "status", db, "--json"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out[out.index("{") :])
    assert (status["done"], status["failed"]) == (1, 1)
    assert main(["campaign", "log", db, "--jsonl", str(tmp_path / "l.jsonl")]) == 0
    assert "decision 0 at t=0" in capsys.readouterr().out
    assert main(["campaign", "new", str(tmp_path / "other.db"), "--bounds", "1:0"]) == 2
    assert "low < high" in capsys.readouterr().err


_TELLER = textwrap.dedent(
    """
    import sys
    from labsched.campaign import Campaign
    c = Campaign.open(sys.argv[1])
    ok = 0
    for i in map(int, sys.argv[2].split(",")):
        try:
            c.tell(i, y=float(i), finished_at=1.0)
            ok += 1
        except ValueError as exc:
            assert "already done" in str(exc), exc
    print(ok)
    """
)


def test_concurrent_tellers(tmp_path):
    spec = LabSpec(n_experiments=12, n_labs=12, horizon=4.0)
    c = _campaign(tmp_path, spec=spec, scheduler="onfcp", selector="random")
    orders = c.ask(now=0.0)
    assert len(orders) == 12
    # two processes tell interleaved ids; ids 0..3 are told by both: exactly one tell wins each
    lists = ["0,1,2,3,4,6,8,10", "3,2,1,0,5,7,9,11"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _TELLER, str(tmp_path / "c.db"), ids], stdout=subprocess.PIPE, text=True
        )
        for ids in lists
    ]
    wins = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(wins) == 12
    hist = Campaign.open(tmp_path / "c.db").history()
    assert [o.status for o in hist] == ["done"] * 12 and [o.y for o in hist] == [float(i) for i in range(12)]
    assert len(c.events()) == 1 + 1 + 12
