"""Speed of the native vector environment and of training on it, beside references run in the
same process: Gymnasium's native ``CartPole-v1`` vector env, the single labs env, and the former
default training setup (8 single envs in SB3's ``DummyVecEnv``).

``labsched benchmark`` prints these figures among the others; this part alone:
``python -m labsched.evaluation.vector_benchmark [--repeats R] [--no-training]``. Issue 11's
targets: at N = 1,024 at least 0.5x CartPole's vector env and 10x the single env, N = 16,384 in
under 1 GiB, and training at least 20x the former default. Measured on the 2-core development
machine beside other jobs (2026-11-30, 1-min load 3-5, twelve runs of ``--repeats 7
--no-training``): run medians 0.42-0.65x CartPole on wall clock (median run 0.54; rounds
0.23-1.33) and 0.50-0.61x on process CPU time, where three runs just before the speed pass of
the engine and the vector env gave 0.37-0.46x; 32-56x the single env; 79 MiB (the episodes drawn
ahead included). Training: 23.6x (rounds 21.1-26.1x) with the shipped 2-epoch entry. docs/agents.md
("Speed") has the profiles and the learning check of the shipped hyperparameters.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from labsched._registration import CONCURRENT_LABS_ID
from labsched.agents.config import algorithm_info, load_hyperparams, model_kwargs, validate_hyperparams
from labsched.agents.throughput import params_vec_env
from labsched.envs._lib.threads import torch_threads
from labsched.envs.labs.spec import LabSpec
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

__all__ = [
    "FORMER_DEFAULT",
    "bench_training",
    "bench_vector_env",
    "bench_vector_memory",
    "print_vector_benchmarks",
    "steps_per_second",
]


def _vector_rates(env: Any, steps: int, masked: bool, seed: int = 0) -> tuple[float, float]:
    """Env-steps per second of wall clock and per second of process CPU time, of ``steps``
    batch steps with random (valid, when ``masked``) actions."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = env.num_envs
    high = int(env.single_action_space.n)
    draws = rng.integers(0, high, size=(steps, n))
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        a = draws[i]
        if masked:
            a = np.minimum(a, env.action_masks().sum(axis=1) - 1)
        env.step(a)
    cpu = max(time.process_time() - c0, 1e-9)
    return steps * n / (time.perf_counter() - t0), steps * n / cpu


def _vector_rate(env: Any, steps: int, masked: bool, seed: int = 0) -> float:
    """Env-steps/s (wall clock) of ``steps`` batch steps with random (valid, when ``masked``) actions."""
    return _vector_rates(env, steps, masked, seed)[0]


def steps_per_second(env: gym.Env, n_steps: int, choose: Callable[[Any, dict], int], seed: int = 0) -> float:
    """Steps per second of a single env under ``choose(obs, info) -> action``, resets included.

    A bare step loop, not an episode loop: what is measured is ``env.step`` itself, so nothing
    (such as ``play_episode``'s per-step predict call) may sit between the steps.
    """
    obs, info = env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        obs, _, terminated, truncated, info = env.step(choose(obs, info))
        if terminated or truncated:
            obs, info = env.reset()
    return n_steps / (time.perf_counter() - t0)


def _single_rate(steps: int, seed: int = 0) -> float:
    """The single labs env through ``gymnasium.make``, random valid actions."""
    u = iter(np.random.default_rng(seed).random(steps).tolist())
    return steps_per_second(
        gym.make(CONCURRENT_LABS_ID),
        steps,
        lambda obs, info: int(next(u) * info["action_mask"].tolist().count(True)),
        seed=seed,
    )


def bench_vector_env(n_envs: int = 1024, steps: int = 200, repeats: int = 5) -> dict[str, Any]:
    """Native labs vector env vs CartPole's native vector env (same ``N``) vs the single env.

    Rounds alternate between the envs; ratios are taken per round and summarised by median
    and range, on wall-clock rates and on process-CPU-time rates (the latter leave out the time
    other jobs on a shared machine take, which the wall-clock ratio absorbs unevenly). The labs
    env is measured without episode logs (``episode_log=False``, what training uses; the ratio
    targets refer to it) and with them (the default).
    """
    labs_log = ConcurrentLabsVectorEnv(n_envs)
    labs = ConcurrentLabsVectorEnv(n_envs, episode_log=False)
    cart = gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="vector_entry_point")
    rows, cpu_ratio = [], []
    for r in range(repeats):
        labs_wall, labs_cpu = _vector_rates(labs, steps, True, seed=r)
        labs_log_wall = _vector_rate(labs_log, steps, True, seed=r)
        cart_wall, cart_cpu = _vector_rates(cart, steps, False, seed=r)
        rows.append(
            {
                "labs": labs_wall,
                "labs_log": labs_log_wall,
                "cartpole": cart_wall,
                "single": _single_rate(steps * 20, seed=r),
            }
        )
        cpu_ratio.append(labs_cpu / cart_cpu)
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    ratio = [row["labs"] / row["cartpole"] for row in rows]
    ratio_log = [row["labs_log"] / row["cartpole"] for row in rows]
    vs_single = [row["labs"] / row["single"] for row in rows]
    return {
        "n_envs": n_envs,
        "labs_steps_per_s": med["labs"],
        "labs_log_steps_per_s": med["labs_log"],
        "cartpole_steps_per_s": med["cartpole"],
        "single_steps_per_s": med["single"],
        "ratio_cartpole": statistics.median(ratio),
        "ratio_cartpole_range": (min(ratio), max(ratio)),
        "ratio_cartpole_cpu": statistics.median(cpu_ratio),
        "ratio_cartpole_cpu_range": (min(cpu_ratio), max(cpu_ratio)),
        "ratio_cartpole_with_log": statistics.median(ratio_log),
        "ratio_single": statistics.median(vs_single),
        "ratio_single_range": (min(vs_single), max(vs_single)),
    }


def bench_vector_memory(n_envs: int = 16_384, steps: int = 50) -> dict[str, float]:
    """Peak memory (NumPy allocations, ``tracemalloc``) of ``n_envs`` envs of the paper's setting
    over construction, reset and ``steps`` steps."""
    gc.collect()
    tracemalloc.start()
    env = ConcurrentLabsVectorEnv(n_envs, LabSpec())
    _vector_rate(env, steps, True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del env
    return {"n_envs": n_envs, "peak_mib": peak / 2**20}


#: The configuration that trained the shipped models/maskable_ppo_h* (their hyperparams.yml): the
#: default of ``labsched train`` before the native vector env.
FORMER_DEFAULT: dict[str, Any] = {
    "n_envs": 8,
    "vec_env": "dummy",
    "policy": "MlpPolicy",
    "features": True,
    "normalize": True,
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 10,
    "gamma": 1.0,
    "gae_lambda": 0.95,
    "learning_rate": "lin_3e-4",
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "policy_kwargs": {"net_arch": [128, 128], "activation_fn": "Tanh"},
}


def _learn_rate(params: dict[str, Any], spec: LabSpec, min_steps: int, seed: int) -> float:
    """Env-steps/s of ``model.learn`` (rollouts and updates, whole rollouts only) for ``params``;
    building the env and the model is not timed."""
    info = algorithm_info("maskable_ppo")
    n_envs = int(params.get("n_envs", 1))
    env = params_vec_env(spec, params, seed, vec_env=params.get("vec_env", "native"))
    model = info.load_class()("MlpPolicy", env, seed=seed, device="cpu", **model_kwargs(params))
    rollout = n_envs * int(params.get("n_steps", 1))
    n = rollout * max(2, -(-min_steps // rollout))  # at least two whole rollouts
    t0 = time.perf_counter()
    model.learn(n)
    rate = model.num_timesteps / (time.perf_counter() - t0)
    env.close()
    return rate


def bench_training(
    native_steps: int = 60_000, former_steps: int = 16_384, rounds: int = 2, seed: int = 0
) -> dict[str, Any]:
    """MaskablePPO env-steps/s of the full learn loop (rollouts and updates) with the shipped
    hyperparameters (the native vector env) and with the former default (8 single envs in
    ``DummyVecEnv``, 256 steps, batch 256, 10 epochs, 128x128 tanh, features), in one process with
    one torch thread. Rounds alternate which side runs first; the ratio is taken per round.

    Args:
        native_steps: env steps per native run (at least two whole rollouts).
        former_steps: env steps per former-default run (at least two whole rollouts).
        rounds: alternating rounds.
        seed: seed of every run.
    """
    torch_threads(1)
    info = algorithm_info("maskable_ppo")
    spec = LabSpec()
    sides = {
        "native": (load_hyperparams(info.name, spec), native_steps),
        "former": (validate_hyperparams(info, FORMER_DEFAULT), former_steps),
    }
    rates: dict[str, list[float]] = {"native": [], "former": []}
    for r in range(rounds):
        for label in ("native", "former") if r % 2 == 0 else ("former", "native"):
            params, steps = sides[label]
            rates[label].append(_learn_rate(params, spec, steps, seed))
    ratios = [a / b for a, b in zip(rates["native"], rates["former"], strict=True)]
    native = sides["native"][0]
    return {
        "native_steps_per_s": statistics.median(rates["native"]),
        "former_steps_per_s": statistics.median(rates["former"]),
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "rounds": rounds,
        "native_config": {k: native.get(k) for k in ("n_envs", "n_steps", "batch_size", "n_epochs")},
    }


def print_vector_benchmarks(training: bool = True, repeats: int = 5) -> dict[str, Any]:
    """Run and print the vector-env benchmarks; returns the figures."""
    out: dict[str, Any] = {}
    v = bench_vector_env(repeats=repeats)
    print(
        f"vector env, N={v['n_envs']}, random valid actions: labs {v['labs_steps_per_s']:,.0f} env-steps/s "
        f"(with episode logs {v['labs_log_steps_per_s']:,.0f}), CartPole-v1 vector "
        f"{v['cartpole_steps_per_s']:,.0f}, single labs env {v['single_steps_per_s']:,.0f} (medians of "
        f"{repeats} alternating rounds); ratio to CartPole per round: median {v['ratio_cartpole']:.2f}, "
        f"range {v['ratio_cartpole_range'][0]:.2f}-{v['ratio_cartpole_range'][1]:.2f}, on process CPU "
        f"time median {v['ratio_cartpole_cpu']:.2f}, range {v['ratio_cartpole_cpu_range'][0]:.2f}-"
        f"{v['ratio_cartpole_cpu_range'][1]:.2f} (with logs {v['ratio_cartpole_with_log']:.2f}; "
        f"target >= 0.5); to the single env {v['ratio_single']:.1f}x "
        f"(range {v['ratio_single_range'][0]:.1f}-{v['ratio_single_range'][1]:.1f}; target >= 10)"
    )
    out["vector"] = v
    m = bench_vector_memory()
    print(
        f"vector env memory, N={m['n_envs']:,} envs of the paper's setting: peak {m['peak_mib']:.0f} MiB "
        "(target < 1024)"
    )
    out["memory"] = m
    if training:
        t = bench_training()
        c = t["native_config"]
        print(
            f"MaskablePPO training (full learn loop, 1 torch thread): native vector env, shipped "
            f"hyperparameters (n_envs {c['n_envs']}, n_steps {c['n_steps']}, batch {c['batch_size']}, "
            f"{c['n_epochs']} epochs) {t['native_steps_per_s']:,.0f} steps/s, former default (8 single "
            f"envs, DummyVecEnv) {t['former_steps_per_s']:,.0f} steps/s; ratio per round: median "
            f"{t['ratio']:.1f}x, range {t['ratio_range'][0]:.1f}-{t['ratio_range'][1]:.1f}x over "
            f"{t['rounds']} rounds (target >= 20x)"
        )
        out["training"] = t
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m labsched.evaluation.vector_benchmark [--repeats R] [--no-training]``: the
    vector-env part of ``labsched benchmark`` alone."""
    parser = argparse.ArgumentParser(
        prog="python -m labsched.evaluation.vector_benchmark", description=__doc__
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--no-training", action="store_true", help="skip the training comparison")
    args = parser.parse_args(argv)
    return print_vector_benchmarks(training=not args.no_training, repeats=args.repeats)


if __name__ == "__main__":  # pragma: no cover - command-line entry
    main()
