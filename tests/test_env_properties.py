"""Property-based tests of ``ConcurrentLabsEnv`` invariants over random specs and action sequences."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
from _envtools import PROPERTY_SETTINGS
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from labsched import ConcurrentLabsEnv, ExperimentRecord, LabSpec
from labsched.envs.labs.durations import (
    Deterministic,
    Discrete,
    Exponential,
    Gamma,
    TruncatedNormal,
    Uniform,
)
from labsched.envs.labs.engine import time_tolerance

DURATIONS = [
    TruncatedNormal(),
    Gamma(2.0, 0.5),
    Uniform(0.2, 1.5),
    Exponential(1.0),
    Deterministic(0.5),
    Deterministic(1.0),
    Discrete(),
]


@st.composite
def specs(draw, extended: bool = False) -> LabSpec:
    """Random specs; ``extended`` adds random failure probabilities and heterogeneous labs."""
    horizon = draw(st.floats(0.5, 10.0, allow_nan=False, allow_infinity=False))
    epoch = min(draw(st.sampled_from((0.05, 0.1, 0.25, 0.5))), horizon)
    n_experiments = draw(st.integers(1, 30))
    n_labs = draw(st.integers(1, 12))
    duration = draw(st.sampled_from(DURATIONS))
    extra = {}
    if extended:
        probs = st.sampled_from((0.0, 0.1, 0.5, 0.9, 1.0))
        per_lab = st.lists(probs, min_size=n_labs, max_size=n_labs)
        extra["failure_prob"] = draw(st.one_of(probs, per_lab))
        speeds = st.lists(st.sampled_from((0.25, 0.5, 1.0, 2.0, 3.0)), min_size=n_labs, max_size=n_labs)
        extra["lab_speeds"] = draw(st.one_of(st.none(), speeds))
        laws = st.lists(st.sampled_from(DURATIONS), min_size=n_labs, max_size=n_labs)
        extra["lab_durations"] = draw(st.one_of(st.none(), laws))
    return LabSpec(
        n_experiments=n_experiments, n_labs=n_labs, horizon=horizon, epoch=epoch, duration=duration, **extra
    )


def _choose(rng: np.random.Generator, mask: np.ndarray, p_invalid: float) -> int:
    if rng.random() < p_invalid:
        return int(rng.integers(0, mask.size))  # any action in the space, possibly invalid
    return int(rng.choice(np.flatnonzero(mask)))


def _check_step_invariants(env, spec, obs, info, prev_time, ret) -> None:
    n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
    assert env.observation_space.contains(obs), obs
    running = int(np.sum(obs["busy"]))
    assert running == info["running"] <= nl  # never more than l running
    failed = info.get("failed", 0)
    assert ("failed" in info) is spec.has_failures
    assert 0 <= info["completed"] + failed <= info["started"] <= n  # the budget is never exceeded
    assert info["running"] == info["started"] - info["completed"] - failed
    assert prev_time <= info["time"] <= h
    assert info["time"] == env.time
    assert ret == info["cpe"]  # rewards are unnormalised here: exact
    max_valid = min(nl - info["running"], n - info["started"])
    expected_mask = np.arange(nl + 1) <= max_valid
    np.testing.assert_array_equal(info["action_mask"], expected_mask)
    np.testing.assert_array_equal(env.action_masks(), expected_mask)
    assert info["action_mask"].dtype == bool
    # observation contents agree with the counts
    assert round(float(obs["completed"][0]) * n) == info["completed"]
    assert round(float(obs["started"][0]) * n) == info["started"]
    assert round(float(obs["remaining_budget"][0]) * n) == n - info["started"]
    np.testing.assert_allclose(obs["remaining_time"][0], (h - info["time"]) / h, rtol=1e-6, atol=1e-6)
    idle = obs["busy"] == 0
    assert np.all(obs["elapsed"][idle] == 0.0)


def _check_final_log(spec, info, ret, decide_on_completion) -> None:
    n, h = spec.n_experiments, spec.horizon
    tol = time_tolerance(h)  # event times closer than tol are one instant (engine semantics)
    log: tuple[ExperimentRecord, ...] = info["log"]
    unfinished: tuple[ExperimentRecord, ...] = info["unfinished"]
    lost: tuple[ExperimentRecord, ...] = info.get("failed_log", ())
    assert all(isinstance(r, ExperimentRecord) for r in (*log, *unfinished, *lost))
    assert len(log) == info["completed"] and len(lost) == info.get("failed", 0)
    assert info["completed"] + len(lost) + len(unfinished) == info["started"]
    assert len(unfinished) == info["running"]
    # termination reason
    assert info["completed"] + len(lost) == n or info["time"] >= h
    if unfinished:
        assert info["time"] == h
    assert info["cost"] == (1.0 if info["completed"] + len(lost) < n else 0.0)
    # the return is the CPE of the successful completions, recomputed from their start times
    assert ret == sum(r.prior for r in log) == info["cpe"]
    assert ret == sum(sum(1 for o in log if o.end <= r.start + tol) for r in log)
    ends = [r.end for r in log]
    assert ends == sorted(ends)  # completion order
    speeds = spec.lab_speed_factors
    for r in (*log, *lost):
        assert r.end is not None
        assert r.start < r.end <= h + tol
        # recorded prior == successful experiments that ended at or before this start
        assert r.prior == sum(1 for o in log if o.end <= r.start + tol), r
        lo, hi = (x / speeds[r.lab] for x in spec.lab_laws[r.lab].support)
        d = r.end - r.start
        assert lo - 1e-9 * max(1.0, r.end) <= d <= hi + 1e-9 * max(1.0, r.end)
    for r in unfinished:
        assert r.end is None
        assert r.start <= h
        assert r.prior == sum(1 for o in log if o.end <= r.start + tol), r
    # a lab that never fails has no failed experiment, one that always fails no completion
    q = spec.lab_failure_probs
    assert all(q[r.lab] > 0.0 for r in lost) and all(q[r.lab] < 1.0 for r in log)
    # every started experiment appears exactly once, with start order = index order
    records = sorted((*log, *lost, *unfinished), key=lambda r: r.index)
    assert [r.index for r in records] == list(range(info["started"]))
    starts = [r.start for r in records]
    assert starts == sorted(starts)
    # decision points: grid points, and (with decide_on_completion) completion times
    eps = spec.epoch
    for r in records:
        on_grid = abs(r.start / eps - round(r.start / eps)) < 1e-6
        at_completion = any(abs(o.end - r.start) <= tol for o in (*log, *lost))
        if decide_on_completion:
            assert on_grid or at_completion, r
        else:
            assert on_grid, r
    # no two experiments overlap on the same lab
    by_lab = defaultdict(list)
    for r in records:
        assert 0 <= r.lab < spec.n_labs
        by_lab[r.lab].append(r)
    for recs in by_lab.values():
        recs.sort(key=lambda r: r.start)
        for a, b in itertools.pairwise(recs):
            assert a.end is not None, (a, b)  # an unfinished experiment is the last on its lab
            assert a.end <= b.start + tol, (a, b)
    # starts go to the free labs fastest in expectation: every faster lab was busy then
    order = spec.lab_order
    for r in records:
        for c in order[: order.index(r.lab)]:
            assert any(
                o.start <= r.start + tol and (o.end is None or o.end > r.start + tol) for o in by_lab[c]
            ), (r, c)


@PROPERTY_SETTINGS
@given(
    spec=specs(),
    decide_on_completion=st.booleans(),
    env_seed=st.integers(0, 2**31 - 1),
    action_seed=st.integers(0, 2**31 - 1),
    p_invalid=st.sampled_from((0.0, 0.1, 0.4)),
)
def test_invariants(spec, decide_on_completion, env_seed, action_seed, p_invalid):
    _check_random_episode(spec, decide_on_completion, env_seed, action_seed, p_invalid)


@PROPERTY_SETTINGS
@given(
    spec=specs(extended=True),
    decide_on_completion=st.booleans(),
    env_seed=st.integers(0, 2**31 - 1),
    action_seed=st.integers(0, 2**31 - 1),
    p_invalid=st.sampled_from((0.0, 0.1, 0.4)),
)
def test_invariants_with_failures_and_heterogeneous_labs(
    spec, decide_on_completion, env_seed, action_seed, p_invalid
):
    _check_random_episode(spec, decide_on_completion, env_seed, action_seed, p_invalid)


def _check_random_episode(spec, decide_on_completion, env_seed, action_seed, p_invalid) -> None:
    env = ConcurrentLabsEnv(spec, decide_on_completion=decide_on_completion)
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=env_seed)
    _check_step_invariants(env, spec, obs, info, 0.0, 0.0)
    assert info["time"] == 0.0
    max_steps = math.ceil(spec.horizon / spec.epoch) + spec.n_experiments + 1
    ret, steps, terminated = 0.0, 0, False
    while not terminated:
        mask = info["action_mask"]
        a = _choose(rng, mask, p_invalid)
        valid = bool(mask[a])
        prev_time = info["time"]
        prev_started = info["started"]
        obs, r, terminated, truncated, info = env.step(a)
        steps += 1
        assert steps <= max_steps
        assert truncated is False
        assert r >= 0 and r == int(r)
        ret += r
        assert info["clipped"] is (not valid)
        if not valid:
            assert info["requested_action"] == a
            # clipped to the largest valid number of starts
            assert info["started"] == prev_started + int(np.flatnonzero(mask).max())
        else:
            assert info["started"] == prev_started + a
        _check_step_invariants(env, spec, obs, info, prev_time, ret)
        assert info["time"] > prev_time  # every step moves time forward
        assert ("log" in info) is terminated
    _check_final_log(spec, info, ret, decide_on_completion)


@PROPERTY_SETTINGS
@given(
    spec=specs(),
    decide_on_completion=st.booleans(),
    env_seed=st.integers(0, 2**31 - 1),
    action_seed=st.integers(0, 2**31 - 1),
)
def test_flat_observation_equals_flattened_dict(spec, decide_on_completion, env_seed, action_seed):
    _check_flat_equals_dict(spec, decide_on_completion, env_seed, action_seed)


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(
    spec=specs(extended=True),
    decide_on_completion=st.booleans(),
    env_seed=st.integers(0, 2**31 - 1),
    action_seed=st.integers(0, 2**31 - 1),
)
def test_flat_observation_equals_flattened_dict_with_heterogeneous_labs(
    spec, decide_on_completion, env_seed, action_seed
):
    _check_flat_equals_dict(spec, decide_on_completion, env_seed, action_seed)


def _check_flat_equals_dict(spec, decide_on_completion, env_seed, action_seed) -> None:
    dict_env = ConcurrentLabsEnv(spec, decide_on_completion=decide_on_completion)
    flat_env = ConcurrentLabsEnv(spec, decide_on_completion=decide_on_completion, flatten=True)
    assert flat_env.observation_space == spaces.flatten_space(dict_env.observation_space)
    per_lab = 3 if spec.heterogeneous else 2
    assert flat_env.observation_space.shape == (per_lab * spec.n_labs + 4,)
    rng = np.random.default_rng(action_seed)
    d_obs, d_info = dict_env.reset(seed=env_seed)
    f_obs, f_info = flat_env.reset(seed=env_seed)
    terminated = False
    while True:
        assert flat_env.observation_space.contains(f_obs)
        assert f_obs.dtype == np.float32
        np.testing.assert_array_equal(f_obs, spaces.flatten(dict_env.dict_observation_space, d_obs))
        np.testing.assert_array_equal(
            spaces.unflatten(dict_env.dict_observation_space, f_obs)["busy"], d_obs["busy"]
        )
        assert f_info["time"] == d_info["time"] and f_info["cpe"] == d_info["cpe"]
        if terminated:
            break
        a = _choose(rng, d_info["action_mask"], 0.2)
        d_obs, d_r, terminated, _, d_info = dict_env.step(a)
        f_obs, f_r, f_term, _, f_info = flat_env.step(a)
        assert d_r == f_r
        assert f_term == terminated
    assert f_info["log"] == d_info["log"]


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(spec=specs(), env_seed=st.integers(0, 2**31 - 1), normalize=st.booleans())
def test_same_seed_same_execution_and_normalisation(spec, env_seed, normalize):
    """Two envs with the same seed and actions agree exactly; normalisation only rescales."""
    a_env = ConcurrentLabsEnv(spec)
    b_env = ConcurrentLabsEnv(spec, normalize_reward=normalize)
    _, a_info = a_env.reset(seed=env_seed)
    _, b_info = b_env.reset(seed=env_seed)
    scale = 1.0 / max(spec.max_cpe, 1) if normalize else 1.0
    rng = np.random.default_rng(env_seed)
    done, ret_b = False, 0.0
    while not done:
        a = _choose(rng, a_info["action_mask"], 0.0)
        _, ra, done, _, a_info = a_env.step(a)
        _, rb, done_b, _, b_info = b_env.step(a)
        assert done == done_b
        assert rb == ra * scale
        ret_b += rb
        assert a_info["time"] == b_info["time"]
    if normalize:
        assert math.isclose(ret_b, a_info["cpe"] * scale, rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert ret_b == a_info["cpe"]
    assert a_info["log"] == b_info["log"]
