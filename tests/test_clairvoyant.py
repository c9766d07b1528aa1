"""The clairvoyant reference: exact on small problems (checked by brute force through the env),
a proven bound otherwise, and never below any baseline, episode by episode."""

import copy

import numpy as np
import pytest

from labsched import baselines
from labsched.baselines.labs.clairvoyant import Clairvoyant, clairvoyant_bound, clairvoyant_cpe
from labsched.envs._lib.rollout import play_episode
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec

TINY = [
    LabSpec(n_experiments=3, n_labs=2, horizon=2.5, epoch=0.5),
    LabSpec(n_experiments=4, n_labs=2, horizon=3.0, epoch=0.5),
    LabSpec(n_experiments=5, n_labs=3, horizon=2.5, epoch=0.5),
]
SMALL = [
    LabSpec(n_experiments=6, n_labs=3, horizon=3.0, epoch=0.25),
    LabSpec(n_experiments=8, n_labs=3, horizon=3.0, epoch=0.5),
]
LARGE = [LabSpec(horizon=4.0), LabSpec(), LabSpec(n_experiments=12, n_labs=4, horizon=4.0)]
SKIP = {"clairvoyant", "ps-calibrated", "sequential"}  # itself; PS (calibrated or not) is covered by "ps"


def _brute_force(env):
    """Best return over every action sequence, by copying the env at each decision."""
    best = 0.0
    mask = env.action_masks()
    for k in np.flatnonzero(mask):
        child = copy.deepcopy(env)
        _, reward, done, _, _ = child.step(int(k))
        best = max(best, reward + (0.0 if done else _brute_force(child)))
    return best


@pytest.mark.parametrize("spec", TINY)
@pytest.mark.parametrize("completion", [True, False])
def test_exact_value_matches_brute_force(spec, completion):
    env = ConcurrentLabsEnv(spec, decide_on_completion=completion)
    for seed in range(4):
        env.reset(seed=seed)
        d = np.array(env._durations)
        res = clairvoyant_cpe(spec, d, decide_on_completion=completion)
        assert res.exact
        assert res.value == _brute_force(env)
        assert clairvoyant_bound(spec, d) >= res.value


@pytest.mark.parametrize("spec", TINY + SMALL)
def test_policy_replays_the_optimum_and_the_bound_holds(spec):
    env = ConcurrentLabsEnv(spec)
    policy = baselines.make("clairvoyant", spec, env=env)
    assert isinstance(policy, Clairvoyant) and Clairvoyant.clairvoyant is True
    for seed in range(5):
        ep = play_episode(policy, env, seed=seed)
        assert policy.result is not None and policy.result.exact
        assert ep.total_reward == policy.result.value
        assert clairvoyant_bound(spec, env._durations) >= policy.result.value


def _baseline_cpes(spec, seeds):
    names = [n for n in sorted(baselines.BASELINES) if n not in SKIP]
    env = ConcurrentLabsEnv(spec)
    out = {}
    for name in names:
        opts = {"n_simulations": 25} if name == "ps" else {}
        policy = baselines.make(name, spec, seed=0, **opts)
        out[name] = np.array([play_episode(policy, env, seed=s).total_reward for s in seeds])
    return out


@pytest.mark.parametrize("spec", SMALL[:1] + [pytest.param(s, marks=pytest.mark.slow) for s in LARGE])
def test_clairvoyant_is_above_every_baseline_episode_by_episode(spec):
    seeds = range(6)
    env = ConcurrentLabsEnv(spec)
    values = []
    for s in seeds:
        env.reset(seed=s)
        values.append(clairvoyant_cpe(spec, env._durations, max_states=20_000).value)
    values = np.array(values)
    assert np.all(values <= spec.max_cpe)
    for name, cpe in _baseline_cpes(spec, seeds).items():
        assert np.all(values >= cpe), (name, values, cpe)


def test_needs_durations_and_validates():
    spec = TINY[0]
    policy = baselines.make("clairvoyant", spec)
    env = ConcurrentLabsEnv(spec)
    with pytest.raises(RuntimeError, match="durations"):
        play_episode(policy, env, seed=0)
    with pytest.raises(ValueError, match="durations"):
        clairvoyant_cpe(spec, [1.0, 2.0])
    with pytest.raises(ValueError, match="durations"):
        clairvoyant_cpe(spec, [1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="max_states"):
        clairvoyant_cpe(spec, [1.0, 1.0, 1.0], max_states=0)
    big = LabSpec()
    d = np.ones(big.n_experiments)
    res = clairvoyant_cpe(big, d, max_states=1000)
    assert not res.exact and res.value == clairvoyant_bound(big, d) and res.actions == ()
    with pytest.raises(RuntimeError, match="max_states"):
        Clairvoyant(big, max_states=1000).set_durations(d)
