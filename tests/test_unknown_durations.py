"""Unknown duration laws (issue 14): the spec's fields, what the environment shows, the online
estimator and the baselines that re-plan on it."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import labsched  # noqa: F401  (registers the ids)
from labsched import ConcurrentLabsEnv, LabSpec
from labsched.baselines import BASELINES, make
from labsched.baselines.labs.estimated import EstimatedDurations, EstimatedPolicySwitching
from labsched.baselines.labs.online import OnMEL
from labsched.envs._lib.rollout import play_episode
from labsched.envs.labs.duration_estimate import (
    conditional_moments,
    estimate_duration,
    fit_law,
    law_moments,
)
from labsched.envs.labs.durations import (
    Deterministic,
    Exponential,
    Gamma,
    LogNormal,
    TruncatedNormal,
    Uniform,
)
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

GUESS = TruncatedNormal()
SLOW = Gamma(shape=10.0, scale=0.13)  # mean 1.3, std 0.411


def unknown(truth=SLOW, **kw) -> LabSpec:
    return LabSpec(duration=truth, known_durations=False, duration_guess=GUESS, **kw)


# ---------------------------------------------------------------------- the spec
def test_spec_fields_defaults_and_view():
    paper = LabSpec()
    assert paper.known_durations is True and paper.duration_guess is None
    assert "known_durations" not in repr(paper) and "known_durations" not in paper.to_dict()
    assert paper.scheduler_view is paper and paper.first_guess == paper.duration
    spec = unknown()
    view = spec.scheduler_view
    assert view.duration == GUESS and view.known_durations is False
    assert view.scheduler_view is view  # idempotent
    assert LabSpec.from_dict(spec.to_dict()) == spec
    # without a guess the first guess is the paper's law
    assert LabSpec(duration=SLOW, known_durations=False).first_guess == TruncatedNormal()


def test_spec_bad_inputs():
    with pytest.raises(TypeError, match="known_durations"):
        LabSpec(known_durations="no")
    with pytest.raises(ValueError, match=r"duration_guess.*known_durations=False"):
        LabSpec(duration_guess=GUESS)
    with pytest.raises(TypeError, match="duration_guess"):
        LabSpec(known_durations=False, duration_guess=1.0)
    with pytest.raises(ValueError, match="known_durations=False needs labs sharing one duration law"):
        LabSpec(n_labs=2, known_durations=False, lab_durations=[Deterministic(1.0), Deterministic(2.0)])


# ---------------------------------------------------------------------- what the env shows
def _trajectory(env, actions, seed):
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        obs, _, done, _, info = env.step(a)
        out.append((obs, info))
        if done:
            break
    return out


def _equal(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.mark.parametrize("speeds", [None, [1.0, 2.0, 1.0, 0.5]])
def test_observations_do_not_depend_on_the_true_law_until_a_completion(speeds):
    """Two envs whose true laws differ (means 1.0 and 1.3) but whose first guess is equal: same
    observations and infos until the first experiment ends; after it they differ."""
    actions = [3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    kw = {"n_experiments": 8, "n_labs": 4, "lab_speeds": speeds}
    env_a = ConcurrentLabsEnv(unknown(TruncatedNormal(mu=1.0, sigma=0.2), **kw))
    env_b = ConcurrentLabsEnv(unknown(Gamma(shape=30.0, scale=1.3 / 30.0), **kw))
    assert env_a.observation_space == env_b.observation_space
    for seed in range(5):
        ta, tb = _trajectory(env_a, actions, seed), _trajectory(env_b, actions, seed)
        for j, ((oa, ia), (ob, ib)) in enumerate(zip(ta, tb, strict=False)):
            ended = ia["completed"] + ia.get("failed", 0) + ia["running"] < ia["started"]
            if ended or ia["started"] > ia["running"]:
                break  # the first end: the truth shows from here on
            assert _equal(oa, ob), (seed, j)
            assert ia.keys() == ib.keys()
            for key in ia:
                assert np.array_equal(ia[key], ib[key]), (seed, j, key)
        else:
            pytest.fail("no experiment ended")
        assert not (_equal(oa, ob) and ia["time"] == ib["time"])  # the laws do show after it


def test_elapsed_in_units_of_the_first_guess_and_vector_env_agrees():
    spec = unknown(n_experiments=8, n_labs=4)
    env = ConcurrentLabsEnv(spec)
    known = ConcurrentLabsEnv(spec.replace(known_durations=True, duration_guess=None))
    env.reset(seed=0)
    known.reset(seed=0)
    obs, *_ = env.step(2)
    obs_k, *_ = known.step(2)
    t = 0.1
    np.testing.assert_allclose(obs["elapsed"][:2], t / GUESS.mean, rtol=1e-6)
    np.testing.assert_allclose(obs_k["elapsed"][:2], t / SLOW.mean, rtol=1e-6)
    vec = ConcurrentLabsVectorEnv(2, spec)
    vobs, _ = vec.reset(seed=3)
    rng = np.random.default_rng(0)
    singles = [ConcurrentLabsEnv(spec) for _ in range(2)]
    sobs = [e.reset(seed=3 + i)[0] for i, e in enumerate(singles)]
    for _ in range(30):
        for i in range(2):
            assert _equal({k: v[i] for k, v in vobs.items()}, sobs[i])
        acts = np.array([rng.integers(0, 3), rng.integers(0, 3)])
        vobs, _, term, _, _ = vec.step(acts)
        if term.any():
            break
        sobs = [e.step(int(a))[0] for e, a in zip(singles, acts, strict=True)]


def test_gym_make_passes_the_fields():
    env = gym.make("labsched/ConcurrentLabs-v0", known_durations=False, duration_guess=GUESS, duration=SLOW)
    assert env.unwrapped.lab_spec.known_durations is False
    assert env.unwrapped.lab_spec.scheduler_view.duration == GUESS


# ---------------------------------------------------------------------- the estimator
def test_estimator_without_data_is_the_guess_and_closed_form():
    est = estimate_duration(GUESS)
    m0, v0 = law_moments(GUESS)
    assert est.law is GUESS and est.mean == m0 and est.std == math.sqrt(v0)
    x, w = np.array([1.0, 2.0, 3.0]), 2.0
    est = estimate_duration(GUESS, x, prior_weight=w)
    m = (w * m0 + 6.0) / (w + 3)
    v = (w * v0 + 2.0 + w * 3 * (2.0 - m0) ** 2 / (w + 3)) / (w + 3)
    assert est.mean == pytest.approx(m, rel=1e-12) and est.std == pytest.approx(math.sqrt(v), rel=1e-12)
    assert est.n_ended == 3 and est.n_censored == 0 and est.iterations == 0


def test_law_moments():
    assert law_moments(Gamma(shape=4.0, scale=0.25)) == pytest.approx((1.0, 0.25), rel=2e-3)
    assert law_moments(Deterministic(2.0)) == (2.0, 0.0)


def test_estimator_converges_to_the_true_mean():
    """2,000 draws of Gamma(10, 0.13) (mean 1.3, std 0.411; standard error of the mean 0.009):
    with seed 0 the estimate is within 0.03 (over 3 standard errors) of both moments."""
    x = SLOW.sample(np.random.default_rng(0), 2000)
    est = estimate_duration(GUESS, x)
    assert abs(est.mean - 1.3) < 0.03
    assert abs(est.std - math.sqrt(10) * 0.13) < 0.03


def test_censoring_removes_the_early_completion_bias():
    """Ten experiments start together; at the third end, the three ended durations are the three
    shortest of ten. Over 300 seeded episodes the estimate from them alone is biased low (0.95,
    below even the guess); counting the seven running ones as censored (> t) lifts it to 1.12,
    half-way to the true 1.3 (the prior, worth 4 of the 14 observations, still pulls to 1)."""
    rng = np.random.default_rng(1)
    plain, censored = [], []
    for _ in range(300):
        d = np.sort(SLOW.sample(rng, 10))
        t = d[2]
        plain.append(estimate_duration(GUESS, d[:3]).mean)
        censored.append(estimate_duration(GUESS, d[:3], np.full(7, t)).mean)
    assert np.mean(plain) < 1.0  # below even the guess: the shortest of ten
    assert np.mean(censored) - np.mean(plain) > 0.15
    assert np.mean(censored) < 1.3


def test_conditional_moments():
    e = np.array([0.0, 0.5, 2.0])
    first, second = conditional_moments(Exponential(2.0), e)  # memoryless: e + 2
    np.testing.assert_allclose(first, e + 2.0, rtol=5e-3)
    np.testing.assert_allclose(second - first**2, 4.0, rtol=2e-3)
    first, second = conditional_moments(Deterministic(1.5), [0.3, 2.0])  # past the atom: ends at e
    np.testing.assert_allclose(first, [1.5, 2.0])
    np.testing.assert_allclose(second, [2.25, 4.0])


def test_fit_law_keeps_the_family():
    g = fit_law(Gamma(shape=3.0, scale=1.0), 2.0, 0.5)
    assert isinstance(g, Gamma) and g.mean == pytest.approx(2.0)
    assert g.shape * g.scale**2 == pytest.approx(0.25)
    ln = fit_law(LogNormal(), 2.0, 0.5)
    assert isinstance(ln, LogNormal) and ln.mean == pytest.approx(2.0)
    u = fit_law(Uniform(), 2.0, 0.5)
    assert isinstance(u, Uniform) and (u.low + u.high) / 2 == pytest.approx(2.0)
    assert (u.high - u.low) / math.sqrt(12) == pytest.approx(0.5)
    tn = fit_law(GUESS, 2.0, 0.5)
    assert isinstance(tn, TruncatedNormal) and (tn.mu, tn.sigma) == (2.0, 0.5)
    assert isinstance(fit_law(Exponential(1.0), 2.0, 0.5), Gamma)
    assert fit_law(GUESS, 2.0, 0.0) == Deterministic(2.0)


def test_estimator_bad_inputs():
    with pytest.raises(ValueError, match="ended"):
        estimate_duration(GUESS, [1.0, 0.0])
    with pytest.raises(ValueError, match="ended"):
        estimate_duration(GUESS, [math.nan])
    with pytest.raises(ValueError, match="running"):
        estimate_duration(GUESS, [1.0], [-0.1])
    with pytest.raises(ValueError, match="prior_weight"):
        estimate_duration(GUESS, [1.0], prior_weight=0.0)
    with pytest.raises(TypeError, match="guess"):
        estimate_duration(1.0, [1.0])
    with pytest.raises(ValueError, match="mean"):
        fit_law(GUESS, -1.0, 0.1)


# ---------------------------------------------------------------------- the baselines
def test_registered_names():
    for name in ("ps-estimated", "onmel-estimated", "keep-busy-estimated"):
        assert name in BASELINES


@pytest.mark.parametrize("name", ["ps-estimated", "onmel-estimated", "keep-busy-estimated"])
def test_wrappers_stay_feasible_and_see_the_true_durations(name):
    """With invalid_action='raise' an infeasible action would raise; the durations the wrapper
    reads off the observations are the env's (speed-corrected, failures included)."""
    spec = unknown(n_experiments=12, n_labs=4, horizon=6.0, lab_speeds=[1.0, 2.0, 1.0, 1.5], failure_prob=0.1)
    policy = make(name, spec, seed=0)
    assert policy.spec.duration == GUESS  # the wrapper keeps only the scheduler's view
    env = ConcurrentLabsEnv(spec, invalid_action="raise")
    for seed in range(3):
        info = play_episode(policy, env, seed=seed).info
        assert info["started"] <= spec.n_experiments
        assert info["cpe"] == sum(r.prior for r in info["log"])
        records = info["log"] + info["failed_log"]
        truth = np.array([(r.end - r.start) * spec.lab_speed_factors[r.lab] for r in records])
        seen = policy._memory[0].ended
        assert 0 < len(seen) <= len(truth)
        for d in seen:
            assert np.min(np.abs(truth - d)) < 1e-5


def test_wrapper_starts_like_the_baseline_given_the_first_guess():
    spec = unknown()
    env = ConcurrentLabsEnv(spec)
    obs, _ = env.reset(seed=0)
    wrapped = make("ps-estimated", spec, seed=0)
    plain = make("ps", spec.scheduler_view, seed=0)
    assert int(wrapped.predict(obs)[0]) == int(plain.predict(obs)[0])
    assert wrapped.estimate().law is GUESS


def test_wrapper_learns_the_law_over_an_episode():
    spec = unknown(Deterministic(1.3), n_experiments=20, n_labs=10, horizon=8.0)
    policy = make("ps-estimated", spec, seed=0)
    play_episode(policy, ConcurrentLabsEnv(spec), seed=0)
    est = policy.estimate()
    assert est.n_ended >= 10
    assert abs(est.mean - 1.3) < abs(GUESS.mean - 1.3) / 2
    assert policy.n_rebuilds >= 1


def test_wrapper_bad_inputs():
    spec = unknown()
    with pytest.raises(ValueError, match="prior_weight"):
        make("ps-estimated", spec, prior_weight=0.0)
    with pytest.raises(ValueError, match="replan_rtol"):
        make("ps-estimated", spec, replan_rtol=-1.0)
    with pytest.raises(ValueError, match="n_simulations"):
        make("onmel-estimated", spec, n_simulations=0)
    with pytest.raises(TypeError, match="base"):
        EstimatedDurations(spec, base="ps")
    with pytest.raises(TypeError, match="spec"):
        EstimatedPolicySwitching("spec")
    assert EstimatedDurations(spec, base=OnMEL, n_simulations=100).base_policy is OnMEL
