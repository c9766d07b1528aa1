"""`labsched compare` judges the constraint; the runner keeps episodes; the frontier traces knobs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from labsched.agents.comparison import compare, rows_to_markdown
from labsched.agents.runner import RunTask, run_task
from labsched.cli import main
from labsched.envs._lib.stats import mean_ci, p_safe_verdict, paired_difference
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.labs.frontier import frontier, write_frontier

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=3.0)


def test_compare_reports_intervals_verdicts_and_paired_differences():
    rows = compare(["ofil", "onfcp", "random"], SMALL, episodes=40, seed=3, progress=False, reference="onfcp")
    runs = {n: run_task(RunTask(n, SMALL, 40, 3)) for n in ("ofil", "onfcp", "random")}
    for row in rows:
        res = runs[row.scheduler]
        cpe = np.array([e.cpe for e in res.episodes], dtype=float)
        assert len(res.episodes) == 40 and row.mean_cpe == pytest.approx(cpe.mean())
        ci = mean_ci(cpe)
        assert (row.cpe_low, row.cpe_high) == pytest.approx((ci.low, ci.high))
        done = sum(e.completed >= SMALL.n_experiments for e in res.episodes)
        v = p_safe_verdict(done, 40, SMALL.p_safe)
        assert row.p_safe == ("yes" if v.safe else "no") and row.p_safe_p_value == pytest.approx(v.p_value)
        assert (row.completion_low, row.completion_high) == pytest.approx(
            (v.completion.low, v.completion.high)
        )
        assert row.reference == "onfcp"
        ref = np.array([e.cpe for e in runs["onfcp"].episodes], dtype=float)
        if row.scheduler == "onfcp":
            assert row.diff_cpe == 0.0 and row.diff_p_value == 1.0
        else:
            d = paired_difference(cpe, ref)
            assert row.diff_cpe == pytest.approx(d.diff.mean) and row.diff_p_value == pytest.approx(
                d.t_p_value
            )
            assert (row.diff_low, row.diff_high) == pytest.approx((d.diff.low, d.diff.high))
    ofil = rows[0]
    assert ofil.diff_cpe > 0 and ofil.diff_p_value < 0.05  # OfIL waits for results: more CPE than OnFCP
    md = rows_to_markdown(rows, SMALL.p_safe)
    assert "p-safe (p = 0.95)" in md and "CPE − onfcp" in md and "| onfcp |" in md and "reference" in md


def test_the_clairvoyant_reference_bounds_every_agent_episode_by_episode(tmp_path, capsys):
    rows = compare(["onfcp", "ofil"], SMALL, episodes=15, progress=False, reference="clairvoyant")
    assert [r.scheduler for r in rows] == ["onfcp", "ofil", "clairvoyant"]
    assert all(r.diff_high <= 0 for r in rows[:2])
    clair = run_task(RunTask("clairvoyant", SMALL, 15))
    for name in ("onfcp", "ofil"):
        agent = run_task(RunTask(name, SMALL, 15))
        assert all(a.cpe <= c.cpe for a, c in zip(agent.episodes, clair.episodes, strict=True))
    code = main(
        [
            "compare",
            "onfcp",
            "-n",
            "8",
            "-l",
            "4",
            "--horizon",
            "3",
            "--episodes",
            "5",
            "--jobs",
            "1",
            "--reference",
            "clairvoyant",
            "--no-plot",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0 and "| clairvoyant |" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert [r["reference"] for r in rows] == ["clairvoyant", "clairvoyant"]
    assert {"cpe_low", "completion_low", "p_safe", "diff_cpe", "diff_p_value"} <= set(rows[0])
    with pytest.raises(ValueError, match="regret mode"):
        run_task(RunTask("clairvoyant", SMALL, 2, env_kwargs={"objective": "cosines"}))


def test_frontier_traces_knobs_on_common_episodes(tmp_path):
    res = frontier(SMALL, episodes=20, n_jobs=1, ps_thresholds=[0.9], keep_busy=[2, 4], progress=False)
    by = {(p.method, p.value): p for p in res.points}
    onfcp = run_task(RunTask("onfcp", SMALL, 20))
    # Keeping all l labs busy is OnFCP.
    assert by[("keep-busy", 4.0)].mean_cpe == pytest.approx(onfcp.summary.mean_cpe)
    assert by[("keep-busy", 2.0)].completion <= by[("keep-busy", 4.0)].completion
    assert res.clairvoyant_cpe >= max(p.mean_cpe for p in res.points)
    files = write_frontier(res, tmp_path, plot=True)
    assert {f.name for f in files} == {"frontier.md", "frontier.csv", "frontier.png"}
    assert "| ps | q = 0.9 |" in (tmp_path / "frontier.md").read_text()
    with pytest.raises(ValueError, match="ps threshold"):
        frontier(SMALL, episodes=5, ps_thresholds=[1.2], keep_busy=[], clairvoyant=False, progress=False)
