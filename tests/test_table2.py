"""Table 2 and Figure 1 end to end on tiny budgets, and the paper's data."""

from __future__ import annotations

import csv
import math

import pytest

from labsched.cli import main
from labsched.evaluation.labs import figure1 as f1
from labsched.evaluation.labs.table2 import (
    PAPER_REGRET,
    PAPER_SPREAD,
    summarise_table2,
    table2_cells,
    table2_markdown,
    table2_scaling,
)
from labsched.evaluation.sweep import load_results, run_cell

PNG = b"\x89PNG\r\n\x1a\n"


def test_paper_table_is_complete():
    assert len(PAPER_REGRET) == 8 * (2 + 12)
    assert len(PAPER_SPREAD) == 8 * 6 * 3
    assert PAPER_REGRET[("cosines", "sequential", None)] == 0.142
    assert PAPER_REGRET[("hartmann6", "ps", 6.0)] == 0.262
    assert PAPER_REGRET[("shekel4", "ps", 5.0)] == 0.540
    assert PAPER_SPREAD[("michalewicz5", "onmel", 6.0)] == 0.02


def test_cells_share_horizon_free_columns():
    cells = table2_cells(["cosines"], [4.0, 6.0], runs=2, selector="kb-ei", ps_simulations=20)
    assert len(cells) == 2 * (2 + 2 * 4)
    assert {c.horizon for c in cells if c.scheduler == "sequential"} == {math.inf}
    assert {c.horizon for c in cells if c.scheduler == "onfcp"} == {4.0}
    assert {c.options for c in cells if c.scheduler == "ps"} == {'{"n_simulations":20}'}
    assert len({c.env_seed for c in cells if c.run == 0}) == 1


def test_short_table2_end_to_end(tmp_path, capsys):
    args = ["table2", "--objectives", "cosines", "hartmann3", "--horizons", "4", "5", "--runs", "2"]
    args += ["--selector", "kb-ei", "--ps-simulations", "20", "--jobs", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| function | h=∞ | OnFCP | h=4 OfStaged | h=4 OfIL | h=4 OnMEL | h=4 PS | h=5 OfStaged" in out
    assert "| cosines |" in out and "| hartmann3 |" in out and "| CPE | 190.0 [190] | 55.0 [55] |" in out
    assert "[.142]" in out and "total wall time" in out
    md = (tmp_path / "table2.md").read_text()
    assert md.count("\n| ") >= 4
    tidy = list(csv.DictReader((tmp_path / "table2_tidy.csv").open()))
    assert len(tidy) == 3 * 10  # (2 functions + CPE row) x 10 columns
    wide = list(csv.DictReader((tmp_path / "table2_wide.csv").open()))
    assert [r["function"] for r in wide] == ["cosines", "hartmann3", "CPE"]
    assert float(wide[0]["h=∞ paper"]) == 0.142
    assert (tmp_path / "table2.png").read_bytes()[:8] == PNG
    rows = load_results(tmp_path / "sweep.csv")
    assert len(rows) == 2 * 2 * (2 + 2 * 4)
    # a second run resumes everything from the file and gives the same table
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "table2.md").read_text() == md


def test_summary_uses_standard_errors_and_pooled_cpe():
    cells = table2_cells(["cosines"], [5.0], runs=2, selector="random", ps_simulations=10)
    rows = [run_cell(c) for c in cells]
    entries = summarise_table2(rows)
    by = {(e.function, e.column): e for e in entries}
    e = by[("cosines", "h=5 OfStaged")]
    regrets = [r["regret"] for r in rows if r["scheduler"] == "ofstaged"]
    assert e.runs == 2 and e.mean_regret == pytest.approx(sum(regrets) / 2)
    assert e.se_regret == pytest.approx(abs(regrets[0] - regrets[1]) / 2)
    assert e.paper_regret == 0.181 and e.paper_spread == 0.01
    assert by[("CPE", "h=∞")].mean_cpe == 190.0 and by[("CPE", "OnFCP")].paper_cpe == 55
    assert "| CPE |" in table2_markdown(entries)


def test_measure_scaling_reports_a_ratio():
    res = table2_scaling("cosines", 5.0, runs=1, selector="random", workers=(1, 2), ps_simulations=10)
    assert res["cells"] == 6 and set(res["seconds"]) == {1, 2} and res["speedup"][2] > 0


def test_figure1_schedulers_parse_and_differ():
    from labsched import LabSpec

    spec = LabSpec()
    assert 28 <= len(f1.DEFAULT_SCHEDULERS) <= 32
    for name in f1.DEFAULT_SCHEDULERS:
        f1.make_scheduler(name, spec, seed=0)
    plan = f1.make_scheduler("staged:4,6,10@1,1.5,2.5", spec).plan
    assert plan.sizes == (4, 6, 10) and plan.durations == (1.0, 1.5, 2.5)
    for bad in ("busy:0", "busy:11", "bernoulli:0", "staged:4,6@1", "warp:3"):
        with pytest.raises(ValueError):
            f1.make_scheduler(bad, spec)


def test_figure1_tiny_reports_a_correlation(tmp_path, capsys):
    schedulers = ["busy:1", "busy:3", "busy:10", "staged:10,10", "staged:5,5,5,5", "bernoulli:0.3", "onmel"]
    args = ["figure1", "--runs", "2", "--selector", "kb-ei", "--jobs", "1", "--no-progress"]
    assert main([*args, "--schedulers", *schedulers, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cosines: Spearman rho(mean CPE, mean regret) =" in out and "hartmann3: Spearman rho" in out
    points = list(csv.DictReader((tmp_path / "figure1.csv").open()))
    assert len(points) == 2 * len(schedulers)
    res = f1.spearman_by_objective(f1.summarise(load_results(tmp_path / "sweep.csv")))
    rho, p = res["cosines"]
    assert -1 <= rho <= 1 and 0 <= p <= 1
    assert (tmp_path / "figure1.png").read_bytes()[:8] == PNG
