"""Schedulers of the experiment queue (``labsched/ExperimentQueue-v0``), greedy by a score.

Kharitonov, Macdonald, Serdyukov & Ounis (SIGIR 2015) order a queue of online experiments by an
estimate of each experiment's probability of success and deploy the best-ranked one whenever
the pipeline is free; with known probabilities and equal costs this greedy rule maximises the
expected number of successes (their Fact 1). Every scheduler here is such a greedy rule: it
gives each queued experiment a **score** (higher runs first) and deploys the best deployable
one. They differ in where the score comes from:

| name | label | score | reads ground truth |
|---|---|---|---|
| ``random`` | Rnd | a uniform random number (the un-prioritised queue) | no |
| ``dcg`` | DCG | the feature ``dDCG@3[irrel]\\|all`` (B minus A) | no |
| ``err`` | ERR | the feature ``dERR@3[irrel]\\|all`` | no |
| ``cm`` | CM | the click-model feature ``dClicks@5\\|all`` (interleaving only) | no |
| ``feature`` | the column | any feature column, ``feature="dSat@5\\|len2"`` | no |
| ``explore`` | Explore | the exploration feature: the outcome statistic of a short preliminary run | no |
| ``lr`` | LR | pointwise L1 logistic regression, ``C`` by cross-validation: ``P(success)`` | no |
| ``lgbm`` | LGBM | pointwise gradient-boosted trees: ``P(success)`` | no |
| ``svm`` | SVM | pairwise RankingSVM on feature differences: ``w . x`` | no |
| ``pgbm`` | PGBM | pairwise gradient-boosted trees (RankNet loss on all ordered pairs) | no |
| ``upper_bound`` | UB | the true outcome (a reference, **not a scheduler one can run**) | **yes** |
| ``oracle`` | Oracle | the true ``P(e)`` (Fact 1's greedy rule; a reference) | **yes** |

The learned schedulers (``lr``, ``lgbm``, ``svm``, ``pgbm``) must be :meth:`~QueueScheduler.fit`
on a training part of an :class:`~labsched.envs.queue.features.ExperimentDataset` (labels: the
realised success; pairs: ordered by the realised outcome statistic) and are then applied
greedily to unseen experiments. ``fit(train, exploration=values)`` adds the exploration
feature as one more column (the paper's 61st / 57th feature); a scheduler fitted that way needs
exploration results to score. ``upper_bound`` and ``oracle`` read the ground truth of the
environment or dataset (``ExperimentQueueEnv.episode_outcomes``, ``success_probability``);
they are bounds for comparison only.

## Two ways to use a scheduler
*On a dataset* (the paper's offline protocol, :mod:`labsched.evaluation.queue.protocol`):
``scheduler.rank(QueueView(features=..., exploration=...))`` returns the schedule (indices,
best first).

*In the environment*, with stable-baselines3's ``predict`` signature (so
``stable_baselines3.common.evaluation.evaluate_policy`` runs it)::

    env = gym.make("labsched/ExperimentQueue-v0", deployment_interactions=100_000,
                   budget=300_000, max_queue=8)
    sched = make_queue_scheduler("pgbm", seed=0).fit(train_dataset).attach(env)
    obs, info = env.reset(seed=0)
    action, _ = sched.predict(obs)

:meth:`~QueueScheduler.attach` tells the scheduler the environment's observation layout and
its feature normalisation (the env z-scores features with its pool's mean and standard
deviation; the scheduler maps them back to raw values, which is exact except for values the
env clipped at ``feature_clip`` standard deviations). It is required for the learned
schedulers, the two references, ``per_cost=True`` and flat observations of ambiguous length;
the other schedulers rank correctly from a ``Dict`` observation alone (their ranking does not
change under the env's per-column affine normalisation). A bound scheduler takes the valid
deploy actions from ``env.action_masks()``; unbound, from the observation (``valid`` and
``cost <= budget``). ``predict`` also accepts ``action_masks=`` as sb3-contrib's MaskablePPO
does.

In an environment with exploration actions (``exploration_interactions > 0``), a scheduler
that uses exploration first explores every queued experiment it has not explored yet (while
exploring is valid), then deploys the best; the others never explore. With
``normalize_features=True`` the env reports exploration results as z scores; a bound
scheduler reads the raw outcome statistic (the feature it was trained on) from the env's own
exploration records (``env.schedule``), which carry the same run.

The code is split by job: :mod:`.view` (what a scheduler sees), :mod:`.base` (the greedy
rule and ``predict``), :mod:`.simple` and :mod:`.learned` (the schedulers) and this module (the
registry); every public name is re-exported here.

Scores of equal value are ordered at random (the scheduler's own generator), so constant
scores (e.g. an L1 model that kept no feature) give the random schedule, not slot order.
"""

from __future__ import annotations

from typing import Any

from labsched.baselines.queue.base import QueueScheduler, order_scores, rank_rows
from labsched.baselines.queue.boosted import PairwiseBoostedTrees, PointwiseBoostedTrees
from labsched.baselines.queue.learned import LearnedScheduler, PointwiseLogistic, RankingSVM
from labsched.baselines.queue.simple import (
    CMScheduler,
    DCGScheduler,
    ERRScheduler,
    ExploreScheduler,
    FeatureScheduler,
    OracleScheduler,
    RandomScheduler,
    UpperBoundScheduler,
)
from labsched.baselines.queue.view import ObservationLayout, QueueView
from labsched.envs._lib.registry import Registry

__all__ = [
    "QUEUE_SCHEDULERS",
    "CMScheduler",
    "DCGScheduler",
    "ERRScheduler",
    "ExploreScheduler",
    "FeatureScheduler",
    "LearnedScheduler",
    "ObservationLayout",
    "OracleScheduler",
    "PairwiseBoostedTrees",
    "PointwiseBoostedTrees",
    "PointwiseLogistic",
    "QueueScheduler",
    "QueueView",
    "RandomScheduler",
    "RankingSVM",
    "UpperBoundScheduler",
    "make_queue_scheduler",
    "order_scores",
    "rank_rows",
    "register_queue_scheduler",
]

QUEUE_SCHEDULERS: Registry[type[QueueScheduler]] = Registry("queue scheduler")
"""Queue scheduler classes by name (case-insensitive; ``rnd`` and ``ub`` are aliases)."""

_ALIASES = {"random": ("rnd",), "upper_bound": ("ub", "upperbound", "upper-bound")}


def register_queue_scheduler(cls: type[QueueScheduler]) -> type[QueueScheduler]:
    """Add a queue scheduler class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    return QUEUE_SCHEDULERS.add(cls.name, cls, aliases=_ALIASES.get(cls.name, ()))


for _cls in (
    RandomScheduler,
    DCGScheduler,
    ERRScheduler,
    CMScheduler,
    FeatureScheduler,
    ExploreScheduler,
    PointwiseLogistic,
    PointwiseBoostedTrees,
    RankingSVM,
    PairwiseBoostedTrees,
    UpperBoundScheduler,
    OracleScheduler,
):
    register_queue_scheduler(_cls)


def make_queue_scheduler(name: str, **options: Any) -> QueueScheduler:
    """Build a queue scheduler by name (case-insensitive; ``rnd`` and ``ub`` are aliases).

    Args:
        name: one of ``QUEUE_SCHEDULERS.names()``.
        **options: constructor options (``seed=...``, ``per_cost=...``, ``feature=...`` for
            ``feature``, the learners' hyperparameters).

    Raises:
        ValueError: for an unknown name (the message lists the known ones and the closest).
        TypeError: when ``name`` is not a string.
    """
    return QUEUE_SCHEDULERS.get(name)(**options)
