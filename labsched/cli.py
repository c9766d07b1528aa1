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


def _plot_wanted(args: argparse.Namespace) -> bool:
    if getattr(args, "no_plot", False):
        return False
    if getattr(args, "plot", False):
        return True
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _cmd_compare(args: argparse.Namespace) -> int:
    from labsched.agents.comparison import (
        compare,
        plot_comparison,
        rows_to_markdown,
        write_csv,
        write_learning_curves,
    )

    spec = _spec_from(args)
    rows = compare(
        args.agents or None,
        spec,
        episodes=args.episodes,
        seed=args.seed,
        n_jobs=args.jobs,
        objective=args.objective,
        selector=args.selector,
    )
    out = Path(args.out)
    md = rows_to_markdown(rows)
    print(md)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(md)
    written = [out / "compare.md", write_csv(rows, out / "compare.csv")]
    if _plot_wanted(args):
        try:
            written.append(plot_comparison(rows, out / "compare.png"))
            written.extend(write_learning_curves(rows, out, spec))
        except ImportError as exc:
            print(f"(no plot: {exc})", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [m for m in ("stable_baselines3", "sb3_contrib", "yaml") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"labsched: error: training needs {', '.join(missing)}: pip install 'labsched[rl]'",
            file=sys.stderr,
        )
        return 2
    from labsched.agents import throughput_vs_cartpole, train

    spec = _spec_from(args)
    overrides = list(args.hyperparams or [])
    for key in ("features", "normalize"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={'true' if value else 'false'}")
    if args.throughput:
        throughput_vs_cartpole(
            args.algo, spec, steps=args.throughput_steps, hyperparams=overrides, seed=args.seed
        )
        return 0
    train(
        args.algo,
        spec,
        total_timesteps=args.total_timesteps,
        time_limit_minutes=args.time_limit_minutes,
        hyperparams_file=args.hyperparams_file,
        hyperparams=overrides,
        seed=args.seed,
        out=args.out,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        n_eval_envs=args.n_eval_envs,
        references=args.references,
        vec_env=args.vec_env,
        progress_bar=not args.no_progress,
        plot=_plot_wanted(args),
        verbose=args.verbose,
    )
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

Output folder (--out, default runs/<algo>_n<n>_l<l>_h<h>_s<seed>): model.zip, best_model.zip,
agent.json (what load_agent needs), hyperparams.yml, eval_log.csv, evaluations.npz,
learning_curve.png, *_vecnormalize.pkl, tb/ (with tensorboard installed).
"""


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
    p.add_argument("--backend", choices=["loky", "ray", "dask"], default="loky", help="parallel backend")
    p.add_argument("--address", default=None, help="Ray or Dask scheduler address (default: local cluster)")
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--results", default=None, help="results CSV of the sweep (default OUT/sweep.csv)")
    p.add_argument(
        "--no-resume", action="store_true", help="discard an existing results file instead of resuming it"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")


def _setting_from(args: argparse.Namespace) -> dict:
    """Cell fields of the problem setting from the spec options."""
    from labsched.evaluation.sweep import DEFAULT_DURATION

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


def _add_sweep_spec_args(p: argparse.ArgumentParser) -> None:
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
        address=args.address,
        resume=not args.no_resume,
        progress=not args.no_progress,
        plot=not args.no_plot,
        results_path=args.results,
        **_setting_from(args),
    )


def _cmd_table2(args: argparse.Namespace) -> int:
    from labsched.evaluation import table2 as t2

    args.objectives = args.objectives or list(t2.TABLE2_OBJECTIVES)
    if args.measure_scaling:
        res = t2.table2_scaling(
            objective=args.objectives[0],
            horizon=args.horizons[0],
            runs=args.scaling_runs,
            selector=args.selector,
            workers=(1, max(args.jobs, 2)),
            ps_simulations=args.ps_simulations,
            **_setting_from(args),
        )
        secs = res["seconds"]
        (n1, t1), (n2, t2_) = list(secs.items())[:2]
        print(
            f"scaling: {res['cells']} cells ({args.objectives[0]}, h={args.horizons[0]:g}, "
            f"{args.scaling_runs} runs, {args.selector}): {n1} worker {t1:.1f} s, {n2} workers {t2_:.1f} s, "
            f"speed-up {t1 / t2_:.2f}x"
        )
        return 0
    res = t2.table2(args.out, objectives=args.objectives, horizons=args.horizons, **_sweep_kwargs(args))
    print(res["markdown"])
    print(
        f"total wall time {res['seconds']:.1f} s: {res['ran']} of {res['cells']} cells run now, "
        f"{res['resumed']} resumed from the results file ({args.jobs} workers, {args.backend})",
    )
    print("wrote " + ", ".join(str(p) for p in res["files"]), file=sys.stderr)
    return 0


def _cmd_figure1(args: argparse.Namespace) -> int:
    from labsched.evaluation import figure1 as f1

    kwargs = _sweep_kwargs(args)
    res = f1.figure1(
        args.out,
        objectives=args.objectives,
        schedulers=args.schedulers or f1.DEFAULT_SCHEDULERS,
        horizon=args.horizon,
        **kwargs,
    )
    print(res["markdown"])
    for objective, (rho, pval) in res["correlations"].items():
        print(f"{objective}: Spearman rho(mean CPE, mean regret) = {rho:.3f}, p = {pval:.2e}")
    print(
        f"total wall time {res['seconds']:.1f} s: {res['ran']} of {res['cells']} cells run now, "
        f"{res['resumed']} resumed from the results file ({args.jobs} workers, {args.backend})"
    )
    print("wrote " + ", ".join(str(p) for p in res["files"]), file=sys.stderr)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import math

    from labsched.evaluation.sweep import Cell, run_sweep

    setting = _setting_from(args)
    agents = [(Path(a).stem, str(a)) for a in args.agent or []]
    schedulers = [(s, "") for s in args.schedulers or []] + agents
    if not schedulers:
        raise ValueError("give --schedulers and/or --agent")
    cells = []
    for objective in args.objectives:
        for run in range(args.runs):
            for name, path in schedulers:
                for h in args.horizons:
                    horizon = math.inf if name == "sequential" else float(h)
                    options = (
                        {"n_simulations": args.ps_simulations} if name == "ps" and args.ps_simulations else {}
                    )
                    cells.append(
                        Cell(
                            objective=objective,
                            scheduler=name,
                            horizon=horizon,
                            run=run,
                            selector=args.selector,
                            options=options,
                            agent_path=path,
                            seed=args.seed,
                            **setting,
                        )
                    )
    out = Path(args.out)
    rows = run_sweep(
        cells,
        args.results or out / "sweep.csv",
        n_jobs=args.jobs,
        backend=args.backend,
        address=args.address,
        resume=not args.no_resume,
        progress=not args.no_progress,
    )
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["objective"], r["scheduler"], r["horizon"]), []).append(r)
    print("| objective | scheduler | h | runs | mean regret | mean CPE | all completed |")
    print("|---|---|---|---|---|---|---|")
    for (objective, name, h), rs in groups.items():
        n = len(rs)
        print(
            f"| {objective} | {name} | {h:g} | {n} | {sum(r['regret'] for r in rs) / n:.4f} | "
            f"{sum(r['cpe'] for r in rs) / n:.1f} | "
            f"{sum(r['completed'] >= r['n_experiments'] for r in rs) / n:.2f} |"
        )
    return 0


def _cmd_queue_eval(args: argparse.Namespace) -> int:
    from labsched.evaluation.queue_protocol import queue_eval

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
    print(res["markdown"])
    print(f"total wall time {res['seconds']:.1f} s ({args.jobs} workers)")
    print("wrote " + ", ".join(str(p) for p in res["files"]), file=sys.stderr)
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
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--plot", action="store_true", help="bar chart and learning curves (default with matplotlib)"
    )
    g.add_argument("--no-plot", action="store_true", help="skip the plots")
    p.set_defaults(func=_cmd_compare)

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
    p.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--plot", action="store_true", help="learning-curve PNG (default with matplotlib)")
    g.add_argument("--no-plot", action="store_true")
    p.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 evaluations, 2 SB3 logs too")
    p.add_argument(
        "--throughput",
        action="store_true",
        help="only measure training env steps/s beside PPO on CartPole-v1 (same settings) and exit",
    )
    p.add_argument("--throughput-steps", type=int, default=5_000)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("benchmark", help="speed figures beside CartPole-v1", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("baselines", help="list baseline names")
    p.set_defaults(func=_cmd_baselines)

    p = sub.add_parser(
        "table2",
        help="regret table of the paper (Table 2): schedulers x objectives x horizons",
        description="Mean regret ± SE per objective, scheduler and horizon in the paper's layout, "
        "with the paper's values; resumable (results CSV) and parallel.",
    )
    _add_sweep_spec_args(p)
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

    p = sub.add_parser(
        "figure1",
        help="CPE vs regret for ~30 diverse schedulers (the paper's Figure 1)",
        description="Mean CPE and mean regret of each scheduler on each objective, Spearman rank "
        "correlation, CSV and scatter plot.",
    )
    _add_sweep_spec_args(p)
    p.add_argument("--horizon", type=float, default=5.0, help="horizon h (default 5)")
    p.add_argument("--objectives", nargs="+", default=["cosines", "hartmann3"])
    p.add_argument(
        "--schedulers", nargs="+", default=None, help="scheduler names (default: the 31 built-in ones)"
    )
    _add_sweep_args(p, "results/figure1", 50)
    p.set_defaults(func=_cmd_figure1)

    p = sub.add_parser(
        "sweep",
        help="regret sweep of chosen schedulers or trained agents",
        description="Objectives x schedulers (baselines, busy:K, bernoulli:P, staged:...) and/or "
        "trained agents x horizons x runs, resumable; prints mean regret and CPE per group.",
    )
    _add_sweep_spec_args(p)
    p.add_argument("--objectives", nargs="+", default=["cosines"])
    p.add_argument("--schedulers", nargs="+", default=None, help="scheduler names")
    p.add_argument("--agent", nargs="+", default=None, help="trained stable-baselines3 .zip files")
    p.add_argument("--horizons", type=float, nargs="+", default=[5.0])
    _add_sweep_args(p, "results/sweep", 10)
    p.set_defaults(func=_cmd_sweep)

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
