"""Constrained training keeps as best_model.zip the best p-safe evaluation (agents/callbacks.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from labsched.agents.callbacks import (
    CONSTRAINED_EVAL_FIELDS,
    EVAL_LOG_FIELDS,
    ConstrainedBest,
    Evaluation,
    best_evaluation,
)
from labsched.envs._lib.stats import p_safe_verdict
from labsched.envs.labs.spec import LabSpec

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=3.0)


def _brute_force(evals: list[Evaluation], safe: list[bool]) -> tuple[int, bool]:
    """The rule written out directly: the first p-safe evaluation of the highest mean CPE, else
    the first of the highest (completion, mean CPE)."""
    if any(safe):
        top = max(e.mean_cpe for e, s in zip(evals, safe, strict=True) if s)
        pairs = enumerate(zip(evals, safe, strict=True))
        return next(i for i, (e, s) in pairs if s and e.mean_cpe == top), True
    key = [(e.completion_rate, e.mean_cpe) for e in evals]
    return key.index(max(key)), False


def test_the_best_p_safe_evaluation_wins_over_higher_cpe_unsafe_ones():
    evals = [
        Evaluation(100.0, 80, 100),  # unsafe: 80% against p = 0.95
        Evaluation(90.0, 95, 100),  # safe
        Evaluation(95.0, 93, 100),  # safe: P(X <= 93 | 100, 0.95) = 0.26 >= 0.05
        Evaluation(120.0, 85, 100),  # unsafe, the highest CPE
        Evaluation(94.0, 100, 100),  # safe, below 95
    ]
    assert [p_safe_verdict(e.successes, 100, 0.95).safe for e in evals] == [False, True, True, False, True]
    assert best_evaluation(evals, 0.95) == (2, True)
    # Unconstrained, the highest CPE would have been index 3.
    assert max(range(5), key=lambda i: evals[i].mean_cpe) == 3


def test_without_a_p_safe_evaluation_the_highest_completion_is_kept():
    evals = [
        Evaluation(130.0, 70, 100),
        Evaluation(110.0, 85, 100),
        Evaluation(120.0, 85, 100),  # ties on completion: the higher CPE
        Evaluation(125.0, 84, 100),
        Evaluation(120.0, 85, 100),  # a full tie: the earlier stays
    ]
    rule = ConstrainedBest(0.95)
    new_best = [rule.add(e.mean_cpe, e.successes, e.episodes, 1000 * i) for i, e in enumerate(evals)]
    assert new_best == [True, True, True, False, False]
    assert rule.index == 2 and not rule.best_safe
    summary = rule.summary()
    assert summary["p_safe"] is False and summary["rule"].startswith("no evaluation was p-safe")
    assert summary["timesteps"] == 2000 and summary["completion_rate"] == 0.85
    assert summary["p_safe_evaluations"] == 0 and summary["evaluations"] == 5


def test_a_first_p_safe_evaluation_replaces_an_unsafe_best_even_with_lower_cpe():
    rule = ConstrainedBest(0.9)
    assert rule.add(150.0, 10, 20)  # unsafe (50%)
    assert not rule.add(140.0, 9, 20)
    assert rule.add(60.0, 20, 20)  # safe, far lower CPE
    assert rule.best_safe and rule.best.mean_cpe == 60.0
    assert not rule.add(200.0, 12, 20)  # unsafe never beats a safe one
    assert rule.add(61.0, 18, 20)  # P(X <= 18 | 20, 0.9) = 0.61: safe, higher CPE
    assert rule.index == 4 and rule.summary()["rule"] == "highest mean CPE among the p-safe evaluations"


def test_running_rule_matches_the_rule_written_out_on_random_sequences():
    rng = np.random.default_rng(2024)
    for _ in range(150):
        n = int(rng.integers(10, 60))
        p = float(rng.choice([0.8, 0.9, 0.95]))
        length = int(rng.integers(1, 12))
        evals = [
            # Coarse CPE grid and rates near p: ties and borderline verdicts both occur.
            Evaluation(float(rng.integers(0, 6)), int(rng.binomial(n, rng.uniform(p - 0.15, 1.0))), n)
            for _ in range(length)
        ]
        safe = [p_safe_verdict(e.successes, e.episodes, p).safe for e in evals]
        rule = ConstrainedBest(p)
        for k, e in enumerate(evals):
            before = rule.index
            became_best = rule.add(e.mean_cpe, e.successes, e.episodes)
            assert (rule.index, rule.best_safe) == _brute_force(evals[: k + 1], safe[: k + 1])
            assert became_best == (rule.index == k) and (became_best or rule.index == before)
        assert best_evaluation(evals, p) == _brute_force(evals, safe)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ConstrainedBest(1.0), "p must"),
        (lambda: ConstrainedBest(0.9, alpha=0.0), "alpha must"),
        (lambda: ConstrainedBest(0.9).add(1.0, 5, 4), "successes must"),
        (lambda: ConstrainedBest(0.9).add(1.0, 0, 0), "episodes must"),
        (lambda: ConstrainedBest(0.9).add(float("nan"), 1, 4), "mean_cpe must"),
        (lambda: best_evaluation([], 0.9), "evaluations must not be empty"),
    ],
)
def test_bad_inputs_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_no_best_before_an_evaluation():
    with pytest.raises(RuntimeError, match="no evaluation"):
        _ = ConstrainedBest(0.9).best


def test_tiny_constrained_training_saves_the_best_p_safe_evaluation(tmp_path):
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.evaluation import evaluate_policy

    from labsched.agents.constrained import ConstraintConfig
    from labsched.agents.loading import load_agent
    from labsched.agents.training import train

    result = train(
        "maskable_ppo",
        SMALL,
        total_timesteps=512,
        hyperparams={"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1},
        out=tmp_path,
        eval_freq=128,
        eval_episodes=20,
        n_eval_envs=2,
        progress_bar=False,
        tensorboard=False,
        plot=False,
        verbose=0,
        constraint=ConstraintConfig("lagrangian", target=0.1),
    )
    with (tmp_path / "eval_log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == EVAL_LOG_FIELDS + CONSTRAINED_EVAL_FIELDS
    assert len(rows) >= 3
    evals = [
        Evaluation(float(r["mean_cpe"]), round(float(r["completion_rate"]) * 20), 20, int(r["timesteps"]))
        for r in rows
    ]
    for r, e in zip(rows, evals, strict=True):
        assert int(r["p_safe"]) == p_safe_verdict(e.successes, 20, 0.9).safe
    index, safe = best_evaluation(evals, 0.9)
    assert safe  # this seeded run has a p-safe evaluation: best_model.zip must be one
    chosen = json.loads((tmp_path / "agent.json").read_text())["training"]["best_model"]
    assert chosen["timesteps"] == evals[index].timesteps and chosen["p_safe"] is safe
    assert chosen["mean_cpe"] == evals[index].mean_cpe == result.best_mean_cpe
    assert int(rows[-1]["best_p_safe"]) == safe and float(rows[-1]["best_mean_cpe"]) == chosen["mean_cpe"]
    # best_model.zip is that evaluation's model: replaying the evaluation gives its numbers.
    agent = load_agent(tmp_path / "best_model.zip")
    venv = agent.make_model_env(2, seed=None)
    venv.seed(json.loads((tmp_path / "agent.json").read_text())["eval_seed"])
    rewards, _ = evaluate_policy(
        agent.model, venv, n_eval_episodes=20, return_episode_rewards=True, warn=False
    )
    assert float(np.mean(rewards)) == pytest.approx(chosen["mean_cpe"], abs=1e-9)
