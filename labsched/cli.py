"""The ``labsched`` command line.

Subcommands:
    cpe-table   every scheduler x horizons on a spec: mean CPE ± SE, completion rate
                (the paper's Table 2 CPE row; Markdown, CSV and a plot)
    compare     chosen schedulers and saved RL agents on one spec (same seeds for all)
    train       train an RL agent (MaskablePPO, PPO, A2C, DQN) on a spec
    benchmark   speed figures beside CartPole-v1 measured in the same process
    baselines   list the registered baseline names
    frontier    CPE against completion rate: PS over q, keep-k-busy over k, saved models
    table2      regret of every scheduler x objective x horizon (the paper's Table 2), as a
                resumable parallel sweep; --measure-scaling times 1 vs 2 workers
    figure1     ~30 diverse schedulers on two objectives: mean CPE vs mean regret, Spearman rho
    sweep       any objectives x schedulers (or a trained agent) x horizons x runs, resumable
    queue-eval  experiment-queue schedulers under the bootstrap protocol
    campaign    a real campaign: ask which experiments to start, tell results (a journal file)
    information the information goal: does CPE predict the integrated variance
    leaderboard every baseline (and saved agents) on every suite id: CPE, completion, p-safe,
                ranks (Markdown, CSV and a heat map; resumable)

Each subcommand only builds arguments and calls library functions; its parser is added by one
function of :data:`SUBCOMMANDS` (training lives in :mod:`labsched.cli_train`, the regret sweeps
in :mod:`labsched.cli_sweeps`, the campaign in :mod:`labsched.cli_campaign`; the options they
share in :mod:`labsched.cli_common`).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from labsched.agents.comparison import compare, write_comparison
from labsched.agents.comparison import rows_to_markdown as compare_markdown
from labsched.agents.config import MissingExtraError
from labsched.baselines.registry import BASELINES
from labsched.cli_campaign import add_campaign_parser
from labsched.cli_common import add_plot_choice, add_spec_args, plot_wanted, show_defaults, spec_from
from labsched.cli_frontier import add_frontier_parser
from labsched.cli_information import add_information_parser
from labsched.cli_leaderboard import add_leaderboard_parser
from labsched.cli_sweeps import add_sweep_parsers, print_written
from labsched.cli_train import add_train_parser
from labsched.evaluation import benchmark, scale_benchmark
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
#: Errors that are the user's to fix (bad values, missing files or folders, a results file that
#: another sweep holds, an optional dependency not installed): one line and exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, MissingExtraError, OSError, ImportError)


# ----------------------------------------------------------------------------- cpe-table


def _cmd_cpe_table(args: argparse.Namespace) -> int:
    rows = cpe_table(
        spec_from(args, horizon=args.horizons[0]),
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
    add_spec_args(p, horizon_default=None)
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
    spec = spec_from(args)
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
        mask_threshold=args.mask_threshold,
    )
    print(compare_markdown(rows, spec.p_safe))
    print_written(write_comparison(rows, args.out, spec, plot_wanted(args)))
    return 0


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="schedulers and saved RL agents on one spec, same seeds")
    add_spec_args(p)
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
        "--mask-threshold",
        type=float,
        default=None,
        help="saved models act inside feasibility masks at this threshold in (0, 1) (default: the "
        "deployment or training mask their agent.json records, if any)",
    )
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
    add_plot_choice(p, "bar chart and learning curves (default with matplotlib)", "skip the plots")
    p.set_defaults(func=_cmd_compare)


# ----------------------------------------------------------------------------- benchmark, baselines


def _cmd_benchmark(args: argparse.Namespace) -> int:
    if args.scale:
        scale_benchmark.run_scale_from_args(args)
        return 0
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
        n_worlds=args.worlds,
        lgbm_cv=not args.no_lgbm_cv,
    )
    print(res.markdown)
    print(f"total wall time {res.seconds:.1f} s ({args.jobs} workers)")
    print_written(res.files)
    return 0


def _add_queue_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "queue-eval",
        help="experiment-queue schedulers: bootstrap protocol (Kharitonov et al.'s Tables 2-5, Figure 1)",
        description="Repeated stratified splits, bootstrap AUC and Q(S) with 95% CIs and Wilcoxon tests "
        "for every queue scheduler and exploration size, on synthetic interleaving and A/B data, "
        "over several generated worlds (mean and spread across worlds, the paper's findings tested "
        "in every world); Markdown, CSV and a Q(S)-against-T plot. The default run (5 worlds x 100 "
        "splits x 2 experiment types, LGBM cross-validated) takes about an hour with 2 workers "
        "on a loaded 2-core machine (--splits 25: 15 minutes); --quick --worlds 1 takes seconds.",
    )
    p.add_argument("--quick", action="store_true", help="seconds-long smoke budget (tests, CI)")
    p.add_argument("--datasets", nargs="+", choices=["interleaving", "ab"], default=["interleaving", "ab"])
    p.add_argument(
        "--splits",
        type=int,
        default=None,
        help="train/test splits per world (default 100 as in the paper; quick 4)",
    )
    p.add_argument(
        "--worlds",
        type=int,
        default=5,
        help="generated worlds: dataset seeds DATASET_SEED .. DATASET_SEED + WORLDS - 1 (1: one world, "
        "no across-world tables)",
    )
    p.add_argument(
        "--no-lgbm-cv",
        action="store_true",
        help="LGBM with fixed hyperparameters instead of cross-validated ones (faster; implied by --quick)",
    )
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap draws per split (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and every draw")
    p.add_argument("--dataset-seed", type=int, default=0, help="seed of the first generated world")
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
    add_train_parser,
    _add_benchmark_parser,
    _add_baselines_parser,
    add_frontier_parser,
    add_sweep_parsers,
    _add_queue_eval_parser,
    add_campaign_parser,
    add_information_parser,
    add_leaderboard_parser,
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
    show_defaults(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``labsched`` console script.

    User errors (:data:`USER_ERRORS`) print one line and exit with status 2; anything else
    propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (labsched campaign log ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as exc:
        print(f"labsched: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
