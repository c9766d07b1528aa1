"""Summaries of a protocol run: table cells with confidence intervals over the splits
(:class:`SummaryRow`) and paired Wilcoxon signed-rank tests within each row (:class:`PairTest`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from labsched.baselines.queue.schedulers import QUEUE_SCHEDULERS
from labsched.evaluation.queue.config import PAPER_TABLES
from labsched.evaluation.queue.runner import ProtocolResult

__all__ = ["PairTest", "SummaryRow", "scheduler_label", "summarize", "wilcoxon_p"]


@dataclass(frozen=True)
class SummaryRow:
    """One table cell: a scheduler's metric in one (budget, exploration) scenario."""

    experiment_type: str
    table: int
    metric: str
    budget: int
    deployed: int
    fraction: float
    scheduler: str
    label: str
    mean: float
    ci_low: float
    ci_high: float
    sd: float
    n_splits: int
    best: bool
    p_vs_best: float
    bold: bool
    reads_ground_truth: bool


@dataclass(frozen=True)
class PairTest:
    """A paired Wilcoxon signed-rank test between two schedulers of the same row."""

    experiment_type: str
    metric: str
    budget: int
    deployed: int
    fraction: float
    a: str
    b: str
    mean_difference: float
    p_value: float


def scheduler_label(name: str) -> str:
    """The table label of a queue scheduler (the paper's abbreviation, e.g. ``PGBM``)."""
    return QUEUE_SCHEDULERS[name].label or name


def _ci(v: np.ndarray, method: str, rng: np.random.Generator) -> tuple[float, float]:
    m = float(np.mean(v))
    if v.size < 2:
        return m, m
    if method == "normal":
        h = 1.96 * float(np.std(v, ddof=1)) / math.sqrt(v.size)
        return m - h, m + h
    means = v[rng.integers(0, v.size, size=(4000, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value (1.0 when all differences are zero)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if np.allclose(d, 0.0, atol=1e-12):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(a, b).pvalue)


def summarize(result: ProtocolResult, alpha: float = 0.05) -> tuple[list[SummaryRow], list[PairTest]]:
    """Table cells with confidence intervals, and the Wilcoxon tests within each row.

    A row is a (metric, budget, exploration fraction) scenario; its schedulers, except the
    ground-truth references, are compared pairwise. ``best`` marks the highest mean of the row,
    ``bold`` a best that beats every other scheduler of the row with ``p < alpha``.
    """
    cfg = result.config
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 99]))
    rows_by: dict[tuple[str, int, int, float], list[tuple[str, np.ndarray]]] = {}
    for key, v in zip(result.cells, result.values, strict=True):
        metric, t, k, f, name = key
        rows_by.setdefault((metric, t, k, f), []).append((name, v))
    rows: list[SummaryRow] = []
    tests: list[PairTest] = []
    for (metric, t, k, f), items in rows_by.items():
        ranked = [(n, v) for n, v in items if not QUEUE_SCHEDULERS[n].reads_ground_truth]
        best = max(ranked, key=lambda nv: float(np.mean(nv[1])))[0] if ranked else None
        pv: dict[str, float] = {}
        for i, (na, va) in enumerate(ranked):
            for nb, vb in ranked[i + 1 :]:
                p = wilcoxon_p(va, vb)
                tests.append(
                    PairTest(cfg.experiment_type, metric, t, k, f, na, nb, float(np.mean(va - vb)), p)
                )
                if na == best:
                    pv[nb] = p
                elif nb == best:
                    pv[na] = p
        bold = best is not None and len(ranked) > 1 and all(p < alpha for p in pv.values())
        for name, v in items:
            lo, hi = _ci(v, cfg.ci, rng)
            rows.append(
                SummaryRow(
                    experiment_type=cfg.experiment_type,
                    table=PAPER_TABLES[(cfg.experiment_type, metric)],
                    metric=metric,
                    budget=t,
                    deployed=k,
                    fraction=f,
                    scheduler=name,
                    label=scheduler_label(name),
                    mean=float(np.mean(v)),
                    ci_low=lo,
                    ci_high=hi,
                    sd=float(np.std(v, ddof=1)) if v.size > 1 else 0.0,
                    n_splits=int(v.size),
                    best=name == best,
                    p_vs_best=pv.get(name, math.nan),
                    bold=bool(bold and name == best),
                    reads_ground_truth=QUEUE_SCHEDULERS[name].reads_ground_truth,
                )
            )
    return rows, tests
