"""Each script of examples/ runs, with small and fast settings, and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _row(out: str, name: str) -> list[str]:
    lines = [ln for ln in out.splitlines() if ln.startswith(f"| {name} |")]
    assert len(lines) == 1, out
    return [c.strip() for c in lines[0].strip("|").split("|")]


def test_examples_folder_has_the_three_scripts():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == [
        "custom_baseline.py",
        "custom_objective.py",
        "train_and_compare.py",
    ]


def test_train_and_compare(tmp_path):
    pytest.importorskip("sb3_contrib")
    out = _run(
        "train_and_compare.py",
        "--timesteps",
        "2048",
        "--episodes",
        "5",
        "--n-envs",
        "8",
        "--out",
        str(tmp_path),
    )
    assert f"trained for 2048 steps, saved in {tmp_path}" in out
    assert (tmp_path / "best_model.zip").is_file() and (tmp_path / "agent.json").is_file()
    agent, ps = _row(out, "trained agent"), _row(out, "ps")
    n = 20
    for row in (agent, ps):
        assert 0.0 <= float(row[1]) <= n * (n - 1) / 2
        assert re.fullmatch(r"\[[0-9.]+, [0-9.]+\]", row[2])
        assert 0.0 <= float(row[3]) <= 1.0 and row[4] in ("yes", "no")
    assert float(ps[1]) > 100.0  # PS on the paper's setting (Table 2: about 120)


def test_custom_baseline():
    out = _run("custom_baseline.py", "--episodes", "5")
    assert re.search(r"one episode: CPE \d+, completed \d+/20", out)
    half, ps, onfcp = (_row(out, name) for name in ("half-free", "ps", "onfcp"))
    # On the same seeds PS gathers more prior information than both eager policies.
    assert float(ps[1]) > float(half[1]) >= 0.0 and float(ps[1]) > float(onfcp[1])
    assert float(half[2]) == 1.0  # it finishes all 20 experiments by h = 5 in these episodes


def test_custom_baseline_is_registered_by_name():
    # In a fresh interpreter: registering here would add it to this session's registry.
    code = f"""
import sys
sys.path.insert(0, {str(EXAMPLES)!r})
import custom_baseline
from labsched import LabSpec
from labsched.baselines import BASELINES, make
assert "half-free" in BASELINES
policy = make("half-free", LabSpec(), margin=3.0)
assert isinstance(policy, custom_baseline.HalfFree) and policy.margin == 3.0
try:
    make("half-free", LabSpec(), margin=0.0)
except ValueError as exc:
    assert "margin must be a finite number > 0" in str(exc)
else:
    raise AssertionError("margin=0 accepted")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_custom_objective_in_regret_mode():
    out = _run("custom_objective.py", "--episodes", "1")
    for name in ("sequential", "onfcp", "ps"):
        row = _row(out, name)
        assert 0.0 <= float(row[1]) <= 1.0  # regret of a function with values in (0, 1]
        assert 0.0 <= float(row[2]) <= 190.0
