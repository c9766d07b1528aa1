"""Learning curves of trained agents (matplotlib, loaded on first plot)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

from labsched.envs._lib.reporting import pyplot, save_figure

__all__ = ["plot_learning_curve", "read_eval_log"]


def read_eval_log(path: str | Path) -> list[dict[str, float]]:
    """Rows of an ``eval_log.csv`` (numbers as floats)."""
    with Path(path).open(newline="") as f:
        return [
            {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def plot_learning_curve(
    eval_log: str | Path,
    path: str | Path,
    references: Mapping[str, float] | None = None,
    title: str | None = None,
    constraint_log: str | Path | None = None,
    p_safe: float | None = None,
) -> Path:
    """Mean evaluation CPE (± 2 SE) against timesteps and against wall time.

    Args:
        eval_log: an ``eval_log.csv`` written by training.
        path: the PNG to write.
        references: horizontal reference lines, e.g. ``{"ps": 119.5, "ofil": 100.0}`` (mean CPE
            of baselines on the same evaluation episodes).
        title: figure title.
        constraint_log: a ``constraint_log.csv`` of constrained training: a third panel draws
            the Lagrange multiplier and the completion rates (training episodes per rollout and
            running; evaluation episodes) against timesteps.
        p_safe: the demanded completion probability, marked in that panel.
    """
    plt = pyplot()
    rows = read_eval_log(eval_log)
    with_constraint = constraint_log is not None and Path(constraint_log).is_file()
    ncols = 3 if with_constraint else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.8), dpi=110)
    axes[1].sharey(axes[0])
    steps = [r["timesteps"] for r in rows]
    wall = [r["wall_seconds"] / 60.0 for r in rows]
    mean = [r["mean_cpe"] for r in rows]
    se2 = [2 * (0.0 if math.isnan(r["se_cpe"]) else r["se_cpe"]) for r in rows]
    styles = ["--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))]
    for ax, xs, xlabel in ((axes[0], steps, "timesteps"), (axes[1], wall, "wall time (min)")):
        if rows:
            ax.plot(xs, mean, marker="o", markersize=3, color="C0", label="agent (eval mean)")
            low = [m - e for m, e in zip(mean, se2, strict=True)]
            high = [m + e for m, e in zip(mean, se2, strict=True)]
            ax.fill_between(xs, low, high, color="C0", alpha=0.2, linewidth=0)
        for i, (name, value) in enumerate((references or {}).items()):
            if value is None or not math.isfinite(value):
                continue
            ax.axhline(
                value, color=f"C{i + 1}", linestyle=styles[i % len(styles)], label=f"{name} {value:.1f}"
            )
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean CPE (evaluation episodes)")
    axes[1].legend(fontsize=8, loc="lower right")
    if with_constraint:
        _plot_constraint(axes[2], read_eval_log(constraint_log), rows, p_safe)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _plot_constraint(ax, log: list[dict[str, float]], evals: list[dict[str, float]], p_safe) -> None:
    """Completion rates (left axis) and the Lagrange multiplier (right axis) against timesteps."""
    steps = [r["timesteps"] for r in log]
    ax.plot(steps, [r["rollout_completion"] for r in log], color="C0", alpha=0.3, lw=0.8, label="rollout")
    ax.plot(steps, [r["running_completion"] for r in log], color="C0", label="training (running)")
    if evals:
        ax.plot(
            [r["timesteps"] for r in evals],
            [r["completion_rate"] for r in evals],
            "o-",
            color="C2",
            markersize=3,
            label="evaluation",
        )
    if p_safe is not None:
        ax.axhline(p_safe, color="black", linestyle="--", lw=1, label=f"p = {p_safe:g}")
    ax.set_ylabel("completion rate")
    ax.set_xlabel("timesteps")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(steps, [r["lambda"] for r in log], color="C3", lw=1.2, label="lambda")
    twin.set_ylabel("Lagrange multiplier lambda", color="C3")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower right")
