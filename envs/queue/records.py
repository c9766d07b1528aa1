"""Plain records of the experiment-queue domain: what the synthetic search world produces
(candidate rankers, interleaving tables, simulated sessions, historical click logs) and what an
episode of the queue environment did (:class:`DeploymentRecord`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "ABSessions",
    "CandidateRanker",
    "ClickLog",
    "DeploymentRecord",
    "InterleavingSessions",
    "InterleavingTable",
]


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
        hidden_effect: weight of the change along the experiment-period users' hidden utility
            component (invisible to every pre-experiment feature).
    """

    ranking: np.ndarray
    affected: np.ndarray
    effect: float
    user_signal: float
    change_noise: float
    affected_share: float
    focus_group: int
    hidden_effect: float = 0.0


class DeploymentRecord(NamedTuple):
    """One action of an episode.

    Attributes:
        step: index of the action in the episode (0 for the first).
        kind: ``"deploy"`` (the experiment ran to completion) or ``"explore"`` (a preliminary
            deployment of ``exploration_interactions`` sessions).
        experiment: index of the experiment in the episode's dataset (the env's ``dataset``).
        slot: queue slot it occupied.
        cost: user interactions consumed.
        budget_before: interactions left before the action.
        success: the deployment found B significantly better (always False for explorations).
        statistic: the run's outcome statistic: Equation 1 ``s(e)`` for interleaving,
            ``CTR_B - CTR_A`` for A/B tests.
    """

    step: int
    kind: str
    experiment: int
    slot: int
    cost: int
    budget_before: int
    success: bool
    statistic: float
