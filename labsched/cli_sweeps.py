"""The regret-sweep subcommands of ``labsched``: ``table2``, ``figure1`` and ``sweep``.

They share the sweep options (runs, selector, workers, backend, results file, resume) and the
problem setting in the form sweep cells keep it (the duration law as its text).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labsched.cli_common import add_backend_args, backend_address
from labsched.envs.labs.durations import parse_duration
from labsched.evaluation.cells import DEFAULT_DURATION
from labsched.evaluation.labs import figure1 as f1
from labsched.evaluation.labs import table2 as t2
from labsched.evaluation.sweep import run_sweep, sweep_cells, sweep_markdown

__all__ = ["add_sweep_parsers", "add_sweep_spec_args", "print_written"]


def print_written(files: Iterable[str | Path]) -> None:
    """``wrote a, b, c`` on stderr."""
    print("wrote " + ", ".join(str(p) for p in files), file=sys.stderr)


def _add_sweep_args(p: argparse.ArgumentParser, out: str, runs: int) -> None:
    """Options shared by the regret sweeps (table2, figure1, sweep)."""
    p.add_argument("--runs", type=int, default=runs, help=f"runs per entry (default {runs})")
    p.add_argument(
        "--selector",
        default="simulation-matching",
        help="SelectBatch: simulation-matching (the paper's, default), kb-ei (faster), thompson, random",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed (runs share draws across schedulers)")
    p.add_argument("--ps-simulations", type=int, default=None, help="PS simulations per policy (default 200)")
    p.add_argument("--noise-std", type=float, default=0.0, help="observation noise of the objective")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers (1 = in-process with loky)")
    add_backend_args(p)
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--results", default=None, help="results CSV of the sweep (default OUT/sweep.csv)")
    p.add_argument(
        "--no-resume", action="store_true", help="discard an existing results file instead of resuming it"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")


def _setting_from(args: argparse.Namespace) -> dict:
    """Cell fields of the problem setting from the spec options."""
    return dict(
        n_experiments=args.n_experiments,
        n_labs=args.n_labs,
        p_safe=args.p_safe,
        epoch=args.epoch,
        noise_std=args.noise_std,
        duration=args.duration or DEFAULT_DURATION,
    )


def _duration_text(text: str) -> str:
    parse_duration(text)  # validated here; cells keep the text
    return text


def add_sweep_spec_args(p: argparse.ArgumentParser) -> None:
    """The problem options of a sweep (the duration law kept as its text, as sweep cells hold it)."""
    g = p.add_argument_group("problem spec (defaults: the paper's setting)")
    g.add_argument("-n", "--n-experiments", type=int, default=20, help="budget n of experiments")
    g.add_argument("-l", "--n-labs", type=int, default=10, help="number l of labs")
    g.add_argument(
        "--duration",
        type=_duration_text,
        default=None,
        help="duration law, e.g. truncnorm:1,0.316 (default: the paper's), gamma:10,0.1",
    )
    g.add_argument("--p-safe", type=float, default=0.95, help="safety probability p")
    g.add_argument("--epoch", type=float, default=0.1, help="decision interval Delta")


def _sweep_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        runs=args.runs,
        selector=args.selector,
        seed=args.seed,
        ps_simulations=args.ps_simulations,
        n_jobs=args.jobs,
        backend=args.backend,
        address=backend_address(args),
        resume=not args.no_resume,
        progress=not args.no_progress,
        plot=not args.no_plot,
        results_path=args.results,
        **_setting_from(args),
    )


def _print_sweep_totals(res: Any, args: argparse.Namespace) -> None:
    print(
        f"total wall time {res.seconds:.1f} s: {res.ran} of {res.cells} cells run now, "
        f"{res.resumed} resumed from the results file ({args.jobs} workers, {args.backend})"
    )
    print_written(res.files)


def _cmd_table2(args: argparse.Namespace) -> int:
    objectives = args.objectives or list(t2.TABLE2_OBJECTIVES)
    if args.measure_scaling:
        res = t2.table2_scaling(
            objective=objectives[0],
            horizon=args.horizons[0],
            runs=args.scaling_runs,
            selector=args.selector,
            workers=(1, max(args.jobs, 2)),
            ps_simulations=args.ps_simulations,
            **_setting_from(args),
        )
        (n1, s1), (n2, s2) = list(res["seconds"].items())[:2]
        print(
            f"scaling: {res['cells']} cells ({objectives[0]}, h={args.horizons[0]:g}, "
            f"{args.scaling_runs} runs, {args.selector}): {n1} worker {s1:.1f} s, {n2} workers {s2:.1f} s, "
            f"speed-up {s1 / s2:.2f}x"
        )
        return 0
    res = t2.table2(args.out, objectives=objectives, horizons=args.horizons, **_sweep_kwargs(args))
    print(res.markdown)
    _print_sweep_totals(res, args)
    return 0


def _add_table2_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "table2",
        help="regret table of the paper (Table 2): schedulers x objectives x horizons",
        description="Mean regret ± SE per objective, scheduler and horizon in the paper's layout, "
        "with the paper's values; resumable (results CSV) and parallel.",
    )
    add_sweep_spec_args(p)
    p.add_argument(
        "--objectives",
        nargs="+",
        default=None,
        help="objective names (default: the paper's six); 'rosenbrock@0:1' restricts the box",
    )
    p.add_argument("--horizons", type=float, nargs="+", default=[4.0, 5.0, 6.0])
    _add_sweep_args(p, "results/table2", 100)
    p.add_argument(
        "--measure-scaling",
        action="store_true",
        help="only time the same small sweep with 1 and with --jobs (>= 2) workers and print the speed-up",
    )
    p.add_argument("--scaling-runs", type=int, default=6, help="runs of the scaling sweep (default 6)")
    p.set_defaults(func=_cmd_table2)


def _cmd_figure1(args: argparse.Namespace) -> int:
    res = f1.figure1(
        args.out,
        objectives=args.objectives,
        schedulers=args.schedulers or f1.DEFAULT_SCHEDULERS,
        horizon=args.horizon,
        **_sweep_kwargs(args),
    )
    print(res.markdown)
    for objective, (rho, pval) in res.correlations.items():
        print(f"{objective}: Spearman rho(mean CPE, mean regret) = {rho:.3f}, p = {pval:.2e}")
    _print_sweep_totals(res, args)
    return 0


def _add_figure1_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "figure1",
        help="CPE vs regret for ~30 diverse schedulers (the paper's Figure 1)",
        description="Mean CPE and mean regret of each scheduler on each objective, Spearman rank "
        "correlation, CSV and scatter plot.",
    )
    add_sweep_spec_args(p)
    p.add_argument("--horizon", type=float, default=5.0, help="horizon h (default 5)")
    p.add_argument("--objectives", nargs="+", default=["cosines", "hartmann3"])
    p.add_argument(
        "--schedulers", nargs="+", default=None, help="scheduler names (default: the 31 built-in ones)"
    )
    _add_sweep_args(p, "results/figure1", 50)
    p.set_defaults(func=_cmd_figure1)


def _cmd_sweep(args: argparse.Namespace) -> int:
    cells = sweep_cells(
        args.objectives,
        args.schedulers or [],
        args.agent or [],
        args.horizons,
        args.runs,
        args.selector,
        args.seed,
        args.ps_simulations,
        **_setting_from(args),
    )
    rows = run_sweep(
        cells,
        args.results or f"{args.out}/sweep.csv",
        n_jobs=args.jobs,
        backend=args.backend,
        address=backend_address(args),
        resume=not args.no_resume,
        progress=not args.no_progress,
    )
    print(sweep_markdown(rows), end="")
    return 0


def _add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="regret sweep of chosen schedulers or trained agents",
        description="Objectives x schedulers (baselines, busy:K, bernoulli:P, staged:...) and/or "
        "trained agents x horizons x runs, resumable; prints mean regret and CPE per group.",
    )
    add_sweep_spec_args(p)
    p.add_argument("--objectives", nargs="+", default=["cosines"])
    p.add_argument("--schedulers", nargs="+", default=None, help="scheduler names")
    p.add_argument("--agent", nargs="+", default=None, help="trained stable-baselines3 .zip files")
    p.add_argument("--horizons", type=float, nargs="+", default=[5.0])
    _add_sweep_args(p, "results/sweep", 10)
    p.set_defaults(func=_cmd_sweep)


def add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``table2``, ``figure1`` and ``sweep`` to the ``labsched`` subparsers."""
    _add_table2_parser(sub)
    _add_figure1_parser(sub)
    _add_sweep_parser(sub)
