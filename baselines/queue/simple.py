"""The simple queue schedulers: random order, one pre-experiment feature, the exploration
feature, and the two ground-truth references (upper bound and oracle)."""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.baselines.queue.base import QueueScheduler
from labsched.baselines.queue.view import QueueView, resolve_feature_names

__all__ = [
    "CM_FEATURE",
    "DCG_FEATURE",
    "ERR_FEATURE",
    "CMScheduler",
    "DCGScheduler",
    "ERRScheduler",
    "ExploreScheduler",
    "FeatureScheduler",
    "OracleScheduler",
    "RandomScheduler",
    "UpperBoundScheduler",
]

# Feature columns of the single-feature schedulers (the paper's DCG, ERR and CM schedulers:
# unlabelled documents counted irrelevant, all queries).
DCG_FEATURE = "dDCG@3[irrel]|all"
ERR_FEATURE = "dERR@3[irrel]|all"
CM_FEATURE = "dClicks@5|all"


class RandomScheduler(QueueScheduler):
    """The un-prioritised queue: a uniformly random order."""

    name = "random"
    label = "Rnd"

    def score(self, view: QueueView) -> np.ndarray:
        return self.rng.random(len(view))


class FeatureScheduler(QueueScheduler):
    """Greedy by one pre-experiment feature (largest first; ``per_cost`` divides by cost).

    Args:
        feature: the column name, e.g. ``"dERR@3[irrel]|all"``.
        label: table label (default: the column name).
    """

    name = "feature"

    def __init__(
        self, feature: str = ERR_FEATURE, *, label: str | None = None, seed: int | None = None, **kw: Any
    ) -> None:
        super().__init__(seed=seed, **kw)
        if not isinstance(feature, str):
            raise TypeError(f"feature must be a column name, got {type(feature).__name__}")
        self.feature = feature
        self.label = label or type(self).label or feature

    def _check_feature_names(self, names: tuple[str, ...]) -> None:
        if self.feature not in names:
            hint = ""
            if "Clicks" in self.feature:
                hint = " (the click-model CM feature exists only for interleaving)"
            raise ValueError(f"{self.name}: the data has no feature {self.feature!r}{hint}")

    def fit(self, dataset: Any, exploration: Any = None) -> FeatureScheduler:
        self._check_feature_names(tuple(dataset.feature_names))
        return self

    def score(self, view: QueueView) -> np.ndarray:
        names = resolve_feature_names(view.feature_names, view.features.shape[1])
        self._check_feature_names(names)
        return view.features[:, names.index(self.feature)].copy()

    def _needs_raw_features(self) -> bool:
        return self.per_cost


class DCGScheduler(FeatureScheduler):
    """Greedy by the DCG@3 difference (unlabelled documents irrelevant, all queries)."""

    name = "dcg"
    label = "DCG"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(DCG_FEATURE, seed=seed, **kw)


class ERRScheduler(FeatureScheduler):
    """Greedy by the ERR@3 difference (unlabelled documents irrelevant, all queries)."""

    name = "err"
    label = "ERR"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(ERR_FEATURE, seed=seed, **kw)


class CMScheduler(FeatureScheduler):
    """Greedy by the click model's expected interleaving click difference (interleaving only)."""

    name = "cm"
    label = "CM"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(CM_FEATURE, seed=seed, **kw)


class ExploreScheduler(QueueScheduler):
    """Greedy by the exploration feature (the outcome of a short preliminary deployment)."""

    name = "explore"
    label = "Explore"

    @property
    def uses_exploration(self) -> bool:
        return True

    def score(self, view: QueueView) -> np.ndarray:
        if view.exploration is None:
            raise ValueError("explore needs exploration results (QueueView.exploration)")
        return view.exploration.copy()


class UpperBoundScheduler(QueueScheduler):
    """Reference bound that **reads the ground truth**: sorts by the true outcome.

    On a dataset (the paper's UpperBound) it sorts by the realised outcome statistic of each
    experiment (``QueueView.true_statistic``). In the env it sorts by the episode's drawn
    outcome (``ExperimentQueueEnv.episode_outcomes``): successful deployments first, the
    cheapest first among them (then by statistic), so with no arrivals it reaches the most
    successes that fit the budget (``ExperimentQueueEnv.episode_upper_bound``), with equal or
    unequal costs. No real scheduler can do this.
    """

    name = "upper_bound"
    label = "UB"
    reads_ground_truth = True

    def score(self, view: QueueView) -> np.ndarray:
        if view.true_statistic is None:
            raise ValueError("upper_bound reads the ground truth: QueueView.true_statistic is missing")
        stat = view.true_statistic
        if view.true_success is None or stat.size == 0:
            return stat.copy()
        costs = np.zeros(stat.size) if view.costs is None else view.costs
        # Lexicographic (success, -cost, statistic) as one number: the rank of each experiment.
        order = np.lexsort((stat, -costs, view.true_success))
        score = np.empty(stat.size)
        score[order] = np.arange(stat.size, dtype=float)
        return score

    def _needs_raw_features(self) -> bool:
        return False


class OracleScheduler(QueueScheduler):
    """Reference that **reads the ground truth**: greedy by the true probability of success
    ``P(e)`` (the greedy rule of the paper's Fact 1, optimal with equal costs), divided by the
    cost when the view has costs (with unequal costs: success probability per interaction).

    In the env, ``P(e)`` is the generative model's probability at the deployment size
    (``dataset.success_probability_at``); with ``outcome="bootstrap"`` the episode's outcomes
    are resampled from recorded runs instead, whose success rate can differ from it.
    """

    name = "oracle"
    label = "Oracle"
    reads_ground_truth = True

    def score(self, view: QueueView) -> np.ndarray:
        if view.true_probability is None:
            raise ValueError("oracle reads the ground truth: QueueView.true_probability is missing")
        if view.costs is None:
            return view.true_probability.copy()
        return view.true_probability / np.maximum(view.costs, 1.0)
