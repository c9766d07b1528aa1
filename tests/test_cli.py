"""The command line and the CPE-table harness, end to end on tiny budgets."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys

import pytest

from labsched import LabSpec
from labsched.cli import main
from labsched.evaluation.labs.cpe_table import cpe_table, rows_to_markdown, sequential_horizon


def test_cpe_table_small_run_writes_markdown_csv_and_plot(tmp_path, capsys):
    code = main(
        [
            "cpe-table",
            "--episodes",
            "4",
            "--horizons",
            "4",
            "6",
            "--schedulers",
            "onfcp",
            "sequential",
            "ofstaged",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| onfcp |" in out and "55.0 ± 0.0 [55]" in out
    rows = list(csv.DictReader((tmp_path / "cpe_table.csv").open()))
    assert len(rows) == 6
    assert {float(r["mean_cpe"]) for r in rows if r["scheduler"] == "sequential"} == {190.0}
    png = (tmp_path / "cpe_table.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cpe_table.md").read_text().startswith("| scheduler |")


def test_parallel_and_serial_tables_agree():
    spec = LabSpec(n_experiments=8, n_labs=3)
    kw = dict(horizons=[4.0], schedulers=["onfcp", "random", "ofstaged"], episodes=5, progress=False)
    serial = cpe_table(spec, n_jobs=1, **kw)
    parallel = cpe_table(spec, n_jobs=2, **kw)
    assert [(r.scheduler, r.mean_cpe, r.completion_rate) for r in serial] == [
        (r.scheduler, r.mean_cpe, r.completion_rate) for r in parallel
    ]
    assert all(r.paper_cpe != r.paper_cpe for r in serial)  # NaN: not the paper's setting


def test_compare_and_spec_options(tmp_path, capsys):
    code = main(
        [
            "compare",
            "onfcp",
            "random",
            "-n",
            "8",
            "-l",
            "4",
            "--horizon",
            "3",
            "--duration",
            "gamma:10,0.1",
            "--episodes",
            "3",
            "--jobs",
            "1",
            "--no-plot",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "| random |" in capsys.readouterr().out
    assert not (tmp_path / "compare.png").exists()


def test_bad_arguments_give_clear_errors(tmp_path, capsys):
    assert main(["compare", "nope", "--episodes", "2", "--out", str(tmp_path)]) == 2
    assert "unknown scheduler" in capsys.readouterr().err
    assert main(["compare", "onfcp", "-l", "0", "--out", str(tmp_path)]) == 2
    assert "n_labs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--duration", "weibull:1,2"])
    with pytest.raises(ValueError, match="episodes"):
        cpe_table(episodes=0)


def test_sequential_horizon_is_long_enough():
    spec = LabSpec()
    assert sequential_horizon(spec) > 20 * 2.5
    md = rows_to_markdown(
        cpe_table(spec, horizons=[5.0], schedulers=["sequential"], episodes=2, progress=False)
    )
    assert "190.0 ± 0.0 [190]" in md


def test_console_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "labsched", "baselines"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("onfcp", "onmel", "ofstaged", "random", "sequential"):
        assert name in out


@pytest.mark.parametrize(
    "argv",
    [
        ["cpe-table", "--out", "/proc/nope/x", "--episodes", "2", "--no-plot", "--schedulers", "onfcp"],
        ["sweep", "--results", "/", "--runs", "1", "--schedulers", "onfcp", "-n", "4", "-l", "2"],
    ],
)
def test_file_system_problems_are_one_line_errors(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("labsched: error:")


def test_every_subcommand_help_renders_without_doubled_percent_signs(capsys):
    """Each subcommand's --help works and shows '95%', never argparse's unexpanded '%%'."""
    from labsched.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {
        "cpe-table",
        "compare",
        "train",
        "benchmark",
        "queue-eval",
        "campaign",
        "information",
        "frontier",
    } <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "%%" not in out, name
