"""Training under the chance constraint: dual update, feasibility masks, the wrapper, a short run."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

import itertools

from labsched.agents.constrained import (
    ConstrainedVecEnv,
    ConstraintConfig,
    DualAscent,
    dual_update,
    feasibility_masks,
    finish_probabilities,
)
from labsched.agents.features import LabFeatures
from labsched.agents.multiseed import parse_seeds
from labsched.agents.runner import RunTask, run_task
from labsched.agents.training import train
from labsched.agents.vec_env import LabsVecEnv
from labsched.cli import main
from labsched.envs._lib.stats import p_safe_verdict
from labsched.envs.labs.spec import LabSpec

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=3.0)


def test_dual_update_rises_below_target_falls_above_and_never_goes_negative():
    target = 0.05  # allowed violation rate: completion target 0.95
    assert dual_update(1.0, 0.20, target, 0.5) == pytest.approx(1.075)  # completion 0.80 < 0.95: up
    assert dual_update(1.0, 0.00, target, 0.5) == pytest.approx(0.975)  # completion 1.00 > 0.95: down
    assert dual_update(1.0, target, target, 0.5) == pytest.approx(1.0)  # on target: unchanged
    assert dual_update(0.01, 0.0, target, 10.0) == 0.0  # projected onto lambda >= 0
    dual = DualAscent(target, lr=1.0)
    path = [dual.update(c) for c in [0.3, 0.3] + [0.0] * 12]
    assert path[0] == pytest.approx(0.25) and path[1] == pytest.approx(0.5)
    assert all(b < a for a, b in itertools.pairwise(path[1:]) if a > 0)  # falls once above
    assert min(path) == 0.0 and all(v >= 0 for v in path)
    # The proportional (PID) term reacts to the current error, the integral keeps the history.
    pid = DualAscent(target, lr=1.0, kp=2.0)
    assert pid.update(0.15) == pytest.approx(0.1 + 2.0 * 0.1)
    assert pid.update(0.05) == pytest.approx(0.1)


def test_bad_knobs_give_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"mask_threshold must be a real number in \(0.0, 1.0\)"):
        ConstraintConfig("mask", mask_threshold=1.5)
    with pytest.raises(ValueError, match="mask_threshold"):
        ConstraintConfig("mask", mask_threshold=0.0)
    with pytest.raises(ValueError, match="lambda_lr"):
        ConstraintConfig("lagrangian", lambda_lr=-0.1)
    with pytest.raises(ValueError, match="lambda_lr"):
        dual_update(0.0, 0.1, 0.05, -1.0)
    with pytest.raises(ValueError, match="target"):
        ConstraintConfig("lagrangian", target=1.0)
    with pytest.raises(ValueError, match="constraint"):
        ConstraintConfig("penalty")
    with pytest.raises(ValueError, match="maskable"):
        train("ppo", SMALL, total_timesteps=64, out=tmp_path, constraint=ConstraintConfig("mask"))
    for argv, word in (
        (["--constraint", "mask", "--mask-threshold", "1.2"], "--mask-threshold must be in (0, 1)"),
        (["--constraint", "lagrangian", "--lambda-lr", "-0.5"], "--lambda-lr must be a finite number >= 0"),
        (["--constraint", "lagrangian", "--target", "0"], "--target must be in (0, 1)"),
    ):
        with pytest.raises(SystemExit):
            main(["train", "--out", str(tmp_path), *argv])
        assert word in capsys.readouterr().err
    assert main(["train", "--mask-threshold", "0.5", "--out", str(tmp_path)]) == 2
    assert "need --constraint" in capsys.readouterr().err
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="seeds must look like"):
        parse_seeds("3-1")


def test_feasibility_masks_follow_the_finish_probability():
    valid = np.array(
        [[True, True, True, True, False], [True, True, False, False, False], [True] + [False] * 4]
    )
    p_now = np.array([0.99, 0.5, 1.0])
    p_wait = np.array([0.81, 0.2, 1.0])
    m = feasibility_masks(valid, p_now, p_wait, 0.9)
    # Row 0: P(a) = 0.81 * (0.99 / 0.81) ** (a / 3) = 0.81, 0.864, 0.922, 0.99 -> a >= 2 allowed.
    assert m[0].tolist() == [False, False, True, True, False]
    # Row 1: below the threshold whatever is done: only the safest action (start all) is left.
    assert m[1].tolist() == [False, True, False, False, False]
    assert m[2].tolist() == [True, False, False, False, False]  # nothing can start: waiting stays
    assert not (m & ~valid).any()
    # A low threshold leaves the env's masks unchanged.
    assert (feasibility_masks(valid, p_now, p_wait, 0.01) == valid).all()
    # The features' two probabilities, read from the appended columns or recomputed: the same.
    env = LabsVecEnv(4, SMALL, features=True, seed=3)
    obs = env.reset()
    flat = obs[:, : 2 * SMALL.n_labs + 4]
    a = finish_probabilities(obs, SMALL)
    b = finish_probabilities(flat, SMALL)
    assert np.allclose(a[0], b[0], atol=1e-6) and np.allclose(a[1], b[1], atol=1e-6)
    feats = LabFeatures.for_spec(SMALL).batch(flat)
    assert np.allclose(b[0], feats[:, 3]) and np.allclose(b[1], feats[:, 4])


def test_the_wrapper_subtracts_lambda_times_the_episode_cost():
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=2.0)  # tight: many episodes fail
    plain = LabsVecEnv(4, spec, seed=11)
    wrapped = ConstrainedVecEnv(LabsVecEnv(4, spec, seed=11), spec, DualAscent(0.05, 0.0, init=0.7))
    rng = np.random.default_rng(0)
    plain.reset(), wrapped.reset()
    gap, failures = 0.0, 0
    for _ in range(300):
        masks = plain.action_masks()
        assert (masks == wrapped.action_masks()).all()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        _, r0, d0, infos = plain.step(actions)
        _, r1, d1, _ = wrapped.step(actions)
        assert (d0 == d1).all()
        gap += float((r0 - r1).sum())
        failures += sum(int(info.get("cost", 0.0)) for info in infos)
    costs = wrapped.pop_costs()
    assert failures > 0 and len(costs) >= failures and sum(costs) == failures
    assert gap == pytest.approx(0.7 * failures, rel=1e-5)
    assert wrapped.pop_costs() == []


@pytest.mark.slow  # ~130 s on the shared 2-core machine under load (training, then 200 masked episodes)
def test_short_constrained_training_ends_p_safe(tmp_path):
    """Lagrangian plus feasibility mask on a small setting; the final model is p-safe on fresh seeds."""
    result = train(
        "maskable_ppo",
        SMALL,
        total_timesteps=2048,
        hyperparams={"n_envs": 4, "n_steps": 128, "batch_size": 128, "n_epochs": 4},
        out=tmp_path,
        eval_freq=0,
        eval_episodes=20,
        n_eval_envs=2,
        progress_bar=False,
        tensorboard=False,
        plot=True,
        verbose=0,
        constraint=ConstraintConfig("lagrangian+mask", mask_threshold=0.9),
    )
    log = (tmp_path / "constraint_log.csv").read_text().splitlines()
    assert log[0].startswith("timesteps,lambda") and len(log) - 1 == 2048 // 512
    lambdas = [float(row.split(",")[1]) for row in log[1:]]
    assert all(v >= 0 for v in lambdas)
    meta = json.loads((tmp_path / "agent.json").read_text())
    assert meta["constraint"]["kind"] == "lagrangian+mask"
    assert meta["constraint"]["target"] == pytest.approx(1 - SMALL.p_safe)
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    # Fresh seeds (not the training or evaluation ones); the runner applies the saved mask.
    res = run_task(RunTask(str(result.model_path), SMALL, 200, seed=50_000, kind="model"))
    done = sum(e.completed >= SMALL.n_experiments for e in res.episodes)
    assert p_safe_verdict(done, 200, SMALL.p_safe).safe
    assert res.summary.mean_cpe > 10.0  # above OnFCP's 10 (everything at once) on this setting
