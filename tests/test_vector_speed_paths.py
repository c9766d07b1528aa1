"""The fast paths of the native vector env (issue 11) follow the reference rules exactly: draws of
several episodes per generator call, the byte-packed ranks of free labs, held resets, and
observations that stay as returned."""

from __future__ import annotations

import numpy as np
import pytest

from labsched import LabSpec
from labsched.envs import Discrete, TruncatedNormal, Uniform
from labsched.envs.labs.engine import LabsBatch
from labsched.envs.labs.lab_columns import episodes_per_draw
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

LAWS = [
    TruncatedNormal(),  # the paper's: rare rejects
    TruncatedNormal(mu=0.5, sigma=1.0, low=0.0),  # a third of the draws rejected
    TruncatedNormal(mu=1.0, sigma=0.5, low=0.3, high=1.6),  # both bounds reject
]


@pytest.mark.parametrize("law", LAWS, ids=["paper", "low-cut", "two-sided"])
@pytest.mark.parametrize(("n", "episodes"), [(20, 8), (3, 5), (1, 8)])
def test_episodes_per_call_equal_successive_samples(law, n, episodes):
    rngs = [np.random.default_rng(s) for s in range(120)]
    table = law.sample_episode_columns(rngs, n, episodes)
    assert table.shape == (episodes, n, 120)
    for j in range(120):
        ref = np.random.default_rng(j)
        for q in range(episodes):
            assert np.array_equal(table[q, :, j], law.sample(ref, n)), (j, q)
        # the generator is left where the successive calls leave it
        assert np.array_equal(rngs[j].standard_normal(4), ref.standard_normal(4)), j


@pytest.mark.parametrize("law", LAWS, ids=["paper", "low-cut", "two-sided"])
def test_sample_columns_equal_one_sample_per_generator(law):
    table = law.sample_columns([np.random.default_rng(s) for s in range(300)], 20)
    assert table.shape == (20, 300)
    for j in range(300):
        assert np.array_equal(table[:, j], law.sample(np.random.default_rng(j), 20)), j


def test_episodes_drawn_per_call_within_the_memory_budget():
    laws = (TruncatedNormal(),)
    assert episodes_per_draw(LabSpec(), laws, 1024) == 8
    # 8 episodes of n = 4000 draws for 16,384 sub-envs would take 4 GiB: one at a time
    assert episodes_per_draw(LabSpec(n_experiments=4000, n_labs=10), laws, 16_384) == 1
    assert episodes_per_draw(LabSpec(failure_prob=0.1), laws, 16) == 1  # failure draws interleave
    assert episodes_per_draw(LabSpec(duration=Uniform()), (Uniform(),), 16) == 1  # not a stream
    assert episodes_per_draw(LabSpec(), (Discrete(), TruncatedNormal()), 16) == 1  # quantile draws


def _random_steps(a: LabsBatch, b: LabsBatch, rng: np.random.Generator, steps: int) -> int:
    """Start random valid numbers of experiments in both batches and advance them; returns the
    number of starts. Ended episodes restart with the same draws in both."""
    starts = 0
    for _ in range(steps):
        ended = np.flatnonzero(a.done)
        if ended.size:
            d = rng.uniform(0.05, 1.5, (a.n, ended.size))
            a.reset_rows(ended, d)
            b.reset_rows(ended, d)
        k = (rng.random(a.n_episodes) * (a.max_valid() + 1)).astype(np.int64)
        a.start(k)
        b.start(k)
        starts += int(k.sum())
        assert np.array_equal(a.advance(), b.advance())
        for name in ("lab_end", "lab_prior", "t", "started", "completed", "running", "cpe", "done"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert np.array_equal(a.elapsed(), b.elapsed())
    return starts


@pytest.mark.parametrize("n_episodes", [13, 1024, 2051], ids=["padded", "accumulate", "row-loop"])
@pytest.mark.parametrize("speeds", [None, [1.0, 2.0, 0.5, 1.5, 3.0]], ids=["equal", "ordered"])
def test_packed_ranks_start_where_the_reference_ranks_do(n_episodes, speeds):
    spec = LabSpec(n_experiments=12, n_labs=5, horizon=3.0, epoch=0.2, lab_speeds=speeds)
    fast = LabsBatch(spec, n_episodes, track_experiments=False)
    ref = LabsBatch(spec, n_episodes, track_experiments=True)
    ref._free = None  # the reference: running counts of bool flags, as for 128 labs or more
    rng = np.random.default_rng(n_episodes)
    d = rng.uniform(0.05, 1.5, (spec.n_experiments, n_episodes))
    fast.reset_rows(slice(None), d)
    ref.reset_rows(slice(None), d)
    assert _random_steps(fast, ref, rng, 40) > n_episodes


def test_a_held_reset_reaches_its_first_decision_point_on_the_next_advance():
    spec = LabSpec(n_experiments=6, n_labs=3, horizon=2.0, epoch=0.5)
    batch = LabsBatch(spec, 4)
    batch.reset_rows(slice(None), np.full((6, 4), 0.7))
    batch.start(np.array([3, 1, 0, 2]))
    batch.advance()
    batch.reset_rows(np.array([0, 2]), np.full((6, 2), 0.3), hold=True)
    reward = batch.advance()
    assert reward[0] == 0.0 and reward[2] == 0.0
    # the held episodes sit at time 0 before grid point 1; the others reach their completions
    assert batch.t.tolist() == [0.0, 0.7, 0.0, 0.7]
    assert batch.next_grid.tolist() == [1, 2, 1, 2]
    assert batch.started.tolist() == [0, 1, 0, 2] and batch.completed.tolist() == [0, 1, 0, 2]
    assert batch.running.tolist() == [0, 0, 0, 0] and not batch.done.any()
    with pytest.raises(ValueError, match="hold=True needs the decision grid"):
        LabsBatch(spec, 2, grid=False).reset_rows(slice(None), np.ones((6, 2)), hold=True)


@pytest.mark.parametrize("flatten", [False, True])
def test_returned_observations_and_infos_are_never_written_afterwards(flatten):
    env = ConcurrentLabsVectorEnv(24, LabSpec(n_experiments=8, n_labs=4, horizon=2.0), flatten=flatten)
    first = env.reset(seed=3)
    rng = np.random.default_rng(3)
    kept = [(first, _snapshot(first))]
    ended = 0
    for _ in range(60):
        masks = env.action_masks()
        out = env.step((rng.random(24) * masks.sum(axis=1)).astype(np.int64))
        ended += int(out[2].sum())
        kept.append((out, _snapshot(out)))
        masks[:] = False  # a caller writing into its mask changes nothing in the env
        assert env.action_masks().any()
    assert ended > 24
    for out, snap in kept:
        assert _same(_snapshot(out), snap)


def _snapshot(value):
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    return value.copy() if isinstance(value, np.ndarray) else value


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) and a.dtype != object:
        return np.array_equal(a, b)
    return True


@pytest.mark.parametrize("flatten", [False, True])
def test_idle_labs_show_positive_zero_elapsed_after_resets(flatten):
    """The single env's idle labs show +0.0 (not -0.0, which compares equal): stale start times
    of a previous episode must not leak a sign into the next one."""
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=2.0)
    env = ConcurrentLabsVectorEnv(32, spec, flatten=flatten, episode_log=False)
    obs, _ = env.reset(seed=11)
    rng = np.random.default_rng(11)
    resets = 0
    for _ in range(120):
        masks = env.action_masks()
        obs, _, terminated, _, _ = env.step((rng.random(32) * masks.sum(axis=1)).astype(np.int64))
        elapsed = obs[:, spec.n_labs + 1 : 2 * spec.n_labs + 1] if flatten else obs["elapsed"]
        assert not np.signbit(elapsed).any()
        resets += int(terminated.sum())
    assert resets > 32
