"""Tables and plots of the information-goal report (:mod:`labsched.evaluation.labs.information`).

* :func:`correlations_markdown` - Spearman's rho and p-values per selector and objective.
* :func:`selectors_markdown` - selector means with 95% intervals, and paired differences.
* :func:`report_markdown` - the whole ``information.md``.
* :func:`plot_correlations` - mean integrated variance and mean RMSE against mean CPE, one marker
  per scheduler (coloured by family as in Figure 1), one row per (selector, goal), one column per
  objective, with Spearman's rho in each title.
* :func:`plot_selectors` - each selector's mean integrated variance and RMSE with 95% intervals,
  per scheduler, one column per objective.

All take the report's dataclasses (duck-typed here, so this module does not import the report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labsched.envs._lib.reporting import markdown_table, pyplot, save_figure
from labsched.evaluation.labs.figure1 import _FAMILY_STYLE

__all__ = [
    "correlations_markdown",
    "plot_correlations",
    "plot_selectors",
    "report_markdown",
    "selectors_markdown",
]

_GOAL_LABELS = {"integrated_variance": "mean integrated variance", "rmse": "mean RMSE"}


def _scatter(ax: Any, pts: Sequence[Any], goal: str) -> None:
    for family, (color, marker) in _FAMILY_STYLE.items():
        sel = [p for p in pts if p.family == family]
        if not sel:
            continue
        ax.errorbar(
            [p.mean_cpe for p in sel],
            [getattr(p, f"mean_{goal}") for p in sel],
            yerr=[0.0 if math.isnan(getattr(p, f"se_{goal}")) else getattr(p, f"se_{goal}") for p in sel],
            fmt=marker,
            color=color,
            ms=4,
            elinewidth=0.6,
            capsize=0,
            label=family,
        )


def plot_correlations(points: Sequence[Any], correlations: Sequence[Any], path: str | Path) -> Path:
    """Scatter of each goal against mean CPE (``CorrelationPoint`` s and ``Correlation`` s)."""
    plt = pyplot()
    selectors = list(dict.fromkeys(p.selector for p in points))
    objectives = list(dict.fromkeys(p.objective for p in points))
    rows = [(s, g) for s in selectors for g in ("integrated_variance", "rmse")]
    fig, axes = plt.subplots(
        len(rows), len(objectives), figsize=(4.6 * len(objectives), 3.4 * len(rows)), dpi=100, squeeze=False
    )
    corr = {(c.selector, c.objective): c for c in correlations}
    for i, (selector, goal) in enumerate(rows):
        for j, objective in enumerate(objectives):
            ax = axes[i][j]
            pts = [p for p in points if p.selector == selector and p.objective == objective]
            _scatter(ax, pts, goal)
            c = corr.get((selector, objective))
            rho, pval = (getattr(c, f"rho_{goal}"), getattr(c, f"p_{goal}")) if c else (math.nan, math.nan)
            runs = max((p.runs for p in pts), default=0)
            ax.set_title(
                f"{objective}, {selector}: rho = {rho:.2f} (p = {pval:.1e}), {runs} runs", fontsize=8
            )
            ax.set_xlabel("mean CPE", fontsize=8)
            ax.set_ylabel(f"{_GOAL_LABELS[goal]} (± SE)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Does CPE predict the information goal? One marker per scheduler", fontsize=10)
    return save_figure(fig, path)


def plot_selectors(summaries: Sequence[Any], path: str | Path) -> Path:
    """Mean integrated variance and RMSE with 95% intervals per selector (``SelectorSummary`` s)."""
    plt = pyplot()
    objectives = list(dict.fromkeys(s.objective for s in summaries))
    schedulers = list(dict.fromkeys(s.scheduler for s in summaries))
    selectors = list(dict.fromkeys(s.selector for s in summaries))
    fig, axes = plt.subplots(2, len(objectives), figsize=(4.2 * len(objectives), 6.4), dpi=100, squeeze=False)
    width = 0.8 / max(len(selectors), 1)
    colors = plt.get_cmap("tab10")
    for j, objective in enumerate(objectives):
        for i, (goal, lo, hi) in enumerate(
            [("integrated_variance", "iv_low", "iv_high"), ("rmse", "rmse_low", "rmse_high")]
        ):
            ax = axes[i][j]
            for k, selector in enumerate(selectors):
                sel = [
                    (x, s)
                    for x, name in enumerate(schedulers)
                    for s in summaries
                    if s.objective == objective and s.scheduler == name and s.selector == selector
                ]
                if not sel:
                    continue
                xs = [x - 0.4 + width * (k + 0.5) for x, _ in sel]
                ys = [getattr(s, goal) for _, s in sel]
                err = [
                    [y - getattr(s, lo) for y, (_, s) in zip(ys, sel, strict=True)],
                    [getattr(s, hi) - y for y, (_, s) in zip(ys, sel, strict=True)],
                ]
                ax.errorbar(xs, ys, yerr=err, fmt="o", ms=4, capsize=2, color=colors(k), label=selector)
            ax.set_xticks(range(len(schedulers)), schedulers, fontsize=8)
            ax.set_title(f"{objective}: {_GOAL_LABELS[goal].removeprefix('mean ')}", fontsize=9)
            ax.set_ylabel(f"{_GOAL_LABELS[goal]} (95% CI)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3, axis="y")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Selectors on the information goal (paired episodes)", fontsize=10)
    return save_figure(fig, path)


_CORR_PAIRS = (
    ("CPE, IV", "integrated_variance"),
    ("CPE, RMSE", "rmse"),
    ("CPE, regret", "regret"),
    ("completed, IV", "completed_iv"),
)


def correlations_markdown(corr: Sequence[Any]) -> str:
    """The correlation table (rho and p-value per goal)."""
    header = ["selector", "objective", "schedulers", "runs"]
    for label, _ in _CORR_PAIRS:
        header += [f"rho({label})", "p"]
    rows = []
    for c in corr:
        row = [c.selector, c.objective, c.schedulers, c.runs]
        for _, key in _CORR_PAIRS:
            row += [f"{getattr(c, f'rho_{key}'):.3f}", f"{getattr(c, f'p_{key}'):.1e}"]
        rows.append(row)
    return markdown_table(header, rows, align="llrr" + "r" * 2 * len(_CORR_PAIRS))


def _g(x: float) -> str:
    return f"{x:.4g}"


def selectors_markdown(summaries: Sequence[Any], paired: Sequence[Any]) -> str:
    """The selector table (means and 95% intervals) and the paired-difference table."""
    table = markdown_table(
        ["objective", "scheduler", "selector", "runs", "integrated variance [95% CI]", "RMSE [95% CI]",
         "regret [95% CI]", "mean CPE"],
        [
            [s.objective, s.scheduler, s.selector, s.runs,
             f"{_g(s.integrated_variance)} [{_g(s.iv_low)}, {_g(s.iv_high)}]",
             f"{_g(s.rmse)} [{_g(s.rmse_low)}, {_g(s.rmse_high)}]",
             f"{_g(s.regret)} [{_g(s.regret_low)}, {_g(s.regret_high)}]",
             f"{s.mean_cpe:.1f}"]
            for s in summaries
        ],
        align="lllrrrrr",
    )  # fmt: skip
    diffs = markdown_table(
        ["objective", "scheduler", "goal", "difference", "runs", "mean [95% CI]", "relative", "t p",
         "Wilcoxon p"],
        [
            [d.objective, d.scheduler, d.goal, f"{d.reference} - {d.selector}", d.runs,
             f"{_g(d.mean_diff)} [{_g(d.low)}, {_g(d.high)}]", f"{100 * d.relative:+.0f}%",
             f"{d.t_p_value:.1e}", f"{d.wilcoxon_p_value:.1e}"]
            for d in paired
        ],
        align="llllrrrrr",
    )  # fmt: skip
    return table + "\n" + diffs


def report_markdown(res: Any, settings: dict[str, Any]) -> str:
    """The whole report (an ``InformationResult`` and its settings, one bullet each)."""
    lines = ["# The information goal: CPE, integrated variance and information-gain selectors", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()]
    lines += [
        f"- sweep: {res.cells} cells ({res.ran} run now, {res.resumed} resumed), wall time "
        f"{res.seconds:.0f} s for this call; {res.cpu_seconds:.0f} s of compute summed over the cells",
        "",
        "IV = integrated posterior variance of the GP on the fixed Sobol' set (1024 points), RMSE = its "
        "posterior mean's error there, both at the end of the episode; lower is better for both.",
        "",
        "## 1. Does CPE predict the information goal? (Spearman rho across schedulers)",
        "",
        correlations_markdown(res.correlations),
        "Plot: [information_cpe.png](information_cpe.png); one row per scheduler: "
        "[correlation.csv](correlation.csv).",
        "",
        "## 2. Selectors on the information goal (paired over the same episodes)",
        "",
        selectors_markdown(res.summaries, res.paired),
        "Plot: [selectors.png](selectors.png); tables: [selectors.csv](selectors.csv), "
        "[paired.csv](paired.csv).",
    ]
    return "\n".join(lines) + "\n"
