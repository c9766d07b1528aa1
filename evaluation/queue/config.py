"""What the experiment-queue protocol evaluates: :class:`ProtocolConfig` and the paper's
settings per experiment type (:func:`paper_config`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labsched.baselines.queue.schedulers import QUEUE_SCHEDULERS
from labsched.envs._lib.validation import check_choice, check_int, check_real
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = ["DEFAULT_FIGURE_ENTRIES", "PAPER_TABLES", "ProtocolConfig", "paper_config"]

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
        retune_per_exploration: cross-validate the tuned schedulers (LR's ``C``, LGBM's trees)
            again for every exploration size; by default (False) each split tunes them once,
            on its training experiments without exploration, and the fits with an
            exploration feature reuse those hyperparameters (about 12x fewer
            cross-validations).
    """

    experiment_type: str = "interleaving"
    n_splits: int = 100
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
    retune_per_exploration: bool = False

    def __post_init__(self) -> None:
        s = object.__setattr__
        check_choice("experiment_type", self.experiment_type, tuple(_TYPE_DEFAULTS))
        for name, value in _TYPE_DEFAULTS[self.experiment_type].items():
            if getattr(self, name) is None:
                s(self, name, value)
        if self.spec is None:
            s(self, "spec", QueueWorldSpec(experiment_type=self.experiment_type))
        if self.spec.experiment_type != self.experiment_type:
            raise ValueError("spec.experiment_type must equal experiment_type")
        s(self, "n_splits", check_int("n_splits", self.n_splits, 1))
        s(self, "n_bootstrap", check_int("n_bootstrap", self.n_bootstrap, 1))
        s(self, "test_size", check_real("test_size", self.test_size, 0.0, 1.0, low_open=True, high_open=True))
        for f in self.explore_fractions:
            check_real("explore_fractions", f, 0.0, 1.0, low_open=True, high_open=True)
        check_choice("outcome_source", self.outcome_source, ("bootstrap", "model"))
        check_choice("ci", self.ci, ("normal", "bootstrap"))
        for t, k in (*self.q_settings, *self.figure_settings):
            if k < 1 or t < k:
                raise ValueError(f"(T, k) settings need k >= 1 and T >= k, got {(t, k)}")
        for name in (*self.baselines, *self.learned, *(n for n, _ in self.figure_entries)):
            QUEUE_SCHEDULERS.canonical(name)  # unknown names list the known ones


def paper_config(
    experiment_type: str = "interleaving", *, quick: bool = False, **overrides: Any
) -> ProtocolConfig:
    """The paper's setting for ``experiment_type``; ``quick`` is a seconds-long smoke budget
    (4 splits, 30 repetitions, exploration 0.05 and 0.2 only, two figure points, LGBM with
    fixed hyperparameters instead of cross-validated ones)."""
    if quick:
        base: dict[str, Any] = dict(
            n_splits=4,
            n_bootstrap=30,
            explore_fractions=(0.05, 0.20),
            scheduler_options={"lgbm": {"tune": False}},
        )
        if experiment_type == "interleaving":
            base["q_settings"] = ((300_000, 3),)
            base["figure_settings"] = ((100_000, 1), (300_000, 3))
        base.update(overrides)
        overrides = base
    return ProtocolConfig(experiment_type=experiment_type, **overrides)
