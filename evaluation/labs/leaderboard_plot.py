"""The leaderboard's heat map: schedulers x suite ids, coloured by mean CPE relative to the best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labsched.envs._lib.reporting import pyplot, save_figure

__all__ = ["plot_heatmap"]


def plot_heatmap(entries: Sequence[Any], path: str | Path, title: str | None = None) -> Path:
    """Heat map of a leaderboard (:class:`~labsched.evaluation.labs.leaderboard.BoardEntry` s).

    Rows are schedulers, columns suite ids; a cell's colour is its mean CPE divided by the best
    mean CPE of its column (suite ids differ in scale), its text the mean CPE, the rank and the
    p-safe mark (✓ / ✗); n/a cells are grey.
    """
    plt = pyplot()
    envs = list(dict.fromkeys(e.env for e in entries))
    scheds = list(dict.fromkeys(e.scheduler for e in entries))
    by = {(e.env, e.scheduler): e for e in entries}
    rel = np.full((len(scheds), len(envs)), np.nan)
    for j, env in enumerate(envs):
        best = max((e.mean_cpe for e in entries if e.env == env and e.status == "ok"), default=math.nan)
        for i, s in enumerate(scheds):
            e = by.get((env, s))
            if e is not None and e.status == "ok" and best > 0:
                rel[i, j] = e.mean_cpe / best
    fig, ax = plt.subplots(figsize=(1.5 + 1.25 * len(envs), 1.2 + 0.42 * len(scheds)), dpi=120)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(rel), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i, s in enumerate(scheds):
        for j, env in enumerate(envs):
            e = by.get((env, s))
            if e is None:
                continue
            if e.status != "ok":
                text, color = "n/a", "black"
            else:
                mark = "✓" if e.p_safe == "yes" else "✗"
                text = f"{e.mean_cpe:.0f}\n#{e.rank} {mark}"
                color = "black" if rel[i, j] > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(envs)))
    ax.set_xticklabels([e.removesuffix("-v0") for e in envs], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(scheds)))
    ax.set_yticklabels(scheds, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).set_label(
        "mean CPE / best mean CPE of the suite id", fontsize=8
    )
    ax.set_title(title or "labsched leaderboard: mean CPE, #rank, ✓ p-safe / ✗ not (grey: n/a)", fontsize=9)
    return save_figure(fig, path)
