"""The bootstrap evaluation protocol of experiment-queue schedulers (Algorithm 4 of Kharitonov
et al., SIGIR 2015), its tables and figure, and an RL agent trained on the queue environment.

All data are **synthetic**: they come from the generative model of
:mod:`labsched.envs.search_world` and :mod:`labsched.envs.queue_features` (the paper's Yandex
logs are private), so the numbers measure the schedulers on that model, not on real traffic.

## The protocol (:func:`run_protocol`)
For each of ``n_splits`` stratified random splits of the dataset's experiments (10% test,
``StratifiedShuffleSplit`` on the success label):

1. the learned schedulers are fitted on the training experiments (once per exploration size,
   the exploration feature of every training experiment drawn at that size);
2. the test experiments are ranked by every scheduler, ``n_bootstrap`` times (random
   schedulers, random tie-breaks and exploration results are redrawn every time);
3. **AUC** (Equation 4, :func:`schedule_auc`) of each schedule against the realised outcomes
   of the test experiments, and **Q(S)** (Equation 5): the first ``k`` experiments of the
   schedule are "deployed" for ``n`` interactions each, their outcome drawn by resampling
   ``n`` sessions from the experiment's recorded run (``ExperimentDataset.sample_outcomes``,
   ``source="bootstrap"``), and Q counts the successes.

The metric of a split is its mean over the bootstrap repetitions; a table cell reports the mean
over splits with a 95% confidence interval (normal: ``1.96 sd / sqrt(n_splits)``, or a
percentile bootstrap over splits), and the schedulers of a row are compared by paired
two-sided Wilcoxon signed-rank tests over the splits (``scipy.stats.wilcoxon``).

Budgets follow the paper. Exploration of size ``f`` spends ``f * T`` interactions, divided
evenly among the test experiments, and is subtracted from the budget: AUC tables use
``T = n_test * n_auc`` (``n_auc`` = 10^5 interactions per test experiment for interleaving,
2 * 10^6 for A/B tests), so each test experiment is explored with ``f * n_auc`` sessions; Q
tables deploy the ``k`` first-ranked experiments with ``(T - exploration) / k`` interactions
each (interleaving: ``T`` = 3 * 10^5 and 4.5 * 10^5, ``k = 3``; A/B: ``T`` = 4 * 10^6, ``k =
2``); the figure varies ``T = m * 10^5`` with ``k = m``, ``m = 1..6`` (interleaving).
Schedulers that do not explore get the whole ``T``. The outcome draws are common to all
schedulers (common random numbers), and every random draw is seeded from ``(seed, split,
purpose)``, so results do not depend on the number of workers or on which other schedulers
run.

## Differences from the paper, on purpose
* Q(S) uses Equation 5 literally (an experiment counts if the interactions used up to and
  including it fit in ``T``); with equal deployment sizes ``T / k`` this is Algorithm 4's loop.
* The pairwise boosted trees are a RankNet-loss booster on scikit-learn regression trees
  (R's ``gbm`` pairwise mode is not available); the boosters' hyperparameters are fixed
  rather than cross-validated, to keep the default run to minutes (``lgbm`` can tune its
  number of trees with ``tune=True``).
"""

from __future__ import annotations

import csv
import math
import sys
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np

from labsched.envs.rendering import save_figure

__all__ = [
    "AGENT_ENV_KWARGS",
    "PAPER_TABLES",
    "PairTest",
    "ProtocolConfig",
    "ProtocolResult",
    "SummaryRow",
    "agent_markdown",
    "brute_force_best_order",
    "compare_agent_with_schedulers",
    "expected_q",
    "figure1_rows",
    "greedy_order",
    "paper_config",
    "plot_figure1",
    "queue_eval",
    "run_protocol",
    "schedule_auc",
    "schedule_q",
    "stratified_splits",
    "summarize",
    "tables_markdown",
    "train_queue_agent",
    "wilcoxon_p",
    "write_rows_csv",
]

# ----------------------------------------------------------------------------------------------
# Metrics of one schedule
# ----------------------------------------------------------------------------------------------


def schedule_auc(order: Sequence[int], statistic: Sequence[float], success: Sequence[bool]) -> float:
    """Equation 4: the share of evaluation pairs the schedule puts in the right order.

    The evaluation pairs are the unordered pairs of experiments of which at least one is
    successful and whose outcomes ``statistic`` differ; a pair is in the right order when the
    experiment with the larger outcome is scheduled first.

    Args:
        order: the schedule, a permutation of ``range(n)`` (best first).
        statistic: ``(n,)`` outcomes ``sigma(e)``.
        success: ``(n,)`` success labels.

    Returns:
        The AUC in [0, 1], or NaN when there is no evaluation pair.
    """
    order = np.asarray(order, dtype=np.int64)
    return float(_auc_rows(order[None, :], np.asarray(statistic, float), np.asarray(success, bool))[0])


def _auc_rows(orders: np.ndarray, statistic: np.ndarray, success: np.ndarray) -> np.ndarray:
    """:func:`schedule_auc` of every row of ``orders`` ``(R, n)``."""
    n = statistic.size
    if orders.shape[-1] != n or not np.array_equal(
        np.sort(orders, axis=1), np.broadcast_to(np.arange(n), orders.shape)
    ):
        raise ValueError(f"each order must be a permutation of range({n})")
    a, b = np.triu_indices(n, 1)
    keep = (success[a] | success[b]) & (statistic[a] != statistic[b])
    a, b = a[keep], b[keep]
    if a.size == 0:
        return np.full(orders.shape[0], np.nan)
    pos = np.empty_like(orders)
    np.put_along_axis(pos, orders, np.arange(n)[None, :].repeat(orders.shape[0], 0), axis=1)
    right = (pos[:, a] - pos[:, b]) * np.sign(statistic[a] - statistic[b])[None, :] < 0
    return right.mean(axis=1)


def schedule_q(
    order: Sequence[int], success: Sequence[bool], costs: Sequence[float] | float, budget: float
) -> int:
    """Equation 5: successful experiments among those whose cumulative cost fits ``budget``.

    Experiment ``order[i]`` counts when ``sum(costs[order[:i + 1]]) <= budget`` (so the
    schedule stops at the first experiment that does not fit).
    """
    order = np.asarray(order, dtype=np.int64)
    succ = np.asarray(success, dtype=bool)
    c = np.broadcast_to(np.asarray(costs, dtype=float), succ.shape)
    fits = np.cumsum(c[order]) <= budget
    return int(np.sum(succ[order] & fits))


def expected_q(
    order: Sequence[int], probability: Sequence[float], costs: Sequence[float] | float, budget: float
) -> float:
    """Equation 2: the expected number of successes of a schedule, ``sum P(S(i)) [fits]``."""
    order = np.asarray(order, dtype=np.int64)
    p = np.asarray(probability, dtype=float)
    c = np.broadcast_to(np.asarray(costs, dtype=float), p.shape)
    fits = np.cumsum(c[order]) <= budget
    return float(np.sum(p[order] * fits))


def greedy_order(probability: Sequence[float]) -> np.ndarray:
    """Fact 1's greedy schedule: decreasing probability of success (stable for ties)."""
    return np.argsort(-np.asarray(probability, dtype=float), kind="stable")


def brute_force_best_order(
    probability: Sequence[float], costs: Sequence[float] | float, budget: float
) -> tuple[np.ndarray, float]:
    """The schedule maximising :func:`expected_q` over all ``n!`` orders (small ``n`` only)."""
    p = np.asarray(probability, dtype=float)
    if p.size > 9:
        raise ValueError(f"brute force over {p.size}! orders is too slow; use at most 9 experiments")
    best, best_v = None, -math.inf
    for perm in permutations(range(p.size)):
        v = expected_q(perm, p, costs, budget)
        if v > best_v + 1e-12:
            best, best_v = np.array(perm), v
    return best, best_v


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------


def stratified_splits(
    labels: Sequence[bool], n_splits: int, test_size: float = 0.1, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` stratified random train/test splits (``StratifiedShuffleSplit``)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.asarray(labels, dtype=bool)
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    sss = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in sss.split(np.zeros((y.size, 1)), y)]


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

#: Which of the paper's tables each (experiment type, metric) reproduces.
PAPER_TABLES = {("interleaving", "auc"): 2, ("ab", "auc"): 3, ("interleaving", "q"): 4, ("ab", "q"): 5}

_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "interleaving": dict(
        auc_interactions=100_000,
        q_settings=((300_000, 3), (450_000, 3)),
        figure_settings=tuple((m * 100_000, m) for m in range(1, 7)),
        baselines=("random", "dcg", "err", "cm", "upper_bound"),
    ),
    "ab": dict(
        auc_interactions=2_000_000,
        q_settings=((4_000_000, 2),),
        figure_settings=(),
        baselines=("random", "dcg", "err", "upper_bound"),
    ),
}

DEFAULT_FIGURE_ENTRIES = (
    ("random", 0.0),
    ("err", 0.0),
    ("cm", 0.0),
    ("explore", 0.10),
    ("pgbm", 0.0),
    ("pgbm", 0.10),
    ("upper_bound", 0.0),
)


@dataclass(frozen=True)
class ProtocolConfig:
    """What :func:`run_protocol` evaluates (defaults: the paper's setting for the type).

    Attributes:
        experiment_type: ``"interleaving"`` or ``"ab"``.
        n_splits: train/test splits (the paper: 100).
        n_bootstrap: bootstrap repetitions per split.
        test_size: test share of each split (the paper: 10%).
        explore_fractions: exploration sizes as fractions of ``T`` (besides 0).
        auc_interactions: interactions per test experiment defining the AUC tables' ``T``.
        q_settings: ``(T, k)`` pairs of the Q tables: budget and experiments deployed.
        figure_settings: ``(T, k)`` pairs of the figure (Q against T).
        baselines: non-learned schedulers of the "no exploration" row (incl. ``upper_bound``).
        learned: learned schedulers (rows for every exploration size).
        figure_entries: ``(scheduler, fraction)`` lines of the figure.
        scheduler_options: per-scheduler constructor options, e.g. ``{"lr": {"cv": 5}}``.
        seed: seed of the splits and of every random draw.
        dataset_seed: seed of the generated dataset (``cached_dataset(spec, dataset_seed)``).
        spec: the world (default ``QueueWorldSpec(experiment_type=...)``).
        outcome_source: ``"bootstrap"`` (the paper's resampling of recorded runs) or ``"model"``
            (fresh sessions from the generative model).
        ci: ``"normal"`` or ``"bootstrap"`` confidence intervals.
    """

    experiment_type: str = "interleaving"
    n_splits: int = 50
    n_bootstrap: int = 200
    test_size: float = 0.1
    explore_fractions: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10, 0.20)
    auc_interactions: int | None = None
    q_settings: tuple[tuple[int, int], ...] | None = None
    figure_settings: tuple[tuple[int, int], ...] | None = None
    baselines: tuple[str, ...] | None = None
    learned: tuple[str, ...] = ("lr", "svm", "lgbm", "pgbm")
    figure_entries: tuple[tuple[str, float], ...] = DEFAULT_FIGURE_ENTRIES
    scheduler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    dataset_seed: int = 0
    spec: Any = None
    outcome_source: str = "bootstrap"
    ci: str = "normal"

    def __post_init__(self) -> None:
        if self.experiment_type not in _TYPE_DEFAULTS:
            raise ValueError(f"experiment_type must be 'interleaving' or 'ab', got {self.experiment_type!r}")
        for name, value in _TYPE_DEFAULTS[self.experiment_type].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.spec is None:
            from labsched.envs.search_world import QueueWorldSpec

            object.__setattr__(self, "spec", QueueWorldSpec(experiment_type=self.experiment_type))
        if self.spec.experiment_type != self.experiment_type:
            raise ValueError("spec.experiment_type must equal experiment_type")
        if self.n_splits < 1 or self.n_bootstrap < 1:
            raise ValueError("n_splits and n_bootstrap must be >= 1")
        if not 0.0 < self.test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1), got {self.test_size}")
        if any(not 0.0 < f < 1.0 for f in self.explore_fractions):
            raise ValueError(f"explore_fractions must be in (0, 1), got {self.explore_fractions}")
        if self.outcome_source not in ("bootstrap", "model"):
            raise ValueError(f"outcome_source must be 'bootstrap' or 'model', got {self.outcome_source!r}")
        if self.ci not in ("normal", "bootstrap"):
            raise ValueError(f"ci must be 'normal' or 'bootstrap', got {self.ci!r}")
        for t, k in (*self.q_settings, *self.figure_settings):
            if k < 1 or t < k:
                raise ValueError(f"(T, k) settings need k >= 1 and T >= k, got {(t, k)}")
        from labsched.baselines.queue_schedulers import make_queue_scheduler

        for name in (*self.baselines, *self.learned, *(n for n, _ in self.figure_entries)):
            make_queue_scheduler(name)  # validates the names


def paper_config(
    experiment_type: str = "interleaving", *, quick: bool = False, **overrides: Any
) -> ProtocolConfig:
    """The paper's setting for ``experiment_type``; ``quick`` is a seconds-long smoke budget
    (4 splits, 30 repetitions, exploration 0.05 and 0.2 only, two figure points)."""
    if quick:
        base: dict[str, Any] = dict(n_splits=4, n_bootstrap=30, explore_fractions=(0.05, 0.20))
        if experiment_type == "interleaving":
            base["q_settings"] = ((300_000, 3),)
            base["figure_settings"] = ((100_000, 1), (300_000, 3))
        base.update(overrides)
        overrides = base
    return ProtocolConfig(experiment_type=experiment_type, **overrides)


# ----------------------------------------------------------------------------------------------
# One split
# ----------------------------------------------------------------------------------------------

# (metric, T, k, fraction, scheduler); AUC cells have k = 0.
CellKey = tuple[str, int, int, float, str]


def _rng(seed: int, split: int, purpose: str, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, split, zlib.crc32(purpose.encode()), *more]))


def _scheduler_seed(seed: int, split: int, name: str) -> int:
    return int(_rng(seed, split, "scheduler:" + name).integers(2**31 - 1))


def _scenarios(cfg: ProtocolConfig) -> dict[tuple[str, int, int, float], list[str]]:
    """Every (metric, T, k, fraction) evaluated, with its schedulers (T of AUC set later)."""
    out: dict[tuple[str, int, int, float], list[str]] = {}

    def add(key: tuple[str, int, int, float], names: Iterable[str]) -> None:
        lst = out.setdefault(key, [])
        lst.extend(n for n in names if n not in lst)

    fracs = (0.0, *cfg.explore_fractions)
    for f in fracs:
        names = (*cfg.baselines, *cfg.learned) if f == 0.0 else ("explore", *cfg.learned)
        add(("auc", -1, 0, f), names)
        for t, k in cfg.q_settings:
            add(("q", int(t), int(k), f), names)
    for t, k in cfg.figure_settings:
        for name, f in cfg.figure_entries:
            if name == "cm" and cfg.experiment_type != "interleaving":
                continue
            add(("q", int(t), int(k), float(f)), [name])
    return out


def _evaluate_split(
    cfg: ProtocolConfig, dataset: Any, split: int, train_idx: np.ndarray, test_idx: np.ndarray
) -> dict[CellKey, float]:
    """Every cell's metric on one split (mean over the bootstrap repetitions)."""
    from labsched.baselines.queue_schedulers import QueueView, make_queue_scheduler, rank_rows

    train, test = dataset.subset(train_idx), dataset.subset(test_idx)
    n_test, reps, seed = len(test), cfg.n_bootstrap, cfg.seed
    source = cfg.outcome_source
    sigma, success = np.asarray(test.statistic, float), np.asarray(test.success, bool)
    tiled = np.tile(np.arange(n_test), reps)
    fitted: dict[tuple[str, int], Any] = {}
    explore_cache: dict[int, np.ndarray] = {}
    deploy_cache: dict[int, np.ndarray] = {}

    def scheduler(name: str, e: int) -> Any:
        key = (name, e)
        if key not in fitted:
            opts = {"seed": _scheduler_seed(seed, split, name), **cfg.scheduler_options.get(name, {})}
            s = make_queue_scheduler(name, **opts)
            if s.needs_fit:
                expl = None
                if e > 0:
                    expl = train.exploration_features(e, _rng(seed, split, "explore-train", e), source=source)
                s.fit(train, expl)
            else:
                s.fit(train)
            fitted[key] = s
        return fitted[key]

    def exploration(e: int) -> np.ndarray:
        if e not in explore_cache:
            x = test.exploration_features(e, _rng(seed, split, "explore-test", e), tiled, source=source)
            explore_cache[e] = np.asarray(x, float).reshape(reps, n_test)
        return explore_cache[e]

    def deployed(n: int) -> np.ndarray:
        if n not in deploy_cache:
            out = test.sample_outcomes(n, _rng(seed, split, "deploy", n), tiled, source=source)
            deploy_cache[n] = np.asarray(out.success, bool).reshape(reps, n_test)
        return deploy_cache[n]

    results: dict[CellKey, float] = {}
    for (metric, t, k, f), names in _scenarios(cfg).items():
        if metric == "auc":
            t = n_test * int(cfg.auc_interactions)
        e = 0 if f == 0.0 else max(1, int(f * t / n_test))
        for name in names:
            s = scheduler(name, e)
            ties = _rng(seed, split, f"order:{name}:{metric}", t, k, int(round(f * 1e6)))
            if f > 0.0 and (s.uses_exploration or name == "explore"):
                x = exploration(e)
                view = QueueView(
                    features=np.tile(test.features, (reps, 1)),
                    exploration=x.reshape(-1),
                    feature_names=tuple(test.feature_names),
                )
                scores = s.priority(view).reshape(reps, n_test)
                spent = e * n_test
            else:
                if name == "random":
                    scores = ties.random((reps, n_test))
                else:
                    view = QueueView.from_dataset(test, with_truth=s.reads_ground_truth)
                    if s.reads_ground_truth:
                        # The paper's UpperBound sorts by the recorded outcome sigma(e).
                        view = replace(view, true_success=None)
                    scores = np.broadcast_to(s.priority(view), (reps, n_test))
                spent = 0
            orders = rank_rows(scores, ties)
            if metric == "auc":
                value = float(np.nanmean(_auc_rows(orders, sigma, success)))
            else:
                n_dep = (t - spent) // k
                if n_dep < 1:
                    value = 0.0
                else:
                    succ = deployed(int(n_dep))
                    value = float(np.take_along_axis(succ, orders[:, :k], axis=1).sum(axis=1).mean())
            results[(metric, int(t), int(k), float(f), name)] = value
    return results


def _split_task(cfg: ProtocolConfig, dataset: Any, split: int, tr: np.ndarray, te: np.ndarray):
    from threadpoolctl import threadpool_limits

    if dataset is None:
        from labsched.envs.queue_features import cached_dataset

        dataset = cached_dataset(cfg.spec, cfg.dataset_seed)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        t0 = time.perf_counter()
        res = _evaluate_split(cfg, dataset, split, tr, te)
    return split, res, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# The whole protocol
# ----------------------------------------------------------------------------------------------


@dataclass
class ProtocolResult:
    """Per-split values of every cell.

    Attributes:
        config: the configuration.
        cells: cell keys ``(metric, T, k, fraction, scheduler)``.
        values: ``(len(cells), n_splits)`` per-split metric values.
        n_test: test experiments per split.
        test_successes: ``(n_splits,)`` successful experiments in each test set.
        seconds: wall time.
    """

    config: ProtocolConfig
    cells: list[CellKey]
    values: np.ndarray
    n_test: int
    test_successes: np.ndarray
    seconds: float

    def value(self, metric: str, t: int, k: int, fraction: float, scheduler: str) -> np.ndarray:
        """Per-split values of one cell."""
        return self.values[self.cells.index((metric, int(t), int(k), float(fraction), scheduler))]


def run_protocol(
    config: ProtocolConfig | None = None,
    *,
    dataset: Any = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> ProtocolResult:
    """Run Algorithm 4 for every scheduler, exploration size and budget of ``config``.

    Args:
        config: what to run (default :func:`paper_config` for interleaving).
        dataset: an ``ExperimentDataset`` (default ``cached_dataset(config.spec,
            config.dataset_seed)``, regenerated in each worker).
        n_jobs: joblib worker processes (splits run in parallel; results do not depend on it).
        progress: one line per finished split on stderr.
    """
    cfg = config or paper_config()
    from labsched.envs.queue_features import cached_dataset

    ds = dataset if dataset is not None else cached_dataset(cfg.spec, cfg.dataset_seed)
    if ds.experiment_type != cfg.experiment_type:
        raise ValueError(f"dataset is {ds.experiment_type!r}, config is {cfg.experiment_type!r}")
    splits = stratified_splits(ds.success, cfg.n_splits, cfg.test_size, cfg.seed)
    t0 = time.perf_counter()
    by_split: dict[int, dict[CellKey, float]] = {}

    def report(done: int, split: int, secs: float) -> None:
        if progress:
            el = time.perf_counter() - t0
            left = el / done * (cfg.n_splits - done)
            print(
                f"[{cfg.experiment_type}] split {done:>3}/{cfg.n_splits} done ({secs:5.1f} s; "
                f"{el:6.1f} s elapsed, about {left:4.0f} s left)",
                file=sys.stderr,
                flush=True,
            )

    ship = dataset  # None: each worker regenerates the (cached) default dataset
    if n_jobs == 1:
        for i, (tr, te) in enumerate(splits):
            _, res, secs = _split_task(cfg, ds, i, tr, te)
            by_split[i] = res
            report(i + 1, i, secs)
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_split_task)(cfg, ship, i, tr, te) for i, (tr, te) in enumerate(splits)
        )
        for done, (i, res, secs) in enumerate(gen, start=1):
            by_split[i] = res
            report(done, i, secs)
    cells = list(by_split[0])
    values = np.array([[by_split[i][c] for i in range(cfg.n_splits)] for c in cells])
    succ = np.array([int(np.sum(np.asarray(ds.success)[te])) for _, te in splits])
    return ProtocolResult(cfg, cells, values, len(splits[0][1]), succ, time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# Summaries, tests, tables
# ----------------------------------------------------------------------------------------------


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


def _label(name: str) -> str:
    from labsched.baselines.queue_schedulers import QUEUE_SCHEDULERS

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
    from scipy.stats import wilcoxon

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
    from labsched.baselines.queue_schedulers import QUEUE_SCHEDULERS

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
                    label=_label(name),
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


def _fmt_t(t: int) -> str:
    exp = int(math.floor(math.log10(t))) if t > 0 else 0
    mant = t / 10**exp
    return f"{mant:g}·10^{exp}"


def _fraction_label(f: float) -> str:
    return "0" if f == 0.0 else f"{f:.2f}·T"


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
    order = ["random", "dcg", "err", "cm", "explore", "lr", "svm", "lgbm", "pgbm", "upper_bound", "oracle"]
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
        lines = [f"**{title}**", "", "| #sample | " + " | ".join(_label(n) for n in names) + " |"]
        lines.append("|---|" + "---|" * len(names))
        for f in fracs:
            parts = []
            for n in names:
                r = cell.get((n, f))
                if r is None:
                    parts.append("–")
                    continue
                txt = f"{r.mean:.2f}±{(r.ci_high - r.ci_low) / 2:.2f}"
                parts.append(f"**{txt}**" if r.bold else txt)
            lines.append(f"| {_fraction_label(f)} | " + " | ".join(parts) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_rows_csv(rows: Sequence[Any], path: str | Path) -> Path:
    """Write dataclass rows (``SummaryRow`` or ``PairTest``) to a CSV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    with path.open("w", newline="") as fh:
        if not rows:
            return path
        w = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
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
    from labsched.envs.rendering import _pyplot

    plt = _pyplot()
    lines: dict[tuple[str, float], list[SummaryRow]] = {}
    for r in rows:
        lines.setdefault((r.scheduler, r.fraction), []).append(r)
    rank = {
        n: i for i, n in enumerate(("random", "dcg", "err", "cm", "explore", "lr", "svm", "lgbm", "pgbm"))
    }
    lines = dict(sorted(lines.items(), key=lambda kv: (rank.get(kv[0][0], 50), kv[0][1])))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = ["o-", "s-", "^-", "v-", "D-", "x--", "*-", "P-", "h-"]
    for i, ((name, f), rs) in enumerate(lines.items()):
        rs = sorted(rs, key=lambda r: r.budget)
        x = [r.budget for r in rs]
        y = [r.mean for r in rs]
        err = [[r.mean - r.ci_low for r in rs], [r.ci_high - r.mean for r in rs]]
        lab = _label(name) + (f" {f:.2f}" if f > 0 or name in ("pgbm", "lgbm", "lr", "svm") else "")
        ax.errorbar(x, y, yerr=err, fmt=styles[i % len(styles)], capsize=2, label=lab, ms=4)
    ax.set_xlabel("interactions available, T")
    ax.set_ylabel("Q(S): successful experiments")
    ax.set_title(title or "Q(S) against T (synthetic interleaving data)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def queue_eval(
    out: str | Path = "results/queue_eval",
    experiment_types: Sequence[str] = ("interleaving", "ab"),
    *,
    quick: bool = False,
    n_splits: int | None = None,
    n_bootstrap: int | None = None,
    seed: int = 0,
    dataset_seed: int = 0,
    ci: str = "normal",
    n_jobs: int = 2,
    plot: bool = True,
    progress: bool = True,
    agent_minutes: float = 0.0,
    agent_episodes: int = 500,
) -> dict[str, Any]:
    """Run the protocol for each experiment type and write the tables, CSVs and figure.

    Writes ``tables.md`` (all tables), ``results.csv`` (one row per cell), ``wilcoxon.csv``
    (pairwise tests), ``figure1.csv`` and ``figure1.png`` (interleaving) into ``out``. With
    ``agent_minutes > 0`` also trains MaskablePPO (:func:`train_queue_agent`, interleaving,
    split 0) and compares it with the greedy schedulers on ``agent_episodes`` shared test
    episodes (:func:`compare_agent_with_schedulers`): ``agent.md`` and ``agent.csv``.

    Returns:
        ``{"markdown", "rows", "tests", "results", "files", "seconds"}`` (and ``"agent"``:
        the comparison rows, when an agent was trained).
    """
    out = Path(out)
    overrides: dict[str, Any] = dict(seed=seed, dataset_seed=dataset_seed, ci=ci)
    if n_splits is not None:
        overrides["n_splits"] = n_splits
    if n_bootstrap is not None:
        overrides["n_bootstrap"] = n_bootstrap
    t0 = time.perf_counter()
    all_rows: list[SummaryRow] = []
    all_tests: list[PairTest] = []
    results: dict[str, ProtocolResult] = {}
    md: list[str] = []
    fig_rows: list[SummaryRow] = []
    files: list[Path] = []
    for et in experiment_types:
        cfg = paper_config(et, quick=quick, **overrides)
        res = run_protocol(cfg, n_jobs=n_jobs, progress=progress)
        rows, tests = summarize(res)
        results[et] = res
        all_rows += rows
        all_tests += tests
        md.append(tables_markdown(rows, cfg))
        if cfg.figure_settings:
            fig_rows += figure1_rows(rows, cfg)
    header = (
        "Synthetic data (labsched's generative model), mean ± 95% CI half-width over splits; "
        "bold: best of the row, better than every other scheduler of the row by a paired "
        "Wilcoxon test (p < 0.05), UB excluded.\n\n"
    )
    markdown = header + "\n".join(md)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(markdown)
    files += [out / "tables.md", write_rows_csv(all_rows, out / "results.csv")]
    files.append(write_rows_csv(all_tests, out / "wilcoxon.csv"))
    if fig_rows:
        files.append(write_rows_csv(fig_rows, out / "figure1.csv"))
        if plot:
            try:
                files.append(plot_figure1(fig_rows, out / "figure1.png"))
            except ImportError as exc:  # pragma: no cover - matplotlib missing
                print(f"(no plot: {exc})", file=sys.stderr)
    agent_rows = None
    if agent_minutes > 0:
        agent = train_queue_agent(
            seed=seed, dataset_seed=dataset_seed, minutes=agent_minutes, out=out, progress=progress
        )
        agent_rows = compare_agent_with_schedulers(agent, episodes=agent_episodes)
        agent_md = agent_markdown(agent_rows, agent)
        markdown += "\n**RL agent versus greedy schedulers (same test episodes)**\n\n" + agent_md
        (out / "agent.md").write_text(agent_md)
        with (out / "agent.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(agent_rows[0]))
            w.writeheader()
            w.writerows(agent_rows)
        files += [out / "agent.md", out / "agent.csv"]
        if agent["model_path"] is not None:
            files.append(agent["model_path"])
    out_dict = dict(
        markdown=markdown,
        rows=all_rows,
        tests=all_tests,
        results=results,
        files=files,
        seconds=time.perf_counter() - t0,
    )
    if agent_rows is not None:
        out_dict["agent"] = agent_rows
    return out_dict


# ----------------------------------------------------------------------------------------------
# An RL agent on the environment, compared with the greedy schedulers on the same episodes
# ----------------------------------------------------------------------------------------------


def _split_env(dataset: Any, indices: np.ndarray, **env_kwargs: Any) -> Any:
    """An ``ExperimentQueueEnv`` on ``dataset`` whose episodes use only ``indices``.

    Each reset queues a random permutation of ``indices`` (drawn from the reset seed), through
    ``reset(options={"order": ...})``; feature normalisation uses the whole pool's features
    (pre-experiment features only, no outcome), so train and test episodes share one scale.
    """
    import gymnasium as gym

    from labsched.envs.experiment_queue import ExperimentQueueEnv

    class _SplitEpisodes(gym.Wrapper):
        def __init__(self, env: Any, idx: np.ndarray) -> None:
            super().__init__(env)
            self._idx = np.asarray(idx, dtype=np.int64)
            self._order_rng = np.random.default_rng()

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            if seed is not None:
                self._order_rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
            opts = dict(options or {})
            opts.setdefault("order", self._order_rng.permutation(self._idx))
            return self.env.reset(seed=seed, options=opts)

        def action_masks(self) -> np.ndarray:
            return self.env.unwrapped.action_masks()

    return _SplitEpisodes(ExperimentQueueEnv(dataset=dataset, **env_kwargs), indices)


#: The paper's Table 4 protocol as environment settings (T = 3 * 10^5, 10^5 per deployment).
AGENT_ENV_KWARGS = dict(deployment_interactions=100_000, budget=300_000, max_queue=8, outcome="bootstrap")


def train_queue_agent(
    *,
    experiment_type: str = "interleaving",
    split: int = 0,
    seed: int = 0,
    dataset_seed: int = 0,
    minutes: float = 3.0,
    total_timesteps: int = 300_000,
    n_envs: int = 4,
    env_kwargs: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train sb3-contrib's MaskablePPO on the queue environment's training experiments.

    The environment is ``ExperimentQueueEnv`` with the flat observation and
    :data:`AGENT_ENV_KWARGS` (the paper's Table 4 protocol), its episodes restricted to the
    training part of split ``split`` of :func:`stratified_splits` (same splits as the
    protocol, ``seed``); training stops at ``total_timesteps`` or after ``minutes`` of wall
    time, on one torch thread.

    Returns:
        ``{"model", "train_idx", "test_idx", "timesteps", "seconds", "dataset",
        "env_kwargs", "model_path"}``.
    """
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    from labsched.envs.queue_features import cached_dataset
    from labsched.envs.search_world import QueueWorldSpec

    torch.set_num_threads(1)
    ds = cached_dataset(QueueWorldSpec(experiment_type=experiment_type), dataset_seed)
    tr, te = stratified_splits(ds.success, split + 1, 0.1, seed)[split]
    kw = {**AGENT_ENV_KWARGS, **(env_kwargs or {}), "flatten": True}
    venv = DummyVecEnv([lambda: _split_env(ds, tr, **kw) for _ in range(n_envs)])
    venv.seed(seed)
    params: dict[str, Any] = dict(
        n_steps=256,
        batch_size=256,
        n_epochs=10,
        gamma=1.0,
        gae_lambda=0.95,
        learning_rate=3e-4,
        ent_coef=0.01,
        policy_kwargs=dict(net_arch=[128, 128]),
    )
    params.update(hyperparams or {})
    model = MaskablePPO("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", **params)

    class _Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()
            self.last = self.t0

        def _on_step(self) -> bool:
            now = time.perf_counter()
            if progress and now - self.last > 20:
                self.last = now
                print(
                    f"[agent] {self.num_timesteps} steps, {now - self.t0:.0f} s", file=sys.stderr, flush=True
                )
            return now - self.t0 < minutes * 60.0

    t0 = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=_Clock())
    secs = time.perf_counter() - t0
    model_path = None
    if out is not None:
        model_path = Path(out) / f"maskable_ppo_{experiment_type}_split{split}.zip"
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
    return dict(
        model=model,
        train_idx=tr,
        test_idx=te,
        timesteps=int(model.num_timesteps),
        seconds=secs,
        dataset=ds,
        env_kwargs=kw,
        model_path=model_path,
    )


def _run_episodes(policy: Any, env: Any, seeds: Sequence[int], *, masked_model: bool = False) -> np.ndarray:
    """Q(S) (episode return) of ``policy`` on the episodes ``seeds`` of ``env``."""
    out = np.empty(len(seeds))
    for i, s in enumerate(seeds):
        obs, _ = env.reset(seed=int(s))
        done, total = False, 0.0
        while not done:
            if masked_model:
                a, _ = policy.predict(obs, deterministic=True, action_masks=env.unwrapped.action_masks())
            else:
                a, _ = policy.predict(obs)
            obs, r, done, _, _ = env.step(int(a))
            total += r
        out[i] = total
    return out


def compare_agent_with_schedulers(
    agent: Mapping[str, Any],
    *,
    schedulers: Sequence[str] = ("random", "err", "cm", "lr", "lgbm", "pgbm", "upper_bound"),
    episodes: int = 500,
    seed: int = 10_000,
) -> list[dict[str, Any]]:
    """The agent of :func:`train_queue_agent` against greedy schedulers on the same episodes.

    Every policy plays the same ``episodes`` test episodes (same seeds: the same queued
    experiments in the same slots and the same outcomes) on the split's **test** experiments,
    and the same number of training-experiment episodes (to show over-fitting). The learned
    greedy schedulers are fitted on the split's training experiments. Returns one dict per
    policy: ``{"policy", "test_mean", "test_ci", "train_mean", "train_ci", "p_vs_agent"}``.
    """
    from labsched.baselines.queue_schedulers import make_queue_scheduler

    ds, tr, te, kw = agent["dataset"], agent["train_idx"], agent["test_idx"], agent["env_kwargs"]
    seeds = [seed + i for i in range(episodes)]
    env_test, env_train = _split_env(ds, te, **kw), _split_env(ds, tr, **kw)
    train_ds = ds.subset(tr)
    res: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    res["maskable_ppo"] = (
        _run_episodes(agent["model"], env_test, seeds, masked_model=True),
        _run_episodes(agent["model"], env_train, seeds, masked_model=True),
    )
    for name in schedulers:
        if name == "cm" and ds.experiment_type != "interleaving":
            continue
        s = make_queue_scheduler(name, seed=seed).fit(train_ds)
        test_q = _run_episodes(s.attach(env_test), env_test, seeds)
        train_q = _run_episodes(s.attach(env_train), env_train, seeds)
        res[name] = (test_q, train_q)
    agent_test = res["maskable_ppo"][0]
    rows = []
    for name, (test_q, train_q) in res.items():
        h_te = 1.96 * test_q.std(ddof=1) / math.sqrt(test_q.size)
        h_tr = 1.96 * train_q.std(ddof=1) / math.sqrt(train_q.size)
        rows.append(
            dict(
                policy=name,
                test_mean=float(test_q.mean()),
                test_ci=float(h_te),
                train_mean=float(train_q.mean()),
                train_ci=float(h_tr),
                p_vs_agent=math.nan if name == "maskable_ppo" else wilcoxon_p(test_q, agent_test),
            )
        )
    return rows


def agent_markdown(rows: Sequence[Mapping[str, Any]], agent: Mapping[str, Any]) -> str:
    """A Markdown table of :func:`compare_agent_with_schedulers`."""
    lines = [
        f"MaskablePPO, {agent['timesteps']} steps in {agent['seconds']:.0f} s; "
        f"{len(agent['train_idx'])} training / {len(agent['test_idx'])} test experiments; "
        "T = 3·10^5, 10^5 per deployment, 8 queue slots",
        "",
        "| policy | Q(S) test episodes | Q(S) training episodes | Wilcoxon p vs agent (test) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        p = "" if math.isnan(r["p_vs_agent"]) else f"{r['p_vs_agent']:.2g}"
        lines.append(
            f"| {r['policy']} | {r['test_mean']:.3f} ± {r['test_ci']:.3f} | "
            f"{r['train_mean']:.3f} ± {r['train_ci']:.3f} | {p} |"
        )
    return "\n".join(lines) + "\n"
