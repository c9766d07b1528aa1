"""Online baselines, the registry and observation decoding."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import labsched
from labsched import LabSpec, baselines
from labsched.baselines import decode_observation, min_eager_labs
from labsched.envs.labs.durations import Deterministic, Gamma, LogNormal, TruncatedNormal, Uniform
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.evaluation.labs.cpe_table import sequential_horizon
from labsched.evaluation.rollout import run_episodes, summarize

PAPER = LabSpec()


def _play(agent, spec, seeds, **env_kwargs):
    return run_episodes(agent, spec, len(seeds), seed=seeds[0], env_kwargs=env_kwargs)


def test_onfcp_cpe_is_exactly_55_on_the_paper_setting():
    # Ten start at t = 0 with prior 0; each of the next ten refills a lab at the j-th completion
    # and so has prior j: 1 + ... + 10 = 55 whenever all complete (always, at h = 4).
    for h in (4.0, 5.0, 6.0):
        res = run_episodes(baselines.make("onfcp", PAPER.replace(horizon=h)), PAPER.replace(horizon=h), 50)
        assert {r.cpe for r in res} == {55}
        assert {r.completed for r in res} == {20}


def test_sequential_cpe_is_exactly_190_with_a_long_horizon():
    spec = PAPER.replace(horizon=sequential_horizon(PAPER))
    res = run_episodes(baselines.make("sequential", spec), spec, 20)
    assert {r.cpe for r in res} == {190}


@pytest.mark.parametrize("decide_on_completion", [True, False])
def test_sequential_with_decisions_on_grid_only(decide_on_completion):
    spec = PAPER.replace(horizon=60.0, duration=Deterministic(1.0))
    res = _play(baselines.make("sequential", spec), spec, [0], decide_on_completion=decide_on_completion)
    assert res[0].cpe == 190


def test_onmel_cpe_formula_and_lab_count_minimal():
    for h in (4.0, 5.0, 6.0):
        spec = PAPER.replace(horizon=h)
        agent = baselines.make("onmel", spec, seed=0)
        est = agent.estimate
        k = est.n_labs
        assert est.safe and est.p_complete >= spec.p_safe
        assert est.std_error == pytest.approx(math.sqrt(est.p_complete * (1 - est.p_complete) / 20_000))
        # k - 1 labs is not safe: an independent estimate lies clearly below p_safe.
        if k > 1:
            rng = np.random.default_rng(123)
            p_less = simulate_keep_busy(spec, k - 1, 20_000, rng).all_completed(20).mean()
            assert p_less < spec.p_safe
        # With k labs busy, the j-th refill has prior j, so CPE = (n - k)(n - k + 1) / 2 exactly
        # whenever all experiments complete.
        res = run_episodes(agent, spec, 100)
        full = [r.cpe for r in res if r.completed == 20]
        assert set(full) == {(20 - k) * (21 - k) // 2}
        assert summarize(res, 20).completion_rate >= spec.p_safe - 0.04


def test_min_eager_labs_best_effort_when_nothing_is_safe():
    spec = LabSpec(n_experiments=100, n_labs=2, horizon=3.0)
    est = min_eager_labs(spec, n_simulations=2_000)
    assert est.n_labs == 2 and not est.safe and est.p_complete == 0.0
    agent = baselines.make("onmel", spec, n_simulations=2_000)
    assert agent.k == 2


def test_random_policy_only_valid_actions_and_reproducible():
    spec = LabSpec(n_experiments=12, n_labs=4, horizon=4.0)
    env = labsched.ConcurrentLabsEnv(spec, invalid_action="raise")
    cpes = []
    for _ in range(2):
        agent = baselines.make("random", spec, seed=7)
        out = []
        for ep in range(20):
            obs, info = env.reset(seed=ep)
            done = False
            while not done:
                a, _ = agent.predict(obs)
                assert info["action_mask"][int(a)]
                obs, _, done, _, info = env.step(a)
            out.append(info["cpe"])
        cpes.append(out)
    assert cpes[0] == cpes[1]


def test_registry_unknown_name_lists_known():
    with pytest.raises(ValueError) as err:
        baselines.make("nope", PAPER)
    for name in ("sequential", "onfcp", "onmel", "random"):
        assert name in str(err.value)
    with pytest.raises(TypeError):
        baselines.make(3, PAPER)
    with pytest.raises(TypeError, match="LabSpec"):
        baselines.make("onfcp", "not a spec")
    assert isinstance(baselines.make("OnFCP"), baselines.OnFCP)


def test_decode_observation_dict_flat_and_batched_agree():
    spec = LabSpec(n_experiments=9, n_labs=3, horizon=4.0)
    env_d = labsched.ConcurrentLabsEnv(spec)
    env_f = labsched.ConcurrentLabsEnv(spec, flatten=True)
    od, _ = env_d.reset(seed=3)
    of, _ = env_f.reset(seed=3)
    for a in (2, 0, 1, 0, 0, 3, 0):
        od, *_, info = env_d.step(a)
        of, *_ = env_f.step(a)
        (sd,) = decode_observation(od, spec)
        (sf,) = decode_observation(of, spec)
        assert sd.completed == sf.completed == info["completed"]
        assert sd.started == sf.started == info["started"]
        assert sd.time == pytest.approx(info["time"], abs=1e-5)
        np.testing.assert_array_equal(sd.busy, sf.busy)
        np.testing.assert_allclose(sd.elapsed, sf.elapsed, atol=1e-5)
        running = {r.lab: info["time"] - r.start for r in env_d.running_records()}
        for lab in range(3):
            assert sd.busy[lab] == (lab in running)
            assert sd.elapsed[lab] == pytest.approx(running.get(lab, 0.0), abs=1e-5)
    batch = {k: np.stack([v, v]) for k, v in od.items()}
    states = decode_observation(batch, spec)
    assert len(states) == 2 and states[1].started == sd.started
    with pytest.raises(ValueError, match="2 \\* n_labs \\+ 4"):
        decode_observation(np.zeros(5, dtype=np.float32), spec)


def test_predict_shapes_single_and_batched():
    spec = LabSpec(n_experiments=6, n_labs=3, horizon=3.0)
    env = labsched.ConcurrentLabsEnv(spec)
    obs, _ = env.reset(seed=0)
    agent = baselines.make("onfcp", spec)
    a, state = agent.predict(obs)
    assert np.asarray(a).shape == () and int(a) == 3 and state is None
    batch = {k: np.stack([v, v, v]) for k, v in obs.items()}
    a, _ = agent.predict(batch, episode_start=np.ones(3, dtype=bool))
    assert a.shape == (3,) and a.tolist() == [3, 3, 3]


@pytest.mark.parametrize(
    "duration",
    [Gamma(10.0, 0.1), Uniform(0.5, 1.5), LogNormal(0.0, 0.3)],
    ids=["gamma", "uniform", "lognormal"],
)
@pytest.mark.parametrize("name", ["sequential", "onfcp", "onmel", "random"])
def test_evaluate_policy_runs_online_baselines(name, duration):
    spec = LabSpec(n_experiments=10, n_labs=4, horizon=4.0, duration=duration)
    if name == "sequential":
        spec = spec.replace(horizon=sequential_horizon(spec))
    agent = baselines.make(name, spec, **({"n_simulations": 2_000} if name == "onmel" else {}))
    venv = make_vec_env(labsched.CONCURRENT_LABS_ID, n_envs=2, seed=0, env_kwargs={"spec": spec})
    mean, std = evaluate_policy(agent, venv, n_eval_episodes=6)
    assert 0 <= mean <= spec.max_cpe
    if name == "sequential":
        assert mean == spec.max_cpe and std == 0


def test_truncated_normal_paper_default():
    assert LabSpec().duration == TruncatedNormal(mu=1.0, sigma=math.sqrt(0.1))
    assert gym.spec(labsched.CONCURRENT_LABS_ID).entry_point.endswith("ConcurrentLabsEnv")


ALL_OPTIONS = {"onmel": {"n_simulations": 2_000}, "ps": {"n_simulations": 48}}


@pytest.mark.parametrize(
    "duration",
    [Gamma(10.0, 0.1), Uniform(0.5, 1.5), LogNormal(0.0, 0.3)],
    ids=["gamma", "uniform", "lognormal"],
)
@pytest.mark.parametrize("name", ["ofstaged", "ofil", "ps"])
def test_evaluate_policy_runs_planning_baselines(name, duration):
    spec = LabSpec(n_experiments=10, n_labs=4, horizon=4.0, duration=duration)
    agent = baselines.make(name, spec, seed=0, **ALL_OPTIONS.get(name, {}))
    venv = make_vec_env(labsched.CONCURRENT_LABS_ID, n_envs=2, seed=0, env_kwargs={"spec": spec})
    mean, _ = evaluate_policy(agent, venv, n_eval_episodes=4)
    assert 0 <= mean <= spec.max_cpe


def test_every_registered_baseline_has_a_docstring_and_name():
    assert set(baselines.BASELINES) == {
        "sequential",
        "onfcp",
        "onmel",
        "ofstaged",
        "ofil",
        "ps",
        "random",
        "ps-calibrated",
        "keep-busy-calibrated",
        "clairvoyant",
        "ps-estimated",
        "onmel-estimated",
        "keep-busy-estimated",
    }
    for name, cls in baselines.BASELINES.items():
        assert cls.name == name and (cls.__doc__ or "").strip()
