"""The ``labsched`` command line.

Subcommands:
    cpe-table   every scheduler x horizons on a spec: mean CPE ± SE, completion rate
                (the paper's Table 2 CPE row; Markdown, CSV and a plot)
    compare     chosen schedulers on one spec (same seeds for all)
    benchmark   speed figures beside CartPole-v1 measured in the same process
    baselines   list the registered baseline names
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labsched.envs.durations import parse_duration
from labsched.envs.spec import LabSpec

__all__ = ["main"]


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


def _write_outputs(rows, out: Path, stem: str, plot: bool) -> None:
    from labsched.evaluation.cpe_table import plot_cpe_table, rows_to_markdown, write_csv

    md = rows_to_markdown(rows)
    print(md)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(md)
    write_csv(rows, out / f"{stem}.csv")
    written = [out / f"{stem}.md", out / f"{stem}.csv"]
    if plot:
        try:
            written.append(plot_cpe_table(rows, out / f"{stem}.png"))
        except ImportError as exc:
            print(f"(no plot: {exc})", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)


def _cmd_cpe_table(args: argparse.Namespace) -> int:
    from labsched.evaluation.cpe_table import cpe_table, paper_schedulers

    spec = _spec_from(args, horizon=args.horizons[0])
    rows = cpe_table(
        spec,
        horizons=args.horizons,
        schedulers=args.schedulers or paper_schedulers(),
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
        options={"ps": {"n_simulations": args.ps_simulations}} if args.ps_simulations else None,
    )
    _write_outputs(rows, Path(args.out), "cpe_table", not args.no_plot)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from labsched import baselines
    from labsched.evaluation.cpe_table import cpe_table

    spec = _spec_from(args)
    rows = cpe_table(
        spec,
        horizons=[spec.horizon],
        schedulers=args.agents or sorted(baselines.BASELINES),
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
    )
    _write_outputs(rows, Path(args.out), "compare", not args.no_plot)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from labsched.evaluation import benchmark

    benchmark.main(args.rest)
    return 0


def _cmd_baselines(args: argparse.Namespace) -> int:
    from labsched import baselines

    for name, cls in sorted(baselines.BASELINES.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<12} {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``labsched`` command."""
    from labsched import __version__

    parser = argparse.ArgumentParser(
        prog="labsched", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"labsched {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("compare", help="chosen schedulers on one spec, same seeds")
    _add_spec_args(p)
    p.add_argument(
        "agents",
        nargs="*",
        default=None,
        help="baseline names (default: all registered)",
    )
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="results/compare")
    p.add_argument("--no-plot", action="store_true")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("benchmark", help="speed figures beside CartPole-v1", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("baselines", help="list baseline names")
    p.set_defaults(func=_cmd_baselines)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``labsched`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"labsched: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
