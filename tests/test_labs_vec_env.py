"""The SB3 adapter of the native vector env: SB3 semantics, masks, features, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from labsched import LabSpec
from labsched.agents.envs import build_env
from labsched.agents.vec_env import LabsVecEnv
from labsched.envs import Discrete

SMALL = LabSpec(n_experiments=8, n_labs=3, horizon=3.0, epoch=0.25)


def _dummy(spec: LabSpec, n: int, seed: int, features: bool) -> DummyVecEnv:
    return make_vec_env(
        build_env,
        n_envs=n,
        seed=seed,
        env_kwargs={"spec": spec, "features": features},
        vec_env_cls=DummyVecEnv,
    )


@pytest.mark.parametrize("features", [False, True])
@pytest.mark.parametrize("spec", [SMALL, LabSpec(duration=Discrete())], ids=["small", "paper-discrete"])
def test_adapter_matches_sb3_dummy_vec_env_of_single_envs(spec, features):
    """Same seeds and actions: the same observations, rewards, dones and terminal observations."""
    n = 8
    ours = LabsVecEnv(n, spec, features=features, seed=5)
    ref = _dummy(spec, n, seed=5, features=features)
    o1, o2 = ours.reset(), ref.reset()
    assert np.array_equal(o1, o2)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(300):
        masks = ours.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = ref.step(actions)
        assert np.array_equal(o1, o2)
        assert np.allclose(r1, r2, rtol=0, atol=1e-7)  # float32 (ours) vs float64 (SB3's buffer)
        assert np.array_equal(d1, d2)
        for e in np.flatnonzero(d1):
            assert np.array_equal(i1[e]["terminal_observation"], i2[e]["terminal_observation"])
            assert i1[e]["TimeLimit.truncated"] is False
            assert i1[e]["cost"] == float(i1[e]["completed"] < spec.n_experiments)
            ended += 1
        assert all(i == {} for e, i in enumerate(i1) if not d1[e])
    assert ended > 20


def test_episode_statistics_and_masks():
    env = LabsVecEnv(16, SMALL, normalize_reward=False, seed=0)
    env.reset()
    returns = np.zeros(16)
    lengths = np.zeros(16, dtype=int)
    seen = 0
    rng = np.random.default_rng(1)
    for _ in range(200):
        masks = np.stack(env.env_method("action_masks"))
        assert masks.shape == (16, 4) and masks.dtype == bool
        assert np.array_equal(masks, env.action_masks())
        a = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        _, r, d, infos = env.step(a)
        returns += r
        lengths += 1
        for e in np.flatnonzero(d):
            ep = infos[e]["episode"]
            assert ep["r"] == pytest.approx(returns[e]) and ep["l"] == lengths[e]
            assert ep["r"] == infos[e]["cpe"]  # raw CPE reward: the return is the CPE
            returns[e], lengths[e] = 0.0, 0
            seen += 1
    assert seen > 50
    assert env.has_attr("action_masks") and env.get_attr("lab_spec")[0] == SMALL
    with pytest.raises(AttributeError):
        env.env_method("render")


def test_maskable_ppo_trains_on_the_native_env_and_beats_random():
    from sb3_contrib import MaskablePPO

    from labsched.baselines import make
    from labsched.envs._lib.rollout import play_episode
    from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv

    spec = LabSpec(n_experiments=8, n_labs=4, horizon=3.0, epoch=0.25)
    venv = VecNormalize(LabsVecEnv(32, spec, seed=0), norm_reward=False, gamma=1.0)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=256,
        n_epochs=5,
        gamma=1.0,
        learning_rate=1e-3,
        seed=0,
        device="cpu",
    )
    model.learn(12_000)
    venv.training = False

    class Agent:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            o = venv.normalize_obs(np.asarray(obs, dtype=np.float32)[None, :])
            a, _ = model.predict(o, deterministic=True, action_masks=env.action_masks()[None, :])
            return int(a[0]), None

    env = ConcurrentLabsEnv(spec, flatten=True)
    random = make("random", spec, seed=0)
    seeds = range(100, 300)
    learned = np.mean([play_episode(Agent(), env, s).info["cpe"] for s in seeds])
    base = np.mean([play_episode(random, env, s).info["cpe"] for s in seeds])
    assert learned > base + 1.0, (learned, base)  # random 9.99, PS 14.3 on these episodes


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"num_envs": 0}, ValueError),
        ({"num_envs": 1.5}, TypeError),
        ({"num_envs": 2, "features": "yes"}, TypeError),
    ],
)
def test_bad_arguments(kwargs, exc):
    n = kwargs.pop("num_envs")
    with pytest.raises(exc):
        LabsVecEnv(n, SMALL, **kwargs)
