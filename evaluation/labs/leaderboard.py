"""The suite's leaderboard: every scheduler on every suite id, on the same episodes.

``labsched leaderboard`` (and :func:`run_leaderboard`) plays every baseline (and any saved agent)
on every id of the benchmark suite (:mod:`labsched.envs.labs.suite`) for ``episodes`` episodes,
episode ``i`` with env seed ``seed + i`` under every scheduler (common random numbers), and
reports per (suite id, scheduler):

* the mean CPE with its 95% Student-t interval;
* the completion rate (every experiment ended by ``h``: all ``n`` completed when nothing fails;
  a failed experiment counts as ended) with its Wilson 95% interval;
* the **p-safe** verdict of the constrained agents (completion not significantly below the
  spec's ``p``: one-sided exact binomial test at level ``alpha``;
  :func:`~labsched.envs._lib.stats.p_safe_verdict`, as ``labsched compare`` reports it);
* ``rank``: by mean CPE among the schedulers defined there (1 = highest; ties share the best
  rank), and ``safe_rank``: the constrained protocol's order (p-safe schedulers first by mean
  CPE, then the others by completion rate, then mean CPE);
* ``n/a`` with the reason where a scheduler is not defined on a setting.

The episodes run as cells of ``block_size`` episodes (:mod:`.leaderboard_cells`) through the
sweep machinery (:func:`labsched.evaluation.backends.execute`: loky processes, Ray or Dask),
written to a results CSV as they finish (:mod:`.leaderboard_store`): a run that is interrupted or
extended (more episodes, more schedulers) resumes without recomputing finished cells.
Outputs: ``table.md``, ``table.csv`` and ``heatmap.png`` (:mod:`.leaderboard_plot`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.baselines.registry import BASELINES
from labsched.envs._lib.reporting import optional_plot, write_csv
from labsched.envs._lib.stats import mean_ci, p_safe_verdict
from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.labs.suite import get_suite_env, suite_envs
from labsched.evaluation.backends import BACKENDS, Progress, execute
from labsched.evaluation.labs.leaderboard_cells import BoardCell, board_worker, na_row
from labsched.evaluation.labs.leaderboard_plot import plot_heatmap
from labsched.evaluation.labs.leaderboard_store import BoardFile

__all__ = [
    "DEFAULT_SKIP",
    "EXCLUDED_BY_DEFAULT",
    "BoardEntry",
    "Leaderboard",
    "board_cells",
    "default_schedulers",
    "leaderboard_markdown",
    "rank_entries",
    "run_leaderboard",
    "summarise_rows",
    "write_leaderboard",
]

#: Registered baselines left out unless named: the clairvoyant reference reads each episode's
#: durations (it bounds every policy, it is not one).
EXCLUDED_BY_DEFAULT = ("clairvoyant",)


#: Pairs ``labsched leaderboard`` skips unless told otherwise (``--skip`` with no pattern runs
#: them): on a shared 2-core machine ``ps-calibrated``'s calibration on Large-v0 took 33 minutes
#: and ``keep-busy-estimated`` 26 minutes for 10 Large-v0 episodes.
DEFAULT_SKIP = ("Large-v0:ps-calibrated", "Large-v0:keep-busy-estimated")


def default_schedulers() -> list[str]:
    """Every registered baseline except :data:`EXCLUDED_BY_DEFAULT`, in registry order."""
    return [
        n
        for n, c in BASELINES.items()
        if n not in EXCLUDED_BY_DEFAULT and not getattr(c, "clairvoyant", False)
    ]


def board_cells(
    envs: Sequence[str] | None = None,
    schedulers: Sequence[str] | None = None,
    agents: Sequence[str] = (),
    episodes: int = 20,
    block_size: int = 10,
    seed: int = 0,
) -> list[BoardCell]:
    """The cells of a leaderboard: every suite id x scheduler (and agent) x block.

    Args:
        envs: suite names (default: every suite entry this version can build, and the others,
            which show as n/a).
        schedulers: baseline names (default :func:`default_schedulers`).
        agents: saved agents (folders or zips), labelled by their folder or file stem.
        episodes: episodes per (suite id, scheduler); a multiple of ``block_size`` is not needed
            (the last block is shorter).
        block_size: episodes per cell.
        seed: base seed.

    Raises:
        ValueError: for unknown names or bad counts.
    """
    episodes = check_int("episodes", episodes, 1)
    block_size = check_int("block_size", block_size, 1)
    seed = check_int("seed", seed, 0)
    names = [e.name for e in suite_envs()] if envs is None else [get_suite_env(e).name for e in envs]
    scheds = default_schedulers() if schedulers is None else [BASELINES.canonical(s) for s in schedulers]
    entries = [(s, "") for s in scheds] + [(_agent_label(a), str(a)) for a in agents]
    if not entries:
        raise ValueError("the leaderboard needs at least one scheduler or agent")
    labels = [label for label, _ in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"scheduler and agent labels must be distinct, got {labels}")
    blocks = [
        (b, min(block_size, episodes - b * block_size)) for b in range(math.ceil(episodes / block_size))
    ]
    cells = []
    for env in names:
        for label, path in entries:
            for b, size in blocks:
                # The last block keeps the full block's seeds offset: seeds seed + b * block_size + j.
                cell = BoardCell(env, label, b, block_size, seed, agent_path=path)
                if size < block_size:
                    cell = _short_block(cell, size)
                cells.append(cell)
    return cells


def _short_block(cell: BoardCell, size: int) -> BoardCell:
    """The last block of ``size`` episodes: block index and seed chosen so that its seeds are the
    leaderboard's last ``size`` seeds (``seed + b * block_size ..``)."""
    first = cell.seed + cell.block * cell.block_size
    # A block of `size` episodes starting at `first`: block index 0 of that size with seed `first`.
    return BoardCell(cell.env, cell.scheduler, 0, size, first, cell.agent_path, cell.agent_sha256)


def _agent_label(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.suffix == ".zip" and p.stem in ("best_model", "model") else p.stem or str(path)


@dataclass(frozen=True)
class BoardEntry:
    """One (suite id, scheduler) of the leaderboard.

    Attributes:
        env: suite name.
        scheduler: baseline name or agent label.
        status: ``"ok"`` or ``"n/a"``.
        reason: why n/a (empty when ok).
        episodes: episodes played.
        mean_cpe, cpe_low, cpe_high: mean CPE and its 95% t interval.
        completion, completion_low, completion_high: completion rate and its Wilson 95% interval.
        p_safe: ``"yes"``, ``"no"`` or ``"n/a"``; p_safe_p_value: the one-sided test's p-value.
        mean_completed: mean number of completed experiments.
        rank: rank by mean CPE (1 = best; 0 when n/a).
        safe_rank: rank in the constrained protocol's order (0 when n/a).
        seconds: summed wall time of the cells.
    """

    env: str
    scheduler: str
    status: str
    reason: str = ""
    episodes: int = 0
    mean_cpe: float = math.nan
    cpe_low: float = math.nan
    cpe_high: float = math.nan
    completion: float = math.nan
    completion_low: float = math.nan
    completion_high: float = math.nan
    p_safe: str = "n/a"
    p_safe_p_value: float = math.nan
    mean_completed: float = math.nan
    rank: int = 0
    safe_rank: int = 0
    seconds: float = 0.0


def _entry(env: str, scheduler: str, rows: list[dict[str, Any]], alpha: float) -> BoardEntry:
    seconds = float(sum(r["wall_time"] for r in rows))
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        return BoardEntry(env, scheduler, "n/a", bad[0]["reason"], seconds=seconds)
    rows = sorted(rows, key=lambda r: r["seed"] + r["block"] * r["block_size"])
    cpe = np.array([int(v) for r in rows for v in r["cpe"].split()], dtype=float)
    completed = np.array([int(v) for r in rows for v in r["completed"].split()], dtype=float)
    ended = [int(v) for r in rows for v in r["ended"].split()]
    ci = mean_ci(cpe)
    verdict = p_safe_verdict(sum(ended), len(ended), get_suite_env(env).spec.p_safe, alpha)
    return BoardEntry(
        env,
        scheduler,
        "ok",
        episodes=int(cpe.size),
        mean_cpe=ci.mean,
        cpe_low=ci.low,
        cpe_high=ci.high,
        completion=verdict.completion.rate,
        completion_low=verdict.completion.low,
        completion_high=verdict.completion.high,
        p_safe="yes" if verdict.safe else "no",
        p_safe_p_value=verdict.p_value,
        mean_completed=float(completed.mean()),
        seconds=seconds,
    )


def rank_entries(entries: Sequence[BoardEntry]) -> list[BoardEntry]:
    """``entries`` with ``rank`` and ``safe_rank`` set within each suite id (order kept).

    ``rank``: 1 + the number of schedulers with a strictly higher mean CPE. ``safe_rank``: the
    same in the order (p-safe first, then mean CPE) for p-safe schedulers and (completion rate,
    mean CPE) for the others. n/a entries get 0.
    """

    def key(e: BoardEntry) -> tuple[float, float, float]:
        return (1.0, e.mean_cpe, 0.0) if e.p_safe == "yes" else (0.0, e.completion, e.mean_cpe)

    out = []
    for e in entries:
        if e.status != "ok":
            out.append(dataclasses.replace(e, rank=0, safe_rank=0))
            continue
        peers = [p for p in entries if p.env == e.env and p.status == "ok"]
        rank = 1 + sum(p.mean_cpe > e.mean_cpe for p in peers)
        safe_rank = 1 + sum(key(p) > key(e) for p in peers)
        out.append(dataclasses.replace(e, rank=rank, safe_rank=safe_rank))
    return out


def summarise_rows(rows: Iterable[dict[str, Any]], alpha: float = 0.05) -> list[BoardEntry]:
    """The ranked entries of leaderboard rows (suite ids and schedulers in first-seen order)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["env"], r["scheduler"]), []).append(r)
    return rank_entries([_entry(env, s, rs, alpha) for (env, s), rs in groups.items()])


class Leaderboard(list):
    """The entries of :func:`run_leaderboard` (a list of :class:`BoardEntry`), with ``n_run``
    and ``n_resumed`` (cells computed by the call and read back from the results file) and
    ``seconds`` (wall time of the call)."""

    def __init__(
        self, entries: Iterable[BoardEntry], n_run: int = 0, n_resumed: int = 0, seconds: float = 0.0
    ):
        super().__init__(entries)
        self.n_run, self.n_resumed, self.seconds = n_run, n_resumed, seconds


def run_leaderboard(
    cells: Sequence[BoardCell],
    results_path: str | Path,
    *,
    n_jobs: int = 2,
    backend: str = "loky",
    address: str | None = None,
    resume: bool = True,
    progress: bool = True,
    alpha: float = 0.05,
    skip: Sequence[str] = (),
) -> Leaderboard:
    """Run every cell not yet in ``results_path`` and return the ranked entries of all ``cells``.

    Args:
        cells: the cells (:func:`board_cells`; duplicates run once).
        results_path: the CSV results file (created, or resumed).
        n_jobs: parallel workers (loky: 1 runs in-process; -1: all cores).
        backend: ``"loky"``, ``"ray"`` or ``"dask"`` (as :func:`labsched.evaluation.sweep.run_sweep`).
        address: Ray or Dask scheduler address (None: a local cluster of ``n_jobs`` workers).
        resume: skip cells already in the file (False: start the file afresh).
        progress: a progress bar on stderr.
        alpha: level of the p-safe test.
        skip: ``"ENV:SCHEDULER"`` patterns (``fnmatch``: ``"Large-v0:*-estimated"``) of pairs not
            to run now (e.g. too costly for this machine): they show as n/a, "skipped", and are
            not written to the results file (a later run without ``skip`` computes them).

    Raises:
        LeaderboardFileError: if the existing results file is corrupted (nothing runs then).
    """
    t0 = time.perf_counter()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    check_real("alpha", alpha, 0.0, 1.0, low_open=True, high_open=True)
    unique: dict[str, BoardCell] = {}
    for cell in cells:
        if not isinstance(cell, BoardCell):
            raise TypeError(f"cells must be BoardCell objects, got {type(cell).__name__}")
        unique.setdefault(cell.id, cell)
    patterns = [_skip_pattern(p) for p in skip]
    skipped: dict[str, dict[str, Any]] = {}
    for cid, c in unique.items():
        match = next((q for q in patterns if fnmatch.fnmatchcase(f"{c.env}:{c.scheduler}", q)), None)
        if match is not None:
            skipped[cid] = na_row(c, f"skipped (--skip {match})")
    with BoardFile(Path(results_path), resume) as store:
        done = store.rows
        resumed = sum(cid in done for cid in unique)
        pending = [c for cid, c in unique.items() if cid not in done and cid not in skipped]
        # The slowest schedulers first, so that the last workers do not wait on them alone.
        pending.sort(
            key=lambda c: (c.scheduler not in ("ps", "ps-calibrated", "ps-estimated"), c.env != "Large-v0")
        )
        bar = Progress(len(pending), len(unique) - len(pending), progress and bool(pending))
        try:
            for row in execute(pending, n_jobs, backend, address, board_worker):
                store.append(row)
                done[row["cell_id"]] = row
                bar.update()
        finally:
            bar.close()
    rows = [done.get(cid) or skipped[cid] for cid in unique]
    return Leaderboard(
        summarise_rows(rows, alpha),
        n_run=len(pending),
        n_resumed=resumed,
        seconds=time.perf_counter() - t0,
    )


def _skip_pattern(text: str) -> str:
    if not isinstance(text, str) or text.count(":") != 1:
        raise ValueError(f"skip patterns must look like 'ENV:SCHEDULER' (wildcards allowed), got {text!r}")
    env, scheduler = text.split(":")
    return f"{env.removeprefix('labsched/')}:{scheduler}"


# ------------------------------------------------------------------------------------ reports
def _cpe_text(e: BoardEntry) -> str:
    return f"{e.mean_cpe:.1f} [{e.cpe_low:.1f}, {e.cpe_high:.1f}]"


def leaderboard_markdown(entries: Sequence[BoardEntry]) -> str:
    """The leaderboard as Markdown: a summary pivot (mean CPE, rank, p-safe mark per suite id)
    and one detailed table per suite id."""
    envs = list(dict.fromkeys(e.env for e in entries))
    scheds = list(dict.fromkeys(e.scheduler for e in entries))
    by = {(e.env, e.scheduler): e for e in entries}
    lines = [
        "Mean CPE (rank by mean CPE); ✓ p-safe, ✗ not p-safe (completion significantly below p); "
        "n/a: not defined on that setting (reason below).",
        "",
        "| scheduler | " + " | ".join(envs) + " | mean rank |",
        "|---|" + "---:|" * (len(envs) + 1),
    ]
    for s in scheds:
        cells, ranks = [], []
        for env in envs:
            e = by.get((env, s))
            if e is None:
                cells.append("")
            elif e.status != "ok":
                cells.append("n/a")
            else:
                mark = "✓" if e.p_safe == "yes" else "✗"
                cells.append(f"{e.mean_cpe:.1f} ({e.rank}) {mark}")
                ranks.append(e.rank)
        mean_rank = f"{np.mean(ranks):.2f}" if ranks else "n/a"
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {mean_rank} |")
    for env in envs:
        spec = get_suite_env(env).spec
        lines += [
            "",
            f"### {env} (p = {spec.p_safe:g})",
            "",
            "| rank | safe rank | scheduler | CPE [95% CI] | complete [Wilson 95%] | p-safe (p-value) "
            "| episodes |",
            "|---:|---:|---|---|---|---|---:|",
        ]
        rows = sorted(
            (e for e in entries if e.env == env), key=lambda e: (e.status != "ok", e.rank, e.scheduler)
        )
        for e in rows:
            if e.status != "ok":
                lines.append(f"| | | {e.scheduler} | n/a | n/a | n/a: {e.reason} | |")
                continue
            lines.append(
                f"| {e.rank} | {e.safe_rank} | {e.scheduler} | {_cpe_text(e)} | "
                f"{e.completion:.3f} [{e.completion_low:.3f}, {e.completion_high:.3f}] | "
                f"{e.p_safe} ({e.p_safe_p_value:.3g}) | {e.episodes} |"
            )
    return "\n".join(lines) + "\n"


def write_leaderboard(entries: Sequence[BoardEntry], out: str | Path, plot: bool = True) -> list[Path]:
    """Write ``table.md``, ``table.csv`` and (with ``plot``) ``heatmap.png`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(leaderboard_markdown(entries))
    written = [out / "table.md", write_csv(list(entries), out / "table.csv")]
    if plot:
        with optional_plot():
            written.append(plot_heatmap(entries, out / "heatmap.png"))
    return written
