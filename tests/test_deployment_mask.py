"""A saved agent's deployment mask (``deployment.mask_threshold`` in agent.json) is applied when it runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("sb3_contrib")

from labsched import LabSpec
from labsched.agents.comparison import compare
from labsched.agents.constrained import FeasibilityMaskedAgent
from labsched.agents.runner import RunTask, build_scheduler, deployment_mask

MODEL = Path(__file__).resolve().parents[1] / "models" / "maskable_ppo_h5"


def test_deployment_mask_reads_the_chosen_threshold_then_the_trained_one():
    assert deployment_mask({}) is None
    assert deployment_mask({"deployment": {"mask_threshold": 0.9}}) == 0.9
    masked = {"kind": "lagrangian+mask", "target": 0.05, "mask_threshold": 0.7}
    assert deployment_mask({"constraint": masked}) == 0.7
    assert deployment_mask({"constraint": masked, "deployment": {"mask_threshold": 0.95}}) == 0.95
    assert deployment_mask({"constraint": {"kind": "lagrangian", "target": 0.05}}) is None


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, "0.9", float("nan")])
def test_a_bad_deployment_threshold_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match=r"deployment\.mask_threshold"):
        deployment_mask({"deployment": {"mask_threshold": bad}})


def test_a_saved_agent_with_a_deployment_mask_runs_inside_it(tmp_path):
    folder = tmp_path / "agent"
    shutil.copytree(MODEL, folder)
    meta = json.loads((folder / "agent.json").read_text())
    meta["deployment"] = {"mask_threshold": 0.9}
    (folder / "agent.json").write_text(json.dumps(meta))
    spec = LabSpec(horizon=5.0)
    agent, _ = build_scheduler(RunTask(str(folder), spec, 1, kind="model"))
    assert isinstance(agent, FeasibilityMaskedAgent) and agent.threshold == 0.9
    plain, _ = build_scheduler(RunTask(str(MODEL), spec, 1, kind="model"))
    assert not isinstance(plain, FeasibilityMaskedAgent)
    # An explicit threshold wins over the saved one.
    other, _ = build_scheduler(RunTask(str(folder), spec, 1, kind="model", mask_threshold=0.5))
    assert other.threshold == 0.5


def test_compare_runs_saved_models_inside_a_given_mask(capsys):
    spec = LabSpec(horizon=5.0)
    plain, masked = (
        compare([str(MODEL)], spec, episodes=30, seed=7, progress=False),
        compare([str(MODEL)], spec, episodes=30, seed=7, progress=False, mask_threshold=0.95),
    )
    # A mask only removes the riskier starts: completion can only rise on the same episodes here.
    assert masked[0].completion_rate >= plain[0].completion_rate
    assert (masked[0].mean_cpe, masked[0].completion_rate) != (plain[0].mean_cpe, plain[0].completion_rate)
    with pytest.raises(ValueError, match="mask_threshold"):
        compare([str(MODEL)], spec, episodes=2, progress=False, mask_threshold=1.0)
