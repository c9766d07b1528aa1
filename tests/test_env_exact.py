"""Exact behaviour of ``ConcurrentLabsEnv`` with deterministic and forced durations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _envtools import all_busy, keep_busy, run_episode, sequential
from gymnasium.utils import seeding

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.envs import simulate_keep_busy
from labsched.envs.labs.durations import Deterministic, Gamma, TruncatedNormal


def det_env(n=20, labs=10, h=5.0, value=1.0, **kw) -> ConcurrentLabsEnv:
    return ConcurrentLabsEnv(
        LabSpec(n_experiments=n, n_labs=labs, horizon=h, duration=Deterministic(value)), **kw
    )


# ----------------------------------------------------------------------------------------------
# Extreme schedules
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "n_labs"), [(20, 20), (10, 10)])
@pytest.mark.parametrize("doc", [True, False])
def test_all_at_once_has_cpe_zero(n, n_labs, doc):
    env = det_env(n=n, labs=n_labs, decide_on_completion=doc)
    ep = run_episode(env, all_busy, seed=0)
    assert ep.actions[0] == n
    assert ep.final["cpe"] == 0
    assert ep.ret == 0.0
    assert ep.final["completed"] == n
    assert ep.final["time"] == pytest.approx(1.0)
    assert all(rec.prior == 0 for rec in ep.final["log"])


@pytest.mark.parametrize("doc", [True, False])
def test_sequential_has_maximal_cpe(doc):
    env = det_env(n=20, labs=10, h=50.0, decide_on_completion=doc)
    ep = run_episode(env, sequential, seed=0)
    assert ep.final["completed"] == 20
    assert ep.final["cpe"] == 190 == env.lab_spec.max_cpe
    assert ep.ret == 190.0
    assert [rec.prior for rec in ep.final["log"]] == list(range(20))
    assert [rec.index for rec in ep.final["log"]] == list(range(20))
    assert ep.final["time"] == pytest.approx(20.0)


@pytest.mark.parametrize("doc", [True, False])
def test_keep_all_busy_deterministic(doc):
    env = det_env(n=20, labs=10, h=5.0, decide_on_completion=doc)
    ep = run_episode(env, all_busy, seed=0)
    assert ep.final["cpe"] == 100
    assert ep.ret == 100.0
    assert ep.final["completed"] == 20
    assert sorted(rec.prior for rec in ep.final["log"]) == [0] * 10 + [10] * 10
    assert ep.final["time"] == pytest.approx(2.0)


def test_normalized_reward():
    env = ConcurrentLabsEnv(normalize_reward=True)
    for seed in range(5):
        ep = run_episode(env, keep_busy(5), seed=seed)
        assert ep.ret == pytest.approx(ep.final["cpe"] / 190, rel=1e-12)
        assert ep.final["cpe"] > 0
    env = det_env(n=20, labs=10, h=50.0, normalize_reward=True)
    ep = run_episode(env, sequential, seed=0)
    assert ep.ret == pytest.approx(1.0, rel=1e-12)
    assert ep.final["cpe"] == 190  # info stays unnormalised


# ----------------------------------------------------------------------------------------------
# OnFCP / keep-k-busy against the batched simulator
# ----------------------------------------------------------------------------------------------


def _check_env_matches_simulator(spec: LabSpec, k: int, durations: np.ndarray) -> None:
    out = simulate_keep_busy(spec, k, durations.shape[0], np.random.default_rng(0), durations=durations)
    env = ConcurrentLabsEnv(spec)
    n_incomplete = 0
    for i in range(durations.shape[0]):
        ep = run_episode(env, keep_busy(k), options={"durations": durations[i]})
        fin = ep.final
        assert fin["cpe"] == out.cpe[i], i
        assert fin["completed"] == out.completed[i], i
        n_incomplete += fin["completed"] < spec.n_experiments
        for rec in (*fin["log"], *fin["unfinished"]):
            j = rec.index
            assert rec.start == out.starts[i, j]
            assert rec.prior == out.priors[i, j]
            if rec.end is not None:
                assert rec.end == out.ends[i, j]
                assert rec.end - rec.start == pytest.approx(durations[i, j], rel=1e-12)
            else:
                assert out.ends[i, j] > spec.horizon
        # the experiments never started by the env start after the horizon in the simulator
        started = fin["started"]
        assert np.all(out.starts[i, started:] >= spec.horizon - 1e-9)
    return n_incomplete


@pytest.mark.parametrize("k", [10, 4])
def test_env_equals_simulator_for_same_durations_default(k):
    spec = LabSpec()
    d = spec.duration.sample(np.random.default_rng(42), (40, 20))
    _check_env_matches_simulator(spec, k, d)


def test_env_equals_simulator_for_same_durations_when_horizon_binds():
    spec = LabSpec(duration=Gamma(2.0, 1.0))  # mean 2: the horizon cuts many executions short
    d = spec.duration.sample(np.random.default_rng(43), (40, 20))
    n_incomplete = _check_env_matches_simulator(spec, 10, d)
    assert n_incomplete > 5  # the case we meant to exercise actually happened


@pytest.mark.parametrize("k", [10, 5])
def test_keep_busy_mean_cpe_matches_simulator(k):
    spec = LabSpec()
    env = ConcurrentLabsEnv(spec)
    cpes = np.array([run_episode(env, keep_busy(k), seed=s).final["cpe"] for s in range(400)])
    sim = simulate_keep_busy(spec, k, 20_000, np.random.default_rng(2024)).cpe
    se = math.sqrt(cpes.var(ddof=1) / cpes.size + sim.var(ddof=1) / sim.size)
    print(f"k={k}: env mean CPE {cpes.mean():.3f}, simulator {sim.mean():.3f} (se {se:.3f})")
    assert abs(cpes.mean() - sim.mean()) <= 3 * se + 1e-12
    if k == 10:
        # OnFCP on the paper's setting: the (10 + j)-th experiment starts at the j-th completion
        # (prior j), so every execution that finishes in time has CPE 1 + ... + 10 = 55.
        assert cpes.mean() == pytest.approx(55.0, abs=0.5)


def test_durations_follow_start_order_common_random_numbers():
    """The i-th experiment started gets the i-th duration drawn at reset, whatever the policy."""
    spec = LabSpec(horizon=50.0)
    rng, _ = seeding.np_random(7)
    expected = spec.duration.sample(rng, 20)
    env = ConcurrentLabsEnv(spec)
    for policy in (all_busy, sequential, keep_busy(3)):
        ep = run_episode(env, policy, seed=7)
        assert ep.final["completed"] == 20
        got = {rec.index: rec.end - rec.start for rec in ep.final["log"]}
        np.testing.assert_allclose([got[i] for i in range(20)], expected, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Horizon, ties and decision points
# ----------------------------------------------------------------------------------------------


def test_experiments_running_at_horizon_are_lost():
    env = det_env(n=2, labs=2, h=5.0)
    ep = run_episode(env, all_busy, options={"durations": [1.0, 6.0]})
    fin = ep.final
    assert fin["completed"] == 1
    assert fin["started"] == 2
    assert fin["time"] == 5.0
    assert ep.ret == 0.0 and fin["cpe"] == 0
    assert len(fin["log"]) == 1
    assert fin["log"][0].end == 1.0
    assert len(fin["unfinished"]) == 1
    lost = fin["unfinished"][0]
    assert lost.end is None
    assert lost.index == 1 and lost.start == 0.0 and lost.prior == 0


def test_experiment_ending_exactly_at_horizon_counts():
    env = det_env(n=3, labs=1, h=3.0)
    ep = run_episode(env, sequential, options={"durations": [1.0, 2.0, 0.5]})
    fin = ep.final
    assert fin["completed"] == 2
    assert fin["cpe"] == 1
    assert fin["log"][-1].end == 3.0
    assert fin["time"] == 3.0
    assert fin["started"] == 2 and fin["unfinished"] == ()  # no time left to start the third


@pytest.mark.parametrize("doc", [True, False])
def test_simultaneous_completions_processed_together(doc):
    env = det_env(n=6, labs=3, h=5.0, decide_on_completion=doc)
    env.reset(seed=0)
    _, r, term, _, info = env.step(3)
    assert info["time"] == pytest.approx(0.1) and info["running"] == 3
    steps = 1
    while info["completed"] == 0:
        _, r, term, _, info = env.step(0)
        steps += 1
        assert not term
    assert steps == 10  # the grid points 0.1 ... 1.0: no earlier decision point
    assert info["time"] == pytest.approx(1.0)
    assert info["completed"] == 3
    assert info["running"] == 0
    assert r == 0.0
    assert info["action_mask"].tolist() == [True, True, True, True]
    _, r, term, _, info = env.step(3)
    while not term:
        _, r2, term, _, info = env.step(0)
        r += r2
    assert r == 9.0
    assert info["cpe"] == 9
    assert [rec.prior for rec in info["log"]] == [0, 0, 0, 3, 3, 3]
    assert [rec.end for rec in info["log"][:3]] == [1.0, 1.0, 1.0]


def test_decision_point_at_completion_time():
    env = det_env(n=3, labs=3, h=5.0)
    d = [0.237, 1.0, 1.0]
    _, info = env.reset(options={"durations": d})
    times, completed = [], []
    a = 1
    for _ in range(4):
        _, _, _, _, info = env.step(a)
        a = 0
        times.append(info["time"])
        completed.append(info["completed"])
    assert times[:3] == [pytest.approx(0.1), pytest.approx(0.2), 0.237]
    assert times[2] == 0.237  # exactly the completion time
    assert times[3] == pytest.approx(0.3)
    assert completed == [0, 0, 1, 1]


def test_first_step_reaches_completion_time_when_epoch_is_long():
    env = ConcurrentLabsEnv(LabSpec(n_experiments=3, n_labs=3, epoch=0.5))
    env.reset(options={"durations": [0.237, 1.0, 1.0]})
    _, _, _, _, info = env.step(1)
    assert info["time"] == 0.237
    assert info["completed"] == 1
    # a new experiment started at 0.237 has prior 1 and ends at 1.237
    _, _, _, _, info = env.step(1)
    assert info["time"] == 0.5
    assert env.running_records()[0].prior == 1
    assert env.running_records()[0].start == 0.237


def test_grid_only_decisions_without_decide_on_completion():
    env = det_env(n=3, labs=3, h=5.0, decide_on_completion=False)
    env.reset(options={"durations": [0.237, 1.0, 1.0]})
    times, completed = [], []
    a = 1
    for _ in range(4):
        _, _, _, _, info = env.step(a)
        a = 0
        times.append(info["time"])
        completed.append(info["completed"])
    assert times == [pytest.approx(0.1 * (i + 1), abs=1e-12) for i in range(4)]
    assert completed == [0, 0, 1, 1]
    # an experiment started at the next decision point (0.4) sees the completion at 0.237
    _, _, _, _, info = env.step(1)
    assert env.running_records()[0].prior == 1
    assert env.running_records()[0].start == pytest.approx(0.4)
    # the log keeps the exact completion time, not the decision point where it was noticed
    assert env.execution_log()[0].end == 0.237


def test_step_count_deterministic_epoch_grid():
    env = det_env(n=1, labs=1, h=5.0)
    ep = run_episode(env, lambda info: 0, seed=0)
    assert len(ep.rewards) == 50
    assert ep.final["time"] == 5.0
    assert ep.final["completed"] == 0 and ep.final["cpe"] == 0


# ----------------------------------------------------------------------------------------------
# Observations
# ----------------------------------------------------------------------------------------------


def test_observation_values_exact():
    env = det_env(n=6, labs=3, h=5.0, value=2.0)
    obs, info = env.reset(seed=0)
    assert obs["busy"].tolist() == [0, 0, 0]
    assert obs["remaining_time"][0] == 1.0 and obs["remaining_budget"][0] == 1.0
    assert info["cpe"] == 0 and info["time"] == 0.0 and info["started"] == 0
    assert info["action_mask"].tolist() == [True] * 4
    obs, *_ = env.step(2)
    assert obs["busy"].dtype == np.int8
    assert obs["busy"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(obs["elapsed"], np.float32([0.05, 0.05, 0.0]))  # 0.1 / E[D]=2
    np.testing.assert_allclose(obs["started"], np.float32([2 / 6]))
    np.testing.assert_allclose(obs["remaining_budget"], np.float32([4 / 6]))
    np.testing.assert_allclose(obs["completed"], np.float32([0.0]))
    np.testing.assert_allclose(obs["remaining_time"], np.float32([4.9 / 5]))
    for v in obs.values():
        assert v.shape in ((1,), (3,))
    assert all(obs[k].dtype == np.float32 for k in obs if k != "busy")
    assert list(obs) == sorted(obs)


def test_flat_observation_layout():
    env = det_env(n=6, labs=3, h=5.0, value=2.0, flatten=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2 * 3 + 4,)
    assert obs.dtype == np.float32
    obs, *_ = env.step(2)
    np.testing.assert_allclose(
        obs, np.float32([1, 1, 0, 0.0, 0.05, 0.05, 0.0, 4 / 6, 4.9 / 5, 2 / 6]), rtol=1e-6
    )


# ----------------------------------------------------------------------------------------------
# Actions
# ----------------------------------------------------------------------------------------------


def test_clip_to_free_labs():
    env = det_env(n=5, labs=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)
    assert info["clipped"] is False and "requested_action" not in info
    _, _, _, _, info = env.step(2)
    assert info["clipped"] is True
    assert info["requested_action"] == 2
    assert info["started"] == 2 and info["running"] == 2


def test_clip_to_remaining_budget():
    env = det_env(n=3, labs=5)
    env.reset(seed=0)
    _, _, _, _, info = env.step(5)
    assert info["clipped"] is True
    assert info["requested_action"] == 5
    assert info["started"] == 3
    assert info["action_mask"].tolist() == [True] + [False] * 5


def test_invalid_action_raise_mode():
    env = det_env(n=5, labs=2, invalid_action="raise")
    env.reset(seed=0)
    env.step(2)
    t = env.time
    with pytest.raises(ValueError, match="free labs"):
        env.step(1)
    # nothing changed: the env can go on
    assert env.time == t
    _, _, _, _, info = env.step(0)
    assert info["started"] == 2
    budget_env = det_env(n=1, labs=3, invalid_action="raise")
    budget_env.reset(seed=0)
    with pytest.raises(ValueError, match="unstarted"):
        budget_env.step(2)


@pytest.mark.parametrize("mode", ["clip", "raise"])
@pytest.mark.parametrize("action", [-1, 11, 100, np.int64(-2)])
def test_out_of_space_actions(mode, action):
    env = ConcurrentLabsEnv(invalid_action=mode)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="n_labs=10"):
        env.step(action)


@pytest.mark.parametrize(
    "action",
    [1.5, 1.0, "a", None, True, np.array([1, 2]), np.array([1.0]), np.float64(1.0), [1]],
    ids=["float", "float_int", "str", "none", "bool", "array2", "float_array", "np_float", "list"],
)
def test_non_integer_actions(action):
    env = ConcurrentLabsEnv()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="action"):
        env.step(action)


@pytest.mark.parametrize(
    "action",
    [np.array(3), np.array([3]), np.int64(3), np.uint8(3), np.array([[3]], dtype=np.int32)],
    ids=["0d", "1elem", "int64", "uint8", "2d_1elem"],
)
def test_integer_array_actions_accepted(action):
    env = ConcurrentLabsEnv()
    env.reset(seed=0)
    _, _, _, _, info = env.step(action)
    assert info["started"] == 3
    assert info["clipped"] is False


@pytest.mark.parametrize("action", [np.array(2), np.int64(2), np.array([2])], ids=["0d", "int64", "1elem"])
def test_clipped_integer_array_action_reports_request(action):
    """A one-element integer array is a valid action (SB3 passes those); when it has to be clipped,
    ``info["requested_action"]`` must still be filled in rather than ``step`` crashing."""
    env = det_env(n=5, labs=2)
    env.reset(seed=0)
    env.step(2)
    _, _, _, _, info = env.step(action)
    assert info["clipped"] is True
    assert info["requested_action"] == 2


def test_step_after_termination_raises():
    env = det_env(n=1, labs=1, h=1.0)
    ep = run_episode(env, all_busy, seed=0)
    assert ep.final["completed"] == 1
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=1)
    env.step(0)  # works again after reset


def test_reset_clears_state():
    env = det_env(n=4, labs=2)
    run_episode(env, all_busy, seed=0)
    obs, info = env.reset(seed=0)
    assert info["cpe"] == 0 and info["completed"] == 0 and info["started"] == 0
    assert info["time"] == 0.0 and env.time == 0.0
    assert env.execution_log() == () and env.running_records() == ()
    assert obs["busy"].sum() == 0


@pytest.mark.parametrize(
    "durations",
    [[1.0, 1.0], [1.0] * 4, [1.0, 0.0, 1.0], [1.0, -1.0, 1.0], [1.0, math.nan, 1.0], [1.0, math.inf, 1.0]],
)
def test_forced_durations_validated(durations):
    env = det_env(n=3, labs=2)
    with pytest.raises(ValueError, match="durations"):
        env.reset(options={"durations": durations})


# ----------------------------------------------------------------------------------------------
# Constructor
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"invalid_action": "x"}, ValueError, "invalid_action"),
        ({"reward": "regret2"}, ValueError, "reward"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
        ({"spec": "x"}, TypeError, "spec"),
        ({"spec": {"n_lab": 3}}, TypeError, "spec mapping"),
        ({"spec": [20, 10, 5.0]}, TypeError, "spec"),
        ({"n_labs": 0}, ValueError, "n_labs"),
        ({"horizon": -1.0}, ValueError, "horizon"),
        ({"n_lab": 3}, TypeError, "n_lab"),
        ({"duration": "gamma"}, TypeError, "duration"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        ConcurrentLabsEnv(**kwargs)


def test_keyword_overrides_change_the_spec():
    env = ConcurrentLabsEnv(n_labs=4)
    assert env.lab_spec == LabSpec(n_labs=4)
    assert env.action_space.n == 5
    assert env.observation_space["busy"].n == 4
    env = ConcurrentLabsEnv(LabSpec(n_experiments=8), horizon=6.0, duration=Gamma(2.0, 0.5))
    assert env.lab_spec == LabSpec(n_experiments=8, horizon=6.0, duration=Gamma(2.0, 0.5))
    env = ConcurrentLabsEnv()
    assert env.lab_spec == LabSpec()
    assert env.lab_spec.duration == TruncatedNormal()
    assert env.action_space.n == 11
