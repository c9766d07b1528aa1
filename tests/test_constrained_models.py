"""The constrained agents shipped in models/constrained_h{4,5,6}: p-safe, and scoring as reported.

Their test figures (1,000 episodes, seeds 100000-100999, the README's table) are in
docs/results/constrained/shipped.json; here 400 fresh episodes (seeds 300000-300399) must give a
p-safe completion count (one-sided exact binomial test at 5%, p = 0.95) and a mean CPE within
five standard errors of the reported one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from labsched import LabSpec
from labsched.agents import load_agent
from labsched.agents.runner import RunTask, run_task
from labsched.envs._lib.stats import p_safe_verdict

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = json.loads((ROOT / "docs" / "results" / "constrained" / "shipped.json").read_text())


@pytest.mark.parametrize("h", [4, 5, 6])
def test_shipped_constrained_agent_is_p_safe_and_scores_as_reported(h):
    folder = ROOT / "models" / f"constrained_h{h}"
    agent = load_agent(folder)
    assert agent.spec == LabSpec(horizon=float(h))
    assert agent.metadata["constraint"]["kind"] == "lagrangian"
    assert agent.metadata["selection"]["validation_p_safe"] == "yes"
    result = run_task(RunTask(str(folder), LabSpec(horizon=float(h)), 400, 300_000, kind="model"))
    done = sum(e.completed == 20 for e in result.episodes)
    assert p_safe_verdict(done, 400, 0.95).safe, f"h = {h}: {done}/400 completed"
    reported = SHIPPED[str(h)]
    se = math.hypot(result.summary.se_cpe, reported["se_cpe"])
    assert abs(result.summary.mean_cpe - reported["mean_cpe"]) < 5 * se
