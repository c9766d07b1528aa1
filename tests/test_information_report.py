"""The information-goal report: sweep rows carry the integrated variance and RMSE (format 2, with
format-1 files still read and upgraded), Spearman correlations, paired selector comparisons over
common random numbers, the end-to-end report and its CLI (tiny settings, a few episodes)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from labsched.baselines.labs.synthetic import make_scheduler
from labsched.cli import main
from labsched.envs._lib.rollout import play_episode
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.evaluation.cells import Cell, parse_objective
from labsched.evaluation.labs import information as info
from labsched.evaluation.results_file import COLUMNS, FORMAT2_COLUMNS, LEGACY_COLUMNS
from labsched.evaluation.sweep import load_results, run_cell, run_sweep

TINY = dict(n_experiments=6, n_labs=3)


def _cell(**kw) -> Cell:
    base = dict(objective="branin", scheduler="onfcp", selector="random", run=0, **TINY)
    return Cell(**{**base, **kw})


# ----------------------------------------------------------------------------- results file


def test_row_integrated_variance_is_what_the_information_reward_pays():
    cell = _cell(selector="ivr", scheduler="busy:2")
    row = run_cell(cell)
    assert list(row) == list(COLUMNS)
    assert row["integrated_variance"] > 0 and row["rmse"] > 0
    env = ConcurrentLabsEnv(
        cell.spec(), reward="information", objective=parse_objective(cell.objective), selector="ivr"
    )
    agent = make_scheduler("busy:2", cell.spec(), seed=cell.agent_seed)
    ep = play_episode(agent, env, cell.env_seed)
    # Same seed, same decisions: the regret-mode sweep row reports the information episode's goal.
    assert ep.info["integrated_variance"] == row["integrated_variance"]
    assert ep.info["rmse"] == row["rmse"]
    assert ep.total_reward == -row["integrated_variance"]


def _write_legacy(path, rows):
    with open(path, "w", newline="") as f:
        f.write(",".join(LEGACY_COLUMNS) + "\n")
        w = csv.writer(f, lineterminator="\n")
        for r in rows:
            w.writerow([repr(r[c]) if isinstance(r[c], float) else r[c] for c in LEGACY_COLUMNS])


def test_format1_files_are_read_with_nan_and_upgraded_on_resume(tmp_path):
    cells = [_cell(run=i) for i in range(3)]
    fresh = run_sweep(cells, tmp_path / "new.csv", n_jobs=1, progress=False)
    old = tmp_path / "old.csv"
    _write_legacy(old, fresh[:2])
    rows = load_results(old)
    assert [r["cell_id"] for r in rows] == [c.id for c in cells[:2]]
    assert all(math.isnan(r[c]) for r in rows for c in FORMAT2_COLUMNS)
    assert rows[0]["regret"] == fresh[0]["regret"] and rows[1]["cpe"] == fresh[1]["cpe"]
    with pytest.warns(UserWarning, match="format 1"):
        resumed = run_sweep(cells, old, n_jobs=1, progress=False)
    assert (resumed.n_run, resumed.n_resumed) == (1, 2)
    assert old.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert not list(tmp_path.glob("*.tmp"))
    again = load_results(old)
    assert math.isnan(again[0]["rmse"]) and again[2]["rmse"] == fresh[2]["rmse"]
    # The information report refuses rows without the goal instead of averaging NaN.
    with pytest.raises(ValueError, match="format-1"):
        info.summarise_selectors(again)


def test_bad_goal_values_are_rejected(tmp_path):
    path = tmp_path / "r.csv"
    run_sweep([_cell()], path, n_jobs=1, progress=False)
    text = path.read_text().splitlines()
    fields = next(csv.reader([text[1]]))
    fields[COLUMNS.index("rmse")] = "-1.0"
    with open(path, "w", newline="") as f:
        f.write(text[0] + "\n")
        csv.writer(f, lineterminator="\n").writerow(fields)
    with pytest.raises(ValueError, match="line 2: rmse must be NaN or finite and >= 0"):
        load_results(path)


# ----------------------------------------------------------------------------- statistics


def _row(objective, scheduler, selector, run, iv, rmse, cpe=10, init="h", regret=0.5):
    return dict(
        objective=objective,
        scheduler=scheduler,
        selector=selector,
        run=run,
        integrated_variance=iv,
        rmse=rmse,
        regret=regret,
        cpe=cpe,
        completed=6,
        n_experiments=6,
        init_hash=f"{init}{run}",
    )


def test_correlations_are_spearman_across_scheduler_means():
    rows = []
    for k, name in enumerate(["busy:1", "busy:2", "busy:3", "onfcp"]):
        for run in range(2):
            # CPE falls with k while the variance rises: rho(CPE, IV) = -1 exactly.
            rows.append(
                _row("cosines", name, "ivr", run, iv=1.0 + k + run, rmse=[3, 1, 2, 4][k], cpe=40 - 10 * k)
            )
    points = info.summarise_points(rows)
    assert [p.scheduler for p in points] == ["busy:1", "busy:2", "busy:3", "onfcp"]
    assert points[1].mean_integrated_variance == 2.5 and points[1].runs == 2
    assert points[3].family == "baseline" and points[0].family == "busy"
    (c,) = info.correlate(points)
    assert c.rho_integrated_variance == pytest.approx(-1.0)
    ref = spearmanr([40, 30, 20, 10], [3, 1, 2, 4])
    assert (c.rho_rmse, c.p_rmse) == pytest.approx((ref.statistic, ref.pvalue))
    assert math.isnan(c.rho_regret)  # constant regret: undefined, not an error
    (few,) = info.correlate(points[:2])
    assert math.isnan(few.rho_integrated_variance) and few.schedulers == 2


def test_paired_differences_are_per_episode_and_need_common_random_numbers():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, 6), rng.uniform(1, 3, 6)
    rows = [_row("branin", "ps", "ivr", i, a[i], 2 * a[i]) for i in range(6)]
    rows += [_row("branin", "ps", "kb-ei", i, b[i], 2 * b[i]) for i in range(6)]
    iv, rmse = info.pair_selectors(rows, reference="ivr")
    assert (iv.goal, iv.reference, iv.selector, iv.runs) == ("integrated_variance", "ivr", "kb-ei", 6)
    d = a - b
    half = 2.5705818366147395 * d.std(ddof=1) / math.sqrt(6)  # t(0.975, 5)
    assert iv.mean_diff == pytest.approx(d.mean()) and iv.high - iv.mean_diff == pytest.approx(half)
    assert iv.relative == pytest.approx(d.mean() / b.mean())
    assert rmse.mean_diff == pytest.approx(2 * d.mean())
    (s_ivr, s_kb) = info.summarise_selectors(rows)
    assert s_ivr.integrated_variance == pytest.approx(a.mean()) and s_kb.rmse == pytest.approx(2 * b.mean())
    unpaired = rows[:6] + [dict(r, init_hash="other") for r in rows[6:]]
    with pytest.raises(ValueError, match="not paired"):
        info.pair_selectors(unpaired, reference="ivr")
    with pytest.raises(ValueError, match="lacks runs"):
        info.pair_selectors(rows[:-1], reference="ivr")


# ----------------------------------------------------------------------------- end to end


def test_report_end_to_end_resumes_and_pairs_selectors(tmp_path):
    kw = dict(
        objectives=("cosines", "branin"),
        schedulers=("busy:1", "busy:3", "onfcp"),
        correlation_selectors=("random",),
        correlation_runs=2,
        compare_schedulers=("onfcp",),
        compare_selectors=("ivr", "random"),
        compare_runs=3,
        ps_simulations=10,
        n_jobs=1,
        progress=False,
        plot=False,
        **TINY,
    )
    res = info.information_report(tmp_path, **kw)
    # 2 objectives x (3 schedulers x 2 runs + 2 selectors x 3 runs), onfcp/random runs 0-1 shared.
    assert (res.cells, res.ran, res.resumed) == (2 * (6 + 6 - 2), 20, 0)
    assert [(c.selector, c.objective, c.schedulers, c.runs) for c in res.correlations] == [
        ("random", "cosines", 3, 2),
        ("random", "branin", 3, 2),
    ]
    assert {(s.selector, s.runs) for s in res.summaries} == {("ivr", 3), ("random", 3)}
    assert {(p.objective, p.goal, p.selector) for p in res.paired} == {
        (o, g, "random") for o in ("cosines", "branin") for g in ("integrated_variance", "rmse")
    }
    names = {p.name for p in res.files}
    assert names == {
        "correlation.csv",
        "correlation_stats.csv",
        "selectors.csv",
        "paired.csv",
        "information.md",
    }
    assert "## 2. Selectors on the information goal" in res.markdown and "ivr - random" in res.markdown
    again = info.information_report(tmp_path, **kw)
    assert (again.ran, again.resumed) == (0, 20)
    assert again.paired == res.paired and again.correlations == res.correlations


def test_cli_information_and_bad_input(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["information", "--out", str(out), "--objectives", "cosines", "-n", "6", "-l", "3"]
    argv += ["--schedulers", "busy:1", "busy:2", "onfcp", "--correlation-runs", "1"]
    argv += ["--compare-selectors", "--jobs", "1", "--no-progress", "--no-plot"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "rho(CPE, IV)" in text and "6 of 6 cells run now" in text  # simulation matching and ivr
    assert (out / "information.md").is_file() and (out / "sweep.csv").is_file()
    with pytest.raises(ValueError, match="objectives must name"):
        info.information_report(tmp_path, objectives=())
    with pytest.raises(ValueError, match="correlation_selectors and/or compare_selectors"):
        info.information_report(tmp_path, correlation_selectors=(), compare_selectors=())
