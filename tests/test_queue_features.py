"""Offline metrics, the sDBN (Algorithms 1-3), feature aggregation and the generated dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from labsched.envs.queue.features import (
    ExperimentDataset,
    SDBNModel,
    dcg_at,
    err_at,
    expected_click_difference,
    experiment_features,
    feature_names,
    generate_dataset,
    labelled_to_depth,
    offline_metric,
    precision_at,
    satisfaction_probability,
    train_sdbn,
)
from labsched.envs.queue.search_world import (
    TEAM_A,
    TEAM_B,
    ClickLog,
    QueueWorldSpec,
    SearchWorld,
    cascade_clicks,
    interleaving_outcome_distribution,
)

SMALL = QueueWorldSpec(n_queries=200, docs_per_query=12, log_sessions=10_000, n_experiments=30)


@pytest.fixture(scope="module")
def dataset() -> ExperimentDataset:
    return generate_dataset(SMALL, rng=np.random.default_rng(11))


@pytest.fixture(scope="module")
def natural() -> ExperimentDataset:
    """Labels as the model produces them (no success quota), more experiments; every change is
    visible to the features (no hidden effects), so their signs can be checked."""
    spec = SMALL.replace(fix_success_count=False, n_experiments=80, hidden_effect_sd=0.0, effect_sd=0.05)
    return generate_dataset(spec, rng=np.random.default_rng(12))


@pytest.fixture(scope="module")
def sdbn_dataset() -> ExperimentDataset:
    """A world whose users are the features' own sDBN (``user_model="sdbn"``)."""
    return generate_dataset(SMALL.replace(user_model="sdbn"), rng=np.random.default_rng(11))


# ----------------------------------------------------------------------------------------------
# Offline metrics
# ----------------------------------------------------------------------------------------------

GRADES = [3, 0, 2, -1, 1]  # -1: unlabelled


def test_precision_hand_values():
    assert precision_at(GRADES, 1)[0] == pytest.approx(1.0)
    assert precision_at(GRADES, 3)[0] == pytest.approx(2 / 3)
    assert precision_at(GRADES, 3, relevant_grade=3)[0] == pytest.approx(1 / 3)
    assert precision_at([-1, 4, 4], 1)[0] == 0.0  # unlabelled counts as irrelevant


def test_dcg_hand_values():
    assert dcg_at(GRADES, 3)[0] == pytest.approx(7 + 0 + 3 / 2)
    assert dcg_at(GRADES, 5)[0] == pytest.approx(8.5 + 0 + 1 / math.log2(6))
    assert offline_metric("DCG@3", [[3, 0, 2], [0, 0, 4]]).tolist() == pytest.approx([8.5, 15 / 2])


def test_err_hand_values():
    r1, r3, r5 = 7 / 16, 3 / 16, 1 / 16
    err3 = r1 + (1 - r1) * 0 / 2 + (1 - r1) * r3 / 3
    assert err_at(GRADES, 3)[0] == pytest.approx(err3)
    assert err_at(GRADES, 5)[0] == pytest.approx(err3 + (1 - r1) * (1 - r3) * r5 / 5)
    assert err_at([4], 1)[0] == pytest.approx(15 / 16)


def test_labelled_to_depth_and_metric_names():
    assert labelled_to_depth(GRADES, 3)[0] and not labelled_to_depth(GRADES, 5)[0]
    assert labelled_to_depth([1, 2], 3)[0] == False  # noqa: E712 - shorter list than the cut-off
    with pytest.raises(ValueError, match="metric"):
        offline_metric("NDCG@3", GRADES)


# ----------------------------------------------------------------------------------------------
# sDBN: Algorithm 1
# ----------------------------------------------------------------------------------------------


def test_algorithm_1_counts_on_a_hand_log():
    log = ClickLog(
        query=np.array([0, 0, 0]),
        docs=np.array([[0, 1, 2], [0, 1, 2], [2, 1, 0]]),
        clicks=np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool),
    )
    m = train_sdbn(log, 1, 3)
    # session 1: examined 0, 1, 2; clicked 0, 2; last click 2. session 2: no clicks, ignored.
    # session 3: examined 2, 1; clicked 1 (last).
    assert m.a_den[0].tolist() == [1, 2, 2]
    assert m.a_num[0].tolist() == [1, 1, 1]
    assert m.s_den[0].tolist() == [1, 1, 1]
    assert m.s_num[0].tolist() == [0, 1, 1]
    np.testing.assert_allclose(m.attractiveness[0], [2 / 3, 2 / 4, 2 / 4])
    np.testing.assert_allclose(m.satisfaction[0], [1 / 3, 2 / 3, 2 / 3])
    assert m.query_sessions.tolist() == [3]


def test_algorithm_1_recovers_known_parameters():
    """With an always-clicked sentinel at the bottom of every page, "at or above the last
    click" is exactly "examined" and the last click is exactly the satisfying one, so
    Algorithm 1 is consistent: it must recover the true parameters from a large log."""
    rng = np.random.default_rng(0)
    a = np.array([[0.6, 0.35, 0.2, 0.5, 1.0], [0.1, 0.8, 0.45, 0.3, 1.0]])
    s = np.array([[0.3, 0.55, 0.7, 0.15, 1.0], [0.6, 0.25, 0.4, 0.5, 1.0]])
    n = 200_000
    query = rng.integers(0, 2, n)
    docs = np.column_stack([rng.permuted(np.tile(np.arange(4), (n, 1)), axis=1), np.full(n, 4)])
    clicks = cascade_clicks(a[query[:, None], docs], s[query[:, None], docs], rng)
    model = train_sdbn(ClickLog(query, docs, clicks), 2, 5)
    np.testing.assert_allclose(model.attractiveness[:, :4], a[:, :4], atol=0.01)
    np.testing.assert_allclose(model.satisfaction[:, :4], s[:, :4], atol=0.02)


def test_algorithm_1_prior_for_unseen_documents_and_validation():
    log = ClickLog(np.array([0]), np.array([[0, 1]]), np.array([[True, False]]))
    m = train_sdbn(log, 2, 3)
    assert m.attractiveness[1, 2] == 0.5 and m.satisfaction[1, 2] == 0.5
    m = train_sdbn(log, 2, 3, prior=(1.0, 3.0, 2.0, 2.0))
    assert m.attractiveness[1, 0] == 0.25
    with pytest.raises(ValueError, match="prior"):
        train_sdbn(log, 2, 3, prior=(1.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="shapes"):
        train_sdbn((np.array([0]), np.array([[0, 1]]), np.array([[True]])), 2, 3)


# ----------------------------------------------------------------------------------------------
# Algorithms 2 and 3
# ----------------------------------------------------------------------------------------------


def test_algorithm_2_hand_values():
    a, s = np.array([0.5, 0.2, 0.9]), np.array([0.4, 0.5, 1.0])
    assert satisfaction_probability(a, s, 2) == pytest.approx(1 - 0.8 * 0.9)
    assert satisfaction_probability(a, s, 1) == pytest.approx(0.2)
    assert satisfaction_probability(a, s, 10) == pytest.approx(1 - 0.8 * 0.9 * 0.1)


def test_algorithm_3_hand_values():
    a = np.array([[0.5, 0.5], [0.4, 0.2]])
    s = np.array([[1.0, 1.0], [0.5, 0.5]])
    teams = np.array([[TEAM_A, TEAM_B], [TEAM_B, 0]])
    # list 1: A gets 0.5, B gets 0.5 * (1 - 0.5) -> B - A = -0.25; list 2: B gets 0.4.
    assert expected_click_difference(a, s, teams, 2, weights=[1.0, 0.0]) == pytest.approx(-0.25)
    assert expected_click_difference(a, s, teams, 2, weights=[0.0, 1.0]) == pytest.approx(0.4)
    assert expected_click_difference(a, s, teams, 2) == pytest.approx((-0.25 + 0.4) / 2)
    assert expected_click_difference(a, s, teams, 1, weights=[1.0, 0.0]) == pytest.approx(-0.5)


def test_algorithm_3_with_true_parameters_is_the_expected_credit_difference(sdbn_dataset):
    """At the full cut-off with the true click model (sDBN users), Algorithm 3 is the expected
    credited-click difference of the interleaved session, which the simulator estimates."""
    dataset = sdbn_dataset
    world = dataset.world
    rng = np.random.default_rng(1)
    i = int(np.argmax(np.abs(dataset.effect)))
    ranking = dataset.candidates[i].ranking
    tab = world.interleaving_table(ranking)
    q = tab.queries[:, None, None]
    per_query = expected_click_difference(
        world.attractiveness[q, tab.docs], world.satisfaction[q, tab.docs], tab.credit_teams, 100
    )
    expected = float(world.query_weight[tab.queries] @ per_query)
    ses = world.simulate_interleaving(ranking, 200_000, rng)
    diff = (ses.credit_b - ses.credit_a).astype(float)
    assert abs(diff.mean() - expected) < 5 * diff.std() / math.sqrt(diff.size)


# ----------------------------------------------------------------------------------------------
# Feature aggregation on a hand-built world
# ----------------------------------------------------------------------------------------------


def _hand_world() -> SearchWorld:
    spec = QueueWorldSpec(n_queries=3, docs_per_query=6, list_length=5)
    zeros = np.zeros((3, 6))
    attr = np.full((3, 6), 0.3)
    sat = np.full((3, 6), 0.5)
    return SearchWorld(
        spec=spec,
        query_length=np.array([1, 2, 4]),
        query_weight=np.array([0.5, 0.3, 0.2]),
        relevance=zeros.astype(np.int8),
        user_signal=zeros,
        attractiveness=attr,
        satisfaction=sat,
        log_attractiveness=attr,
        log_satisfaction=sat,
        production_scores=-np.tile(np.arange(6.0), (3, 1)),
        production_ranking=np.tile(np.arange(5), (3, 1)).astype(np.int16),
    )


def test_feature_aggregation_and_unlabelled_policies_on_a_hand_world():
    world = _hand_world()
    labels = np.array(
        [
            [0, 3, 1, 1, 1, -1],  # query 0 (one term): fully labelled top 5 for A and B
            [-1, -1, -1, -1, -1, -1],  # query 1 (two terms): not judged
            [2, 1, 1, 1, 0, -1],  # query 2 (four terms): B's new top document is unlabelled
        ],
        dtype=np.int8,
    )
    ranking_b = np.array([[1, 0, 2, 3, 4], [0, 1, 2, 3, 4], [5, 1, 2, 3, 4]])
    a = np.full((3, 6), 0.3)
    a[2, 5] = 0.9
    s = np.full((3, 6), 0.5)
    sdbn = SDBNModel(a, s, *(np.zeros((3, 6)),) * 4, query_sessions=np.array([10, 0, 5]))
    x = experiment_features(world, labels, sdbn, ranking_b)
    names = feature_names("interleaving")
    assert x.shape == (60,) and len(names) == 60
    f = dict(zip(names, x, strict=True))
    # P@1 per query: q0 B - A = 1 - 0 = +1; q2 (B's top unlabelled -> irrelevant) = 0 - 1 = -1.
    assert f["dP@1[irrel]|all"] == pytest.approx(0.0)
    assert f["dP@1[irrel]|len1"] == pytest.approx(1.0)
    assert f["dP@1[irrel]|len2"] == 0.0  # no judged query in the group
    assert f["dP@1[irrel]|len3+"] == pytest.approx(-1.0)
    # skip policy: q2 is dropped (B's top-1 unlabelled), q0 stays.
    assert f["dP@1[skip]|all"] == pytest.approx(1.0)
    assert f["dP@1[skip]|len3+"] == 0.0
    d3 = 7 - (7 / math.log2(3) + 0.5 - 0.5)  # q0: B [3, 0, 1] vs A [0, 3, 1]
    assert f["dDCG@3[skip]|len1"] == pytest.approx(d3)
    assert f["dDCG@3[skip]|all"] == pytest.approx(d3)
    # dSat: order inside the top 3 does not matter (q0: 0); q2 swaps doc 0 for doc 5.
    d_sat = (1 - (1 - 0.9 * 0.5) * (1 - 0.15) ** 2) - (1 - (1 - 0.15) ** 3)
    assert f["dSat@3|len1"] == pytest.approx(0.0)
    assert f["dSat@3|len3+"] == pytest.approx(d_sat)
    assert f["dSat@3|all"] == pytest.approx(5 * d_sat / 15)  # weighted by log sessions, q1 unseen
    assert f["dClicks@5|len2"] == 0.0
    assert f["dClicks@5|len3+"] > 0  # B brings the attractive document to the top
    ab = experiment_features(world, labels, sdbn, ranking_b, "ab")
    assert ab.shape == (56,) and np.allclose(ab, x[:56])


# ----------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------


def test_dataset_shape_and_exact_success_count(dataset):
    n = SMALL.n_experiments
    assert len(dataset) == n
    assert dataset.features.shape == (n, 60)
    assert dataset.feature_names == feature_names("interleaving")
    assert dataset.success.sum() == SMALL.n_successful == round(SMALL.success_share * n)
    assert dataset.interactions.min() >= SMALL.interactions_min
    assert dataset.interactions.max() <= SMALL.interactions_max
    assert dataset.session_probs.shape == (n, 3)
    np.testing.assert_allclose(dataset.session_probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(
        dataset.effect, (dataset.session_probs[:, 1] - dataset.session_probs[:, 0]) / 2
    )
    o = dataset.outcome
    np.testing.assert_array_equal(o.wins_a + o.wins_b + o.ties, dataset.interactions)
    assert np.all(np.isfinite(dataset.features))
    assert not dataset.features.flags.writeable
    assert dataset.indices.tolist() == list(range(n))


def test_natural_success_share_agrees_with_success_probabilities(natural):
    """Without the quota each label is one draw with probability P(e): their sum must be
    within a few standard deviations of sum P(e) (plus slack for the normal approximation)."""
    p = natural.success_probability
    k = natural.success.sum()
    assert abs(k - p.sum()) <= 4 * math.sqrt((p * (1 - p)).sum()) + 2
    assert 0 < k < len(natural)
    # successful experiments have a positive true effect
    assert np.all(natural.effect[natural.success] > 0)


def test_features_point_towards_the_true_effect(natural):
    """Feature signs are B minus A: offline and click features correlate positively with the
    true effect (and predict success better than chance). The offline metrics of this small
    world (60 judged queries) are weak predictors, as in the paper; the click model is stronger."""
    for name, low in (
        ("dDCG@3[irrel]|all", 0.1),
        ("dERR@5[irrel]|all", 0.1),
        ("dSat@5|all", 0.2),
        ("dClicks@5|all", 0.4),
    ):
        x = natural.features[:, natural.feature_index(name)]
        rho = stats.spearmanr(x, natural.effect).statistic
        assert rho > low, (name, rho)
    x = natural.features[:, natural.feature_index("dClicks@5|all")]
    y = natural.success
    auc = stats.mannwhitneyu(x[y], x[~y]).statistic / (y.sum() * (~y).sum())
    assert auc > 0.7


def test_generation_is_seeded(dataset):
    again = generate_dataset(SMALL, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(dataset.features, again.features)
    np.testing.assert_array_equal(dataset.interactions, again.interactions)
    np.testing.assert_array_equal(dataset.success, again.success)
    np.testing.assert_array_equal(dataset.statistic, again.statistic)
    other = generate_dataset(SMALL, rng=np.random.default_rng(13))
    assert not np.array_equal(dataset.features, other.features)
    with pytest.raises(TypeError, match="rng"):
        generate_dataset(SMALL, rng=11)  # type: ignore[arg-type]


def test_ab_dataset():
    spec = QueueWorldSpec(
        experiment_type="ab", n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=12
    )
    ds = generate_dataset(spec, rng=np.random.default_rng(2))
    assert ds.features.shape == (12, 56)
    assert not any("dClicks" in n for n in ds.feature_names)
    assert ds.success.sum() == spec.n_successful
    assert np.all((ds.session_probs > 0) & (ds.session_probs < 1))
    np.testing.assert_allclose(ds.effect, ds.session_probs[:, 1] - ds.session_probs[:, 0])
    o = ds.outcome
    np.testing.assert_array_equal(o.sessions_a, ds.interactions // 2)
    out = ds.sample_outcome(0, 1000, np.random.default_rng(0))
    assert out.sessions_a == 500 and out.sessions_b == 500


def test_unreachable_success_share_raises():
    spec = QueueWorldSpec(
        n_queries=20, docs_per_query=10, log_sessions=100, n_experiments=1, success_share=1.0,
        effect_mean=-5.0, effect_sd=0.0, change_noise=0.0, affected_share=(1.0, 1.0),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="success_share"):
        generate_dataset(spec, rng=np.random.default_rng(0))


def test_sample_outcomes_follow_the_exact_law(dataset):
    rng = np.random.default_rng(3)
    i = int(np.argmax(dataset.effect))
    n = 20_000
    stat = dataset.sample_outcomes(n, rng, np.full(400, i)).statistic
    # E[s(e)] = (p_B - p_A) / 2 exactly; Var = Var(B_win + tie / 2) / n.
    _, pb, pt = dataset.session_probs[i]
    var = (pb + pt / 4 - (pb + pt / 2) ** 2) / n
    assert abs(stat.mean() - dataset.effect[i]) < 5 * math.sqrt(var / 400)
    assert stat.std() == pytest.approx(math.sqrt(var), rel=0.15)


def test_bootstrap_and_session_sources(dataset):
    rng = np.random.default_rng(4)
    i = 0
    full = int(dataset.interactions[i])
    boot = dataset.sample_outcomes(full, rng, np.full(200, i), source="bootstrap").statistic
    assert abs(boot.mean() - dataset.statistic[i]) < 0.002
    out = dataset.bootstrap_outcome(i, 1000, rng)
    assert out.n_sessions == 1000 and out.wins_a + out.wins_b + out.ties == 1000
    ses = dataset.sample_outcome(i, 5_000, rng, source="sessions")
    assert ses.n_sessions == 5_000
    sessions = dataset.simulate_sessions(i, 2_000, rng)
    assert sum(sessions.counts()) == 2_000
    with pytest.raises(ValueError, match="source"):
        dataset.sample_outcome(i, 10, rng, source="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_sessions"):
        dataset.sample_outcome(i, -1, rng)
    with pytest.raises(IndexError):
        dataset.sample_outcome(len(dataset), 10, rng)


def test_exploration_feature_and_subset(dataset):
    rng = np.random.default_rng(5)
    x, names = dataset.features_with_exploration(10_000, rng)
    assert x.shape == (len(dataset), 61) and names[-1] == "explore"
    np.testing.assert_array_equal(x[:, :60], dataset.features)
    assert isinstance(dataset.exploration_feature(3, 10_000, rng), float)
    # a long exploration recovers the sign of clear effects
    clear = np.flatnonzero(np.abs(dataset.effect) > 0.01)
    if clear.size:
        e = dataset.exploration_features(1_000_000, rng, clear)
        assert np.all(np.sign(e) == np.sign(dataset.effect[clear]))
    sub = dataset.subset([4, 1, 7])
    assert len(sub) == 3 and sub.indices.tolist() == [4, 1, 7]
    np.testing.assert_array_equal(sub.features, dataset.features[[4, 1, 7]])
    np.testing.assert_array_equal(sub.success, dataset.success[[4, 1, 7]])
    mask = np.zeros(len(dataset), dtype=bool)
    mask[[2, 5]] = True
    assert dataset.subset(mask).indices.tolist() == [2, 5]
    assert dataset.success_probability_at(dataset.interactions) == pytest.approx(dataset.success_probability)
    assert dataset.feature_index("dClicks@5|all") == 56  # base 14, group "all"
    with pytest.raises(KeyError):
        dataset.feature_index("nope")


def test_exact_probabilities_of_dataset_match_outcome_distribution(dataset):
    """The stored session law is the query-weighted DP outcome of every changed query."""
    world = dataset.world
    i = 1
    tab = world.interleaving_table(dataset.candidates[i].ranking)
    q = tab.queries[:, None, None]
    per = world.user_model.outcome_distribution(
        world.attractiveness[q, tab.docs], world.satisfaction[q, tab.docs], tab.credit_teams
    ).mean(axis=1)
    w = world.query_weight
    expected = np.array([0.0, 0.0, 1.0]) * (1 - w[tab.queries].sum()) + w[tab.queries] @ per
    np.testing.assert_allclose(dataset.session_probs[i], expected / expected.sum(), atol=1e-12)


def test_sdbn_world_law_is_the_plain_sdbn_dynamic_programme(sdbn_dataset):
    """With ``user_model="sdbn"`` the stored session law is the sDBN's (no abandonment)."""
    world = sdbn_dataset.world
    assert world.user_model.is_sdbn
    i = 2
    tab = world.interleaving_table(sdbn_dataset.candidates[i].ranking)
    q = tab.queries[:, None, None]
    per = interleaving_outcome_distribution(
        world.attractiveness[q, tab.docs], world.satisfaction[q, tab.docs], tab.credit_teams
    ).mean(axis=1)
    w = world.query_weight
    expected = np.array([0.0, 0.0, 1.0]) * (1 - w[tab.queries].sum()) + w[tab.queries] @ per
    np.testing.assert_allclose(sdbn_dataset.session_probs[i], expected / expected.sum(), atol=1e-12)
