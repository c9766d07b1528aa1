"""Team Draft interleaving with deduplicated binary credit, and the sDBN cascade of clicks.

Radlinski, Kurup & Joachims' Team Draft interleaving, vectorised over many result-list pairs;
Chapelle et al.'s deduplicated binary credit; the exact law of one interleaved session's outcome
under the simplified DBN click model (no abandonment) and a sampler of its clicks. The model is
described in :mod:`labsched.envs.queue.search_world`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TEAM_A",
    "TEAM_B",
    "cascade_clicks",
    "common_prefix_length",
    "credit_outcome",
    "dedup_teams",
    "enumerate_team_draft",
    "interleaving_outcome_distribution",
    "team_draft",
]

TEAM_A = -1
"""Team label of a document contributed by ranker A (the sign of its credit in ``B - A``)."""
TEAM_B = 1
"""Team label of a document contributed by ranker B."""


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
