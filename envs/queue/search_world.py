"""A synthetic search engine for simulating online ranking experiments.

Everything in this module is **synthetic**: the query logs, relevance judgements and online
experiments of Kharitonov, Macdonald, Serdyukov & Ounis ("Optimised Scheduling of Online
Experiments", SIGIR 2015) are private, so the queue-scheduling environment generates its data
from the explicit generative model documented here. Nothing is fitted to real data; the
defaults only make the generated *dataset* resemble the paper's Table 1 in shape.

The module is split by job: :mod:`.world_spec` (the parameters), :mod:`.interleaving` (Team
Draft, credit, clicks), :mod:`.significance` (tests and power), :mod:`.records` (what the world
produces) and this module (the world itself); every public name is re-exported here.

## The world (:class:`SearchWorld`)
* ``n_queries`` queries. Query ``q`` has a length ``len_q`` (number of terms, drawn from
  ``spec.query_length_probs``) and a popularity ``w_q`` with
  ``log w_q = -length_popularity_decay * (len_q - 1) + popularity_sigma * N(0, 1)``, normalised
  to sum to one: sessions draw their query from ``w`` (short queries are the head of the stream).
* Each query has a pool of ``docs_per_query`` documents (ids ``0..D-1`` within the query) with a
  hidden graded relevance ``r in {0, .., 4}``: ``r = clip(round(z), 0, 4)`` with
  ``z ~ N(mu_q, 1.1^2)`` and a per-query level ``mu_q ~ N(0.8, 0.6^2)``.
* Users do not judge exactly like assessors: the *user utility* of a document is
  ``u = r + user_noise * eps + hidden_utility * eta`` with ``eps, eta ~ N(0, 1)`` per
  (query, document); ``eta`` is new in the experiment period (the historical log's users have
  ``r + user_noise * eps + click_drift * N(0, 1)`` instead), so no pre-experiment feature
  sees it.
* Documents have an attractiveness ``a = 0.02 + 0.6 * sigmoid(1.2 (u - 3))`` and a
  satisfaction ``s = 0.05 + 0.85 * sigmoid(1.5 (u - 2.5))``. How users browse a page is
  :mod:`labsched.envs.queue.users` (``spec.user_model``): by default a mixture of cascade users
  who may abandon the page and position-based browsers (they see the order of the page), of a
  different family from the sDBN of Chapelle & Zhang (no abandonment, ``gamma = 1``) that the
  features fit to the historical log; ``user_model="sdbn"`` makes the users that sDBN. The
  true ``(a, s)`` are hidden from the features, which only see the log.
* Rankers are score matrices over each query's documents; a ranker shows its top
  ``list_length`` documents. The production ranker ``A`` (shared by every experiment) scores
  ``r + production_noise * xi``.
* A candidate ranker ``B`` (:meth:`SearchWorld.draw_candidate`) changes ``A`` on a random set of
  *affected* queries: ``score_B = score_A + effect * g + change_noise * xi'``, where the
  direction ``g = (1 - user_signal) * r_std + user_signal * eps`` mixes the standardised
  relevance (visible to assessors) with the users' private signal ``eps`` (visible only through
  clicks), plus ``hidden_effect * eta`` (visible to nobody before the experiment). ``effect``
  and ``hidden_effect`` are heavy tailed (Student-t, ``spec.effect_df``) and independent;
  > 0 moves the ranking towards what users want, < 0 away from it, and ``change_noise``
  reshuffles. Each experiment changes a share of the queries drawn
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
two-proportion z-test with ``p < alpha`` and ``CTR_B > CTR_A``. (With sDBN users the
probability of a click-less page is the product of ``1 - a`` over the shown documents, so an A/B
test only sees *which* documents enter the top ``m``; the default browsing users also see their
order.)

Sessions are independent given the world, so the counts of an experiment of ``n`` sessions are
exactly ``Multinomial(n, (P_A wins, P_B wins, P_tie))`` (interleaving) or two binomials (A/B).
:meth:`SearchWorld.interleaving_probabilities` computes those probabilities *exactly*
(enumerating the ``2^ceil(m/2)`` equally likely Team Draft coin sequences of each affected query
and running each kind of user as a dynamic programme over the credit difference), so full-size
experiments (up to 10^8 sessions) are sampled from their exact law in O(1);
:meth:`SearchWorld.simulate_interleaving` / :meth:`SearchWorld.simulate_ab` simulate the same
experiment session by session (vectorised NumPy, no Python loop per session) and agree with it
in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.queue.interleaving import (
    TEAM_A,
    TEAM_B,
    cascade_clicks,
    common_prefix_length,
    credit_outcome,
    dedup_teams,
    enumerate_team_draft,
    interleaving_outcome_distribution,
    team_draft,
)
from labsched.envs.queue.records import (
    ABSessions,
    CandidateRanker,
    ClickLog,
    InterleavingSessions,
    InterleavingTable,
)
from labsched.envs.queue.significance import (
    ABOutcome,
    InterleavingOutcome,
    ab_power,
    ab_test,
    interleaving_power,
    interleaving_test,
)
from labsched.envs.queue.users import BrowsingModel
from labsched.envs.queue.world_spec import GROUP_NAMES, QueueWorldSpec

__all__ = [
    "GROUP_NAMES",
    "TEAM_A",
    "TEAM_B",
    "ABOutcome",
    "ABSessions",
    "BrowsingModel",
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

# Hidden generative constants of the world (documented in the module docstring).
_REL_LEVEL_MEAN, _REL_LEVEL_SD, _REL_SD = 0.8, 0.6, 1.1
_ATTR_FLOOR, _ATTR_SPAN, _ATTR_SLOPE, _ATTR_MID = 0.02, 0.6, 1.2, 3.0
_SAT_FLOOR, _SAT_SPAN, _SAT_SLOPE, _SAT_MID = 0.05, 0.85, 1.5, 2.5
_SPILLOVER = 0.1


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else ``TypeError`` (kept for
    compatibility: :func:`labsched.envs._lib.validation.check_generator`)."""
    return check_generator(name, rng)


def check_sessions(n: Any, name: str = "n_sessions", low: int = 0) -> int:
    """Validate a number of sessions, an integer >= ``low`` (kept for compatibility:
    :func:`labsched.envs._lib.validation.check_int`)."""
    return check_int(name, n, low)


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
        hidden_signal: ``(Q, D)`` the experiment-period users' new utility component ``eta``
            (standard normal), unseen by the assessors and by the historical log (``None``: none).
        attractiveness, satisfaction: ``(Q, D)`` true sDBN parameters (experiment period).
        log_attractiveness, log_satisfaction: ``(Q, D)`` the same for the earlier period of the
            historical click log (differing by ``spec.click_drift``).
        production_scores: ``(Q, D)`` scores of the production ranker A.
        production_ranking: ``(Q, m)`` A's top-``m`` documents.
        users: the true users' :class:`~labsched.envs.queue.users.BrowsingModel` (``None``:
            the sDBN users whose parameters are ``attractiveness`` and ``satisfaction``).
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
    users: BrowsingModel | None = None
    hidden_signal: np.ndarray | None = None

    @classmethod
    def generate(cls, spec: QueueWorldSpec | None, rng: np.random.Generator) -> SearchWorld:
        """Draw a world from ``spec`` (default ``QueueWorldSpec()``) using ``rng`` only."""
        spec = QueueWorldSpec() if spec is None else spec
        if not isinstance(spec, QueueWorldSpec):
            raise TypeError(f"spec must be a QueueWorldSpec, got {type(spec).__name__}")
        check_generator("rng", rng)
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
        eta = rng.standard_normal((nq, nd))
        seen = rel + spec.user_noise * eps
        attr, sat = _click_model(seen + spec.hidden_utility * eta)
        log_attr, log_sat = _click_model(seen + spec.click_drift * rng.standard_normal((nq, nd)))
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
            users=BrowsingModel.from_spec(spec),
            hidden_signal=_readonly(eta),
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
    def user_model(self) -> BrowsingModel:
        """The true users (:attr:`users`, or the sDBN when the world was built without)."""
        return BrowsingModel.sdbn(self.list_length) if self.users is None else self.users

    @property
    def query_group(self) -> np.ndarray:
        """``(Q,)`` query-length group: 0 (one term), 1 (two), 2 (three or more)."""
        return np.minimum(self.query_length, 3) - 1

    # ------------------------------------------------------------------ candidates
    def draw_candidate(self, rng: np.random.Generator) -> CandidateRanker:
        """Draw a candidate ranker B from the spec's change distribution (see module docstring)."""
        spec = self.spec
        check_generator("rng", rng)
        effect = spec.effect_mean + spec.effect_sd * _heavy_tailed(rng, spec.effect_df)
        hidden = spec.hidden_effect_sd * _heavy_tailed(rng, spec.effect_df)
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
            if self.hidden_signal is not None and hidden != 0.0:
                scores = scores + hidden * self.hidden_signal[idx]
            ranking[idx] = top_m(scores, self.list_length)
        return CandidateRanker(
            ranking=_readonly(ranking),
            affected=_readonly(affected),
            effect=effect,
            user_signal=kappa,
            change_noise=tau,
            affected_share=share,
            focus_group=focus,
            hidden_effect=hidden,
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
            out[q] = self.user_model.outcome_distribution(a, s, tab.credit_teams).mean(axis=1)
        if per_query:
            return out
        return self.query_weight @ out

    def click_through_rate(self, ranking: np.ndarray, *, per_query: bool = False) -> np.ndarray | float:
        """Exact probability that a page of ``ranking`` gets at least one click (per query, or
        averaged over the query stream); it depends on the order of the page unless the users
        are the sDBN."""
        r = np.asarray(ranking, dtype=np.int64)
        a = np.take_along_axis(self.attractiveness, r, axis=1)
        s = np.take_along_axis(self.satisfaction, r, axis=1)
        ctr = self.user_model.click_probability(a, s)
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
        n = check_int("n_sessions", n_sessions, 0)
        check_generator("rng", rng)
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
            clicks = self.user_model.sample_clicks(
                self.attractiveness[q[:, None], docs], self.satisfaction[q[:, None], docs], rng
            )
            ca, cb, outcome = credit_outcome(credit_teams, clicks)
            parts.append(InterleavingSessions(q, coins, docs, teams, credit_teams, clicks, ca, cb, outcome))
        if len(parts) == 1:
            return parts[0]
        return InterleavingSessions(*(np.concatenate(f) for f in zip(*parts, strict=True)))

    def simulate_ab(self, ranking_b: np.ndarray, n_sessions: int, rng: np.random.Generator) -> ABSessions:
        """Simulate an A/B test of ``n_sessions`` sessions (first ``n // 2`` on A), session by session."""
        n = check_int("n_sessions", n_sessions, 0)
        check_generator("rng", rng)
        q = self.sample_queries(n, rng)
        arm = (np.arange(n) >= n // 2).astype(np.int8)
        docs = np.where(arm[:, None] == 1, np.asarray(ranking_b)[q], self.production_ranking[q])
        clicks = self.user_model.sample_clicks(
            self.attractiveness[q[:, None], docs], self.satisfaction[q[:, None], docs], rng
        )
        return ABSessions(q, arm, docs, clicks)

    def simulate_log(self, n_sessions: int, rng: np.random.Generator) -> ClickLog:
        """A historical click log of past production variants (``spec.log_noise``) for the sDBN."""
        n = check_int("n_sessions", n_sessions, 0)
        check_generator("rng", rng)
        q = self.sample_queries(n, rng)
        scores = self.production_scores[q]
        if self.spec.log_noise > 0:
            scores = scores + self.spec.log_noise * rng.standard_normal(scores.shape)
        docs = top_m(scores, self.list_length)
        clicks = self.user_model.sample_clicks(
            self.log_attractiveness[q[:, None], docs], self.log_satisfaction[q[:, None], docs], rng
        )
        return ClickLog(q, docs, clicks)

    def judge(self, rng: np.random.Generator) -> np.ndarray:
        """Offline relevance labels ``(Q, D)`` (int8, -1 = unlabelled); see the spec's ``label_*``."""
        spec = self.spec
        check_generator("rng", rng)
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


def _heavy_tailed(rng: np.random.Generator, df: float) -> float:
    """One standard Student-t draw with ``df`` degrees of freedom (standard normal if infinite)."""
    return float(rng.standard_normal() if np.isinf(df) else rng.standard_t(df))


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
