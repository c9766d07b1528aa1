"""The trained MaskablePPO schedulers shipped in models/ load and play like any baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from labsched import LabSpec
from labsched.agents import load_agent
from labsched.cli import main
from labsched.evaluation.rollout import run_episodes

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
