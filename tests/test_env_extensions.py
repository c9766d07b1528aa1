"""Failures and heterogeneous labs (issue 14): exact cases, common random numbers, the spec's
options and their errors, the observation, and the Monte-Carlo simulation under the same rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _envtools import all_busy, keep_busy, run_episode, sequential

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.baselines.labs.clairvoyant import Clairvoyant, clairvoyant_bound, clairvoyant_cpe
from labsched.envs import simulate_keep_busy
from labsched.envs.labs.durations import Deterministic, Discrete, Gamma, LogNormal, TruncatedNormal
from labsched.envs.labs.observation import decode_observation
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

D1, D2 = Deterministic(1.0), Deterministic(2.0)
TWO_LABS = LabSpec(n_experiments=6, n_labs=2, horizon=10.0, duration=D1, lab_durations=[D1, D2])


# ---------------------------------------------------------------------- exact cases
@pytest.mark.parametrize("doc", [True, False])
def test_two_labs_durations_1_and_2_start_all_allowed(doc):
    """By hand: exp 0 on the fast lab (0-1), exp 1 on the slow one (0-2); exp 2 fast (1-2, prior
    1); at 2 exps 3 (fast, 2-3) and 4 (slow, 2-4) with prior 3; exp 5 fast (3-4, prior 4).
    CPE = 0 + 0 + 1 + 3 + 3 + 4 = 11."""
    ep = run_episode(ConcurrentLabsEnv(TWO_LABS, decide_on_completion=doc), all_busy, seed=0)
    final = ep.final
    assert final["cpe"] == ep.ret == 11
    assert final["completed"] == 6 and final["time"] == 4.0
    got = sorted((r.index, r.lab, round(r.start, 9), round(r.end, 9), r.prior) for r in final["log"])
    assert got == [
        (0, 0, 0.0, 1.0, 0),
        (1, 1, 0.0, 2.0, 0),
        (2, 0, 1.0, 2.0, 1),
        (3, 0, 2.0, 3.0, 3),
        (4, 1, 2.0, 4.0, 3),
        (5, 0, 3.0, 4.0, 4),
    ]


def test_fastest_lab_first_whatever_its_index_and_speeds_build_the_same_problem():
    slow_first = TWO_LABS.replace(lab_durations=[D2, D1])
    ep = run_episode(ConcurrentLabsEnv(slow_first), all_busy, seed=0)
    assert ep.final["cpe"] == 11
    assert [r.lab for r in sorted(ep.final["log"])] == [1, 0, 1, 1, 0, 1]  # mirrored labs
    by_speed = LabSpec(n_experiments=6, n_labs=2, horizon=10.0, duration=D1, lab_speeds=[1.0, 0.5])
    assert by_speed.lab_order == (0, 1) and by_speed.lab_mean_durations == (1.0, 2.0)
    ep2 = run_episode(ConcurrentLabsEnv(by_speed), all_busy, seed=0)
    assert ep2.final["log"] == run_episode(ConcurrentLabsEnv(TWO_LABS), all_busy, seed=0).final["log"]


def test_two_labs_horizon_binds():
    """h = 3.5: exps 0-3 complete (CPE 0 + 0 + 1 + 3), exps 4 and 5 run past the horizon."""
    ep = run_episode(ConcurrentLabsEnv(TWO_LABS.replace(horizon=3.5)), all_busy, seed=0)
    assert ep.final["cpe"] == 4 and ep.final["completed"] == 4
    assert sorted(r.index for r in ep.final["unfinished"]) == [4, 5]
    assert ep.final["cost"] == 1.0


@pytest.mark.parametrize("policy", [all_busy, sequential, keep_busy(3)])
def test_failure_probability_one_gives_cpe_zero_and_no_completions(policy):
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=30.0, failure_prob=1.0)
    ep = run_episode(ConcurrentLabsEnv(spec), policy, seed=3)
    assert ep.ret == 0.0 and ep.final["cpe"] == 0
    assert ep.final["completed"] == 0 and ep.final["log"] == ()
    assert ep.final["failed"] == 8 and len(ep.final["failed_log"]) == 8
    assert all(info["completed"] == 0 for info in ep.infos)
    assert ep.final["cost"] == 0.0  # every experiment ended by the horizon: the schedule is safe
    assert ep.final["time"] < spec.horizon  # the episode ends when all n have ended


def test_failed_experiment_spends_lab_time_and_budget_and_is_not_a_prior():
    """Lab 1 always fails: exp 1 (0-2 on the slow lab) fails, so exp 3 (started at 2) counts only
    exps 0 and 2 as priors."""
    spec = TWO_LABS.replace(failure_prob=[0.0, 1.0])
    ep = run_episode(ConcurrentLabsEnv(spec), all_busy, seed=0)
    final = ep.final
    assert [(r.index, r.lab, r.end) for r in final["failed_log"]] == [(1, 1, 2.0), (4, 1, 4.0)]
    assert sorted((r.index, r.prior) for r in final["log"]) == [(0, 0), (2, 1), (3, 2), (5, 3)]
    assert final["cpe"] == 0 + 1 + 2 + 3 and final["completed"] == 4 and final["failed"] == 2
    assert final["started"] == 6  # the failures used their budget slots


def test_failure_probability_zero_and_equal_labs_reproduce_todays_env():
    spec = LabSpec()
    same = LabSpec(failure_prob=[0.0] * 10, lab_speeds=[1.0] * 10, lab_durations=[TruncatedNormal()] * 10)
    assert same == spec and repr(same) == repr(spec) and hash(same) == hash(spec)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 11, size=400).tolist()
    for flatten in (False, True):
        a, b = ConcurrentLabsEnv(spec, flatten=flatten), ConcurrentLabsEnv(same, flatten=flatten)
        for seed in (0, 1, 2):
            oa, ia = a.reset(seed=seed)
            ob, ib = b.reset(seed=seed)
            for act in actions:
                np.testing.assert_array_equal(
                    np.concatenate([np.ravel(v) for v in (oa.values() if isinstance(oa, dict) else [oa])]),
                    np.concatenate([np.ravel(v) for v in (ob.values() if isinstance(ob, dict) else [ob])]),
                )
                assert ia.keys() == ib.keys() and ia["cpe"] == ib["cpe"] and ia["time"] == ib["time"]
                if ia.get("log") is not None:
                    assert ia["log"] == ib["log"]
                    break
                oa, ra, da, _, ia = a.step(act)
                ob, rb, db, _, ib = b.step(act)
                assert ra == rb and da == db


def test_failure_draws_keep_the_durations_common_random_numbers():
    """Failure uniforms are drawn after the durations: a failing spec runs the same durations."""
    base = LabSpec(n_experiments=10, n_labs=3, horizon=50.0, duration=Gamma())
    failing = base.replace(failure_prob=0.4)
    d0 = _durations_by_index(run_episode(ConcurrentLabsEnv(base), sequential, seed=11).final)
    d1 = _durations_by_index(run_episode(ConcurrentLabsEnv(failing), all_busy, seed=11).final)
    np.testing.assert_allclose(d1, d0, rtol=1e-12)


def test_lab_speeds_scale_the_common_draws_whatever_the_lab():
    base = LabSpec(n_experiments=12, n_labs=3, horizon=50.0, duration=LogNormal())
    fast = base.replace(lab_speeds=[0.5, 4.0, 2.0])
    d0 = _durations_by_index(run_episode(ConcurrentLabsEnv(base), sequential, seed=5).final)
    final = run_episode(ConcurrentLabsEnv(fast), all_busy, seed=5).final
    speeds = np.array(fast.lab_speed_factors)
    recs = sorted(final["log"])
    assert {r.lab for r in recs} == {0, 1, 2}
    got = np.array([(r.end - r.start) * speeds[r.lab] for r in recs])
    np.testing.assert_allclose(got, d0, rtol=1e-9)


def test_different_laws_map_one_quantile_per_experiment():
    """Per-lab laws: experiment i's duration is law_c.isf(V_i) on lab c, V_i drawn at reset."""
    laws = (Gamma(), Deterministic(0.7), Discrete())
    spec = LabSpec(n_experiments=9, n_labs=3, horizon=60.0, duration=Gamma(), lab_durations=laws)
    final = run_episode(ConcurrentLabsEnv(spec), all_busy, seed=8).final
    v = 1.0 - np.random.default_rng(8).random(9)  # the env's generator, seeded like reset(seed=8)
    for r in final["log"]:
        assert r.end - r.start == pytest.approx(float(laws[r.lab].isf(v[r.index])), rel=1e-12, abs=1e-12)


def test_failure_rate_matches_the_probability():
    spec = LabSpec(n_experiments=40, n_labs=5, horizon=100.0, failure_prob=[0.1, 0.1, 0.5, 0.5, 0.9])
    env = ConcurrentLabsEnv(spec)
    fails, totals = np.zeros(5), np.zeros(5)
    for seed in range(60):
        final = run_episode(env, all_busy, seed=seed).final
        for r in final["log"]:
            totals[r.lab] += 1
        for r in final["failed_log"]:
            totals[r.lab] += 1
            fails[r.lab] += 1
    rate = fails / totals
    # 60 * 40 = 2400 experiments, about 480 per lab: 4 binomial standard deviations at most 0.092.
    assert np.all(np.abs(rate - np.array(spec.lab_failure_probs)) < 0.092), rate


# ---------------------------------------------------------------------- observation
def test_lab_duration_observation_and_decoding():
    spec = LabSpec(n_experiments=5, n_labs=3, duration=D1, lab_speeds=[1.0, 2.0, 0.5])
    env = ConcurrentLabsEnv(spec)
    obs, _ = env.reset(seed=0)
    assert list(obs) == sorted(obs) and "lab_duration" in obs
    np.testing.assert_array_equal(obs["lab_duration"], np.float32([1.0, 0.5, 2.0]))
    assert env.observation_space.contains(obs)
    flat_env = ConcurrentLabsEnv(spec, flatten=True)
    flat, _ = flat_env.reset(seed=0)
    assert flat.shape == (3 * 3 + 4,) == flat_env.observation_space.shape
    np.testing.assert_array_equal(flat[7:10], np.float32([1.0, 0.5, 2.0]))
    obs, *_ = env.step(1)  # one start: on the fastest lab, lab 1
    flat, *_ = flat_env.step(1)
    for o in (obs, flat):
        (state,) = decode_observation(o, spec)
        assert state.started == 1 and state.busy.tolist() == [False, True, False]
        assert state.time == pytest.approx(0.1)
    assert "lab_duration" not in ConcurrentLabsEnv(LabSpec()).reset(seed=0)[0]


def test_forced_durations_with_different_laws_are_refused():
    spec = TWO_LABS
    with pytest.raises(ValueError, match="lab_durations"):
        ConcurrentLabsEnv(spec).reset(options={"durations": [1.0] * 6})
    with pytest.raises(ValueError, match="lab_durations"):
        ConcurrentLabsVectorEnv(2, spec).reset(options={"durations": np.ones((2, 6))})


def test_regret_mode_discards_failed_experiments():
    spec = LabSpec(n_experiments=8, n_labs=2, horizon=20.0, failure_prob=0.5)
    env = ConcurrentLabsEnv(spec, reward="regret", objective="branin", n_initial=3)
    final = run_episode(env, all_busy, seed=2).final
    assert final["failed"] > 0
    assert len(final["X"]) == 3 + final["completed"]  # failed experiments yield no observation


# ---------------------------------------------------------------------- spec
def test_repr_and_saved_form_of_the_papers_spec_are_unchanged():
    assert repr(LabSpec()) == (
        "LabSpec(n_experiments=20, n_labs=10, horizon=5.0, duration=TruncatedNormal(mu=1.0, "
        "sigma=0.31622776601683794, low=0.0, high=inf), p_safe=0.95, epoch=0.1)"
    )
    assert list(LabSpec().to_dict()) == ["n_experiments", "n_labs", "horizon", "duration", "p_safe", "epoch"]
    spec = TWO_LABS.replace(failure_prob=[0.1, 0.2], lab_speeds=[1.0, 3.0])
    assert repr(spec).endswith(
        "failure_prob=(0.1, 0.2), lab_durations=(Deterministic(value=1.0), Deterministic(value=2.0)), "
        "lab_speeds=(1.0, 3.0))"
    )
    assert LabSpec.from_dict(spec.to_dict()) == spec
    assert repr(LabSpec(failure_prob=0.25)).endswith("epoch=0.1, failure_prob=0.25)")
    assert LabSpec(n_labs=2, failure_prob=[0.3, 0.3]).failure_prob == 0.3


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"lab_speeds": [1.0, 0.0]}, ValueError, r"lab_speeds\[1\] must be finite and > 0"),
        ({"lab_speeds": [-2.0, 1.0]}, ValueError, r"lab_speeds\[0\] must be finite and > 0"),
        ({"lab_speeds": [1.0, math.inf]}, ValueError, r"lab_speeds\[1\]"),
        ({"lab_speeds": [1.0]}, ValueError, "lab_speeds must have one entry per lab: length n_labs=2"),
        ({"lab_speeds": 2.0}, TypeError, "lab_speeds must be None or a list"),
        ({"lab_speeds": ["a", 1.0]}, TypeError, r"lab_speeds\[0\] must be a real number"),
        ({"failure_prob": 1.5}, ValueError, r"failure_prob must be a probability in \[0, 1\]"),
        ({"failure_prob": -0.1}, ValueError, r"failure_prob must be a probability in \[0, 1\]"),
        ({"failure_prob": math.nan}, ValueError, r"failure_prob must be a probability"),
        ({"failure_prob": [0.1, 2.0]}, ValueError, r"failure_prob\[1\] must be a probability in \[0, 1\]"),
        ({"failure_prob": [0.1, 0.1, 0.1]}, ValueError, "failure_prob must have one entry per lab"),
        ({"failure_prob": True}, TypeError, "failure_prob must be a real number"),
        ({"lab_durations": [D1]}, ValueError, "lab_durations must have one entry per lab"),
        ({"lab_durations": [D1, 2.0]}, TypeError, r"lab_durations\[1\] must be a labsched"),
    ],
)
def test_bad_options_name_the_field(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        LabSpec(n_labs=2, **kwargs)
    with pytest.raises(exc, match=text):
        ConcurrentLabsEnv(LabSpec(n_labs=2), **kwargs)


# ---------------------------------------------------------------------- Monte-Carlo simulation
def test_simulation_two_labs_and_failures_by_hand():
    out = simulate_keep_busy(TWO_LABS, 2, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(out.cpe, np.full(5, 11))
    assert out.failed is None and out.all_completed(6).all()
    # keep-1-busy runs on the fastest lab only: sequential with duration 1
    one = simulate_keep_busy(TWO_LABS.replace(lab_durations=[D2, D1]), 1, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(one.cpe, np.full(3, 15))
    np.testing.assert_array_equal(one.ends[0], np.arange(1.0, 7.0))
    dead = simulate_keep_busy(TWO_LABS.replace(failure_prob=1.0), 2, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(dead.cpe, np.zeros(4))
    np.testing.assert_array_equal(dead.completed, np.zeros(4))
    np.testing.assert_array_equal(dead.failed, np.full(4, 6))
    assert dead.all_completed(6).all()  # all ended by the horizon


@pytest.mark.parametrize("k", [1, 3])
def test_simulation_matches_the_env_in_distribution(k):
    spec = LabSpec(
        n_experiments=10,
        n_labs=3,
        horizon=4.0,
        duration=Gamma(),
        lab_durations=[Gamma(), LogNormal(), Gamma(4.0, 0.2)],
        lab_speeds=[1.0, 1.5, 0.8],
        failure_prob=[0.1, 0.3, 0.0],
    )
    out = simulate_keep_busy(spec, k, 4000, np.random.default_rng(1))
    env = ConcurrentLabsEnv(spec)
    cpes = [run_episode(env, keep_busy(k), seed=s).final["cpe"] for s in range(1500)]
    # Two independent means: 4.5 standard errors of their difference.
    se = math.sqrt(np.var(out.cpe) / 4000 + np.var(cpes) / 1500)
    assert abs(np.mean(out.cpe) - np.mean(cpes)) < 4.5 * se, (np.mean(out.cpe), np.mean(cpes), se)


def test_simulation_refuses_forced_durations_with_different_laws():
    with pytest.raises(ValueError, match="lab_durations"):
        simulate_keep_busy(TWO_LABS, 2, 3, np.random.default_rng(0), durations=np.ones((3, 6)))


def _durations_by_index(final: dict) -> np.ndarray:
    recs = sorted([*final["log"], *final.get("failed_log", ())])
    assert [r.index for r in recs] == list(range(len(recs)))
    return np.array([r.end - r.start for r in recs])


@pytest.mark.parametrize(
    "options", [{"failure_prob": 0.1}, {"lab_speeds": [1.0, 2.0, 1.0]}], ids=["failures", "speeds"]
)
def test_clairvoyant_refuses_specs_outside_its_domain(options):
    spec = LabSpec(n_experiments=4, n_labs=3, horizon=3.0, **options)
    for call in (
        lambda: Clairvoyant(spec),
        lambda: clairvoyant_bound(spec, [1.0] * 4),
        lambda: clairvoyant_cpe(spec, [1.0] * 4),
    ):
        with pytest.raises(ValueError, match="equal labs without failures"):
            call()
