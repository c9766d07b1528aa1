"""Issue 14: one MaskablePPO agent trained on ``labsched/Random-v0`` against policy switching (PS)
and OnMEL, on every held-out spec and on a sample of training-distribution specs.

Common random numbers: on every spec, episode ``i`` of every scheduler is
``ConcurrentLabsEnv(spec).reset(seed=i)`` (:func:`labsched.agents.runner.run_tasks`); the agent,
bound to the spec (``RandomSpecAgent.with_spec``), sees exactly the padded observation
``RandomSpecEnv`` would show for that state (checked below on one episode per spec).

Per-episode outcomes are cached in ``episodes.csv`` (one block per spec and scheduler), so the
baselines can run while the agent trains (``--stage baselines``) and the report is rebuilt from
the cache (``--stage report``). Outputs: ``episodes.csv``, ``summary.csv``, ``summary.md``,
``paired_differences.png``.

    python docs/results/random_generalisation/run_study.py --stage all
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

from labsched.agents.loading import load_agent
from labsched.agents.runner import RunTask, run_task
from labsched.envs._lib.reporting import markdown_table, optional_plot, pyplot, save_figure, write_csv
from labsched.envs._lib.stats import mean_ci, paired_difference, wilson_ci
from labsched.envs._lib.threads import torch_threads
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.random_spec_env import HELDOUT_SPECS, RandomSpecEnv, SpecDistribution, duration_cv
from labsched.envs.labs.spec import LabSpec

HERE = Path(__file__).resolve().parent
BASELINES = ("ps", "onmel")
AGENT = "agent"
EPISODE_FIELDS = ("spec", "scheduler", "seed", "cpe", "completed")
#: Seed of the generator drawing the training-distribution specs (not a training or eval seed).
SAMPLE_SEED = 2026


def study_specs(n_train: int) -> dict[str, tuple[str, LabSpec]]:
    """Held-out specs, then ``n_train`` specs drawn from the training distribution: name -> (group, spec)."""
    out = {name: ("held-out", spec) for name, spec in HELDOUT_SPECS.items()}
    rng = np.random.default_rng(SAMPLE_SEED)
    dist = SpecDistribution()
    for i in range(n_train):
        out[f"train-{i}"] = ("training dist.", dist.sample(rng))
    return out


def describe(spec: LabSpec) -> str:
    """A short description of a spec: n, l, h, law, cv, speeds, failures."""
    law = type(spec.duration).__name__
    cv = duration_cv(spec.duration)
    txt = f"n={spec.n_experiments} l={spec.n_labs} h={spec.horizon:g} {law} cv={cv:.2f}"
    if spec.heterogeneous:
        speeds = spec.lab_speeds
        txt += f" speeds {min(speeds):.2f}-{max(speeds):.2f}"
    if spec.failure_prob:
        txt += f" q={spec.failure_prob:.2f}"
    return txt


def read_episodes(path: Path) -> dict[tuple[str, str], list[dict]]:
    """The cached per-episode rows, by (spec, scheduler)."""
    out: dict[tuple[str, str], list[dict]] = {}
    if path.is_file():
        with path.open() as f:
            for row in csv.DictReader(f):
                out.setdefault((row["spec"], row["scheduler"]), []).append(row)
    return out


def append_episodes(path: Path, spec_name: str, scheduler: str, result) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(EPISODE_FIELDS)
        for e in result.episodes:
            w.writerow([spec_name, scheduler, e.seed, e.cpe, e.completed])


def check_same_observation(agent, spec: LabSpec, seed: int = 0) -> None:
    """The bound agent's model input for a ConcurrentLabsEnv episode equals RandomSpecEnv's
    flat observation of the same spec and inner seed, step by step (first 20 steps)."""
    renv = RandomSpecEnv(flatten=True, invalid_action="raise")
    robs, _ = renv.reset(seed=seed, options={"spec": spec})
    inner_seed = int(np.random.Generator(np.random.PCG64(seed)).integers(2**63 - 1))
    cenv = ConcurrentLabsEnv(spec)
    cobs, _ = cenv.reset(seed=inner_seed)
    bound = agent.with_spec(spec)
    for _ in range(20):
        padded = bound._flat(cobs)[0]
        if not np.array_equal(padded, robs):
            raise AssertionError(f"padded observation differs from RandomSpecEnv's on {spec}")
        action, _ = bound.predict(cobs)
        robs, _, te, tr, _ = renv.step(int(action))
        cobs, _, te_inner, tr_inner, _ = cenv.step(int(action))
        if (te, tr) != (te_inner, tr_inner):
            raise AssertionError(f"the two envs' episodes end differently on {spec}")
        if te or tr:
            break


def run(args: argparse.Namespace) -> None:
    """Run the missing (spec, scheduler) blocks of the stage and append them to the cache."""
    torch_threads(1)
    path = args.out / "episodes.csv"
    cached = read_episodes(path)
    schedulers = {"baselines": BASELINES, "agent": (AGENT,), "all": (AGENT, *BASELINES)}[args.stage]
    agent = load_agent(args.model) if AGENT in schedulers else None
    for name, (_, spec) in study_specs(args.train_specs).items():
        if agent is not None:
            check_same_observation(agent, spec)
        for sched in schedulers:
            if (name, sched) in cached:
                continue
            episodes = args.episodes
            task = (
                RunTask(str(args.model), spec, episodes, 0, kind="model")
                if sched == AGENT
                else RunTask(sched, spec, episodes, 0)
            )
            t0 = time.perf_counter()
            result = run_task(task)
            append_episodes(path, name, sched, result)
            print(
                f"{name:<18} {sched:<6} CPE {result.summary.mean_cpe:8.2f}  "
                f"complete {result.summary.completion_rate:.3f}  {time.perf_counter() - t0:6.1f} s",
                file=sys.stderr,
                flush=True,
            )


def summarise(out: Path, n_train: int) -> list[dict]:
    """One row per spec and scheduler: mean CPE [95% CI], completion [Wilson CI], agent - PS."""
    cached = read_episodes(out / "episodes.csv")
    rows = []
    for name, (group, spec) in study_specs(n_train).items():
        ps = cached.get((name, "ps"))
        ps_cpe = {int(r["seed"]): float(r["cpe"]) for r in ps} if ps else {}
        for sched in (AGENT, *BASELINES):
            eps = cached.get((name, sched))
            if not eps:
                continue
            cpe = np.array([float(r["cpe"]) for r in eps])
            done = sum(int(r["completed"]) >= spec.n_experiments for r in eps)
            ci, comp = mean_ci(cpe), wilson_ci(done, len(eps))
            row = {
                "spec": name, "group": group, "description": describe(spec), "scheduler": sched,
                "episodes": len(eps), "mean_cpe": ci.mean, "cpe_low": ci.low, "cpe_high": ci.high,
                "completion_rate": comp.rate, "completion_low": comp.low, "completion_high": comp.high,
                "diff_vs_ps": math.nan, "diff_low": math.nan, "diff_high": math.nan,
                "diff_rel": math.nan, "diff_p_value": math.nan,
            }  # fmt: skip
            if sched != "ps" and ps_cpe:
                seeds = [int(r["seed"]) for r in eps if int(r["seed"]) in ps_cpe]
                a = np.array([float(r["cpe"]) for r in eps if int(r["seed"]) in ps_cpe])
                b = np.array([ps_cpe[s] for s in seeds])
                d = paired_difference(a, b)
                row.update(
                    diff_vs_ps=d.diff.mean, diff_low=d.diff.low, diff_high=d.diff.high,
                    diff_rel=d.diff.mean / b.mean() if b.mean() else math.nan, diff_p_value=d.t_p_value,
                )  # fmt: skip
            rows.append(row)
    return rows


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def write_markdown(rows: list[dict], path: Path) -> None:
    """One line per spec: the three schedulers' mean CPE, completion, and agent - PS."""
    by_spec: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_spec.setdefault(r["spec"], {})[r["scheduler"]] = r
    header = ["spec", "set", "setting", "eps", "agent CPE [95% CI]", "PS CPE [95% CI]", "OnMEL CPE",
              "completion agent / PS / OnMEL", "agent - PS [95% CI]", "rel."]  # fmt: skip
    lines = []
    for name, s in by_spec.items():
        a, p, o = s.get(AGENT), s.get("ps"), s.get("onmel")
        any_row = a or p or o

        def cell(r: dict | None) -> str:
            if r is None:
                return "n/a"
            return f"{_fmt(r['mean_cpe'])} [{_fmt(r['cpe_low'])}, {_fmt(r['cpe_high'])}]"

        comp = " / ".join("n/a" if r is None else f"{r['completion_rate']:.2f}" for r in (a, p, o))
        diff = (
            "n/a"
            if a is None or not math.isfinite(a["diff_vs_ps"])
            else (f"{a['diff_vs_ps']:+.1f} [{a['diff_low']:+.1f}, {a['diff_high']:+.1f}]")
        )
        rel = "n/a" if a is None else f"{100 * a['diff_rel']:+.1f}%"
        lines.append([name, any_row["group"], any_row["description"], any_row["episodes"], cell(a), cell(p),
                      "n/a" if o is None else _fmt(o["mean_cpe"]), comp, diff, rel])  # fmt: skip
    path.write_text(markdown_table(header, lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of the relative paired difference (agent - PS) / PS per spec, with its 95% CI."""
    agent_rows = [r for r in rows if r["scheduler"] == AGENT and math.isfinite(r["diff_vs_ps"])]
    onmel = {r["spec"]: r for r in rows if r["scheduler"] == "onmel" and math.isfinite(r["diff_vs_ps"])}
    with optional_plot():
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(10, 4.8))
        x = np.arange(len(agent_rows))
        for offset, label, source in ((-0.2, "MaskablePPO (Random-v0)", None), (0.2, "OnMEL", onmel)):
            vals, lows, highs, xs = [], [], [], []
            for i, r in enumerate(agent_rows):
                rr = r if source is None else source.get(r["spec"])
                if rr is None:
                    continue
                base = rr["mean_cpe"] - rr["diff_vs_ps"]
                vals.append(100 * rr["diff_vs_ps"] / base)
                lows.append(100 * (rr["diff_vs_ps"] - rr["diff_low"]) / base)
                highs.append(100 * (rr["diff_high"] - rr["diff_vs_ps"]) / base)
                xs.append(x[i] + offset)
            ax.bar(xs, vals, width=0.4, yerr=[lows, highs], capsize=3, label=label)
        n_held = sum(r["group"] == "held-out" for r in agent_rows)
        ax.axvline(n_held - 0.5, color="grey", lw=0.8, ls=":")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([r["spec"] for r in agent_rows], rotation=40, ha="right")
        ax.set_ylabel("paired CPE difference vs PS (% of PS)")
        ax.set_title("Random-v0 agent and OnMEL against policy switching (95% CI, common random numbers)")
        ax.legend()
        fig.tight_layout()
        save_figure(fig, path)
        plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["baselines", "agent", "all", "report"], default="all")
    p.add_argument("--model", type=Path, default=Path("models/maskable_ppo_random"))
    p.add_argument("--episodes", type=int, default=100, help="episodes per spec and scheduler")
    p.add_argument("--train-specs", type=int, default=8, help="training-distribution specs sampled")
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args()
    if args.stage != "report":
        run(args)
    rows = summarise(args.out, args.train_specs)
    write_csv(rows, args.out / "summary.csv")
    write_markdown(rows, args.out / "summary.md")
    plot(rows, args.out / "paired_differences.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
