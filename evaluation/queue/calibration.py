"""Calibration of the synthetic experiment-queue world against the paper's setting.

For generated worlds (``dataset_seed``) of each experiment type this measures what decides
whether the world can answer Kharitonov et al.'s questions:

* **order**: how much the users' click-through rate depends on the order of a page (the gap
  between A's page best-first and worst-first by attractiveness; 0 for sDBN users);
* **effects**: the full-size z score of the successful experiments and their probability of
  success ``P`` at the paper's deployment size (10^5 interleaved sessions, 2 * 10^6 A/B
  sessions) under the protocol's bootstrap of the recorded run (quantiles over the successes:
  weak to strong);
* **headroom**: the expected Q(S) of the paper's UpperBound and of the random order in the
  Table 4 / Table 5 setting (interleaving: ``T = 3 * 10^5``, the 3 first-ranked experiments;
  A/B: ``T = 4 * 10^6``, 2 experiments), averaged over stratified 10% test splits, computed
  exactly from the bootstrap success probabilities (no Monte-Carlo over bootstrap draws);
* **features**: ROC AUC of single features against the success label and of the true
  ``P(e)`` (the oracle).

Run ``python -m labsched.evaluation.queue.calibration --out docs/results/queue_calibration``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from labsched.envs._lib.reporting import markdown_table, write_csv
from labsched.envs.queue.dataset import ExperimentDataset
from labsched.envs.queue.generation import generate_dataset
from labsched.envs.queue.significance import ab_power, interleaving_power
from labsched.envs.queue.splits import stratified_splits
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = [
    "PAPER_SETTINGS",
    "CalibrationRow",
    "bootstrap_success_probability",
    "calibrate_world",
    "calibration_markdown",
    "ctr_order_gap",
    "expected_protocol_q",
    "roc_auc",
]

#: ``(n per deployment, k deployed, paper UB, paper Rnd)`` of Tables 4 (T = 3e5) and 5.
PAPER_SETTINGS = {"interleaving": (100_000, 3, 2.42, 0.60), "ab": (2_000_000, 2, 0.92, 0.42)}


@dataclass(frozen=True)
class CalibrationRow:
    """What :func:`calibrate_world` measured on one generated world."""

    experiment_type: str
    dataset_seed: int
    n_experiments: int
    n_successful: int
    ctr_order_gap: float
    success_z_median: float
    success_p10: float
    success_p50: float
    success_p90: float
    share_weak: float
    ub_q: float
    random_q: float
    paper_ub_q: float
    paper_random_q: float
    auc_oracle: float
    auc_cm: float
    auc_err: float
    auc_dcg: float
    seconds: float


def roc_auc(score: Sequence[float], label: Sequence[bool]) -> float:
    """ROC AUC of ``score`` for the binary ``label`` (ties count one half; NaN if one class)."""
    s = np.asarray(score, dtype=float)
    y = np.asarray(label, dtype=bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def bootstrap_success_probability(dataset: ExperimentDataset, n_sessions: int) -> np.ndarray:
    """``(E,)`` probability that ``n_sessions`` sessions resampled from each experiment's
    recorded run succeed (the protocol's ``source="bootstrap"``; normal approximation)."""
    o = dataset.outcome
    alpha = dataset.spec.significance_level
    if dataset.experiment_type == "interleaving":
        c = np.stack([o.wins_a, o.wins_b, o.ties], axis=1).astype(float)
        return interleaving_power(c / np.maximum(c.sum(axis=1, keepdims=True), 1.0), n_sessions, alpha)
    ctr = np.stack(
        [o.clicks_a / np.maximum(o.sessions_a, 1), o.clicks_b / np.maximum(o.sessions_b, 1)], axis=1
    )
    return ab_power(ctr, n_sessions, alpha)


def expected_protocol_q(
    dataset: ExperimentDataset, n_sessions: int, k: int, n_splits: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Expected Q(S) of the paper's UpperBound and of the random order in Algorithm 4: mean
    over ``n_splits`` stratified 10% test splits of the bootstrap success probabilities of the
    ``k`` test experiments with the largest recorded statistic (UB), and ``k / n_test`` times
    their sum (random)."""
    p = bootstrap_success_probability(dataset, n_sessions)
    stat = np.asarray(dataset.statistic, dtype=float)
    ub, rnd = [], []
    for _, test in stratified_splits(dataset.success, n_splits, 0.1, seed):
        top = test[np.argsort(-stat[test], kind="stable")[:k]]
        ub.append(p[top].sum())
        rnd.append(min(k, test.size) / test.size * p[test].sum())
    return float(np.mean(ub)), float(np.mean(rnd))


def ctr_order_gap(dataset: ExperimentDataset) -> float:
    """Mean over the query stream of CTR(A's page sorted by attractiveness, best first) minus
    CTR(the same documents worst first): 0 when users ignore order."""
    world = dataset.world
    ra = world.production_ranking.astype(np.int64)
    a = np.take_along_axis(world.attractiveness, ra, axis=1)
    best = np.take_along_axis(ra, np.argsort(-a, axis=1, kind="stable"), axis=1)
    worst = best[:, ::-1]
    return float(world.click_through_rate(best) - world.click_through_rate(worst))


def _feature_auc(dataset: ExperimentDataset, name: str) -> float:
    if name not in dataset.feature_names:
        return float("nan")
    return roc_auc(dataset.features[:, dataset.feature_index(name)], dataset.success)


def calibrate_world(spec: QueueWorldSpec, dataset_seed: int, *, n_splits: int = 200) -> CalibrationRow:
    """Generate the world ``(spec, dataset_seed)`` and measure it (see the module docstring)."""
    t0 = time.perf_counter()
    ds = generate_dataset(spec, rng=np.random.default_rng(dataset_seed))
    kind = ds.experiment_type
    n, k, paper_ub, paper_rnd = PAPER_SETTINGS[kind]
    succ = ds.success
    p = bootstrap_success_probability(ds, n)[succ]
    z = np.asarray(ds.outcome.z, dtype=float)[succ]
    ub, rnd = expected_protocol_q(ds, n, k, n_splits=n_splits, seed=dataset_seed)
    q10, q50, q90 = (float(x) for x in np.quantile(p, [0.1, 0.5, 0.9])) if p.size else (np.nan,) * 3
    return CalibrationRow(
        experiment_type=kind,
        dataset_seed=int(dataset_seed),
        n_experiments=len(ds),
        n_successful=int(succ.sum()),
        ctr_order_gap=ctr_order_gap(ds),
        success_z_median=float(np.median(z)) if z.size else float("nan"),
        success_p10=q10,
        success_p50=q50,
        success_p90=q90,
        share_weak=float(np.mean(p < 0.5)) if p.size else float("nan"),
        ub_q=ub,
        random_q=rnd,
        paper_ub_q=paper_ub,
        paper_random_q=paper_rnd,
        auc_oracle=roc_auc(ds.success_probability, succ),
        auc_cm=_feature_auc(ds, "dClicks@5|all" if kind == "interleaving" else "dSat@5|all"),
        auc_err=_feature_auc(ds, "dERR@3[irrel]|all"),
        auc_dcg=_feature_auc(ds, "dDCG@3[irrel]|all"),
        seconds=time.perf_counter() - t0,
    )


_SHOWN = (
    ("ctr_order_gap", "CTR order gap", "{:.3f}"),
    ("success_z_median", "median z of successes (full size)", "{:.1f}"),
    ("success_p10", "P(success) at paper size, q10", "{:.2f}"),
    ("success_p50", "q50", "{:.2f}"),
    ("success_p90", "q90", "{:.2f}"),
    ("share_weak", "share of successes with P < 0.5", "{:.2f}"),
    ("ub_q", "UB Q(S)", "{:.2f}"),
    ("random_q", "Rnd Q(S)", "{:.2f}"),
    ("auc_oracle", "AUC oracle P(e)", "{:.2f}"),
    ("auc_cm", "AUC click model (dClicks@5 / dSat@5)", "{:.2f}"),
    ("auc_err", "AUC ERR@3", "{:.2f}"),
    ("auc_dcg", "AUC DCG@3", "{:.2f}"),
)


def calibration_markdown(rows: Sequence[CalibrationRow]) -> str:
    """Per type: every world's values and the mean and range over worlds."""
    blocks = []
    for kind in ("interleaving", "ab"):
        rs = [r for r in rows if r.experiment_type == kind]
        if not rs:
            continue
        n, k, paper_ub, paper_rnd = PAPER_SETTINGS[kind]
        header = ["quantity", *(f"world {r.dataset_seed}" for r in rs), "mean", "min..max"]
        body = []
        for attr, label, fmt in _SHOWN:
            v = np.array([getattr(r, attr) for r in rs], dtype=float)
            body.append(
                [
                    label,
                    *(fmt.format(x) for x in v),
                    fmt.format(np.nanmean(v)),
                    f"{fmt.format(np.nanmin(v))}..{fmt.format(np.nanmax(v))}",
                ]
            )
        title = (
            f"**{kind}**: {n:,} sessions per deployment, {k} deployed (paper: UB {paper_ub}, Rnd {paper_rnd})"
        )
        blocks.append(title + "\n\n" + markdown_table(header, body))
    return "\n\n".join(blocks) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure ``--worlds`` worlds of each ``--types`` and write CSV and Markdown."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--types", nargs="+", choices=["interleaving", "ab"], default=["interleaving", "ab"])
    p.add_argument("--worlds", type=int, default=5, help="dataset seeds 0..worlds-1")
    p.add_argument("--splits", type=int, default=200, help="stratified test splits per world")
    p.add_argument("--user-model", choices=["browsing", "sdbn"], default="browsing")
    p.add_argument("--out", default=None, help="folder for calibration.csv and calibration.md")
    args = p.parse_args(argv)
    rows = []
    for kind in args.types:
        spec = QueueWorldSpec(experiment_type=kind, user_model=args.user_model)
        for seed in range(args.worlds):
            rows.append(calibrate_world(spec, seed, n_splits=args.splits))
            print(f"[{kind}] world {seed}: {rows[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    md = calibration_markdown(rows)
    print(md)
    if args.out:
        out = Path(args.out)
        write_csv(rows, out / "calibration.csv", [f.name for f in fields(CalibrationRow)])
        (out / "calibration.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
