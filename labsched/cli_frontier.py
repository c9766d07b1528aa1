"""``labsched frontier``: CPE against completion rate, every method across its safety knob."""

from __future__ import annotations

import argparse

from labsched.cli_sweeps import print_written
from labsched.envs.labs.durations import parse_duration
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.labs.frontier import (
    DEFAULT_PS_THRESHOLDS,
    frontier,
    frontier_markdown,
    write_frontier,
)

__all__ = ["add_frontier_parser"]


def _cmd_frontier(args: argparse.Namespace) -> int:
    kwargs = dict(
        n_experiments=args.n_experiments, n_labs=args.n_labs, horizon=args.horizon, p_safe=args.p_safe
    )
    if args.duration is not None:
        kwargs["duration"] = args.duration
    spec = LabSpec(**kwargs)
    result = frontier(
        spec,
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
        ps_thresholds=args.ps_thresholds,
        keep_busy=args.keep_busy,
        models=args.models,
        mask_thresholds=args.mask_thresholds,
        clairvoyant=not args.no_clairvoyant,
    )
    print(frontier_markdown(result))
    print_written(write_frontier(result, args.out, plot=not args.no_plot))
    return 0


def add_frontier_parser(sub: argparse._SubParsersAction) -> None:
    """The ``frontier`` subcommand."""
    p = sub.add_parser(
        "frontier",
        help="CPE vs completion rate: PS over q, keep-k-busy over k, models (and masks), clairvoyant",
        description="Every method traced across its safety knob on common random numbers: mean CPE "
        "(95% CI) against the completion rate (Wilson 95%), the line completion = p and the "
        "clairvoyant value; PNG, CSV and Markdown.",
    )
    g = p.add_argument_group("problem spec (defaults: the paper's setting)")
    g.add_argument("-n", "--n-experiments", type=int, default=20)
    g.add_argument("-l", "--n-labs", type=int, default=10)
    g.add_argument("--horizon", type=float, default=5.0)
    g.add_argument("--duration", type=parse_duration, default=None, help="duration law (as for compare)")
    g.add_argument("--p-safe", type=float, default=0.95, help="the constraint's p")
    p.add_argument("models", nargs="*", default=[], help="saved models (folders or zips)")
    p.add_argument(
        "--ps-thresholds", type=float, nargs="*", default=list(DEFAULT_PS_THRESHOLDS), help="PS's internal q"
    )
    p.add_argument("--keep-busy", type=int, nargs="*", default=None, help="k values (default 1..l)")
    p.add_argument(
        "--mask-thresholds", type=float, nargs="*", default=[], help="deployment-time masks for every model"
    )
    p.add_argument("--episodes", type=int, default=200, help="common episodes per point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-clairvoyant", action="store_true", help="skip the clairvoyant line")
    p.add_argument("--out", default="results/frontier")
    p.add_argument("--no-plot", action="store_true")
    p.set_defaults(func=_cmd_frontier)
