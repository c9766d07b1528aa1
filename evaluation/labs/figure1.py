"""The paper's Figure 1: is a scheduler's CPE a good predictor of its regret?

About thirty deliberately different schedulers are run on two objectives with common random
numbers (run ``i`` has the same initial design and duration draws under every scheduler); each
scheduler becomes one point (mean CPE, mean regret) per objective, and Spearman's rank
correlation between the two is reported per objective. A strongly negative correlation (more
prior information, lower regret) is what makes CPE a sensible objective for scheduling.

The scheduler families (names are parsed by :func:`make_scheduler`, so a sweep cell can name
any of them):

* ``staged:SIZES[@LENGTHS]`` - a fixed staged schedule, e.g. ``staged:10,6,4`` (front-loaded)
  or ``staged:4,6,10@1,1.5,2.5``; stage lengths default to ``h / N`` each. Replayed by
  :class:`~labsched.baselines.OfStaged` with an explicit plan (no safety optimisation).
* ``busy:K`` - keep ``K`` labs busy (refill at once), K = 1..l; ``busy:l`` is OnFCP.
* ``bernoulli:P`` - at every decision point each startable experiment starts with probability
  ``P`` (a random scheduler; its draws come from the cell's scheduler seed).
* the paper's baselines by name: ``onfcp``, ``onmel``, ``ofstaged``, ``ofil``, ``ps``, ``random``.

The unconstrained sequential reference (``h = infinity``) is left out: it does not work under
the same horizon as the others (``busy:1`` is the sequential policy under the horizon).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from labsched.agents.runner import standard_error
from labsched.baselines.labs.synthetic import BernoulliStarts, KeepBusy, make_scheduler, scheduler_family
from labsched.envs._lib.reporting import optional_plot, pyplot, save_figure, write_csv
from labsched.evaluation.sweep import Cell, run_sweep

__all__ = [
    "DEFAULT_SCHEDULERS",
    "BernoulliStarts",
    "Figure1Point",
    "Figure1Result",
    "KeepBusy",
    "figure1",
    "figure1_cells",
    "make_scheduler",
    "plot_figure1",
    "read_points_csv",
    "scheduler_family",
    "spearman_by_objective",
]

#: Thirty-one schedulers for the paper's setting (n = 20, l = 10): twelve staged schedules
#: (uniform with 2-5 stages, front-loaded, back-loaded, many small stages, a slow start, half the
#: budget), keep-K-busy for K = 1..9, four random start probabilities and the paper's baselines.
DEFAULT_SCHEDULERS: tuple[str, ...] = (
    "staged:10,10",
    "staged:7,7,6",
    "staged:5,5,5,5",
    "staged:4,4,4,4,4",
    "staged:3,3,3,3,3,3,2",
    "staged:2,2,2,2,2,2,2,2,2,2",
    "staged:10,6,4",
    "staged:10,5,3,2",
    "staged:4,6,10",
    "staged:2,3,5,10",
    "staged:1,1,1,1,6,10",
    "staged:10",
    *(f"busy:{k}" for k in range(1, 10)),
    "bernoulli:0.05",
    "bernoulli:0.1",
    "bernoulli:0.25",
    "bernoulli:0.5",
    "onfcp",
    "onmel",
    "ofstaged",
    "ofil",
    "ps",
    "random",
)


def figure1_cells(
    objectives: Sequence[str] = ("cosines", "hartmann3"),
    schedulers: Sequence[str] = DEFAULT_SCHEDULERS,
    runs: int = 50,
    horizon: float = 5.0,
    selector: str = "simulation-matching",
    seed: int = 0,
    ps_simulations: int | None = None,
    **setting: Any,
) -> list[Cell]:
    """Cells of Figure 1: every objective x scheduler x run, at one horizon."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    cells = []
    for objective in objectives:
        for run in range(runs):
            for name in schedulers:
                options = {"n_simulations": ps_simulations} if name == "ps" and ps_simulations else {}
                cells.append(
                    Cell(
                        objective=objective,
                        scheduler=name,
                        horizon=float(horizon),
                        run=run,
                        selector=selector,
                        options=options,
                        seed=seed,
                        **setting,
                    )
                )
    return cells


@dataclass(frozen=True)
class Figure1Point:
    """One scheduler on one objective."""

    objective: str
    scheduler: str
    family: str
    runs: int
    mean_cpe: float
    se_cpe: float
    mean_regret: float
    se_regret: float
    completion_rate: float


def summarise(rows: Sequence[dict[str, Any]]) -> list[Figure1Point]:
    """Mean CPE and regret per (objective, scheduler), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["objective"], r["scheduler"]), []).append(r)
    points = []
    for (objective, name), rs in groups.items():
        cpe = np.array([r["cpe"] for r in rs], dtype=float)
        regret = np.array([r["regret"] for r in rs], dtype=float)
        done = np.array([r["completed"] >= r["n_experiments"] for r in rs], dtype=float)
        points.append(
            Figure1Point(
                objective=objective,
                scheduler=name,
                family=scheduler_family(name),
                runs=len(rs),
                mean_cpe=float(cpe.mean()),
                se_cpe=standard_error(cpe),
                mean_regret=float(regret.mean()),
                se_regret=standard_error(regret),
                completion_rate=float(done.mean()),
            )
        )
    return points


def spearman_by_objective(points: Sequence[Figure1Point]) -> dict[str, tuple[float, float]]:
    """Spearman's rho between mean CPE and mean regret, with its p-value, per objective."""
    out = {}
    for objective in dict.fromkeys(p.objective for p in points):
        ps = [p for p in points if p.objective == objective]
        if len(ps) < 3:
            out[objective] = (math.nan, math.nan)
            continue
        res = spearmanr([p.mean_cpe for p in ps], [p.mean_regret for p in ps])
        out[objective] = (float(res.statistic), float(res.pvalue))
    return out


def write_points_csv(points: Sequence[Figure1Point], path: str | Path) -> Path:
    """One row per (objective, scheduler)."""
    return write_csv(points, path, fields=list(Figure1Point.__dataclass_fields__))


def read_points_csv(path: str | Path) -> list[Figure1Point]:
    """The points of a ``figure1.csv`` written by :func:`write_points_csv` (to re-plot a figure
    without running its sweep again: ``plot_figure1(points, spearman_by_objective(points), png)``)."""
    kinds = {"int": int, "float": float, "str": str}
    fields = {f.name: kinds[str(f.type)] for f in dataclasses.fields(Figure1Point)}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != list(fields):
            raise ValueError(
                f"{path}: columns {reader.fieldnames} are not those of figure1.csv: {list(fields)}"
            )
        return [Figure1Point(**{k: fields[k](v) for k, v in row.items()}) for row in reader]


_FAMILY_STYLE = {
    "staged": ("tab:blue", "s"),
    "busy": ("tab:orange", "o"),
    "bernoulli": ("tab:green", "^"),
    "baseline": ("tab:red", "D"),
}


#: Where a point's label may go, in points from the marker (tried in this order).
_LABEL_OFFSETS = ((3, 3), (3, -9), (-3, 3), (-3, -9), (5, -3), (-5, -3))


def _label_what_fits(ax: Any, ps: Sequence[Figure1Point], renderer: Any) -> int:
    """Label each point (baselines first, then left to right) at the first offset where its
    text overlaps no other label or marker and stays inside the axes; a point with no such
    place stays unlabelled (its family is still in the legend). Returns the number labelled."""
    to_display = ax.transData.transform
    inside = ax.get_window_extent(renderer)
    markers = [to_display((p.mean_cpe, p.mean_regret)) for p in ps]
    r = 3.5  # marker half-size in pixels (ms=5 at 110 dpi, rounded up)
    taken = [(x - r, y - r, x + r, y + r) for x, y in markers]
    legend = ax.get_legend()
    if legend is not None:
        b = legend.get_window_extent(renderer)
        taken.append((b.x0, b.y0, b.x1, b.y1))
    order = sorted(range(len(ps)), key=lambda i: (ps[i].family != "baseline", ps[i].mean_cpe))
    labelled = 0
    for i in order:
        p = ps[i]
        for dx, dy in _LABEL_OFFSETS:
            text = ax.annotate(
                p.scheduler.replace("staged:", "S:"),
                (p.mean_cpe, p.mean_regret),
                fontsize=6,
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right",
            )
            box = text.get_window_extent(renderer)
            own = (markers[i][0] - r, markers[i][1] - r, markers[i][0] + r, markers[i][1] + r)
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if fits and not any(
                box.x0 < b[2] and b[0] < box.x1 and box.y0 < b[3] and b[1] < box.y1 for b in taken if b != own
            ):
                taken.append((box.x0 - 1, box.y0 - 1, box.x1 + 1, box.y1 + 1))
                labelled += 1
                break
            text.remove()
    return labelled


def plot_figure1(
    points: Sequence[Figure1Point],
    correlations: dict[str, tuple[float, float]],
    path: str | Path,
    label_points: bool = True,
) -> Path:
    """Scatter of mean regret against mean CPE, one panel per objective, one marker per scheduler.

    Markers are coloured and shaped by family (legend). With ``label_points`` a point is labelled
    with its scheduler only where the label fits without overlapping another label or marker
    (baselines first); the panel's title says how many are labelled, and ``figure1.csv`` has
    every point.
    """
    plt = pyplot()
    objectives = list(dict.fromkeys(p.objective for p in points))
    fig, axes = plt.subplots(1, len(objectives), figsize=(6.0 * len(objectives), 4.8), dpi=130, squeeze=False)
    panels = []
    for ax, objective in zip(axes[0], objectives, strict=True):
        ps = [p for p in points if p.objective == objective]
        for family, (color, marker) in _FAMILY_STYLE.items():
            sel = [p for p in ps if p.family == family]
            if not sel:
                continue
            ax.errorbar(
                [p.mean_cpe for p in sel],
                [p.mean_regret for p in sel],
                yerr=[0.0 if math.isnan(p.se_regret) else p.se_regret for p in sel],
                fmt=marker,
                color=color,
                ms=5,
                elinewidth=0.6,
                capsize=0,
                alpha=0.85,
                label=family,
            )
        rho, pval = correlations.get(objective, (math.nan, math.nan))
        runs = max((p.runs for p in ps), default=0)
        title = f"{objective}: Spearman rho = {rho:.2f} (p = {pval:.1e}), {runs} runs"
        # The second title line is there before the layout is fixed, so labelling moves nothing.
        ax.set_title(
            title + (f"\n{len(ps)} of {len(ps)} points labelled" if label_points else ""), fontsize=9
        )
        ax.set_xlabel("mean CPE")
        ax.set_ylabel("mean regret (± SE)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="scheduler family", title_fontsize=7)
        panels.append((ax, title, ps))
    fig.suptitle(f"CPE against regret for {len({p.scheduler for p in points})} schedulers", fontsize=10)
    fig.tight_layout()
    if label_points:
        renderer = fig.canvas.get_renderer()
        for ax, title, ps in panels:
            n = _label_what_fits(ax, ps, renderer)
            ax.set_title(f"{title}\n{n} of {len(ps)} points labelled (the others would overlap)", fontsize=9)
    return save_figure(fig, path)


def correlations_markdown(
    correlations: dict[str, tuple[float, float]], points: Sequence[Figure1Point]
) -> str:
    """A small Markdown table of the correlations."""
    lines = [
        "| objective | schedulers | runs | Spearman rho (CPE, regret) | p-value |",
        "|---|---|---|---|---|",
    ]
    for objective, (rho, pval) in correlations.items():
        ps = [p for p in points if p.objective == objective]
        runs = max((p.runs for p in ps), default=0)
        lines.append(f"| {objective} | {len(ps)} | {runs} | {rho:.3f} | {pval:.2e} |")
    return "\n".join(lines) + "\n"


@dataclass
class Figure1Result:
    """What :func:`figure1` produced.

    Attributes:
        points: one :class:`Figure1Point` per (objective, scheduler).
        correlations: objective -> (Spearman's rho of mean CPE and mean regret, p-value).
        seconds: wall time of the sweep.
        cells: cells of the sweep.
        ran: cells computed by this call.
        resumed: cells read back from the results file.
        files: files written.
        markdown: the correlation table.
    """

    points: list[Figure1Point]
    correlations: dict[str, tuple[float, float]]
    seconds: float
    cells: int
    ran: int
    resumed: int
    files: list[Path] = field(default_factory=list)
    markdown: str = ""


def figure1(
    out: str | Path = "results/figure1",
    *,
    objectives: Sequence[str] = ("cosines", "hartmann3"),
    schedulers: Sequence[str] = DEFAULT_SCHEDULERS,
    runs: int = 50,
    horizon: float = 5.0,
    selector: str = "simulation-matching",
    seed: int = 0,
    ps_simulations: int | None = None,
    n_jobs: int = 2,
    backend: str = "loky",
    address: str | None = None,
    resume: bool = True,
    progress: bool = True,
    plot: bool = True,
    results_path: str | Path | None = None,
    **setting: Any,
) -> Figure1Result:
    """Run (or resume) the Figure-1 sweep and write ``figure1.{csv,md,png}`` and ``sweep.csv``.

    Returns:
        A :class:`Figure1Result`.
    """
    out = Path(out)
    cells = figure1_cells(objectives, schedulers, runs, horizon, selector, seed, ps_simulations, **setting)
    rows = run_sweep(
        cells,
        results_path or out / "sweep.csv",
        n_jobs=n_jobs,
        backend=backend,
        address=address,
        resume=resume,
        progress=progress,
    )
    points = summarise(rows)
    corr = spearman_by_objective(points)
    files = [write_points_csv(points, out / "figure1.csv")]
    md = correlations_markdown(corr, points)
    (out / "figure1.md").write_text(md)
    files.append(out / "figure1.md")
    if plot:
        with optional_plot():
            files.append(plot_figure1(points, corr, out / "figure1.png"))
    return Figure1Result(
        points=points,
        correlations=corr,
        seconds=rows.seconds,
        cells=len(cells),
        ran=rows.n_run,
        resumed=rows.n_resumed,
        files=files,
        markdown=md,
    )
