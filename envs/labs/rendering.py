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

    def failed_records(self) -> tuple[ExperimentRecord, ...]: ...


__all__ = ["close_figures", "gantt_figure", "render_ansi", "render_gantt", "save_figure"]

_BAR_WIDTH = 24


_FINISHED_CHARS = "=-"
#: Face colour of a failed experiment's bar in the Gantt chart (cross-hatched in red).
_FAILED_COLOR = "#f4c7c3"


def _cell(t: float, h: float) -> int:
    """The bar position (0.._BAR_WIDTH) of time ``t``."""
    return min(max(int(round(_BAR_WIDTH * t / h)), 0), _BAR_WIDTH)


def _lab_bar(
    finished: list[ExperimentRecord],
    rec: ExperimentRecord | None,
    t: float,
    h: float,
    failed: list[ExperimentRecord] | None = None,
) -> str:
    """One lab's bar: its finished experiments alternately ``=`` and ``-`` (so neighbours stay
    apart), failed ones ``x``, the running one ``#`` up to now."""
    bar = [" "] * _BAR_WIDTH
    for k, r in enumerate(finished):
        a = min(_cell(r.start, h), _BAR_WIDTH - 1)
        b = max(_cell(r.end if r.end is not None else t, h), a + 1)
        bar[a:b] = _FINISHED_CHARS[k % 2] * (b - a)
    for r in failed or ():
        a = min(_cell(r.start, h), _BAR_WIDTH - 1)
        b = max(_cell(r.end if r.end is not None else t, h), a + 1)
        bar[a:b] = "x" * (b - a)
    if rec is not None:
        a = min(_cell(rec.start, h), _BAR_WIDTH - 1)
        b = max(_cell(t, h), a + 1)
        bar[a:b] = "#" * (b - a)
    return "".join(bar)


def render_ansi(env: ConcurrentLabsEnv) -> str:
    """A compact text picture: a header line, a time line with the legend, and one line per lab
    with its whole schedule so far (finished experiments ``=``/``-``, the running one ``#``), so
    the render at the end of an episode shows the finished schedule."""
    spec = env.lab_spec
    t, h = env.time, spec.horizon
    log = env.execution_log()
    failed = env.failed_records() if spec.has_failures else ()
    running = {r.lab: r for r in env.running_records()}
    over = t >= h - 1e-9
    cpe = sum(r.prior for r in log)
    started = len(log) + len(failed) + len(running)
    lost = f"  failed {len(failed)}" if spec.has_failures else ""
    lines = [
        f"t={t:.3f}/{h:g}  started {started}/{spec.n_experiments}  "
        f"completed {len(log)}{lost}  running {len(running)}  CPE {cpe}"
        + ("  (horizon reached)" if over else "")
    ]
    pos = _cell(t, h)
    now = "." * max(pos - 1, 0) + ("|" if pos else "")
    x = ", x failed" if spec.has_failures else ""
    lines.append(f"time   [{now.ljust(_BAR_WIDTH)}]  legend: =/- finished{x}, # running, | now, ] horizon")
    by_lab: dict[int, list[ExperimentRecord]] = {lab: [] for lab in range(spec.n_labs)}
    for r in sorted(log, key=lambda r: r.start):
        by_lab[r.lab].append(r)
    failed_by_lab: dict[int, list[ExperimentRecord]] = {lab: [] for lab in range(spec.n_labs)}
    for r in failed:
        failed_by_lab[r.lab].append(r)
    for lab in range(spec.n_labs):
        rec, done = running.get(lab), by_lab[lab]
        bar = _lab_bar(done, rec, t, h, failed_by_lab[lab])
        tail = f"; {len(done)} finished" if done else ""
        if failed_by_lab[lab]:
            tail += f"; {len(failed_by_lab[lab])} failed"
        if rec is None:
            lines.append(f"lab {lab:<2} [{bar}] free{tail}")
        elif over:
            lines.append(
                f"lab {lab:<2} [{bar}] exp {rec.index} unfinished at the horizon (prior {rec.prior}){tail}"
            )
        else:
            lines.append(
                f"lab {lab:<2} [{bar}] exp {rec.index} since {rec.start:.2f} (prior {rec.prior}){tail}"
            )
    return "\n".join(lines) + "\n"


def gantt_figure(
    records: Iterable[ExperimentRecord],
    n_labs: int,
    horizon: float,
    now: float | None = None,
    title: str | None = None,
    ax: Any = None,
    failed: Iterable[ExperimentRecord] = (),
) -> Any:
    """Draw a Gantt chart of an execution on a matplotlib axis and return the figure.

    Completed experiments are solid bars labelled with their prior count; experiments without
    an end (running, or lost at the horizon) are hatched up to ``now`` (default: the horizon);
    failed experiments (``failed``) are light red bars cross-hatched and marked ``x``.

    Args:
        records: experiment records (``end=None`` for unfinished ones).
        n_labs: number of labs (rows).
        horizon: the horizon, drawn as a red line.
        now: current time, drawn as a dashed line when given.
        title: optional title.
        ax: an existing axis to draw on (a new figure is made otherwise).
        failed: records of the experiments that failed (their lab time is drawn, no prior).
    """
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.2, 0.35 * n_labs + 1.8), dpi=100)
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
    failed = list(failed)
    x_end = max(x_end, _draw_failed(ax, failed, horizon if now is None else now, horizon))
    ax.axvline(horizon, color="tab:red", linewidth=1.5, label="horizon")
    if now is not None and now < horizon:
        ax.axvline(now, color="grey", linestyle="--", linewidth=1.0, label="now")
    _format_axes(ax, n_labs, x_end)
    handles = _legend_handles(cmap, now is not None and now < horizon, bool(failed))
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        borderaxespad=0.2,
        ncol=max(4, len(handles)),
        fontsize=7,
        frameon=False,
    )
    if title:
        ax.set_title(title, fontsize=9, pad=20)
    fig.tight_layout()
    return fig


def _format_axes(ax: Any, n_labs: int, x_end: float) -> None:
    """Limits, one labelled row per lab (lab 0 on top) and the time axis."""
    ax.set_xlim(0.0, 1.02 * x_end)
    ax.set_ylim(-0.6, n_labs - 0.4)
    ax.set_yticks(range(n_labs))
    ax.set_yticklabels([f"lab {i}" for i in range(n_labs)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time", fontsize=8)
    ax.set_ylabel("lab", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def _draw_failed(ax: Any, failed: list[ExperimentRecord], now: float, horizon: float) -> float:
    """Draw the failed experiments (light red, cross-hatched, marked ``x``); returns the latest
    end drawn (0 when none)."""
    x_end = 0.0
    for r in failed:
        end = r.end if r.end is not None else now
        x_end = max(x_end, end)
        ax.barh(r.lab, end - r.start, left=r.start, height=0.7, color=_FAILED_COLOR, edgecolor="tab:red")
        ax.patches[-1].set(linewidth=0.8, hatch="xx")
        if end - r.start > 0.02 * horizon:
            ax.text(r.start + 0.5 * (end - r.start), r.lab, "x", ha="center", va="center", fontsize=7)
    return x_end


def _legend_handles(cmap: Any, with_now: bool, with_failed: bool = False) -> list[Any]:
    """Legend entries: finished and running bars, the horizon and (when drawn) failed bars and
    the now line."""
    from matplotlib.lines import Line2D  # optional heavy dependency
    from matplotlib.patches import Patch  # optional heavy dependency

    handles = [
        Patch(facecolor=cmap(0.5), edgecolor="black", linewidth=0.5, label="finished (number: prior count)"),
        Patch(
            facecolor=cmap(0.5),
            edgecolor="black",
            linewidth=0.5,
            hatch="//",
            alpha=0.5,
            label="running / unfinished",
        ),
        Line2D([0], [0], color="tab:red", linewidth=1.5, label="horizon"),
    ]
    if with_failed:
        handles.insert(
            2,
            Patch(facecolor=_FAILED_COLOR, edgecolor="tab:red", linewidth=0.8, hatch="xx", label="failed"),
        )
    if with_now:
        handles.append(Line2D([0], [0], color="grey", linestyle="--", linewidth=1.0, label="now"))
    return handles


def render_gantt(env: ConcurrentLabsEnv) -> np.ndarray:
    """RGB array (H, W, 3, uint8) of the execution so far."""
    plt = _pyplot()
    spec = env.lab_spec
    records = list(env.execution_log()) + list(env.running_records())
    failed = env.failed_records() if spec.has_failures else ()
    cpe = sum(r.prior for r in env.execution_log())
    lost = f"   failed {len(failed)}" if spec.has_failures else ""
    done = f"completed {len(env.execution_log())}/{spec.n_experiments}{lost}"
    fig = gantt_figure(
        records,
        spec.n_labs,
        spec.horizon,
        now=env.time,
        title=f"t = {env.time:.2f}   {done}   CPE {cpe}",
        failed=failed,
    )
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def close_figures(env: ConcurrentLabsEnv) -> None:
    """Nothing is kept open between renders; present for symmetry with ``Env.close``."""
    return None
