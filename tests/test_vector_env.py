"""The native vector environment: identical to the single env, Gymnasium/SB3 conventions, errors."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import labsched
from labsched import LabSpec
from labsched.envs import (
    Deterministic,
    Discrete,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    TruncatedNormal,
    Uniform,
)
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

ID = labsched.CONCURRENT_LABS_ID

DURATIONS = [
    TruncatedNormal(),
    LogNormal(),
    Gamma(),
    Uniform(),
    Exponential(),
    Deterministic(1.0),
    Discrete(),
    Discrete(values=(0.3, 0.7), probs=(0.5, 0.5)),
    Mixture(),
]


def _assert_same(a, b, where: str) -> None:
    """Exact equality of observations / info values (dicts, arrays, object arrays)."""
    if isinstance(a, dict):
        assert set(a) == set(b), (where, sorted(a), sorted(b))
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.shape == np.shape(b), (where, a.shape, np.shape(b))
        assert np.array_equal(a, b), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _assert_same_info(ref: dict, got: dict, where: str) -> None:
    """Every key of the reference (sync) info is in ours with the same mask and masked values."""
    for key in ref:
        if key.startswith("_"):
            continue
        assert key in got, (where, key)
        mask = ref[f"_{key}"]
        assert np.array_equal(mask, got[f"_{key}"]), (where, key, mask, got[f"_{key}"])
        if isinstance(ref[key], dict):
            _assert_same_info(ref[key], got[key], f"{where}.{key}")
            continue
        for i in np.flatnonzero(mask):
            _assert_same(ref[key][i], got[key][i], f"{where}.{key}[{i}]")
    # ours has no extra keys with entries set
    for key in got:
        if not key.startswith("_") and key not in ref:
            assert not got[f"_{key}"].any(), (where, key)


def _run_pair(spec: LabSpec, n_envs: int, steps: int, seed: int, **kwargs) -> int:
    """Step the native and the sync vector env side by side with the same random actions."""
    mode = kwargs.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    sync = gym.make_vec(
        ID,
        num_envs=n_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        spec=spec,
        **{k: v for k, v in kwargs.items() if k != "autoreset_mode"},
    )
    native = gym.make_vec(ID, num_envs=n_envs, vectorization_mode="vector_entry_point", spec=spec, **kwargs)
    assert isinstance(native.unwrapped, ConcurrentLabsVectorEnv)
    rng = np.random.default_rng(seed)
    o1, i1 = sync.reset(seed=seed)
    o2, i2 = native.reset(seed=seed)
    _assert_same(o1, o2, "reset obs")
    _assert_same_info(i1, i2, "reset info")
    raise_mode = kwargs.get("invalid_action") == "raise"
    episodes = 0
    for t in range(steps):
        masks = native.unwrapped.action_masks()
        if raise_mode:
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        else:
            actions = rng.integers(0, spec.n_labs + 1, size=n_envs)
        r1 = sync.step(actions)
        r2 = native.step(actions)
        _assert_same(r1[0], r2[0], f"step {t} obs")
        for j, name in ((1, "reward"), (2, "terminated"), (3, "truncated")):
            assert np.array_equal(r1[j], r2[j]), (t, name, r1[j], r2[j])
        _assert_same_info(r1[4], r2[4], f"step {t} info")
        episodes += int(r1[2].sum())
    sync.close()
    native.close()
    return episodes


@pytest.mark.parametrize("duration", DURATIONS, ids=lambda d: type(d).__name__)
def test_vector_env_equals_single_envs_for_every_duration_model(duration):
    spec = LabSpec(n_experiments=12, n_labs=4, horizon=4.0, duration=duration, epoch=0.1)
    episodes = 0
    for doc, invalid in itertools.product((True, False), ("clip", "raise")):
        episodes += _run_pair(spec, 16, 200, seed=7, decide_on_completion=doc, invalid_action=invalid)
    assert episodes > 200


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("flatten", [False, True])
def test_vector_env_equals_single_envs_in_both_autoreset_modes(mode, flatten):
    spec = LabSpec(n_experiments=10, n_labs=3, horizon=3.0, duration=Discrete(), epoch=0.25)
    episodes = _run_pair(spec, 32, 150, seed=3, autoreset_mode=mode, flatten=flatten, normalize_reward=True)
    assert episodes > 300


def test_paper_setting_many_episodes():
    """Thousands of episodes of the paper's setting, random actions, both decision modes."""
    episodes = 0
    for doc in (True, False):
        episodes += _run_pair(LabSpec(), 64, 330, seed=11, decide_on_completion=doc)
    assert episodes >= 1000


def test_info_cost_is_the_violation_indicator():
    env = ConcurrentLabsVectorEnv(256, LabSpec(horizon=3.0))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(200):
        _, _, term, _, info = env.step(rng.integers(0, 11, size=256))
        assert np.array_equal(info["cost"] > 0, term & (info["completed"] < 20))
        assert set(np.unique(info["cost"])) <= {0.0, 1.0}
        seen += int(term.sum())
    assert seen > 500


def test_action_masks_shape_and_meaning():
    env = ConcurrentLabsVectorEnv(8, LabSpec(n_labs=4, n_experiments=6))
    env.reset(seed=1)
    m = env.action_masks()
    assert m.shape == (8, 5) and m.dtype == bool
    assert m.all()  # 4 free labs, 6 experiments left: every k in 0..4 valid
    env.step(np.full(8, 3))
    m = env.action_masks()
    assert np.array_equal(m.sum(axis=1), 1 + np.minimum(4 - env._batch.running, 6 - 3))


def test_sub_env_passes_gymnasium_checker_and_spaces_are_batched():
    from gymnasium.utils.env_checker import check_env

    env = gym.make_vec(ID, num_envs=4)
    assert isinstance(env.unwrapped, ConcurrentLabsVectorEnv)
    single = gym.make(ID)
    assert env.single_observation_space == single.observation_space
    assert env.single_action_space == single.action_space
    assert env.action_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    check_env(single.unwrapped)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP


def test_regret_mode_falls_back_to_sync():
    env = gym.make_vec(ID, num_envs=2, reward="regret", objective="branin", n_experiments=6, n_labs=2)
    assert isinstance(env.unwrapped, gym.vector.SyncVectorEnv)
    env.reset(seed=0)
    env.close()


def test_forced_durations_and_seed_lists():
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=10.0)
    env = ConcurrentLabsVectorEnv(2, spec)
    d = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    env.reset(options={"durations": d})
    total = np.zeros(2)
    ended = np.zeros(2, dtype=bool)
    for _ in range(50):
        _, r, term, _, _ = env.step(np.array([2, 2]))
        total += np.where(ended, 0.0, r)
        ended |= term
        if ended.all():
            break
    assert np.array_equal(total, [0 + 0 + 2 + 2, 0 + 0 + 2 + 2])
    o1, _ = env.reset(seed=[5, None])
    single = labsched.ConcurrentLabsEnv(spec)
    o2, _ = single.reset(seed=5)
    assert all(np.array_equal(o1[k][0], o2[k]) for k in o2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"num_envs": 0}, ValueError, "num_envs"),
        ({"num_envs": -3}, ValueError, "num_envs"),
        ({"num_envs": 2.5}, TypeError, "num_envs"),
        ({"num_envs": 2, "flatten": "false"}, TypeError, "flatten"),
        ({"num_envs": 2, "autoreset_mode": "sometimes"}, ValueError, "autoreset_mode"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        ConcurrentLabsVectorEnv(**kwargs)


def test_bad_actions_and_options():
    env = ConcurrentLabsVectorEnv(3, LabSpec(n_labs=4))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, dtype=int))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"\[0, n_labs=4\]"):
        env.step(np.array([0, 5, 1]))
    with pytest.raises(ValueError, match=r"\[0, n_labs=4\]"):
        env.step(np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.5, 1, 1]))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"duration": 1})
    with pytest.raises(TypeError, match="options"):
        env.reset(options=[1])
    strict = ConcurrentLabsVectorEnv(2, LabSpec(n_labs=4, n_experiments=3), invalid_action="raise")
    strict.reset(seed=0)
    before = strict._batch.started.copy()
    with pytest.raises(ValueError, match="at most 3"):
        strict.step(np.array([1, 4]))
    assert np.array_equal(strict._batch.started, before)  # nothing changed


#: Failing and heterogeneous specs (issue 14): every kind of per-lab setting, alone and together.
EXTENDED_SPECS = [
    LabSpec(n_experiments=12, n_labs=4, horizon=4.0, failure_prob=0.3),
    LabSpec(
        n_experiments=12,
        n_labs=4,
        horizon=4.0,
        duration=Gamma(),
        failure_prob=[0.0, 0.5, 1.0, 0.2],
        lab_speeds=[0.5, 2.0, 1.0, 2.0],
    ),
    LabSpec(
        n_experiments=12,
        n_labs=4,
        horizon=4.0,
        duration=Gamma(),
        lab_durations=[Gamma(), Deterministic(0.7), Discrete(), LogNormal()],
    ),
    LabSpec(
        n_experiments=10,
        n_labs=3,
        horizon=3.0,
        duration=Discrete(),
        epoch=0.25,
        lab_durations=[Discrete(), Uniform(), TruncatedNormal()],
        lab_speeds=[1.0, 0.5, 3.0],
        failure_prob=0.25,
    ),
]


@pytest.mark.parametrize("spec", EXTENDED_SPECS, ids=["fail", "fail-speeds", "laws", "all"])
def test_vector_env_equals_single_envs_with_failures_and_heterogeneous_labs(spec):
    episodes = 0
    for doc, invalid in itertools.product((True, False), ("clip", "raise")):
        episodes += _run_pair(spec, 16, 150, seed=5, decide_on_completion=doc, invalid_action=invalid)
    for mode, flatten in itertools.product((AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP), (False, True)):
        episodes += _run_pair(spec, 8, 100, seed=9, autoreset_mode=mode, flatten=flatten)
    assert episodes > 150


@pytest.mark.parametrize("spec", EXTENDED_SPECS, ids=["fail", "fail-speeds", "laws", "all"])
def test_vector_env_without_episode_log_steps_identically(spec):
    """The dense start path (no per-experiment records) follows the same rules."""
    a = ConcurrentLabsVectorEnv(32, spec, episode_log=True)
    b = ConcurrentLabsVectorEnv(32, spec, episode_log=False)
    oa, _ = a.reset(seed=4)
    ob, _ = b.reset(seed=4)
    rng = np.random.default_rng(4)
    ended = 0
    for t in range(200):
        _assert_same(oa, ob, f"step {t} obs")
        acts = rng.integers(0, spec.n_labs + 1, size=32)
        oa, ra, ta, _, ia = a.step(acts)
        ob, rb, tb, _, ib = b.step(acts)
        assert np.array_equal(ra, rb) and np.array_equal(ta, tb), t
        for key in ("cpe", "completed", "failed", "time", "cost", "action_mask"):
            if key in ia:
                assert np.array_equal(ia[key], ib[key]), (t, key)
        ended += int(ta.sum())
    assert ended > 100
