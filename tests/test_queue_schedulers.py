"""Queue schedulers: registry, valid actions in the env, observation decoding, ground-truth
references, the learners' mechanics and reproducibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("sklearn")

from labsched.baselines.queue.schedulers import (
    QUEUE_SCHEDULERS,
    ObservationLayout,
    QueueView,
    make_queue_scheduler,
    rank_rows,
)
from labsched.envs.queue.experiment_queue import ExperimentQueueEnv
from labsched.envs.queue.features import cached_dataset
from labsched.envs.queue.search_world import QueueWorldSpec

SPEC = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=24)
AB_SPEC = QueueWorldSpec(
    experiment_type="ab", n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=12
)
EXPLORE = 5_000


@pytest.fixture(scope="module")
def ds():
    return cached_dataset(SPEC, 0)


@pytest.fixture(scope="module")
def train(ds):
    return ds.subset(np.arange(0, 16))


def _build(name, train, *, explore=False, seed=0):
    opts = {"feature": "dSat@5|all"} if name == "feature" else {}
    s = make_queue_scheduler(name, seed=seed, **opts)
    expl = train.exploration_features(EXPLORE, np.random.default_rng(1)) if explore and s.needs_fit else None
    return s.fit(train, expl)


def _episode(env, sched, seed):
    obs, info = env.reset(seed=seed)
    done, q, actions = False, 0.0, []
    while not done:
        a, _ = sched.predict(obs)
        assert np.asarray(a).shape == ()
        assert info["action_mask"][int(a)], f"{sched.name} chose invalid action {a}"
        actions.append(int(a))
        obs, r, done, trunc, info = env.step(a)
        assert not info["clipped"] and trunc is False
        q += r
    return q, actions


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


def test_registry_names_and_unknown_name_lists_known():
    expected = {"random", "dcg", "err", "cm", "feature", "explore", "lr", "lgbm", "svm", "pgbm"}
    assert expected | {"upper_bound", "oracle"} == set(QUEUE_SCHEDULERS)
    with pytest.raises(ValueError, match=r"known queue schedulers: .*lgbm.*pgbm.*did you mean 'pgbm'"):
        make_queue_scheduler("gbdt")
    assert make_queue_scheduler("UB").name == "upper_bound"
    assert make_queue_scheduler(" Rnd ").name == "random"
    with pytest.raises(TypeError):
        make_queue_scheduler(3)


def test_ground_truth_references_are_flagged():
    flagged = {n for n, c in QUEUE_SCHEDULERS.items() if c.reads_ground_truth}
    assert flagged == {"upper_bound", "oracle"}
    assert "ground truth" in (QUEUE_SCHEDULERS["upper_bound"].__doc__ or "")


# ----------------------------------------------------------------------------------------------
# Valid actions in the environment, for every scheduler
# ----------------------------------------------------------------------------------------------

ENV_CONFIGS = {
    "dict": {},
    "flat": {"flatten": True},
    "explore": {"exploration_interactions": EXPLORE},
    "explore-flat-raw": {"exploration_interactions": EXPLORE, "flatten": True, "normalize_features": False},
    "paper-protocol": {"deployment_interactions": 50_000, "budget": 150_000, "outcome": "bootstrap"},
    "arrivals": {"arrivals_per_budget": 4.0, "queue_size": 3},
}


@pytest.mark.parametrize("config", list(ENV_CONFIGS))
@pytest.mark.parametrize("name", sorted(QUEUE_SCHEDULERS))
def test_every_scheduler_only_takes_valid_actions(name, config, train):
    kw = ENV_CONFIGS[config]
    explore = "exploration_interactions" in kw
    sched = _build(name, train, explore=explore)
    env = ExperimentQueueEnv(SPEC, max_queue=6, invalid_action="raise", **kw)
    if sched.uses_exploration and not explore:
        with pytest.raises(ValueError, match="exploration"):
            _episode(env, sched.attach(env), 0)
        return
    sched.attach(env)
    for seed in range(3):
        _, actions = _episode(env, sched, seed)
        n_explore = sum(a >= env.max_queue for a in actions)
        if explore and sched.uses_exploration:
            assert n_explore >= 1  # explores before deploying
            assert all(a >= env.max_queue for a in actions[:n_explore])
        else:
            assert n_explore == 0


@pytest.mark.parametrize("name", ["random", "dcg", "err", "cm", "feature"])
def test_unattached_simple_schedulers_are_valid_on_dict_observations(name, train):
    env = ExperimentQueueEnv(SPEC, max_queue=6, invalid_action="raise")
    sched = _build(name, train)
    for seed in range(4):
        _episode(env, sched, seed)


def test_single_feature_ranking_is_the_same_attached_or_not(train):
    # Per-column z-scoring keeps the order of one column, so attaching changes nothing.
    env = ExperimentQueueEnv(SPEC, max_queue=6, deployment_interactions=50_000, budget=150_000)
    a = _episode(env, make_queue_scheduler("err", seed=0), 3)[1]
    b = _episode(env, make_queue_scheduler("err", seed=0).attach(env), 3)[1]
    assert a == b


def test_learned_and_reference_schedulers_need_fit_or_attach(ds, train):
    env = ExperimentQueueEnv(SPEC, max_queue=6)
    obs, _ = env.reset(seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        make_queue_scheduler("lgbm").attach(env).predict(obs)
    with pytest.raises(ValueError, match="attach"):
        _build("pgbm", train).predict(obs)
    with pytest.raises(ValueError, match="ground truth"):
        make_queue_scheduler("upper_bound").predict(obs)
    with pytest.raises(ValueError, match="only for interleaving"):
        make_queue_scheduler("cm").fit(cached_dataset(AB_SPEC, 0))


def test_sb3_evaluate_policy_on_single_and_vectorised_envs(train):
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = ExperimentQueueEnv(SPEC, max_queue=6, invalid_action="raise", flatten=True)
    sched = _build("pgbm", train).attach(env)
    mean, _ = evaluate_policy(sched, env, n_eval_episodes=6, warn=False)
    assert mean >= 0
    venv = DummyVecEnv(
        [lambda: ExperimentQueueEnv(SPEC, max_queue=6, invalid_action="raise") for _ in range(2)]
    )
    for name in ("upper_bound", "lr", "random"):
        s = _build(name, train).attach(venv)
        mean, _ = evaluate_policy(s, venv, n_eval_episodes=6, warn=False)
        assert mean >= 0
    batch = venv.reset()
    actions, state = make_queue_scheduler("random", seed=0).predict(batch)
    assert actions.shape == (2,) and state is None


def test_predict_accepts_maskable_ppo_style_action_masks(train):
    env = ExperimentQueueEnv(SPEC, max_queue=6, flatten=True)
    sched = _build("lgbm", train).attach(env)
    obs, info = env.reset(seed=0)
    only = np.zeros_like(info["action_mask"])
    allowed = int(np.flatnonzero(info["action_mask"])[-1])
    only[allowed] = True
    a, _ = sched.predict(obs, action_masks=only)
    assert int(a) == allowed


# ----------------------------------------------------------------------------------------------
# Observations and ground truth
# ----------------------------------------------------------------------------------------------


def test_flat_layout_matches_the_dict_observation_and_features_decode_to_raw(ds):
    for explore in (0, EXPLORE):
        env_d = ExperimentQueueEnv(SPEC, max_queue=5, exploration_interactions=explore)
        env_f = ExperimentQueueEnv(SPEC, max_queue=5, exploration_interactions=explore, flatten=True)
        od, _ = env_d.reset(seed=4)
        of, _ = env_f.reset(seed=4)
        layout = ObservationLayout(5, env_d.n_features, explore > 0)
        assert layout.flat_size == of.size == env_f.observation_space.shape[0]
        assert ObservationLayout.infer(of.size, env_d.n_features) == layout
        back = layout.unflatten(of[None])
        for k, v in od.items():
            np.testing.assert_allclose(back[k][0], v, err_msg=k)
        sched = make_queue_scheduler("lr").attach(env_d)
        raw = sched._bindings[0].raw_features(od["features"].astype(float))
        q = env_d.queue
        clipped = np.abs(od["features"]) >= env_d.feature_clip
        want = np.asarray(ds.features)[q]
        scale = np.asarray(ds.features).std(axis=0) + 1e-12
        err = np.abs(raw - want) / scale
        assert err[~clipped].max() < 1e-5


def test_upper_bound_in_env_gets_every_success_that_fits(train):
    env = ExperimentQueueEnv(SPEC, max_queue=6, deployment_interactions=50_000, budget=150_000)
    ub = make_queue_scheduler("upper_bound", seed=0).attach(env)
    rnd = make_queue_scheduler("random", seed=0)
    for seed in range(8):
        _, info = env.reset(seed=seed)
        queued = info["queue"][info["queue"] >= 0]
        q, _ = _episode(env, ub, seed)
        success, _ = env.episode_outcomes
        assert {r.experiment for r in env.schedule} <= set(queued.tolist())
        assert q == min(3, int(success[queued].sum()))  # equal costs: optimal
        assert q >= _episode(env, rnd, seed)[0]


@pytest.mark.parametrize("costs", ["equal", "experiment"])
def test_episode_upper_bound_bounds_every_scheduler_and_upper_bound_reaches_it(costs, train):
    """The true best schedule (cheapest successes first) is >= every scheduler on every episode,
    and the upper_bound scheduler reaches it, with equal (the default) or unequal costs."""
    kw = {} if costs == "equal" else {"deployment_interactions": "experiment"}
    env = ExperimentQueueEnv(SPEC, max_queue=6, **kw)
    assert env.cost_mode == costs
    names = ("random", "dcg", "err", "cm", "lr", "oracle")
    scheds = {n: _build(n, train).attach(env) for n in names}
    ub = make_queue_scheduler("upper_bound", seed=0).attach(env)
    for seed in range(10):
        _, info = env.reset(seed=seed)
        queued = info["queue"][info["queue"] >= 0]
        success, _ = env.episode_outcomes
        bound = env.episode_upper_bound
        # brute force: the largest set of queued successes whose costs fit the budget
        wins = [int(e) for e in queued if success[e]]
        best = max(
            (
                len(c)
                for r in range(len(wins) + 1)
                for c in itertools.combinations(wins, r)
                if sum(int(env._costs[e]) for e in c) <= env.budget
            ),
            default=0,
        )
        assert bound == best
        assert _episode(env, ub, seed)[0] == bound
        for name, sched in scheds.items():
            assert _episode(env, sched, seed)[0] <= bound, name


def test_oracle_ranks_by_probability_per_cost_and_upper_bound_takes_cheap_successes():
    view = QueueView(
        features=np.zeros((4, 60)),
        true_statistic=[0.1, 0.3, -0.2, 0.2],
        true_success=[True, False, True, True],
        true_probability=[0.8, 0.1, 0.6, 0.3],
        costs=[4.0, 1.0, 2.0, 1.0],
    )
    # P / cost = 0.2, 0.1, 0.3, 0.3 (tie between 2 and 3 broken at random)
    assert list(make_queue_scheduler("oracle", seed=0).rank(view))[2:] == [0, 1]
    assert set(list(make_queue_scheduler("oracle", seed=0).rank(view))[:2]) == {2, 3}
    # successes cheapest first (3: cost 1, 2: cost 2, 0: cost 4), then the failure
    assert list(make_queue_scheduler("upper_bound").rank(view)) == [3, 2, 0, 1]


def test_upper_bound_and_oracle_rank_by_the_truth():
    view = QueueView(
        features=np.zeros((4, 60)),
        true_statistic=[0.1, 0.3, -0.2, 0.2],
        true_success=[False, False, True, True],
        true_probability=[0.5, 0.1, 0.9, 0.3],
    )
    assert list(make_queue_scheduler("upper_bound").rank(view)) == [3, 2, 1, 0]
    shifted = QueueView(
        features=np.zeros((3, 60)), true_statistic=[100.0, 101.0, 100.5], true_success=[True, False, False]
    )
    assert list(make_queue_scheduler("upper_bound").rank(shifted)) == [0, 1, 2]
    no_success = QueueView(features=np.zeros((4, 60)), true_statistic=[0.1, 0.3, -0.2, 0.2])
    assert list(make_queue_scheduler("upper_bound").rank(no_success)) == [1, 3, 0, 2]
    assert list(make_queue_scheduler("oracle").rank(view)) == [2, 0, 3, 1]


# ----------------------------------------------------------------------------------------------
# Scores and learners
# ----------------------------------------------------------------------------------------------


def test_feature_scheduler_picks_the_largest_value_and_divides_by_cost():
    names = tuple(f"f{i}" for i in range(3))
    x = np.array([[0.1, 5.0, 0.0], [0.4, 1.0, 0.0], [0.3, 2.0, 0.0]])
    view = QueueView(features=x, costs=[1.0, 8.0, 1.0], feature_names=names)
    assert list(make_queue_scheduler("feature", feature="f0").rank(view)) == [1, 2, 0]
    assert list(make_queue_scheduler("feature", feature="f0", per_cost=True).rank(view)) == [2, 0, 1]
    with pytest.raises(ValueError, match="no feature"):
        make_queue_scheduler("feature", feature="nope").rank(view)


def test_ties_are_broken_at_random_but_reproducibly():
    view = QueueView(features=np.zeros((8, 60)), exploration=np.zeros(8))
    a = make_queue_scheduler("explore", seed=1).rank(view)
    b = make_queue_scheduler("explore", seed=1).rank(view)
    c = make_queue_scheduler("explore", seed=2).rank(view)
    assert list(a) == list(b) and list(a) != list(c)
    orders = rank_rows(np.array([[1.0, 1.0, 0.0]] * 200), np.random.default_rng(0))
    assert set(orders[:, 2]) == {2} and 50 < (orders[:, 0] == 0).sum() < 150


@pytest.mark.parametrize("name", ["lr", "lgbm", "svm", "pgbm"])
def test_learners_are_reproducible_and_use_exploration_when_fitted_with_it(name, ds, train):
    test = ds.subset(np.arange(16, 24))
    s1 = _build(name, train, seed=3)
    s2 = _build(name, train, seed=3)
    v = QueueView.from_dataset(test)
    np.testing.assert_array_equal(s1.score(v), s2.score(v))
    assert not s1.uses_exploration
    se = _build(name, train, explore=True, seed=3)
    assert se.uses_exploration
    with pytest.raises(ValueError, match="exploration"):
        se.score(v)
    ve = QueueView.from_dataset(test, exploration=np.linspace(-0.01, 0.01, len(test)))
    assert se.score(ve).shape == (len(test),)


def test_logistic_l1_is_sparse_and_fits_the_training_labels():
    big = cached_dataset(QueueWorldSpec(), 0)
    lr = make_queue_scheduler("lr", seed=0).fit(big)
    coef = lr.coef_
    assert 0 < np.count_nonzero(coef) < coef.size // 2  # L1 drops most of the 60 columns
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(big.success, lr.score(QueueView.from_dataset(big))) > 0.85


def test_pairwise_learners_order_training_pairs():
    from labsched.baselines.queue.learned import _ordered_pairs

    i, j = _ordered_pairs(np.array([0.2, -0.1, 0.2, 0.5]))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (2, 1), (3, 0), (3, 1), (3, 2)]
    big = cached_dataset(QueueWorldSpec(), 0)
    pg = make_queue_scheduler("pgbm", seed=0).fit(big)
    assert pg.train_loss_[-1] < 0.8 * pg.train_loss_[0]
    sigma = np.asarray(big.statistic)
    for name in ("pgbm", "svm"):
        s = pg if name == "pgbm" else make_queue_scheduler("svm", seed=0).fit(big)
        sc = s.score(QueueView.from_dataset(big))
        a, b = _ordered_pairs(sigma)
        assert np.mean(sc[a] > sc[b]) > 0.7, name  # most training pairs in the right order
