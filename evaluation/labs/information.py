"""The information goal (issue 13): does CPE predict how well a campaign *learns* the function,
and does an information-gain selector learn it better?

The environment reports, at the end of every episode with an objective, the integrated posterior
variance of the GP over a fixed Sobol' set of the box (``integrated_variance``, the quantity
``reward="information"`` pays minus) and the error of its posterior mean there (``rmse``); sweep
rows carry both (:mod:`labsched.evaluation.sweep`). Two studies run on one resumable sweep:

1. **Correlation** (the paper's Figure 1 question, for uncertainty instead of regret): the Figure-1
   family of schedulers (:data:`~labsched.evaluation.labs.figure1.DEFAULT_SCHEDULERS`) on each
   objective, with each of ``correlation_selectors``; each scheduler becomes one point (mean CPE,
   mean integrated variance, mean RMSE, mean regret) and Spearman's rank correlation of mean CPE
   with each goal is reported with its p-value per (selector, objective). Also reported: the
   correlation of the mean number of completed experiments with the integrated variance (a
   scheduler that loses experiments at the horizon has fewer observations to learn from).
2. **Selectors**: ``compare_selectors`` (``ivr``, ``kb-ei``, ``random``, ``mes``) under fixed
   schedulers (PS and OnFCP), paired over the same episodes: the environment's seed does not
   depend on the selector, so run ``i`` has the same initial design, duration and noise draws
   under every selector (checked through the rows' ``init_hash``). Means with 95% t intervals and
   paired differences ``reference - other`` (:func:`~labsched.envs._lib.stats.paired_difference`,
   paired t and Wilcoxon p-values); a negative difference means the reference (``ivr``) leaves
   less variance (or error).

:func:`information_report` runs (or resumes) the sweep and writes ``information.md``,
``correlation.csv`` (one row per selector, objective and scheduler), ``correlation_stats.csv``,
``selectors.csv``, ``paired.csv`` and the plots ``information_cpe.png`` and ``selectors.png``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from labsched.baselines.labs.synthetic import scheduler_family
from labsched.envs._lib.reporting import optional_plot, write_csv
from labsched.envs._lib.stats import mean_ci, paired_difference
from labsched.evaluation.cells import Cell
from labsched.evaluation.labs.figure1 import DEFAULT_SCHEDULERS, figure1_cells
from labsched.evaluation.labs.information_output import (
    plot_correlations,
    plot_selectors,
    report_markdown,
)
from labsched.evaluation.sweep import SweepRows, run_sweep

__all__ = [
    "COMPARE_SCHEDULERS",
    "COMPARE_SELECTORS",
    "CORRELATION_SELECTORS",
    "DEFAULT_OBJECTIVES",
    "GOALS",
    "Correlation",
    "CorrelationPoint",
    "InformationResult",
    "PairedComparison",
    "SelectorSummary",
    "compare_cells",
    "correlate",
    "information_report",
    "pair_selectors",
    "summarise_points",
    "summarise_selectors",
]

#: Functions of the study: one 1-d-like periodic, one 2-d, one 3-d.
DEFAULT_OBJECTIVES: tuple[str, ...] = ("cosines", "branin", "hartmann3")
#: Selectors of the correlation study: Figure 1's (the paper's) and the information-gain one (the
#: same question when the inputs are chosen for information; about twice the compute per cell).
CORRELATION_SELECTORS: tuple[str, ...] = ("simulation-matching", "ivr")
#: Selectors compared on the information goal; the first is the reference of the paired differences.
COMPARE_SELECTORS: tuple[str, ...] = ("ivr", "kb-ei", "random", "mes")
#: Schedulers under which the selectors are compared.
COMPARE_SCHEDULERS: tuple[str, ...] = ("ps", "onfcp")
#: Goals read from the sweep rows (lower is better for all three).
GOALS: tuple[str, ...] = ("integrated_variance", "rmse", "regret")


def compare_cells(
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    schedulers: Sequence[str] = COMPARE_SCHEDULERS,
    selectors: Sequence[str] = COMPARE_SELECTORS,
    runs: int = 50,
    horizon: float = 5.0,
    seed: int = 0,
    ps_simulations: int | None = None,
    **setting: Any,
) -> list[Cell]:
    """Cells of the selector comparison: every selector x objective x run x scheduler."""
    cells: list[Cell] = []
    for selector in selectors:
        cells += figure1_cells(
            objectives, schedulers, runs, horizon, selector, seed, ps_simulations, **setting
        )
    return cells


def _check_goals(rows: Sequence[dict[str, Any]]) -> None:
    bad = sum(1 for r in rows if any(math.isnan(float(r[g])) for g in ("integrated_variance", "rmse")))
    if bad:
        raise ValueError(
            f"{bad} of {len(rows)} sweep rows have no integrated_variance / rmse (written by a format-1 "
            "sweep); use a fresh results file (another --results path or --no-resume)"
        )


# ----------------------------------------------------------------------------- correlation study


@dataclass(frozen=True)
class CorrelationPoint:
    """One scheduler with one selector on one objective: means (and standard errors) over runs."""

    selector: str
    objective: str
    scheduler: str
    family: str
    runs: int
    mean_cpe: float
    se_cpe: float
    mean_completed: float
    completion_rate: float
    mean_integrated_variance: float
    se_integrated_variance: float
    mean_rmse: float
    se_rmse: float
    mean_regret: float
    se_regret: float


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho (with p-value) across schedulers, for one selector and objective.

    ``rho_*`` relate mean CPE to each goal; ``rho_completed_iv`` relates the mean number of
    completed experiments to the mean integrated variance.
    """

    selector: str
    objective: str
    schedulers: int
    runs: int
    rho_integrated_variance: float
    p_integrated_variance: float
    rho_rmse: float
    p_rmse: float
    rho_regret: float
    p_regret: float
    rho_completed_iv: float
    p_completed_iv: float


def _groups(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _mean_se(rs: Sequence[dict[str, Any]], key: str) -> tuple[float, float]:
    ci = mean_ci([float(r[key]) for r in rs])
    return ci.mean, (ci.std_error if ci.n > 1 else math.nan)


def summarise_points(rows: Sequence[dict[str, Any]]) -> list[CorrelationPoint]:
    """One :class:`CorrelationPoint` per (selector, objective, scheduler), in first-seen order."""
    _check_goals(rows)
    points = []
    for (selector, objective, name), rs in _groups(rows, ("selector", "objective", "scheduler")).items():
        stats = {k: _mean_se(rs, k) for k in ("cpe", *GOALS)}
        points.append(
            CorrelationPoint(
                selector=selector,
                objective=objective,
                scheduler=name,
                family=scheduler_family(name),
                runs=len(rs),
                mean_cpe=stats["cpe"][0],
                se_cpe=stats["cpe"][1],
                mean_completed=float(np.mean([r["completed"] for r in rs])),
                completion_rate=float(np.mean([r["completed"] >= r["n_experiments"] for r in rs])),
                mean_integrated_variance=stats["integrated_variance"][0],
                se_integrated_variance=stats["integrated_variance"][1],
                mean_rmse=stats["rmse"][0],
                se_rmse=stats["rmse"][1],
                mean_regret=stats["regret"][0],
                se_regret=stats["regret"][1],
            )
        )
    return points


def _spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def correlate(points: Sequence[CorrelationPoint]) -> list[Correlation]:
    """Spearman's rho of mean CPE with each goal (and of completions with the integrated
    variance) across schedulers, per (selector, objective); NaN with fewer than 3 schedulers."""
    groups: dict[tuple[str, str], list[CorrelationPoint]] = {}
    for p in points:
        groups.setdefault((p.selector, p.objective), []).append(p)
    out = []
    for (selector, objective), pts in groups.items():
        cpe = [p.mean_cpe for p in pts]
        iv = [p.mean_integrated_variance for p in pts]
        out.append(
            Correlation(
                selector,
                objective,
                len(pts),
                max(p.runs for p in pts),
                *_spearman(cpe, iv),
                *_spearman(cpe, [p.mean_rmse for p in pts]),
                *_spearman(cpe, [p.mean_regret for p in pts]),
                *_spearman([p.mean_completed for p in pts], iv),
            )
        )
    return out


# ----------------------------------------------------------------------------- selector comparison


@dataclass(frozen=True)
class SelectorSummary:
    """One selector under one scheduler on one objective: means with 95% t intervals."""

    objective: str
    scheduler: str
    selector: str
    runs: int
    mean_cpe: float
    integrated_variance: float
    iv_low: float
    iv_high: float
    rmse: float
    rmse_low: float
    rmse_high: float
    regret: float
    regret_low: float
    regret_high: float


@dataclass(frozen=True)
class PairedComparison:
    """``reference - selector`` on one goal over the same episodes (negative: reference lower).

    ``relative`` is the mean difference over the other selector's mean.
    """

    objective: str
    scheduler: str
    goal: str
    reference: str
    selector: str
    runs: int
    mean_diff: float
    low: float
    high: float
    relative: float
    t_p_value: float
    wilcoxon_p_value: float


def summarise_selectors(rows: Sequence[dict[str, Any]]) -> list[SelectorSummary]:
    """One :class:`SelectorSummary` per (objective, scheduler, selector), in first-seen order."""
    _check_goals(rows)
    out = []
    for (objective, name, selector), rs in _groups(rows, ("objective", "scheduler", "selector")).items():
        ci = {g: mean_ci([float(r[g]) for r in rs]) for g in GOALS}
        out.append(
            SelectorSummary(
                objective,
                name,
                selector,
                len(rs),
                float(np.mean([r["cpe"] for r in rs])),
                *(v for g in GOALS for v in (ci[g].mean, ci[g].low, ci[g].high)),
            )
        )
    return out


def pair_selectors(
    rows: Sequence[dict[str, Any]], reference: str = COMPARE_SELECTORS[0]
) -> list[PairedComparison]:
    """Paired differences ``reference - other`` per objective, scheduler, goal and other selector.

    Raises:
        ValueError: when a run's initial design differs between selectors (not common random
            numbers) or a selector lacks some of the reference's runs.
    """
    _check_goals(rows)
    by_run = {(r["objective"], r["scheduler"], r["selector"], r["run"]): r for r in rows}
    out = []
    for (objective, name), rs in _groups(rows, ("objective", "scheduler")).items():
        runs = sorted({r["run"] for r in rs if r["selector"] == reference})
        if not runs:
            continue
        ref = [by_run[(objective, name, reference, i)] for i in runs]
        for other in dict.fromkeys(r["selector"] for r in rs if r["selector"] != reference):
            missing = [i for i in runs if (objective, name, other, i) not in by_run]
            if missing:
                raise ValueError(f"{objective}/{name}: selector {other!r} lacks runs {missing[:5]}")
            oth = [by_run[(objective, name, other, i)] for i in runs]
            if any(a["init_hash"] != b["init_hash"] for a, b in zip(ref, oth, strict=True)):
                raise ValueError(f"{objective}/{name}: {other!r} and {reference!r} runs are not paired")
            for goal in ("integrated_variance", "rmse"):
                a = [float(r[goal]) for r in ref]
                b = [float(r[goal]) for r in oth]
                d = paired_difference(a, b, wilcoxon=True)
                mean_b = float(np.mean(b))
                wil = math.nan if d.wilcoxon_p_value is None else d.wilcoxon_p_value
                rel = d.diff.mean / mean_b if mean_b else math.nan
                ci = (d.diff.mean, d.diff.low, d.diff.high, rel, d.t_p_value, wil)
                out.append(PairedComparison(objective, name, goal, reference, other, len(runs), *ci))
    return out


# ----------------------------------------------------------------------------- the report


@dataclass
class InformationResult:
    """What :func:`information_report` produced.

    Attributes:
        points: one :class:`CorrelationPoint` per (selector, objective, scheduler).
        correlations: one :class:`Correlation` per (selector, objective).
        summaries: one :class:`SelectorSummary` per (objective, scheduler, compared selector).
        paired: the paired differences against the reference selector.
        seconds: wall time of the sweep.
        cells: distinct cells of the sweep.
        ran: cells computed by this call.
        resumed: cells read back from the results file.
        cpu_seconds: sum of the rows' ``wall_time`` (compute spent on the cells, whenever run).
        files: files written.
        markdown: the report.
    """

    points: list[CorrelationPoint]
    correlations: list[Correlation]
    summaries: list[SelectorSummary]
    paired: list[PairedComparison]
    seconds: float
    cells: int
    ran: int
    resumed: int
    cpu_seconds: float
    files: list[Path] = field(default_factory=list)
    markdown: str = ""


# size: 84 lines, 47 of them the signature and docstring of its 19 options; the body is short.
def information_report(
    out: str | Path = "results/information",
    *,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    schedulers: Sequence[str] = DEFAULT_SCHEDULERS,
    correlation_selectors: Sequence[str] = CORRELATION_SELECTORS,
    correlation_runs: int = 10,
    compare_schedulers: Sequence[str] = COMPARE_SCHEDULERS,
    compare_selectors: Sequence[str] = COMPARE_SELECTORS,
    compare_runs: int = 50,
    horizon: float = 5.0,
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
) -> InformationResult:
    """Run (or resume) both studies on one sweep and write the report files into ``out``.

    Args:
        out: output folder (``sweep.csv`` is the results file unless ``results_path`` is given).
        objectives: objective names (at least one).
        schedulers: the correlation study's schedulers (default: Figure 1's 31).
        correlation_selectors: selectors of the correlation study (empty: skip it).
        correlation_runs: runs per scheduler in the correlation study.
        compare_schedulers: schedulers of the selector comparison.
        compare_selectors: selectors compared; the first is the reference (empty: skip).
        compare_runs: runs per cell of the comparison.
        horizon, seed, ps_simulations, n_jobs, backend, address, resume, progress: as
            :func:`~labsched.evaluation.labs.figure1.figure1`.
        plot: write the PNG plots (needs matplotlib).
        results_path: the sweep's results CSV.
        **setting: other :class:`~labsched.evaluation.cells.Cell` fields (``n_experiments``, ...).

    Raises:
        ValueError: for empty objectives, or both studies empty.
    """
    if not objectives:
        raise ValueError("objectives must name at least one objective")
    if not correlation_selectors and not compare_selectors:
        raise ValueError("give correlation_selectors and/or compare_selectors")
    out = Path(out)
    corr_cells: list[Cell] = []
    for selector in correlation_selectors:
        corr_cells += figure1_cells(
            objectives, schedulers, correlation_runs, horizon, selector, seed, ps_simulations, **setting
        )
    cmp_cells = compare_cells(
        objectives,
        compare_schedulers,
        compare_selectors,
        compare_runs,
        horizon,
        seed,
        ps_simulations,
        **setting,
    )
    rows = run_sweep(
        cmp_cells + corr_cells,
        results_path or out / "sweep.csv",
        n_jobs=n_jobs,
        backend=backend,
        address=address,
        resume=resume,
        progress=progress,
    )
    res = _result(rows, corr_cells, cmp_cells, compare_selectors[0] if compare_selectors else "")
    settings = {
        "objectives": ", ".join(objectives),
        "correlation study": f"{len(schedulers)} schedulers x {correlation_runs} runs, selectors "
        f"{', '.join(correlation_selectors) or '(none)'}",
        "selector comparison": f"{', '.join(compare_selectors) or '(none)'} under "
        f"{', '.join(compare_schedulers)}, {compare_runs} paired runs each",
        "setting": f"horizon {horizon:g}, seed {seed}, "
        + ", ".join(f"{k}={v}" for k, v in setting.items())
        + (f", PS simulations {ps_simulations}" if ps_simulations else ""),
    }
    _write_files(res, out, settings, plot)
    return res


def _result(
    rows: SweepRows, corr_cells: list[Cell], cmp_cells: list[Cell], reference: str
) -> InformationResult:
    """Both studies' statistics from the sweep's rows (each study reads its own cells)."""
    by_id = {r["cell_id"]: r for r in rows}
    corr_rows = [by_id[c.id] for c in dict.fromkeys(corr_cells)]
    cmp_rows = [by_id[c.id] for c in dict.fromkeys(cmp_cells)]
    points = summarise_points(corr_rows) if corr_rows else []
    return InformationResult(
        points=points,
        correlations=correlate(points),
        summaries=summarise_selectors(cmp_rows) if cmp_rows else [],
        paired=pair_selectors(cmp_rows, reference) if cmp_rows else [],
        seconds=rows.seconds,
        cells=len(rows),
        ran=rows.n_run,
        resumed=rows.n_resumed,
        cpu_seconds=float(sum(r["wall_time"] for r in rows)),
    )


def _write_files(res: InformationResult, out: Path, settings: dict[str, Any], plot: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    res.files += [
        write_csv(res.points, out / "correlation.csv", fields=list(CorrelationPoint.__dataclass_fields__)),
        write_csv(
            res.correlations, out / "correlation_stats.csv", fields=list(Correlation.__dataclass_fields__)
        ),
        write_csv(res.summaries, out / "selectors.csv", fields=list(SelectorSummary.__dataclass_fields__)),
        write_csv(res.paired, out / "paired.csv", fields=list(PairedComparison.__dataclass_fields__)),
    ]
    res.markdown = report_markdown(res, settings)
    (out / "information.md").write_text(res.markdown)
    res.files.append(out / "information.md")
    if not plot:
        return
    with optional_plot():
        if res.points:
            res.files.append(plot_correlations(res.points, res.correlations, out / "information_cpe.png"))
        if res.summaries:
            res.files.append(plot_selectors(res.summaries, out / "selectors.png"))
