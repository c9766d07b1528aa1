"""Gymnasium / Stable-Baselines3 integration, seeding, action masks and rendering."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from _envtools import all_busy, assert_same_trajectory, keep_busy, run_episode

import labsched
from labsched import CONCURRENT_LABS_ID, ConcurrentLabsEnv, ExperimentRecord, LabSpec
from labsched.envs.labs.suite import suite_envs

# Checker warnings that do not indicate a problem with the environment.
BENIGN_WARNINGS = ("Not able to test alternative render modes",)

ACTIONS = (3, 0, 1, 2, 0, 0, 5, 1, 0, 10, 0, 2)


# ----------------------------------------------------------------------------------------------
# Registration and gymnasium.make
# ----------------------------------------------------------------------------------------------


def test_import_registers_env():
    assert CONCURRENT_LABS_ID == "labsched/ConcurrentLabs-v0"
    assert CONCURRENT_LABS_ID in gym.registry
    entry = gym.registry[CONCURRENT_LABS_ID]
    labsched.register_envs()
    labsched.register_envs()
    assert gym.registry[CONCURRENT_LABS_ID] is entry
    ours = sorted(k for k in gym.registry if k.startswith("labsched/"))
    suite = [e.id for e in suite_envs(available_only=True)]
    assert len(suite) == 8
    assert ours == sorted(
        ["labsched/ConcurrentLabs-v0", "labsched/ExperimentQueue-v0", "labsched/Random-v0", *suite]
    )


def test_make_default_and_with_spec():
    env = gym.make(CONCURRENT_LABS_ID)
    assert isinstance(env.unwrapped, ConcurrentLabsEnv)
    assert env.unwrapped.lab_spec == LabSpec()
    env.close()
    spec = LabSpec(n_experiments=8, n_labs=3)
    env = gym.make(CONCURRENT_LABS_ID, spec=spec)
    assert env.unwrapped.lab_spec == spec
    assert env.action_space == gym.spaces.Discrete(4)
    env.close()
    env = gym.make(CONCURRENT_LABS_ID, n_labs=4)
    assert env.unwrapped.lab_spec == LabSpec(n_labs=4)
    assert env.action_space.n == 5
    env.close()
    env = gym.make(CONCURRENT_LABS_ID, flatten=True, n_labs=4)
    assert env.observation_space.shape == (12,)
    env.close()
    with pytest.raises(ValueError, match="n_labs"):
        gym.make(CONCURRENT_LABS_ID, n_labs=0)


def test_episode_through_make_wrappers_has_no_warnings():
    """gym.make adds the passive env checker: a whole episode must not trigger it."""
    for flat in (False, True):
        env = gym.make(CONCURRENT_LABS_ID, flatten=flat)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            obs, info = env.reset(seed=0)
            assert env.observation_space.contains(obs)
            done = False
            while not done:
                obs, _, done, _, info = env.step(keep_busy(6)(info))
                assert env.observation_space.contains(obs)
        assert info["completed"] > 0
        env.close()


# ----------------------------------------------------------------------------------------------
# Environment checkers
# ----------------------------------------------------------------------------------------------


def _run_checker(check, env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(env)
    bad = [str(w.message) for w in caught if not any(b in str(w.message) for b in BENIGN_WARNINGS)]
    for msg in bad:
        print("checker warning:", msg)
    assert not bad, bad


@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
def test_gymnasium_env_checker(flatten):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(CONCURRENT_LABS_ID, flatten=flatten).unwrapped  # has a spec: render modes too
    _run_checker(check_env, env)
    _run_checker(check_env, ConcurrentLabsEnv(flatten=flatten, n_labs=3, n_experiments=5))


@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
def test_sb3_env_checker(flatten):
    from stable_baselines3.common.env_checker import check_env

    _run_checker(lambda e: check_env(e, warn=True), ConcurrentLabsEnv(flatten=flatten))
    _run_checker(lambda e: check_env(e, warn=True), ConcurrentLabsEnv(flatten=flatten, n_labs=1))


# ----------------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------------


def _trajectory(env, seed):
    obs, info = env.reset(seed=seed)
    traj = [(obs, 0.0, info)]
    done, i = False, 0
    while not done:
        obs, r, done, _, info = env.step(ACTIONS[i % len(ACTIONS)])
        i += 1
        traj.append((obs, r, info))
    return traj


def test_same_seed_identical_trajectories():
    a = _trajectory(ConcurrentLabsEnv(), 5)
    b = _trajectory(ConcurrentLabsEnv(), 5)
    assert_same_trajectory(a, b)
    # the same env instance reseeded reproduces it too
    env = ConcurrentLabsEnv()
    _trajectory(env, 99)
    assert_same_trajectory(a, _trajectory(env, 5))


def test_different_seeds_differ():
    a = _trajectory(ConcurrentLabsEnv(), 5)
    b = _trajectory(ConcurrentLabsEnv(), 6)
    ends_a = [r.end for r in a[-1][2]["log"]]
    ends_b = [r.end for r in b[-1][2]["log"]]
    assert ends_a != ends_b


def test_unseeded_reset_continues_the_rng_stream():
    env = ConcurrentLabsEnv(n_labs=20, horizon=50.0)
    first = run_episode(env, all_busy, seed=1).final["log"]
    second = run_episode(env, all_busy).final["log"]
    assert [r.end for r in first] != [r.end for r in second]
    again = run_episode(ConcurrentLabsEnv(n_labs=20, horizon=50.0), all_busy, seed=1).final["log"]
    assert again == first


TRAJECTORY_SCRIPT = f"""
import labsched
ACTIONS = {ACTIONS!r}
env = labsched.ConcurrentLabsEnv()
obs, info = env.reset(seed=123)
out, done, i = [], False, 0
while not done:
    obs, r, done, _, info = env.step(ACTIONS[i % len(ACTIONS)])
    i += 1
    out.append((r, info["time"], info["cpe"]))
print(repr(out))
"""


def test_seeding_is_reproducible_across_processes():
    proc = subprocess.run(
        [sys.executable, "-c", TRAJECTORY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(TRAJECTORY_SCRIPT, {})
    assert proc.stdout == buf.getvalue()
    assert len(proc.stdout) > 100


# ----------------------------------------------------------------------------------------------
# Action masks and sb3-contrib
# ----------------------------------------------------------------------------------------------


def test_action_masks_through_wrappers():
    env = gym.make(CONCURRENT_LABS_ID, n_labs=4, n_experiments=6)
    _, info = env.reset(seed=0)
    via_unwrapped = env.unwrapped.action_masks()
    via_wrapper = env.get_wrapper_attr("action_masks")()
    np.testing.assert_array_equal(via_unwrapped, [True] * 5)
    np.testing.assert_array_equal(via_wrapper, via_unwrapped)
    np.testing.assert_array_equal(info["action_mask"], via_unwrapped)
    _, _, _, _, info = env.step(3)
    expected = [True, True, False, False, False]
    np.testing.assert_array_equal(env.unwrapped.action_masks(), expected)
    np.testing.assert_array_equal(env.get_wrapper_attr("action_masks")(), expected)
    np.testing.assert_array_equal(info["action_mask"], expected)
    env.close()


def test_action_masks_returns_independent_copy():
    env = ConcurrentLabsEnv(n_labs=3)
    env.reset(seed=0)
    m = env.action_masks()
    m[:] = False
    assert env.action_masks().tolist() == [True] * 4
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [True] * 4


def test_sb3_contrib_get_action_masks_on_vec_env():
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda: gym.make(CONCURRENT_LABS_ID, flatten=True, n_labs=3, n_experiments=4)] * 2)
    vec.seed(0)
    vec.reset()
    masks = get_action_masks(vec)
    assert masks.shape == (2, 4)
    assert masks.tolist() == [[True] * 4] * 2
    vec.step(np.array([3, 1]))
    masks = get_action_masks(vec)
    for i, e in enumerate(vec.envs):
        np.testing.assert_array_equal(masks[i], e.unwrapped.action_masks())
    assert masks[0].tolist() == [True, False, False, False]
    assert masks[1].tolist() == [True, True, True, False]
    vec.close()


@pytest.mark.slow
def test_maskable_ppo_learns_without_error():
    from sb3_contrib import MaskablePPO

    env = gym.make(CONCURRENT_LABS_ID, flatten=True)
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu", verbose=0)
    model.learn(128)
    assert model.num_timesteps >= 128
    obs, info = env.reset(seed=0)
    for _ in range(20):
        action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=True)
        assert info["action_mask"][int(action)]
        obs, _, done, _, info = env.step(action)
        if done:
            break
    env.close()


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def test_render_ansi():
    env = ConcurrentLabsEnv(render_mode="ansi", n_labs=4, n_experiments=6)
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 4 + 2
    assert sum("free" in ln for ln in lines) == 4
    env.step(3)
    lines = env.render().rstrip("\n").split("\n")
    assert len(lines) == 6
    assert sum(ln.startswith("lab ") for ln in lines) == 4
    assert sum("free" in ln for ln in lines) == 1
    assert "started 3/6" in lines[0]
    env.close()


def test_render_rgb_array():
    env = ConcurrentLabsEnv(render_mode="rgb_array")
    _, info = env.reset(seed=0)
    frames = []
    done, steps = False, 0
    while not done:
        _, _, done, _, info = env.step(keep_busy(4)(info))
        steps += 1
        if steps == 15:
            frames.append(env.render())
    frames.append(env.render())
    for img in frames:
        assert isinstance(img, np.ndarray)
        assert img.dtype == np.uint8
        assert img.ndim == 3 and img.shape[2] == 3
        assert img.shape[0] > 50 and img.shape[1] > 50
        assert img.std() > 0  # not a blank canvas
    assert frames[0].shape == frames[1].shape
    assert not np.array_equal(frames[0], frames[1])
    env.close()


def test_render_without_mode_warns_and_returns_none():
    env = ConcurrentLabsEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_log_records_are_experiment_records():
    env = ConcurrentLabsEnv(horizon=2.0)
    ep = run_episode(env, all_busy, seed=3)
    fin = ep.final
    assert len(fin["log"]) > 0 and len(fin["unfinished"]) > 0
    for rec in (*fin["log"], *fin["unfinished"]):
        assert isinstance(rec, ExperimentRecord)
        assert isinstance(rec, labsched.ExperimentRecord)
    assert fin["log"] == env.execution_log()
    with pytest.raises(AttributeError):
        fin["log"][0].prior = 5  # type: ignore[misc]
