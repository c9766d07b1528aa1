"""Warm starts (``train(init_model=...)``): the configuration's rollout settings on the saved network."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from labsched import LabSpec
from labsched.agents import load_agent, train
from labsched.envs.labs.durations import Gamma

TINY = LabSpec(n_experiments=6, n_labs=3, horizon=3.0)
BASE = {
    "n_steps": 32,
    "batch_size": 64,
    "n_epochs": 1,
    "learning_rate": 1e-3,
    "features": True,
    "normalize": True,
    "policy_kwargs": "dict(net_arch=[16, 16], activation_fn=nn.Tanh)",
}
COMMON = dict(
    eval_freq=0, eval_episodes=2, n_eval_envs=2, references=None, progress_bar=False, plot=False, verbose=0
)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A tiny MaskablePPO trained on 2 native envs."""
    out = tmp_path_factory.mktemp("origin")
    return train(
        "maskable_ppo", TINY, seed=0, out=out, total_timesteps=64, hyperparams={**BASE, "n_envs": 2}, **COMMON
    )


def test_warm_start_continues_on_more_envs_with_the_configured_rollout(origin, tmp_path):
    hp = {**BASE, "n_envs": 8, "n_steps": 16, "batch_size": 32, "n_epochs": 3, "learning_rate": 5e-4}
    out = tmp_path / "fine"
    result = train(
        "maskable_ppo",
        TINY,
        seed=1,
        out=out,
        total_timesteps=256,
        hyperparams=hp,
        init_model=origin.out,
        **COMMON,
    )
    model = result.model
    assert model.n_envs == 8 and model.get_env().num_envs == 8
    assert (model.n_steps, model.batch_size, model.n_epochs) == (16, 32, 3)
    assert model.rollout_buffer.n_envs == 8 and model.rollout_buffer.buffer_size == 16
    assert model.lr_schedule(1.0) == pytest.approx(5e-4)
    assert model.num_timesteps >= 256
    # The network is the saved one (its shape), trained further (its weights moved).
    before = load_agent(origin.out / "model.zip").model.policy.state_dict()
    after = load_agent(out / "model.zip").model.policy.state_dict()
    assert {k: v.shape for k, v in before.items()} == {k: v.shape for k, v in after.items()}
    assert any(not np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


def test_warm_start_records_the_saved_network_not_the_configured_one(origin, tmp_path):
    hp = {**BASE, "n_envs": 4, "policy_kwargs": "dict(net_arch=[64, 64], activation_fn=nn.Tanh)"}
    out = tmp_path / "fine"
    train(
        "maskable_ppo",
        TINY,
        seed=2,
        out=out,
        total_timesteps=128,
        hyperparams=hp,
        init_model=origin.out,
        **COMMON,
    )
    meta = json.loads((out / "agent.json").read_text())
    assert meta["hyperparams"]["policy_kwargs"]["net_arch"] == [16, 16]
    agent = load_agent(out / "model.zip")  # the safe loader checks the network against agent.json
    assert [
        m.out_features for m in agent.model.policy.mlp_extractor.policy_net if hasattr(m, "out_features")
    ] == [16, 16]


def test_warm_start_on_another_duration_law_of_the_same_layout(origin, tmp_path):
    spec = LabSpec(n_experiments=6, n_labs=3, horizon=3.0, duration=Gamma(shape=10.0, scale=0.1))
    out = tmp_path / "gamma"
    result = train(
        "maskable_ppo", spec, seed=3, out=out, total_timesteps=64, hyperparams={**BASE, "n_envs": 2},
        init_model=origin.out, **COMMON,
    )  # fmt: skip
    assert result.model.observation_space == result.model.get_env().observation_space
    assert load_agent(out / "model.zip").spec == spec


def test_warm_start_on_another_layout_is_refused(origin, tmp_path):
    with pytest.raises(ValueError, match="was trained on observations"):
        train(
            "maskable_ppo", LabSpec(n_experiments=6, n_labs=4, horizon=3.0), seed=3, out=tmp_path / "x",
            total_timesteps=64, hyperparams={**BASE, "n_envs": 2}, init_model=origin.out, **COMMON,
        )  # fmt: skip
