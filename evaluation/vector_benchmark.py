"""Speed of the native vector environment and of training on it, beside references run in the
same process: Gymnasium's native ``CartPole-v1`` vector env, the single labs env, and the former
default training setup (8 single envs in SB3's ``DummyVecEnv``)."""

from __future__ import annotations

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
from labsched.agents.envs import make_vec
from labsched.envs._lib.threads import torch_threads
from labsched.envs.labs.spec import LabSpec
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

__all__ = [
    "bench_training",
    "bench_vector_env",
    "bench_vector_memory",
    "print_vector_benchmarks",
    "steps_per_second",
]


def _vector_rate(env: Any, steps: int, masked: bool, seed: int = 0) -> float:
    """Env-steps/s of ``steps`` batch steps with random (valid, when ``masked``) actions."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = env.num_envs
    high = int(env.single_action_space.n)
    draws = rng.integers(0, high, size=(steps, n))
    t0 = time.perf_counter()
    for i in range(steps):
        a = draws[i]
        if masked:
            a = np.minimum(a, env.action_masks().sum(axis=1) - 1)
        env.step(a)
    return steps * n / (time.perf_counter() - t0)


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
    and range. The labs env is measured with its episode logs (default) and without
    (``episode_log=False``, what training uses).
    """
    labs_log = ConcurrentLabsVectorEnv(n_envs)
    labs = ConcurrentLabsVectorEnv(n_envs, episode_log=False)
    cart = gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="vector_entry_point")
    rows = []
    for r in range(repeats):
        rows.append(
            {
                "labs": _vector_rate(labs, steps, True, seed=r),
                "labs_log": _vector_rate(labs_log, steps, True, seed=r),
                "cartpole": _vector_rate(cart, steps, False, seed=r),
                "single": _single_rate(steps * 20, seed=r),
            }
        )
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


def bench_training(steps: int = 60_000, seed: int = 0) -> dict[str, float]:
    """MaskablePPO env-steps/s with the shipped hyperparameters on the native vector env, and with
    the former default (8 single envs in ``DummyVecEnv``, 256 steps, batch 256, 10 epochs,
    128x128 tanh, features), in one process (one torch thread)."""
    torch_threads(1)
    info = algorithm_info("maskable_ppo")
    spec = LabSpec()
    # The configuration that trained the shipped models/maskable_ppo_h* (their hyperparams.yml).
    former = {
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
    rates = {}
    configs = (
        ("native", load_hyperparams(info.name, spec)),
        ("former_default", validate_hyperparams(info, former)),
    )
    for label, params in configs:
        env = make_vec(
            spec,
            int(params.get("n_envs", 1)),
            seed,
            features=bool(params.get("features", False)),
            normalize=params.get("normalize", False),
            env_kwargs=params.get("env_kwargs"),
            vec_env=params.get("vec_env", "native"),
        )
        model = info.load_class()("MlpPolicy", env, seed=seed, device="cpu", **model_kwargs(params))
        n = max(steps, int(params.get("n_envs", 1)) * int(params.get("n_steps", 1)))
        t0 = time.perf_counter()
        model.learn(n)
        rates[label] = model.num_timesteps / (time.perf_counter() - t0)
        env.close()
    return {
        "native_steps_per_s": rates["native"],
        "former_steps_per_s": rates["former_default"],
        "ratio": rates["native"] / rates["former_default"],
    }


def print_vector_benchmarks(training: bool = True) -> dict[str, Any]:
    """Run and print the vector-env benchmarks; returns the figures."""
    out: dict[str, Any] = {}
    v = bench_vector_env()
    print(
        f"vector env, N={v['n_envs']}, random valid actions: labs {v['labs_steps_per_s']:,.0f} env-steps/s "
        f"(with episode logs {v['labs_log_steps_per_s']:,.0f}), CartPole-v1 vector "
        f"{v['cartpole_steps_per_s']:,.0f}, single labs env {v['single_steps_per_s']:,.0f}; "
        f"ratio to CartPole {v['ratio_cartpole']:.2f} (range {v['ratio_cartpole_range'][0]:.2f}-"
        f"{v['ratio_cartpole_range'][1]:.2f}; with logs {v['ratio_cartpole_with_log']:.2f}), "
        f"to the single env {v['ratio_single']:.1f}x "
        f"(range {v['ratio_single_range'][0]:.1f}-{v['ratio_single_range'][1]:.1f})"
    )
    out["vector"] = v
    m = bench_vector_memory()
    print(f"vector env memory, N={m['n_envs']:,} envs of the paper's setting: peak {m['peak_mib']:.0f} MiB")
    out["memory"] = m
    if training:
        t = bench_training()
        print(
            f"MaskablePPO training: native vector env {t['native_steps_per_s']:,.0f} steps/s, former default "
            f"(8 single envs) {t['former_steps_per_s']:,.0f} steps/s: ratio {t['ratio']:.1f}x"
        )
        out["training"] = t
    return out
