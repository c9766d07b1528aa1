"""A synthetic search engine for simulating online ranking experiments.

Everything in this module is **synthetic**: the query logs, relevance judgements and online
experiments of Kharitonov, Macdonald, Serdyukov & Ounis ("Optimised Scheduling of Online
Experiments", SIGIR 2015) are private, so the queue-scheduling environment generates its data
from the explicit generative model documented here. Nothing is fitted to real data; the
defaults only make the generated *dataset* resemble the paper's Table 1 in shape.

## The world (:class:`SearchWorld`)
* ``n_queries`` queries. Query ``q`` has a length ``len_q`` (number of terms, drawn from
  ``spec.query_length_probs``) and a popularity ``w_q`` with
  ``log w_q = -length_popularity_decay * (len_q - 1) + popularity_sigma * N(0, 1)``, normalised
  to sum to one: sessions draw their query from ``w`` (short queries are the head of the stream).
* Each query has a pool of ``docs_per_query`` documents (ids ``0..D-1`` within the query) with a
  hidden graded relevance ``r in {0, .., 4}``: ``r = clip(round(z), 0, 4)`` with
  ``z ~ N(mu_q, 1.1^2)`` and a per-query level ``mu_q ~ N(0.8, 0.6^2)``.
* Users do not judge exactly like assessors: the *user utility* of a document is
  ``u = r + user_noise * eps`` with ``eps ~ N(0, 1)`` per (query, document).
* Click model: the simplified DBN (sDBN) of Chapelle & Zhang with no abandonment
  (``gamma = 1``). The user examines the result list top-down; an examined document is clicked
  with probability ``a = 0.02 + 0.6 * sigmoid(1.2 (u - 3))`` (attractiveness); after a click
  the user is satisfied with probability ``s = 0.05 + 0.85 * sigmoid(1.5 (u - 2.5))`` and stops,
  otherwise examination continues; a non-clicked document never stops it. The true
  ``(a, s)`` are hidden from the features, which only see a click log of an earlier period,
  whose users differ slightly (``u + click_drift * N(0, 1)``).
* Rankers are score matrices over each query's documents; a ranker shows its top
  ``list_length`` documents. The production ranker ``A`` (shared by every experiment) scores
  ``r + production_noise * xi``.
* A candidate ranker ``B`` (:meth:`SearchWorld.draw_candidate`) changes ``A`` on a random set of
  *affected* queries: ``score_B = score_A + effect * g + change_noise * xi'``, where the
  direction ``g = (1 - user_signal) * r_std + user_signal * eps`` mixes the standardised
  relevance (visible to assessors) with the users' private signal ``eps`` (visible only through
  clicks). ``effect`` > 0 moves the ranking towards what users want, ``effect`` < 0 away from
  it, and ``change_noise`` reshuffles. Each experiment changes a share of the queries drawn
  from ``spec.affected_share``, focused with probability ``spec.focus_prob`` on one query-length
  group (the rest of the stream then changes at a tenth of that rate).

## Online experiments
*Interleaving*: Team Draft interleaving (Radlinski, Kurup & Joachims) of the two top-``m``
lists with the *deduplicated binary* credit of Chapelle et al.: if A and B share their top
``k`` results, clicks on those ``k`` documents are ignored; each session's remaining clicks
credit the team that contributed the clicked document; the team with more credit wins the
session, equal credit is a tie. Over an experiment the outcome is the paper's Equation 1,
``s(e) = (wins_B + ties / 2) / (wins_A + wins_B + ties) - 1/2``, and the experiment is
*successful* when B wins significantly: the two-sided binomial sign test over the non-tied
sessions (``wins_B ~ Binomial(wins_A + wins_B, 1/2)`` under the null) gives ``p < alpha`` and
``wins_B > wins_A``.

*A/B test*: half of the sessions (``n // 2``) see A, the rest B; the metric is the
click-through rate (share of sessions with at least one click); success is a two-sided pooled
two-proportion z-test with ``p < alpha`` and ``CTR_B > CTR_A``. (With ``gamma = 1`` the
probability of a click-less page is the product of ``1 - a`` over the shown documents, so an A/B
test only sees *which* documents enter the top ``m``, not their order.)

Sessions are independent given the world, so the counts of an experiment of ``n`` sessions are
exactly ``Multinomial(n, (P_A wins, P_B wins, P_tie))`` (interleaving) or two binomials (A/B).
:meth:`SearchWorld.interleaving_probabilities` computes those probabilities *exactly*
(enumerating the ``2^ceil(m/2)`` equally likely Team Draft coin sequences of each affected query
and running the cascade as a dynamic programme over the credit difference), so full-size
experiments (up to 10^8 sessions) are sampled from their exact law in O(1);
:meth:`SearchWorld.simulate_interleaving` / :meth:`SearchWorld.simulate_ab` simulate the same
experiment session by session (vectorised NumPy, no Python loop per session) and agree with it
in distribution.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import special, stats

__all__ = [
    "GROUP_NAMES",
    "TEAM_A",
    "TEAM_B",
    "ABOutcome",
    "ABSessions",
    "CandidateRanker",
    "ClickLog",
    "InterleavingOutcome",
    "InterleavingSessions",
    "InterleavingTable",
    "QueueWorldSpec",
    "SearchWorld",
    "ab_power",
    "ab_test",
    "cascade_clicks",
    "check_rng",
    "check_sessions",
    "common_prefix_length",
    "credit_outcome",
    "dedup_teams",
    "enumerate_team_draft",
    "interleaving_outcome_distribution",
    "interleaving_power",
    "interleaving_test",
    "team_draft",
    "top_m",
]

TEAM_A = -1
"""Team label of a document contributed by ranker A (the sign of its credit in ``B - A``)."""
TEAM_B = 1
"""Team label of a document contributed by ranker B."""

GROUP_NAMES = ("len1", "len2", "len3+")
"""Query-length groups (one, two, three or more terms); ``SearchWorld.query_group`` indexes them."""

ExperimentType = Literal["interleaving", "ab"]

# Hidden generative constants of the world (documented in the module docstring).
_REL_LEVEL_MEAN, _REL_LEVEL_SD, _REL_SD = 0.8, 0.6, 1.1
_ATTR_FLOOR, _ATTR_SPAN, _ATTR_SLOPE, _ATTR_MID = 0.02, 0.6, 1.2, 3.0
_SAT_FLOOR, _SAT_SPAN, _SAT_SLOPE, _SAT_MID = 0.05, 0.85, 1.5, 2.5
_SPILLOVER = 0.1

# Paper-shaped defaults per experiment type (Table 1 of the paper; see QueueWorldSpec).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "interleaving": {
        "n_experiments": 82,
        "success_share": 31 / 82,
        "interactions_median": 1_000_000,
        "interactions_sigma": 1.18,
        "interactions_min": 178_000,
        "interactions_max": 39_000_000,
    },
    "ab": {
        "n_experiments": 35,
        "success_share": 10 / 35,
        "interactions_median": 42_000_000,
        "interactions_sigma": 0.71,
        "interactions_min": 1_400_000,
        "interactions_max": 196_000_000,
    },
}
_TYPE_FIELDS = tuple(_TYPE_DEFAULTS["interleaving"])


# ----------------------------------------------------------------------------------------------
# Specification
# ----------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    rng = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"QueueWorldSpec.{name} must be an integer {rng}, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"QueueWorldSpec.{name} must be an integer {rng}, got {value!r}")
    return int(value)


def _check_real(
    name: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"QueueWorldSpec.{name} must be a real number in {interval}, got {type(value).__name__}"
        )
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(f"QueueWorldSpec.{name} must be in {interval}, got {value!r}")
    return v


@dataclass(frozen=True)
class QueueWorldSpec:
    """Parameters of the synthetic world and of the generated experiment dataset.

    Frozen and validated; invalid values raise ``ValueError`` (or ``TypeError`` for a wrong
    type) naming the field. The fields marked *type default* may be left ``None``: they are then
    filled from the paper's Table 1 for the chosen ``experiment_type``:

    | field | interleaving | ab |
    |---|---|---|
    | ``n_experiments`` | 82 | 35 |
    | ``success_share`` | 31/82 (0.378) | 10/35 (0.286) |
    | ``interactions_median`` | 1,000,000 | 42,000,000 |
    | ``interactions_sigma`` | 1.18 (mean 2M) | 0.71 (mean 54M) |
    | ``interactions_min`` / ``_max`` | 178K / 39M | 1.4M / 196M |

    :meth:`replace` with a new ``experiment_type`` re-applies that type's defaults to the
    type-default fields it does not set explicitly.

    Attributes:
        experiment_type: ``"interleaving"`` (Team Draft, deduplicated binary credit) or ``"ab"``
            (click-through rate).
        n_experiments: experiments in the dataset (type default).
        success_share: share of successful experiments (B significantly better than A at the
            experiment's full size) in the dataset (type default).
        fix_success_count: if true, the dataset holds exactly ``round(success_share *
            n_experiments)`` successful experiments: candidates are drawn from the generative
            model and kept until both the successful and the unsuccessful quota are full (a
            stratified draw; features are untouched). If false, the first ``n_experiments``
            candidates are kept and the share is whatever the model produces.
        n_queries: queries in the world (>= 3).
        docs_per_query: documents in each query's pool (>= list_length).
        list_length: results shown per page ``m`` (>= 5, the deepest metric cut-off; <= 16).
        query_length_probs: probabilities of query lengths 1, 2, 3, ... terms.
        popularity_sigma: log-normal spread of query popularity (>= 0).
        length_popularity_decay: how much rarer each extra query term makes a query (>= 0).
        user_noise: standard deviation of the users' private utility signal (>= 0).
        production_noise: noise of the production ranker A's scores (> 0).
        effect_mean, effect_sd: each candidate's ``effect`` (the weight of its change towards
            user utility, in score units) is ``N(effect_mean, effect_sd^2)``.
        change_noise: each candidate reshuffles its affected queries with noise
            ``U(0, change_noise)`` (>= 0).
        user_signal: each candidate's share of the users' private signal in its change
            direction is ``U(0, user_signal)`` (in [0, 1]).
        affected_share: ``(low, high)``, the share of (focus-group) queries a candidate changes
            is ``U(low, high)`` (0 < low <= high <= 1).
        focus_prob: probability that a candidate focuses on one query-length group.
        label_query_share: share of queries with relevance judgements (drawn by popularity).
        label_coverage: probability that a judged query's document in A's top ``m`` is labelled.
        label_coverage_tail: same for the query's other documents.
        label_noise: assessor noise: a label is ``clip(round(r + label_noise * N(0, 1)), 0, 4)``.
        relevant_grade: lowest label counted as relevant by Precision@k (1..4).
        log_sessions: sessions in the historical click log used to train the sDBN (>= 1).
        log_noise: the historical log shows the top ``m`` of ``score_A + log_noise * N(0, 1)``,
            drawn afresh per session (past production variants; >= 0).
        click_drift: users change between the log period and the experiments: the log's users
            have utility ``u + click_drift * N(0, 1)`` (fixed per query and document; >= 0).
        interactions_median, interactions_sigma, interactions_min, interactions_max: each
            experiment's deployment size (the user interactions it consumes) is
            ``clip(round(median * exp(sigma * N(0, 1))), min, max)`` (type defaults).
        significance_level: ``alpha`` of the success test (0 < alpha < 1; the paper's 0.05).
    """

    experiment_type: ExperimentType = "interleaving"
    n_experiments: int | None = None
    success_share: float | None = None
    fix_success_count: bool = True
    n_queries: int = 1000
    docs_per_query: int = 20
    list_length: int = 10
    query_length_probs: tuple[float, ...] = (0.30, 0.35, 0.20, 0.10, 0.05)
    popularity_sigma: float = 1.5
    length_popularity_decay: float = 0.5
    user_noise: float = 0.8
    production_noise: float = 1.0
    effect_mean: float = 0.0
    effect_sd: float = 0.05
    change_noise: float = 0.3
    user_signal: float = 0.6
    affected_share: tuple[float, float] = (0.02, 0.3)
    focus_prob: float = 0.5
    label_query_share: float = 0.3
    label_coverage: float = 0.9
    label_coverage_tail: float = 0.4
    label_noise: float = 0.7
    relevant_grade: int = 2
    log_sessions: int = 100_000
    log_noise: float = 0.5
    click_drift: float = 0.7
    interactions_median: int | None = None
    interactions_sigma: float | None = None
    interactions_min: int | None = None
    interactions_max: int | None = None
    significance_level: float = 0.05

    def __post_init__(self) -> None:
        if self.experiment_type not in ("interleaving", "ab"):
            raise ValueError(
                f"QueueWorldSpec.experiment_type must be 'interleaving' or 'ab', got {self.experiment_type!r}"
            )
        defaults = _TYPE_DEFAULTS[self.experiment_type]
        for name in _TYPE_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        s = object.__setattr__
        s(self, "n_experiments", _check_int("n_experiments", self.n_experiments, 1))
        s(self, "success_share", _check_real("success_share", self.success_share, 0.0, 1.0))
        if not isinstance(self.fix_success_count, (bool, np.bool_)):
            kind = type(self.fix_success_count).__name__
            raise TypeError(f"QueueWorldSpec.fix_success_count must be a bool, got {kind}")
        s(self, "fix_success_count", bool(self.fix_success_count))
        s(self, "n_queries", _check_int("n_queries", self.n_queries, 3))
        s(self, "list_length", _check_int("list_length", self.list_length, 5, 16))
        s(self, "docs_per_query", _check_int("docs_per_query", self.docs_per_query, self.list_length, 1000))
        probs = self.query_length_probs
        if not isinstance(probs, (tuple, list)) or len(probs) == 0:
            raise TypeError("QueueWorldSpec.query_length_probs must be a non-empty tuple of probabilities")
        probs = tuple(_check_real("query_length_probs", p, 0.0, 1.0) for p in probs)
        if abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError(f"QueueWorldSpec.query_length_probs must sum to 1, got sum {sum(probs)!r}")
        s(self, "query_length_probs", probs)
        s(self, "popularity_sigma", _check_real("popularity_sigma", self.popularity_sigma, 0.0, 10.0))
        s(
            self,
            "length_popularity_decay",
            _check_real("length_popularity_decay", self.length_popularity_decay, 0.0, 10.0),
        )
        s(self, "user_noise", _check_real("user_noise", self.user_noise, 0.0, 10.0))
        s(
            self,
            "production_noise",
            _check_real("production_noise", self.production_noise, 0.0, 10.0, low_open=True),
        )
        s(self, "effect_mean", _check_real("effect_mean", self.effect_mean, -10.0, 10.0))
        s(self, "effect_sd", _check_real("effect_sd", self.effect_sd, 0.0, 10.0))
        s(self, "change_noise", _check_real("change_noise", self.change_noise, 0.0, 10.0))
        s(self, "user_signal", _check_real("user_signal", self.user_signal, 0.0, 1.0))
        share = self.affected_share
        if not isinstance(share, (tuple, list)) or len(share) != 2:
            raise TypeError("QueueWorldSpec.affected_share must be a (low, high) pair")
        lo = _check_real("affected_share", share[0], 0.0, 1.0, low_open=True)
        hi = _check_real("affected_share", share[1], 0.0, 1.0, low_open=True)
        if lo > hi:
            raise ValueError(f"QueueWorldSpec.affected_share must satisfy low <= high, got {tuple(share)!r}")
        s(self, "affected_share", (lo, hi))
        s(self, "focus_prob", _check_real("focus_prob", self.focus_prob, 0.0, 1.0))
        s(
            self,
            "label_query_share",
            _check_real("label_query_share", self.label_query_share, 0.0, 1.0, low_open=True),
        )
        s(self, "label_coverage", _check_real("label_coverage", self.label_coverage, 0.0, 1.0))
        s(self, "label_coverage_tail", _check_real("label_coverage_tail", self.label_coverage_tail, 0.0, 1.0))
        s(self, "label_noise", _check_real("label_noise", self.label_noise, 0.0, 10.0))
        s(self, "relevant_grade", _check_int("relevant_grade", self.relevant_grade, 1, 4))
        s(self, "log_sessions", _check_int("log_sessions", self.log_sessions, 1))
        s(self, "log_noise", _check_real("log_noise", self.log_noise, 0.0, 10.0))
        s(self, "click_drift", _check_real("click_drift", self.click_drift, 0.0, 10.0))
        s(self, "interactions_median", _check_int("interactions_median", self.interactions_median, 1))
        s(self, "interactions_sigma", _check_real("interactions_sigma", self.interactions_sigma, 0.0, 5.0))
        s(self, "interactions_min", _check_int("interactions_min", self.interactions_min, 1))
        s(self, "interactions_max", _check_int("interactions_max", self.interactions_max, 1))
        if not self.interactions_min <= self.interactions_median <= self.interactions_max:
            raise ValueError(
                "QueueWorldSpec.interactions_median must lie in [interactions_min, interactions_max], got "
                f"min={self.interactions_min}, median={self.interactions_median}, max={self.interactions_max}"
            )
        s(
            self,
            "significance_level",
            _check_real(
                "significance_level", self.significance_level, 0.0, 1.0, low_open=True, high_open=True
            ),
        )

    def replace(self, **changes: Any) -> QueueWorldSpec:
        """A validated copy with some fields changed; unknown names raise ``TypeError``.

        Changing ``experiment_type`` resets the type-default fields not given in ``changes``
        to the new type's defaults.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"QueueWorldSpec has no field(s) {unknown}; fields are {sorted(names)}")
        if "experiment_type" in changes and changes["experiment_type"] != self.experiment_type:
            for name in _TYPE_FIELDS:
                changes.setdefault(name, None)
        return dataclasses.replace(self, **changes)

    @property
    def n_successful(self) -> int:
        """Successful experiments in a dataset generated with ``fix_success_count``."""
        return int(round(self.success_share * self.n_experiments))

    @property
    def n_rounds(self) -> int:
        """Team Draft rounds ``ceil(m / 2)``; an interleaving draws ``2^n_rounds`` coin sequences."""
        return (self.list_length + 1) // 2


# ----------------------------------------------------------------------------------------------
# Team Draft interleaving and deduplicated binary credit
# ----------------------------------------------------------------------------------------------


def team_draft(
    ranking_a: np.ndarray,
    ranking_b: np.ndarray,
    coins: np.ndarray,
    length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Team Draft interleaving of many pairs of result lists at once.

    Implements Radlinski, Kurup & Joachims' algorithm row by row: while both lists still have a
    document not yet in the interleaved list, the team with fewer picks picks next (when the
    teams are level, a coin decides: ``coins[row, j]`` is true when A picks first in the
    ``j``-th level round); a team picks its highest-ranked document not yet shown.

    Args:
        ranking_a, ranking_b: ``(N, k)`` integer document ids (each row without repeats; ids
            non-negative; negative entries are padding and never picked).
        coins: ``(N, R)`` booleans with ``R >= ceil(length / 2)``.
        length: length of the interleaved lists (default ``k``).

    Returns:
        ``(docs, teams)``: ``(N, length)`` document ids (``-1`` where a row ended early because
        a list ran out) and team labels (:data:`TEAM_A`, :data:`TEAM_B`, 0 for padding).
    """
    ra = np.asarray(ranking_a).astype(np.int64)
    rb = np.asarray(ranking_b).astype(np.int64)
    coins = np.asarray(coins, dtype=bool)
    if ra.ndim != 2 or rb.ndim != 2 or ra.shape[0] != rb.shape[0]:
        raise ValueError(f"ranking_a and ranking_b must be (N, k) arrays, got {ra.shape} and {rb.shape}")
    n, ka = ra.shape
    kb = rb.shape[1]
    if length is None:
        length = max(ka, kb)
    if coins.ndim != 2 or coins.shape[0] != n or coins.shape[1] < (length + 1) // 2:
        raise ValueError(f"coins must have shape ({n}, >= {(length + 1) // 2}), got {coins.shape}")
    rows = np.arange(n)
    # used_x[row, i]: the document at position i of list x is already interleaved. A last,
    # always-used column is the target of documents that the other list does not contain.
    used_a = np.ones((n, ka + 1), dtype=bool)
    used_a[:, :ka] = ra < 0
    used_b = np.ones((n, kb + 1), dtype=bool)
    used_b[:, :kb] = rb < 0
    same = (ra[:, :, None] == rb[:, None, :]) & (ra[:, :, None] >= 0)  # (n, ka, kb)
    partner_a = np.where(same.any(axis=2), same.argmax(axis=2), kb)  # A position -> B position
    partner_b = np.where(same.any(axis=1), same.argmax(axis=1), ka)  # B position -> A position
    docs = np.full((n, length), -1, dtype=np.int64)
    teams = np.zeros((n, length), dtype=np.int8)
    count_a = np.zeros(n, dtype=np.int64)
    count_b = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    coin_cols = coins.shape[1]
    for t in range(length):
        active &= ~used_a[:, :ka].all(axis=1) & ~used_b[:, :kb].all(axis=1)
        if not active.any():
            break
        coin = coins[rows, np.minimum(count_a, coin_cols - 1)]
        pick_a = (count_a < count_b) | ((count_a == count_b) & coin)
        pos_a = used_a.argmin(axis=1)
        pos_b = used_b.argmin(axis=1)
        ra_rows, rb_rows = rows[active & pick_a], rows[active & ~pick_a]
        pa, pb = pos_a[ra_rows], pos_b[rb_rows]
        used_a[ra_rows, pa] = True
        used_b[ra_rows, partner_a[ra_rows, pa]] = True
        used_b[rb_rows, pb] = True
        used_a[rb_rows, partner_b[rb_rows, pb]] = True
        docs[ra_rows, t] = ra[ra_rows, pa]
        docs[rb_rows, t] = rb[rb_rows, pb]
        teams[ra_rows, t] = TEAM_A
        teams[rb_rows, t] = TEAM_B
        count_a += active & pick_a
        count_b += active & ~pick_a
    return docs, teams


def common_prefix_length(ranking_a: np.ndarray, ranking_b: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per row, the number ``k`` of top positions where A and B show the same documents."""
    ra = np.asarray(ranking_a)
    rb = np.asarray(ranking_b)
    width = min(ra.shape[-1], rb.shape[-1]) if k is None else k
    same = (ra[..., :width] == rb[..., :width]) & (ra[..., :width] >= 0)
    return np.cumprod(same, axis=-1).sum(axis=-1)


def dedup_teams(
    docs: np.ndarray, teams: np.ndarray, ranking_a: np.ndarray, ranking_b: np.ndarray
) -> np.ndarray:
    """Credit teams after deduplication: 0 for documents in A and B's common top prefix.

    ``docs``/``teams`` are ``(N, L)`` (as from :func:`team_draft`), the rankings ``(N, k)``.
    """
    ra = np.asarray(ranking_a)
    k = common_prefix_length(ra, ranking_b)
    width = ra.shape[1]
    in_prefix = (docs[:, :, None] == ra[:, None, :]) & (np.arange(width)[None, None, :] < k[:, None, None])
    return np.where(in_prefix.any(axis=2), 0, teams).astype(np.int8)


def credit_outcome(credit_teams: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated binary credit of interleaved sessions.

    Args:
        credit_teams: ``(N, L)`` teams after :func:`dedup_teams` (0 = ignored position).
        clicks: ``(N, L)`` booleans.

    Returns:
        ``(credit_a, credit_b, outcome)``: clicks credited to each team and the session outcome
        ``sign(credit_b - credit_a)`` (+1 B wins, -1 A wins, 0 tie).
    """
    clicks = np.asarray(clicks, dtype=bool)
    credit_a = (clicks & (credit_teams == TEAM_A)).sum(axis=1)
    credit_b = (clicks & (credit_teams == TEAM_B)).sum(axis=1)
    return credit_a, credit_b, np.sign(credit_b - credit_a).astype(np.int8)


def enumerate_team_draft(
    ranking_a: np.ndarray, ranking_b: np.ndarray, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All ``2^R`` equally likely Team Draft interleavings of each row (``R = ceil(length/2)``).

    Returns ``(docs, teams)`` of shape ``(N, 2^R, length)``; pattern ``p`` uses the coins given
    by the bits of ``p`` (bit ``j`` set: A picks first in level round ``j``). Each pattern has
    probability ``2^-R`` (different patterns may give the same list).
    """
    ra = np.asarray(ranking_a)
    rb = np.asarray(ranking_b)
    n = ra.shape[0]
    if length is None:
        length = max(ra.shape[1], rb.shape[1])
    r = (length + 1) // 2
    p = 1 << r
    patterns = ((np.arange(p)[:, None] >> np.arange(r)[None, :]) & 1).astype(bool)  # (P, R)
    coins = np.broadcast_to(patterns[None], (n, p, r)).reshape(n * p, r)
    docs, teams = team_draft(np.repeat(ra, p, axis=0), np.repeat(rb, p, axis=0), coins, length)
    return docs.reshape(n, p, length), teams.reshape(n, p, length)


def interleaving_outcome_distribution(
    attractiveness: np.ndarray, satisfaction: np.ndarray, credit_teams: np.ndarray
) -> np.ndarray:
    """Exact distribution of an interleaved session's outcome under the sDBN (``gamma = 1``).

    Args:
        attractiveness, satisfaction: ``(..., L)`` click-model parameters of the shown
            documents, top first (0 for padding positions).
        credit_teams: ``(..., L)`` credited team per position (0 = ignored).

    Returns:
        ``(..., 3)`` probabilities of (A wins, B wins, tie).
    """
    a = np.asarray(attractiveness, dtype=float)
    s = np.asarray(satisfaction, dtype=float)
    t = np.asarray(credit_teams)
    length = a.shape[-1]
    width = 2 * length + 1
    centre = length
    lead = a.shape[:-1]
    going = np.zeros((*lead, width))  # still examining, by credit difference B - A
    going[..., centre] = 1.0
    done = np.zeros_like(going)
    for r in range(length):
        ar = a[..., r, None]
        sr = s[..., r, None]
        tr = t[..., r, None]
        up = np.zeros_like(going)
        up[..., 1:] = going[..., :-1]
        down = np.zeros_like(going)
        down[..., :-1] = going[..., 1:]
        shifted = np.where(tr == TEAM_B, up, np.where(tr == TEAM_A, down, going))
        clicked = shifted * ar
        done += clicked * sr
        going = going * (1.0 - ar) + clicked * (1.0 - sr)
    total = going + done
    return np.stack(
        [total[..., :centre].sum(-1), total[..., centre + 1 :].sum(-1), total[..., centre]], axis=-1
    )


def cascade_clicks(
    attractiveness: np.ndarray, satisfaction: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sample sDBN (``gamma = 1``) clicks for a batch of result pages.

    ``attractiveness``/``satisfaction`` are ``(N, L)`` per shown position (0 for padding).
    Returns ``(N, L)`` boolean clicks: position ``r`` is examined unless an earlier click
    satisfied the user; an examined document is clicked with probability ``a`` and a click
    satisfies with probability ``s``.
    """
    a = np.asarray(attractiveness, dtype=float)
    u = rng.random((2, *a.shape))
    attracted = u[0] < a
    stops = attracted & (u[1] < np.asarray(satisfaction, dtype=float))
    examined = np.ones(a.shape, dtype=bool)
    examined[:, 1:] = np.cumsum(stops[:, :-1], axis=1) == 0
    return examined & attracted


# ----------------------------------------------------------------------------------------------
# Significance tests and outcomes
# ----------------------------------------------------------------------------------------------


class InterleavingOutcome(NamedTuple):
    """An interleaving experiment's counts and verdict (arrays when vectorised).

    Attributes:
        n_sessions: sessions run.
        wins_a, wins_b, ties: session counts.
        statistic: Equation 1, ``(wins_b + ties / 2) / n - 1/2`` (0 for ``n = 0``).
        z: sign-test z score ``(wins_b - wins_a) / sqrt(wins_a + wins_b)`` (0 without wins).
        p_value: two-sided binomial sign test over the non-tied sessions.
        success: ``p_value < alpha and wins_b > wins_a``.
    """

    n_sessions: Any
    wins_a: Any
    wins_b: Any
    ties: Any
    statistic: Any
    z: Any
    p_value: Any
    success: Any


class ABOutcome(NamedTuple):
    """An A/B test's counts and verdict (arrays when vectorised).

    Attributes:
        n_sessions: sessions run (``sessions_a + sessions_b``).
        sessions_a, clicks_a, sessions_b, clicks_b: per-arm sessions and sessions with a click.
        statistic: ``CTR_B - CTR_A`` (the paper's ``sigma_B - sigma_A``).
        z: pooled two-proportion z score.
        p_value: two-sided p-value of the z-test.
        success: ``p_value < alpha and CTR_B > CTR_A``.
    """

    n_sessions: Any
    sessions_a: Any
    clicks_a: Any
    sessions_b: Any
    clicks_b: Any
    statistic: Any
    z: Any
    p_value: Any
    success: Any


def interleaving_test(wins_a: Any, wins_b: Any, ties: Any, alpha: float) -> InterleavingOutcome:
    """Equation 1 and the two-sided sign test for (arrays of) interleaving counts."""
    wa = np.asarray(wins_a, dtype=np.int64)
    wb = np.asarray(wins_b, dtype=np.int64)
    tt = np.asarray(ties, dtype=np.int64)
    n = wa + wb + tt
    decided = wa + wb
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.where(n > 0, (wb + 0.5 * tt) / np.maximum(n, 1) - 0.5, 0.0)
        z = np.where(decided > 0, (wb - wa) / np.sqrt(np.maximum(decided, 1)), 0.0)
    lo = np.minimum(wa, wb)
    p = np.where(decided > 0, np.minimum(1.0, 2.0 * stats.binom.cdf(lo, np.maximum(decided, 1), 0.5)), 1.0)
    p = np.where(wa == wb, 1.0, p)
    success = (p < alpha) & (wb > wa)
    return InterleavingOutcome(n, wa, wb, tt, statistic, z, p, success)


def ab_test(sessions_a: Any, clicks_a: Any, sessions_b: Any, clicks_b: Any, alpha: float) -> ABOutcome:
    """Click-through-rate difference and the two-sided pooled two-proportion z-test."""
    na = np.asarray(sessions_a, dtype=np.int64)
    ca = np.asarray(clicks_a, dtype=np.int64)
    nb = np.asarray(sessions_b, dtype=np.int64)
    cb = np.asarray(clicks_b, dtype=np.int64)
    ok = (na > 0) & (nb > 0)
    fa = ca / np.maximum(na, 1)
    fb = cb / np.maximum(nb, 1)
    pooled = (ca + cb) / np.maximum(na + nb, 1)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / np.maximum(na, 1) + 1.0 / np.maximum(nb, 1)))
    statistic = np.where(ok, fb - fa, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(ok & (se > 0), statistic / np.where(se > 0, se, 1.0), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    success = (p < alpha) & (statistic > 0)
    return ABOutcome(na + nb, na, ca, nb, cb, statistic, z, p, success)


def interleaving_power(probs: np.ndarray, n_sessions: Any, alpha: float) -> np.ndarray:
    """Probability ``P(e)`` that an interleaving experiment of ``n`` sessions succeeds.

    ``probs`` is ``(..., 3)`` (A wins, B wins, tie). Normal approximation of the sign test:
    ``X = wins_B - wins_A`` has mean ``n (p_B - p_A)`` and variance
    ``n (p_A + p_B - (p_B - p_A)^2)``; success is ``X > z_{1 - alpha/2} sqrt(n (p_A + p_B))``.
    """
    probs = np.asarray(probs, dtype=float)
    n = np.asarray(n_sessions, dtype=float)
    pa, pb = probs[..., 0], probs[..., 1]
    d = pb - pa
    zc = stats.norm.isf(alpha / 2.0)
    var = np.maximum(n * (pa + pb - d * d), 1e-300)
    return stats.norm.cdf((n * d - zc * np.sqrt(n * (pa + pb))) / np.sqrt(var))


def ab_power(ctr: np.ndarray, n_sessions: Any, alpha: float) -> np.ndarray:
    """Probability ``P(e)`` that an A/B test of ``n`` sessions (``n // 2`` on A) succeeds.

    ``ctr`` is ``(..., 2)`` true click-through rates (A, B). Normal approximation of the
    z-test: ``CTR_B - CTR_A`` must exceed ``z_{1 - alpha/2}`` pooled standard errors.
    """
    ctr = np.asarray(ctr, dtype=float)
    n = np.asarray(n_sessions, dtype=float)
    na = np.floor(n / 2.0)
    nb = n - na
    pa, pb = ctr[..., 0], ctr[..., 1]
    pooled = (na * pa + nb * pb) / np.maximum(n, 1)
    zc = stats.norm.isf(alpha / 2.0)
    inv = 1.0 / np.maximum(na, 1) + 1.0 / np.maximum(nb, 1)
    se0 = np.sqrt(pooled * (1 - pooled) * inv)
    se1 = np.maximum(np.sqrt(pa * (1 - pa) / np.maximum(na, 1) + pb * (1 - pb) / np.maximum(nb, 1)), 1e-300)
    return stats.norm.cdf((pb - pa - zc * se0) / se1)


# ----------------------------------------------------------------------------------------------
# Sessions and logs
# ----------------------------------------------------------------------------------------------


class InterleavingSessions(NamedTuple):
    """Sessions of an interleaving experiment, one row per session.

    Attributes:
        query: ``(n,)`` query ids.
        coins: ``(n, R)`` the session's Team Draft coins (true: A picks first in level round j).
        docs: ``(n, m)`` interleaved document ids.
        teams: ``(n, m)`` contributing team (:data:`TEAM_A` / :data:`TEAM_B`).
        credit_teams: ``(n, m)`` teams after deduplication (0 = ignored).
        clicks: ``(n, m)`` booleans.
        credit_a, credit_b: ``(n,)`` credited clicks.
        outcome: ``(n,)`` +1 B wins, -1 A wins, 0 tie.
    """

    query: np.ndarray
    coins: np.ndarray
    docs: np.ndarray
    teams: np.ndarray
    credit_teams: np.ndarray
    clicks: np.ndarray
    credit_a: np.ndarray
    credit_b: np.ndarray
    outcome: np.ndarray

    def counts(self) -> tuple[int, int, int]:
        """``(wins_a, wins_b, ties)``."""
        o = self.outcome
        return int((o < 0).sum()), int((o > 0).sum()), int((o == 0).sum())


class ABSessions(NamedTuple):
    """Sessions of an A/B test, one row per session.

    Attributes:
        query: ``(n,)`` query ids.
        arm: ``(n,)`` 0 for A, 1 for B (the first ``n // 2`` sessions are A's).
        docs: ``(n, m)`` shown document ids.
        clicks: ``(n, m)`` booleans.
    """

    query: np.ndarray
    arm: np.ndarray
    docs: np.ndarray
    clicks: np.ndarray

    def counts(self) -> tuple[int, int, int, int]:
        """``(sessions_a, clicked_a, sessions_b, clicked_b)``."""
        clicked = self.clicks.any(axis=1)
        b = self.arm == 1
        return int((~b).sum()), int(clicked[~b].sum()), int(b.sum()), int(clicked[b].sum())


class InterleavingTable(NamedTuple):
    """All ``P = 2^ceil(m/2)`` equally likely Team Draft interleavings of some queries.

    Attributes:
        queries: ``(n,)`` query ids.
        docs: ``(n, P, m)`` interleaved documents; pattern ``p``'s bit ``j`` is the coin of
            level round ``j`` (set: A picks first).
        teams: ``(n, P, m)`` contributing teams.
        credit_teams: ``(n, P, m)`` teams after deduplication (0 = ignored).
    """

    queries: np.ndarray
    docs: np.ndarray
    teams: np.ndarray
    credit_teams: np.ndarray


class ClickLog(NamedTuple):
    """A click log: ``query`` ``(n,)``, shown ``docs`` ``(n, m)`` and ``clicks`` ``(n, m)``."""

    query: np.ndarray
    docs: np.ndarray
    clicks: np.ndarray


# ----------------------------------------------------------------------------------------------
# The world
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CandidateRanker:
    """A candidate ranker B (a change to production A) and the parameters that made it.

    Attributes:
        ranking: ``(Q, m)`` top-``m`` document ids per query (equal to A's where unaffected).
        affected: ``(Q,)`` queries whose scores the change touched.
        effect: weight of the change towards user utility (< 0 moves away from it).
        user_signal: share of the users' private signal in the change direction.
        change_noise: standard deviation of the change's reshuffling noise.
        affected_share: share of (focus) queries changed.
        focus_group: the query-length group the change focuses on (index into
            :data:`GROUP_NAMES`), or -1 for the whole stream.
    """

    ranking: np.ndarray
    affected: np.ndarray
    effect: float
    user_signal: float
    change_noise: float
    affected_share: float
    focus_group: int


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else ``TypeError``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_sessions(n: Any, name: str = "n_sessions", low: int = 0) -> int:
    """Validate a number of sessions (an integer >= ``low``)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(n).__name__}")
    if n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n!r}")
    return int(n)


@dataclass(frozen=True, eq=False)
class SearchWorld:
    """The hidden synthetic search world (see the module docstring for the model).

    Build it with :meth:`generate`. All arrays are read-only.

    Attributes:
        spec: the generating :class:`QueueWorldSpec`.
        query_length: ``(Q,)`` number of terms of each query.
        query_weight: ``(Q,)`` probability that a session issues the query.
        relevance: ``(Q, D)`` hidden graded relevance 0..4.
        user_signal: ``(Q, D)`` users' private utility signal ``eps`` (standard normal).
        attractiveness, satisfaction: ``(Q, D)`` true sDBN parameters (experiment period).
        log_attractiveness, log_satisfaction: ``(Q, D)`` the same for the earlier period of the
            historical click log (differing by ``spec.click_drift``).
        production_scores: ``(Q, D)`` scores of the production ranker A.
        production_ranking: ``(Q, m)`` A's top-``m`` documents.
    """

    spec: QueueWorldSpec
    query_length: np.ndarray
    query_weight: np.ndarray
    relevance: np.ndarray
    user_signal: np.ndarray
    attractiveness: np.ndarray
    satisfaction: np.ndarray
    log_attractiveness: np.ndarray
    log_satisfaction: np.ndarray
    production_scores: np.ndarray
    production_ranking: np.ndarray

    @classmethod
    def generate(cls, spec: QueueWorldSpec | None, rng: np.random.Generator) -> SearchWorld:
        """Draw a world from ``spec`` (default ``QueueWorldSpec()``) using ``rng`` only."""
        spec = QueueWorldSpec() if spec is None else spec
        if not isinstance(spec, QueueWorldSpec):
            raise TypeError(f"spec must be a QueueWorldSpec, got {type(spec).__name__}")
        check_rng(rng)
        nq, nd = spec.n_queries, spec.docs_per_query
        probs = np.asarray(spec.query_length_probs)
        lengths = 1 + rng.choice(probs.size, size=nq, p=probs / probs.sum())
        log_w = -spec.length_popularity_decay * (lengths - 1) + spec.popularity_sigma * rng.standard_normal(
            nq
        )
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        level = rng.normal(_REL_LEVEL_MEAN, _REL_LEVEL_SD, size=(nq, 1))
        rel = np.clip(np.rint(level + _REL_SD * rng.standard_normal((nq, nd))), 0, 4).astype(np.int8)
        eps = rng.standard_normal((nq, nd))
        utility = rel + spec.user_noise * eps
        attr, sat = _click_model(utility)
        log_attr, log_sat = _click_model(utility + spec.click_drift * rng.standard_normal((nq, nd)))
        scores = rel + spec.production_noise * rng.standard_normal((nq, nd))
        ranking = top_m(scores, spec.list_length)
        return cls(
            spec=spec,
            query_length=_readonly(lengths.astype(np.int64)),
            query_weight=_readonly(w),
            relevance=_readonly(rel),
            user_signal=_readonly(eps),
            attractiveness=_readonly(attr),
            satisfaction=_readonly(sat),
            log_attractiveness=_readonly(log_attr),
            log_satisfaction=_readonly(log_sat),
            production_scores=_readonly(scores),
            production_ranking=_readonly(ranking),
        )

    # ------------------------------------------------------------------ basic views
    @property
    def n_queries(self) -> int:
        return self.relevance.shape[0]

    @property
    def n_docs(self) -> int:
        return self.relevance.shape[1]

    @property
    def list_length(self) -> int:
        return self.production_ranking.shape[1]

    @property
    def query_group(self) -> np.ndarray:
        """``(Q,)`` query-length group: 0 (one term), 1 (two), 2 (three or more)."""
        return np.minimum(self.query_length, 3) - 1

    # ------------------------------------------------------------------ candidates
    def draw_candidate(self, rng: np.random.Generator) -> CandidateRanker:
        """Draw a candidate ranker B from the spec's change distribution (see module docstring)."""
        spec = self.spec
        check_rng(rng)
        effect = float(rng.normal(spec.effect_mean, spec.effect_sd))
        kappa = float(rng.uniform(0.0, spec.user_signal))
        tau = float(rng.uniform(0.0, spec.change_noise))
        share = float(rng.uniform(*spec.affected_share))
        focus = int(rng.integers(len(GROUP_NAMES))) if rng.random() < spec.focus_prob else -1
        if focus < 0:
            rate = np.full(self.n_queries, share)
        else:
            rate = np.where(self.query_group == focus, share, share * _SPILLOVER)
        affected = rng.random(self.n_queries) < rate
        idx = np.flatnonzero(affected)
        ranking = np.array(self.production_ranking)
        if idx.size:
            rel_all = self.relevance
            rel_std = (self.relevance[idx] - rel_all.mean()) / max(float(rel_all.std()), 1e-9)
            direction = (1.0 - kappa) * rel_std + kappa * self.user_signal[idx]
            noise = rng.standard_normal((idx.size, self.n_docs))
            scores = self.production_scores[idx] + effect * direction + tau * noise
            ranking[idx] = top_m(scores, self.list_length)
        return CandidateRanker(
            ranking=_readonly(ranking),
            affected=_readonly(affected),
            effect=effect,
            user_signal=kappa,
            change_noise=tau,
            affected_share=share,
            focus_group=focus,
        )

    def changed_queries(self, ranking_b: np.ndarray) -> np.ndarray:
        """``(Q,)`` queries where B's top ``m`` differs from A's (position by position)."""
        return np.any(np.asarray(ranking_b) != self.production_ranking, axis=1)

    # ------------------------------------------------------------------ exact outcomes
    def interleaving_table(self, ranking_b: np.ndarray, queries: Any = None) -> InterleavingTable:
        """Every Team Draft interleaving of A and B for ``queries`` (default: the queries where
        B's page differs from A's); see :class:`InterleavingTable`."""
        rb_all = np.asarray(ranking_b)
        if queries is None:
            q = np.flatnonzero(self.changed_queries(rb_all))
        else:
            q = np.asarray(queries, dtype=np.int64).ravel()
        ra = self.production_ranking[q]
        rb = rb_all[q]
        docs, teams = enumerate_team_draft(ra, rb, self.list_length)
        p, m = docs.shape[1], docs.shape[2]
        credit = dedup_teams(
            docs.reshape(-1, m), teams.reshape(-1, m), np.repeat(ra, p, axis=0), np.repeat(rb, p, axis=0)
        )
        return InterleavingTable(q, docs, teams, credit.reshape(teams.shape))

    def interleaving_probabilities(
        self, ranking_b: np.ndarray, *, per_query: bool = False, table: InterleavingTable | None = None
    ) -> np.ndarray:
        """Exact probabilities (A wins, B wins, tie) of one interleaved session of A vs B.

        Averaged over the query stream (``(3,)``), or per query (``(Q, 3)``) with
        ``per_query=True``. Queries where B's top ``m`` equals A's always tie (every click
        is on the deduplicated common prefix). ``table`` may pass the precomputed
        :meth:`interleaving_table` of the changed queries.
        """
        out = np.zeros((self.n_queries, 3))
        out[:, 2] = 1.0
        tab = self.interleaving_table(ranking_b) if table is None else table
        q = tab.queries
        if q.size:
            a = self.attractiveness[q[:, None, None], tab.docs]
            s = self.satisfaction[q[:, None, None], tab.docs]
            out[q] = interleaving_outcome_distribution(a, s, tab.credit_teams).mean(axis=1)
        if per_query:
            return out
        return self.query_weight @ out

    def click_through_rate(self, ranking: np.ndarray, *, per_query: bool = False) -> np.ndarray | float:
        """Exact probability that a page of ``ranking`` gets at least one click."""
        a = np.take_along_axis(self.attractiveness, np.asarray(ranking, dtype=np.int64), axis=1)
        ctr = 1.0 - np.prod(1.0 - a, axis=1)
        return ctr if per_query else float(self.query_weight @ ctr)

    # ------------------------------------------------------------------ session simulation
    def sample_queries(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` query ids drawn from the popularity distribution."""
        cdf = np.cumsum(self.query_weight)
        return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), self.n_queries - 1)

    def simulate_interleaving(
        self,
        ranking_b: np.ndarray,
        n_sessions: int,
        rng: np.random.Generator,
        *,
        table: InterleavingTable | None = None,
        batch: int = 200_000,
    ) -> InterleavingSessions:
        """Simulate ``n_sessions`` Team Draft sessions of A vs ``ranking_b``, session by session.

        Each session draws a query and fresh coins, gets the Team Draft list of those coins
        (from the precomputed :meth:`interleaving_table`, passed as ``table`` or built here),
        samples sDBN clicks and applies the deduplicated binary credit. Vectorised in batches
        of ``batch`` sessions (no Python loop per session).
        """
        n = check_sessions(n_sessions)
        check_rng(rng)
        tab = self.interleaving_table(ranking_b) if table is None else table
        row_of = np.full(self.n_queries, -1, dtype=np.int64)
        row_of[tab.queries] = np.arange(tab.queries.size)
        m, r = self.list_length, self.spec.n_rounds
        bits = 1 << np.arange(r)
        parts = []
        for start in range(0, max(n, 1), batch):
            k = min(batch, n - start)
            q = self.sample_queries(k, rng)
            coins = rng.random((k, r)) < 0.5
            docs = self.production_ranking[q].astype(np.int64)
            # Identical lists interleave as A's list; in level round j the coin's winner takes
            # position 2j and the other team 2j + 1; deduplication then ignores every click.
            first = np.repeat(np.where(coins, TEAM_A, TEAM_B), 2, axis=1)[:, :m]
            teams = np.where(np.arange(m) % 2 == 0, first, -first).astype(np.int8)
            credit_teams = np.zeros((k, m), dtype=np.int8)
            rows = np.flatnonzero(row_of[q] >= 0)
            if rows.size:
                # Changed queries: the interleaving of these coins, looked up in the table of
                # all 2^R coin sequences (pattern bit j = coin of level round j).
                t_row = row_of[q[rows]]
                pattern = coins[rows] @ bits
                docs[rows] = tab.docs[t_row, pattern]
                teams[rows] = tab.teams[t_row, pattern]
                credit_teams[rows] = tab.credit_teams[t_row, pattern]
            clicks = cascade_clicks(
                self.attractiveness[q[:, None], docs], self.satisfaction[q[:, None], docs], rng
            )
            ca, cb, outcome = credit_outcome(credit_teams, clicks)
            parts.append(InterleavingSessions(q, coins, docs, teams, credit_teams, clicks, ca, cb, outcome))
        if len(parts) == 1:
            return parts[0]
        return InterleavingSessions(*(np.concatenate(f) for f in zip(*parts, strict=True)))

    def simulate_ab(self, ranking_b: np.ndarray, n_sessions: int, rng: np.random.Generator) -> ABSessions:
        """Simulate an A/B test of ``n_sessions`` sessions (first ``n // 2`` on A), session by session."""
        n = check_sessions(n_sessions)
        check_rng(rng)
        q = self.sample_queries(n, rng)
        arm = (np.arange(n) >= n // 2).astype(np.int8)
        docs = np.where(arm[:, None] == 1, np.asarray(ranking_b)[q], self.production_ranking[q])
        clicks = cascade_clicks(
            self.attractiveness[q[:, None], docs], self.satisfaction[q[:, None], docs], rng
        )
        return ABSessions(q, arm, docs, clicks)

    def simulate_log(self, n_sessions: int, rng: np.random.Generator) -> ClickLog:
        """A historical click log of past production variants (``spec.log_noise``) for the sDBN."""
        n = check_sessions(n_sessions)
        check_rng(rng)
        q = self.sample_queries(n, rng)
        scores = self.production_scores[q]
        if self.spec.log_noise > 0:
            scores = scores + self.spec.log_noise * rng.standard_normal(scores.shape)
        docs = top_m(scores, self.list_length)
        clicks = cascade_clicks(
            self.log_attractiveness[q[:, None], docs], self.log_satisfaction[q[:, None], docs], rng
        )
        return ClickLog(q, docs, clicks)

    def judge(self, rng: np.random.Generator) -> np.ndarray:
        """Offline relevance labels ``(Q, D)`` (int8, -1 = unlabelled); see the spec's ``label_*``."""
        spec = self.spec
        check_rng(rng)
        n_judged = max(1, int(round(spec.label_query_share * self.n_queries)))
        judged = rng.choice(self.n_queries, size=n_judged, replace=False, p=self.query_weight)
        in_top = np.zeros((self.n_queries, self.n_docs), dtype=bool)
        np.put_along_axis(in_top, self.production_ranking.astype(np.int64), True, axis=1)
        cover = np.where(in_top, spec.label_coverage, spec.label_coverage_tail)
        labelled = rng.random(cover.shape) < cover
        noisy = np.clip(np.rint(self.relevance + spec.label_noise * rng.standard_normal(cover.shape)), 0, 4)
        labels = np.full(cover.shape, -1, dtype=np.int8)
        mask = np.zeros(self.n_queries, dtype=bool)
        mask[judged] = True
        keep = labelled & mask[:, None]
        labels[keep] = noisy[keep].astype(np.int8)
        return _readonly(labels)


def _click_model(utility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sDBN attractiveness and satisfaction of documents of the given user utility."""
    attr = _ATTR_FLOOR + _ATTR_SPAN * special.expit(_ATTR_SLOPE * (utility - _ATTR_MID))
    sat = _SAT_FLOOR + _SAT_SPAN * special.expit(_SAT_SLOPE * (utility - _SAT_MID))
    return attr, sat


def top_m(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` highest scores per row, best first (``int16``)."""
    part = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int16)
