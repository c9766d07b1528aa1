"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs_and_is_about_twenty_lines(capsys):
    text = README.read_text()
    block = re.search(r"## Usage\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 22
    exec(compile(block, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "CPE" in out and "ExperimentRecord(" in out


def test_quickstart_is_exactly_two_commands():
    text = README.read_text()
    quick = re.search(r"## Quickstart\n(.*?)\n## ", text, re.S).group(1)
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    assert "labsched cpe-table" in commands[0]
    assert "pytest" in commands[1] and commands[1].startswith("pip install torch==2.13.0")


def test_campaign_example_runs(tmp_path, monkeypatch):
    """The campaign section's code runs as written (in a scratch folder)."""
    import pytest

    pytest.importorskip("plotly")
    text = README.read_text()
    section = re.search(r"## Running a real campaign.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(section, str(README), "exec"), {})
    assert (tmp_path / "bench.db").is_file() and (tmp_path / "report.html").stat().st_size > 100_000


def test_plain_sb3_example_uses_the_shipped_settings():
    """The README's plain stable-baselines3 example states the tuned settings of
    ``agents/hyperparams/maskable_ppo.yml``: every value it writes out equals the shipped one."""
    import ast

    from labsched.agents.config import load_hyperparams
    from labsched.envs.labs.spec import LabSpec

    text = README.read_text()
    section = re.search(r"\*\*Training with plain stable-baselines3\.\*\*.*?```python\n(.*?)```", text, re.S)
    block = section.group(1)
    shipped = load_hyperparams("maskable_ppo", LabSpec(n_experiments=20, n_labs=10, horizon=5.0))
    call = next(
        node
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MaskablePPO"
    )
    literal = {k.arg: ast.literal_eval(k.value) for k in call.keywords if isinstance(k.value, ast.Constant)}
    for key in ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef"):
        assert literal[key] == shipped[key], key
    schedule = r"lambda progress_remaining: (\S+) \* progress_remaining,\s+# (lin_\S+)"
    rate, name = re.search(schedule, block).groups()
    assert name == shipped["learning_rate"] and float(rate) == float(name.removeprefix("lin_"))
    assert int(re.search(r"LabsVecEnv\((\d+),", block).group(1)) == shipped["n_envs"]
