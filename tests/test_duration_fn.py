"""Input-dependent durations (issue 14): ``duration_fn`` in regret and information modes."""

from __future__ import annotations

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest

import labsched  # noqa: F401  (registers the ids)
from labsched import ConcurrentLabsEnv, LabSpec
from labsched.envs.bo.duration_fn import COST_SURFACES, CostSurface, duration_scales, make_duration_fn
from labsched.envs.labs.durations import Deterministic

BRANIN_BOUNDS = ((-5.0, 10.0), (0.0, 15.0))


def _run(env, seed=0, action=3):
    env.reset(seed=seed)
    while True:
        _, _, done, _, info = env.step(action)
        if done:
            return info


@pytest.mark.parametrize("reward", ["regret", "information"])
def test_deterministic_durations_scaled_exactly(reward):
    """Constant base duration 2 on labs of speeds 1 and 2: experiment ``i`` on lab ``c`` takes
    exactly ``2 / speed_c * duration_fn(x_i)``."""
    spec = LabSpec(
        n_experiments=6, n_labs=2, horizon=50.0, duration=Deterministic(2.0), lab_speeds=[1.0, 2.0]
    )
    env = ConcurrentLabsEnv(spec, reward=reward, objective="branin", duration_fn="linear")
    info = _run(env, action=2)
    surface = CostSurface("linear", BRANIN_BOUNDS)
    assert len(info["log"]) == 6
    for rec in info["log"]:
        x = env._bo.input_of(rec.index)
        expected = 2.0 / spec.lab_speed_factors[rec.lab] * surface(x)
        assert rec.end - rec.start == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # the linear surface itself: 0.5 + mean of the unit coordinates
    x = np.array([2.5, 3.0])
    assert surface(x) == pytest.approx(0.5 + (0.5 + 0.2) / 2)


def test_callable_and_exact_completion_times():
    """One lab, sequential starts, duration 1 times 1 + x_0**2 (cosines' box is [0, 1]^2): each
    experiment starts when the previous ends, so its start time is the running sum."""
    spec = LabSpec(n_experiments=4, n_labs=1, horizon=50.0, duration=Deterministic(1.0), epoch=0.5)
    env = ConcurrentLabsEnv(spec, reward="regret", objective="cosines", duration_fn=lambda x: 1.0 + x[0] ** 2)
    info = _run(env, action=1)
    t = 0.0
    for rec in sorted(info["log"], key=lambda r: r.index):
        x = env._bo.input_of(rec.index)
        # starts at the first decision point at or after the previous end (a completion)
        assert rec.start == pytest.approx(t, abs=1e-12)
        assert rec.end == pytest.approx(t + 1.0 + x[0] ** 2, rel=1e-12)
        t = rec.end


def test_constant_surface_is_the_unscaled_episode():
    kw = {"reward": "regret", "objective": "branin", "n_experiments": 8, "n_labs": 3}
    a = _run(ConcurrentLabsEnv(**kw), seed=4)
    b = _run(ConcurrentLabsEnv(duration_fn="constant", **kw), seed=4)
    assert a["log"] == b["log"] and np.array_equal(a["X"], b["X"]) and a["regret"] == b["regret"]


def test_builtin_surfaces_values_and_pickle():
    unit = ((0.0, 1.0), (0.0, 1.0))
    assert CostSurface("linear", unit)([0, 0]) == 0.5 and CostSurface("linear", unit)([1, 1]) == 1.5
    assert CostSurface("bowl", unit)([0.5, 0.5]) == 0.5 and CostSurface("bowl", unit)([1, 0]) == 2.0
    assert CostSurface("ridge", unit)([0.25, 0.9]) == pytest.approx(1.5)
    grid = (np.arange(50) + 0.5) / 50
    pts = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    for name in COST_SURFACES:
        surface = CostSurface(name, unit)
        values = np.array([surface(p) for p in pts])
        assert values.min() > 0 and values.mean() == pytest.approx(1.0, abs=1e-3)  # mean 1 over the box
        clone = pickle.loads(pickle.dumps(surface))
        assert clone([0.3, 0.7]) == surface([0.3, 0.7])


def test_vector_env_uses_single_envs_with_duration_fn():
    vec = gym.make_vec(
        "labsched/ConcurrentLabs-v0", num_envs=2, reward="regret", objective="branin", duration_fn="bowl"
    )
    assert type(vec).__name__ == "SyncVectorEnv"
    vec.reset(seed=0)
    vec.step(np.array([2, 2]))


@pytest.mark.parametrize(
    ("fn", "error", "pattern"),
    [
        (lambda x: 0.0, ValueError, "duration_fn must return a finite scale > 0"),
        (lambda x: -1.0, ValueError, "duration_fn"),
        (lambda x: math.nan, ValueError, "duration_fn"),
        (lambda x: math.inf, ValueError, "duration_fn"),
        (lambda x: np.array([1.0, 2.0]), TypeError, "duration_fn must return a real scalar"),
        (lambda x: "1", TypeError, "duration_fn"),
        (lambda x: True, TypeError, "duration_fn"),
    ],
)
def test_bad_outputs_name_duration_fn(fn, error, pattern):
    env = ConcurrentLabsEnv(reward="regret", objective="branin", duration_fn=fn)
    env.reset(seed=0)
    with pytest.raises(error, match=pattern):
        env.step(2)


def test_one_element_array_output_is_accepted():
    assert duration_scales(lambda x: np.array([1.5]), np.zeros((2, 2))) == [1.5, 1.5]


def test_bad_duration_fn_arguments():
    with pytest.raises(TypeError, match="duration_fn must be a callable"):
        ConcurrentLabsEnv(reward="regret", duration_fn=5)
    with pytest.raises(ValueError, match=r"duration_fn: unknown cost surface 'bowel'.*did you mean 'bowl'"):
        ConcurrentLabsEnv(reward="regret", duration_fn="bowel")
    with pytest.raises(ValueError, match=r"duration_fn .*needs an optimisation"):
        ConcurrentLabsEnv(duration_fn="linear")
    assert make_duration_fn(None, BRANIN_BOUNDS) is None
