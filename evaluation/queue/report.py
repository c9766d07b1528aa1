"""``labsched queue-eval``: the protocol for each experiment type, written as tables, CSV files
and the figure, optionally with a trained RL agent compared with the greedy schedulers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labsched.agents.queue import train_queue_agent
from labsched.envs._lib.reporting import optional_plot
from labsched.envs._lib.validation import check_int
from labsched.evaluation.queue.agent_comparison import agent_markdown, compare_agent_with_schedulers
from labsched.evaluation.queue.config import paper_config
from labsched.evaluation.queue.runner import ProtocolResult, run_protocol
from labsched.evaluation.queue.summary import PairTest, SummaryRow, summarize
from labsched.evaluation.queue.tables import figure1_rows, plot_figure1, tables_markdown, write_rows_csv
from labsched.evaluation.queue.worlds import FindingRow, WorldRow, across_worlds, findings, worlds_markdown

if TYPE_CHECKING:
    from labsched.evaluation.queue.agent_comparison import AgentRow

__all__ = ["QueueEvalResult", "queue_eval"]

_TABLES_HEADER = (
    "Synthetic data (labsched's generative model), mean ± 95% CI half-width over splits; "
    "bold: best of the row, better than every other scheduler of the row by a paired "
    "Wilcoxon test (p < 0.05), UB excluded.\n\n"
)


@dataclass
class QueueEvalResult:
    """What :func:`queue_eval` computed and wrote.

    Attributes:
        markdown: every table (and the agent comparison, if any), as written to ``tables.md``.
        rows: the table cells of every experiment type.
        tests: the pairwise Wilcoxon tests.
        results: the per-split protocol results by experiment type.
        files: the files written.
        seconds: wall time.
        agent: the agent comparison rows (None when no agent was trained).
        worlds: every cell across worlds (empty with one world).
        findings: the paper's findings tested in every world (empty with one world).
        world_results: per experiment type, the protocol result of every world (by seed).
    """

    markdown: str
    rows: list[SummaryRow]
    tests: list[PairTest]
    results: dict[str, ProtocolResult]
    files: list[Path]
    seconds: float
    agent: list[AgentRow] | None = None
    worlds: list[WorldRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    world_results: dict[str, dict[int, ProtocolResult]] = field(default_factory=dict)


def _write_protocol_files(
    out: Path,
    markdown: str,
    rows: list[SummaryRow],
    tests: list[PairTest],
    fig_rows: list[SummaryRow],
    plot: bool,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(markdown)
    files = [out / "tables.md", write_rows_csv(rows, out / "results.csv")]
    files.append(write_rows_csv(tests, out / "wilcoxon.csv"))
    if fig_rows:
        files.append(write_rows_csv(fig_rows, out / "figure1.csv"))
        if plot:
            with optional_plot():
                files.append(plot_figure1(fig_rows, out / "figure1.png"))
    return files


def _run_worlds(
    first: ProtocolResult,
    quick: bool,
    overrides: dict[str, Any],
    n_worlds: int,
    *,
    n_jobs: int,
    progress: bool,
) -> dict[int, ProtocolResult]:
    """``first`` and the protocol on the next ``n_worlds - 1`` dataset seeds, by seed."""
    cfg = first.config
    by_world = {cfg.dataset_seed: first}
    for s in range(cfg.dataset_seed + 1, cfg.dataset_seed + n_worlds):
        other = paper_config(cfg.experiment_type, quick=quick, **{**overrides, "dataset_seed": s})
        by_world[s] = run_protocol(other, n_jobs=n_jobs, progress=progress)
    return by_world


def _write_worlds_files(out: Path, result: QueueEvalResult) -> str:
    """Write ``worlds.md``, ``worlds.csv`` and ``findings.csv``; the Markdown to append."""
    worlds_md = worlds_markdown(result.worlds, result.findings)
    (out / "worlds.md").write_text(worlds_md)
    result.files += [
        out / "worlds.md",
        write_rows_csv(result.worlds, out / "worlds.csv"),
        write_rows_csv(result.findings, out / "findings.csv"),
    ]
    return "\n**Across worlds**\n\n" + worlds_md


def _agent_part(
    out: Path, *, seed: int, dataset_seed: int, minutes: float, episodes: int, progress: bool
) -> tuple[list[AgentRow], str, list[Path]]:
    """Train the agent, compare it, write ``agent.md`` and ``agent.csv``."""
    agent = train_queue_agent(
        seed=seed, dataset_seed=dataset_seed, minutes=minutes, out=out, progress=progress
    )
    rows = compare_agent_with_schedulers(agent, episodes=episodes)
    md = agent_markdown(rows, agent)
    (out / "agent.md").write_text(md)
    files = [out / "agent.md", write_rows_csv(rows, out / "agent.csv")]
    if agent.model_path is not None:
        files.append(agent.model_path)
    return rows, md, files


def queue_eval(
    out: str | Path = "results/queue_eval",
    experiment_types: Sequence[str] = ("interleaving", "ab"),
    *,
    quick: bool = False,
    n_splits: int | None = None,
    n_bootstrap: int | None = None,
    seed: int = 0,
    dataset_seed: int = 0,
    ci: str = "normal",
    n_jobs: int = 2,
    plot: bool = True,
    progress: bool = True,
    agent_minutes: float = 0.0,
    agent_episodes: int = 500,
    n_worlds: int = 1,
    lgbm_cv: bool = True,
) -> QueueEvalResult:
    """Run the protocol for each experiment type and write the tables, CSVs and figure.

    Writes ``tables.md`` (all tables), ``results.csv`` (one row per cell), ``wilcoxon.csv``
    (pairwise tests), ``figure1.csv`` and ``figure1.png`` (interleaving) into ``out``. With
    ``agent_minutes > 0`` also trains MaskablePPO (:func:`~labsched.agents.queue.train_queue_agent`,
    interleaving, split 0) and compares it with the greedy schedulers on ``agent_episodes``
    shared test episodes (:func:`compare_agent_with_schedulers`): ``agent.md`` and ``agent.csv``.
    With ``n_worlds > 1`` the protocol also runs on the worlds ``dataset_seed + 1, ...,
    dataset_seed + n_worlds - 1`` (``tables.md`` keeps the first world's tables) and writes
    ``worlds.md`` / ``worlds.csv`` (every cell as mean and spread across worlds) and
    ``findings.csv`` (the paper's findings tested in every world; see
    :mod:`labsched.evaluation.queue.worlds`). LGBM is tuned by cross-validation unless
    ``lgbm_cv`` is False (fixed hyperparameters, faster; ``quick`` implies it).

    Returns:
        A :class:`QueueEvalResult`.
    """
    out = Path(out)
    n_worlds = check_int("n_worlds", n_worlds, 1)
    overrides: dict[str, Any] = dict(seed=seed, dataset_seed=dataset_seed, ci=ci)
    if n_splits is not None:
        overrides["n_splits"] = n_splits
    if n_bootstrap is not None:
        overrides["n_bootstrap"] = n_bootstrap
    if not lgbm_cv:
        overrides["scheduler_options"] = {"lgbm": {"tune": False}}
    t0 = time.perf_counter()
    result = QueueEvalResult(markdown="", rows=[], tests=[], results={}, files=[], seconds=0.0)
    md: list[str] = []
    fig_rows: list[SummaryRow] = []
    for et in experiment_types:
        cfg = paper_config(et, quick=quick, **overrides)
        res = run_protocol(cfg, n_jobs=n_jobs, progress=progress)
        rows, tests = summarize(res)
        result.results[et] = res
        result.rows += rows
        result.tests += tests
        md.append(tables_markdown(rows, cfg))
        if cfg.figure_settings:
            fig_rows += figure1_rows(rows, cfg)
        if n_worlds > 1:
            by_world = _run_worlds(res, quick, overrides, n_worlds, n_jobs=n_jobs, progress=progress)
            result.world_results[et] = by_world
            result.worlds += across_worlds(by_world)
            result.findings += findings(by_world)
    result.markdown = _TABLES_HEADER + "\n".join(md)
    result.files = _write_protocol_files(out, result.markdown, result.rows, result.tests, fig_rows, plot)
    if n_worlds > 1:
        result.markdown += _write_worlds_files(out, result)
    if agent_minutes > 0:
        result.agent, agent_md, files = _agent_part(
            out,
            seed=seed,
            dataset_seed=dataset_seed,
            minutes=agent_minutes,
            episodes=agent_episodes,
            progress=progress,
        )
        result.markdown += "\n**RL agent versus greedy schedulers (same test episodes)**\n\n" + agent_md
        result.files += files
    result.seconds = time.perf_counter() - t0
    return result
