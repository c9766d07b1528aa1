"""Pre-experiment features of online experiments, and the synthetic experiment dataset.

The features follow section 4.2 of Kharitonov et al. ("Optimised Scheduling of Online
Experiments", SIGIR 2015), computed on the synthetic world of :mod:`.search_world`; every
feature is a difference **B minus A** (positive: the candidate looks better).

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

import functools
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from .search_world import (
    GROUP_NAMES,
    ABOutcome,
    ABSessions,
    CandidateRanker,
    ClickLog,
    InterleavingOutcome,
    InterleavingSessions,
    InterleavingTable,
    QueueWorldSpec,
    SearchWorld,
    ab_power,
    ab_test,
    check_rng,
    check_sessions,
    interleaving_power,
    interleaving_test,
)

__all__ = [
    "AGGREGATION_GROUPS",
    "CLICK_FEATURES",
    "METRICS",
    "ExperimentDataset",
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

METRICS = ("P@1", "P@3", "DCG@3", "DCG@5", "ERR@3", "ERR@5")
"""The six offline metrics (each under the ``irrel`` and ``skip`` policies)."""
POLICIES = ("irrel", "skip")
CLICK_FEATURES = ("dSat@3", "dSat@5", "dClicks@5")
"""Click-model base features; ``dClicks@5`` only for interleaving experiments."""
AGGREGATION_GROUPS = ("all", *GROUP_NAMES)
"""Query groups each base feature is averaged over."""
MAX_GRADE = 4


# ----------------------------------------------------------------------------------------------
# Offline metrics
# ----------------------------------------------------------------------------------------------


def _grades(grades: Any, k: int) -> np.ndarray:
    g = np.asarray(grades)
    if g.ndim == 1:
        g = g[None, :]
    if g.shape[-1] < k:
        pad = np.full((*g.shape[:-1], k - g.shape[-1]), 0, dtype=g.dtype)
        g = np.concatenate([g, pad], axis=-1)
    return np.where(g[..., :k] < 0, 0, g[..., :k]).astype(float)


def precision_at(grades: Any, k: int, relevant_grade: int = 2) -> np.ndarray:
    """Precision@k of each row of ``grades`` (``-1`` = unlabelled, counted irrelevant)."""
    return (_grades(grades, k) >= relevant_grade).mean(axis=-1)


def dcg_at(grades: Any, k: int) -> np.ndarray:
    """DCG@k with gain ``2^g - 1`` and discount ``log2(1 + rank)`` (unlabelled = 0)."""
    g = _grades(grades, k)
    return ((2.0**g - 1.0) / np.log2(np.arange(2, k + 2))).sum(axis=-1)


def err_at(grades: Any, k: int, max_grade: int = MAX_GRADE) -> np.ndarray:
    """Expected Reciprocal Rank at k (Chapelle et al. 2009); unlabelled = 0."""
    r = (2.0 ** _grades(grades, k) - 1.0) / 2.0**max_grade
    reach = np.cumprod(np.concatenate([np.ones_like(r[..., :1]), 1.0 - r[..., :-1]], axis=-1), axis=-1)
    return (reach * r / np.arange(1, k + 1)).sum(axis=-1)


def offline_metric(name: str, grades: Any, relevant_grade: int = 2) -> np.ndarray:
    """One of :data:`METRICS` by name (e.g. ``"DCG@3"``) for each row of ``grades``."""
    if name not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {name!r}")
    kind, k = name.split("@")
    if kind == "P":
        return precision_at(grades, int(k), relevant_grade)
    if kind == "DCG":
        return dcg_at(grades, int(k))
    return err_at(grades, int(k))


def labelled_to_depth(grades: Any, k: int) -> np.ndarray:
    """Whether each row's top ``k`` documents are all labelled (the ``skip`` policy's filter)."""
    g = np.asarray(grades)
    if g.ndim == 1:
        g = g[None, :]
    return (g[..., :k] >= 0).all(axis=-1) & (g.shape[-1] >= k)


# ----------------------------------------------------------------------------------------------
# sDBN click model (Algorithms 1-3)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SDBNModel:
    """sDBN parameters estimated by Algorithm 1, per (query, document).

    Attributes:
        attractiveness, satisfaction: ``(Q, D)`` posterior means
            ``(N + alpha) / (D + alpha + beta)``.
        a_num, a_den, s_num, s_den: ``(Q, D)`` the counts ``a^N, a^D, s^N, s^D``.
        query_sessions: ``(Q,)`` log sessions per query.
    """

    attractiveness: np.ndarray
    satisfaction: np.ndarray
    a_num: np.ndarray
    a_den: np.ndarray
    s_num: np.ndarray
    s_den: np.ndarray
    query_sessions: np.ndarray


def train_sdbn(
    log: ClickLog | tuple[np.ndarray, np.ndarray, np.ndarray],
    n_queries: int,
    n_docs: int,
    *,
    prior: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> SDBNModel:
    """Algorithm 1: estimate the sDBN from a click log (vectorised over sessions).

    For each session, every document at or above the last clicked position counts as examined
    (``a^D += 1``); every clicked document gets ``a^N += 1`` and ``s^D += 1``; the last clicked
    document gets ``s^N += 1``. Sessions without clicks contribute nothing (they have no last
    click). Estimates are ``a = (a^N + alpha_a) / (a^D + alpha_a + beta_a)`` and likewise ``s``.

    Args:
        log: ``(query (n,), docs (n, m), clicks (n, m))``; negative doc ids are padding.
        n_queries, n_docs: shape of the parameter tables.
        prior: ``(alpha_a, beta_a, alpha_s, beta_s)``, all > 0.
    """
    query, docs, clicks = (np.asarray(x) for x in log)
    clicks = clicks.astype(bool)
    if docs.shape != clicks.shape or docs.ndim != 2 or query.shape != (docs.shape[0],):
        raise ValueError(
            f"log shapes disagree: query {query.shape}, docs {docs.shape}, clicks {clicks.shape}"
        )
    if len(prior) != 4 or min(prior) <= 0:
        raise ValueError(
            f"prior must be four positive numbers (alpha_a, beta_a, alpha_s, beta_s), got {prior!r}"
        )
    aa, ba, as_, bs = (float(x) for x in prior)
    m = docs.shape[1]
    size = n_queries * n_docs
    flat = query[:, None].astype(np.int64) * n_docs + docs.astype(np.int64)
    valid = docs >= 0
    any_click = clicks.any(axis=1)
    last = np.where(any_click, m - 1 - np.argmax(clicks[:, ::-1], axis=1), -1)
    examined = (np.arange(m)[None, :] <= last[:, None]) & valid
    a_den = np.bincount(flat[examined], minlength=size)
    a_num = np.bincount(flat[clicks & valid], minlength=size)
    rows = np.flatnonzero(any_click)
    s_num = np.bincount(flat[rows, last[rows]], minlength=size)
    shape = (n_queries, n_docs)
    a_num, a_den, s_num = a_num.reshape(shape), a_den.reshape(shape), s_num.reshape(shape)
    s_den = a_num.copy()
    return SDBNModel(
        attractiveness=(a_num + aa) / (a_den + aa + ba),
        satisfaction=(s_num + as_) / (s_den + as_ + bs),
        a_num=a_num,
        a_den=a_den,
        s_num=s_num,
        s_den=s_den,
        query_sessions=np.bincount(query.astype(np.int64), minlength=n_queries),
    )


def satisfaction_probability(attractiveness: Any, satisfaction: Any, k: int) -> np.ndarray:
    """Algorithm 2: ``1 - prod_{r <= min(k, |R|)} (1 - a_r s_r)`` per result page (row)."""
    a = np.asarray(attractiveness, dtype=float)[..., :k]
    s = np.asarray(satisfaction, dtype=float)[..., :k]
    return 1.0 - np.prod(1.0 - a * s, axis=-1)


def expected_click_difference(
    attractiveness: Any, satisfaction: Any, teams: Any, k: int, weights: Any = None
) -> np.ndarray:
    """Algorithm 3 (sign B minus A): expected clicks on B's team minus A's in the top ``k``.

    Args:
        attractiveness, satisfaction: ``(..., P, L)`` parameters of the documents of ``P``
            interleaved lists.
        teams: ``(..., P, L)`` credited teams (:data:`TEAM_A` / :data:`TEAM_B`, 0 = ignored).
        k: cut-off.
        weights: ``(P,)`` or ``(..., P)`` probabilities ``f_i`` of the lists (default uniform).

    Returns:
        ``(...)`` the expected difference ``sum_i f_i sum_{r<=k} P_e(r) a_r team_r`` with
        ``P_e(1) = 1`` and ``P_e(r + 1) = P_e(r) (1 - a_r s_r)`` for every list.
    """
    a = np.asarray(attractiveness, dtype=float)[..., :k]
    s = np.asarray(satisfaction, dtype=float)[..., :k]
    t = np.asarray(teams, dtype=float)[..., :k]
    stay = np.cumprod(1.0 - a * s, axis=-1)
    examine = np.concatenate([np.ones_like(stay[..., :1]), stay[..., :-1]], axis=-1)
    per_list = (examine * a * t).sum(axis=-1)
    if weights is None:
        return per_list.mean(axis=-1)
    return (per_list * np.asarray(weights, dtype=float)).sum(axis=-1)


def click_features_per_query(
    world: SearchWorld,
    sdbn: SDBNModel,
    ranking_b: np.ndarray,
    queries: np.ndarray,
    table: InterleavingTable | None = None,
) -> np.ndarray:
    """``(len(queries), 3)`` per-query ``dSat@3``, ``dSat@5`` and ``dClicks@5`` (B minus A).

    ``table`` may pass the precomputed :meth:`SearchWorld.interleaving_table` of exactly
    ``queries``.
    """
    q = np.asarray(queries, dtype=np.int64)
    out = np.zeros((q.size, 3))
    if q.size == 0:
        return out
    ra = world.production_ranking[q].astype(np.int64)
    rb = np.asarray(ranking_b)[q].astype(np.int64)
    a, s = sdbn.attractiveness, sdbn.satisfaction
    qa = q[:, None]
    for j, k in enumerate((3, 5)):
        out[:, j] = satisfaction_probability(a[qa, rb], s[qa, rb], k) - satisfaction_probability(
            a[qa, ra], s[qa, ra], k
        )
    tab = world.interleaving_table(ranking_b, q) if table is None else table
    if not np.array_equal(tab.queries, q):
        raise ValueError("table must be the interleaving table of exactly `queries`")
    q3 = q[:, None, None]
    out[:, 2] = expected_click_difference(a[q3, tab.docs], s[q3, tab.docs], tab.credit_teams, 5)
    return out


# ----------------------------------------------------------------------------------------------
# Features of one experiment
# ----------------------------------------------------------------------------------------------


def feature_names(experiment_type: str) -> tuple[str, ...]:
    """Column names of the static feature matrix for ``"interleaving"`` or ``"ab"``."""
    if experiment_type not in ("interleaving", "ab"):
        raise ValueError(f"experiment_type must be 'interleaving' or 'ab', got {experiment_type!r}")
    bases = [f"d{m}[{p}]" for p in POLICIES for m in METRICS]
    bases += list(CLICK_FEATURES if experiment_type == "interleaving" else CLICK_FEATURES[:2])
    return tuple(f"{b}|{g}" for b in bases for g in AGGREGATION_GROUPS)


class _FeatureContext(NamedTuple):
    """Per-world quantities shared by every experiment's features."""

    world: SearchWorld
    labels: np.ndarray
    sdbn: SDBNModel
    group_masks: np.ndarray  # (4, Q) bool: all, len1, len2, len3+
    judged: np.ndarray  # (Q,) bool
    metrics_a: np.ndarray  # (6, Q) A's offline metrics (irrel policy)
    complete_a: np.ndarray  # (6, Q) A's top-k labelled
    sat_a: np.ndarray  # (2, Q) A's P_sat@3, @5 under the sDBN


def _context(world: SearchWorld, labels: np.ndarray, sdbn: SDBNModel) -> _FeatureContext:
    group = world.query_group
    masks = np.stack([np.ones(world.n_queries, dtype=bool)] + [group == g for g in range(len(GROUP_NAMES))])
    ra = world.production_ranking.astype(np.int64)
    grades_a = np.take_along_axis(labels, ra, axis=1)
    metrics_a = np.stack([offline_metric(mn, grades_a, world.spec.relevant_grade) for mn in METRICS])
    complete_a = np.stack([labelled_to_depth(grades_a, int(mn.split("@")[1])) for mn in METRICS])
    qa = np.arange(world.n_queries)[:, None]
    a, s = sdbn.attractiveness[qa, ra], sdbn.satisfaction[qa, ra]
    sat_a = np.stack([satisfaction_probability(a, s, k) for k in (3, 5)])
    return _FeatureContext(
        world, labels, sdbn, masks, (labels >= 0).any(axis=1), metrics_a, complete_a, sat_a
    )


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


def _experiment_features(
    ctx: _FeatureContext,
    ranking_b: np.ndarray,
    experiment_type: str,
    table: InterleavingTable | None = None,
) -> np.ndarray:
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
    return _experiment_features(_context(world, np.asarray(labels), sdbn), ranking_b, kind)


# ----------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------

OutcomeSource = Literal["model", "bootstrap", "sessions"]


@dataclass(frozen=True, eq=False)
class ExperimentDataset:
    """A generated queue of online experiments with features and ground truth (synthetic).

    Build with :func:`generate_dataset` (or :func:`cached_dataset`); take train/test parts with
    :meth:`subset`. All arrays are read-only; experiment ``i`` is row ``i`` everywhere.

    Attributes:
        spec: the generating :class:`QueueWorldSpec`.
        world: the hidden :class:`SearchWorld` (ground truth; schedulers must not look).
        labels: ``(Q, D)`` offline relevance labels (-1 = unlabelled).
        sdbn: the :class:`SDBNModel` trained on the historical log.
        candidates: tuple of :class:`CandidateRanker` (B of each experiment; A is production).
        features: ``(E, F)`` pre-experiment features (see the module docstring).
        feature_names: ``F`` column names.
        interactions: ``(E,)`` user interactions (sessions) each experiment consumes when run.
        session_probs: ``(E, 3)`` exact per-session (A wins, B wins, tie) probabilities for
            interleaving, ``(E, 2)`` exact click-through rates (A, B) for A/B tests.
        effect: ``(E,)`` true effect: the expected Equation 1 outcome ``(p_B - p_A) / 2``
            (interleaving) or ``CTR_B - CTR_A`` (A/B).
        success_probability: ``(E,)`` ``P(e)``: probability that a run of ``interactions``
            sessions succeeds (normal approximation of the test).
        outcome: the realised full-size run of every experiment, an
            :class:`InterleavingOutcome` or :class:`ABOutcome` of ``(E,)`` arrays.
        indices: ``(E,)`` each experiment's index in the dataset it was generated in
            (``arange(E)`` unless this is a :meth:`subset`).
    """

    spec: QueueWorldSpec
    world: SearchWorld
    labels: np.ndarray
    sdbn: SDBNModel
    candidates: tuple[CandidateRanker, ...]
    features: np.ndarray
    feature_names: tuple[str, ...]
    interactions: np.ndarray
    session_probs: np.ndarray
    effect: np.ndarray
    success_probability: np.ndarray
    outcome: InterleavingOutcome | ABOutcome
    indices: np.ndarray

    # ------------------------------------------------------------------ basic views
    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def experiment_type(self) -> str:
        return self.spec.experiment_type

    @property
    def success(self) -> np.ndarray:
        """``(E,)`` labels ``y(e)``: the realised full-size run found B significantly better."""
        return np.asarray(self.outcome.success, dtype=bool)

    @property
    def statistic(self) -> np.ndarray:
        """``(E,)`` realised outcome ``sigma(e)`` (Equation 1, or ``CTR_B - CTR_A``)."""
        return np.asarray(self.outcome.statistic, dtype=float)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    def feature_index(self, name: str) -> int:
        """Column of a feature, e.g. ``"dERR@3[irrel]|all"``."""
        try:
            return self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"unknown feature {name!r}; see ExperimentDataset.feature_names") from None

    def _index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"experiment index must be an integer, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"experiment index {i} out of range for {len(self)} experiments")
        return int(i) % len(self)

    def _indices(self, indices: Any) -> np.ndarray:
        if indices is None:
            return np.arange(len(self))
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"a boolean index must have shape ({len(self)},), got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).ravel()
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} experiments")
        return idx % max(len(self), 1)

    # ------------------------------------------------------------------ subsets
    def subset(self, indices: Any) -> ExperimentDataset:
        """The experiments ``indices`` (integers or a boolean mask), in that order."""
        idx = self._indices(indices)
        return ExperimentDataset(
            spec=self.spec,
            world=self.world,
            labels=self.labels,
            sdbn=self.sdbn,
            candidates=tuple(self.candidates[i] for i in idx),
            features=_ro(self.features[idx]),
            feature_names=self.feature_names,
            interactions=_ro(self.interactions[idx]),
            session_probs=_ro(self.session_probs[idx]),
            effect=_ro(self.effect[idx]),
            success_probability=_ro(self.success_probability[idx]),
            outcome=type(self.outcome)(*(_ro(np.asarray(f)[idx]) for f in self.outcome)),
            indices=_ro(self.indices[idx]),
        )

    # ------------------------------------------------------------------ running experiments
    def success_probability_at(self, n_sessions: Any, indices: Any = None) -> np.ndarray:
        """``P(e)`` of runs of ``n_sessions`` (scalar or per experiment) for ``indices`` (default all)."""
        idx = self._indices(indices)
        n = np.asarray(n_sessions, dtype=float)
        if self.experiment_type == "interleaving":
            return interleaving_power(self.session_probs[idx], n, self.spec.significance_level)
        return ab_power(self.session_probs[idx], n, self.spec.significance_level)

    def sample_outcomes(
        self,
        n_sessions: Any,
        rng: np.random.Generator,
        indices: Any = None,
        *,
        source: OutcomeSource = "model",
    ) -> InterleavingOutcome | ABOutcome:
        """Run experiments ``indices`` (default all) for ``n_sessions`` each; arrays of verdicts.

        ``source="model"``: fresh sessions, drawn from the exact law of the counts
        (multinomial for interleaving, one binomial per arm for A/B; equivalent to simulating
        every session). ``"bootstrap"``: ``n_sessions`` sessions resampled with replacement
        from each experiment's realised full-size run (Algorithm 4's ``sample``), i.e. counts
        drawn from the run's empirical proportions. ``"sessions"``: simulate every session
        with :meth:`simulate_sessions` (slow for large ``n``; a cross-check).
        """
        check_rng(rng)
        idx = self._indices(indices)
        n = np.broadcast_to(np.asarray(n_sessions), idx.shape)
        if n.size and (not np.issubdtype(n.dtype, np.integer) or n.min() < 0):
            raise ValueError("n_sessions must be non-negative integers")
        n = n.astype(np.int64)
        alpha = self.spec.significance_level
        if source == "sessions":
            counts = [
                self.simulate_sessions(int(i), int(k), rng).counts() for i, k in zip(idx, n, strict=True)
            ]
            cols = np.array(counts, dtype=np.int64).reshape(len(idx), -1).T
            if self.experiment_type == "interleaving":
                return interleaving_test(cols[0], cols[1], cols[2], alpha)
            return ab_test(cols[0], cols[1], cols[2], cols[3], alpha)
        if source not in ("model", "bootstrap"):
            raise ValueError(f"source must be 'model', 'bootstrap' or 'sessions', got {source!r}")
        if self.experiment_type == "interleaving":
            if source == "model":
                p = self.session_probs[idx]
            else:
                o = self.outcome
                c = np.stack([o.wins_a[idx], o.wins_b[idx], o.ties[idx]], axis=1).astype(float)
                p = c / np.maximum(c.sum(axis=1, keepdims=True), 1.0)
            p = p / p.sum(axis=1, keepdims=True)
            counts = rng.multinomial(n, p) if idx.size else np.zeros((0, 3), dtype=np.int64)
            return interleaving_test(counts[:, 0], counts[:, 1], counts[:, 2], alpha)
        if source == "model":
            ctr = self.session_probs[idx]
        else:
            o = self.outcome
            ctr = np.stack(
                [
                    o.clicks_a[idx] / np.maximum(o.sessions_a[idx], 1),
                    o.clicks_b[idx] / np.maximum(o.sessions_b[idx], 1),
                ],
                axis=1,
            )
        na = n // 2
        nb = n - na
        ca = rng.binomial(na, ctr[:, 0])
        cb = rng.binomial(nb, ctr[:, 1])
        return ab_test(na, ca, nb, cb, alpha)

    def sample_outcome(
        self, i: int, n_sessions: int, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> InterleavingOutcome | ABOutcome:
        """One experiment's verdict after ``n_sessions`` (scalars); see :meth:`sample_outcomes`."""
        i = self._index(i)
        n = check_sessions(n_sessions)
        out = self.sample_outcomes(n, rng, [i], source=source)
        return type(out)(*(_scalar(f[0]) for f in out))

    def bootstrap_outcome(
        self, i: int, n_sessions: int, rng: np.random.Generator
    ) -> InterleavingOutcome | ABOutcome:
        """Algorithm 4's ``sample(S(j))``: resample ``n_sessions`` sessions of the realised run."""
        return self.sample_outcome(i, n_sessions, rng, source="bootstrap")

    def simulate_sessions(
        self, i: int, n_sessions: int, rng: np.random.Generator
    ) -> InterleavingSessions | ABSessions:
        """Simulate experiment ``i`` session by session (vectorised NumPy)."""
        i = self._index(i)
        n = check_sessions(n_sessions)
        ranking = self.candidates[i].ranking
        if self.experiment_type == "interleaving":
            return self.world.simulate_interleaving(ranking, n, rng)
        return self.world.simulate_ab(ranking, n, rng)

    # ------------------------------------------------------------------ exploration
    def exploration_features(
        self,
        n_interactions: Any,
        rng: np.random.Generator,
        indices: Any = None,
        *,
        source: OutcomeSource = "model",
    ) -> np.ndarray:
        """The paper's exploration feature: the outcome statistic (Equation 1, or
        ``CTR_B - CTR_A``) of a preliminary run of ``n_interactions`` sessions per experiment.
        ``source`` as in :meth:`sample_outcomes` (``"bootstrap"`` samples the realised run,
        as the paper does; ``"model"`` runs fresh sessions)."""
        return np.asarray(
            self.sample_outcomes(n_interactions, rng, indices, source=source).statistic, dtype=float
        )

    def exploration_feature(
        self, i: int, n_interactions: int, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> float:
        """:meth:`exploration_features` of one experiment."""
        return float(self.sample_outcome(i, n_interactions, rng, source=source).statistic)

    def features_with_exploration(
        self, n_interactions: Any, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """``(E, F + 1)`` features with the exploration feature appended (the paper's 61/57
        features) and the names (last: ``"explore"``)."""
        x = self.exploration_features(n_interactions, rng, source=source)
        return np.column_stack([self.features, x]), (*self.feature_names, "explore")


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _draw_interactions(spec: QueueWorldSpec, rng: np.random.Generator) -> int:
    n = spec.interactions_median * np.exp(spec.interactions_sigma * rng.standard_normal())
    return int(np.clip(np.rint(n), spec.interactions_min, spec.interactions_max))


_MAX_CANDIDATES_PER_EXPERIMENT = 200


def generate_dataset(spec: QueueWorldSpec | None = None, *, rng: np.random.Generator) -> ExperimentDataset:
    """Generate a synthetic experiment dataset from ``spec`` (default ``QueueWorldSpec()``).

    Steps (all randomness from ``rng``): draw the world; the assessor labels; the historical
    click log and its sDBN (Algorithm 1); then candidate experiments one at a time, each with a
    deployment size, its exact session-outcome law and one realised full-size run. With
    ``spec.fix_success_count`` candidates are kept while the quota of their class (successful
    or not) has room, until both quotas are full; otherwise the first ``n_experiments`` are
    kept. The kept experiments are put in random order and their features computed.

    Raises:
        RuntimeError: if ``200 * n_experiments`` candidates do not fill the quotas (the success
            share is unreachable under the spec's effect distribution).
    """
    spec = QueueWorldSpec() if spec is None else spec
    if not isinstance(spec, QueueWorldSpec):
        raise TypeError(f"spec must be a QueueWorldSpec, got {type(spec).__name__}")
    check_rng(rng)
    world = SearchWorld.generate(spec, rng)
    labels = world.judge(rng)
    log = world.simulate_log(spec.log_sessions, rng)
    sdbn = train_sdbn(log, world.n_queries, world.n_docs)
    for arr in (sdbn.attractiveness, sdbn.satisfaction, sdbn.a_num, sdbn.a_den, sdbn.s_num, sdbn.s_den):
        arr.flags.writeable = False
    sdbn.query_sessions.flags.writeable = False

    interleaving = spec.experiment_type == "interleaving"
    alpha = spec.significance_level
    ctr_a = world.click_through_rate(world.production_ranking)
    n_exp = spec.n_experiments
    quota = {True: spec.n_successful, False: n_exp - spec.n_successful} if spec.fix_success_count else None
    kept: list[tuple[Any, ...]] = []
    tried = 0
    while len(kept) < n_exp:
        if tried >= _MAX_CANDIDATES_PER_EXPERIMENT * n_exp:
            raise RuntimeError(
                f"generated {tried} candidate experiments without filling the quotas of "
                f"{spec.n_successful} successful / {n_exp - spec.n_successful} unsuccessful experiments; "
                "adjust QueueWorldSpec.success_share or the effect distribution (effect_mean, effect_sd)"
            )
        tried += 1
        cand = world.draw_candidate(rng)
        n = _draw_interactions(spec, rng)
        table = None
        if interleaving:
            table = world.interleaving_table(cand.ranking)
            probs = world.interleaving_probabilities(cand.ranking, table=table)
            probs = probs / probs.sum()
            c = rng.multinomial(n, probs)
            run = interleaving_test(c[0], c[1], c[2], alpha)
        else:
            probs = np.array([ctr_a, world.click_through_rate(cand.ranking)])
            na = n // 2
            run = ab_test(na, rng.binomial(na, probs[0]), n - na, rng.binomial(n - na, probs[1]), alpha)
        ok = bool(run.success)
        if quota is not None:
            if quota[ok] == 0:
                continue
            quota[ok] -= 1
        kept.append((cand, n, probs, tuple(run), table))
    order = rng.permutation(n_exp)
    kept = [kept[i] for i in order]
    ctx = _context(world, labels, sdbn)
    features = np.stack([_experiment_features(ctx, k[0].ranking, spec.experiment_type, k[4]) for k in kept])
    interactions = np.array([k[1] for k in kept], dtype=np.int64)
    probs = np.stack([k[2] for k in kept])
    effect = 0.5 * (probs[:, 1] - probs[:, 0]) if interleaving else probs[:, 1] - probs[:, 0]
    power = (
        interleaving_power(probs, interactions, alpha)
        if interleaving
        else ab_power(probs, interactions, alpha)
    )
    cls = InterleavingOutcome if interleaving else ABOutcome
    fields = list(zip(*(k[3] for k in kept), strict=True))
    outcome = cls(*(_ro(np.asarray(f)) for f in fields))
    return ExperimentDataset(
        spec=spec,
        world=world,
        labels=labels,
        sdbn=sdbn,
        candidates=tuple(k[0] for k in kept),
        features=_ro(features),
        feature_names=feature_names(spec.experiment_type),
        interactions=_ro(interactions),
        session_probs=_ro(probs),
        effect=_ro(effect),
        success_probability=_ro(power),
        outcome=outcome,
        indices=_ro(np.arange(n_exp)),
    )


@functools.lru_cache(maxsize=8)
def cached_dataset(spec: QueueWorldSpec | None = None, seed: int = 0) -> ExperimentDataset:
    """``generate_dataset(spec, rng=np.random.default_rng(seed))``, memoised (datasets are
    immutable, so environments built from the same ``(spec, seed)`` share one)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return generate_dataset(spec, rng=np.random.default_rng(int(seed)))
