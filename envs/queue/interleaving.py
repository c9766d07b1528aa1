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
    "independent_clicks_outcome_distribution",
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
    attractiveness: np.ndarray,
    satisfaction: np.ndarray,
    credit_teams: np.ndarray,
    *,
    stop_skip: np.ndarray | None = None,
    stop_click: np.ndarray | None = None,
) -> np.ndarray:
    """Exact distribution of an interleaved session's outcome under a cascade click model.

    Without ``stop_skip``/``stop_click`` this is the sDBN with ``gamma = 1``. With them, the
    cascade may also end after an examined document that was not clicked (probability
    ``stop_skip[r]`` at rank ``r``) or after a click that did not satisfy (``stop_click[r]``);
    a dynamic programme over the credit difference either way.

    Args:
        attractiveness, satisfaction: ``(..., L)`` click-model parameters of the shown
            documents, top first (0 for padding positions).
        credit_teams: ``(..., L)`` credited team per position (0 = ignored).
        stop_skip, stop_click: optional ``(L,)`` per-rank stopping probabilities (default 0).

    Returns:
        ``(..., 3)`` probabilities of (A wins, B wins, tie).
    """
    a = np.asarray(attractiveness, dtype=float)
    length = a.shape[-1]
    lead = a.shape[:-1]
    s = np.broadcast_to(np.asarray(satisfaction, dtype=float), a.shape)
    t = np.broadcast_to(np.asarray(credit_teams), a.shape)
    keep_skip = np.ones(length) if stop_skip is None else 1.0 - np.asarray(stop_skip, dtype=float)
    keep_click = np.ones(length) if stop_click is None else 1.0 - np.asarray(stop_click, dtype=float)
    # Rows are sessions' pages, laid out (position, page) so that every operation runs along
    # the long page axis; the state is indexed (credit difference B - A + length, page).
    a_t, s_t, team_t = (np.ascontiguousarray(x.reshape(-1, length).T) for x in (a, s, t))
    n = a_t.shape[1]
    centre = length
    going = np.zeros((2 * length + 1, n))  # still examining, by credit difference
    going[centre] = 1.0
    done = np.zeros_like(going)
    for r in range(length):
        lo, hi = centre - r, centre + r + 1  # the differences reachable before position r
        g = going[lo:hi]
        clicked = g * a_t[r]
        skipped = g - clicked
        to_b, to_a = _team_shares(team_t[r])
        moved = np.zeros((hi - lo + 2, n))  # clicked paths after crediting, differences lo-1..hi
        moved[1:-1] += clicked * (1.0 - to_b - to_a)
        moved[2:] += clicked * to_b
        moved[:-2] += clicked * to_a
        satisfied = moved * s_t[r]
        unsatisfied = moved - satisfied
        done[lo - 1 : hi + 1] += satisfied
        going_next = unsatisfied * keep_click[r]
        if keep_click[r] != 1.0:  # stopped after an unsatisfying click
            done[lo - 1 : hi + 1] += unsatisfied - going_next
        going_next[1:-1] += skipped * keep_skip[r]
        if keep_skip[r] != 1.0:  # stopped after a document that was not clicked
            done[lo:hi] += skipped * (1.0 - keep_skip[r])
        going[lo - 1 : hi + 1] = going_next
    return _sign_shares(going + done, centre, lead)


def _team_shares(teams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indicators (as floats) of the positions credited to B and to A."""
    return (teams == TEAM_B).astype(float), (teams == TEAM_A).astype(float)


def _sign_shares(total: np.ndarray, centre: int, lead: tuple[int, ...]) -> np.ndarray:
    """``(*lead, 3)`` mass of negative, positive and zero differences of a ``(W, n)`` law."""
    out = np.stack([total[:centre].sum(axis=0), total[centre + 1 :].sum(axis=0), total[centre]], axis=-1)
    return out.reshape(*lead, 3)


def cascade_clicks(
    attractiveness: np.ndarray,
    satisfaction: np.ndarray,
    rng: np.random.Generator,
    *,
    stop_skip: np.ndarray | None = None,
    stop_click: np.ndarray | None = None,
) -> np.ndarray:
    """Sample cascade clicks for a batch of result pages (default: the sDBN, ``gamma = 1``).

    ``attractiveness``/``satisfaction`` are ``(N, L)`` per shown position (0 for padding).
    Returns ``(N, L)`` boolean clicks: position ``r`` is examined unless the user stopped
    earlier; an examined document is clicked with probability ``a`` and a click satisfies (and
    stops) with probability ``s``. With ``stop_skip``/``stop_click`` (``(L,)``, as in
    :func:`interleaving_outcome_distribution`) the user also stops after an examined, not
    clicked document with probability ``stop_skip[r]`` and after an unsatisfying click with
    probability ``stop_click[r]``.
    """
    a = np.asarray(attractiveness, dtype=float)
    u = rng.random((2, *a.shape))
    attracted = u[0] < a
    stops = attracted & (u[1] < np.asarray(satisfaction, dtype=float))
    if stop_skip is not None or stop_click is not None:
        length = a.shape[-1]
        sk = np.zeros(length) if stop_skip is None else np.asarray(stop_skip, dtype=float)
        sc = np.zeros(length) if stop_click is None else np.asarray(stop_click, dtype=float)
        quit_ = rng.random(a.shape) < np.where(attracted, sc, sk)
        stops = stops | quit_
    examined = np.ones(a.shape, dtype=bool)
    examined[:, 1:] = np.cumsum(stops[:, :-1], axis=1) == 0
    return examined & attracted


def independent_clicks_outcome_distribution(
    click_probability: np.ndarray, credit_teams: np.ndarray
) -> np.ndarray:
    """Exact distribution of an interleaved session's outcome when each position is clicked
    independently (a position-based user: ``P(click at r) = examination_r * a_r``).

    Args:
        click_probability: ``(..., L)`` click probability of each shown position.
        credit_teams: ``(..., L)`` credited team per position (0 = ignored).

    Returns:
        ``(..., 3)`` probabilities of (A wins, B wins, tie).
    """
    p = np.asarray(click_probability, dtype=float)
    length = p.shape[-1]
    lead = p.shape[:-1]
    t = np.broadcast_to(np.asarray(credit_teams), p.shape)
    p_t, team_t = (np.ascontiguousarray(x.reshape(-1, length).T) for x in (p, t))
    n = p_t.shape[1]
    centre = length
    dist = np.zeros((2 * length + 1, n))
    dist[centre] = 1.0
    for r in range(length):
        lo, hi = centre - r, centre + r + 1
        d = dist[lo:hi].copy()
        clicked = d * p_t[r]
        to_b, to_a = _team_shares(team_t[r])
        dist[lo:hi] = d - clicked * (to_b + to_a)  # credited clicks leave their difference
        dist[lo + 1 : hi + 1] += clicked * to_b
        dist[lo - 1 : hi - 1] += clicked * to_a
    return _sign_shares(dist, centre, lead)
