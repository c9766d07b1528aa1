"""The ``labsched information`` subcommand: the information-goal study of issue 13.

Two studies on one resumable, parallel sweep (:mod:`labsched.evaluation.labs.information`): does a
scheduler's CPE predict the final integrated posterior variance and RMSE of the GP (Figure 1's
question for uncertainty), and how do information-gain selectors (``ivr``, ``mes``) compare with
``kb-ei`` and ``random`` on that goal under fixed schedulers, paired over the same episodes.
The committed results in ``docs/results/information/`` come from::

    labsched information --out docs/results/information --results results/information/sweep.csv --jobs 1

(3000 cells; about 23 minutes of compute, 22 minutes of wall time with one worker on a shared
two-core machine). The sweep's rows stay in ``results/`` (not committed); running the command again
resumes them and rewrites the report at once.
"""

from __future__ import annotations

import argparse

from labsched.cli_common import add_backend_args, backend_address
from labsched.cli_sweeps import add_sweep_spec_args, print_written
from labsched.evaluation.cells import DEFAULT_DURATION
from labsched.evaluation.labs import information as info
from labsched.evaluation.labs.figure1 import DEFAULT_SCHEDULERS

__all__ = ["add_information_parser"]


def _cmd_information(args: argparse.Namespace) -> int:
    res = info.information_report(
        args.out,
        objectives=args.objectives,
        schedulers=args.schedulers or DEFAULT_SCHEDULERS,
        correlation_selectors=args.correlation_selectors,
        correlation_runs=args.correlation_runs,
        compare_schedulers=args.compare_schedulers,
        compare_selectors=args.compare_selectors,
        compare_runs=args.compare_runs,
        horizon=args.horizon,
        seed=args.seed,
        ps_simulations=args.ps_simulations,
        n_jobs=args.jobs,
        backend=args.backend,
        address=backend_address(args),
        resume=not args.no_resume,
        progress=not args.no_progress,
        plot=not args.no_plot,
        results_path=args.results,
        n_experiments=args.n_experiments,
        n_labs=args.n_labs,
        p_safe=args.p_safe,
        epoch=args.epoch,
        noise_std=args.noise_std,
        duration=args.duration or DEFAULT_DURATION,
    )
    print(res.markdown)
    print(
        f"total wall time {res.seconds:.1f} s: {res.ran} of {res.cells} cells run now, {res.resumed} resumed "
        f"from the results file ({args.jobs} workers, {args.backend}); {res.cpu_seconds:.0f} s of compute "
        "summed over all cells"
    )
    print_written(res.files)
    return 0


def add_information_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``information`` to the ``labsched`` subparsers."""
    p = sub.add_parser(
        "information",
        help="information goal: does CPE predict the integrated variance; ivr vs kb-ei vs random",
        description="Spearman rho of mean CPE with the final integrated posterior variance, RMSE and "
        "regret across Figure 1's schedulers, and information-gain selectors against kb-ei and random "
        "under fixed schedulers, paired over the same episodes (means with 95% CIs, paired "
        "differences); resumable (results CSV) and parallel.",
    )
    add_sweep_spec_args(p)
    p.add_argument("--horizon", type=float, default=5.0, help="horizon h (default 5)")
    p.add_argument("--objectives", nargs="+", default=list(info.DEFAULT_OBJECTIVES), help="objective names")
    p.add_argument(
        "--schedulers",
        nargs="+",
        default=None,
        help="correlation study's schedulers (default: Figure 1's 31)",
    )
    p.add_argument(
        "--correlation-selectors",
        nargs="*",
        default=list(info.CORRELATION_SELECTORS),
        help="selectors of the correlation study (none: skip it)",
    )
    p.add_argument("--correlation-runs", type=int, default=10, help="runs per scheduler (default 10)")
    p.add_argument(
        "--compare-schedulers",
        nargs="+",
        default=list(info.COMPARE_SCHEDULERS),
        help="schedulers of the selector comparison",
    )
    p.add_argument(
        "--compare-selectors",
        nargs="*",
        default=list(info.COMPARE_SELECTORS),
        help="selectors compared, the first is the reference of the paired differences (none: skip)",
    )
    p.add_argument("--compare-runs", type=int, default=50, help="paired runs per cell (default 50)")
    p.add_argument("--seed", type=int, default=0, help="base seed (runs share draws across schedulers)")
    p.add_argument("--ps-simulations", type=int, default=None, help="PS simulations per policy (default 200)")
    p.add_argument("--noise-std", type=float, default=0.0, help="observation noise of the objective")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers (1 = in-process with loky)")
    add_backend_args(p)
    p.add_argument("--out", default="results/information", help="output folder (default results/information)")
    p.add_argument("--results", default=None, help="results CSV of the sweep (default OUT/sweep.csv)")
    p.add_argument(
        "--no-resume", action="store_true", help="discard an existing results file instead of resuming it"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=_cmd_information)
