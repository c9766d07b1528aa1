"""The simplified DBN click model of the queue features: Algorithm 1 (training from a click log),
Algorithm 2 (satisfaction probability) and Algorithm 3 (expected interleaving click difference)
of Kharitonov et al., and the per-query click-model features built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs.queue.records import ClickLog, InterleavingTable
from labsched.envs.queue.search_world import SearchWorld

__all__ = [
    "SDBNModel",
    "click_features_per_query",
    "expected_click_difference",
    "satisfaction_probability",
    "train_sdbn",
]


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
