"""``labsched leaderboard``: every baseline (and saved agents) on every suite id, same episodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from labsched.cli_common import add_backend_args, backend_address
from labsched.cli_sweeps import print_written
from labsched.envs.labs.suite import suite_envs
from labsched.evaluation.labs.leaderboard import (
    DEFAULT_SKIP,
    board_cells,
    default_schedulers,
    leaderboard_markdown,
    run_leaderboard,
    write_leaderboard,
)

__all__ = ["add_leaderboard_parser"]


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    cells = board_cells(
        args.envs,
        args.schedulers,
        args.agents,
        episodes=args.episodes,
        block_size=args.block_size,
        seed=args.seed,
    )
    results = Path(args.results) if args.results else Path(args.out) / "results.csv"
    board = run_leaderboard(
        cells,
        results,
        n_jobs=args.jobs,
        backend=args.backend,
        address=backend_address(args),
        resume=not args.no_resume,
        progress=not args.no_progress,
        alpha=args.alpha,
        skip=args.skip,
    )
    print(leaderboard_markdown(board))
    print(f"{board.n_run} cells run, {board.n_resumed} resumed from {results}, {board.seconds:.1f} s")
    print_written([results, *write_leaderboard(board, args.out, plot=not args.no_plot)])
    return 0


def add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    """The ``leaderboard`` subcommand."""
    p = sub.add_parser(
        "leaderboard",
        help="every baseline (and saved agents) on every suite id: CPE, completion, p-safe, ranks",
        description="Every scheduler on every id of the benchmark suite (labsched.envs.labs.suite) on "
        "common random numbers: mean CPE (95% CI), completion rate (Wilson 95%), the p-safe verdict and "
        "ranks; table.md, table.csv and heatmap.png. Resumable (the results CSV) and runnable on Ray or "
        "Dask. Schedulers not defined on a setting show as n/a with the reason.",
    )
    p.add_argument(
        "agents", nargs="*", default=[], help="saved agents (labsched train folders or model zips)"
    )
    p.add_argument(
        "--envs",
        nargs="+",
        default=[e.name for e in suite_envs()],
        help="suite ids (Paper-h5-v0 or labsched/Paper-h5-v0)",
    )
    p.add_argument(
        "--schedulers",
        nargs="+",
        default=default_schedulers(),
        help="baseline names (default: every registered baseline but the clairvoyant reference)",
    )
    p.add_argument("--episodes", type=int, default=20, help="episodes per suite id and scheduler")
    p.add_argument("--block-size", type=int, default=10, help="episodes per cell (the unit of resuming)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (shared by all schedulers)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the p-safe test")
    p.add_argument(
        "--skip",
        nargs="*",
        default=list(DEFAULT_SKIP),
        metavar="ENV:SCHEDULER",
        help="pairs not to run now, shown as n/a (skipped) and left out of the results file; wildcards "
        "allowed, e.g. Large-v0:*-calibrated; --skip alone runs every pair (default: the two pairs too "
        "costly for a default run: " + " ".join(DEFAULT_SKIP) + ")",
    )
    p.add_argument("--jobs", type=int, default=2, help="parallel workers (1 = in-process with loky)")
    add_backend_args(p)
    p.add_argument("--out", default="results/leaderboard", help="output folder")
    p.add_argument("--results", default=None, help="results CSV (default: OUT/results.csv)")
    p.add_argument(
        "--no-resume", action="store_true", help="discard an existing results file instead of resuming it"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the heat map")
    p.set_defaults(func=_cmd_leaderboard)
