"""Time budgets of training: wall-clock and process-CPU-time limits (TimeLimitCallback, CpuMinutes,
``labsched train --cpu-time-limit-minutes``)."""

from __future__ import annotations

import pickle
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from labsched import LabSpec
from labsched.agents import train
from labsched.agents.callbacks import TIME_LIMIT_CLOCKS, CpuMinutes, TimeLimitCallback
from labsched.cli import main

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=4.0)
TINY_PPO = {
    "vec_env": "native",
    "n_envs": 2,
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 1,
    "learning_rate": 1e-3,
    "policy_kwargs": "dict(net_arch=[16], activation_fn=nn.Tanh)",
    "features": False,
    "normalize": False,
}


def _linear(progress_remaining: float) -> float:
    return 2e-3 * progress_remaining


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _started(cb: TimeLimitCallback, clock: _FakeClock) -> SimpleNamespace:
    """``cb`` on a stand-in model with a linear learning-rate schedule, training started."""
    model = SimpleNamespace(lr_schedule=_linear, num_timesteps=0)
    cb._now = clock
    cb.init_callback(model)
    cb.on_training_start({}, {})
    return model


def test_clock_follows_the_type_of_the_budget():
    assert TimeLimitCallback(1.5).clock == "wall"
    assert TimeLimitCallback(CpuMinutes(1.5)).clock == "cpu"
    assert TimeLimitCallback(2, clock="cpu").clock == "cpu"
    assert TimeLimitCallback(CpuMinutes(1.5), clock="wall").clock == "wall"  # explicit wins
    assert TimeLimitCallback(CpuMinutes(1.5)).seconds == 90.0
    assert TIME_LIMIT_CLOCKS["cpu"] is time.process_time
    assert TIME_LIMIT_CLOCKS["wall"] is time.perf_counter


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "1.5", None])
def test_bad_budget_is_refused(bad):
    with pytest.raises(ValueError, match="time_limit_minutes"):
        TimeLimitCallback(bad)


def test_unknown_clock_is_refused():
    with pytest.raises(ValueError, match="clock must be one of"):
        TimeLimitCallback(1.0, clock="gpu")


def test_cpu_minutes_is_a_float_that_keeps_its_type_through_pickling():
    x = CpuMinutes(1.5)
    assert x == 1.5 and f"{x:g}" == "1.5" and repr(x) == "CpuMinutes(1.5)"
    y = pickle.loads(pickle.dumps(x))  # what --seeds workers receive
    assert type(y) is CpuMinutes and y == 1.5


def test_schedule_runs_on_the_clock_and_the_limit_stops_at_the_budget():
    clock = _FakeClock()
    cb = TimeLimitCallback(CpuMinutes(1.5))  # 90 s
    model = _started(cb, clock)
    wrapped = model.lr_schedule
    assert wrapped is not _linear
    clock.now += 45.0  # half the budget, no timesteps used yet
    assert cb.on_step() is True
    assert cb.elapsed == 45.0
    assert wrapped(1.0) == pytest.approx(1e-3, rel=1e-12)  # time is the binding budget
    assert wrapped(0.25) == pytest.approx(5e-4, rel=1e-12)  # timesteps are
    clock.now += 44.9
    assert cb.on_step() is True and not cb.triggered
    clock.now += 0.1
    assert cb.on_step() is False and cb.triggered
    assert wrapped(1.0) == 0.0
    cb.on_training_end()
    assert model.lr_schedule is _linear  # a saved model carries no clock


def test_cpu_clock_does_not_count_waiting_but_the_wall_clock_does():
    wall = TimeLimitCallback(0.2 / 60)  # 0.2 s
    cpu = TimeLimitCallback(CpuMinutes(0.2 / 60))
    for cb in (wall, cpu):
        cb.init_callback(SimpleNamespace(num_timesteps=0))
        cb.on_training_start({}, {})
    time.sleep(0.3)  # no CPU used
    assert wall.on_step() is False and wall.triggered
    assert cpu.on_step() is True and not cpu.triggered and cpu.elapsed < 0.2
    end = time.process_time() + 0.3
    while time.process_time() < end:  # burn CPU
        pass
    assert cpu.on_step() is False and cpu.triggered


def test_train_stops_on_the_cpu_budget(tmp_path):
    before = time.process_time()
    result = train(
        "maskable_ppo",
        SMALL,
        total_timesteps=10**8,
        time_limit_minutes=CpuMinutes(0.01),  # 0.6 s of CPU
        hyperparams=TINY_PPO,
        out=tmp_path,
        eval_freq=0,
        eval_episodes=2,
        progress_bar=False,
        tensorboard=False,
        plot=False,
        verbose=0,
    )
    assert result.stop_reason == "time_limit" and 0 < result.timesteps < 10**8
    assert time.process_time() - before >= 0.6
    assert (tmp_path / "model.zip").is_file()


_CLI = [
    "train",
    "-n",
    "8",
    "-l",
    "4",
    "--horizon",
    "4",
    "--total-timesteps",
    "100000000",
    "--hyperparams",
    *[f"{k}={v}" for k, v in TINY_PPO.items() if k not in ("features", "normalize")],
    "--no-features",
    "--no-normalize",
    "--eval-freq",
    "0",
    "--eval-episodes",
    "2",
    "--references",
    "--no-progress",
    "--no-plot",
    "--verbose",
    "0",
]


def test_cli_cpu_time_limit(tmp_path):
    assert main([*_CLI, "--cpu-time-limit-minutes", "0.005", "--out", str(tmp_path)]) == 0
    meta = (tmp_path / "agent.json").read_text()
    assert '"stop_reason": "time_limit"' in meta


@pytest.mark.parametrize(
    "extra",
    [
        ["--cpu-time-limit-minutes", "0"],
        ["--cpu-time-limit-minutes", "-1"],
        ["--cpu-time-limit-minutes", "inf"],
        ["--cpu-time-limit-minutes", "1", "--time-limit-minutes", "1"],  # one budget at a time
    ],
)
def test_cli_refuses_bad_cpu_time_limits(extra, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*_CLI, *extra, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "cpu-time-limit-minutes" in capsys.readouterr().err
