"""The CPE row of the paper's Table 2: every scheduler, several horizons, many episodes.

``labsched cpe-table`` runs each scheduler on the paper's setting (or any spec given on the
command line) for every horizon, with common random numbers (episode ``i`` has env seed
``seed + i`` under every scheduler), and writes Markdown, CSV and a plot.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from labsched.agents.runner import CpeRow, RunTask, TaskResult, run_tasks
from labsched.baselines.labs.paper import PAPER_CPE, PAPER_SCHEDULERS, paper_cpe
from labsched.baselines.registry import BASELINES
from labsched.envs._lib.reporting import markdown_row, optional_plot, pyplot, save_figure, write_csv
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "PAPER_CPE",
    "CpeRow",
    "cpe_table",
    "paper_schedulers",
    "plot_cpe_table",
    "rows_to_markdown",
    "sequential_horizon",
    "write_cpe_outputs",
    "write_csv",
]


def paper_schedulers() -> list[str]:
    """The paper's schedulers, in its column order (those registered in this install)."""
    return [s for s in PAPER_SCHEDULERS if s in BASELINES]


def sequential_horizon(spec: LabSpec) -> float:
    """A horizon long enough for ``n`` experiments run one after another:
    :attr:`LabSpec.sequential_horizon`."""
    return spec.sequential_horizon


def _row(spec: LabSpec, result: TaskResult) -> CpeRow:
    task, s = result.task, result.summary
    return CpeRow(
        scheduler=task.name,
        horizon=task.spec.horizon,
        episodes=s.n_episodes,
        mean_cpe=s.mean_cpe,
        se_cpe=s.se_cpe,
        completion_rate=s.completion_rate,
        mean_completed=s.mean_completed,
        paper_cpe=paper_cpe(spec, task.name, task.spec.horizon),
        seconds=s.seconds,
    )


def cpe_table(
    spec: LabSpec | None = None,
    horizons: Sequence[float] = (4.0, 5.0, 6.0),
    schedulers: Sequence[str] | None = None,
    episodes: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
    options: dict[str, dict] | None = None,
    progress: bool = True,
) -> list[CpeRow]:
    """Run every scheduler for every horizon and summarise CPE.

    Args:
        spec: the problem (its horizon is replaced by each of ``horizons``).
        horizons: horizons to evaluate.
        schedulers: baseline names (default: :func:`paper_schedulers`).
        episodes: episodes per cell (common random numbers across schedulers).
        seed: seed of the first episode.
        n_jobs: parallel worker processes (joblib); 1 runs in-process.
        options: per-scheduler constructor options, e.g. ``{"ps": {"n_simulations": 300}}``.
        progress: print one line per finished cell to stderr.

    Returns:
        One :class:`CpeRow` per (scheduler, horizon), in the order given.
    """
    spec = spec or LabSpec()
    schedulers = list(schedulers) if schedulers is not None else paper_schedulers()
    unknown = [s for s in schedulers if s not in BASELINES]
    if unknown:
        raise ValueError(f"unknown scheduler(s) {unknown}; known: {', '.join(sorted(BASELINES))}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    options = options or {}
    tasks = [
        RunTask(name, spec.replace(horizon=float(h)), episodes, seed, options=options.get(name, {}))
        for h in horizons
        for name in schedulers
    ]
    t0 = time.perf_counter()

    def report(k: int, i: int, result: TaskResult) -> None:
        if progress:
            s, task = result.summary, result.task
            eta = (time.perf_counter() - t0) / (k + 1) * (len(tasks) - k - 1)
            print(
                f"[{k + 1:>2}/{len(tasks)}] {task.name:<10} h={task.spec.horizon:<5g} "
                f"CPE {s.mean_cpe:7.2f} ± {s.se_cpe:.2f}  complete {s.completion_rate:.3f}  "
                f"{s.seconds:6.1f}s  (about {eta:.0f}s left)",
                file=sys.stderr,
                flush=True,
            )

    return [_row(spec, r) for r in run_tasks(tasks, n_jobs, on_result=report)]


def _cell_text(r: CpeRow) -> str:
    paper = "" if math.isnan(r.paper_cpe) else f" [{r.paper_cpe:g}]"
    return f"{r.mean_cpe:.1f} ± {r.se_cpe:.1f}{paper} | {r.completion_rate:.3f}"


def rows_to_markdown(rows: Sequence[CpeRow]) -> str:
    """A Markdown table: schedulers as rows, horizons as columns; the paper's value in brackets.

    The sequential reference ignores the horizon (it runs with :func:`sequential_horizon`);
    its row repeats per column for easy reading.
    """
    horizons = sorted({r.horizon for r in rows})
    names = list(dict.fromkeys(r.scheduler for r in rows))
    cell = {(r.scheduler, r.horizon): r for r in rows}
    head = "| scheduler | " + " | ".join(f"h = {h:g}: CPE [paper] | complete" for h in horizons) + " |"
    lines = [head, "|---|" + "---|---|" * len(horizons)]
    lines += [
        markdown_row(name, [(name, h) for h in horizons], cell, _cell_text, "n/a | n/a") for name in names
    ]
    return "\n".join(lines) + "\n"


def plot_cpe_table(rows: Sequence[CpeRow], path: str | Path) -> Path:
    """Grouped bar chart of mean CPE (± 2 SE) per scheduler and horizon, paper values as ticks."""
    plt = pyplot()
    horizons = sorted({r.horizon for r in rows})
    names = list(dict.fromkeys(r.scheduler for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    width = 0.8 / max(len(horizons), 1)
    for j, h in enumerate(horizons):
        xs, ys, es, ps = [], [], [], []
        for i, name in enumerate(names):
            r = next((x for x in rows if x.scheduler == name and x.horizon == h), None)
            if r is None:
                continue
            xs.append(i + (j - (len(horizons) - 1) / 2) * width)
            ys.append(r.mean_cpe)
            es.append(2 * (0.0 if math.isnan(r.se_cpe) else r.se_cpe))
            ps.append(r.paper_cpe)
        ax.bar(xs, ys, width=width * 0.95, yerr=es, label=f"h = {h:g}", capsize=2)
        ax.scatter(xs, ps, marker="_", s=200, color="black", zorder=3, label="paper" if j == 0 else None)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("mean CPE")
    ax.set_title("CPE by scheduler and horizon (bars: ours ± 2 SE; ticks: paper's Table 2)", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_cpe_outputs(
    rows: Sequence[CpeRow], out: str | Path, stem: str = "cpe_table", plot: bool = True
) -> list[Path]:
    """Write ``{stem}.md``, ``{stem}.csv`` and (with ``plot``) ``{stem}.png`` to ``out``.

    A missing matplotlib skips the plot with a note on stderr. Returns the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(rows_to_markdown(rows))
    written = [out / f"{stem}.md", write_csv(rows, out / f"{stem}.csv")]
    if plot:
        with optional_plot():
            written.append(plot_cpe_table(rows, out / f"{stem}.png"))
    return written
