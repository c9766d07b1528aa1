"""Rendering: the ANSI picture keeps the whole schedule, the Gantt chart has a legend and labels."""

from __future__ import annotations

import re

import pytest

from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.rendering import gantt_figure


def _play(env: ConcurrentLabsEnv, steps: int | None = None) -> dict:
    _, info = env.reset(seed=0)
    done, n = False, 0
    while not done and (steps is None or n < steps):
        _, _, term, trunc, info = env.step(1 if info["action_mask"][1] else 0)
        done, n = term or trunc, n + 1
    return info


def _lab_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("lab ")]


def test_ansi_render_at_the_end_shows_the_finished_schedule():
    env = ConcurrentLabsEnv(render_mode="ansi", n_labs=4, n_experiments=12, horizon=3.0)
    _play(env)
    text = env.render()
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 4 + 2
    assert "(horizon reached)" in lines[0]
    assert "legend: =/- finished, # running, | now, ] horizon" in lines[1]
    log, running = env.execution_log(), env.running_records()
    assert len(log) == 10 and len(running) == 2  # this seed: two experiments cut off by h
    for lab, line in enumerate(_lab_lines(text)):
        n_done = sum(r.lab == lab for r in log)
        assert (f"; {n_done} finished" in line) == (n_done > 0)
        bar = line[line.index("[") + 1 : line.index("]")]
        assert len(bar) == 24
        # finished experiments alternate '=' and '-': one run of characters per experiment
        runs = re.findall(r"=+|-+", bar)
        assert len(runs) == n_done
        is_running = any(r.lab == lab for r in running)
        assert ("#" in bar) == is_running
        assert ("unfinished at the horizon" in line) == is_running
    env.close()


def test_ansi_render_mid_episode_keeps_finished_experiments_of_busy_labs():
    env = ConcurrentLabsEnv(render_mode="ansi", n_labs=4, n_experiments=12, horizon=3.0)
    _play(env, steps=12)
    text = env.render()
    finished = sum(int(m) for m in re.findall(r"; (\d+) finished", text))
    assert finished == len(env.execution_log()) > 0
    assert "since" in text and "horizon reached" not in text
    env.close()


@pytest.mark.parametrize("now", [None, 1.5])
def test_gantt_chart_has_legend_and_axis_labels(now):
    pytest.importorskip("matplotlib")
    env = ConcurrentLabsEnv(n_labs=3, n_experiments=10, horizon=5.0)
    _play(env, steps=8)
    records = list(env.execution_log()) + list(env.running_records())
    fig = gantt_figure(records, 3, 5.0, now=now, title="t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time" and ax.get_ylabel() == "lab"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    expected = ["finished (number: prior count)", "running / unfinished", "horizon"]
    assert labels == expected + (["now"] if now is not None else [])
    import matplotlib.pyplot as plt

    plt.close(fig)
