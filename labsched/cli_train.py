"""``labsched train``: train an RL scheduler (one seed or several, optionally under the chance
constraint), or only measure its training throughput."""

from __future__ import annotations

import argparse
from typing import Any

from labsched.agents.callbacks import CpuMinutes
from labsched.agents.config import ENV_ID, ENV_IDS, require_rl_extra
from labsched.agents.constrained import CONSTRAINT_KINDS, ConstraintConfig
from labsched.agents.multiseed import train_seeds
from labsched.agents.throughput import throughput_vs_cartpole
from labsched.agents.training import default_out_dir, train
from labsched.cli_common import (
    add_plot_choice,
    add_spec_args,
    backend_address,
    plot_wanted,
    spec_from,
)
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.backends import BACKENDS

__all__ = ["add_train_parser"]


def _seeds_backend(args: argparse.Namespace) -> tuple[str, str | None]:
    """The backend and cluster address of --backend and --address (only with --seeds)."""
    if args.seeds is None:
        if args.backend is not None or args.address is not None:
            raise ValueError("--backend and --address choose where --seeds run: give --seeds too")
        return "loky", None
    backend = args.backend or "loky"
    return backend, backend_address(argparse.Namespace(backend=backend, address=args.address))


def _env_spec_references(args: argparse.Namespace) -> tuple[LabSpec | None, list[str] | None]:
    """The spec and reference baselines of ``--env``: on labsched/Random-v0 no spec (spec options
    are refused) and no references unless named (they run on one spec, so naming them is an error)."""
    spec = spec_from(args)
    if args.env == ENV_ID:
        return spec, args.references
    if spec != LabSpec():
        raise ValueError(f"--env {args.env} draws a new spec every episode: drop the spec options")
    if args.throughput or args.constraint is not None or args.objective is not None:
        raise ValueError(f"--env {args.env} has no --throughput, --constraint or regret mode")
    return None, None if args.references == _DEFAULT_REFERENCES else args.references


def _cmd_train(args: argparse.Namespace) -> int:
    backend, address = _seeds_backend(args)
    require_rl_extra("training")
    spec, references = _env_spec_references(args)
    overrides = list(args.hyperparams or [])
    for key in ("features", "normalize"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={'true' if value else 'false'}")
    if args.n_envs is not None:
        overrides.append(f"n_envs={args.n_envs}")
    env_kwargs = _regret_env_kwargs(args)
    if args.throughput:
        if env_kwargs:
            raise ValueError(
                "--throughput measures CPE training on the native vector env; drop --objective, "
                "--selector, --reward and --reward-scale"
            )
        throughput_vs_cartpole(
            args.algo, spec, steps=args.throughput_steps, hyperparams=overrides, seed=args.seed
        )
        return 0
    constraint = None
    if args.constraint is not None:
        constraint = ConstraintConfig(
            args.constraint,
            target=args.target,
            lambda_lr=args.lambda_lr,
            lambda_init=args.lambda_init,
            lambda_kp=args.lambda_kp,
            mask_threshold=args.mask_threshold,
        )
    elif args.mask_threshold != _MASK_THRESHOLD or args.target is not None:
        raise ValueError(
            "--target and --mask-threshold need --constraint lagrangian, mask or lagrangian+mask"
        )
    common = dict(
        total_timesteps=args.total_timesteps,
        time_limit_minutes=args.time_limit_minutes
        if args.cpu_time_limit_minutes is None
        else CpuMinutes(args.cpu_time_limit_minutes),
        hyperparams_file=args.hyperparams_file,
        hyperparams=overrides,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        n_eval_envs=args.n_eval_envs,
        references=references,
        vec_env=args.vec_env,
        plot=plot_wanted(args),
        verbose=args.verbose,
        constraint=constraint,
        init_model=args.init_model,
        env_kwargs=env_kwargs or None,
        env_id=args.env,
    )
    if args.seeds is not None:
        out = args.out or str(default_out_dir(args.algo, spec, 0, args.env)).removesuffix("_s0") + "_seeds"
        train_seeds(
            args.seeds,
            out,
            n_jobs=args.jobs,
            backend=backend,
            address=address,
            algo=args.algo,
            spec=spec,
            **common,
        )
        return 0
    train(args.algo, spec, seed=args.seed, out=args.out, progress_bar=not args.no_progress, **common)
    return 0


def _regret_env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``env_kwargs`` of --objective, --selector, --reward and --reward-scale (checked by training)."""
    given = {
        "objective": args.objective,
        "selector": args.selector,
        "reward": args.reward,
        "reward_scale": args.reward_scale,
    }
    return {k: v for k, v in given.items() if v is not None}


_TRAIN_HELP = """Train an RL scheduler on labsched/ConcurrentLabs-v0 and save it, with its evaluation log.

Algorithms: maskable_ppo (default; sb3-contrib MaskablePPO with the env's action masks), ppo,
a2c, dqn (stable-baselines3; invalid actions are clipped by the env). Hyperparameters come from
agents/hyperparams/<algo>.yml (rl-baselines3-zoo style, keyed by env id or setting such as
"n=8,l=4,h=3"), or --hyperparams-file, with --hyperparams key=value overrides
(e.g. n_envs=8 learning_rate=lin_3e-4 gamma=0.999 "policy_kwargs=dict(net_arch=[64, 64])").

Observation (MlpPolicy; the shipped hyperparameter files turn features and normalize on):
  flat       the env's flat observation (flatten=True, length 2 l + 4), always used;
  features   --features / hyperparameter features=true: append features computed from the
             observation and the spec alone: free labs / l, time left in mean durations,
             (unstarted + running) / l, and the probability that everything still to do
             finishes by h if all free labs start now, or after waiting one decision interval;
  normalize  --normalize / normalize=true: VecNormalize of observations (saved with the model).
Reward: CPE / (n (n - 1) / 2) (normalize_reward=True). Evaluations report raw CPE on the same
seeded episodes each time; baselines given by --references are run on them for reference.
Regret mode (--objective cosines, hartmann3, ...; --selector kb-ei by default): the reward is 0
until the last step, which pays minus the regret of the Bayesian optimisation the schedule drives
(cosines: about 0.1-0.3 per episode, at most ~1, on the scale of the normalised CPE's 0-1;
--reward-scale multiplies it). --reward cpe keeps the CPE reward and logs the regret. Training
runs on --vec-env dummy (the native vector env has no regret mode); evaluations report raw CPE
and the mean regret on the same optimising episodes, and best_model.zip is the best by CPE
(model.zip is the final regret-trained model). --init-model fine-tunes a CPE-trained model.
Learning rates "lin_<x>" decay to 0 at the end of --total-timesteps or --time-limit-minutes
(--cpu-time-limit-minutes), whichever comes first.

Chance constraint P(all n complete by h) >= p (--constraint; labsched.agents.constrained):
  lagrangian       reward r - lambda * cost (cost 1 on the last step of an episode that did not
                   complete all n); after each rollout lambda <- max(0, lambda + lr (mean cost -
                   target)), target = allowed violation rate (--target, default 1 - p);
                   constraint_log.csv and the learning curve show lambda and completion rates;
  mask             actions whose estimated P(finish the budget) falls below --mask-threshold are
                   masked (training, evaluation, and whenever the saved model is compared);
  lagrangian+mask  both.
Several seeds: --seeds 0-4 trains them in parallel (--jobs workers, one torch thread each) into
<out>/seed<k> and writes seeds_summary.csv/.md (mean and spread of the final evaluation);
--backend dask or ray runs them on a cluster (--address, or a local one of --jobs workers).

Random-v0 (--env labsched/Random-v0): a new spec every episode (l 2-16, n l-4l, four duration
families, cv 0.1-0.6, tight to loose horizons, lab speeds and failures half of the time; labs
padded to 32, the spec's summary in the observation). Hyperparameters: the YAML's
labsched/Random-v0 entry (SB3 DummyVecEnv of 16 RandomSpecEnvs; no features; normalize).
Evaluations replay the same draws of that distribution (seeds seed + 10000 + i), never the
held-out specs. The saved agent acts on RandomSpecEnv observations of any spec, and on a
ConcurrentLabsEnv of a spec once bound to it (labsched compare RUN ps --n-labs 24 ...).
  labsched train --env labsched/Random-v0 --time-limit-minutes 30 --out runs/ppo_random

Output folder (--out, default runs/<algo>_n<n>_l<l>_h<h>_s<seed>; Random-v0: runs/<algo>_random_s<seed>):
model.zip, best_model.zip, agent.json (what load_agent needs), hyperparams.yml, eval_log.csv, evaluations.npz,
learning_curve.png, *_vecnormalize.npz, constraint_log.csv (constrained), tb/ (with tensorboard).
"""

_MASK_THRESHOLD = 0.9
_DEFAULT_REFERENCES = ["ps", "ofil", "onfcp"]


def _probability_arg(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in (0, 1), got {text!r}") from None
        if not 0.0 < value < 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in (0, 1) (exclusive), got {text}")
        return value

    return parse


def _nonnegative_arg(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number >= 0, got {text!r}") from None
        if not value >= 0.0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number >= 0, got {text}")
        return value

    return parse


def _positive_arg(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number > 0, got {text!r}") from None
        if not value > 0.0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number > 0, got {text}")
        return value

    return parse


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train an RL agent (MaskablePPO, PPO, A2C, DQN)",
        description=_TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_spec_args(p)
    p.add_argument(
        "--env",
        choices=list(ENV_IDS),
        default=ENV_ID,
        help=f"{ENV_ID} (default: the spec of the options above) or labsched/Random-v0 (a new random "
        "spec every episode, for an agent that generalises; see 'Random-v0' below)",
    )
    p.add_argument("--algo", default="maskable_ppo", help="maskable_ppo (default), ppo, a2c or dqn")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps (default: n_timesteps)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument(
        "--time-limit-minutes", type=float, default=None, help="stop after this wall-clock time"
    )
    limit.add_argument(
        "--cpu-time-limit-minutes",
        type=_positive_arg("--cpu-time-limit-minutes"),
        default=None,
        help="stop after this much CPU time of the training process (same budget whatever else runs)",
    )
    p.add_argument(
        "--hyperparams-file", default=None, help="YAML file (default: agents/hyperparams/<algo>.yml)"
    )
    p.add_argument(
        "--hyperparams", nargs="+", default=None, metavar="KEY=VALUE", help="hyperparameter overrides"
    )
    p.add_argument(
        "--features", action=argparse.BooleanOptionalAction, default=None, help="spec-derived features"
    )
    p.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="VecNormalize (obs)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--eval-freq", type=int, default=50_000, help="evaluate every this many env steps")
    p.add_argument("--eval-episodes", type=int, default=100, help="episodes per evaluation")
    p.add_argument("--n-eval-envs", type=int, default=4)
    p.add_argument(
        "--references",
        nargs="*",
        default=_DEFAULT_REFERENCES,
        help="baselines run on the evaluation episodes for the learning curve (none: --references; "
        "default ps ofil onfcp, none on labsched/Random-v0)",
    )
    p.add_argument(
        "--vec-env",
        choices=["native", "dummy", "subproc"],
        default=None,
        help="training envs: native (NumPy-batched, fastest), dummy or subproc (SB3's vector envs of "
        "single envs) (default: the hyperparameters' vec_env, native if unset)",
    )
    p.add_argument(
        "--n-envs", type=int, default=None, help="parallel training episodes (default: the hyperparameters')"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_plot_choice(p, "learning-curve PNG (default with matplotlib)")
    p.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 evaluations, 2 SB3 logs too")
    p.add_argument(
        "--throughput",
        action="store_true",
        help="only measure training env steps/s beside PPO on CartPole-v1 (same settings) and exit",
    )
    p.add_argument("--throughput-steps", type=int, default=5_000)
    _add_regret_args(p)
    _add_constraint_and_seed_args(p)
    p.set_defaults(func=_cmd_train)


def _add_regret_args(p: argparse.ArgumentParser) -> None:
    """The regret-mode options of ``train``."""
    g = p.add_argument_group("regret mode (train on the Bayesian optimisation's regret)")
    g.add_argument(
        "--objective",
        default=None,
        help="optimise this registered objective (cosines, hartmann3, ...) during every episode",
    )
    g.add_argument("--selector", default=None, help="batch selector of the optimisation (default kb-ei)")
    g.add_argument(
        "--reward",
        choices=["regret", "cpe"],
        default=None,
        help="training reward (default: regret with --objective, cpe without)",
    )
    g.add_argument(
        "--reward-scale",
        type=_positive_arg("--reward-scale"),
        default=None,
        help="multiply the training reward by this (> 0, default 1)",
    )


def _add_constraint_and_seed_args(p: argparse.ArgumentParser) -> None:
    """The chance-constraint, several-seeds and warm-start options of ``train``."""
    g = p.add_argument_group("chance constraint and seeds")
    g.add_argument(
        "--constraint",
        choices=list(CONSTRAINT_KINDS),
        default=None,
        help="train under P(all n complete by h) >= p: Lagrangian multiplier, feasibility mask, or both",
    )
    g.add_argument(
        "--target",
        type=_probability_arg("--target"),
        default=None,
        help="allowed violation rate (mean episode cost) of the Lagrangian, in (0, 1) (default 1 - p)",
    )
    g.add_argument(
        "--lambda-lr", type=_nonnegative_arg("--lambda-lr"), default=0.5, help="dual-ascent step (>= 0)"
    )
    g.add_argument(
        "--lambda-init", type=_nonnegative_arg("--lambda-init"), default=0.0, help="initial lambda"
    )
    g.add_argument(
        "--lambda-kp",
        type=_nonnegative_arg("--lambda-kp"),
        default=0.0,
        help="proportional gain of the PID Lagrangian (0: plain dual ascent)",
    )
    g.add_argument(
        "--mask-threshold",
        type=_probability_arg("--mask-threshold"),
        default=_MASK_THRESHOLD,
        help="feasibility mask: minimum estimated P(finish) of an allowed action, in (0, 1)",
    )
    g.add_argument(
        "--seeds", default=None, help="train several seeds in parallel, e.g. 0-4 or 0,2,5 (overrides --seed)"
    )
    g.add_argument("--jobs", type=int, default=2, help="worker processes for --seeds")
    g.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default=None,
        help="where --seeds run: loky (processes on this machine; the default), ray or dask (a cluster)",
    )
    g.add_argument(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="scheduler of a running cluster for --seeds: Dask tcp://HOST:8786, Ray HOST:6379, "
        "ray://HOST:10001 or auto (default: $DASK_SCHEDULER_ADDRESS or $RAY_ADDRESS, else a local "
        "cluster of --jobs workers)",
    )
    g.add_argument(
        "--init-model",
        default=None,
        help="start from this saved model (folder or zip, e.g. models/maskable_ppo_h5; same algorithm and "
        "observation form; loaded without unpickling) instead of a fresh network",
    )
