"""The static pre-experiment feature vector of one experiment (B minus A), aggregated over
query-length groups; see :mod:`labsched.envs.queue.features` for the feature definitions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from labsched.envs.queue.click_model import SDBNModel, click_features_per_query, satisfaction_probability
from labsched.envs.queue.offline_metrics import METRICS, labelled_to_depth, offline_metric
from labsched.envs.queue.records import InterleavingTable
from labsched.envs.queue.search_world import SearchWorld
from labsched.envs.queue.world_spec import GROUP_NAMES

__all__ = [
    "AGGREGATION_GROUPS",
    "CLICK_FEATURES",
    "POLICIES",
    "FeatureContext",
    "experiment_features",
    "feature_context",
    "feature_names",
    "features_of",
]

POLICIES = ("irrel", "skip")
CLICK_FEATURES = ("dSat@3", "dSat@5", "dClicks@5")
"""Click-model base features; ``dClicks@5`` only for interleaving experiments."""
AGGREGATION_GROUPS = ("all", *GROUP_NAMES)
"""Query groups each base feature is averaged over."""


def feature_names(experiment_type: str) -> tuple[str, ...]:
    """Column names of the static feature matrix for ``"interleaving"`` or ``"ab"``."""
    if experiment_type not in ("interleaving", "ab"):
        raise ValueError(f"experiment_type must be 'interleaving' or 'ab', got {experiment_type!r}")
    bases = [f"d{m}[{p}]" for p in POLICIES for m in METRICS]
    bases += list(CLICK_FEATURES if experiment_type == "interleaving" else CLICK_FEATURES[:2])
    return tuple(f"{b}|{g}" for b in bases for g in AGGREGATION_GROUPS)


class FeatureContext(NamedTuple):
    """Per-world quantities shared by every experiment's features."""

    world: SearchWorld
    labels: np.ndarray
    sdbn: SDBNModel
    group_masks: np.ndarray  # (4, Q) bool: all, len1, len2, len3+
    judged: np.ndarray  # (Q,) bool
    metrics_a: np.ndarray  # (6, Q) A's offline metrics (irrel policy)
    complete_a: np.ndarray  # (6, Q) A's top-k labelled
    sat_a: np.ndarray  # (2, Q) A's P_sat@3, @5 under the sDBN


def feature_context(world: SearchWorld, labels: np.ndarray, sdbn: SDBNModel) -> FeatureContext:
    """The quantities of production ranker A that every experiment of ``world`` shares."""
    group = world.query_group
    masks = np.stack([np.ones(world.n_queries, dtype=bool)] + [group == g for g in range(len(GROUP_NAMES))])
    ra = world.production_ranking.astype(np.int64)
    grades_a = np.take_along_axis(labels, ra, axis=1)
    metrics_a = np.stack([offline_metric(mn, grades_a, world.spec.relevant_grade) for mn in METRICS])
    complete_a = np.stack([labelled_to_depth(grades_a, int(mn.split("@")[1])) for mn in METRICS])
    qa = np.arange(world.n_queries)[:, None]
    a, s = sdbn.attractiveness[qa, ra], sdbn.satisfaction[qa, ra]
    sat_a = np.stack([satisfaction_probability(a, s, k) for k in (3, 5)])
    return FeatureContext(world, labels, sdbn, masks, (labels >= 0).any(axis=1), metrics_a, complete_a, sat_a)


def _group_means(
    values: np.ndarray, include: np.ndarray, masks: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """``(B, G)`` (weighted) means of ``values`` ``(B, Q)`` over the queries ``include & group``
    for each group mask ``masks[g]`` (0 for an empty group)."""
    w = (include[None, :] & masks).astype(float)
    if weights is not None:
        w = w * weights[None, :]
    tot = w.sum(axis=1)
    num = values @ w.T
    return np.where(tot > 0, num / np.where(tot > 0, tot, 1.0), 0.0)


def features_of(
    ctx: FeatureContext,
    ranking_b: np.ndarray,
    experiment_type: str,
    table: InterleavingTable | None = None,
) -> np.ndarray:
    """The ``(F,)`` feature vector of A vs ``ranking_b`` given the shared ``ctx`` (``table``: the
    precomputed interleaving table of the changed queries, for interleaving experiments)."""
    world, labels = ctx.world, ctx.labels
    rb = np.asarray(ranking_b).astype(np.int64)
    grades_b = np.take_along_axis(labels, rb, axis=1)
    metrics_b = np.stack([offline_metric(mn, grades_b, world.spec.relevant_grade) for mn in METRICS])
    complete_b = np.stack([labelled_to_depth(grades_b, int(mn.split("@")[1])) for mn in METRICS])
    diff = metrics_b - ctx.metrics_a
    irrel = _group_means(diff, ctx.judged, ctx.group_masks)
    both = ctx.complete_a & complete_b & ctx.judged[None, :]  # (6, Q)
    skip = np.stack([_group_means(diff[i : i + 1], both[i], ctx.group_masks)[0] for i in range(len(METRICS))])
    # Click-model features: only queries where B's page differs can be non-zero.
    changed = np.flatnonzero(world.changed_queries(rb))
    n_click = 3 if experiment_type == "interleaving" else 2
    per_query = np.zeros((n_click, world.n_queries))
    if changed.size:
        if experiment_type == "interleaving":
            per_query[:, changed] = click_features_per_query(world, ctx.sdbn, rb, changed, table).T
        else:
            qa = changed[:, None]
            a, s = ctx.sdbn.attractiveness[qa, rb[changed]], ctx.sdbn.satisfaction[qa, rb[changed]]
            for j, k in enumerate((3, 5)):
                per_query[j, changed] = satisfaction_probability(a, s, k) - ctx.sat_a[j, changed]
    logged = ctx.sdbn.query_sessions > 0
    clickf = _group_means(per_query, logged, ctx.group_masks, ctx.sdbn.query_sessions.astype(float))
    return np.concatenate([irrel, skip, clickf], axis=0).ravel()


def experiment_features(
    world: SearchWorld,
    labels: np.ndarray,
    sdbn: SDBNModel,
    ranking_b: np.ndarray,
    experiment_type: str | None = None,
) -> np.ndarray:
    """The ``(F,)`` static feature vector of the experiment A (production) vs ``ranking_b``.

    ``labels`` are ``(Q, D)`` assessor labels (-1 = unlabelled), ``sdbn`` the trained click
    model; ``experiment_type`` defaults to ``world.spec.experiment_type``. Columns as
    :func:`feature_names`.
    """
    kind = world.spec.experiment_type if experiment_type is None else experiment_type
    feature_names(kind)  # validates
    return features_of(feature_context(world, np.asarray(labels), sdbn), ranking_b, kind)
