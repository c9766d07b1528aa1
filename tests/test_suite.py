"""The benchmark suite (issue 14): registered, versioned ids, and ``labsched/Random-v0``."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec

import labsched
from labsched import CONCURRENT_LABS_ID, LabSpec
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.continuous_durations import Gamma, TruncatedNormal
from labsched.envs.labs.random_spec_env import (
    HELDOUT_SPECS,
    RANDOM_ID,
    RandomSpecEnv,
    SpecDistribution,
    duration_cv,
    make_duration,
    spec_summary_vector,
)
from labsched.envs.labs.suite import SUITE, SuiteEnv, get_suite_env, suite_envs, suite_markdown

BENIGN_WARNINGS = ("Not able to test alternative render modes",)
IDS = [e.name for e in suite_envs()]


def _entry_or_skip(name: str) -> SuiteEnv:
    entry = SUITE[name]
    reason = entry.unavailable_reason()
    if reason:
        pytest.skip(f"skipped until the env option exists: {reason}")
    return entry


def _run_checker(check, env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(env)
    bad = [str(w.message) for w in caught if not any(b in str(w.message) for b in BENIGN_WARNINGS)]
    assert not bad, bad


# ------------------------------------------------------------------------------- the suite
def test_suite_ids_are_the_issues_and_registered():
    assert IDS == [
        "Paper-h4-v0",
        "Paper-h5-v0",
        "Paper-h6-v0",
        "Hetero-v0",
        "Failures-v0",
        "Hetero-Failures-v0",
        "UnknownDurations-v0",
        "Large-v0",
    ]
    labsched.register_envs()  # idempotent
    for entry in suite_envs():
        assert entry.id == f"labsched/{entry.name}" and entry.version == 0
        if entry.unavailable_reason():
            assert entry.id not in gym.registry
            with pytest.raises(NotImplementedError, match="does not have yet"):
                entry.make()
        else:
            registered = gym.spec(entry.id)
            assert registered.kwargs == entry.registered_kwargs
            assert LabSpec.from_dict(registered.kwargs["spec"]) == entry.spec
    assert RANDOM_ID in gym.registry


@pytest.mark.parametrize("entry", suite_envs(available_only=True), ids=lambda e: e.name)
def test_suite_env_spec_round_trips_through_json(entry):
    """``EnvSpec.to_json`` (used by dataset and recording tools) gives JSON that rebuilds the same
    environment: same spec, same first observation under the same seed."""
    env = gym.make(entry.id)
    rebuilt = EnvSpec.from_json(env.spec.to_json()).make()
    assert rebuilt.unwrapped.lab_spec == env.unwrapped.lab_spec == entry.played_spec
    first, _ = env.reset(seed=3)
    again, _ = rebuilt.reset(seed=3)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_env_takes_spec_dict_and_rejects_other_types():
    spec = SUITE["Hetero-Failures-v0"].spec
    assert ConcurrentLabsEnv(spec=spec.to_dict()).lab_spec == spec
    with pytest.raises(TypeError, match=r"spec must be a labsched\.LabSpec or a mapping"):
        ConcurrentLabsEnv(spec=[20, 10, 5.0])


def test_suite_entries_are_pinned():
    """Changing a setting means a new version: these are the v0 settings, field by field."""
    paper = TruncatedNormal()
    for h in (4.0, 5.0, 6.0):
        assert SUITE[f"Paper-h{h:g}-v0"].spec == LabSpec(horizon=h)
    hetero = SUITE["Hetero-v0"].spec
    assert (hetero.n_experiments, hetero.n_labs, hetero.horizon) == (20, 10, 5.0)
    assert hetero.lab_speeds == (1.5, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.6)
    assert hetero.lab_durations == (paper,) * 8 + (Gamma(shape=4.0, scale=0.25),) * 2
    assert hetero.failure_prob == 0.0
    assert SUITE["Failures-v0"].spec == LabSpec(failure_prob=0.1)
    hf = SUITE["Hetero-Failures-v0"].spec
    assert hf.replace(failure_prob=0.0) == hetero
    assert hf.failure_prob == (0.02, 0.02, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.15, 0.15)
    unknown = SUITE["UnknownDurations-v0"]
    assert unknown.spec == LabSpec(duration=TruncatedNormal(mu=1.25, sigma=1.25 * math.sqrt(0.1)))
    assert unknown.options == {"known_durations": False}
    assert SUITE["Large-v0"].spec == LabSpec(n_experiments=200, n_labs=32, horizon=12.0)
    assert [e.difficulty for e in suite_envs()] == [3, 2, 1, 3, 3, 4, 4, 5]


def test_suite_lookup_and_bad_entries():
    assert get_suite_env("labsched/Hetero-v0") is get_suite_env("Hetero-v0") is SUITE["Hetero-v0"]
    with pytest.raises(ValueError, match="unknown suite id 'Nope-v0'; known: Paper-h4-v0"):
        get_suite_env("Nope-v0")
    with pytest.raises(ValueError, match="must look like 'Setting-v0'"):
        SuiteEnv("Hetero", LabSpec(), 1, "no version")
    with pytest.raises(ValueError, match=r"difficulty must be an integer in \[1, 5\]"):
        SuiteEnv("X-v0", LabSpec(), 6, "too hard")


def test_suite_markdown_lists_every_id_with_its_spec():
    text = suite_markdown()
    table = [line for line in text.splitlines() if line.startswith("| `labsched/")]
    assert len(table) == len(IDS)
    assert "| `labsched/Large-v0` | 200 | 32 | 12 | TN(1, 0.1) | all 1 | 0 | 0.95 | 0.1 | - | 5 |" in table
    hf = next(line for line in table if "Hetero-Failures" in line)
    assert (
        "8×TN(1, 0.1), 2×Gamma(4, 0.25)" in hf
        and "2×1.5, 6×1, 2×0.6" in hf
        and "2×0.02, 6×0.05, 2×0.15" in hf
    )
    assert "known_durations=False" in next(line for line in table if "UnknownDurations" in line)
    assert f"`{RANDOM_ID}`" in text


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
def test_every_suite_id_passes_gymnasiums_and_sb3s_checkers(name, flatten):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    entry = _entry_or_skip(name)
    _run_checker(check_env, gym.make(entry.id, flatten=flatten).unwrapped)
    _run_checker(lambda e: sb3_check_env(e, warn=True), gym.make(entry.id, flatten=flatten).unwrapped)
    assert gym.make(entry.id).unwrapped.lab_spec == entry.played_spec


def test_paper_h5_equals_concurrent_labs_v0_step_for_step():
    rng = np.random.default_rng(5)
    for seed in range(5):
        a, b = gym.make("labsched/Paper-h5-v0"), gym.make(CONCURRENT_LABS_ID, horizon=5.0)
        oa, ia = a.reset(seed=seed)
        ob, ib = b.reset(seed=seed)
        done, steps = False, 0
        while not done:
            for k in oa:
                np.testing.assert_array_equal(oa[k], ob[k])
            assert ia["cpe"] == ib["cpe"] and ia["time"] == ib["time"]
            np.testing.assert_array_equal(ia["action_mask"], ib["action_mask"])
            action = int(rng.integers(0, 11))
            oa, ra, done, _, ia = a.step(action)
            ob, rb, done_b, _, ib = b.step(action)
            assert ra == rb and done == done_b
            steps += 1
        assert ia["cpe"] == ib["cpe"] and ia["log"] == ib["log"] and steps > 3


def test_unknown_durations_hides_the_law_from_schedulers():
    entry = _entry_or_skip("UnknownDurations-v0")
    spec = entry.make().lab_spec
    assert spec.known_durations is False and spec.duration.mu == 1.25
    assert spec.scheduler_view.duration == TruncatedNormal()


# ------------------------------------------------------------------------------- Random-v0
def _play(env, seed, actions):
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["spec"])]
    for a in actions:
        obs, r, done, _, info = env.step(a)
        trace.append((obs, r))
        if done:
            break
    return trace


def _flat(trace):
    out = []
    for obs, extra in trace:
        out.append(
            np.concatenate([np.ravel(v) for _, v in sorted(obs.items())]) if isinstance(obs, dict) else obs
        )
        out.append(extra)
    return out


def test_random_env_is_deterministic_under_a_seed():
    actions = [3, 0, 2, 1, 0, 5, 0, 0, 2, 1] * 6
    for seed in (0, 7, 123):
        t1 = _flat(_play(gym.make(RANDOM_ID), seed, actions))
        t2 = _flat(_play(RandomSpecEnv(), seed, actions))
        assert len(t1) == len(t2)
        for x, y in zip(t1, t2, strict=True):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y


def test_random_env_draws_different_specs_and_its_summary_matches_them():
    env = RandomSpecEnv()
    dist = env.distribution
    specs = []
    env.reset(seed=0)
    for _ in range(40):
        obs, info = env.reset()
        spec = info["spec"]
        specs.append(spec)
        labs, n = spec.n_labs, spec.n_experiments
        assert dist.labs[0] <= labs <= dist.labs[1] and labs <= n <= 4 * labs
        assert env.lab_spec is spec
        np.testing.assert_array_equal(
            obs["spec"], spec_summary_vector(spec, env.max_experiments, env.max_labs, env.max_horizon)
        )
        assert round(float(obs["spec"][0]) * env.max_experiments) == n
        assert round(float(obs["spec"][1]) * env.max_labs) == labs
        assert math.isclose(
            float(obs["spec"][2]) * env.max_horizon, spec.horizon / float(spec.duration.mean), rel_tol=1e-6
        )
        assert float(obs["spec"][4]) == pytest.approx(float(np.mean(spec.lab_failure_probs)))
        assert float(obs["spec"][5]) == float(spec.heterogeneous)
        # padded labs: masked in the observation and the actions
        np.testing.assert_array_equal(obs["lab_mask"], np.arange(env.max_labs) < labs)
        assert (
            not obs["busy"][labs:].any()
            and not obs["elapsed"][labs:].any()
            and not obs["lab_duration"][labs:].any()
        )
        np.testing.assert_allclose(
            obs["lab_duration"][:labs],
            np.array(spec.lab_mean_durations) / float(spec.duration.mean),
            rtol=1e-6,
        )
        mask = env.action_masks()
        assert mask.shape == (env.max_labs + 1,) and mask[: labs + 1].all() and not mask[labs + 1 :].any()
        np.testing.assert_array_equal(info["action_mask"], mask)
    assert len(set(specs)) == len(specs)  # continuous draws: no two alike
    assert {s.heterogeneous for s in specs} == {True, False} and {s.has_failures for s in specs} == {
        True,
        False,
    }
    families = {type(s.duration).__name__ for s in specs}
    assert families == {"TruncatedNormal", "Gamma", "LogNormal", "Uniform"}


def test_random_env_clips_or_refuses_actions_beyond_the_drawn_labs():
    env = RandomSpecEnv()
    obs, info = env.reset(seed=3, options={"spec": LabSpec(n_experiments=6, n_labs=3)})
    obs, _, _, _, info = env.step(20)
    assert info["clipped"] and info["requested_action"] == 20 and info["started"] == 3
    assert obs["busy"].tolist() == [1, 1, 1] + [0] * 29
    strict = RandomSpecEnv(invalid_action="raise")
    strict.reset(seed=3, options={"spec": LabSpec(n_experiments=6, n_labs=3)})
    with pytest.raises(ValueError, match="n_labs=3"):
        strict.step(4)


def test_heldout_specs_fit_and_lie_outside_the_training_support():
    env = RandomSpecEnv()
    dist = env.distribution
    assert HELDOUT_SPECS["labs-24"].n_labs > dist.labs[1] and HELDOUT_SPECS["labs-32"].n_labs == env.max_labs
    b = HELDOUT_SPECS["budget-6-per-lab"]
    assert b.n_experiments / b.n_labs > dist.experiments_per_lab[1]
    assert duration_cv(HELDOUT_SPECS["heavy-tail"].duration) > dist.cv[1]
    assert HELDOUT_SPECS["failures-0.35"].failure_prob > dist.failure_range[1]
    t = HELDOUT_SPECS["tight-horizon"]
    assert t.horizon / math.ceil(t.n_experiments / t.n_labs) < dist.horizon_slack[0]
    assert max(HELDOUT_SPECS["speeds-4x"].lab_speeds) > 2.0**dist.speed_log2
    for spec in HELDOUT_SPECS.values():
        obs, info = env.reset(seed=0, options={"spec": spec})
        assert info["spec"] == spec and env.observation_space.contains(obs)
    with pytest.raises(ValueError, match="n_labs=40 > max_labs=32"):
        env.reset(seed=0, options={"spec": LabSpec(n_experiments=40, n_labs=40)})
    fixed = RandomSpecEnv(specs=list(HELDOUT_SPECS.values()))
    drawn = {fixed.reset(seed=s)[1]["spec"] for s in range(60)}
    assert drawn == set(HELDOUT_SPECS.values())


@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
def test_random_env_passes_gymnasiums_and_sb3s_checkers(flatten):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    _run_checker(check_env, gym.make(RANDOM_ID, flatten=flatten).unwrapped)
    _run_checker(lambda e: sb3_check_env(e, warn=True), RandomSpecEnv(flatten=flatten))
    env = RandomSpecEnv(flatten=flatten)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    if flatten:
        assert obs.shape == (5 * 32 + 4 + 8,)  # 5 per-lab keys, 4 counts, the summary


def test_make_duration_has_the_requested_mean_and_cv():
    for family in ("gamma", "lognormal", "uniform"):
        law = make_duration(family, 0.3)
        assert float(law.mean) == pytest.approx(1.0, abs=1e-9)
        assert duration_cv(law) == pytest.approx(0.3, rel=5e-3)
    assert duration_cv(make_duration("truncnorm", 0.2)) == pytest.approx(
        0.2, rel=1e-2
    )  # truncation negligible
    with pytest.raises(ValueError, match="family"):
        make_duration("weibull", 0.3)
    with pytest.raises(ValueError, match="cv"):
        make_duration("gamma", 0.0)


def test_bad_random_env_options_are_refused():
    with pytest.raises(ValueError, match=r"labs must be \(low, high\)"):
        SpecDistribution(labs=(8, 4))
    with pytest.raises(ValueError, match="max_labs"):
        RandomSpecEnv(max_labs=8)  # the distribution draws up to 16 labs
    with pytest.raises(ValueError, match="not allowed"):
        RandomSpecEnv(n_labs=4)
    with pytest.raises(TypeError, match=r"options\['spec'\] must be a LabSpec"):
        RandomSpecEnv().reset(seed=0, options={"spec": "paper"})


def test_an_entry_needing_a_missing_env_option_is_reported_not_built():
    entry = SuiteEnv(
        "Future-v0", LabSpec(), 1, "needs an option of a later version", env_options=(("teleport", True),)
    )
    assert "['teleport']" in entry.unavailable_reason() and not entry.vectorizable
    with pytest.raises(NotImplementedError, match="does not have yet"):
        entry.make()
    with pytest.raises(NotImplementedError, match="does not have yet"):
        _ = entry.played_spec
