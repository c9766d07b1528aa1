"""The observation features (agents/features.py): the batched form equals the one-row form, and
heterogeneous labs (a ``lab_duration`` block in the observation) are read, not misparsed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labsched import LabSpec
from labsched.agents.features import FEATURE_NAMES, LabFeatures, flat_observation
from labsched.envs.labs.durations import Gamma, TruncatedNormal
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=3.0)
HETERO = LabSpec(n_experiments=12, n_labs=4, horizon=4.0, lab_speeds=[0.5, 2.0, 1.0, 2.0])


def _observations(spec: LabSpec, n_envs: int = 64, steps: int = 60, seed: int = 0, flatten: bool = True):
    """Observations of random episodes (waiting 60% of the time, else a random valid start)."""
    env = ConcurrentLabsVectorEnv(n_envs, spec, flatten=flatten, episode_log=False)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs]
    for _ in range(steps):
        k = rng.integers(0, spec.n_labs + 1, n_envs)
        k = np.minimum(k, env.action_masks().sum(axis=1) - 1)
        obs, *_ = env.step(np.where(rng.random(n_envs) < 0.6, 0, k))
        out.append(obs)
    if flatten:
        return np.concatenate(out)
    return {key: np.concatenate([o[key] for o in out]) for key in out[0]}


@pytest.mark.parametrize(
    "spec",
    [LabSpec(), SMALL, LabSpec(n_experiments=8, n_labs=4, horizon=3.0, duration=Gamma())],
    ids=["paper", "small", "gamma"],
)
def test_batch_equals_one_row_at_a_time(spec):
    """The cache-chunked batch and the scalar one-row form give the same float32 features."""
    x = _observations(spec)
    feats = LabFeatures(spec)
    batch = feats.batch(x)
    rows = np.concatenate([feats(x[i]) for i in range(0, len(x), 5)])
    np.testing.assert_array_equal(batch[::5], rows)
    # Real states, not constants: the probabilities take many values and are ordered.
    assert len(np.unique(batch[:, 3])) > 50
    assert np.all(batch[:, 4] <= batch[:, 3]) and np.all(batch >= 0.0) and np.all(batch[:, 3:] <= 1.0)


def test_paper_values_at_the_start_and_when_done():
    feats = LabFeatures.for_spec(LabSpec())
    x = _observations(LabSpec(), n_envs=4, steps=0)  # time 0, nothing started
    free, t_means, waves, p_now, p_wait = feats(x)[0]
    assert (free, waves) == (1.0, 2.0)
    assert t_means == pytest.approx(5.0 / LabSpec().duration.mean)
    assert p_now > 0.99 and p_wait <= p_now
    done = x[:1].copy()
    done[0, 10] = 1.0  # completed = n: both probabilities are 1
    assert feats(done)[0, 3:].tolist() == [1.0, 1.0]


def test_heterogeneous_layout_is_read_with_each_labs_law():
    """A 3 l + 4 observation: the lab_duration block is skipped, the tail read where it is."""
    x = _observations(HETERO)
    assert x.shape[1] == 3 * HETERO.n_labs + 4
    feats = LabFeatures.for_spec(HETERO)
    out = feats.batch(x)
    assert out.shape == (len(x), len(FEATURE_NAMES))
    low, high = feats.observation_bounds()
    assert np.all(out >= low) and np.all(out <= high)
    nl, n = HETERO.n_labs, HETERO.n_experiments
    busy = (x[:, :nl] > 0.5).sum(axis=1)
    np.testing.assert_allclose(out[:, 0], (nl - busy) / nl, rtol=1e-6)
    started = np.rint(x[:, -1] * n)
    np.testing.assert_allclose(out[:, 2], (n - started + busy) / nl, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], x[:, -2] * HETERO.horizon / HETERO.duration.mean, rtol=1e-6)
    assert np.all(out[:, 4] <= out[:, 3])
    np.testing.assert_array_equal(np.concatenate([feats(x[i]) for i in range(0, len(x), 7)]), out[::7])
    # The Dict form flattens to the same layout.
    d = _observations(HETERO, flatten=False)
    np.testing.assert_array_equal(flat_observation(d, nl), x)


def test_labs_twice_as_fast_equal_a_law_twice_as_short():
    """Every lab at speed 2 (heterogeneous layout) against the homogeneous spec whose law is the
    same law halved: the same physical state gives the same probabilities (up to the Monte-Carlo
    tables' rounding), and time left in units of each spec's E[D]."""
    base = TruncatedNormal()
    fast = LabSpec(n_experiments=12, n_labs=4, horizon=3.0, lab_speeds=[2.0] * 4)
    half = LabSpec(
        n_experiments=12, n_labs=4, horizon=3.0, duration=TruncatedNormal(mu=0.5, sigma=base.sigma / 2)
    )
    assert fast.heterogeneous and not half.heterogeneous
    x = _observations(half)  # elapsed in units of E[D] = half.duration.mean
    nl, ratio = half.n_labs, half.duration.mean / fast.duration.mean
    y = np.concatenate(
        [x[:, : nl + 1], x[:, nl + 1 : 2 * nl + 1] * ratio, np.full((len(x), nl), ratio), x[:, 2 * nl + 1 :]],
        axis=1,
    ).astype(np.float32)
    a, b = LabFeatures(half).batch(x), LabFeatures(fast).batch(y)
    np.testing.assert_array_equal(a[:, [0, 2]], b[:, [0, 2]])
    np.testing.assert_allclose(b[:, 1], a[:, 1] * ratio, rtol=1e-5)
    np.testing.assert_allclose(a[:, 3:], b[:, 3:], atol=2e-3)
    assert not math.isclose(float(a[:, 3].min()), float(a[:, 3].max()))


@pytest.mark.parametrize(("spec", "width"), [(SMALL, 3 * 4 + 4), (HETERO, 2 * 4 + 4)])
def test_a_flat_observation_of_another_layout_is_refused(spec, width):
    with pytest.raises(ValueError, match=r"n_labs \+ 4") as info:
        LabFeatures.for_spec(spec).batch(np.zeros((2, width), dtype=np.float32))
    assert ("lab_duration" in str(info.value)) == spec.heterogeneous
