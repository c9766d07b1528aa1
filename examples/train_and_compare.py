"""Train a MaskablePPO scheduler on the native vector env, then compare it with policy switching.

    python examples/train_and_compare.py                     # about 3 minutes on one core
    python examples/train_and_compare.py --timesteps 4096 --episodes 10   # a quick check

The training uses labsched's tuned settings (``agents/hyperparams/maskable_ppo.yml``: the native
NumPy-batched vector env, features, observation normalisation); the run's folder (``--out``)
holds ``best_model.zip``, ``agent.json``, ``eval_log.csv`` and the normaliser's statistics.
``labsched.agents.compare`` then plays the saved agent and PS on the same episode seeds.
"""

from __future__ import annotations

import argparse
import tempfile

from labsched import LabSpec
from labsched.agents import compare, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=500_000, help="training env steps (default 500000)")
    parser.add_argument("--episodes", type=int, default=200, help="comparison episodes (default 200)")
    parser.add_argument("--n-envs", type=int, default=64, help="sub-environments of the vector env")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args(argv)

    spec = LabSpec(n_experiments=20, n_labs=10, horizon=5.0)  # the paper's setting
    out = args.out or tempfile.mkdtemp(prefix="labsched-example-")
    steps = min(128, max(args.timesteps // args.n_envs, 8))  # rollout length per sub-env
    result = train(
        "maskable_ppo",
        spec,
        total_timesteps=args.timesteps,
        hyperparams={"n_envs": args.n_envs, "n_steps": steps, "batch_size": min(2048, args.n_envs * steps)},
        vec_env="native",
        out=out,
        eval_freq=0,  # evaluate at the start and the end only
        eval_episodes=20,
        progress_bar=False,
        tensorboard=False,
        plot=False,
        verbose=0,
    )
    print(f"trained for {args.timesteps} steps, saved in {result.out}")

    rows = compare([str(result.out), "ps"], spec, episodes=args.episodes, seed=0, progress=False)
    print("| scheduler | mean CPE | 95% CI | completion | p-safe |")
    print("|---|---|---|---|---|")
    for r in rows:
        name = "trained agent" if r.kind == "model" else r.scheduler
        print(
            f"| {name} | {r.mean_cpe:.1f} | [{r.cpe_low:.1f}, {r.cpe_high:.1f}] | "
            f"{r.completion_rate:.2f} | {r.p_safe} |"
        )


if __name__ == "__main__":
    main()
