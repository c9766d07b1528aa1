"""Speed benchmarks, each reported beside a reference measured in the same process.

Run ``python -m labsched.evaluation.benchmark`` (or ``labsched benchmark``). It prints:

* environment steps per second through ``gymnasium.make`` with random valid actions, resets
  included, beside Gymnasium's ``CartPole-v1`` measured the same way, and their ratio;
* the same for the raw (unwrapped) environments;
* episodes per second of the batched NumPy simulator for 10,000 episodes of "keep k labs
  busy", beside a Python loop over episodes of the environment itself;
* the native vector environment (N = 1,024) beside Gymnasium's native CartPole vector env and
  the single env (ratios on wall-clock and on process CPU time), its memory at N = 16,384, and
  MaskablePPO training steps/s (the full learn loop) with the shipped hyperparameters on it
  beside the former default (8 single envs in ``DummyVecEnv``), with issue 11's targets
  (:mod:`labsched.evaluation.vector_benchmark`, which runs this part alone);
* decision and episode times of policy switching;
* regret mode: GP update + SelectBatch time per started experiment for each selector at d = 3
  and d = 6, and the time of a whole regret-mode episode.

With ``--scale`` it runs the scale benchmark instead (:mod:`labsched.evaluation.scale_benchmark`):
time per decision and per episode and peak memory of the environment and every baseline over
n x l x epoch, one process per cell, with a time budget per cell.

Figures vary with the machine's load; the ratios are the stable part.
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import gymnasium as gym
import numpy as np

from labsched._registration import CONCURRENT_LABS_ID
from labsched.baselines.labs.synthetic import KeepBusy
from labsched.baselines.registry import make
from labsched.envs._lib.rollout import Predictor, play_episode
from labsched.envs.bo.objectives import make_objective
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.scale_benchmark import add_scale_arguments, run_scale_from_args
from labsched.evaluation.vector_benchmark import print_vector_benchmarks, steps_per_second

__all__ = [
    "add_benchmark_arguments",
    "bench_batched",
    "bench_env_steps",
    "bench_regret",
    "main",
    "run_benchmarks",
]


def bench_env_steps(n_steps: int = 20_000, repeats: int = 7, wrapped: bool = True) -> dict[str, Any]:
    """Steps per second of ConcurrentLabs-v0 and CartPole-v1, random valid actions.

    Random numbers for the actions are drawn in advance so both envs pay the same small cost
    per step for choosing an action (one list index and one multiply). Rounds alternate between
    the two envs so that load from other processes hits both alike; each round gives one ratio.

    Returns:
        ``labs_steps_per_s`` and ``cartpole_steps_per_s`` (medians over the rounds), ``ratio``
        (median of the per-round ratios), ``ratio_min``, ``ratio_max`` and ``ratios`` (per round).
    """
    rng = np.random.default_rng(0)
    u = rng.random(n_steps + 1).tolist()
    counter = iter(range(10**12))

    def labs_action(obs: Any, info: dict) -> int:
        n_valid = info["action_mask"].tolist().count(True)
        return int(u[next(counter) % n_steps] * n_valid)

    def cart_action(obs: Any, info: dict) -> int:
        return int(u[next(counter) % n_steps] * 2)

    labs = gym.make(CONCURRENT_LABS_ID)
    cart = gym.make("CartPole-v1")
    if not wrapped:
        labs, cart = labs.unwrapped, cart.unwrapped
    rates_labs, rates_cart, ratios = [], [], []
    for _ in range(repeats):
        r_labs = steps_per_second(labs, n_steps, labs_action)
        r_cart = steps_per_second(cart, n_steps, cart_action)
        rates_labs.append(r_labs)
        rates_cart.append(r_cart)
        ratios.append(r_labs / r_cart)
    return {
        "labs_steps_per_s": statistics.median(rates_labs),
        "cartpole_steps_per_s": statistics.median(rates_cart),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratios": ratios,
    }


def _python_loop_keep_busy(spec: LabSpec, k: int, n_episodes: int, seed: int) -> np.ndarray:
    """CPE of ``n_episodes`` env episodes of keep-``k``-busy: the reference the batch path must beat."""
    env = ConcurrentLabsEnv(spec)
    policy = KeepBusy(spec, min(k, spec.n_labs))
    return np.array([play_episode(policy, env, seed + ep).info["cpe"] for ep in range(n_episodes)], float)


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


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``labsched benchmark`` (shared by the CLI and ``python -m``)."""
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per round (default 20000)")
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds per env (default 7)")
    parser.add_argument(
        "--episodes", type=int, default=10_000, help="batched-simulator episodes (default 10000)"
    )
    parser.add_argument(
        "--no-training",
        action="store_true",
        help="skip the training-throughput comparison (one to three minutes; needs the rl extra)",
    )
    return add_scale_arguments(parser)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def run_benchmarks(
    steps: int = 20_000, repeats: int = 7, episodes: int = 10_000, training: bool = True
) -> dict[str, Any]:
    """Run the benchmarks and print a report; returns the figures."""
    report: dict[str, Any] = {}
    print(f"labsched {_version('labsched')}, gymnasium {gym.__version__}, numpy {np.__version__}")
    for wrapped in (True, False):
        r = bench_env_steps(steps, repeats, wrapped)
        label = "gymnasium.make (default wrappers)" if wrapped else "unwrapped"
        print(
            f"env steps/s, {label:34s}: ConcurrentLabs-v0 {r['labs_steps_per_s']:>9,.0f}   "
            f"CartPole-v1 {r['cartpole_steps_per_s']:>9,.0f}   (medians of {repeats} alternating rounds); "
            f"ratio per round: median {r['ratio']:.2f}, range {r['ratio_min']:.2f}-{r['ratio_max']:.2f}"
        )
        report["wrapped" if wrapped else "unwrapped"] = r
    b = bench_batched(episodes)
    print(
        f"batched keep-10-busy, {episodes:,} episodes: {1e3 * b['batched_seconds']:.1f} ms "
        f"({b['batched_episodes_per_s']:,.0f} episodes/s); Python loop of env episodes "
        f"{b['loop_episodes_per_s']:,.0f} episodes/s; speed-up {b['speedup']:.0f}x"
    )
    report["batched"] = b
    report.update(print_vector_benchmarks(training=training))
    report.update(_bench_baselines())
    report["regret"] = bench_regret()
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m labsched.evaluation.benchmark [--steps N] [--repeats R] [--episodes E]``."""
    parser = add_benchmark_arguments(argparse.ArgumentParser(prog="labsched benchmark", description=__doc__))
    args = parser.parse_args(argv)
    if args.scale:
        return {"scale": run_scale_from_args(args)}
    return run_benchmarks(args.steps, args.repeats, args.episodes, training=not args.no_training)


class _TimedPredictor:
    """A predictor that records the wall time of every ``predict`` call."""

    def __init__(self, policy: Predictor) -> None:
        self.policy = policy
        self.times: list[float] = []

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ):
        t0 = time.perf_counter()
        out = self.policy.predict(observation, state, episode_start, deterministic)
        self.times.append(time.perf_counter() - t0)
        return out


def _bench_baselines() -> dict[str, Any]:
    """Decision and episode times of policy switching."""
    out: dict[str, Any] = {}
    spec = LabSpec()
    env = gym.make(CONCURRENT_LABS_ID, spec=spec)
    policy = _TimedPredictor(make("ps", spec, seed=0))
    episode_times = []
    for ep in range(10):
        t_ep = time.perf_counter()
        play_episode(policy, env, ep)
        episode_times.append(time.perf_counter() - t_ep)
    dt = np.array(policy.times) * 1e3
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
    out: dict[str, Any] = {}
    spec = LabSpec()
    agent = make("onfcp", spec)
    base_env = ConcurrentLabsEnv(spec)

    def episode(env: Any, seed: int) -> float:
        t0 = time.perf_counter()
        play_episode(agent, env, seed)
        return time.perf_counter() - t0

    t_base = min(episode(base_env, s) for s in range(repeats))
    for objective in ("cosines", "hartmann6"):
        for selector in ("kb-ei", "simulation-matching", "thompson", "random"):
            env = ConcurrentLabsEnv(spec, reward="regret", objective=objective, selector=selector)
            t_ep = statistics.median(episode(env, s) for s in range(repeats))
            per = (t_ep - t_base) / spec.n_experiments
            out[(objective, selector)] = {"episode_s": t_ep, "per_experiment_ms": 1e3 * per}
            print(
                f"regret mode {objective:<9} (d={make_objective(objective).dim}) {selector:<20}: "
                f"episode {t_ep:6.3f} s, "
                f"GP update + SelectBatch {1e3 * per:6.2f} ms per started experiment"
            )
    return out


if __name__ == "__main__":
    main()
