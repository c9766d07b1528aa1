"""A custom baseline scheduler: write ``act``, register it, and run it like the built-in ones.

    python examples/custom_baseline.py                 # 200 episodes per scheduler
    python examples/custom_baseline.py --episodes 10   # a quick check

``HalfFree`` starts experiments on half of the free labs (at least one) while the time left
covers ``margin`` mean durations, and on every free lab once time runs short. Registered with
:func:`labsched.baselines.register`, it is a name like ``"ps"``: ``labsched.baselines.make``,
``labsched.agents.compare`` and :func:`play_episode` accept it.
"""

from __future__ import annotations

import argparse
import math

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.agents import compare
from labsched.baselines import BaselinePolicy, LabState, make, register
from labsched.evaluation.rollout import play_episode


@register
class HalfFree(BaselinePolicy):
    """Start on half of the free labs while there is time, then on all of them."""

    name = "half-free"

    def __init__(self, spec: LabSpec, *, seed: int | None = None, margin: float = 2.0) -> None:
        super().__init__(spec, seed=seed)
        if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
            raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
        self.margin = float(margin)

    def act(self, state: LabState, memory: object) -> int:
        if state.free_labs == 0 or state.remaining == 0:
            return 0
        if state.remaining_time > self.margin * self.spec.duration.mean:
            return max(state.free_labs // 2, 1)
        return state.free_labs  # predict() clips to what is valid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per scheduler (default 200)")
    args = parser.parse_args(argv)
    spec = LabSpec()  # the paper's setting: n = 20, l = 10, h = 5

    # One episode, by hand: the policy's predict() has stable-baselines3's signature.
    policy = make("half-free", spec, margin=2.0)
    episode = play_episode(policy, ConcurrentLabsEnv(spec), seed=0)
    info = episode.info
    print(f"one episode: CPE {info['cpe']}, completed {info['completed']}/{spec.n_experiments}")

    # Many episodes, on the same seeds as policy switching and OnFCP.
    rows = compare(["half-free", "ps", "onfcp"], spec, episodes=args.episodes, progress=False)
    print("| scheduler | mean CPE | completion | p-safe |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r.scheduler} | {r.mean_cpe:.1f} | {r.completion_rate:.2f} | {r.p_safe} |")


if __name__ == "__main__":
    main()
