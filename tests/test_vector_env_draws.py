"""The native vector env draws each sub-env's next episode ahead, in bulk: the streams must stay
the scalar env's through autoresets, unseeded resets and forced-duration resets."""

from __future__ import annotations

import numpy as np
import pytest

from labsched import LabSpec
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

SPEC = LabSpec(n_experiments=6, n_labs=3, horizon=2.5, epoch=0.25)


def _follow(vec, singles, rng, steps):
    """Step ``vec`` (NEXT_STEP autoreset) and the scalar envs with the same random valid actions,
    at least ``steps`` times and then until some sub-env holds draws taken ahead (so that the
    reset that follows has some to keep or drop); every observation, reward and termination must
    be equal."""
    n = vec.num_envs
    pending = np.zeros(n, dtype=bool)  # scalar env i ended last step: the vector env resets it now
    done = 0
    while done < steps or not vec._has_ahead.any():
        done += 1
        masks = vec.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        obs, reward, terminated, _, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:
                o, _ = env.reset()
                r, t = 0.0, False
            else:
                o, r, t, _, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(obs[i], o)
            assert reward[i] == r and terminated[i] == t
        pending = terminated.copy()
    return pending


def _reset_all(vec, singles, pending, **kwargs):
    obs, _ = vec.reset(**kwargs)
    for i, env in enumerate(singles):
        options = kwargs.get("options")
        o, _ = env.reset(options=None if options is None else {"durations": options["durations"][i]})
        np.testing.assert_array_equal(obs[i], o)


@pytest.mark.parametrize("spec", [SPEC, SPEC.replace(lab_speeds=[1.0, 2.0, 0.5])], ids=["equal", "speeds"])
def test_draws_ahead_follow_the_scalar_streams_across_resets(spec):
    n = 5
    vec = ConcurrentLabsVectorEnv(n, spec, flatten=True, episode_log=False)
    singles = [ConcurrentLabsEnv(spec, flatten=True) for _ in range(n)]
    vec.reset(seed=100)
    for i, env in enumerate(singles):
        env.reset(seed=100 + i)
    rng = np.random.default_rng(0)
    pending = _follow(vec, singles, rng, 150)  # many autoresets: draws taken ahead in bulk
    _reset_all(vec, singles, pending)  # unseeded: every stream continues
    pending = _follow(vec, singles, rng, 80)
    forced = np.random.default_rng(1).uniform(0.2, 1.5, (n, spec.n_experiments))
    _reset_all(vec, singles, pending, options={"durations": forced})  # draws nothing
    pending = _follow(vec, singles, rng, 120)
    # A new seed for some sub-envs only: theirs restart, the others continue.
    vec.reset(seed=[7, None, 9, None, None])
    for i, env in enumerate(singles):
        env.reset(seed={0: 7, 2: 9}.get(i))
    _follow(vec, singles, rng, 120)
