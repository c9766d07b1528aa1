"""``labsched leaderboard``: common random numbers, ranks, n/a rows, resuming, outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from labsched.baselines.registry import make
from labsched.cli import build_parser, main
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.stats import mean_ci, p_safe_verdict
from labsched.envs.labs.suite import SUITE
from labsched.evaluation.labs import leaderboard_cells
from labsched.evaluation.labs.leaderboard import (
    DEFAULT_SKIP,
    BoardEntry,
    board_cells,
    leaderboard_markdown,
    rank_entries,
    run_leaderboard,
    write_leaderboard,
)
from labsched.evaluation.labs.leaderboard_cells import BoardCell, run_board_cell
from labsched.evaluation.labs.leaderboard_store import ROW_FIELDS, LeaderboardFileError, read_board_rows

ENVS = ["Paper-h5-v0", "Hetero-v0"]
SCHEDULERS = ["onfcp", "random", "ofstaged"]


def _board(path, episodes=4, block_size=2, **kw):
    cells = board_cells(ENVS, SCHEDULERS, episodes=episodes, block_size=block_size)
    return cells, run_leaderboard(cells, path, n_jobs=1, progress=False, **kw)


def _by(board):
    return {(e.env, e.scheduler): e for e in board}


def test_entries_are_the_statistics_of_the_same_episodes(tmp_path):
    cells, board = _board(tmp_path / "r.csv")
    assert len(cells) == 2 * 3 * 2 and board.n_run == len(cells)
    by = _by(board)
    # random on Paper-h5-v0: episodes with env seeds 0..3, its own seed from the cell
    env = SUITE["Paper-h5-v0"].make()
    cpe, ended = [], []
    for cell in (c for c in cells if c.env == "Paper-h5-v0" and c.scheduler == "random"):
        policy = make("random", env.lab_spec, seed=cell.agent_seed)
        for s in cell.env_seeds:
            info = play_episode(policy, env, s).info
            cpe.append(info["cpe"])
            ended.append(info["cost"] == 0.0)
    e = by[("Paper-h5-v0", "random")]
    ci = mean_ci(cpe)
    v = p_safe_verdict(sum(ended), 4, 0.95)
    assert (e.mean_cpe, e.cpe_low, e.cpe_high) == (ci.mean, ci.low, ci.high)
    assert (e.completion, e.completion_low, e.completion_high) == (
        v.completion.rate,
        v.completion.low,
        v.completion.high,
    )
    assert e.p_safe == ("yes" if v.safe else "no") and e.episodes == 4
    # OnFCP (one experiment per lab-free moment, deterministic on equal labs) is 55 in every episode
    assert by[("Paper-h5-v0", "onfcp")].mean_cpe == 55.0


def test_blocking_does_not_change_the_episodes(tmp_path):
    """Episode i has env seed i under every blocking (common random numbers across cells)."""
    _, a = _board(tmp_path / "a.csv", episodes=5, block_size=2)
    _, b = _board(tmp_path / "b.csv", episodes=5, block_size=5)
    for x, y in zip(a, b, strict=True):
        if x.scheduler == "random":  # its own generator is seeded per cell
            continue
        assert (x.env, x.scheduler, x.status, x.episodes) == (y.env, y.scheduler, y.status, y.episodes)
        assert x.mean_cpe == y.mean_cpe or (math.isnan(x.mean_cpe) and math.isnan(y.mean_cpe))
        assert x.completion == y.completion or x.status == "n/a"


def test_ranks_are_consistent_with_the_means(tmp_path):
    _, board = _board(tmp_path / "r.csv")
    for env in ENVS:
        ok = [e for e in board if e.env == env and e.status == "ok"]
        assert ok
        for e in ok:
            assert e.rank == 1 + sum(o.mean_cpe > e.mean_cpe for o in ok)
        best = sorted(ok, key=lambda e: -e.mean_cpe)
        assert [e.rank for e in best] == sorted(e.rank for e in ok)
    assert _by(board)[("Paper-h5-v0", "ofstaged")].rank == 1


def test_rank_entries_exact_with_ties_and_the_safe_order():
    def e(name, cpe, safe, completion):
        return BoardEntry("Paper-h5-v0", name, "ok", mean_cpe=cpe, p_safe=safe, completion=completion)

    entries = [
        e("a", 120.0, "no", 0.5),
        e("b", 100.0, "yes", 1.0),
        e("c", 100.0, "yes", 0.97),
        e("d", 90.0, "no", 0.8),
        BoardEntry("Paper-h5-v0", "x", "n/a", "not defined"),
        BoardEntry("Hetero-v0", "a", "ok", mean_cpe=1.0, p_safe="no"),  # ranked within its own suite id
    ]
    ranked = rank_entries(entries)
    assert [r.rank for r in ranked] == [1, 2, 2, 4, 0, 1]
    # p-safe first by CPE (b, c tie), then the others by completion rate: d (0.8) before a (0.5)
    assert [r.safe_rank for r in ranked] == [4, 1, 1, 3, 0, 1]


def test_unsupported_combinations_are_n_a_with_the_reason(tmp_path):
    _, board = _board(tmp_path / "r.csv")
    na = _by(board)[("Hetero-v0", "ofstaged")]
    assert na.status == "n/a" and na.rank == 0 and math.isnan(na.mean_cpe)
    assert "not defined for heterogeneous labs" in na.reason
    assert _by(board)[("Paper-h5-v0", "ofstaged")].status == "ok"
    text = leaderboard_markdown(board)
    assert "| ofstaged | 100.0 (1) ✓ | n/a |" in text
    assert "n/a: ValueError: baseline 'ofstaged' is not defined for heterogeneous labs" in text


def test_a_setting_this_version_cannot_build_is_n_a(monkeypatch):
    monkeypatch.setattr(type(SUITE["Failures-v0"]), "unavailable_reason", lambda self: "needs option x")
    row = run_board_cell(BoardCell("Failures-v0", "onfcp", block_size=2))
    assert row["status"] == "n/a" and row["reason"] == "needs option x" and row["cpe"] == ""


def test_resume_runs_only_the_missing_cells(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    cells = board_cells(ENVS, SCHEDULERS, episodes=4, block_size=2)
    half = cells[: len(cells) // 2]
    run_leaderboard(half, path, n_jobs=1, progress=False)
    calls = []
    real = leaderboard_cells.run_board_cell
    monkeypatch.setattr(leaderboard_cells, "run_board_cell", lambda c: calls.append(c.id) or real(c))
    full = run_leaderboard(cells, path, n_jobs=1, progress=False)
    assert sorted(calls) == sorted(c.id for c in cells[len(half) :])
    assert (full.n_run, full.n_resumed) == (len(cells) - len(half), len(half))
    calls.clear()
    again = run_leaderboard(cells, path, n_jobs=1, progress=False)
    assert calls == [] and again.n_run == 0 and list(again) == list(full)
    # more episodes: only the new blocks run
    more = board_cells(ENVS, SCHEDULERS, episodes=6, block_size=2)
    extended = run_leaderboard(more, path, n_jobs=1, progress=False)
    assert sorted(calls) == sorted(c.id for c in more if c.block == 2) and extended.n_resumed == len(cells)
    assert all(e.episodes == 6 for e in extended if e.status == "ok")


def test_corrupted_or_truncated_results_files(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    cells = board_cells(["Paper-h5-v0"], ["onfcp"], episodes=4, block_size=2)
    run_leaderboard(cells, path, n_jobs=1, progress=False)
    good = path.read_text()
    # an edited CPE (55 -> 9999, above n (n - 1) / 2 = 190) is refused
    path.write_text(good.replace(" 55,", " 9999,", 1))
    with pytest.raises(LeaderboardFileError, match=r"line 2: cpe must be in \[0, n \(n - 1\) / 2 = 190\]"):
        run_leaderboard(cells, path, n_jobs=1, progress=False)
    # a truncated last row (interrupted write) is dropped with a warning and recomputed
    path.write_text(good[:-20])
    calls = []
    real = leaderboard_cells.run_board_cell
    monkeypatch.setattr(leaderboard_cells, "run_board_cell", lambda c: calls.append(c.id) or real(c))
    with pytest.warns(UserWarning, match="line 3: incomplete final line"):
        board = run_leaderboard(cells, path, n_jobs=1, progress=False)
    assert calls == [cells[1].id] and board[0].mean_cpe == 55.0
    rows = read_board_rows(path)
    assert [r["cell_id"] for r in rows] == [c.id for c in cells] and rows[1]["cpe"] == "55 55"
    path.write_text("not,a,leaderboard\n")
    with pytest.raises(LeaderboardFileError, match="line 1: wrong header"):
        read_board_rows(path)
    text = "".join(line.rstrip("\n") + "\r\n" for line in path.read_text().splitlines(True))
    path.write_bytes(text.replace("not,a,leaderboard", ",".join(ROW_FIELDS)).encode())
    with pytest.raises(LeaderboardFileError, match="line 1 ends in CR LF"):
        read_board_rows(path)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown suite id"):
        board_cells(["Paper-h9-v0"], ["onfcp"])
    with pytest.raises(ValueError, match="unknown baseline"):
        board_cells(["Paper-h5-v0"], ["nope"])
    with pytest.raises(ValueError, match="episodes"):
        board_cells(["Paper-h5-v0"], ["onfcp"], episodes=0)
    cells = board_cells(["Paper-h5-v0"], ["onfcp"], episodes=1)
    with pytest.raises(ValueError, match="backend"):
        run_leaderboard(cells, tmp_path / "r.csv", backend="spark")
    with pytest.raises(ValueError, match="alpha"):
        run_leaderboard(cells, tmp_path / "r.csv", alpha=1.5)


def test_outputs_and_the_command_line(tmp_path, capsys):
    out = tmp_path / "board"
    common = ["--block-size", "2", "--jobs", "1", "--out", str(out), "--no-progress"]
    envs = ["--envs", "Paper-h5-v0", "Failures-v0"]
    assert main(["leaderboard", *envs, "--schedulers", "onfcp", "ofil", "--episodes", "3", *common]) == 0
    printed = capsys.readouterr().out
    assert "| scheduler | Paper-h5-v0 | Failures-v0 | mean rank |" in printed
    assert "8 cells run, 0 resumed" in printed
    for name in ("table.md", "table.csv", "results.csv", "heatmap.png"):
        assert (out / name).is_file(), name
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("env,scheduler,status,reason,episodes,mean_cpe") and len(csv_lines) == 5
    again = ["leaderboard", "--envs", "Paper-h5-v0", "--schedulers", "onfcp", "--episodes", "3", "--no-plot"]
    assert main([*again, *common]) == 0
    assert "0 cells run, 2 resumed" in capsys.readouterr().out


@pytest.mark.slow
def test_parallel_workers_give_the_in_process_numbers(tmp_path):
    cells = board_cells(["Failures-v0"], ["onfcp", "random"], episodes=4, block_size=2)
    one = run_leaderboard(cells, tmp_path / "a.csv", n_jobs=1, progress=False)
    two = run_leaderboard(cells, tmp_path / "b.csv", n_jobs=2, progress=False)
    for x, y in zip(one, two, strict=True):
        assert (x.mean_cpe, x.completion, x.rank) == (y.mean_cpe, y.completion, y.rank)
    files = write_leaderboard(two, tmp_path / "out", plot=False)
    assert [f.name for f in files] == ["table.md", "table.csv"]
    assert np.isfinite([e.mean_cpe for e in two]).all()


def test_a_saved_agent_is_ranked_where_it_fits_and_n_a_elsewhere(tmp_path):
    model = Path(__file__).resolve().parents[1] / "models" / "maskable_ppo_h5"
    if not (model / "best_model.zip").is_file():
        pytest.skip("the shipped model models/maskable_ppo_h5 is not in this checkout")
    cells = board_cells(["Paper-h5-v0", "Large-v0"], ["onfcp"], [str(model)], episodes=2, block_size=2)
    assert {c.scheduler for c in cells} == {"onfcp", "maskable_ppo_h5"} and all(
        len(c.agent_sha256) == 64 for c in cells if c.agent_path
    )
    by = _by(run_leaderboard(cells, tmp_path / "r.csv", n_jobs=1, progress=False))
    agent = by[("Paper-h5-v0", "maskable_ppo_h5")]
    assert agent.status == "ok" and agent.mean_cpe > by[("Paper-h5-v0", "onfcp")].mean_cpe and agent.rank == 1
    large = by[("Large-v0", "maskable_ppo_h5")]
    assert large.status == "n/a" and "n_labs=10" in large.reason and "n_labs=32" in large.reason


def test_skipped_pairs_are_n_a_and_computed_by_a_later_run(tmp_path):
    path = tmp_path / "r.csv"
    cells = board_cells(["Paper-h5-v0", "Failures-v0"], ["onfcp", "ofil"], episodes=2, block_size=2)
    board = run_leaderboard(cells, path, n_jobs=1, progress=False, skip=["Failures-*:of*"])
    by = _by(board)
    assert by[("Failures-v0", "ofil")].status == "n/a"
    assert by[("Failures-v0", "ofil")].reason == "skipped (--skip Failures-*:of*)"
    assert by[("Failures-v0", "onfcp")].status == "ok" and by[("Paper-h5-v0", "ofil")].status == "ok"
    assert board.n_run == 3 and len(read_board_rows(path)) == 3
    later = run_leaderboard(cells, path, n_jobs=1, progress=False)
    assert (later.n_run, later.n_resumed) == (1, 3) and _by(later)[("Failures-v0", "ofil")].status == "ok"
    with pytest.raises(ValueError, match="'ENV:SCHEDULER'"):
        run_leaderboard(cells, path, n_jobs=1, progress=False, skip=["Large-v0"])


@pytest.mark.slow  # a local Dask cluster of two worker processes that each import labsched
def test_a_dask_cluster_gives_the_in_process_numbers(tmp_path):
    pytest.importorskip("distributed")
    cells = board_cells(["Failures-v0"], ["onfcp", "random"], episodes=4, block_size=2)
    one = run_leaderboard(cells, tmp_path / "a.csv", n_jobs=1, progress=False)
    dask = run_leaderboard(cells, tmp_path / "b.csv", n_jobs=2, backend="dask", progress=False)
    assert dask.n_run == len(cells)
    for x, y in zip(one, dask, strict=True):
        assert (x.mean_cpe, x.completion, x.rank, x.p_safe) == (y.mean_cpe, y.completion, y.rank, y.p_safe)


def test_the_command_line_skips_the_costly_large_pairs_unless_told():
    assert build_parser().parse_args(["leaderboard"]).skip == list(DEFAULT_SKIP)
    assert build_parser().parse_args(["leaderboard", "--skip"]).skip == []
    assert DEFAULT_SKIP == ("Large-v0:ps-calibrated", "Large-v0:keep-busy-estimated")
