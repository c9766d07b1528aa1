"""The environment in regret mode: the budgeted BO run a schedule drives."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import labsched
from labsched import LabSpec, baselines
from labsched.envs.bo.objectives import make_objective

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=4.0)


def _play(env, agent, seed, options=None):
    obs, info = env.reset(seed=seed, options=options)
    rewards = []
    done = False
    while not done:
        action, _ = agent.predict(obs)
        obs, r, done, _, info = env.step(action)
        rewards.append(r)
    return rewards, info


@pytest.mark.parametrize("selector", ["kb-ei", "thompson", "random", "simulation-matching"])
def test_regret_episode_via_make(selector):
    env = gym.make(
        labsched.CONCURRENT_LABS_ID, spec=SMALL, reward="regret", objective="hartmann3", selector=selector
    )
    agent = baselines.make("onfcp", SMALL)
    rewards, info = _play(env, agent, 0)
    assert all(r == 0.0 for r in rewards[:-1])
    assert rewards[-1] == pytest.approx(-info["regret"])
    assert info["regret"] >= 0.0
    obj = make_objective("hartmann3")
    assert info["regret"] == pytest.approx(obj.optimum_value - obj(info["best_x"]))
    # Observed: the 5 initial points (d = 3) plus every completed experiment.
    assert info["n_initial"] == 5
    assert len(info["X"]) == len(info["y"]) == 5 + info["completed"]
    lo, hi = np.array(obj.bounds).T
    assert np.all(info["X"] >= lo - 1e-12) and np.all(info["X"] <= hi + 1e-12)
    # The predicted best is an observed input.
    assert np.any(np.all(np.isclose(info["X"], info["best_x"]), axis=1))
    assert info["cpe"] == sum(rec.prior for rec in info["log"])


def test_observation_space_is_the_same_as_in_cpe_mode():
    a = labsched.ConcurrentLabsEnv(SMALL)
    b = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective="cosines", selector="random")
    assert a.observation_space == b.observation_space and a.action_space == b.action_space


def test_regret_is_zero_when_the_optimiser_is_observed():
    obj = make_objective("cosines")
    rng = np.random.default_rng(1)
    X0 = np.vstack([np.array(obj.optimizer), obj.sample_uniform(rng, 4)])
    env = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective=obj, selector="random")
    _, info = _play(env, baselines.make("onfcp", SMALL), 3, options={"initial_points": X0})
    assert info["regret"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(info["best_x"], obj.optimizer)


def test_common_random_numbers_across_schedulers():
    env = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective="cosines", selector="kb-ei")
    infos = {}
    for name in ("onfcp", "ofstaged", "sequential"):
        _, infos[name] = _play(env, baselines.make(name, SMALL), 11)
    x0 = {k: v["X"][: v["n_initial"]] for k, v in infos.items()}
    np.testing.assert_array_equal(x0["onfcp"], x0["ofstaged"])
    np.testing.assert_array_equal(x0["onfcp"], x0["sequential"])
    durations = {k: {rec.index: rec.end - rec.start for rec in v["log"]} for k, v in infos.items()}
    shared = set(durations["onfcp"]) & set(durations["ofstaged"])
    assert shared
    for i in shared:
        assert durations["onfcp"][i] == pytest.approx(durations["ofstaged"][i], abs=1e-12)


def test_same_seed_same_regret_and_different_seed_differs():
    def run(seed):
        env = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective="branin", selector="thompson")
        return _play(env, baselines.make("ofstaged", SMALL), seed)[1]

    a, b, c = run(5), run(5), run(6)
    assert a["regret"] == b["regret"]
    np.testing.assert_array_equal(a["X"], b["X"])
    assert not np.array_equal(a["X"], c["X"])


def test_cpe_mode_with_objective_reports_regret_and_cpe_rewards():
    env = labsched.ConcurrentLabsEnv(SMALL, objective="cosines", selector="random")
    rewards, info = _play(env, baselines.make("onfcp", SMALL), 0)
    assert sum(rewards) == info["cpe"]
    assert "regret" in info and info["regret"] >= 0


def test_noise_changes_outcomes_not_inputs_of_initial_design():
    kw = dict(reward="regret", objective="cosines", selector="random")
    _, a = _play(labsched.ConcurrentLabsEnv(SMALL, **kw), baselines.make("onfcp", SMALL), 2)
    _, b = _play(labsched.ConcurrentLabsEnv(SMALL, noise_std=0.1, **kw), baselines.make("onfcp", SMALL), 2)
    np.testing.assert_array_equal(a["X"][:5], b["X"][:5])
    assert not np.allclose(a["y"][:5], b["y"][:5])
    obj = make_objective("cosines")
    np.testing.assert_allclose(a["y"], obj(a["X"]))  # noise free by default


def test_user_callable_objective():
    obj = make_objective(
        lambda x: -np.sum((x - 0.3) ** 2, axis=-1), bounds=[(0, 1), (0, 1)], optimum_value=0.0
    )
    env = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective=obj, selector="kb-ei")
    _, info = _play(env, baselines.make("sequential", SMALL.replace(horizon=40.0)), 0)
    assert 0.0 <= info["regret"] < 0.05


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward": "regret", "objective": "nope"}, "known"),
        ({"reward": "regret", "selector": "nope"}, "known"),
        ({"reward": "regret", "noise_std": -1.0}, "noise_std"),
        ({"reward": "regret", "n_initial": 0}, "n_initial"),
        ({"reward": "regret", "gp": "magic"}, "gp"),
    ],
)
def test_bad_regret_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        labsched.ConcurrentLabsEnv(SMALL, **kwargs)


def test_bad_initial_points():
    env = labsched.ConcurrentLabsEnv(SMALL, reward="regret", objective="cosines", selector="random")
    with pytest.raises(ValueError, match="initial_points"):
        env.reset(seed=0, options={"initial_points": np.zeros((3, 5))})
