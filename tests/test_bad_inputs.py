"""Every bad input of the concurrent-labs env, its duration models and its baselines is caught
(issue 16): a ``ValueError``/``TypeError`` naming the parameter and its allowed values, never a
silent coercion or a crash later on."""

from __future__ import annotations

import argparse
import dataclasses
import math
import tracemalloc

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import labsched  # noqa: F401  (registers the environment)
from labsched import baselines
from labsched.baselines.labs.online import min_eager_labs
from labsched.envs import ConcurrentLabsEnv, LabSpec
from labsched.envs.bo.episode import REGRET_RTOL, scored_regret
from labsched.envs.bo.objectives import make_objective
from labsched.envs.labs.duration_model import EXTREME_SF
from labsched.envs.labs.durations import (
    Deterministic,
    Discrete,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    TruncatedNormal,
    Uniform,
    parse_duration,
)

SMALL = LabSpec(n_experiments=6, n_labs=3, horizon=4.0)


def _play(env: gym.Env, policy: baselines.BaselinePolicy, seed: int = 0) -> dict:
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        action, _ = policy.predict(obs)
        obs, _, done, _, info = env.step(action)
    return info


# ------------------------------------------------------------------ duration models: overflow


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: LogNormal(mu=800.0), "mu"),  # the mean exp(800.045) overflows
        (lambda: LogNormal(mu=709.0, sigma=1.0), "sigma"),  # mean fine, 1 - 2**-53 quantile overflows
        (lambda: LogNormal(mu=-800.0), "mu"),  # the mean underflows to 0
        (lambda: LogNormal(mu=0.0, sigma=1e200), "sigma"),  # sigma**2 itself overflows
        (lambda: Gamma(shape=1e200, scale=1e200), "shape"),
        (lambda: Exponential(1e307), "mean_duration"),
        (lambda: Uniform(low=1e308, high=1.7e308), "low"),
        (lambda: TruncatedNormal(mu=1e308, sigma=1e308), "sigma"),
    ],
)
def test_duration_parameters_that_overflow_are_refused_at_construction(factory, name):
    with pytest.raises(ValueError, match="allowed") as err:
        factory()
    assert name in str(err.value)


def test_lognormal_mu_800_never_reaches_the_env():
    with pytest.raises(ValueError, match=r"mu \+ sigma\*\*2 / 2"):
        LabSpec(duration=LogNormal(mu=800.0))


def test_extreme_but_representable_laws_are_accepted_and_run():
    near = LogNormal(mu=700.0, sigma=0.3)  # mean ~ 1e304, largest quantile ~ 1e305: finite
    assert math.isfinite(near.mean) and math.isfinite(float(near.isf(EXTREME_SF)))
    env = ConcurrentLabsEnv(LabSpec(n_experiments=3, n_labs=2, horizon=1e305, epoch=1e305, duration=near))
    env.reset(seed=0)
    info = env.step(2)[4]
    assert info["started"] == 2


@pytest.mark.parametrize(
    "model",
    [
        TruncatedNormal(),
        LogNormal(),
        Gamma(),
        Exponential(),
        Uniform(),
        Deterministic(),
        Discrete(),
        Mixture(),
    ],
)
def test_every_default_law_has_a_finite_mean_and_largest_quantile(model):
    assert 0.0 < model.mean < math.inf
    assert math.isfinite(float(model.isf(EXTREME_SF)))


# ------------------------------------------------------------------ duration models: types


def test_mixture_of_a_single_model_says_wrap_it():
    with pytest.raises(TypeError, match=r"Mixture\.components.*single TruncatedNormal"):
        Mixture(components=TruncatedNormal(), weights=(1.0,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: Mixture(components=3, weights=(1.0,)), "Mixture.components"),
        (lambda: Mixture(components="ab", weights=(0.5, 0.5)), "Mixture.components"),
        (lambda: Mixture(components=(Gamma(),), weights=("x",)), "Mixture.weights"),
        (lambda: Discrete(values=("a", "b"), probs=(0.5, 0.5)), "Discrete.values"),
        (lambda: Discrete(values=(1.0, 2.0), probs="ab"), "Discrete.probs"),
    ],
)
def test_non_numeric_model_parameters_are_type_errors_naming_them(factory, name):
    with pytest.raises(TypeError, match=name):
        factory()


# ------------------------------------------------------------------ parse_duration


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("gamma:1", ["missing parameter scale", "gamma:shape,scale"]),
        ("deterministic:", ["missing parameter value", "deterministic:value"]),
        ("lognormal:0.5", ["missing parameter sigma"]),
        ("uniform:", ["missing parameter low, high"]),
        ("gamma:1,2,3", ["3 values given", "gamma:shape,scale"]),
        ("gamma:0,1", ["Gamma.shape", "> 0", "got 0.0"]),
        ("gamma:1,-2", ["Gamma.scale", "> 0"]),
        ("gamma:x,1", ["parameter shape must be a number", "'x'"]),
        ("truncnorm:1,0.3,,5", ["parameter low must be a number"]),
        ("exponential:nan", ["parameter mean_duration must be a number"]),
        ("lognormal:800,0.3", ["LogNormal", "mu + sigma**2 / 2"]),
        ("weibull:1,2", ["unknown duration kind 'weibull'", "gamma"]),
    ],
)
def test_parse_duration_names_the_parameter_and_the_reason(text, names):
    with pytest.raises(ValueError) as err:
        parse_duration(text)
    for name in names:
        assert name in str(err.value)


def test_parse_duration_keeps_the_valid_forms():
    assert parse_duration("gamma:10,0.1") == Gamma(10.0, 0.1)
    assert parse_duration(" Truncnorm : 1 , 0.3 ") == TruncatedNormal(1.0, 0.3)
    assert parse_duration("truncnorm:1,0.3,0.5") == TruncatedNormal(1.0, 0.3, 0.5)
    assert parse_duration("truncnorm:1,0.3,0,5") == TruncatedNormal(1.0, 0.3, 0.0, 5.0)
    assert parse_duration("deterministic:2") == Deterministic(2.0)
    assert parse_duration("exponential:1.5") == Exponential(1.5)
    assert parse_duration("uniform:0.5,1.5") == Uniform(0.5, 1.5)
    assert parse_duration("lognormal:0,0.3") == LogNormal(0.0, 0.3)
    with pytest.raises(TypeError, match="string"):
        parse_duration(3.0)  # type: ignore[arg-type]


def test_an_argparse_option_shows_the_reason_not_invalid_value(capsys):
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--duration", type=parse_duration)
    with pytest.raises(SystemExit):
        parser.parse_args(["--duration", "gamma:0,1"])
    err = capsys.readouterr().err
    assert "Gamma.shape must be finite and > 0" in err
    assert "invalid parse_duration value" not in err


# ------------------------------------------------------------------ env: order of calls


def test_step_before_reset_raises_reset_needed():
    env = ConcurrentLabsEnv()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(1)
    env.reset(seed=0)
    env.step(1)  # fine after reset


def test_step_before_reset_through_gym_make_raises_reset_needed_too():
    env = gym.make("labsched/ConcurrentLabs-v0")
    with pytest.raises(ResetNeeded):
        env.step(1)


def test_step_after_the_end_still_asks_for_reset():
    env = ConcurrentLabsEnv(SMALL)
    _play(env, baselines.make("onfcp", SMALL))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


# ------------------------------------------------------------------ env: no silent coercion


@pytest.mark.parametrize("name", ["decide_on_completion", "flatten", "normalize_reward"])
@pytest.mark.parametrize("value", ["no", "false", "True", 1, 0, None, 1.0])
def test_env_flags_must_be_booleans(name, value):
    with pytest.raises(TypeError, match=rf"{name} must be True or False"):
        ConcurrentLabsEnv(**{name: value})


@pytest.mark.parametrize("name", ["decide_on_completion", "flatten", "normalize_reward"])
def test_env_flags_accept_python_and_numpy_booleans(name):
    for value in (True, False, np.True_, np.False_):
        env = ConcurrentLabsEnv(**{name: value})
        assert getattr(env, name) is bool(value)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"n_initial": 2.7}, TypeError, "n_initial must be an integer >= 1"),
        ({"n_initial": "3"}, TypeError, "n_initial must be an integer >= 1"),
        ({"n_initial": 0}, ValueError, "n_initial must be an integer >= 1"),
        ({"noise_std": "x"}, TypeError, "noise_std must be a real number"),
        ({"noise_std": -0.1}, ValueError, "noise_std"),
        ({"noise_std": math.nan}, ValueError, "noise_std"),
    ],
)
def test_optimisation_options_are_checked(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        ConcurrentLabsEnv(SMALL, reward="regret", **kwargs)


def test_a_horizon_beyond_the_float32_observation_is_refused():
    with pytest.raises(ValueError, match=r"horizon / E\[D\]"):
        ConcurrentLabsEnv(horizon=1e300, epoch=1e299)


# ------------------------------------------------------------------ env: reset options


def test_a_misspelt_reset_option_is_refused():
    env = ConcurrentLabsEnv(SMALL)
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['duration'\]; known: \['durations'\]"):
        env.reset(seed=0, options={"duration": [1.0] * SMALL.n_experiments})


@pytest.mark.parametrize("options", [[1.0] * 6, "durations", 3, ("durations", [1.0] * 6)])
def test_reset_options_must_be_a_dict(options):
    with pytest.raises(TypeError, match="reset options must be a dict"):
        ConcurrentLabsEnv(SMALL).reset(seed=0, options=options)


def test_initial_points_need_an_optimisation():
    env = ConcurrentLabsEnv(SMALL)
    with pytest.raises(ValueError, match="'initial_points' needs an optimisation"):
        env.reset(seed=0, options={"initial_points": np.zeros((2, 2))})


def test_regret_mode_knows_initial_points_and_refuses_other_keys():
    env = ConcurrentLabsEnv(SMALL, reward="regret", selector="random")
    _, info = env.reset(seed=0, options={"initial_points": np.full((2, 2), 0.5), "durations": [1.0] * 6})
    assert info["started"] == 0
    with pytest.raises(ValueError, match=r"known: \['durations', 'initial_points'\]"):
        env.reset(seed=0, options={"initial_point": np.full((2, 2), 0.5)})


def test_empty_and_none_options_are_fine():
    env = ConcurrentLabsEnv(SMALL)
    a, _ = env.reset(seed=3, options={})
    b, _ = env.reset(seed=3, options=None)
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ baselines


@pytest.mark.parametrize(
    ("name", "kwargs", "exc"),
    [
        ("ps", {"n_simulations": 2.7}, TypeError),
        ("ps", {"n_simulations": "5"}, TypeError),
        ("ps", {"n_simulations": 0}, ValueError),
        ("onmel", {"n_simulations": 2.5}, TypeError),
        ("onmel", {"n_simulations": "5"}, TypeError),
        ("onmel", {"n_simulations": True}, TypeError),
        ("onmel", {"n_simulations": 0}, ValueError),
    ],
)
def test_simulation_counts_must_be_positive_integers(name, kwargs, exc):
    with pytest.raises(exc, match="n_simulations must be an integer >= 1"):
        baselines.make(name, SMALL, **kwargs)


def test_min_eager_labs_checks_its_arguments():
    with pytest.raises(TypeError, match="n_simulations"):
        min_eager_labs(SMALL, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        min_eager_labs(SMALL, 10, rng=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["random", "onfcp", "ofil", "ps"])
@pytest.mark.parametrize(("seed", "exc"), [(-1, ValueError), ("1", TypeError), (1.5, TypeError)])
def test_baseline_seeds_must_be_non_negative_integers(name, seed, exc):
    with pytest.raises(exc, match="seed must be an integer >= 0"):
        baselines.make(name, SMALL, seed=seed)


def test_baseline_seeds_accept_integers_and_none():
    assert baselines.make("random", SMALL, seed=np.int64(7)).seed == 7
    assert baselines.make("random", SMALL, seed=None).seed is None


@pytest.mark.parametrize("flatten", [False, True])
@pytest.mark.parametrize("name", ["onfcp", "ofil", "random"])
def test_a_policy_built_for_another_spec_says_so(name, flatten):
    policy = baselines.make(name, LabSpec(n_labs=4), seed=0)
    obs, _ = ConcurrentLabsEnv(LabSpec(n_labs=10), flatten=flatten).reset(seed=0)
    with pytest.raises(ValueError, match="does not match the spec the policy was built for") as err:
        policy.predict(obs)
    text = str(err.value)
    assert "n_labs=4" in text
    assert ("n_labs=10" if flatten else "(10 labs)") in text


def test_a_batched_observation_of_another_spec_says_so():
    policy = baselines.make("onfcp", LabSpec(n_labs=4))
    envs = [ConcurrentLabsEnv(LabSpec(n_labs=10)) for _ in range(3)]
    obs = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    with pytest.raises(ValueError, match=r"shape \(3, 10\) \(10 labs\).*n_labs=4"):
        policy.predict(batch)


# ------------------------------------------------------------------ regret


def _objective(stated: float | None):
    def bump(x):
        x = np.atleast_2d(x)
        return 1.0 - np.sum((x - 0.3) ** 2, axis=1)

    return make_objective(bump, bounds=[(0.0, 1.0), (0.0, 1.0)], optimum_value=stated, name="bump")


def test_a_wrong_stated_optimum_raises_instead_of_scoring_zero_regret():
    env = ConcurrentLabsEnv(SMALL, reward="regret", objective=_objective(0.5), selector="random")
    with pytest.raises(ValueError, match=r"'bump'.*exceeds its stated optimum_value 0\.5"):
        _play(env, baselines.make("onfcp", SMALL))


def test_the_right_stated_optimum_scores_a_positive_regret():
    env = ConcurrentLabsEnv(SMALL, reward="regret", objective=_objective(1.0), selector="random")
    info = _play(env, baselines.make("onfcp", SMALL))
    assert info["regret"] == pytest.approx(1.0 - info["best_value"])
    assert info["regret"] > 0.0


def test_scored_regret_rules():
    stated = _objective(1.0)
    x = np.array([0.3, 0.3])
    assert scored_regret(stated, x, 0.75) == pytest.approx(0.25)
    assert scored_regret(stated, x, 1.0 + 0.5 * REGRET_RTOL) == 0.0  # round-off
    with pytest.raises(ValueError, match="stated optimum is wrong"):
        scored_regret(stated, x, 1.0 + 10 * REGRET_RTOL)
    estimated = dataclasses.replace(stated, optimum_estimated=True)
    assert scored_regret(estimated, x, 1.25) == pytest.approx(-0.25)  # reported, not hidden


# ------------------------------------------------------------------ scale: a lazy grid, O(l) masks


@pytest.mark.parametrize(
    "kwargs", [{"epoch": 1e-300}, {"horizon": 1e12, "epoch": 1.0}, {"horizon": 1e12, "epoch": 1e-300}]
)
def test_an_extreme_decision_grid_builds_and_steps_at_once(kwargs):
    env = ConcurrentLabsEnv(**kwargs)
    env.reset(seed=0)
    _, _, _, _, info = env.step(3)
    assert info["started"] == 3
    assert info["time"] == pytest.approx(kwargs["epoch"])


def test_action_masks_take_memory_linear_in_the_labs():
    n_labs = 200_000
    tracemalloc.start()
    try:
        env = ConcurrentLabsEnv(n_labs=n_labs, n_experiments=5000)
        env.reset(seed=0)
        _, _, _, _, info = env.step(1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * n_labs  # l + 1 templates of l + 1 booleans would be 40 GB
    mask = info["action_mask"]
    assert mask.dtype == bool and mask.shape == (n_labs + 1,) and mask.flags.writeable
    assert np.array_equal(mask, np.arange(n_labs + 1) <= 5000 - info["started"])
    assert np.array_equal(env.action_masks(), mask)


@pytest.mark.parametrize("n_labs", [1, 7, 256, 257, 600])
def test_action_masks_are_the_same_for_small_and_large_lab_counts(n_labs):
    env = ConcurrentLabsEnv(n_labs=n_labs, n_experiments=n_labs + 5)
    _, info = env.reset(seed=0)
    assert np.array_equal(info["action_mask"], np.ones(n_labs + 1, dtype=bool))
    for k in (n_labs // 2, 1, 0):
        info = env.step(k)[4]
        expected = np.arange(n_labs + 1) <= min(n_labs - info["running"], n_labs + 5 - info["started"])
        assert np.array_equal(info["action_mask"], expected)
        assert np.array_equal(env.action_masks(), expected)
        info["action_mask"][:] = False  # a fresh array: writing to it changes nothing in the env
        assert np.array_equal(env.action_masks(), expected)
