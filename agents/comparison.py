"""Compare baselines and saved agents on one spec, on the same seeds.

``labsched compare ps ofil runs/h5/best_model.zip`` runs every agent on episodes with env seeds
``seed, seed + 1, ...`` (common random numbers: the ``i``-th experiment started in an episode
lasts the same under every agent) and reports, per agent, mean CPE with a 95% t interval, the
completion rate with its Wilson 95% interval, the **p-safe** verdict (completion not
significantly below ``p``: one-sided exact binomial test at level ``alpha`` = 5%), the paired CPE
difference against a reference agent on the same episodes (t interval, paired t-test p-value;
default reference: the first agent; ``clairvoyant`` may be named as the reference: it bounds
every policy episode by episode) and, with an ``objective`` (regret mode: the Bayesian
optimisation the schedule drives), the mean regret.
Everything runs on :func:`labsched.agents.runner.run_tasks` (parallel workers; ``sequential``
with its long reference horizon), the runner of the CPE table too: a baseline's numbers here
are its numbers there.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.loading import METADATA_FILE, resolve_model_path
from labsched.agents.plots import plot_learning_curve
from labsched.agents.runner import CpeRow, RunTask, TaskResult, run_tasks
from labsched.baselines.labs.paper import paper_cpe
from labsched.baselines.registry import BASELINES
from labsched.envs._lib.reporting import optional_plot, pyplot, save_figure, write_csv
from labsched.envs._lib.stats import mean_ci, p_safe_verdict, paired_difference
from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "CompareRow",
    "compare",
    "is_model_path",
    "plot_comparison",
    "rows_to_markdown",
    "write_comparison",
    "write_csv",
    "write_learning_curves",
]


@dataclass(frozen=True)
class CompareRow(CpeRow):
    """One agent's results: the CPE-table columns (:class:`~labsched.agents.runner.CpeRow`) first,
    for CSV compatibility, then the comparison's own.

    Attributes:
        scheduler: baseline name, or the model path as given.
        horizon: horizon evaluated (in regret mode ``sequential`` reports its long reference
            horizon; in CPE mode the table's horizon, as the CPE table does).
        episodes: episodes run.
        mean_cpe, se_cpe: mean CPE and its standard error.
        completion_rate: share of episodes completing all ``n`` experiments.
        mean_completed: mean number completed.
        paper_cpe: the paper's Table 2 value (NaN off the paper's setting and for models).
        seconds: wall time.
        kind: ``"baseline"`` or ``"model"``.
        mean_regret, se_regret: mean regret and its standard error (NaN without an objective).
        cpe_low, cpe_high: 95% t interval of the mean CPE.
        completion_low, completion_high: Wilson 95% interval of the completion rate (NaN when
            the completion is unknown: the clairvoyant bound).
        p_safe: ``"yes"`` (completion not significantly below ``p``), ``"no"`` or ``"n/a"``.
        p_safe_p_value: one-sided exact binomial p-value of ``H0: completion >= p``.
        reference: the agent the differences are taken against.
        diff_cpe, diff_low, diff_high: mean of ``CPE - CPE(reference)`` over the same episodes,
            with its 95% t interval.
        diff_p_value: two-sided paired t-test p-value.
    """

    kind: str = "baseline"
    mean_regret: float = math.nan
    se_regret: float = math.nan
    cpe_low: float = math.nan
    cpe_high: float = math.nan
    completion_low: float = math.nan
    completion_high: float = math.nan
    p_safe: str = "n/a"
    p_safe_p_value: float = math.nan
    reference: str = ""
    diff_cpe: float = math.nan
    diff_low: float = math.nan
    diff_high: float = math.nan
    diff_p_value: float = math.nan


def is_model_path(name: str) -> bool:
    """Whether an agent argument names a saved model (a ``.zip`` path or a folder holding one)."""
    p = Path(name)
    return name.endswith(".zip") or p.is_dir() or p.is_file() or Path(name + ".zip").is_file()


def _classify(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, kind)`` per agent argument; unknown names raise one ``ValueError`` for all."""
    out, unknown = [], []
    for name in names:
        if name.strip().lower() in BASELINES:
            out.append((BASELINES.canonical(name), "baseline"))
        elif is_model_path(name):
            resolve_model_path(name)  # fails early, with a clear message, on a missing model
            out.append((name, "model"))
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"unknown scheduler(s) {unknown}; known: {', '.join(sorted(BASELINES))} "
            "(or the path of a saved model .zip or its folder)"
        )
    return out


def _cpe(result: TaskResult) -> np.ndarray:
    return np.array([e.cpe for e in result.episodes], dtype=float)


def _judged(
    row: CompareRow, result: TaskResult, ref: TaskResult | None, p: float, alpha: float
) -> CompareRow:
    """``row`` with the intervals, the p-safe verdict and the paired difference against ``ref``."""
    cpe = _cpe(result)
    extra: dict[str, Any] = {}
    if cpe.size:
        ci = mean_ci(cpe)
        extra.update(cpe_low=ci.low, cpe_high=ci.high)
    known = [e.completed for e in result.episodes if e.completed >= 0]
    if known:
        n = result.task.spec.n_experiments
        v = p_safe_verdict(sum(c >= n for c in known), len(known), p, alpha)
        extra.update(
            completion_low=v.completion.low,
            completion_high=v.completion.high,
            p_safe="yes" if v.safe else "no",
            p_safe_p_value=v.p_value,
        )
    if ref is not None:
        ref_cpe = _cpe(ref)
        extra["reference"] = ref.task.name
        if cpe.size >= 2 and ref_cpe.shape == cpe.shape:
            d = paired_difference(cpe, ref_cpe)
            extra.update(
                diff_cpe=d.diff.mean, diff_low=d.diff.low, diff_high=d.diff.high, diff_p_value=d.t_p_value
            )
    return dataclasses.replace(row, **extra)


def _row(result: TaskResult, spec: LabSpec, regret_mode: bool) -> CompareRow:
    task, s = result.task, result.summary
    # CPE mode reports the table's horizon (as the CPE table does), regret mode the horizon run.
    horizon = result.horizon if regret_mode else task.spec.horizon
    return CompareRow(
        scheduler=task.name,
        horizon=horizon,
        episodes=s.n_episodes,
        mean_cpe=s.mean_cpe,
        se_cpe=s.se_cpe,
        completion_rate=s.completion_rate,
        mean_completed=s.mean_completed,
        paper_cpe=paper_cpe(spec, task.name, horizon) if task.kind == "baseline" else math.nan,
        seconds=s.seconds,
        kind=task.kind,
        mean_regret=s.mean_regret if regret_mode else math.nan,
        se_regret=s.se_regret if regret_mode else math.nan,
    )


def _report(r: CompareRow) -> None:
    reg = f"  regret {r.mean_regret:.4f} ± {r.se_regret:.4f}" if not math.isnan(r.mean_regret) else ""
    print(
        f"{r.scheduler:<12} CPE {r.mean_cpe:7.2f} ± {r.se_cpe:.2f}  "
        f"complete {r.completion_rate:.3f}{reg}  {r.seconds:6.1f}s",
        file=sys.stderr,
        flush=True,
    )


# size: 90 lines, 33 of them the docstring of the public entry point; the body builds tasks and rows.
def compare(
    agents: Sequence[str] | None = None,
    spec: LabSpec | None = None,
    episodes: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
    objective: str | None = None,
    selector: str = "kb-ei",
    progress: bool = True,
    trust_model_file: bool = False,
    reference: str | None = None,
    p: float | None = None,
    alpha: float = 0.05,
    mask_threshold: float | None = None,
) -> list[CompareRow]:
    """Run baselines (by name) and saved agents (model zips or their folders) on the same seeds.

    Args:
        agents: baseline names and/or model paths (default: every registered baseline except the
            clairvoyant reference).
        spec: the problem (default: the paper's setting).
        episodes: episodes per agent, env seeds ``seed .. seed + episodes - 1``.
        seed: first seed.
        n_jobs: worker processes (1 = in-process).
        objective: an objective name (``"cosines"``, ``"hartmann3"``, ...): also run the
            Bayesian optimisation and report the regret.
        selector: the batch selector of regret mode.
        progress: one line per finished agent on stderr.
        trust_model_file: load saved agents with ``trust=True`` (pickled files of older labsched
            versions or third parties). **Unpickling runs any code the files contain: only for
            files from a source you trust.**
        reference: the agent the paired CPE differences are taken against (default: the first;
            a name not among ``agents`` is run too and listed last, e.g. ``"clairvoyant"``).
        p: the completion probability of the p-safe verdict (default ``spec.p_safe``).
        alpha: level of the one-sided exact binomial test of the verdict.
        mask_threshold: saved agents act inside feasibility masks at this threshold in (0, 1)
            (default: the deployment or training mask their ``agent.json`` records, if any).

    Returns:
        One :class:`CompareRow` per agent, in the order given.
    """
    spec = spec or LabSpec()
    # By default every policy that can run on its own: the clairvoyant reference reads the
    # episode's durations (it needs an env handle) and is left to explicit requests.
    names = (
        list(agents) if agents else [n for n, c in BASELINES.items() if not getattr(c, "clairvoyant", False)]
    )
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    check_int("seed", seed)
    p = spec.p_safe if p is None else p
    p_safe_verdict(1, 1, p, alpha)  # checks p and alpha before any episode runs
    if mask_threshold is not None:
        check_real("mask_threshold", mask_threshold, 0.0, 1.0, low_open=True, high_open=True)
    env_kwargs: dict[str, Any] = {} if objective is None else {"objective": objective, "selector": selector}
    agents_kinds = _classify(names)
    ref_index = 0
    if reference is not None:
        ref_name, ref_kind = _classify([reference])[0]
        matches = [i for i, (n, _) in enumerate(agents_kinds) if n == ref_name]
        if matches:
            ref_index = matches[0]
        else:
            agents_kinds.append((ref_name, ref_kind))
            ref_index = len(agents_kinds) - 1
    tasks = [
        RunTask(
            name,
            spec,
            episodes,
            seed,
            kind=kind,
            env_kwargs=env_kwargs,
            trust=bool(trust_model_file),
            mask_threshold=mask_threshold if kind == "model" else None,
        )
        for name, kind in agents_kinds
    ]
    regret_mode = objective is not None

    def report(k: int, i: int, result: TaskResult) -> None:
        if progress:
            _report(_row(result, spec, regret_mode))

    results = run_tasks(tasks, n_jobs, on_result=report)
    ref = results[ref_index]
    return [_judged(_row(r, spec, regret_mode), r, ref, p, alpha) for r in results]


def _interval(low: float, high: float, digits: int) -> str:
    return "" if math.isnan(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"


def _pvalue(p: float) -> str:
    return "" if math.isnan(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def rows_to_markdown(rows: Sequence[CompareRow], p: float | None = None) -> str:
    """Markdown table: one row per agent.

    Columns: mean CPE with its 95% interval [paper value]; completion rate [Wilson 95%]; the
    p-safe verdict (one-sided exact binomial p-value); the paired CPE difference against the
    reference [95% interval] and its paired t-test p-value; the regret when run.
    """
    with_regret = any(not math.isnan(r.mean_regret) for r in rows)
    horizons = sorted({r.horizon for r in rows if r.scheduler != "sequential"}) or sorted(
        {r.horizon for r in rows}
    )
    h = horizons[0] if horizons else float("nan")
    ref = next((r.reference for r in rows if r.reference), "")
    p_txt = f" (p = {p:g})" if p is not None else ""
    head = (
        f"| scheduler | h = {h:g}: CPE [95% CI] (paper) | complete [Wilson 95%] | p-safe{p_txt} |"
        f" CPE − {_short(ref) or 'reference'} [95% CI] | paired p |" + (" regret |" if with_regret else "")
    )
    lines = [head, "|---|---|---|---|---|---|" + ("---|" if with_regret else "")]
    for r in rows:
        paper = "" if math.isnan(r.paper_cpe) else f" ({r.paper_cpe:g})"
        complete = "n/a" if math.isnan(r.completion_rate) else f"{r.completion_rate:.3f}"
        verdict = r.p_safe if r.p_safe == "n/a" else f"{r.p_safe} ({_pvalue(r.p_safe_p_value)})"
        if r.scheduler == r.reference:
            diff = "reference"
        elif math.isnan(r.diff_cpe):
            diff = ""
        else:
            diff = f"{r.diff_cpe:+.2f}{_interval(r.diff_low, r.diff_high, 2)}"
        line = (
            f"| {r.scheduler} | {r.mean_cpe:.1f}{_interval(r.cpe_low, r.cpe_high, 1)}{paper} "
            f"| {complete}{_interval(r.completion_low, r.completion_high, 3)} | {verdict} | {diff} "
            f"| {_pvalue(r.diff_p_value) if r.scheduler != r.reference else ''} |"
        )
        if with_regret:
            line += f" {r.mean_regret:.4f} ± {r.se_regret:.4f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[CompareRow], path: str | Path, title: str | None = None) -> Path:
    """Bar chart of mean CPE ± 2 SE per agent (paper values as ticks), and of the regret if run."""
    plt = pyplot()
    with_regret = any(not math.isnan(r.mean_regret) for r in rows)
    fig, axes = plt.subplots(1, 2 if with_regret else 1, figsize=(10 if with_regret else 7, 4), dpi=110)
    axes = np.atleast_1d(axes)
    labels = [_short(r.scheduler) for r in rows]
    colors = ["C1" if r.kind == "model" else "C0" for r in rows]
    xs = np.arange(len(rows))
    ax = axes[0]
    ax.bar(xs, [r.mean_cpe for r in rows], yerr=[2 * _nz(r.se_cpe) for r in rows], color=colors, capsize=3)
    paper = [r.paper_cpe for r in rows]
    if any(not math.isnan(p) for p in paper):
        ax.scatter(xs, paper, marker="_", s=300, color="black", zorder=3, label="paper")
        ax.legend(fontsize=8)
    for x, r in zip(xs, rows, strict=True):
        ax.annotate(
            f"{r.completion_rate:.2f}",
            (x, 0),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color="white",
        )
    ax.set_ylabel("mean CPE (± 2 SE); white: completion rate")
    if with_regret:
        ax2 = axes[1]
        ax2.bar(
            xs,
            [r.mean_regret for r in rows],
            yerr=[2 * _nz(r.se_regret) for r in rows],
            color=colors,
            capsize=3,
        )
        ax2.set_ylabel("mean regret (± 2 SE)")
    for a in axes:
        a.set_xticks(xs)
        a.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        a.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "agents on the same episodes (blue: baselines, orange: trained models)", fontsize=9)
    return save_figure(fig, path)


def _nz(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _slug(name: str) -> str:
    keep = [c if c.isalnum() else "_" for c in name.strip("./")]
    return "".join(keep).strip("_")[-60:] or "model"


def write_learning_curves(rows: Sequence[CompareRow], out: str | Path, spec: LabSpec) -> list[Path]:
    """The learning curve of every compared model whose folder holds an ``eval_log.csv``.

    Reference lines: the baselines recorded at training time on the evaluation episodes, else
    the compared baselines when the model was trained on this spec.
    """
    written = []
    seen = set()
    baseline_cpe = {
        r.scheduler: r.mean_cpe for r in rows if r.kind == "baseline" and r.scheduler != "sequential"
    }
    for r in rows:
        if r.kind != "model":
            continue
        folder = resolve_model_path(r.scheduler).parent
        log = folder / "eval_log.csv"
        if not log.is_file() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        refs: dict[str, float] = {}
        meta_file = folder / METADATA_FILE
        title = str(folder)
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            refs = dict(meta.get("references") or {})
            if not refs and meta.get("spec") and LabSpec.from_dict(meta["spec"]) == spec:
                refs = baseline_cpe
            title = f"{meta.get('algo', '')} {folder}"
        written.append(
            plot_learning_curve(log, Path(out) / f"learning_curve_{_slug(str(folder))}.png", refs, title)
        )
    return written


def write_comparison(rows: Sequence[CompareRow], out: str | Path, spec: LabSpec, plot: bool) -> list[Path]:
    """Write ``compare.md`` and ``compare.csv`` (and with ``plot`` the bar chart and the learning
    curves of the compared models) to ``out``; returns the files written.

    A missing matplotlib skips the plots with a note on stderr.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(rows_to_markdown(rows, spec.p_safe))
    written = [out / "compare.md", write_csv(rows, out / "compare.csv")]
    if plot:
        with optional_plot():
            written.append(plot_comparison(rows, out / "compare.png"))
            written.extend(write_learning_curves(rows, out, spec))
    return written
