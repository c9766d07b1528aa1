"""Policy switching with and without racing on the same episodes (docs/results/scale/README.md).

Usage: ``python docs/results/scale/ps_racing.py N_EXPERIMENTS N_LABS EPOCH EPISODES``. Prints, per
variant, the mean CPE and the slowest decision of each episode (process CPU time: median and
maximum over episodes), then the paired CPE difference racing - plain.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec


def run(spec: LabSpec, episodes: int, **options: object) -> tuple[np.ndarray, np.ndarray]:
    """CPE and slowest decision (seconds of CPU) of each episode."""
    cpes, slowest = [], []
    for ep in range(episodes):
        env = ConcurrentLabsEnv(spec)
        policy = PolicySwitching(spec, seed=ep, **options)
        obs, info = env.reset(seed=1000 + ep)
        done, worst = False, 0.0
        while not done:
            t0 = time.process_time()
            action, _ = policy.predict(obs)
            worst = max(worst, time.process_time() - t0)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        cpes.append(info["cpe"])
        slowest.append(worst)
    return np.array(cpes, dtype=float), np.array(slowest)


def main() -> None:
    n, labs, epoch, episodes = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    spec = LabSpec(n_experiments=n, n_labs=labs, horizon=5.0, epoch=epoch)
    cpe = {}
    for name, options in (("racing", {}), ("plain", {"race_above": None})):
        cpe[name], slowest = run(spec, episodes, **options)
        print(
            f"{name:7s} mean CPE {cpe[name].mean():.2f}; slowest decision per episode: "
            f"median {1000 * np.median(slowest):.0f} ms, max {1000 * slowest.max():.0f} ms",
            flush=True,
        )
    d = cpe["racing"] - cpe["plain"]
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    print(f"racing - plain: {d.mean():+.2f} (se {se:.2f}), {int((d != 0).sum())} of {d.size} episodes differ")


if __name__ == "__main__":
    main()
