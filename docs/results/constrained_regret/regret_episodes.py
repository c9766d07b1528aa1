"""Per-episode regret of one scheduler in regret mode (kb-ei), for paired comparisons.

Usage: python docs/results/constrained_regret/regret_episodes.py AGENT OBJECTIVE OUT.csv [EPISODES] [SEED] [H]

AGENT is a baseline name or a saved model; episodes use env seeds SEED, SEED + 1, ... (default
200000, 1,000 episodes) at the paper's setting with horizon H (default 5), so every scheduler run
with the same seed meets the same durations and observation noise: common random numbers.
"""

from __future__ import annotations

import csv
import sys
import time

from labsched import LabSpec
from labsched.agents.comparison import is_model_path
from labsched.agents.runner import RunTask, run_task


def main(argv: list[str]) -> None:
    agent, objective, out = argv[1], argv[2], argv[3]
    episodes = int(argv[4]) if len(argv) > 4 else 1000
    seed = int(argv[5]) if len(argv) > 5 else 200_000
    horizon = float(argv[6]) if len(argv) > 6 else 5.0
    spec = LabSpec(n_experiments=20, n_labs=10, horizon=horizon)
    kind = "model" if is_model_path(agent) else "baseline"
    task = RunTask(
        agent, spec, episodes, seed, kind=kind, env_kwargs={"objective": objective, "selector": "kb-ei"}
    )
    t0 = time.perf_counter()
    result = run_task(task)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "regret", "cpe", "completed"])
        for e in result.episodes:
            w.writerow([e.seed, repr(e.regret), e.cpe, e.completed])
    s = result.summary
    print(
        f"{agent} {objective}: regret {s.mean_regret:.4f} +- {s.se_regret:.4f}, CPE {s.mean_cpe:.1f}, "
        f"{episodes} episodes in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv)
