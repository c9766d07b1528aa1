"""The synthetic search world: spec validation, Team Draft interleaving, credit, click model,
exact outcome laws and significance tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from labsched.envs.queue.search_world import (
    TEAM_A,
    TEAM_B,
    QueueWorldSpec,
    SearchWorld,
    ab_power,
    ab_test,
    cascade_clicks,
    common_prefix_length,
    credit_outcome,
    dedup_teams,
    enumerate_team_draft,
    interleaving_outcome_distribution,
    interleaving_power,
    interleaving_test,
    team_draft,
)

A, B = TEAM_A, TEAM_B
SMALL = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=10)


@pytest.fixture(scope="module")
def world() -> SearchWorld:
    return SearchWorld.generate(SMALL, np.random.default_rng(3))


# ----------------------------------------------------------------------------------------------
# Spec
# ----------------------------------------------------------------------------------------------


def test_spec_type_defaults_follow_table_1():
    il = QueueWorldSpec()
    assert il.experiment_type == "interleaving"
    assert (il.n_experiments, il.n_successful) == (82, 31)
    assert (il.interactions_min, il.interactions_median, il.interactions_max) == (
        178_000,
        1_000_000,
        39_000_000,
    )
    ab = QueueWorldSpec(experiment_type="ab")
    assert (ab.n_experiments, ab.n_successful) == (35, 10)
    assert (ab.interactions_min, ab.interactions_median, ab.interactions_max) == (
        1_400_000,
        42_000_000,
        196_000_000,
    )
    # Log-normal means close to Table 1's (2M and 54M).
    mean_il = il.interactions_median * math.exp(il.interactions_sigma**2 / 2)
    mean_ab = ab.interactions_median * math.exp(ab.interactions_sigma**2 / 2)
    assert 1.8e6 < mean_il < 2.2e6 and 50e6 < mean_ab < 58e6


def test_spec_replace_switches_type_defaults_and_keeps_explicit_values():
    ab = QueueWorldSpec().replace(experiment_type="ab")
    assert ab == QueueWorldSpec(experiment_type="ab")
    ab40 = QueueWorldSpec().replace(experiment_type="ab", n_experiments=40)
    assert ab40.n_experiments == 40 and ab40.interactions_median == 42_000_000
    same = QueueWorldSpec(n_experiments=12).replace(n_queries=300)
    assert same.n_experiments == 12 and same.n_queries == 300
    with pytest.raises(TypeError, match="no field"):
        QueueWorldSpec().replace(n_query=3)


def test_spec_is_frozen_and_hashable():
    spec = QueueWorldSpec()
    with pytest.raises(AttributeError):
        spec.n_queries = 5  # type: ignore[misc]
    assert hash(spec) == hash(QueueWorldSpec())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"experiment_type": "xyz"}, "experiment_type"),
        ({"n_experiments": 0}, "n_experiments"),
        ({"success_share": 1.5}, "success_share"),
        ({"n_queries": 2}, "n_queries"),
        ({"list_length": 4}, "list_length"),
        ({"docs_per_query": 5}, "docs_per_query"),
        ({"query_length_probs": (0.5, 0.4)}, "query_length_probs"),
        ({"production_noise": 0.0}, "production_noise"),
        ({"user_signal": 1.5}, "user_signal"),
        ({"affected_share": (0.5, 0.2)}, "affected_share"),
        ({"affected_share": (0.0, 0.2)}, "affected_share"),
        ({"label_query_share": 0.0}, "label_query_share"),
        ({"relevant_grade": 5}, "relevant_grade"),
        ({"log_sessions": 0}, "log_sessions"),
        ({"click_drift": -1.0}, "click_drift"),
        ({"interactions_min": 10, "interactions_median": 5}, "interactions_median"),
        ({"significance_level": 1.0}, "significance_level"),
        ({"effect_sd": float("nan")}, "effect_sd"),
    ],
)
def test_spec_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        QueueWorldSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_queries": 10.0}, "n_queries"),
        ({"n_experiments": True}, "n_experiments"),
        ({"effect_mean": "0"}, "effect_mean"),
        ({"fix_success_count": 1}, "fix_success_count"),
    ],
)
def test_spec_wrong_types_raise_type_error(kwargs, field):
    with pytest.raises(TypeError, match=field):
        QueueWorldSpec(**kwargs)


# ----------------------------------------------------------------------------------------------
# Team Draft interleaving
# ----------------------------------------------------------------------------------------------


def _reference_team_draft(ra, rb, coins, length):
    """Radlinski et al.'s Team Draft, written directly from the algorithm (one list pair)."""
    shown, teams, na, nb = [], [], 0, 0
    while (
        len(shown) < length
        and any(d not in shown for d in ra if d >= 0)
        and any(d not in shown for d in rb if d >= 0)
    ):
        if na < nb or (na == nb and coins[na]):
            shown.append(next(d for d in ra if d >= 0 and d not in shown))
            teams.append(A)
            na += 1
        else:
            shown.append(next(d for d in rb if d >= 0 and d not in shown))
            teams.append(B)
            nb += 1
    pad = length - len(shown)
    return shown + [-1] * pad, teams + [0] * pad


def _td(ra, rb, coins, length=None):
    docs, teams = team_draft(np.array([ra]), np.array([rb]), np.array([coins], dtype=bool), length)
    return docs[0].tolist(), teams[0].tolist()


def test_team_draft_identical_lists():
    assert _td([1, 2, 3, 4], [1, 2, 3, 4], [True, True]) == ([1, 2, 3, 4], [A, B, A, B])
    assert _td([1, 2, 3, 4], [1, 2, 3, 4], [False, True]) == ([1, 2, 3, 4], [B, A, A, B])


def test_team_draft_with_documents_in_both_lists():
    # Swapped top two: the first picker takes its top, the other team's top is gone so it
    # takes its next document; B runs out after three documents and the list ends.
    assert _td([1, 2, 3], [2, 1, 3], [True, True]) == ([1, 2, 3], [A, B, A])
    assert _td([1, 2, 3], [2, 1, 3], [False, False]) == ([2, 1, 3], [B, A, B])
    # Shared top-2 prefix then different documents.
    assert _td([1, 2, 3, 4], [1, 2, 5, 6], [True, False]) == ([1, 2, 5, 3], [A, B, B, A])
    # A document deep in B but on top in A is only shown once.
    assert _td([7, 8, 9, 6], [5, 6, 7, 8], [False, True]) == ([5, 7, 8, 6], [B, A, A, B])


def test_team_draft_matches_reference_on_random_lists():
    rng = np.random.default_rng(0)
    for _ in range(400):
        k = int(rng.integers(1, 8))
        n_docs = int(rng.integers(k, 12))
        ra = rng.permutation(n_docs)[:k]
        prefix = ra[: int(rng.integers(0, k + 1))]
        rest = [d for d in rng.permutation(n_docs) if d not in prefix]
        rb = np.r_[prefix, rest][:k]
        length = int(rng.integers(1, k + 1))
        coins = rng.random(8) < 0.5
        assert _td(ra, rb, coins, length) == _reference_team_draft(list(ra), list(rb), coins, length)


def test_team_draft_validates_shapes():
    with pytest.raises(ValueError, match="coins"):
        team_draft(np.array([[1, 2, 3, 4]]), np.array([[1, 2, 3, 4]]), np.array([[True]]))
    with pytest.raises(ValueError, match="ranking_a"):
        team_draft(np.array([1, 2]), np.array([[1, 2]]), np.array([[True]]))


def test_enumerate_team_draft_covers_all_coin_sequences():
    docs, teams = enumerate_team_draft(np.array([[1, 2, 3, 4, 5]]), np.array([[6, 7, 8, 9, 10]]))
    assert docs.shape == (1, 8, 5)
    # Each list holds A's top documents in A's order and B's in B's order.
    for p in range(8):
        row, team = docs[0, p], teams[0, p]
        assert row[team == A].tolist() == [1, 2, 3][: int((team == A).sum())]
        assert row[team == B].tolist() == [6, 7, 8][: int((team == B).sum())]
    assert len({tuple(r) for r in docs[0]}) == 8


# ----------------------------------------------------------------------------------------------
# Deduplicated binary credit
# ----------------------------------------------------------------------------------------------


def _credit(ra, rb, coins, clicked_positions):
    docs, teams = team_draft(np.array([ra]), np.array([rb]), np.array([coins], dtype=bool))
    credit = dedup_teams(docs, teams, np.array([ra]), np.array([rb]))
    clicks = np.zeros(docs.shape, dtype=bool)
    clicks[0, clicked_positions] = True
    ca, cb, outcome = credit_outcome(credit, clicks)
    return int(ca[0]), int(cb[0]), int(outcome[0])


def test_common_prefix_length():
    ra = np.array([[1, 2, 3], [1, 2, 3], [4, 5, 6], [1, 2, 3]])
    rb = np.array([[1, 2, 3], [1, 2, 9], [5, 4, 6], [1, 3, 2]])
    assert common_prefix_length(ra, rb).tolist() == [3, 2, 0, 1]


def test_credit_ignores_clicks_on_the_common_prefix():
    ra, rb = [1, 2, 3, 4], [1, 2, 5, 6]  # common top-2 prefix
    # List [1, 2, 5, 3] with teams [A, B, B, A]; positions 0 and 1 are deduplicated.
    assert _credit(ra, rb, [True, False], [0]) == (0, 0, 0)  # would be an A win without dedup
    assert _credit(ra, rb, [True, False], [1]) == (0, 0, 0)
    assert _credit(ra, rb, [True, False], [2]) == (0, 1, 1)
    assert _credit(ra, rb, [True, False], [3]) == (1, 0, -1)
    assert _credit(ra, rb, [True, False], [0, 2, 3]) == (1, 1, 0)


def test_identical_lists_always_tie():
    for clicks in ([0], [1, 3], [0, 1, 2, 3]):
        assert _credit([1, 2, 3, 4], [1, 2, 3, 4], [True, False], clicks) == (0, 0, 0)


def test_credit_with_duplicates_and_binary_outcome():
    # A = [1, 2, 3, 4], B = [2, 1, 4, 3]: no common prefix, so nothing is deduplicated.
    # coins (A first, A first): A takes 1, B takes 2, A takes 3, B takes 4.
    assert _credit([1, 2, 3, 4], [2, 1, 4, 3], [True, True], [0]) == (1, 0, -1)
    assert _credit([1, 2, 3, 4], [2, 1, 4, 3], [True, True], [1, 3]) == (0, 2, 1)
    # Binary: winning by two clicks counts the same as winning by one.
    assert _credit([1, 2, 3, 4], [2, 1, 4, 3], [True, True], [0, 1, 3])[2] == 1
    assert _credit([1, 2, 3, 4], [2, 1, 4, 3], [True, True], [1, 2])[2] == 0


# ----------------------------------------------------------------------------------------------
# Click model and exact outcome law
# ----------------------------------------------------------------------------------------------


def _brute_force_outcome(a, s, teams):
    """Enumerate every (attracted, satisfied) pattern of a short list."""
    probs = np.zeros(3)
    m = len(a)
    for att in itertools.product([0, 1], repeat=m):
        for sat in itertools.product([0, 1], repeat=m):
            p, diff = 1.0, 0
            stopped = False
            for r in range(m):
                pa = a[r] if att[r] else 1 - a[r]
                ps = (s[r] if sat[r] else 1 - s[r]) if att[r] else (1.0 if not sat[r] else 0.0)
                p *= pa * ps
                if not stopped and att[r]:
                    diff += teams[r]
                    stopped = bool(sat[r])
            probs[0 if diff < 0 else 1 if diff > 0 else 2] += p
    return probs


def test_outcome_distribution_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, s = rng.random(4), rng.random(4)
        teams = rng.choice([A, B, 0], size=4)
        exact = interleaving_outcome_distribution(a, s, teams)
        np.testing.assert_allclose(exact, _brute_force_outcome(a, s, teams), atol=1e-12)
        assert exact.sum() == pytest.approx(1.0)


def test_cascade_clicks_follow_the_sdbn():
    rng = np.random.default_rng(2)
    n = 200_000
    a = np.tile([0.6, 0.3, 0.5], (n, 1))
    s = np.tile([0.5, 0.9, 0.2], (n, 1))
    clicks = cascade_clicks(a, s, rng).mean(axis=0)
    expected = [0.6, 0.3 * (1 - 0.6 * 0.5), 0.5 * (1 - 0.3) * (1 - 0.3 * 0.9)]
    np.testing.assert_allclose(clicks, expected, atol=0.005)


def test_simulated_sessions_agree_with_exact_probabilities(world):
    rng = np.random.default_rng(4)
    cand = world.draw_candidate(rng)
    while world.changed_queries(cand.ranking).mean() < 0.05:
        cand = world.draw_candidate(rng)
    exact = world.interleaving_probabilities(cand.ranking)
    n = 200_000
    sessions = world.simulate_interleaving(cand.ranking, n, rng)
    observed = np.array(sessions.counts())
    # chi-square goodness of fit on (A wins, B wins, tie)
    chi2 = ((observed - n * exact) ** 2 / (n * exact)).sum()
    assert chi2 < stats.chi2.isf(1e-4, df=2)
    # per-query probabilities average to the stream's
    np.testing.assert_allclose(
        world.query_weight @ world.interleaving_probabilities(cand.ranking, per_query=True), exact
    )


def test_simulated_sessions_are_team_draft_of_their_coins(world):
    rng = np.random.default_rng(5)
    cand = world.draw_candidate(rng)
    ses = world.simulate_interleaving(cand.ranking, 3_000, rng, batch=1_000)
    ra = world.production_ranking[ses.query]
    rb = cand.ranking[ses.query]
    docs, teams = team_draft(ra, rb, ses.coins)
    np.testing.assert_array_equal(ses.docs, docs)
    np.testing.assert_array_equal(ses.teams, teams)
    np.testing.assert_array_equal(ses.credit_teams, dedup_teams(docs, teams, ra, rb))
    ca, cb, out = credit_outcome(ses.credit_teams, ses.clicks)
    np.testing.assert_array_equal(out, ses.outcome)
    np.testing.assert_array_equal(ca, ses.credit_a)
    np.testing.assert_array_equal(cb, ses.credit_b)
    # Unchanged queries never produce a decided session.
    unchanged = ~world.changed_queries(cand.ranking)[ses.query]
    assert unchanged.any() and np.all(ses.outcome[unchanged] == 0)
    assert np.all(ses.docs >= 0)


def test_ab_sessions_agree_with_exact_ctr(world):
    rng = np.random.default_rng(6)
    cand = world.draw_candidate(rng)
    n = 200_000
    ses = world.simulate_ab(cand.ranking, n, rng)
    na, ca, nb, cb = ses.counts()
    assert (na, nb) == (n // 2, n - n // 2)
    for clicked, sessions, ranking in ((ca, na, world.production_ranking), (cb, nb, cand.ranking)):
        ctr = world.click_through_rate(ranking)
        assert abs(clicked / sessions - ctr) < 5 * math.sqrt(ctr * (1 - ctr) / sessions)


def test_world_generation_is_seeded(world):
    again = SearchWorld.generate(SMALL, np.random.default_rng(3))
    for name in ("query_weight", "relevance", "attractiveness", "satisfaction", "production_ranking"):
        np.testing.assert_array_equal(getattr(world, name), getattr(again, name))
        assert not getattr(world, name).flags.writeable
    other = SearchWorld.generate(SMALL, np.random.default_rng(4))
    assert not np.array_equal(world.relevance, other.relevance)
    with pytest.raises(TypeError, match="rng"):
        SearchWorld.generate(SMALL, 3)  # type: ignore[arg-type]


def test_world_shapes_and_ranges(world):
    q, d, m = SMALL.n_queries, SMALL.docs_per_query, SMALL.list_length
    assert world.relevance.shape == (q, d) and world.production_ranking.shape == (q, m)
    assert world.relevance.min() >= 0 and world.relevance.max() <= 4
    assert world.query_weight.sum() == pytest.approx(1.0)
    assert set(np.unique(world.query_group)) <= {0, 1, 2}
    for p in (world.attractiveness, world.satisfaction):
        assert np.all((p > 0) & (p < 1))
    # A's pages are sorted by its scores
    s = np.take_along_axis(world.production_scores, world.production_ranking.astype(int), axis=1)
    assert np.all(np.diff(s, axis=1) <= 0)


def test_candidates_only_change_affected_queries(world):
    rng = np.random.default_rng(7)
    for _ in range(5):
        cand = world.draw_candidate(rng)
        changed = world.changed_queries(cand.ranking)
        assert not np.any(changed & ~cand.affected)


def test_judge_labels_only_judged_queries(world):
    labels = world.judge(np.random.default_rng(8))
    judged = (labels >= 0).any(axis=1)
    assert labels.shape == world.relevance.shape and labels.min() >= -1 and labels.max() <= 4
    assert judged.sum() <= round(SMALL.label_query_share * SMALL.n_queries)
    assert np.all(labels[~judged] == -1)


# ----------------------------------------------------------------------------------------------
# Significance tests and power
# ----------------------------------------------------------------------------------------------


def test_interleaving_test_hand_values():
    out = interleaving_test(40, 60, 100, 0.05)
    assert out.statistic == pytest.approx((60 + 50) / 200 - 0.5)
    assert out.p_value == pytest.approx(2 * stats.binom.cdf(40, 100, 0.5))
    assert out.p_value > 0.05 and not out.success
    out = interleaving_test(38, 62, 0, 0.05)
    assert out.p_value < 0.05 and out.success
    assert out.z == pytest.approx(24 / 10)
    # significant but A better is not a success
    assert not interleaving_test(62, 38, 0, 0.05).success
    empty = interleaving_test(0, 0, 0, 0.05)
    assert empty.statistic == 0 and empty.p_value == 1 and not empty.success


def test_ab_test_hand_values():
    out = ab_test(1000, 500, 1000, 560, 0.05)
    pooled = 1060 / 2000
    z = 0.06 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert out.statistic == pytest.approx(0.06)
    assert out.z == pytest.approx(z)
    assert out.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert out.success
    assert not ab_test(1000, 560, 1000, 500, 0.05).success


def test_power_formulas_match_monte_carlo():
    rng = np.random.default_rng(9)
    probs = np.array([0.02, 0.0235, 0.9565])
    n = 200_000
    counts = rng.multinomial(n, probs, size=4000)
    mc = interleaving_test(counts[:, 0], counts[:, 1], counts[:, 2], 0.05).success.mean()
    assert interleaving_power(probs, n, 0.05) == pytest.approx(mc, abs=0.03)
    ctr = np.array([0.70, 0.705])
    n = 100_000
    ca = rng.binomial(n // 2, ctr[0], size=4000)
    cb = rng.binomial(n - n // 2, ctr[1], size=4000)
    mc = ab_test(n // 2, ca, n - n // 2, cb, 0.05).success.mean()
    assert ab_power(ctr, n, 0.05) == pytest.approx(mc, abs=0.03)
