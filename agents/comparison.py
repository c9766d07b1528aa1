"""Compare baselines and saved agents on one spec, on the same seeds.

``labsched compare ps ofil runs/h5/best_model.zip`` runs every agent on episodes with env seeds
``seed, seed + 1, ...`` (common random numbers: the ``i``-th experiment started in an episode
lasts the same under every agent) and reports mean CPE ± SE, the completion rate and, with an
``objective`` (regret mode: the Bayesian optimisation the schedule drives), the mean regret.
Baselines in CPE mode run through :func:`labsched.evaluation.cpe_table.cpe_table` (parallel
workers; ``sequential`` with its long reference horizon), exactly as before models existed.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.envs.rendering import save_figure
from labsched.envs.spec import LabSpec
from labsched.evaluation.cpe_table import write_csv

__all__ = [
    "CompareRow",
    "compare",
    "is_model_path",
    "plot_comparison",
    "rows_to_markdown",
    "write_csv",
    "write_learning_curves",
]


@dataclass(frozen=True)
class CompareRow:
    """One agent's results (the CPE-table columns first, for CSV compatibility).

    Attributes:
        scheduler: baseline name, or the model path as given.
        horizon: horizon evaluated (``sequential`` runs with its long reference horizon).
        episodes: episodes run.
        mean_cpe, se_cpe: mean CPE and its standard error.
        completion_rate: share of episodes completing all ``n`` experiments.
        mean_completed: mean number completed.
        paper_cpe: the paper's Table 2 value (NaN off the paper's setting and for models).
        seconds: wall time.
        kind: ``"baseline"`` or ``"model"``.
        mean_regret, se_regret: mean regret and its standard error (NaN without an objective).
    """

    scheduler: str
    horizon: float
    episodes: int
    mean_cpe: float
    se_cpe: float
    completion_rate: float
    mean_completed: float
    paper_cpe: float
    seconds: float
    kind: str = "baseline"
    mean_regret: float = math.nan
    se_regret: float = math.nan


def is_model_path(name: str) -> bool:
    """Whether an agent argument names a saved model (a ``.zip`` path or a folder holding one)."""
    p = Path(name)
    return name.endswith(".zip") or p.is_dir() or p.is_file() or Path(name + ".zip").is_file()


def _paper_value(spec: LabSpec, name: str, horizon: float) -> float:
    from labsched.evaluation.cpe_table import PAPER_CPE

    if spec.replace(horizon=5.0) != LabSpec():
        return math.nan
    return PAPER_CPE.get((name, float(horizon)), math.nan)


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def _load_model(path: str, spec: LabSpec):
    from .loading import load_agent

    agent = load_agent(path)
    if agent.spec != spec:
        print(
            f"note: {path} was trained on {agent.spec}; evaluating it on {spec}",
            file=sys.stderr,
        )
        agent = agent.with_spec(spec)
    return agent


def _run_agent(
    name: str, kind: str, spec: LabSpec, episodes: int, seed: int, env_kwargs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Episodes ``seed, seed + 1, ...`` of one agent: (cpe, completed, regret) arrays, horizon, seconds."""
    from labsched import baselines
    from labsched.envs.concurrent_labs import ConcurrentLabsEnv
    from labsched.evaluation.cpe_table import sequential_horizon

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - only baselines then
        pass
    if kind == "model":
        agent = _load_model(name, spec)
    else:
        if name == "sequential":
            spec = spec.replace(horizon=sequential_horizon(spec))
        agent = baselines.make(name, spec, seed=seed)
    env = ConcurrentLabsEnv(spec, **env_kwargs)
    cpe, done, regret = [], [], []
    t0 = time.perf_counter()
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        start = True
        while True:
            action, _ = agent.predict(obs, episode_start=np.array([start]), deterministic=True)
            start = False
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        cpe.append(info["cpe"])
        done.append(info["completed"])
        regret.append(info.get("regret", math.nan))
    return (
        np.array(cpe, float),
        np.array(done, float),
        np.array(regret, float),
        spec.horizon,
        time.perf_counter() - t0,
    )


def compare(
    agents: Sequence[str] | None = None,
    spec: LabSpec | None = None,
    episodes: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
    objective: str | None = None,
    selector: str = "kb-ei",
    progress: bool = True,
) -> list[CompareRow]:
    """Run baselines (by name) and saved agents (model zips or their folders) on the same seeds.

    Args:
        agents: baseline names and/or model paths (default: every registered baseline).
        spec: the problem (default: the paper's setting).
        episodes: episodes per agent, env seeds ``seed .. seed + episodes - 1``.
        seed: first seed.
        n_jobs: worker processes (1 = in-process).
        objective: an objective name (``"cosines"``, ``"hartmann3"``, ...): also run the
            Bayesian optimisation and report the regret.
        selector: the batch selector of regret mode.
        progress: one line per finished agent on stderr.

    Returns:
        One :class:`CompareRow` per agent, in the order given.
    """
    from labsched import baselines

    spec = spec or LabSpec()
    names = list(agents) if agents else sorted(baselines.BASELINES)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    kinds = []
    unknown = []
    for name in names:
        if name.strip().lower() in baselines.BASELINES:
            kinds.append("baseline")
        elif is_model_path(name):
            kinds.append("model")
        else:
            kinds.append("?")
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"unknown scheduler(s) {unknown}; known: {', '.join(sorted(baselines.BASELINES))} "
            "(or the path of a saved model .zip or its folder)"
        )
    names = [n.strip().lower() if k == "baseline" else n for n, k in zip(names, kinds, strict=True)]
    for name, kind in zip(names, kinds, strict=True):
        if kind == "model":
            from .loading import _resolve_zip

            _resolve_zip(name)  # fails early, with a clear message, on a missing model

    results: dict[int, CompareRow] = {}
    todo = list(range(len(names)))
    if objective is None:
        # Baselines exactly as the CPE table runs them (parallel workers, sequential's long horizon).
        from labsched.evaluation.cpe_table import cpe_table

        base_idx = [i for i in todo if kinds[i] == "baseline"]
        if base_idx:
            rows = cpe_table(
                spec,
                horizons=[spec.horizon],
                schedulers=[names[i] for i in base_idx],
                episodes=episodes,
                seed=seed,
                n_jobs=n_jobs,
                progress=progress,
            )
            for i, r in zip(base_idx, rows, strict=True):
                results[i] = CompareRow(**asdict(r), kind="baseline")
        todo = [i for i in todo if kinds[i] == "model"]
        env_kwargs: dict[str, Any] = {}
    else:
        env_kwargs = {"objective": objective, "selector": selector}

    def row(i: int, out) -> CompareRow:
        cpe, done, regret, horizon, seconds = out
        return CompareRow(
            scheduler=names[i],
            horizon=horizon,
            episodes=episodes,
            mean_cpe=float(cpe.mean()),
            se_cpe=_se(cpe),
            completion_rate=float((done >= spec.n_experiments).mean()),
            mean_completed=float(done.mean()),
            paper_cpe=_paper_value(spec, names[i], horizon) if kinds[i] == "baseline" else math.nan,
            seconds=seconds,
            kind=kinds[i],
            mean_regret=float(regret.mean()) if objective is not None else math.nan,
            se_regret=_se(regret) if objective is not None else math.nan,
        )

    def report(r: CompareRow) -> None:
        if progress:
            reg = f"  regret {r.mean_regret:.4f} ± {r.se_regret:.4f}" if objective is not None else ""
            print(
                f"{r.scheduler:<12} CPE {r.mean_cpe:7.2f} ± {r.se_cpe:.2f}  "
                f"complete {r.completion_rate:.3f}{reg}  {r.seconds:6.1f}s",
                file=sys.stderr,
                flush=True,
            )

    if n_jobs == 1 or len(todo) <= 1:
        for i in todo:
            results[i] = row(i, _run_agent(names[i], kinds[i], spec, episodes, seed, env_kwargs))
            report(results[i])
    else:
        from joblib import Parallel, delayed

        runner = Parallel(n_jobs=n_jobs)
        outs = runner(delayed(_run_agent)(names[i], kinds[i], spec, episodes, seed, env_kwargs) for i in todo)
        for i, out in zip(todo, outs, strict=True):
            results[i] = row(i, out)
            report(results[i])
    return [results[i] for i in range(len(names))]


def rows_to_markdown(rows: Sequence[CompareRow]) -> str:
    """Markdown table: one row per agent; CPE ± SE [paper], completion rate, regret if run.

    Without regret it is the CPE table's layout for one horizon.
    """
    with_regret = any(not math.isnan(r.mean_regret) for r in rows)
    horizons = sorted({r.horizon for r in rows if r.scheduler != "sequential"}) or sorted(
        {r.horizon for r in rows}
    )
    h = horizons[0] if horizons else float("nan")
    head = f"| scheduler | h = {h:g}: CPE [paper] | complete |" + (" regret |" if with_regret else "")
    lines = [head, "|---|---|---|" + ("---|" if with_regret else "")]
    for r in rows:
        paper = "" if math.isnan(r.paper_cpe) else f" [{r.paper_cpe:g}]"
        line = f"| {r.scheduler} | {r.mean_cpe:.1f} ± {r.se_cpe:.1f}{paper} | {r.completion_rate:.3f} |"
        if with_regret:
            line += f" {r.mean_regret:.4f} ± {r.se_regret:.4f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[CompareRow], path: str | Path, title: str | None = None) -> Path:
    """Bar chart of mean CPE ± 2 SE per agent (paper values as ticks), and of the regret if run."""
    from labsched.envs.rendering import _pyplot

    plt = _pyplot()
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
    from .loading import METADATA_FILE, _resolve_zip, spec_from_dict
    from .plots import plot_learning_curve

    written = []
    seen = set()
    baseline_cpe = {
        r.scheduler: r.mean_cpe for r in rows if r.kind == "baseline" and r.scheduler != "sequential"
    }
    for r in rows:
        if r.kind != "model":
            continue
        folder = _resolve_zip(r.scheduler).parent
        log = folder / "eval_log.csv"
        if not log.is_file() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        refs: dict[str, float] = {}
        meta_file = folder / METADATA_FILE
        title = str(folder)
        if meta_file.is_file():
            import json

            meta = json.loads(meta_file.read_text())
            refs = dict(meta.get("references") or {})
            if not refs and spec_from_dict(meta["spec"]) == spec:
                refs = baseline_cpe
            title = f"{meta.get('algo', '')} {folder}"
        written.append(
            plot_learning_curve(log, Path(out) / f"learning_curve_{_slug(str(folder))}.png", refs, title)
        )
    return written
