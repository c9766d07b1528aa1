"""The CPE-against-completion frontier: every method traced across its safety knob.

The paper's problem is chance-constrained (maximise CPE subject to P(all n complete by h) >= p),
so a method is one point of a trade-off, and its safety knob moves it along a curve. On common
random numbers (episode ``i`` has env seed ``seed + i`` for every point) :func:`frontier` runs

* policy switching with its internal threshold ``q`` (``ps_thresholds``; ``ps-calibrated`` picks
  one of them),
* keep-``k``-busy for each ``k`` (:class:`KeepBusy`; ``keep-busy-calibrated`` picks one),
* every saved model given, as trained (a Lagrangian model is labelled by its target), and each
  again inside feasibility masks at every ``mask_thresholds`` value (deployment-time masks), and
* the clairvoyant reference (a horizontal line: the exact optimum on small problems, a proven
  upper bound otherwise, averaged over the same episodes),

and draws mean CPE (95% t interval) against the completion rate (Wilson 95% interval) with the
line ``completion = p``. Outputs: ``frontier.png``, ``frontier.csv`` and ``frontier.md``.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.loading import METADATA_FILE, resolve_model_path
from labsched.agents.runner import RunTask, TaskResult, run_tasks
from labsched.baselines.base import BaselinePolicy, LabState
from labsched.envs._lib.reporting import optional_plot, pyplot, save_figure, write_csv
from labsched.envs._lib.stats import mean_ci, p_safe_verdict
from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "DEFAULT_PS_THRESHOLDS",
    "FrontierPoint",
    "FrontierResult",
    "KeepBusy",
    "frontier",
    "frontier_markdown",
    "plot_frontier",
    "write_frontier",
]

DEFAULT_PS_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class KeepBusy(BaselinePolicy):
    """Keep ``k`` labs busy: start ``min(k - running, max_valid)`` experiments at every decision.

    Args:
        spec: the problem.
        k: labs to keep busy (1 <= k <= l).
        seed: unused (deterministic).
    """

    name = "keep-busy"

    def __init__(self, spec: LabSpec, *, k: int, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        self.k = check_int("k", k, 1, spec.n_labs)

    def act(self, state: LabState, memory: Any) -> int:
        return max(0, min(self.k - state.running, state.max_valid))


@dataclass(frozen=True)
class FrontierPoint:
    """One method at one knob value.

    Attributes:
        method: the trace it belongs to (``ps``, ``keep-busy``, a model name, ``<model>+mask``).
        knob: the knob's name (``q``, ``k``, ``target``, ``mask_threshold``; empty for none).
        value: the knob's value (NaN for none).
        episodes: episodes run.
        mean_cpe, cpe_low, cpe_high: mean CPE and its 95% t interval.
        completion, completion_low, completion_high: completion rate and its Wilson 95% interval.
        p_safe: ``"yes"`` / ``"no"`` (one-sided exact binomial test at 5%).
    """

    method: str
    knob: str
    value: float
    episodes: int
    mean_cpe: float
    cpe_low: float
    cpe_high: float
    completion: float
    completion_low: float
    completion_high: float
    p_safe: str


@dataclass
class FrontierResult:
    """What :func:`frontier` measured.

    Attributes:
        spec: the problem.
        points: one per method and knob value.
        clairvoyant_cpe: mean clairvoyant value on the same episodes (NaN if not run).
        clairvoyant_exact: whether it is the exact optimum (else a proven upper bound).
        files: files written by :func:`write_frontier`.
    """

    spec: LabSpec
    points: list[FrontierPoint]
    clairvoyant_cpe: float = math.nan
    clairvoyant_exact: bool = False
    files: list[Path] = field(default_factory=list)


def _model_label(path: str) -> tuple[str, str, float]:
    """``(name, knob, value)`` of a saved model: a Lagrangian model is labelled by its target."""
    zip_path = resolve_model_path(path)
    name = zip_path.parent.name if zip_path.stem in ("model", "best_model") else zip_path.stem
    meta_file = zip_path.parent / METADATA_FILE
    constraint = json.loads(meta_file.read_text()).get("constraint") if meta_file.is_file() else None
    if constraint and constraint.get("kind", "").startswith("lagrangian") and constraint.get("target"):
        return name, "target", float(constraint["target"])
    return name, "", math.nan


def _tasks(
    spec: LabSpec,
    episodes: int,
    seed: int,
    ps_thresholds: Sequence[float],
    keep_busy: Sequence[int],
    models: Sequence[str],
    mask_thresholds: Sequence[float],
    clairvoyant: bool,
) -> list[tuple[RunTask, str, str, float]]:
    """``(task, method, knob, value)`` per point (clairvoyant last, method ``clairvoyant``)."""
    out = []
    for q in ps_thresholds:
        q = check_real("ps threshold", q, 0.0, 1.0, low_open=True, high_open=True)
        out.append((RunTask("ps", spec.replace(p_safe=q), episodes, seed), "ps", "q", q))
    for k in keep_busy:
        k = check_int("keep-busy k", k, 1, spec.n_labs)
        task = RunTask(f"keep-{k}-busy", spec, episodes, seed, factory=functools.partial(KeepBusy, k=k))
        out.append((task, "keep-busy", "k", float(k)))
    for path in models:
        name, knob, value = _model_label(path)
        out.append((RunTask(path, spec, episodes, seed, kind="model"), name, knob, value))
        for t in mask_thresholds:
            t = check_real("mask threshold", t, 0.0, 1.0, low_open=True, high_open=True)
            task = RunTask(path, spec, episodes, seed, kind="model", mask_threshold=t)
            out.append((task, f"{name}+mask", "mask_threshold", t))
    if clairvoyant:
        out.append((RunTask("clairvoyant", spec, episodes, seed), "clairvoyant", "", math.nan))
    return out


def _point(result: TaskResult, method: str, knob: str, value: float, p: float) -> FrontierPoint:
    cpe = np.array([e.cpe for e in result.episodes], dtype=float)
    n = result.task.spec.n_experiments
    ci = mean_ci(cpe)
    v = p_safe_verdict(sum(e.completed >= n for e in result.episodes), len(result.episodes), p)
    c = v.completion
    return FrontierPoint(
        method,
        knob,
        value,
        cpe.size,
        ci.mean,
        ci.low,
        ci.high,
        c.rate,
        c.low,
        c.high,
        "yes" if v.safe else "no",
    )


def frontier(
    spec: LabSpec | None = None,
    *,
    episodes: int = 200,
    seed: int = 0,
    n_jobs: int = 2,
    ps_thresholds: Sequence[float] = DEFAULT_PS_THRESHOLDS,
    keep_busy: Sequence[int] | None = None,
    models: Sequence[str] = (),
    mask_thresholds: Sequence[float] = (),
    clairvoyant: bool = True,
    progress: bool = True,
) -> FrontierResult:
    """Run every method at every knob value on the same episodes.

    Args:
        spec: the problem (default: the paper's setting); ``spec.p_safe`` is the constraint.
        episodes: episodes per point (env seeds ``seed .. seed + episodes - 1``, below the
            calibration seeds).
        seed: first seed.
        n_jobs: worker processes.
        ps_thresholds: PS's internal thresholds ``q`` (empty: no PS trace).
        keep_busy: the ``k`` of keep-``k``-busy (default ``1 .. l``; empty: none).
        models: saved models (``.zip`` or folders).
        mask_thresholds: deployment-time feasibility-mask thresholds, for every model (maskable).
        clairvoyant: also run the clairvoyant reference.
        progress: one line per finished point on stderr.
    """
    spec = spec or LabSpec()
    check_int("episodes", episodes, 2)
    keep_busy = range(1, spec.n_labs + 1) if keep_busy is None else keep_busy
    plan = _tasks(spec, episodes, seed, ps_thresholds, keep_busy, models, mask_thresholds, clairvoyant)

    def report(k: int, i: int, result: TaskResult) -> None:
        if progress:
            _, method, knob, value = plan[i]
            s = result.summary
            tag = f" {knob}={value:g}" if knob else ""
            print(
                f"[{k + 1}/{len(plan)}] {method}{tag}: CPE {s.mean_cpe:.2f}, "
                f"complete {s.completion_rate:.3f}",
                file=sys.stderr,
                flush=True,
            )

    results = run_tasks([t for t, *_ in plan], n_jobs, on_result=report)
    out = FrontierResult(spec, [])
    for (_, method, knob, value), res in zip(plan, results, strict=True):
        if method == "clairvoyant":
            out.clairvoyant_cpe = res.summary.mean_cpe
            out.clairvoyant_exact = all(e.completed >= 0 for e in res.episodes)
        else:
            out.points.append(_point(res, method, knob, value, spec.p_safe))
    return out


def frontier_markdown(result: FrontierResult) -> str:
    """One row per point, grouped by method; the clairvoyant value below."""
    spec = result.spec
    lines = [
        f"Frontier at n = {spec.n_experiments}, l = {spec.n_labs}, h = {spec.horizon:g}, p = {spec.p_safe:g}",
        "",
        "| method | knob | CPE [95% CI] | complete [Wilson 95%] | p-safe |",
        "|---|---|---|---|---|",
    ]
    for pt in result.points:
        knob = f"{pt.knob} = {pt.value:g}" if pt.knob else ""
        lines.append(
            f"| {pt.method} | {knob} | {pt.mean_cpe:.1f} [{pt.cpe_low:.1f}, {pt.cpe_high:.1f}] "
            f"| {pt.completion:.3f} [{pt.completion_low:.3f}, {pt.completion_high:.3f}] | {pt.p_safe} |"
        )
    if not math.isnan(result.clairvoyant_cpe):
        kind = "exact optimum" if result.clairvoyant_exact else "proven upper bound"
        lines += ["", f"clairvoyant ({kind}): mean CPE {result.clairvoyant_cpe:.1f} on the same episodes"]
    return "\n".join(lines) + "\n"


def plot_frontier(result: FrontierResult, path: str | Path) -> Path:
    """CPE (95% CI) against completion (Wilson 95%), one line per method, p and clairvoyant marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    methods = list(dict.fromkeys(pt.method for pt in result.points))
    for i, method in enumerate(methods):
        pts = sorted((pt for pt in result.points if pt.method == method), key=lambda pt: pt.completion)
        xs = np.array([pt.completion for pt in pts])
        ys = np.array([pt.mean_cpe for pt in pts])
        xerr = np.array(
            [[pt.completion - pt.completion_low, pt.completion_high - pt.completion] for pt in pts]
        ).T
        yerr = np.array([[pt.mean_cpe - pt.cpe_low, pt.cpe_high - pt.mean_cpe] for pt in pts]).T
        ax.errorbar(
            xs, ys, xerr=xerr, yerr=yerr, marker="o", ms=4, lw=1.2, capsize=2, color=f"C{i}", label=method
        )
        for pt in pts:
            if pt.knob:
                ax.annotate(
                    f"{pt.value:g}", (pt.completion, pt.mean_cpe), xytext=(3, 3), textcoords="offset points",
                    fontsize=6, color=f"C{i}",
                )  # fmt: skip
    p = result.spec.p_safe
    ax.axvline(p, color="black", ls="--", lw=1, label=f"p = {p:g}")
    if not math.isnan(result.clairvoyant_cpe):
        kind = "exact" if result.clairvoyant_exact else "upper bound"
        ax.axhline(result.clairvoyant_cpe, color="grey", ls=":", lw=1.5, label=f"clairvoyant ({kind})")
    ax.set_xlabel("completion rate P(all n complete by h)")
    ax.set_ylabel("mean CPE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    spec = result.spec
    ax.set_title(
        f"CPE vs completion, n={spec.n_experiments}, l={spec.n_labs}, h={spec.horizon:g} "
        f"({result.points[0].episodes if result.points else 0} common episodes)",
        fontsize=9,
    )
    return save_figure(fig, path)


def write_frontier(result: FrontierResult, out: str | Path, plot: bool = True) -> list[Path]:
    """``frontier.md``, ``frontier.csv`` and (with matplotlib) ``frontier.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "frontier.md").write_text(frontier_markdown(result))
    files = [out / "frontier.md", write_csv(result.points, out / "frontier.csv")]
    if plot:
        with optional_plot():
            files.append(plot_frontier(result, out / "frontier.png"))
    result.files = files
    return files
