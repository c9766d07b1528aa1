"""Tests of the batched Monte-Carlo simulator ``simulate_keep_busy`` and ``prior_counts``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _envtools import keep_busy, run_episode

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.envs import BatchOutcome, SimState, simulate_keep_busy
from labsched.envs.labs.durations import Deterministic, TruncatedNormal
from labsched.envs.labs.monte_carlo import prior_counts

DET = LabSpec(duration=Deterministic(1.0))


def test_deterministic_keep_all_busy():
    out = simulate_keep_busy(DET, 10, 50, np.random.default_rng(0))
    assert isinstance(out, BatchOutcome)
    np.testing.assert_array_equal(out.cpe, np.full(50, 100))
    np.testing.assert_array_equal(out.completed, np.full(50, 20))
    assert out.all_completed(20).all()
    np.testing.assert_array_equal(out.starts[0], [0.0] * 10 + [1.0] * 10)
    np.testing.assert_array_equal(out.ends[0], [1.0] * 10 + [2.0] * 10)
    np.testing.assert_array_equal(out.priors[0], [0] * 10 + [10] * 10)


def test_deterministic_sequential():
    spec = DET.replace(horizon=25.0)
    out = simulate_keep_busy(spec, 1, 7, np.random.default_rng(0))
    np.testing.assert_array_equal(out.cpe, np.full(7, 190))
    np.testing.assert_array_equal(out.completed, np.full(7, 20))
    np.testing.assert_array_equal(out.priors[3], np.arange(20))
    np.testing.assert_array_equal(out.starts[3], np.arange(20.0))
    # with h = 5 only five complete: CPE 0 + 1 + 2 + 3 + 4
    out = simulate_keep_busy(DET, 1, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(out.cpe, [10, 10, 10])
    np.testing.assert_array_equal(out.completed, [5, 5, 5])
    assert not out.all_completed(20).any()


def test_deterministic_three_busy_uniform_stages():
    # 20 experiments, 3 at a time, duration 1: stages of 3,3,3,3,3,3,2 ending at 1..7.
    spec = DET.replace(horizon=10.0)
    out = simulate_keep_busy(spec, 3, 2, np.random.default_rng(0))
    stages = [3] * 6 + [2]
    expected = sum(n_i * 3 * i for i, n_i in enumerate(stages))
    np.testing.assert_array_equal(out.cpe, [expected, expected])
    # h = 5: five stages of 3 complete
    out = simulate_keep_busy(DET, 3, 1, np.random.default_rng(0))
    assert out.cpe[0] == sum(3 * 3 * i for i in range(5))
    assert out.completed[0] == 15


def test_shapes_and_types():
    spec = LabSpec()
    out = simulate_keep_busy(spec, 4, 13, np.random.default_rng(1))
    assert out.cpe.shape == out.completed.shape == (13,)
    assert out.starts.shape == out.ends.shape == out.priors.shape == (13, 20)
    assert np.issubdtype(out.priors.dtype, np.integer)
    assert np.all(out.ends > out.starts)
    assert np.all(np.diff(out.starts, axis=1) >= 0)  # start order
    assert np.all((out.completed >= 0) & (out.completed <= 20))
    state = SimState(time=1.0, completed=3, started=5, running_elapsed=(0.5, 0.2))
    out = simulate_keep_busy(spec, 4, 6, np.random.default_rng(1), state=state)
    assert out.starts.shape == (6, 15)
    assert np.all(out.starts >= 1.0)
    assert np.all(out.completed >= 3)


def test_reproducible_with_same_rng_seed():
    spec = LabSpec()
    a = simulate_keep_busy(spec, 6, 100, np.random.default_rng(5))
    b = simulate_keep_busy(spec, 6, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(a.ends, b.ends)
    np.testing.assert_array_equal(a.cpe, b.cpe)
    c = simulate_keep_busy(spec, 6, 100, np.random.default_rng(6))
    assert not np.array_equal(a.ends, c.ends)


def test_forced_durations_are_used_in_start_order():
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=10.0)
    d = np.array([[1.0, 3.0, 0.5, 2.0]])
    out = simulate_keep_busy(spec, 2, 1, np.random.default_rng(0), durations=d)
    # lab A: 0-1, then exp 2 at 1-1.5, then exp 3 at 1.5-3.5; lab B: exp 1 0-3
    np.testing.assert_array_equal(out.starts[0], [0.0, 0.0, 1.0, 1.5])
    np.testing.assert_array_equal(out.ends[0], [1.0, 3.0, 1.5, 3.5])
    np.testing.assert_array_equal(out.priors[0], [0, 0, 1, 2])
    assert out.cpe[0] == 3


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"n_busy": 0}, "n_busy"),
        ({"n_busy": 11}, "n_busy"),
        ({"n_busy": -1}, "n_busy"),
        ({"n_episodes": 0}, "n_episodes"),
        ({"durations": np.ones((5, 19))}, "durations"),
        ({"durations": np.ones((4, 20))}, "durations"),
        ({"durations": np.ones(20)}, "durations"),
        ({"state": SimState(completed=0, started=21, running_elapsed=(0.1,) * 21)}, "started"),
    ],
)
def test_validation(kwargs, text):
    args = {"spec": LabSpec(), "n_busy": 5, "n_episodes": 5, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=text):
        simulate_keep_busy(**args)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"time": -1.0}, "time"),
        ({"completed": 3, "started": 2, "running_elapsed": ()}, "completed"),
        ({"completed": -1, "started": 0}, "completed"),
        ({"completed": 1, "started": 3, "running_elapsed": (0.1,)}, "running"),
        ({"completed": 1, "started": 2, "running_elapsed": (0.1,), "running_prior": (0, 1)}, "running_prior"),
    ],
)
def test_simstate_validation(kwargs, text):
    with pytest.raises(ValueError, match=text):
        SimState(**kwargs)


def test_prior_counts_hand_built():
    starts = np.array([[0.0, 0.0, 1.0, 1.5]])
    ends = np.array([[1.0, 1.5, 2.0, 3.0]])
    np.testing.assert_array_equal(prior_counts(starts, ends), [[0, 0, 1, 2]])
    initial_ends = np.array([[0.5, 4.0]])
    np.testing.assert_array_equal(prior_counts(starts, ends, initial_ends, completed=2), [[2, 2, 4, 5]])
    # an end exactly at a start counts (ties: completed "at" the start time)
    np.testing.assert_array_equal(prior_counts(np.array([[0.0, 2.0]]), np.array([[2.0, 3.0]])), [[0, 1]])
    # several episodes at once
    s2 = np.vstack([starts, starts + 10])
    e2 = np.vstack([ends, ends])
    np.testing.assert_array_equal(prior_counts(s2, e2), [[0, 0, 1, 2], [4, 4, 4, 4]])
    # empty initial set is the same as none
    np.testing.assert_array_equal(prior_counts(starts, ends, np.empty((1, 0))), [[0, 0, 1, 2]])


# ----------------------------------------------------------------------------------------------
# Mid-episode state
# ----------------------------------------------------------------------------------------------


def _env_reaching_the_state():
    """An env execution reaching: t = 1.0, completed 3, started 5, running elapsed (0.5, 0.2)
    with priors (1, 2), then keeping the 3 labs busy."""
    spec = LabSpec(n_experiments=8, n_labs=3, horizon=5.0, duration=Deterministic(1.0))
    env = ConcurrentLabsEnv(spec)
    durations = [0.3, 0.7, 1.0, 1.0, 0.1, 1.0, 1.0, 1.0]
    #  t=0: e0 (0.3), e1 (0.7) | t=0.5: e2 (prior 1) | t=0.8: e3 (prior 2), e4 (0.1, prior 2)
    script = {0.0: 2, 0.5: 1, 0.8: 2}
    _, info = env.reset(options={"durations": durations})
    state_info = None
    done = False
    while not done:
        t = info["time"]
        if t < 1.0 - 1e-9:
            a = next((v for k, v in script.items() if abs(k - t) < 1e-9), 0)
        else:
            if state_info is None:
                state_info = (info, env.running_records())
            a = keep_busy(3)(info)
        _, _, done, _, info = env.step(a)
    return spec, state_info, info


def test_sim_from_state_matches_env_execution():
    spec, (state_info, running), final = _env_reaching_the_state()
    # the env really reached the intended state
    assert state_info["time"] == pytest.approx(1.0)
    assert state_info["completed"] == 3 and state_info["started"] == 5
    assert state_info["cpe"] == 2  # e4 (prior 2) completed at 0.9
    assert [r.prior for r in running] == [1, 2]
    assert [round(state_info["time"] - r.start, 12) for r in running] == [0.5, 0.2]

    state = SimState(time=1.0, completed=3, started=5, running_elapsed=(0.5, 0.2), running_prior=(1, 2))
    out = simulate_keep_busy(spec, 3, 4, np.random.default_rng(0), state=state)
    # by hand: residuals 0.5 and 0.8 -> ends 1.5, 1.8; new experiments start at 1.0 (prior 3),
    # 1.5 (prior 4) and 1.8 (prior 5); CPE = (1 + 2) + (3 + 4 + 5) = 15
    np.testing.assert_array_equal(out.cpe, [15] * 4)
    np.testing.assert_array_equal(out.completed, [8] * 4)
    np.testing.assert_allclose(out.starts[0], [1.0, 1.5, 1.8], rtol=1e-12)
    np.testing.assert_allclose(out.ends[0], [2.0, 2.5, 2.8], rtol=1e-12)
    np.testing.assert_array_equal(out.priors[0], [3, 4, 5])
    # the env continues identically: its CPE is the CPE so far plus the simulated one
    assert final["completed"] == 8
    assert final["cpe"] == state_info["cpe"] + 15 == 17
    new = sorted((r for r in final["log"] if r.index >= 5), key=lambda r: r.index)
    assert [r.prior for r in new] == [3, 4, 5]
    # without running priors the running experiments contribute nothing to the CPE
    out = simulate_keep_busy(
        spec, 3, 1, np.random.default_rng(0), state=state.__class__(1.0, 3, 5, (0.5, 0.2))
    )
    assert out.cpe[0] == 12


def test_sim_state_with_more_running_than_busy_target():
    # 3 running (ends 2.0, 1.5, 1.2) and keep 1 busy: nothing starts until all three are done.
    spec = LabSpec(n_experiments=5, n_labs=3, horizon=5.0, duration=Deterministic(1.0))
    state = SimState(
        time=1.0, completed=0, started=3, running_elapsed=(0.0, 0.5, 0.8), running_prior=(0, 0, 0)
    )
    out = simulate_keep_busy(spec, 1, 2, np.random.default_rng(0), state=state)
    np.testing.assert_allclose(out.starts[0], [2.0, 3.0])
    np.testing.assert_array_equal(out.priors[0], [3, 4])
    np.testing.assert_array_equal(out.cpe, [7, 7])
    np.testing.assert_array_equal(out.completed, [5, 5])
    # keep 2 busy: the first start at the first completion (1.2, prior 1), the next at 1.5
    out = simulate_keep_busy(spec, 2, 1, np.random.default_rng(0), state=state)
    np.testing.assert_allclose(out.starts[0], [1.5, 2.0])
    np.testing.assert_array_equal(out.priors[0], [2, 3])


def test_sim_state_residuals_are_conditional():
    """Running experiments complete by h with probability 1 - sf(e + h - t) / sf(e)."""
    spec = LabSpec(n_experiments=12, n_labs=10, horizon=2.0)
    elapsed = (0.0, 0.5, 1.0, 1.4)
    state = SimState(time=1.2, completed=8, started=12, running_elapsed=elapsed)
    out = simulate_keep_busy(spec, 10, 20_000, np.random.default_rng(3), state=state)
    assert out.starts.shape == (20_000, 0)
    d = TruncatedNormal()
    p = 1 - d.sf(np.array(elapsed) + 0.8) / d.sf(np.array(elapsed))
    expected = 8 + p.sum()
    se = math.sqrt((p * (1 - p)).sum() / 20_000)
    assert abs(out.completed.mean() - expected) < 4 * se


# ----------------------------------------------------------------------------------------------
# Statistics against the paper and the environment
# ----------------------------------------------------------------------------------------------


def test_onfcp_cpe_matches_paper():
    out = simulate_keep_busy(LabSpec(), 10, 20_000, np.random.default_rng(11))
    mean = float(out.cpe.mean())
    print(f"OnFCP mean CPE on the paper's setting: {mean:.3f} (paper: 55)")
    assert abs(mean - 55.0) <= 2.0
    # each execution that finishes in time has CPE exactly 1 + ... + 10
    done = out.all_completed(20)
    assert done.mean() > 0.99
    np.testing.assert_array_equal(out.cpe[done], 55)


@pytest.mark.parametrize("k", [4, 5, 7])
def test_completion_probability_env_vs_simulator(k):
    spec = LabSpec()
    env = ConcurrentLabsEnv(spec)
    env_done = np.array(
        [run_episode(env, keep_busy(k), seed=1000 + s).final["completed"] == 20 for s in range(400)]
    )
    sim_done = simulate_keep_busy(spec, k, 20_000, np.random.default_rng(77)).all_completed(20)
    p_env, p_sim = env_done.mean(), sim_done.mean()
    p = (env_done.sum() + sim_done.sum()) / (env_done.size + sim_done.size)
    se = math.sqrt(max(p * (1 - p), 1e-4) * (1 / env_done.size + 1 / sim_done.size))
    print(f"k={k}: P(all done) env {p_env:.4f}, simulator {p_sim:.4f}, se {se:.4f}")
    assert abs(p_env - p_sim) <= 4 * se
