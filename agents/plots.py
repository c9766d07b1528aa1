"""Learning curves of trained agents (matplotlib, imported lazily)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

from labsched.envs.rendering import save_figure

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
) -> Path:
    """Mean evaluation CPE (± 2 SE) against timesteps and against wall time.

    Args:
        eval_log: an ``eval_log.csv`` written by training.
        path: the PNG to write.
        references: horizontal reference lines, e.g. ``{"ps": 119.5, "ofil": 100.0}`` (mean CPE
            of baselines on the same evaluation episodes).
        title: figure title.
    """
    from labsched.envs.rendering import _pyplot

    plt = _pyplot()
    rows = read_eval_log(eval_log)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110, sharey=True)
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
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
