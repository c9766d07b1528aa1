"""Shared helpers for the environment tests (policies and episode runners)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings

Policy = Callable[[dict[str, Any]], int]

#: The property tests' Hypothesis settings. database=None: no example database is written outside
#: tests/; derandomize: reproducible runs.
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def max_valid(info: dict[str, Any]) -> int:
    """Largest valid action according to ``info["action_mask"]``."""
    return int(np.flatnonzero(info["action_mask"]).max())


def keep_busy(k: int) -> Policy:
    """Keep ``k`` labs busy: start ``k - running`` experiments whenever possible."""

    def policy(info: dict[str, Any]) -> int:
        return max(0, min(k - info["running"], max_valid(info)))

    return policy


def all_busy(info: dict[str, Any]) -> int:
    """OnFCP: start as many experiments as possible."""
    return max_valid(info)


def sequential(info: dict[str, Any]) -> int:
    """One experiment at a time."""
    return 1 if info["running"] == 0 and max_valid(info) >= 1 else 0


@dataclass
class Episode:
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    obs: list[Any] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.infos[-1]

    @property
    def ret(self) -> float:
        return float(sum(self.rewards))


def run_episode(
    env: Any,
    policy: Policy,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_steps: int = 100_000,
) -> Episode:
    """Run one episode of ``policy`` (a function of the latest info) and record everything."""
    obs, info = env.reset(seed=seed, options=options)
    ep = Episode(obs=[obs], infos=[info])
    for _ in range(max_steps):
        a = policy(info)
        obs, r, terminated, truncated, info = env.step(a)
        assert truncated is False
        ep.actions.append(a)
        ep.rewards.append(r)
        ep.infos.append(info)
        ep.obs.append(obs)
        if terminated:
            return ep
    raise AssertionError("episode did not terminate")


def assert_same_trajectory(
    a: list[tuple[Any, float, dict[str, Any]]], b: list[tuple[Any, float, dict[str, Any]]]
) -> None:
    """Two trajectories of ``(observation, reward, info)`` are identical: same length, rewards,
    observations (arrays, or dicts of arrays with the same keys) and info dicts."""
    assert len(a) == len(b)
    for (oa, ra, ia), (ob, rb, ib) in zip(a, b, strict=True):
        assert ra == rb
        if isinstance(oa, dict):
            assert oa.keys() == ob.keys()
            for k in oa:
                np.testing.assert_array_equal(oa[k], ob[k])
        else:
            np.testing.assert_array_equal(oa, ob)
        assert ia.keys() == ib.keys()
        for k in ia:
            if isinstance(ia[k], np.ndarray):
                np.testing.assert_array_equal(ia[k], ib[k])
            else:
                assert ia[k] == ib[k], k
