"""Speed benchmarks, each reported beside a reference measured in the same process.

Run ``python -m labsched.evaluation.benchmark`` (or ``labsched benchmark``). It prints:

* environment steps per second through ``gymnasium.make`` with random valid actions, resets
  included, beside Gymnasium's ``CartPole-v1`` measured the same way, and their ratio;
* the same for the raw (unwrapped) environments;
* episodes per second of the batched NumPy simulator for 10,000 episodes of "keep k labs
  busy", beside a Python loop over episodes of the environment itself;
* decision and episode times of policy switching;
* regret mode: GP update + SelectBatch time per started experiment for each selector at d = 3
  and d = 6, and the time of a whole regret-mode episode.

Figures vary with the machine's load; the ratios are the stable part.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import labsched
from labsched.envs.batched import simulate_keep_busy
from labsched.envs.spec import LabSpec

__all__ = ["bench_batched", "bench_env_steps", "bench_regret", "main"]


def _steps_per_second(env: gym.Env, n_steps: int, choose: Callable[[Any, dict], int], seed: int = 0) -> float:
    obs, info = env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        obs, _, terminated, truncated, info = env.step(choose(obs, info))
        if terminated or truncated:
            obs, info = env.reset()
    return n_steps / (time.perf_counter() - t0)


def bench_env_steps(n_steps: int = 20_000, repeats: int = 7, wrapped: bool = True) -> dict[str, float]:
    """Steps per second of ConcurrentLabs-v0 and CartPole-v1, random valid actions.

    Random numbers for the actions are drawn in advance so both envs pay the same small cost
    per step for choosing an action (one list index and one multiply).
    """
    rng = np.random.default_rng(0)
    u = rng.random(n_steps + 1).tolist()
    counter = iter(range(10**12))

    def labs_action(obs: Any, info: dict) -> int:
        n_valid = info["action_mask"].tolist().count(True)
        return int(u[next(counter) % n_steps] * n_valid)

    def cart_action(obs: Any, info: dict) -> int:
        return int(u[next(counter) % n_steps] * 2)

    labs = gym.make(labsched.CONCURRENT_LABS_ID)
    cart = gym.make("CartPole-v1")
    if not wrapped:
        labs, cart = labs.unwrapped, cart.unwrapped
    # Rounds alternate between the two envs so that load from other processes hits both alike;
    # the best rate of each and the median of the per-round ratios are reported.
    rates_labs, rates_cart, ratios = [], [], []
    for _ in range(repeats):
        r_labs = _steps_per_second(labs, n_steps, labs_action)
        r_cart = _steps_per_second(cart, n_steps, cart_action)
        rates_labs.append(r_labs)
        rates_cart.append(r_cart)
        ratios.append(r_labs / r_cart)
    return {
        "labs_steps_per_s": max(rates_labs),
        "cartpole_steps_per_s": max(rates_cart),
        "ratio": statistics.median(ratios),
    }


def _python_loop_keep_busy(spec: LabSpec, k: int, n_episodes: int, seed: int) -> np.ndarray:
    env = labsched.ConcurrentLabsEnv(spec)
    out = np.empty(n_episodes)
    for ep in range(n_episodes):
        env.reset(seed=seed + ep)
        while True:
            busy = env._n_running  # a Python-level loop: the reference the batch path must beat
            a = min(k - busy, env._max_valid())
            _, _, terminated, _, info = env.step(max(a, 0))
            if terminated:
                break
        out[ep] = info["cpe"]
    return out


def bench_batched(n_episodes: int = 10_000, k: int = 10, repeats: int = 5) -> dict[str, float]:
    """Batched simulator vs a Python loop of env episodes, "keep k labs busy"."""
    spec = LabSpec()
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate_keep_busy(spec, k, n_episodes, rng)
        times.append(time.perf_counter() - t0)
    t_batch = min(times)
    n_loop = max(n_episodes // 20, 50)
    t0 = time.perf_counter()
    _python_loop_keep_busy(spec, k, n_loop, 0)
    t_loop = (time.perf_counter() - t0) * n_episodes / n_loop
    return {
        "batched_seconds": t_batch,
        "batched_episodes_per_s": n_episodes / t_batch,
        "loop_episodes_per_s": n_episodes / t_loop,
        "speedup": t_loop / t_batch,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks and print a report."""
    parser = argparse.ArgumentParser(prog="labsched benchmark", description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per round")
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds per env")
    parser.add_argument("--episodes", type=int, default=10_000, help="batched-simulator episodes")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {}
    print(f"labsched {labsched.__version__}, gymnasium {gym.__version__}, numpy {np.__version__}")
    for wrapped in (True, False):
        r = bench_env_steps(args.steps, args.repeats, wrapped)
        label = "gymnasium.make (default wrappers)" if wrapped else "unwrapped"
        print(
            f"env steps/s, {label:34s}: ConcurrentLabs-v0 {r['labs_steps_per_s']:>9,.0f}   "
            f"CartPole-v1 {r['cartpole_steps_per_s']:>9,.0f}   ratio {r['ratio']:.2f} (median of rounds)"
        )
        report["wrapped" if wrapped else "unwrapped"] = r
    b = bench_batched(args.episodes)
    print(
        f"batched keep-10-busy, {args.episodes:,} episodes: {1e3 * b['batched_seconds']:.1f} ms "
        f"({b['batched_episodes_per_s']:,.0f} episodes/s); Python loop of env episodes "
        f"{b['loop_episodes_per_s']:,.0f} episodes/s; speed-up {b['speedup']:.0f}x"
    )
    report["batched"] = b
    report.update(_bench_baselines())
    report["regret"] = bench_regret()
    return report


def _bench_baselines() -> dict[str, Any]:
    """Decision and episode times of policy switching, and the full CPE-table budget."""
    from labsched import baselines

    out: dict[str, Any] = {}
    spec = LabSpec()
    env = gym.make(labsched.CONCURRENT_LABS_ID, spec=spec)
    policy = baselines.make("ps", spec, seed=0)
    decision_times, episode_times = [], []
    for ep in range(10):
        obs, _ = env.reset(seed=ep)
        t_ep = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            action, _ = policy.predict(obs)
            decision_times.append(time.perf_counter() - t0)
            obs, _, terminated, _, _ = env.step(action)
            if terminated:
                break
        episode_times.append(time.perf_counter() - t_ep)
    dt = np.array(decision_times) * 1e3
    out["ps"] = {
        "median_decision_ms": float(np.median(dt)),
        "p90_decision_ms": float(np.percentile(dt, 90)),
        "max_decision_ms": float(dt.max()),
        "median_episode_s": statistics.median(episode_times),
    }
    print(
        f"policy switching (paper setting, h=5, 200 simulations/policy): decision median "
        f"{out['ps']['median_decision_ms']:.2f} ms, p90 {out['ps']['p90_decision_ms']:.2f} ms, "
        f"max {out['ps']['max_decision_ms']:.1f} ms; episode median {out['ps']['median_episode_s']:.3f} s"
    )
    return out


def bench_regret(repeats: int = 3) -> dict[str, Any]:
    """Regret mode: GP update + SelectBatch time per started experiment, and episode time.

    Each selector drives OnFCP on the paper's setting (20 experiments, 10 labs) on Cosines
    (d = 2, 5 initial points) and Hartmann-6 (d = 6, 20 initial points); the time per started
    experiment is the episode's wall time minus a CPE-mode episode, divided by 20.
    """
    from labsched import baselines

    out: dict[str, Any] = {}
    spec = LabSpec()
    agent = baselines.make("onfcp", spec)
    base_env = labsched.ConcurrentLabsEnv(spec)

    def episode(env: Any, seed: int) -> float:
        t0 = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            action, _ = agent.predict(obs)
            obs, _, done, _, _ = env.step(action)
        return time.perf_counter() - t0

    t_base = min(episode(base_env, s) for s in range(repeats))
    for objective in ("cosines", "hartmann6"):
        for selector in ("kb-ei", "simulation-matching", "thompson", "random"):
            env = labsched.ConcurrentLabsEnv(spec, reward="regret", objective=objective, selector=selector)
            t_ep = statistics.median(episode(env, s) for s in range(repeats))
            per = (t_ep - t_base) / spec.n_experiments
            out[(objective, selector)] = {"episode_s": t_ep, "per_experiment_ms": 1e3 * per}
            print(
                f"regret mode {objective:<9} (d={env._bo.objective.dim}) {selector:<20}: "
                f"episode {t_ep:6.3f} s, "
                f"GP update + SelectBatch {1e3 * per:6.2f} ms per started experiment"
            )
    return out


if __name__ == "__main__":
    main()
