"""Running the bootstrap protocol (Algorithm 4 of Kharitonov et al.) over stratified splits:
every scheduler, exploration size and budget of a :class:`ProtocolConfig`, one split per task
(joblib processes), each random draw seeded from ``(seed, split, purpose)``."""

from __future__ import annotations

import sys
import time
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from labsched.baselines.queue.schedulers import QueueScheduler, QueueView, make_queue_scheduler, rank_rows
from labsched.envs._lib.threads import single_threaded
from labsched.envs.queue.dataset import ExperimentDataset
from labsched.envs.queue.generation import cached_dataset
from labsched.envs.queue.splits import stratified_splits
from labsched.evaluation.queue.config import ProtocolConfig, paper_config
from labsched.evaluation.queue.metrics import auc_rows

__all__ = ["CellKey", "ProtocolResult", "run_protocol"]

# (metric, T, k, fraction, scheduler); AUC cells have k = 0.
CellKey = tuple[str, int, int, float, str]
Scenario = tuple[str, int, int, float]


def _rng(seed: int, split: int, purpose: str, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, split, zlib.crc32(purpose.encode()), *more]))


def _scheduler_seed(seed: int, split: int, name: str) -> int:
    return int(_rng(seed, split, "scheduler:" + name).integers(2**31 - 1))


def _scenarios(cfg: ProtocolConfig) -> dict[Scenario, list[str]]:
    """Every (metric, T, k, fraction) evaluated, with its schedulers (T of AUC set later)."""
    out: dict[Scenario, list[str]] = {}

    def add(key: Scenario, names: Iterable[str]) -> None:
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


class _SplitEvaluation:
    """Every cell's metric on one split (mean over the bootstrap repetitions), with the fitted
    schedulers, exploration results and deployment outcomes cached across cells."""

    def __init__(
        self, cfg: ProtocolConfig, dataset: ExperimentDataset, split: int, train_idx: Any, test_idx: Any
    ) -> None:
        self.cfg, self.split = cfg, split
        self.train, self.test = dataset.subset(train_idx), dataset.subset(test_idx)
        self.n_test, self.reps = len(self.test), cfg.n_bootstrap
        self.sigma = np.asarray(self.test.statistic, float)
        self.success = np.asarray(self.test.success, bool)
        self.tiled = np.tile(np.arange(self.n_test), self.reps)
        self._fitted: dict[tuple[str, int], QueueScheduler] = {}
        self._explored: dict[int, np.ndarray] = {}
        self._deployed: dict[int, np.ndarray] = {}

    def _rng(self, purpose: str, *more: int) -> np.random.Generator:
        return _rng(self.cfg.seed, self.split, purpose, *more)

    def scheduler(self, name: str, e: int) -> QueueScheduler:
        """``name`` fitted on the training experiments (with exploration of size ``e`` > 0)."""
        key = (name, e)
        if key not in self._fitted:
            opts = {"seed": _scheduler_seed(self.cfg.seed, self.split, name)}
            opts.update(self.cfg.scheduler_options.get(name, {}))
            if e > 0 and not self.cfg.retune_per_exploration:
                # hyperparameters tuned on this split's training experiments without
                # exploration serve every exploration size (one cross-validation per split)
                opts.update(getattr(self.scheduler(name, 0), "tuned_params", dict)())
            s = make_queue_scheduler(name, **opts)
            if s.needs_fit:
                expl = None
                if e > 0 and not self.cfg.retune_per_exploration:
                    rng = self._rng("explore-train", e)
                    expl = self.train.exploration_features(e, rng, source=self.cfg.outcome_source)
                s.fit(self.train, expl)
            else:
                s.fit(self.train)
            self._fitted[key] = s
        return self._fitted[key]

    def exploration(self, e: int) -> np.ndarray:
        """``(reps, n_test)`` exploration results of size ``e``."""
        if e not in self._explored:
            rng = self._rng("explore-test", e)
            x = self.test.exploration_features(e, rng, self.tiled, source=self.cfg.outcome_source)
            self._explored[e] = np.asarray(x, float).reshape(self.reps, self.n_test)
        return self._explored[e]

    def deployed(self, n: int) -> np.ndarray:
        """``(reps, n_test)`` success of deployments of ``n`` interactions."""
        if n not in self._deployed:
            rng = self._rng("deploy", n)
            out = self.test.sample_outcomes(n, rng, self.tiled, source=self.cfg.outcome_source)
            self._deployed[n] = np.asarray(out.success, bool).reshape(self.reps, self.n_test)
        return self._deployed[n]

    def _scores(self, name: str, s: QueueScheduler, e: int, ties: np.random.Generator) -> np.ndarray:
        """``(reps, n_test)`` priorities of the test experiments; exploring schedulers see the
        exploration results of size ``e`` (0: no exploration)."""
        if e > 0 and (s.uses_exploration or name == "explore"):
            view = QueueView(
                features=np.tile(self.test.features, (self.reps, 1)),
                exploration=self.exploration(e).reshape(-1),
                feature_names=tuple(self.test.feature_names),
            )
            return s.priority(view).reshape(self.reps, self.n_test)
        if name == "random":
            return ties.random((self.reps, self.n_test))
        view = QueueView.from_dataset(self.test, with_truth=s.reads_ground_truth)
        if s.reads_ground_truth:
            # The paper's UpperBound sorts by the recorded outcome sigma(e); every deployment of
            # the protocol has the same size, so no reference divides by a cost.
            view = replace(view, true_success=None, costs=None)
        return np.broadcast_to(s.priority(view), (self.reps, self.n_test))

    def cell(self, metric: str, t: int, k: int, f: float, name: str) -> float:
        """One cell's value: mean AUC, or mean Q(S) of the ``k`` first-ranked experiments."""
        e = 0 if f == 0.0 else max(1, int(f * t / self.n_test))
        s = self.scheduler(name, e)
        ties = self._rng(f"order:{name}:{metric}", t, k, int(round(f * 1e6)))
        explores = e > 0 and (s.uses_exploration or name == "explore")
        orders = rank_rows(self._scores(name, s, e, ties), ties)
        if metric == "auc":
            return float(np.nanmean(auc_rows(orders, self.sigma, self.success)))
        spent = e * self.n_test if explores else 0
        n_dep = (t - spent) // k
        if n_dep < 1:
            return 0.0
        succ = self.deployed(int(n_dep))
        return float(np.take_along_axis(succ, orders[:, :k], axis=1).sum(axis=1).mean())

    def run(self) -> dict[CellKey, float]:
        """Every cell of the configuration."""
        results: dict[CellKey, float] = {}
        for (metric, t, k, f), names in _scenarios(self.cfg).items():
            if metric == "auc":
                t = self.n_test * int(self.cfg.auc_interactions)
            for name in names:
                results[(metric, int(t), int(k), float(f), name)] = self.cell(metric, t, k, f, name)
        return results


def _split_task(
    cfg: ProtocolConfig, dataset: ExperimentDataset | None, split: int, tr: np.ndarray, te: np.ndarray
) -> tuple[int, dict[CellKey, float], float]:
    if dataset is None:
        dataset = cached_dataset(cfg.spec, cfg.dataset_seed)
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        t0 = time.perf_counter()
        res = _SplitEvaluation(cfg, dataset, split, tr, te).run()
    return split, res, time.perf_counter() - t0


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


def _progress_line(cfg: ProtocolConfig, done: int, secs: float, elapsed: float) -> None:
    left = elapsed / done * (cfg.n_splits - done)
    print(
        f"[{cfg.experiment_type}] split {done:>3}/{cfg.n_splits} done ({secs:5.1f} s; "
        f"{elapsed:6.1f} s elapsed, about {left:4.0f} s left)",
        file=sys.stderr,
        flush=True,
    )


def run_protocol(
    config: ProtocolConfig | None = None,
    *,
    dataset: ExperimentDataset | None = None,
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
    ds = dataset if dataset is not None else cached_dataset(cfg.spec, cfg.dataset_seed)
    if ds.experiment_type != cfg.experiment_type:
        raise ValueError(f"dataset is {ds.experiment_type!r}, config is {cfg.experiment_type!r}")
    splits = stratified_splits(ds.success, cfg.n_splits, cfg.test_size, cfg.seed)
    t0 = time.perf_counter()
    by_split: dict[int, dict[CellKey, float]] = {}
    if n_jobs == 1:
        finished = (_split_task(cfg, ds, i, tr, te) for i, (tr, te) in enumerate(splits))
    else:
        # dataset None: each worker regenerates the (cached) default dataset
        finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_split_task)(cfg, dataset, i, tr, te) for i, (tr, te) in enumerate(splits)
        )
    for done, (i, res, secs) in enumerate(finished, start=1):
        by_split[i] = res
        if progress:
            _progress_line(cfg, done, secs, time.perf_counter() - t0)
    cells = list(by_split[0])
    values = np.array([[by_split[i][c] for i in range(cfg.n_splits)] for c in cells])
    succ = np.array([int(np.sum(np.asarray(ds.success)[te])) for _, te in splits])
    return ProtocolResult(cfg, cells, values, len(splits[0][1]), succ, time.perf_counter() - t0)
