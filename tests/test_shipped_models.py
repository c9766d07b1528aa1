"""The trained MaskablePPO schedulers shipped in models/ load and play like any baseline."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from labsched import LabSpec
from labsched.agents import load_agent
from labsched.cli import main
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.evaluation.rollout import run_episodes

cloudpickle = pytest.importorskip("cloudpickle")  # installed with stable-baselines3

MODELS = Path(__file__).resolve().parents[1] / "models"
HORIZONS = (4.0, 5.0, 6.0)


@pytest.mark.parametrize("h", HORIZONS)
def test_shipped_model_loads_and_plays_valid_episodes(h):
    path = MODELS / f"maskable_ppo_h{h:g}"
    assert (path / "best_model.zip").is_file()
    agent = load_agent(path)
    spec = LabSpec(horizon=h)
    results = run_episodes(agent, spec, 5, seed=123, env_kwargs={"invalid_action": "raise"})
    cpes = np.array([r.cpe for r in results])
    # Far above OnFCP's 55: the shipped agents learned to wait for results.
    assert cpes.mean() > 80


def test_compare_uses_a_shipped_model(tmp_path, capsys):
    code = main(
        [
            "compare",
            "onfcp",
            str(MODELS / "maskable_ppo_h5"),
            "--horizon",
            "5",
            "--episodes",
            "3",
            "--jobs",
            "1",
            "--no-plot",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "maskable_ppo_h5" in capsys.readouterr().out


# Actions of the shipped models on 400 observations per horizon (200 from episodes of random valid
# actions, 200 from the model's own episodes; see _observations), recorded with the pickle-based
# loader before the models were re-saved in the safe format. One base-36 digit per action.
REFERENCE_ACTIONS = {
    4: (
        "7000000000000000000000000000000000000000000000772200000000000000000000000000000000000000000007720000"
        "0000000000000000000000000000000000000000700000000000000000000000000000000000000000000000770000000000"
        "7000000000000020111010000000001000211011000000000000000000070000000000000220110000000000001000221100"
        "0000000000000070000000000000202000000002201000000111010000000000000000007000000000022000000001002000"
    ),
    5: (
        "4011000000232010000000002000000000000000000004402100000000020022002020000000000000000000000004111002"
        "2000023232300001000000000000000000000040210000000000002000000000000000000000000000044211100002230000"
        "4100000000000420000000000000021110000000000201100000000000000004100000000000000042000000000000000042"
        "0000000000000300000000000000004100000000000000000042000000000000000400000002111000000000000000000004"
    ),
    6: (
        "2210000101010120101100001122000000000000000000220000100012111200112120111110000000000000000021000010"
        "0101112122222100000000000000000000000000221112201122201221111000111000000000000000000002111012220010"
        "2210000000000000000022100000000000000000221000000000000002210000000000000000221000000000000000002210"
        "0000000000000200210000000000000022100000000000000000022100000000000002210000000000000221000000000000"
    ),
}


def _observations(agent, spec: LabSpec, h: int) -> np.ndarray:
    def play(policy, seed0: int, n: int) -> list[np.ndarray]:
        env = ConcurrentLabsEnv(spec, flatten=True)
        rng = np.random.default_rng(seed0)
        out, seed = [], seed0
        while len(out) < n:
            obs, _ = env.reset(seed=seed)
            seed += 1
            done = False
            while not done:
                out.append(np.asarray(obs, dtype=np.float64).copy())
                if policy is None:
                    action = int(rng.choice(np.flatnonzero(env.action_masks())))
                else:
                    action = int(policy.predict(obs)[0])
                obs, _, term, trunc, _ = env.step(action)
                done = term or trunc
        return out[:n]

    return np.stack(play(None, 100 * h, 200) + play(agent, 100 * h + 50, 200))


@pytest.mark.parametrize("h", (4, 5, 6))
def test_shipped_models_load_safely_with_the_recorded_actions(h, monkeypatch):
    folder = MODELS / f"maskable_ppo_h{h}"
    assert not list(folder.glob("*.pkl"))  # plain .npz statistics and agent.json only
    with monkeypatch.context() as m:
        for mod, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads")):
            m.setattr(mod, name, lambda *a, **k: pytest.fail("something was unpickled"))
        agent = load_agent(folder)  # no trust=True: nothing in the folder is unpickled
    assert json.loads((folder / "agent.json").read_text())["format"] == 2
    actions, _ = agent.predict(_observations(agent, LabSpec(horizon=float(h)), h))
    assert "".join(np.base_repr(int(a), 36) for a in actions) == REFERENCE_ACTIONS[h]
