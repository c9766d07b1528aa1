"""The CPE row of the paper's Table 2: every scheduler, several horizons, many episodes.

``labsched cpe-table`` runs each scheduler on the paper's setting (or any spec given on the
command line) for every horizon, with common random numbers (episode ``i`` has env seed
``seed + i`` under every scheduler), and writes Markdown, CSV and a plot.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labsched.envs.rendering import save_figure
from labsched.envs.spec import LabSpec

from .rollout import RunSummary, run_episodes, summarize
from .sweep import single_threaded_blas

__all__ = [
    "PAPER_CPE",
    "CpeRow",
    "cpe_table",
    "paper_schedulers",
    "plot_cpe_table",
    "rows_to_markdown",
    "sequential_horizon",
    "write_csv",
]

PAPER_SCHEDULERS = ("sequential", "onfcp", "ofstaged", "ofil", "onmel", "ps")


def paper_schedulers() -> list[str]:
    """The paper's schedulers, in its column order (those registered in this install)."""
    from labsched import baselines

    return [s for s in PAPER_SCHEDULERS if s in baselines.BASELINES]


#: The CPE row of Azimi, Fern & Fern's Table 2 (n=20, l=10, truncated normal mu=1, var 0.1,
#: p=0.95), keyed by (scheduler, horizon). Sequential and OnFCP do not depend on h.
PAPER_CPE: dict[tuple[str, float], float] = {
    **{("sequential", h): 190.0 for h in (4.0, 5.0, 6.0)},
    **{("onfcp", h): 55.0 for h in (4.0, 5.0, 6.0)},
    ("ofstaged", 4.0): 100.0,
    ("ofstaged", 5.0): 100.0,
    ("ofstaged", 6.0): 133.0,
    ("ofil", 4.0): 100.0,
    ("ofil", 5.0): 100.0,
    ("ofil", 6.0): 137.0,
    ("onmel", 4.0): 66.0,
    ("onmel", 5.0): 91.0,
    ("onmel", 6.0): 120.0,
    ("ps", 4.0): 100.0,
    ("ps", 5.0): 118.0,
    ("ps", 6.0): 138.0,
}


@dataclass(frozen=True)
class CpeRow:
    """One (scheduler, horizon) cell of the table."""

    scheduler: str
    horizon: float
    episodes: int
    mean_cpe: float
    se_cpe: float
    completion_rate: float
    mean_completed: float
    paper_cpe: float
    seconds: float


def sequential_horizon(spec: LabSpec) -> float:
    """A horizon long enough for ``n`` experiments run one after another.

    ``n`` times the duration's ``1 - 1e-9`` quantile (or its upper bound when finite), so the
    sequential reference completes in practically every episode.
    """
    high = spec.duration.support[1]
    per = high if math.isfinite(high) else float(spec.duration.isf(1e-9))
    return max(spec.horizon, spec.n_experiments * per * 1.01)


def _paper_value(spec: LabSpec, scheduler: str, horizon: float) -> float:
    if spec.replace(horizon=5.0) != LabSpec():
        return math.nan  # the paper reports only its own setting
    return PAPER_CPE.get((scheduler, float(horizon)), math.nan)


def _run_cell(
    scheduler: str, spec: LabSpec, episodes: int, seed: int, options: dict
) -> tuple[str, float, RunSummary]:
    # Imported here so that worker processes import the registry themselves.
    from labsched import baselines

    if scheduler == "sequential":
        spec = spec.replace(horizon=sequential_horizon(spec))
    # Randomised baselines draw from their own generator, seeded from the run's seed.
    agent = baselines.make(scheduler, spec, **{"seed": seed, **options.get(scheduler, {})})
    t0 = time.perf_counter()
    results = run_episodes(agent, spec, episodes, seed)
    return scheduler, spec.horizon, summarize(results, spec.n_experiments, time.perf_counter() - t0)


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
    from labsched import baselines

    spec = spec or LabSpec()
    schedulers = list(schedulers) if schedulers is not None else paper_schedulers()
    unknown = [s for s in schedulers if s not in baselines.BASELINES]
    if unknown:
        raise ValueError(f"unknown scheduler(s) {unknown}; known: {', '.join(sorted(baselines.BASELINES))}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    options = options or {}
    cells = [(name, spec.replace(horizon=float(h))) for h in horizons for name in schedulers]
    t0 = time.perf_counter()

    def report(i: int, name: str, h: float, s: RunSummary) -> None:
        if progress:
            eta = (time.perf_counter() - t0) / (i + 1) * (len(cells) - i - 1)
            print(
                f"[{i + 1:>2}/{len(cells)}] {name:<10} h={h:<5g} CPE {s.mean_cpe:7.2f} ± {s.se_cpe:.2f}  "
                f"complete {s.completion_rate:.3f}  {s.seconds:6.1f}s  (about {eta:.0f}s left)",
                file=sys.stderr,
                flush=True,
            )

    summaries: list[tuple[str, float, RunSummary]] = []
    if n_jobs == 1:
        for i, (name, sp) in enumerate(cells):
            out = _run_cell(name, sp, episodes, seed, options)
            summaries.append(out)
            report(i, name, sp.horizon, out[2])
    else:
        from joblib import Parallel, delayed

        # Cells come back as they finish (the slow PS cells are dispatched first).
        order = sorted(range(len(cells)), key=lambda i: cells[i][0] != "ps")
        with single_threaded_blas():
            runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
            gen = runner(delayed(_indexed_cell)(i, *cells[i], episodes, seed, options) for i in order)
            by_index = {}
            for k, (i, out) in enumerate(gen):
                by_index[i] = out
                report(k, cells[i][0], cells[i][1].horizon, out[2])
        summaries = [by_index[i] for i in range(len(cells))]

    rows = []
    for (name, sp), (_, _, s) in zip(cells, summaries, strict=True):
        rows.append(
            CpeRow(
                scheduler=name,
                horizon=sp.horizon,
                episodes=s.n_episodes,
                mean_cpe=s.mean_cpe,
                se_cpe=s.se_cpe,
                completion_rate=s.completion_rate,
                mean_completed=s.mean_completed,
                paper_cpe=_paper_value(spec, name, sp.horizon),
                seconds=s.seconds,
            )
        )
    return rows


def _indexed_cell(i: int, name: str, spec: LabSpec, episodes: int, seed: int, options: dict):
    return i, _run_cell(name, spec, episodes, seed, options)


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
    for name in names:
        parts = []
        for h in horizons:
            r = cell.get((name, h))
            if r is None:
                parts.append("n/a | n/a")
                continue
            paper = "" if math.isnan(r.paper_cpe) else f" [{r.paper_cpe:g}]"
            parts.append(f"{r.mean_cpe:.1f} ± {r.se_cpe:.1f}{paper} | {r.completion_rate:.3f}")
        lines.append(f"| {name} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Any], path: str | Path) -> Path:
    """Write dataclass rows (``CpeRow`` or any other) to a CSV file, one line per row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = type(rows[0]).__dataclass_fields__ if rows else CpeRow.__dataclass_fields__
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    return path


def plot_cpe_table(rows: Sequence[CpeRow], path: str | Path) -> Path:
    """Grouped bar chart of mean CPE (± 2 SE) per scheduler and horizon, paper values as ticks."""
    from labsched.envs.rendering import _pyplot

    plt = _pyplot()
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
