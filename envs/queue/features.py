"""Pre-experiment features of online experiments, and the synthetic experiment dataset.

The features follow section 4.2 of Kharitonov et al. ("Optimised Scheduling of Online
Experiments", SIGIR 2015), computed on the synthetic world of :mod:`.search_world`; every
feature is a difference **B minus A** (positive: the candidate looks better).

The work is split by job, every public name re-exported here: :mod:`.offline_metrics`,
:mod:`.click_model` (Algorithms 1-3), :mod:`.feature_vectors` (one experiment's vector),
:mod:`.dataset` (the :class:`ExperimentDataset`) and :mod:`.generation`.

## Effectiveness-based features (12 per query group)
Offline metrics of A's and B's top results against the partial, noisy assessor labels
(:meth:`SearchWorld.judge`): Precision@1, Precision@3 (label >= ``spec.relevant_grade``),
DCG@3, DCG@5 (gain ``2^g - 1``, discount ``log2(1 + rank)``) and ERR@3, ERR@5 (stop probability
``(2^g - 1) / 16``), each under two policies for unlabelled documents:

* ``irrel``: unlabelled documents count as irrelevant (grade 0); averaged over all judged
  queries (queries with at least one label);
* ``skip``: averaged only over the judged queries where *both* A's and B's top-``k`` documents
  (``k`` = the metric's cut-off) are all labelled.

## Click-model features (3 per group for interleaving, 2 for A/B tests)
An sDBN is trained with Algorithm 1 (Beta(1, 1) priors on every attractiveness and
satisfaction) on a separate historical log (:meth:`SearchWorld.simulate_log`); documents never
seen keep the prior mean 0.5. Then per query:

* ``dSat@3``, ``dSat@5``: Algorithm 2, ``P_sat(R) = 1 - prod_{r <= k} (1 - a_r s_r)``, B minus A;
* ``dClicks@5`` (interleaving only): Algorithm 3, the expected number of (deduplicated) clicks
  on B's team minus A's team in the top 5 of the Team Draft interleavings, each interleaving
  weighted by its probability, with the examination probability reset for every list.

## Aggregation over query-length groups
Every base feature is averaged over four query groups (the paper's aggregation): ``all``,
``len1``, ``len2``, ``len3+`` (queries of one, two, three or more terms). Effectiveness features
average uniformly over the group's qualifying judged queries (the judged set is itself drawn by
popularity); click-model features average over the group's queries in the click log, weighted
by their number of log sessions (i.e. over the historical query stream). An empty group gives
0. Columns are ordered base-major: ``features[:, 4 * b + g]`` is base feature ``b`` for group
``g``, named ``"<base>|<group>"``, e.g. ``"dDCG@3[irrel]|len2"``. Interleaving experiments have
``(12 + 3) * 4 = 60`` columns, A/B tests ``(12 + 2) * 4 = 56``; the paper's 61st/57th feature,
the exploration outcome, is dynamic and computed on demand
(:meth:`ExperimentDataset.exploration_features`, :meth:`ExperimentDataset.features_with_exploration`).

## The dataset
:func:`generate_dataset` draws a world, labels, a click log and the sDBN, then candidate
experiments until the dataset is full (see ``QueueWorldSpec.fix_success_count``). Each
experiment's *deployment size* (the interactions it consumes) is log-normal as in Table 1; its
*label* is the verdict of one full-size run drawn from the exact law of its session counts.

Typical use by a scheduler / evaluation protocol (e.g. the paper's Algorithm 4)::

    ds = generate_dataset(QueueWorldSpec(), rng=np.random.default_rng(0))
    X, y, sigma = ds.features, ds.success, ds.statistic   # train on X -> y (or pairs by sigma)
    test = ds.subset(test_idx)                            # a stratified split's test part
    x_exp, names = test.features_with_exploration(n_explore, rng, source="bootstrap")
    run = test.bootstrap_outcome(j, n, rng)               # Algorithm 4's sample(S(j)): run.success

``success_probability`` / ``success_probability_at(n)`` give each experiment's true ``P(e)``
(for oracles, Fact 1's greedy order and expected ``Q(S)``); schedulers must only use
``features`` (and exploration results).
"""

from __future__ import annotations

from labsched.envs.queue.click_model import (
    SDBNModel,
    click_features_per_query,
    expected_click_difference,
    satisfaction_probability,
    train_sdbn,
)
from labsched.envs.queue.dataset import ExperimentDataset, OutcomeSource
from labsched.envs.queue.feature_vectors import (
    AGGREGATION_GROUPS,
    CLICK_FEATURES,
    POLICIES,
    experiment_features,
    feature_names,
)
from labsched.envs.queue.generation import cached_dataset, generate_dataset
from labsched.envs.queue.offline_metrics import (
    MAX_GRADE,
    METRICS,
    dcg_at,
    err_at,
    labelled_to_depth,
    offline_metric,
    precision_at,
)

__all__ = [
    "AGGREGATION_GROUPS",
    "CLICK_FEATURES",
    "MAX_GRADE",
    "METRICS",
    "POLICIES",
    "ExperimentDataset",
    "OutcomeSource",
    "SDBNModel",
    "cached_dataset",
    "click_features_per_query",
    "dcg_at",
    "err_at",
    "expected_click_difference",
    "experiment_features",
    "feature_names",
    "generate_dataset",
    "labelled_to_depth",
    "offline_metric",
    "precision_at",
    "satisfaction_probability",
    "train_sdbn",
]
