"""The batched episode runner of saved agents (agents/vector_rollout.py) gives run_episodes' results."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO

from labsched import LabSpec
from labsched.agents import runner
from labsched.agents.constrained import FeasibilityMaskedAgent
from labsched.agents.envs import build_env
from labsched.agents.loading import LoadedAgent, load_agent
from labsched.agents.runner import RunTask, run_episodes, run_task
from labsched.agents.vector_rollout import run_episodes_batched, vector_env_supports

MODELS = Path(__file__).resolve().parents[1] / "models"
PAPER = LabSpec(n_experiments=20, n_labs=10, horizon=5.0)
SMALL = LabSpec(n_experiments=8, n_labs=3, horizon=3.0)


@pytest.fixture(scope="module")
def shipped() -> LoadedAgent:
    return load_agent(MODELS / "maskable_ppo_h5")


def _untrained(algo: str) -> LoadedAgent:
    """A seeded untrained agent on SMALL whose actions vary (sharpened output layer)."""
    cls = {"maskable_ppo": MaskablePPO, "ppo": PPO}[algo]
    env = build_env(SMALL, features=True)
    model = cls("MlpPolicy", env, seed=0, policy_kwargs={"net_arch": [16]}, device="cpu")
    with torch.no_grad():
        model.policy.action_net.weight.mul_(30.0)
    return LoadedAgent(model, algo, SMALL, features=True)


def _check_same(single, batched, n: int, seed: int) -> None:
    assert len(batched) == len(single) == n
    assert [r.seed for r in batched] == list(range(seed, seed + n))
    assert batched == single  # every field: seed, cpe, completed, steps, end_time (regret NaN)
    assert all(math.isnan(r.regret) for r in batched)


def test_shipped_model_batched_equals_single_env_across_chunks(shipped):
    single = run_episodes(shipped, PAPER, 24, seed=500)
    batched = run_episodes_batched(shipped, PAPER, 24, seed=500, batch=10)  # chunks 10, 10, 4
    _check_same(single, batched, 24, 500)
    assert len({r.cpe for r in batched}) > 5  # real episodes, not a constant outcome


def test_feasibility_masked_agent_batched_equals_single_env(shipped):
    agent = FeasibilityMaskedAgent(shipped, 0.97)
    single = run_episodes(agent, PAPER, 16, seed=900)
    _check_same(single, run_episodes_batched(agent, PAPER, 16, seed=900, batch=6), 16, 900)
    # The mask changes the play (it is really applied on both paths).
    assert single != run_episodes_batched(shipped, PAPER, 16, seed=900)


@pytest.mark.slow
@pytest.mark.parametrize("masked", [False, True])
def test_200_paper_episodes_batched_equal_single_env(shipped, masked):
    agent = FeasibilityMaskedAgent(shipped, 0.9) if masked else shipped
    single = run_episodes(agent, PAPER, 200, seed=10_000)
    _check_same(single, run_episodes_batched(agent, PAPER, 200, seed=10_000, batch=64), 200, 10_000)


@pytest.mark.parametrize(
    ("algo", "decide_on_completion", "flatten"),
    [
        ("maskable_ppo", True, False),
        ("maskable_ppo", False, True),
        ("ppo", True, True),
        ("ppo", False, False),
    ],
)
def test_small_spec_both_decision_modes(algo, decide_on_completion, flatten):
    agent = _untrained(algo)
    kwargs = {"decide_on_completion": decide_on_completion, "flatten": flatten, "invalid_action": "raise"}
    single = run_episodes(agent, SMALL, 30, seed=3, env_kwargs=kwargs)
    _check_same(single, run_episodes_batched(agent, SMALL, 30, seed=3, env_kwargs=kwargs, batch=12), 30, 3)
    assert len({r.cpe for r in single}) > 3 and len({r.steps for r in single}) > 1


def test_decision_modes_differ_on_the_small_spec():
    """Completion-time decisions add decision points (guards the option being passed through)."""
    agent = _untrained("maskable_ppo")
    on = run_episodes_batched(agent, SMALL, 40, seed=3, env_kwargs={"decide_on_completion": True})
    off = run_episodes_batched(agent, SMALL, 40, seed=3, env_kwargs={"decide_on_completion": False})
    assert sum(r.steps for r in on) > sum(r.steps for r in off)


def test_run_task_batches_saved_agents_in_cpe_mode_only(shipped, monkeypatch):
    calls = []
    real = runner.run_episodes_batched

    def spy(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_episodes_batched", spy)
    path = str(MODELS / "maskable_ppo_h5")
    result = run_task(RunTask(path, PAPER, 3, seed=42, kind="model"))
    assert calls == [3]
    assert list(result.episodes) == run_episodes(shipped, PAPER, 3, seed=42)
    assert result.summary.mean_cpe == np.mean([r.cpe for r in result.episodes])
    regret = RunTask(path, PAPER, 3, kind="model", env_kwargs={"objective": "branin"})
    assert not runner._batched(regret)
    assert not runner._batched(RunTask("onfcp", PAPER, 3))


def test_vector_env_supports_cpe_mode_options_only():
    assert vector_env_supports(None) and vector_env_supports({})
    assert vector_env_supports({"decide_on_completion": False, "flatten": True, "reward": "cpe"})
    assert vector_env_supports({"horizon": 4.0, "normalize_reward": True, "invalid_action": "raise"})
    assert not vector_env_supports({"objective": "branin"})
    assert not vector_env_supports({"reward": "information"})
    assert not vector_env_supports({"render_mode": "ansi"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_episodes": 0}, "n_episodes must be >= 1"),
        ({"batch": 0}, "batch"),
        ({"seed": -1}, "seed"),
        ({"env_kwargs": {"objective": "branin"}}, "not supported by the vector env"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    agent = _untrained("ppo")
    args = {"n_episodes": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_episodes_batched(agent, SMALL, **args)
