"""Text and Gantt-chart pictures of a concurrent-labs execution."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from labsched.envs._lib.reporting import pyplot as _pyplot
from labsched.envs._lib.reporting import save_figure
from labsched.envs.labs.records import ExperimentRecord
from labsched.envs.labs.spec import LabSpec


class ConcurrentLabsEnv(Protocol):
    """What rendering reads of an environment (``ConcurrentLabsEnv`` provides it)."""

    lab_spec: LabSpec

    @property
    def time(self) -> float: ...

    def execution_log(self) -> tuple[ExperimentRecord, ...]: ...

    def running_records(self) -> tuple[ExperimentRecord, ...]: ...


__all__ = ["close_figures", "gantt_figure", "render_ansi", "render_gantt", "save_figure"]

_BAR_WIDTH = 24


def render_ansi(env: ConcurrentLabsEnv) -> str:
    """A compact text picture: one header line and one line per lab."""
    spec = env.lab_spec
    t, h = env.time, spec.horizon
    log = env.execution_log()
    running = {r.lab: r for r in env.running_records()}
    cpe = sum(r.prior for r in log)
    started = len(log) + len(running)
    lines = [
        f"t={t:.3f}/{h:g}  started {started}/{spec.n_experiments}  "
        f"completed {len(log)}  running {len(running)}  CPE {cpe}"
    ]
    pos = min(int(round(_BAR_WIDTH * t / h)), _BAR_WIDTH)
    lines.append("time   [" + "=" * pos + " " * (_BAR_WIDTH - pos) + "]")
    for lab in range(spec.n_labs):
        rec = running.get(lab)
        if rec is None:
            lines.append(f"lab {lab:<2} [{' ' * _BAR_WIDTH}] free")
            continue
        a = min(int(round(_BAR_WIDTH * rec.start / h)), _BAR_WIDTH)
        bar = " " * a + "#" * max(pos - a, 1)
        bar = bar[:_BAR_WIDTH].ljust(_BAR_WIDTH)
        lines.append(f"lab {lab:<2} [{bar}] exp {rec.index} since {rec.start:.2f} (prior {rec.prior})")
    return "\n".join(lines) + "\n"


def gantt_figure(
    records: Iterable[ExperimentRecord],
    n_labs: int,
    horizon: float,
    now: float | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Draw a Gantt chart of an execution on a matplotlib axis and return the figure.

    Completed experiments are solid bars labelled with their prior count; experiments without
    an end (running, or lost at the horizon) are hatched up to ``now`` (default: the horizon).

    Args:
        records: experiment records (``end=None`` for unfinished ones).
        n_labs: number of labs (rows).
        horizon: the horizon, drawn as a red line.
        now: current time, drawn as a dashed line when given.
        title: optional title.
        ax: an existing axis to draw on (a new figure is made otherwise).
    """
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.2, 0.35 * n_labs + 1.4), dpi=100)
    else:
        fig = ax.figure
    cmap = plt.get_cmap("viridis")
    records = list(records)
    max_prior = max([r.prior for r in records] + [1])
    x_end = horizon
    for r in records:
        end = r.end if r.end is not None else (now if now is not None else horizon)
        x_end = max(x_end, end)
        color = cmap(0.15 + 0.75 * r.prior / max_prior)
        ax.barh(
            r.lab,
            end - r.start,
            left=r.start,
            height=0.7,
            color=color,
            edgecolor="black",
            linewidth=0.5,
            hatch=None if r.end is not None else "//",
            alpha=1.0 if r.end is not None else 0.5,
        )
        if end - r.start > 0.02 * horizon:
            ax.text(
                r.start + 0.5 * (end - r.start),
                r.lab,
                str(r.prior),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if r.prior < 0.6 * max_prior else "black",
            )
    ax.axvline(horizon, color="tab:red", linewidth=1.5, label="horizon")
    if now is not None and now < horizon:
        ax.axvline(now, color="grey", linestyle="--", linewidth=1.0, label="now")
    ax.set_xlim(0.0, 1.02 * x_end)
    ax.set_ylim(-0.6, n_labs - 0.4)
    ax.set_yticks(range(n_labs))
    ax.set_yticklabels([f"lab {i}" for i in range(n_labs)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def render_gantt(env: ConcurrentLabsEnv) -> np.ndarray:
    """RGB array (H, W, 3, uint8) of the execution so far."""
    plt = _pyplot()
    spec = env.lab_spec
    records = list(env.execution_log()) + list(env.running_records())
    cpe = sum(r.prior for r in env.execution_log())
    fig = gantt_figure(
        records,
        spec.n_labs,
        spec.horizon,
        now=env.time,
        title=f"t = {env.time:.2f}   completed {len(env.execution_log())}/{spec.n_experiments}   CPE {cpe}",
    )
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def close_figures(env: ConcurrentLabsEnv) -> None:
    """Nothing is kept open between renders; present for symmetry with ``Env.close``."""
    return None
