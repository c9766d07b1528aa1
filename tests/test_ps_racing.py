"""Policy switching's racing of candidates (``race_above``, ``race_first``, ``race_z``)."""

from __future__ import annotations

import math

import pytest

from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec

WIDE = LabSpec(n_experiments=60, n_labs=20, horizon=5.0)


def _histories(spec: LabSpec, episodes: int, **kwargs: object) -> tuple[list, list[float]]:
    """Every evaluated decision (time, labels, estimates, chosen) and each episode's CPE."""
    decisions, cpes = [], []
    for ep in range(episodes):
        env = ConcurrentLabsEnv(spec)
        policy = PolicySwitching(spec, seed=ep, keep_history=True, **kwargs)
        obs, info = env.reset(seed=500 + ep)
        done = False
        while not done:
            action, _ = policy.predict(obs)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        decisions += [(d.time, d.labels, d.estimates, d.chosen) for d in policy.history()]
        cpes.append(info["cpe"])
    return decisions, cpes


def test_racing_that_drops_nothing_is_exactly_plain_ps() -> None:
    # race_z = inf keeps every candidate: the two-pass simulation must give the one-pass values.
    plain, cpe_plain = _histories(WIDE, 2, race_above=None)
    raced, cpe_raced = _histories(WIDE, 2, race_above=1, race_z=math.inf)
    assert len(plain) > 10
    assert raced == plain
    assert cpe_raced == cpe_plain


def test_racing_keeps_survivors_estimates_and_almost_every_choice() -> None:
    plain, _ = _histories(WIDE, 3, race_above=None)
    raced, _ = _histories(WIDE, 3, race_above=1)
    n = same = dropped = 0
    for (t0, lab0, est0, ch0), (t1, lab1, est1, ch1) in zip(plain, raced, strict=False):
        if t0 != t1 or lab0 != lab1:
            break  # the episodes diverged after a different choice
        n += 1
        same += ch0 == ch1
        for a, b in zip(est0, est1, strict=True):
            if b == -math.inf:
                dropped += 1
            elif not math.isnan(a):  # nan: a decision with one candidate, not simulated
                assert b == a  # a survivor's estimate is the plain estimate, bit for bit
        assert len(est1) == 1 or est1[lab1.index(ch1)] == max(est1)
    assert n >= 10
    assert dropped > n  # racing drops candidates (more than one per decision on average)
    assert same >= 0.9 * n


def test_paper_setting_never_races() -> None:
    # At most 10 labs: at most 12 candidates x 200 simulations <= 3,000 pairs.
    spec = LabSpec(horizon=5.0)
    plain, cpe_plain = _histories(spec, 2, race_above=None)
    default, cpe_default = _histories(spec, 2)
    assert default == plain
    assert cpe_default == cpe_plain
    assert all(-math.inf not in est for _, _, est, _ in default)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"race_above": 0}, "race_above"),
        ({"race_above": 2.5}, "race_above"),
        ({"race_first": 1}, "race_first"),
        ({"race_z": -1.0}, "race_z"),
        ({"race_z": "x"}, "race_z"),
    ],
)
def test_bad_racing_options(kwargs: dict, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        PolicySwitching(WIDE, **kwargs)
