"""Options several ``labsched`` subcommands share: the problem spec and the plot switch."""

from __future__ import annotations

import argparse
import importlib.util

from labsched.envs.labs.durations import parse_duration
from labsched.envs.labs.spec import LabSpec

__all__ = ["add_plot_choice", "add_spec_args", "plot_wanted", "spec_from"]


def add_spec_args(p: argparse.ArgumentParser, horizon_default: float | None = 5.0) -> None:
    """The ``LabSpec`` options (``--horizon`` only when ``horizon_default`` is not None)."""
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


def spec_from(args: argparse.Namespace, horizon: float | None = None) -> LabSpec:
    """The ``LabSpec`` of the options :func:`add_spec_args` added (``horizon`` overrides ``--horizon``)."""
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


def plot_wanted(args: argparse.Namespace) -> bool:
    """``--plot`` / ``--no-plot`` as given, else whether matplotlib is installed."""
    if getattr(args, "no_plot", False):
        return False
    if getattr(args, "plot", False):
        return True
    return importlib.util.find_spec("matplotlib") is not None


def add_plot_choice(p: argparse.ArgumentParser, plot_help: str, no_plot_help: str | None = None) -> None:
    """The mutually exclusive ``--plot`` / ``--no-plot`` switches."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--plot", action="store_true", help=plot_help)
    g.add_argument("--no-plot", action="store_true", help=no_plot_help)
