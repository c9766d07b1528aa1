"""Writers of the protocol's results: the tables in the paper's layout (Markdown), rows as
CSV, and the figure (Q(S) against the budget T)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labsched.envs._lib.reporting import markdown_row, pyplot, save_figure, write_csv
from labsched.evaluation.queue.config import PAPER_TABLES, ProtocolConfig
from labsched.evaluation.queue.summary import SummaryRow, scheduler_label

__all__ = ["figure1_rows", "plot_figure1", "tables_markdown", "write_rows_csv"]

#: Column order of the tables (the figure's lines follow its first nine, then the others).
SCHEDULER_ORDER = (
    "random",
    "dcg",
    "err",
    "cm",
    "explore",
    "lr",
    "svm",
    "lgbm",
    "pgbm",
    "upper_bound",
    "oracle",
)


def _fmt_t(t: int) -> str:
    exp = int(math.floor(math.log10(t))) if t > 0 else 0
    mant = t / 10**exp
    return f"{mant:g}·10^{exp}"


def _fraction_label(f: float) -> str:
    return "0" if f == 0.0 else f"{f:.2f}·T"


def _cell_text(r: SummaryRow) -> str:
    txt = f"{r.mean:.2f}±{(r.ci_high - r.ci_low) / 2:.2f}"
    return f"**{txt}**" if r.bold else txt


def tables_markdown(rows: Sequence[SummaryRow], config: ProtocolConfig | None = None) -> str:
    """The tables in the paper's layout (one per experiment type, metric and budget; rows:
    exploration size; columns: schedulers), ``mean ± CI half-width``, bold for a significant
    best (Wilcoxon, p < 0.05; the ground-truth references excluded)."""
    blocks: list[str] = []
    groups: dict[tuple[str, str, int, int], list[SummaryRow]] = {}
    for r in rows:
        groups.setdefault((r.experiment_type, r.metric, r.budget, r.deployed), []).append(r)
    figure_only = set()
    if config is not None:
        table_budgets = {int(t) for t, _ in config.q_settings}
        figure_only = {(config.experiment_type, "q", int(t), int(k)) for t, k in config.figure_settings}
        figure_only = {g for g in figure_only if g[2] not in table_budgets}
    order = list(SCHEDULER_ORDER)
    for key in sorted(groups, key=lambda g: (g[0] != "interleaving", g[1], g[2])):
        if key in figure_only:
            continue
        et, metric, t, k = key
        rs = groups[key]
        names = sorted({r.scheduler for r in rs}, key=lambda n: order.index(n) if n in order else 99)
        fracs = sorted({r.fraction for r in rs})
        cell = {(r.scheduler, r.fraction): r for r in rs}
        table = PAPER_TABLES[(et, metric)]
        n_splits = rs[0].n_splits
        if metric == "auc":
            title = f"Table {table} (AUC, {et}): T = {_fmt_t(t)} interactions ({n_splits} splits)"
        else:
            title = (
                f"Table {table} (Q(S), {et}): T = {_fmt_t(t)} interactions, the {k} first-ranked "
                f"experiments deployed ({n_splits} splits)"
            )
        lines = [f"**{title}**", "", "| #sample | " + " | ".join(scheduler_label(n) for n in names) + " |"]
        lines.append("|---|" + "---|" * len(names))
        lines += [
            markdown_row(_fraction_label(f), [(n, f) for n in names], cell, _cell_text, "–") for f in fracs
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_rows_csv(rows: Sequence[Any], path: str | Path) -> Path:
    """Write dataclass rows (``SummaryRow``, ``PairTest``, ``AgentRow``) to a CSV file with a
    header line; no rows give an empty file."""
    rows = list(rows)
    if rows:
        return write_csv(rows, path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def figure1_rows(rows: Sequence[SummaryRow], config: ProtocolConfig) -> list[SummaryRow]:
    """The rows of the figure: Q(S) for each (T, k) of ``figure_settings`` and entry."""
    want = {(int(t), int(k)) for t, k in config.figure_settings}
    entries = {(n, float(f)) for n, f in config.figure_entries}
    return [
        r
        for r in rows
        if r.metric == "q" and (r.budget, r.deployed) in want and (r.scheduler, r.fraction) in entries
    ]


def plot_figure1(rows: Sequence[SummaryRow], path: str | Path, title: str | None = None) -> Path:
    """Q(S) against the budget T, one line per (scheduler, exploration) with 95% CI bars."""
    plt = pyplot()
    lines: dict[tuple[str, float], list[SummaryRow]] = {}
    for r in rows:
        lines.setdefault((r.scheduler, r.fraction), []).append(r)
    rank = {n: i for i, n in enumerate(SCHEDULER_ORDER[:9])}
    lines = dict(sorted(lines.items(), key=lambda kv: (rank.get(kv[0][0], 50), kv[0][1])))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = ["o-", "s-", "^-", "v-", "D-", "x--", "*-", "P-", "h-"]
    for i, ((name, f), rs) in enumerate(lines.items()):
        rs = sorted(rs, key=lambda r: r.budget)
        x = [r.budget for r in rs]
        y = [r.mean for r in rs]
        err = [[r.mean - r.ci_low for r in rs], [r.ci_high - r.mean for r in rs]]
        lab = scheduler_label(name) + (f" {f:.2f}" if f > 0 or name in ("pgbm", "lgbm", "lr", "svm") else "")
        ax.errorbar(x, y, yerr=err, fmt=styles[i % len(styles)], capsize=2, label=lab, ms=4)
    ax.set_xlabel("interactions available, T")
    ax.set_ylabel("Q(S): successful experiments")
    ax.set_title(title or "Q(S) against T (synthetic interleaving data)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
