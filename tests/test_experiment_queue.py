"""``ExperimentQueueEnv``: checkers, invariants (property tests), seeding, masks and errors."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from _envtools import PROPERTY_SETTINGS, assert_same_trajectory
from hypothesis import given
from hypothesis import strategies as st

from labsched.envs.queue import generation
from labsched.envs.queue.experiment_queue import DeploymentRecord, ExperimentQueueEnv, QueueEnvConfig
from labsched.envs.queue.features import cached_dataset
from labsched.envs.queue.search_world import QueueWorldSpec
from labsched.envs.queue.significance import fast_verdicts

SPEC = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=24)
AB_SPEC = QueueWorldSpec(
    experiment_type="ab", n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=12
)
BENIGN_WARNINGS = ("Not able to test alternative render modes", "unconventional shape")


def make(**kwargs) -> ExperimentQueueEnv:
    kwargs.setdefault("max_queue", 6)
    return ExperimentQueueEnv(SPEC, **kwargs)


def _run_checker(check, env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(env)
    bad = [str(w.message) for w in caught if not any(b in str(w.message) for b in BENIGN_WARNINGS)]
    assert not bad, bad


def _greedy_episode(env, seed, choose=None):
    """Deploy (or explore) by a fixed rule; return the list of (obs, reward, info)."""
    obs, info = env.reset(seed=seed)
    out, done = [(obs, 0.0, info)], False
    while not done:
        mask = info["action_mask"]
        a = int(np.flatnonzero(mask)[-1]) if choose is None else choose(mask)
        obs, r, done, trunc, info = env.step(a)
        assert trunc is False
        out.append((obs, r, info))
    return out


# ----------------------------------------------------------------------------------------------
# Checkers and construction
# ----------------------------------------------------------------------------------------------

CONFIGS = [
    {},
    {"flatten": True},
    {"exploration_interactions": 5_000},
    {"exploration_interactions": 5_000, "flatten": True, "arrivals_per_budget": 3.0},
    {"deployment_interactions": 50_000, "budget": 150_000, "outcome": "bootstrap"},
    {
        "outcome": "dataset",
        "normalize_features": False,
        "queue_size": 3,
        "deployment_interactions": "experiment",
    },
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(k) or "default")
def test_gymnasium_and_sb3_checkers(kwargs):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    _run_checker(check_env, make(**kwargs))
    _run_checker(lambda e: sb3_check_env(e, warn=True), make(**kwargs))


def test_checkers_on_ab_and_fresh_pools():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for env in (
        ExperimentQueueEnv(AB_SPEC, max_queue=4, exploration_interactions=20_000),
        ExperimentQueueEnv(
            SPEC.replace(n_experiments=8, n_queries=60), pool="fresh", max_queue=4, flatten=True
        ),
    ):
        _run_checker(check_env, env)
        _run_checker(lambda e: sb3_check_env(e, warn=True), env)


def test_spaces_and_defaults():
    env = make()
    ds = env.dataset
    assert env.action_space == gym.spaces.Discrete(6)
    assert env.observation_space["features"].shape == (6, 60)
    assert set(env.observation_space.spaces) == {"budget", "cost", "features", "valid"}
    # The paper's setting by default: 10^5 sessions per deployment, T = 3 * 10^5 (Table 4).
    assert (env.deployment_interactions, env.budget, env.cost_mode) == (100_000, 300_000, "equal")
    own = make(deployment_interactions="experiment")
    assert own.deployment_interactions is None and own.cost_mode == "experiment"
    assert own.budget == int(3 * np.median(ds.interactions))
    assert make(deployment_interactions=None).cost_mode == "experiment"  # None: the old spelling
    assert ds is cached_dataset(SPEC, 0)  # the fixed pool is shared and seeded by pool_seed
    assert make(pool_seed=1).dataset is not ds
    env = make(exploration_interactions=1_000, flatten=True)
    assert env.action_space.n == 12
    assert env.observation_space.shape == (6 * 60 + 1 + 6 + 6 + 6 + 6,)
    assert env.observation_space.dtype == np.float32
    ab = ExperimentQueueEnv(AB_SPEC, max_queue=3)
    assert ab.observation_space["features"].shape == (3, 56)
    assert (ab.deployment_interactions, ab.budget) == (2_000_000, 4_000_000)  # Table 5


def test_gym_make_with_wrappers_has_no_warnings():
    spec = gym.envs.registration.EnvSpec(
        id="labsched-test/ExperimentQueue-v0",
        entry_point="labsched.envs.queue.experiment_queue:ExperimentQueueEnv",
        kwargs={"spec": SPEC, "max_queue": 5, "exploration_interactions": 5_000},
    )
    env = gym.make(spec)
    assert isinstance(env.unwrapped, ExperimentQueueEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obs, info = env.reset(seed=0)
        done = False
        while not done:
            obs, _, done, _, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
            assert env.observation_space.contains(obs)
    env.close()


# ----------------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------------


@st.composite
def configs(draw):
    max_queue = draw(st.integers(1, 8))
    fixed = draw(st.booleans())
    kwargs = {
        "max_queue": max_queue,
        "queue_size": draw(st.integers(1, max_queue)),
        "exploration_interactions": draw(st.sampled_from([0, 0, 3_000, 400_000])),
        "arrivals_per_budget": draw(st.sampled_from([0.0, 0.0, 2.0, 8.0])),
        "flatten": draw(st.booleans()),
        "outcome": draw(st.sampled_from(["resample", "bootstrap"] + ([] if fixed else ["dataset"]))),
    }
    costs = cached_dataset(SPEC, 0).interactions
    if fixed:
        kwargs["deployment_interactions"] = 30_000
        kwargs["budget"] = draw(st.sampled_from([30_000, 75_000, 200_000]))
    else:
        kwargs["deployment_interactions"] = "experiment"
        kwargs["budget"] = draw(
            st.sampled_from([int(costs.min()), int(np.median(costs)), int(4 * np.median(costs))])
        )
    return kwargs


def _expected_mask(env, info, explored):
    nq = env.max_queue
    queue, left = info["queue"], info["remaining_budget"]
    costs = env._costs
    deploy = np.array([q >= 0 and costs[q] <= left for q in queue])
    if not env._explore:
        return deploy
    explore = (queue >= 0) & ~explored & (env.exploration_interactions <= left)
    assert explore.shape == (nq,)
    return np.concatenate([deploy, explore])


@PROPERTY_SETTINGS
@given(kwargs=configs(), seed=st.integers(0, 2**31 - 1), p_invalid=st.sampled_from([0.0, 0.3]))
def test_episode_invariants(kwargs, seed, p_invalid):
    env = make(**kwargs)
    nq, budget = env.max_queue, env.budget
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    explored = np.zeros(nq, dtype=bool)
    deployed: list[int] = []
    total, steps, done = 0.0, 0, False
    success, _ = env.episode_outcomes
    assert info["action_mask"][:nq].any(), "reset must leave a deployable experiment"
    while not done:
        assert env.observation_space.contains(obs)
        mask = info["action_mask"]
        np.testing.assert_array_equal(mask, env.action_masks())
        np.testing.assert_array_equal(mask, _expected_mask(env, info, explored))
        queue = info["queue"]
        live = queue[queue >= 0]
        assert live.size == np.unique(live).size and not set(live) & set(deployed)
        if not kwargs["flatten"]:
            np.testing.assert_array_equal(obs["valid"], queue >= 0)
            assert obs["budget"][0] == pytest.approx(info["remaining_budget"] / budget)
        if rng.random() < p_invalid:
            a = int(rng.integers(env.action_space.n))
        else:
            a = int(rng.choice(np.flatnonzero(mask)))
        obs, r, done, trunc, info = env.step(a)
        steps += 1
        rec = info["record"]
        assert trunc is False and r in (0.0, 1.0)
        assert info["clipped"] == (not mask[a])
        if info["clipped"]:
            assert info["requested_action"] == a and rec.kind == "deploy"
            assert rec.slot == int(np.flatnonzero(mask[:nq])[0])
        assert rec.experiment == queue[rec.slot]
        assert rec.budget_before - rec.cost == info["remaining_budget"] >= 0
        if rec.kind == "deploy":
            assert rec.experiment not in deployed
            deployed.append(rec.experiment)
            assert r == float(rec.success) == float(success[rec.experiment])
            explored[rec.slot] = False
        else:
            assert r == 0.0 and not explored[rec.slot]
            explored[rec.slot] = True
        # slots refilled by arrivals start unexplored
        explored &= info["queue"] >= 0
        total += r
        assert info["q"] == total
    assert steps == len(info["schedule"]) and isinstance(info["schedule"][0], DeploymentRecord)
    assert not info["action_mask"][:nq].any()
    assert total == sum(rec.success for rec in info["schedule"]) == success[deployed].sum()
    assert info["spent"] == sum(rec.cost for rec in info["schedule"]) <= budget
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


# ----------------------------------------------------------------------------------------------
# Seeding and determinism
# ----------------------------------------------------------------------------------------------


def test_same_seed_same_trajectory_different_seed_differs():
    kw = {"exploration_interactions": 5_000, "arrivals_per_budget": 2.0}
    a = _greedy_episode(make(**kw), 7)
    b = _greedy_episode(make(**kw), 7)
    assert_same_trajectory(a, b)
    env = make(**kw)
    _greedy_episode(env, 99)
    assert_same_trajectory(a, _greedy_episode(env, 7))
    c = _greedy_episode(make(**kw), 8)
    assert [i["queue"].tolist() for _, _, i in a[:1]] != [i["queue"].tolist() for _, _, i in c[:1]]


def test_fresh_pool_is_drawn_from_the_seed():
    env = ExperimentQueueEnv(SPEC.replace(n_experiments=6, n_queries=60), pool="fresh", max_queue=3)
    env.reset(seed=1)
    f1 = env.dataset.features.copy()
    env.reset(seed=2)
    assert not np.array_equal(f1, env.dataset.features)
    env.reset(seed=1)
    np.testing.assert_array_equal(f1, env.dataset.features)


SCRIPT = """
import numpy as np
from labsched.envs.queue.experiment_queue import ExperimentQueueEnv
from labsched.envs.queue.search_world import QueueWorldSpec
spec = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=24)
env = ExperimentQueueEnv(spec, max_queue=6, exploration_interactions=5_000, arrivals_per_budget=2.0)
out = []
for seed in (123, 124):
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        obs, r, done, _, info = env.step(int(np.flatnonzero(info["action_mask"])[-1]))
        out.append((r, info["record"], float(obs["features"].sum())))
print(repr(out))
"""


def test_seeding_is_reproducible_across_processes():
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
        )
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout
    assert "DeploymentRecord" in runs[0].stdout and len(runs[0].stdout) > 200


# ----------------------------------------------------------------------------------------------
# Semantics
# ----------------------------------------------------------------------------------------------


def test_return_is_q_of_the_deployed_schedule_and_oracle_beats_random():
    env = make(deployment_interactions=50_000, budget=150_000, max_queue=8)
    ds = env.dataset
    p = ds.success_probability_at(50_000)
    oracle, random = [], []
    rng = np.random.default_rng(0)
    for seed in range(40):
        ep = _greedy_episode(env, seed, lambda m: int(np.flatnonzero(m)[np.argmax(p[env.queue[m]])]))
        oracle.append(sum(r for _, r, _ in ep))
        assert len(ep) - 1 == 3  # three deployments of 50k fit a budget of 150k
        ep = _greedy_episode(env, seed, lambda m: int(rng.choice(np.flatnonzero(m))))
        random.append(sum(r for _, r, _ in ep))
    assert np.mean(oracle) > np.mean(random) + 0.3


def test_outcome_modes():
    env = make(outcome="dataset", max_queue=24, deployment_interactions="experiment")
    env.reset(seed=0)
    success, stat = env.episode_outcomes
    np.testing.assert_array_equal(success, env.dataset.success)
    np.testing.assert_array_equal(stat, env.dataset.statistic)
    env = make(outcome="resample", max_queue=24, deployment_interactions=10)
    env.reset(seed=0)
    assert env.episode_outcomes[0].sum() == 0  # ten sessions are never significant


def test_exploration_reveals_and_costs():
    env = make(exploration_interactions=5_000, max_queue=4)
    obs, info = env.reset(seed=3)
    left = info["remaining_budget"]
    obs, r, _, _, info = env.step(4 + 2)  # explore slot 2
    assert r == 0.0 and info["record"].kind == "explore" and info["record"].cost == 5_000
    assert info["remaining_budget"] == left - 5_000
    assert obs["explored"].tolist() == [0, 0, 1, 0]
    assert obs["exploration"][[0, 1, 3]].tolist() == [0.0, 0.0, 0.0]
    assert not info["action_mask"][4 + 2] and info["action_mask"][2]
    assert info["n_explored"] == 1


def test_explore_twice_raises_in_raise_mode():
    strict = make(exploration_interactions=5_000, max_queue=4, invalid_action="raise")
    strict.reset(seed=3)
    strict.step(6)
    with pytest.raises(ValueError, match="already explored"):
        strict.step(6)


def test_arrivals_fill_free_slots():
    env = make(
        max_queue=3,
        queue_size=1,
        arrivals_per_budget=50.0,
        budget=int(8 * np.median(cached_dataset(SPEC, 0).interactions)),
        deployment_interactions="experiment",
    )
    _, info = env.reset(seed=0)
    assert (info["queue"] >= 0).sum() == 1
    seen = set(info["queue"][info["queue"] >= 0].tolist())
    done = False
    while not done:
        _, _, done, _, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        q = info["queue"][info["queue"] >= 0].tolist()
        seen |= set(q)
    assert len(seen) > 3  # experiments arrived over time


def test_reset_order_option_and_guarantee():
    env = make(max_queue=4)
    _, info = env.reset(seed=0, options={"order": [5, 3, 1, 0, 2]})
    assert info["queue"].tolist() == [5, 3, 1, 0]
    with pytest.raises(ValueError, match="order"):
        env.reset(options={"order": [1, 1]})
    # a tiny budget: the queue is repaired so that something fits
    costs = env.dataset.interactions
    cheap = int(np.argmin(costs))
    expensive = [int(i) for i in np.argsort(costs)[::-1][:3]]
    env = make(max_queue=3, budget=int(costs.min()), deployment_interactions="experiment")
    _, info = env.reset(seed=0, options={"order": [*expensive, cheap]})
    assert info["queue"].tolist() == [expensive[0], expensive[1], cheap]
    assert info["action_mask"].tolist() == [False, False, True]


def test_dataset_subset_as_pool():
    ds = cached_dataset(SPEC, 0).subset([0, 2, 4, 6, 8])
    env = ExperimentQueueEnv(dataset=ds, max_queue=5)
    _, info = env.reset(seed=0)
    assert sorted(info["queue"].tolist()) == [0, 1, 2, 3, 4]


def test_invalid_actions_clip_and_raise():
    env = make(max_queue=3, queue_size=2)
    _, info = env.reset(seed=0)
    empty = int(np.flatnonzero(info["queue"] < 0)[0])
    _, _, _, _, info = env.step(empty)
    assert info["clipped"] and info["requested_action"] == empty and info["record"].slot == 0
    strict = make(max_queue=3, queue_size=2, invalid_action="raise")
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="empty"):
        strict.step(2)
    with pytest.raises(ValueError, match=r"action must be in \[0, 3\)"):
        strict.step(3)
    with pytest.raises(TypeError, match="action"):
        strict.step(1.0)
    with pytest.raises(TypeError, match="action"):
        strict.step(True)
    _, _, _, _, info = strict.step(np.array([0]))  # SB3 passes one-element arrays
    assert info["record"].slot == 0


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"max_queue": 0}, ValueError, "max_queue"),
        ({"max_queue": 2, "queue_size": 3}, ValueError, "queue_size"),
        ({"budget": -1.0}, ValueError, "budget"),
        ({"budget": 10}, ValueError, "budget"),
        ({"budget": float("inf")}, ValueError, "budget"),
        ({"outcome": "magic"}, ValueError, "outcome"),
        ({"outcome": "dataset", "deployment_interactions": 1000}, ValueError, "deployment_interactions"),
        ({"pool": "other"}, ValueError, "pool"),
        ({"invalid_action": "ignore"}, ValueError, "invalid_action"),
        ({"feature_clip": 0.0}, ValueError, "feature_clip"),
        ({"exploration_interactions": -1}, ValueError, "exploration_interactions"),
        ({"arrivals_per_budget": -0.5}, ValueError, "arrivals_per_budget"),
        ({"deployment_interactions": 0}, ValueError, "deployment_interactions"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
        ({"n_queries": 1}, ValueError, "n_queries"),
        ({"max_queue": 2.0}, TypeError, "max_queue"),
        ({"budget": "big"}, TypeError, "budget"),
        ({"no_such_field": 1}, TypeError, "no_such_field"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        make(**kwargs)


def test_config_holds_the_validated_settings():
    env = make(max_queue=4, exploration_interactions=5_000, arrivals_per_budget=2)
    cfg = env.config
    assert isinstance(cfg, QueueEnvConfig) and cfg.explore
    assert (cfg.max_queue, cfg.queue_size, cfg.arrivals_per_budget) == (4, 4, 2.0)
    assert isinstance(cfg.arrivals_per_budget, float)
    assert (env.max_queue, env.queue_size, env.exploration_interactions) == (4, 4, 5_000)
    with pytest.raises(ValueError, match=r"queue_size must be an integer in \[1, 4\]"):
        QueueEnvConfig(max_queue=4, queue_size=5)


def test_bad_spec_and_dataset_arguments():
    with pytest.raises(TypeError, match="spec"):
        ExperimentQueueEnv(spec="interleaving")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dataset"):
        ExperimentQueueEnv(dataset=object())  # type: ignore[arg-type]
    ds = cached_dataset(SPEC, 0)
    with pytest.raises(TypeError, match="overrides"):
        ExperimentQueueEnv(dataset=ds, n_queries=300)
    with pytest.raises(ValueError, match="pool"):
        ExperimentQueueEnv(dataset=ds, pool="fresh")
    with pytest.raises(ValueError, match="spec"):
        ExperimentQueueEnv(QueueWorldSpec(), dataset=ds)


def test_render_ansi_and_without_mode():
    env = make(render_mode="ansi", exploration_interactions=5_000, max_queue=3)
    env.reset(seed=0)
    env.step(3)
    text = env.render()
    assert "budget" in text and "explored" in text and "exp" in text
    quiet = make()
    quiet.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert quiet.render() is None


def test_maskable_ppo_runs():
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO

    for flat in (False, True):
        env = make(max_queue=4, exploration_interactions=5_000, flatten=flat)
        policy = "MlpPolicy" if flat else "MultiInputPolicy"
        model = MaskablePPO(policy, env, n_steps=32, batch_size=16, n_epochs=1, seed=0, verbose=0)
        model.learn(64)
        obs, info = env.reset(seed=0)
        action, _ = model.predict(obs, action_masks=env.action_masks())
        assert info["action_mask"][int(action)]


# ----------------------------------------------------------------------------------------------
# Speed: the reset fast path and the generation message
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [SPEC, AB_SPEC], ids=["interleaving", "ab"])
@pytest.mark.parametrize("source", ["model", "bootstrap"])
def test_fast_verdicts_equal_the_full_outcome_records(spec, source):
    """The env's reset draws the same counts and reaches the same verdicts as
    ExperimentDataset.sample_outcomes (the sign / z tests), for any sizes."""
    ds = cached_dataset(spec, 0)
    for n in (np.full(len(ds), 1), np.full(len(ds), 2_000), np.asarray(ds.interactions)):
        for seed in range(5):
            ref = ds.sample_outcomes(n, np.random.default_rng(seed), source=source)
            success, stat = fast_verdicts(
                ds.experiment_type, ds.session_law(source), n, np.random.default_rng(seed), 0.05
            )
            np.testing.assert_array_equal(success, np.asarray(ref.success, dtype=bool))
            np.testing.assert_allclose(stat, np.asarray(ref.statistic, dtype=float), rtol=0, atol=1e-15)


def test_slow_world_generation_says_so(capsys, monkeypatch):
    real = generation.generate_dataset

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "SLOW_GENERATION_SECONDS", 0.05)
    monkeypatch.setattr(generation, "generate_dataset", slow)
    generation.cached_dataset(SPEC.replace(n_experiments=6), 1234)
    err = capsys.readouterr().err
    assert "generating the synthetic interleaving experiment world (dataset seed 1234)" in err
    assert "world generated in" in err
    generation.cached_dataset(SPEC.replace(n_experiments=6), 1234)  # cached: silent
    assert capsys.readouterr().err == ""
