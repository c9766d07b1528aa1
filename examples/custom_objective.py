"""A custom objective in regret mode: schedule the experiments of a Bayesian optimisation.

    python examples/custom_objective.py                  # 20 episodes per scheduler
    python examples/custom_objective.py --episodes 2     # a quick check

An :class:`~labsched.envs.bo.objectives.Objective` names a function, its box, its maximum and
(for the record) its formula. With ``reward="regret"`` the environment runs the Bayesian
optimisation the schedule drives (a GP, a batch selector) and reports at the end the regret:
the optimum minus the true value at the best observed input.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import labsched  # noqa: F401  (registers labsched/ConcurrentLabs-v0)
from labsched.baselines import make
from labsched.envs.bo.objectives import Objective
from labsched.evaluation.rollout import play_episode


def bump(x: np.ndarray) -> np.ndarray:
    """A smooth bump with its maximum 1 at (0.3, 0.7), evaluated on rows of ``x``."""
    x = np.atleast_2d(x)
    return np.exp(-8.0 * ((x[:, 0] - 0.3) ** 2 + (x[:, 1] - 0.7) ** 2))


BUMP = Objective(
    name="bump",
    dim=2,
    bounds=((0.0, 1.0), (0.0, 1.0)),
    optimum_value=1.0,
    optimizer=(0.3, 0.7),
    formula="exp(-8 ((x1 - 0.3)^2 + (x2 - 0.7)^2))",
    notes="A smooth single-peaked test function (examples/custom_objective.py).",
    fn=bump,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="episodes per scheduler (default 20)")
    args = parser.parse_args(argv)

    env = gym.make("labsched/ConcurrentLabs-v0", reward="regret", objective=BUMP, selector="kb-ei")
    spec = env.unwrapped.lab_spec
    print("| scheduler | mean regret | mean CPE |")
    print("|---|---|---|")
    for name in ("sequential", "onfcp", "ps"):
        policy = make(name, spec, seed=0)
        infos = [play_episode(policy, env, seed=s).info for s in range(args.episodes)]
        regret = np.mean([i["regret"] for i in infos])
        cpe = np.mean([i["cpe"] for i in infos])
        print(f"| {name} | {regret:.4f} | {cpe:.1f} |")
    env.close()


if __name__ == "__main__":
    main()
