"""The ``labsched`` command line.

Subcommands:
    cpe-table   every scheduler x horizons on a spec: mean CPE ± SE, completion rate
                (the paper's Table 2 CPE row; Markdown, CSV and a plot)
    compare     chosen schedulers and saved RL agents on one spec (same seeds for all)
    train       train an RL agent (MaskablePPO, PPO, A2C, DQN) on a spec
    benchmark   speed figures beside CartPole-v1 measured in the same process
    baselines   list the registered baseline names
    table2      regret of every scheduler x objective x horizon (the paper's Table 2), as a
                resumable parallel sweep; --measure-scaling times 1 vs 2 workers
    figure1     ~30 diverse schedulers on two objectives: mean CPE vs mean regret, Spearman rho
    sweep       any objectives x schedulers (or a trained agent) x horizons x runs, resumable
    queue-eval  experiment-queue schedulers under the bootstrap protocol
    campaign    a real campaign: ask which experiments to start, tell results (a journal file)

Each subcommand only builds arguments and calls library functions; its parser is added by one
function of :data:`SUBCOMMANDS` (the regret sweeps live in :mod:`labsched.cli_sweeps`, the
campaign in :mod:`labsched.cli_campaign`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version

from labsched.agents.comparison import compare, write_comparison
from labsched.agents.comparison import rows_to_markdown as compare_markdown
from labsched.agents.config import MissingExtraError, require_rl_extra
from labsched.agents.constrained import CONSTRAINT_KINDS, ConstraintConfig
from labsched.agents.multiseed import train_seeds
from labsched.agents.throughput import throughput_vs_cartpole
from labsched.agents.training import default_out_dir, train
from labsched.baselines.registry import BASELINES
from labsched.cli_campaign import add_campaign_parser
from labsched.cli_frontier import add_frontier_parser
from labsched.cli_information import add_information_parser
from labsched.cli_sweeps import add_sweep_parsers, print_written
from labsched.envs.labs.durations import parse_duration
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation import benchmark
from labsched.evaluation.labs.cpe_table import (
    cpe_table,
    paper_schedulers,
    rows_to_markdown,
    write_cpe_outputs,
)
from labsched.evaluation.queue.protocol import queue_eval

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Errors a user causes (bad option values, unknown names, missing files or extras): one line
#: on stderr and exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, MissingExtraError)


# ----------------------------------------------------------------------------- shared options


def _add_spec_args(p: argparse.ArgumentParser, horizon_default: float | None = 5.0) -> None:
    g = p.add_argument_group("problem spec (defaults: the paper's setting)")
    g.add_argument("-n", "--n-experiments", type=int, default=20, help="budget n of experiments")
    g.add_argument("-l", "--n-labs", type=int, default=10, help="number l of labs")
    if horizon_default is not None:
        g.add_argument("--horizon", type=float, default=horizon_default, help="horizon h")
    g.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="duration law, e.g. truncnorm:1,0.316 (default), gamma:10,0.1, lognormal:0,0.3, "
        "exponential:1, uniform:0.5,1.5, deterministic:1",
    )
    g.add_argument("--p-safe", type=float, default=0.95, help="safety probability p")
    g.add_argument("--epoch", type=float, default=0.1, help="decision interval Delta")


def _spec_from(args: argparse.Namespace, horizon: float | None = None) -> LabSpec:
    kwargs = dict(
        n_experiments=args.n_experiments,
        n_labs=args.n_labs,
        horizon=horizon if horizon is not None else args.horizon,
        p_safe=args.p_safe,
        epoch=args.epoch,
    )
    if args.duration is not None:
        kwargs["duration"] = args.duration
    return LabSpec(**kwargs)


def _plot_wanted(args: argparse.Namespace) -> bool:
    if getattr(args, "no_plot", False):
        return False
    if getattr(args, "plot", False):
        return True
    return importlib.util.find_spec("matplotlib") is not None


def _add_plot_choice(p: argparse.ArgumentParser, plot_help: str, no_plot_help: str | None = None) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--plot", action="store_true", help=plot_help)
    g.add_argument("--no-plot", action="store_true", help=no_plot_help)


# ----------------------------------------------------------------------------- cpe-table


def _cmd_cpe_table(args: argparse.Namespace) -> int:
    rows = cpe_table(
        _spec_from(args, horizon=args.horizons[0]),
        horizons=args.horizons,
        schedulers=args.schedulers or paper_schedulers(),
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
        options={"ps": {"n_simulations": args.ps_simulations}} if args.ps_simulations else None,
    )
    print(rows_to_markdown(rows))
    print_written(write_cpe_outputs(rows, args.out, "cpe_table", not args.no_plot))
    return 0


def _add_cpe_table_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cpe-table", help="every scheduler x horizons: the paper's CPE row")
    _add_spec_args(p, horizon_default=None)
    p.add_argument("--horizons", type=float, nargs="+", default=[4.0, 5.0, 6.0])
    p.add_argument(
        "--schedulers", nargs="+", default=None, help="baseline names (default: the paper's schedulers)"
    )
    p.add_argument("--episodes", type=int, default=200, help="episodes per cell")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 = in-process)")
    p.add_argument("--ps-simulations", type=int, default=None, help="PS simulations per policy")
    p.add_argument("--out", default="results/cpe_table", help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.set_defaults(func=_cmd_cpe_table)


# ----------------------------------------------------------------------------- compare


def _cmd_compare(args: argparse.Namespace) -> int:
    spec = _spec_from(args)
    rows = compare(
        args.agents or None,
        spec,
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
        objective=args.objective,
        selector=args.selector,
        trust_model_file=args.trust_model_file,
        reference=args.reference,
    )
    print(compare_markdown(rows, spec.p_safe))
    print_written(write_comparison(rows, args.out, spec, _plot_wanted(args)))
    return 0


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="schedulers and saved RL agents on one spec, same seeds")
    _add_spec_args(p)
    p.add_argument(
        "agents",
        nargs="*",
        default=None,
        help="baseline names or saved models (a .zip written by 'labsched train', or its folder); "
        "default: all registered baselines",
    )
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="results/compare")
    p.add_argument(
        "--objective",
        default=None,
        help="regret mode: also run the Bayesian optimisation of this objective (cosines, hartmann3, ...) "
        "and report the mean regret",
    )
    p.add_argument("--selector", default="kb-ei", help="batch selector in regret mode")
    p.add_argument(
        "--reference",
        default=None,
        metavar="NAME",
        help="paired CPE differences (same episodes) against this agent (default: the first); a name not "
        "among the agents is run too, e.g. clairvoyant (reads each episode's durations: the exact optimum "
        "on small problems, a proven upper bound otherwise)",
    )
    p.add_argument(
        "--trust-model-file",
        action="store_true",
        help="load saved models that need unpickling (older labsched folders with a "
        "*_vecnormalize.pkl, third-party SB3 zips). WARNING: unpickling runs any code the files "
        "contain; use only for files from a source you trust (default: refuse such files)",
    )
    _add_plot_choice(p, "bar chart and learning curves (default with matplotlib)", "skip the plots")
    p.set_defaults(func=_cmd_compare)


# ----------------------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    require_rl_extra("training")
    spec = _spec_from(args)
    overrides = list(args.hyperparams or [])
    for key in ("features", "normalize"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={'true' if value else 'false'}")
    if args.n_envs is not None:
        overrides.append(f"n_envs={args.n_envs}")
    if args.throughput:
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
        time_limit_minutes=args.time_limit_minutes,
        hyperparams_file=args.hyperparams_file,
        hyperparams=overrides,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        n_eval_envs=args.n_eval_envs,
        references=args.references,
        vec_env=args.vec_env,
        plot=_plot_wanted(args),
        verbose=args.verbose,
        constraint=constraint,
        init_model=args.init_model,
    )
    if args.seeds is not None:
        out = args.out or str(default_out_dir(args.algo, spec, 0)).removesuffix("_s0") + "_seeds"
        train_seeds(args.seeds, out, n_jobs=args.jobs, algo=args.algo, spec=spec, **common)
        return 0
    train(args.algo, spec, seed=args.seed, out=args.out, progress_bar=not args.no_progress, **common)
    return 0


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
Learning rates "lin_<x>" decay to 0 at the end of --total-timesteps or --time-limit-minutes,
whichever comes first.

Chance constraint P(all n complete by h) >= p (--constraint; labsched.agents.constrained):
  lagrangian       reward r - lambda * cost (cost 1 on the last step of an episode that did not
                   complete all n); after each rollout lambda <- max(0, lambda + lr (mean cost -
                   target)), target = allowed violation rate (--target, default 1 - p);
                   constraint_log.csv and the learning curve show lambda and completion rates;
  mask             actions whose estimated P(finish the budget) falls below --mask-threshold are
                   masked (training, evaluation, and whenever the saved model is compared);
  lagrangian+mask  both.
Several seeds: --seeds 0-4 trains them in parallel (--jobs workers, one torch thread each) into
<out>/seed<k> and writes seeds_summary.csv/.md (mean and spread of the final evaluation).

Output folder (--out, default runs/<algo>_n<n>_l<l>_h<h>_s<seed>): model.zip, best_model.zip,
agent.json (what load_agent needs), hyperparams.yml, eval_log.csv, evaluations.npz,
learning_curve.png, *_vecnormalize.npz, constraint_log.csv (constrained), tb/ (with tensorboard).
"""

_MASK_THRESHOLD = 0.9


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


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an RL agent (MaskablePPO, PPO, A2C, DQN)",
        description=_TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_spec_args(p)
    p.add_argument("--algo", default="maskable_ppo", help="maskable_ppo (default), ppo, a2c or dqn")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps (default: n_timesteps)")
    p.add_argument("--time-limit-minutes", type=float, default=None, help="stop after this wall-clock time")
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
        default=["ps", "ofil", "onfcp"],
        help="baselines run on the evaluation episodes for the learning curve (none: --references)",
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
    _add_plot_choice(p, "learning-curve PNG (default with matplotlib)")
    p.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 evaluations, 2 SB3 logs too")
    p.add_argument(
        "--throughput",
        action="store_true",
        help="only measure training env steps/s beside PPO on CartPole-v1 (same settings) and exit",
    )
    p.add_argument("--throughput-steps", type=int, default=5_000)
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
        "--init-model",
        default=None,
        help="start from this saved model (folder or zip, e.g. models/maskable_ppo_h5; same algorithm and "
        "observation form; loaded without unpickling) instead of a fresh network",
    )
    p.set_defaults(func=_cmd_train)


# ----------------------------------------------------------------------------- benchmark, baselines


def _cmd_benchmark(args: argparse.Namespace) -> int:
    benchmark.run_benchmarks(args.steps, args.repeats, args.episodes, training=not args.no_training)
    return 0


def _add_benchmark_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="speed figures beside CartPole-v1",
        description=benchmark.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    benchmark.add_benchmark_arguments(p)
    p.set_defaults(func=_cmd_benchmark)


def _cmd_baselines(args: argparse.Namespace) -> int:
    for name, cls in BASELINES.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<12} {doc}")
    return 0


def _add_baselines_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("baselines", help="list baseline names").set_defaults(func=_cmd_baselines)


# ----------------------------------------------------------------------------- queue-eval


def _cmd_queue_eval(args: argparse.Namespace) -> int:
    res = queue_eval(
        args.out,
        args.datasets,
        quick=args.quick,
        n_splits=args.splits,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        dataset_seed=args.dataset_seed,
        ci=args.ci,
        n_jobs=args.jobs,
        plot=not args.no_plot,
        progress=not args.no_progress,
        agent_minutes=args.agent_minutes,
        agent_episodes=args.agent_episodes,
    )
    print(res.markdown)
    print(f"total wall time {res.seconds:.1f} s ({args.jobs} workers)")
    print_written(res.files)
    return 0


def _add_queue_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "queue-eval",
        help="experiment-queue schedulers: bootstrap protocol (Kharitonov et al.'s Tables 2-5, Figure 1)",
        description="Repeated stratified splits, bootstrap AUC and Q(S) with 95%% CIs and Wilcoxon tests "
        "for every queue scheduler and exploration size, on synthetic interleaving and A/B data; "
        "Markdown, CSV and a Q(S)-against-T plot.",
    )
    p.add_argument("--quick", action="store_true", help="seconds-long smoke budget (tests, CI)")
    p.add_argument("--datasets", nargs="+", choices=["interleaving", "ab"], default=["interleaving", "ab"])
    p.add_argument("--splits", type=int, default=None, help="train/test splits (default 50; quick 4)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap draws per split (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and every draw")
    p.add_argument("--dataset-seed", type=int, default=0, help="seed of the generated dataset")
    p.add_argument("--ci", choices=["normal", "bootstrap"], default="normal", help="95%% CI method")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 = in-process)")
    p.add_argument(
        "--agent-minutes",
        type=float,
        default=0.0,
        help="also train MaskablePPO for this many minutes and compare it with the greedy schedulers",
    )
    p.add_argument("--agent-episodes", type=int, default=500, help="shared test episodes of that comparison")
    p.add_argument("--out", default="results/queue_eval", help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_queue_eval)


# ----------------------------------------------------------------------------- the parser

#: Functions adding one subcommand each to the subparsers, in help order. Another module adds
#: its subcommands by appending ``add_x_parser(subparsers)`` here (and setting ``func``).
SUBCOMMANDS = [
    _add_cpe_table_parser,
    _add_compare_parser,
    _add_train_parser,
    _add_benchmark_parser,
    _add_baselines_parser,
    add_frontier_parser,
    add_sweep_parsers,
    _add_queue_eval_parser,
    add_campaign_parser,
    add_information_parser,
]


def _version() -> str:
    try:
        return version("labsched")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``labsched`` command."""
    parser = argparse.ArgumentParser(
        prog="labsched", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"labsched {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``labsched`` console script.

    User errors (:data:`USER_ERRORS`) print one line and exit with status 2; anything else
    propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"labsched: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
