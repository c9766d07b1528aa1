"""The campaign dashboard: one self-contained HTML file (Plotly with its JavaScript embedded).

Sections: status and thresholds; posterior confidence (mean and sd, contour for d = 2, 1-d
slices through the recommendation otherwise; observed, running and recommended points); the
candidates' acquisition or information values at the last decision with the chosen batch; the
calendar (Gantt chart of finished, running and planned experiments per lab against the horizon,
"now" marked); progress (best observed, recommended value +- sd, integrated variance, against
the thresholds); the decision log. Every chart has its table below it, and clicking a row of
the decision log highlights the points that decision chose in the charts. The file states its
data source (the journal) and the code version. Needs the ``dashboard`` extra (plotly).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.campaign import rationale as rat
from labsched.agents.campaign import report_data as rd
from labsched.agents.campaign.config import code_version

__all__ = ["write_report"]

_COLORS = {
    "done": "#2a9d8f",
    "failed": "#d62828",
    "running": "#f4a261",
    "planned": "#adb5bd",
    "initial": "#577590",
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1150px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}tr.sel{background:#ffe8a3}
tr.click{cursor:pointer}tr.click:hover{background:#f0f7ff}.meta{font-size:.85em;color:#555}
.stop{color:#b00;font-weight:bold}details{margin:.3em 0}
"""

_JS = """
function lsHighlight(ids, row){
  document.querySelectorAll('tr.sel').forEach(function(r){r.classList.remove('sel');});
  if(row){row.classList.add('sel');}
  document.querySelectorAll('.js-plotly-plot').forEach(function(gd){
    (gd.data||[]).forEach(function(tr, k){
      if(!tr.customdata || tr.type==='contour'){return;}
      var sel=[]; tr.customdata.forEach(function(c,i){ if(ids.indexOf(c)>=0){sel.push(i);} });
      Plotly.restyle(gd, {selectedpoints:[ids.length? sel : null]}, [k]);
    });
  });
  ids.forEach(function(i){var r=document.getElementById('order-'+i); if(r){r.classList.add('sel');}});
}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def _table(rows: list[dict[str, Any]], columns: list[str], *, row_ids: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, r in enumerate(rows):
        rid = f' id="{row_ids[i]}"' if row_ids else ""
        cells = "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns)
        body.append(f"<tr{rid}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _points_figure(go: Any, surf: dict[str, Any], points: list[dict[str, Any]], rec: dict | None) -> Any:
    """The posterior with the points: contours of mean and sd (2-d), else one slice a dimension."""
    if surf["kind"] == "contour":
        return _contour_figure(go, surf, points, rec)
    return _slices_figure(go, surf, points)


def _contour_figure(go: Any, surf: dict[str, Any], points: list[dict[str, Any]], rec: dict | None) -> Any:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("posterior mean", "posterior sd"))
    ax = surf["axes"]
    for col, key, scale in ((1, "mean", "Viridis"), (2, "sd", "Magma")):
        fig.add_trace(
            go.Contour(x=ax[0], y=ax[1], z=surf[key], colorscale=scale, showscale=False, name=key),
            row=1,
            col=col,
        )
        for kind in ("initial", "done", "running"):
            pts = [p for p in points if p["kind"] == kind]
            if not pts:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p["x"][0] for p in pts],
                    y=[p["x"][1] for p in pts],
                    mode="markers",
                    name=kind,
                    legendgroup=kind,
                    showlegend=col == 1,
                    marker={
                        "color": _COLORS[kind],
                        "size": 9,
                        "line": {"width": 1, "color": "white"},
                        "symbol": "x" if kind == "running" else "circle",
                    },
                    customdata=[p["id"] for p in pts],
                    hovertemplate="order %{customdata}<br>x=(%{x:.3g}, %{y:.3g})<extra>" + kind + "</extra>",
                ),
                row=1,
                col=col,
            )
        if rec:
            fig.add_trace(
                go.Scatter(
                    x=[rec["x"][0]],
                    y=[rec["x"][1]],
                    mode="markers",
                    name="recommended",
                    legendgroup="rec",
                    showlegend=col == 1,
                    marker={"symbol": "star", "size": 16, "color": "gold", "line": {"width": 1}},
                ),
                row=1,
                col=col,
            )
    return fig


def _slices_figure(go: Any, surf: dict[str, Any], points: list[dict[str, Any]]) -> Any:
    from plotly.subplots import make_subplots

    slices = surf["slices"]
    fig = make_subplots(rows=1, cols=len(slices), subplot_titles=[f"x{s['dim']}" for s in slices])
    for s in slices:
        t, m, sd = np.array(s["t"]), np.array(s["mean"]), np.array(s["sd"])
        c = s["dim"] + 1
        fig.add_trace(
            go.Scatter(
                x=np.r_[t, t[::-1]],
                y=np.r_[m + 2 * sd, (m - 2 * sd)[::-1]],
                fill="toself",
                line={"width": 0},
                fillcolor="rgba(87,117,144,0.25)",
                name="mean ± 2 sd",
                showlegend=c == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=c,
        )
        fig.add_trace(
            go.Scatter(x=t, y=m, name="posterior mean", line={"color": "#577590"}, showlegend=c == 1),
            row=1,
            col=c,
        )
        for kind in ("initial", "done", "running"):
            pts = [p for p in points if p["kind"] == kind]
            if pts:
                fig.add_trace(
                    go.Scatter(
                        x=[p["x"][s["dim"]] for p in pts],
                        y=[p["y"] if p["y"] is not None else p["mean"] for p in pts],
                        mode="markers",
                        name=kind,
                        legendgroup=kind,
                        showlegend=c == 1,
                        customdata=[p["id"] for p in pts],
                        marker={"color": _COLORS[kind], "symbol": "x" if kind == "running" else "circle"},
                    ),
                    row=1,
                    col=c,
                )
    return fig


def _calendar_figure(go: Any, rows: list[dict[str, Any]], now: float, horizon: float) -> Any:
    fig = go.Figure()
    for status in ("done", "failed", "running", "planned"):
        rs = [r for r in rows if r["status"] == status]
        if not rs:
            continue
        fig.add_trace(
            go.Bar(
                y=[r["lab"] for r in rs],
                x=[r["end"] - r["start"] for r in rs],
                base=[r["start"] for r in rs],
                orientation="h",
                name=status,
                marker={"color": _COLORS[status], "line": {"width": 1, "color": "white"}},
                customdata=[r["order"] for r in rs],
                hovertemplate="order %{customdata}<br>%{base:.3g} to %{x:.3g} long<extra>"
                + status
                + "</extra>",
            )
        )
    fig.add_vline(x=now, line={"color": "black", "dash": "dash"}, annotation_text="now")
    fig.add_vline(x=horizon, line={"color": "#b00"}, annotation_text="horizon")
    fig.update_layout(
        barmode="overlay", xaxis_title="campaign time", height=140 + 40 * len({r["lab"] for r in rows})
    )
    fig.update_yaxes(categoryorder="category descending")
    return fig


def _progress_figure(go: Any, rows: list[dict[str, Any]], stop_when: dict[str, float]) -> Any:
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    t = [r["time"] for r in rows]
    fig.add_trace(
        go.Scatter(
            x=t,
            y=[r["best_observed"] for r in rows],
            name="best observed",
            mode="lines+markers",
            line={"shape": "hv"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=[r["recommended_mean"] for r in rows],
            name="recommended (mean ± sd)",
            mode="markers",
            error_y={"type": "data", "array": [r["recommended_sd"] or 0.0 for r in rows]},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t, y=[r["integrated_variance"] for r in rows], name="integrated variance", line={"dash": "dot"}
        ),
        secondary_y=True,
    )
    if "sd_at_best" in stop_when:
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[r["recommended_sd"] for r in rows],
                name="sd at recommendation",
                line={"color": "#b00"},
            ),
            secondary_y=True,
        )
        fig.add_hline(
            y=stop_when["sd_at_best"],
            secondary_y=True,
            line={"color": "#b00", "dash": "dash"},
            annotation_text="sd threshold",
        )
    fig.update_xaxes(title_text="campaign time")
    fig.update_yaxes(title_text="outcome", secondary_y=False)
    fig.update_yaxes(title_text="variance / sd", secondary_y=True)
    return fig


def _candidates_figure(go: Any, last: dict[str, Any] | None) -> Any:
    fig = go.Figure()
    if last and last.get("top_candidates"):
        top = last["top_candidates"]
        fig.add_trace(
            go.Bar(
                x=[f"candidate {i}" for i in range(len(top))],
                y=[c["value"] for c in top],
                name="top candidates",
                marker={"color": "#577590"},
            )
        )
        chosen = last.get("chosen", [])
        fig.add_trace(
            go.Bar(
                x=[f"chosen {i}" for i in range(len(chosen))],
                y=[c.get("value") for c in chosen],
                name="chosen batch",
                marker={"color": _COLORS["running"]},
                customdata=last.get("orders", []),
            )
        )
        fig.update_layout(yaxis_title=last.get("candidates_kind", "value").split(" (")[0])
    fig.update_layout(height=320, title=f"decision {last['decision']}" if last else "no decision yet")
    return fig


def write_report(campaign: Any, path: str | Path) -> Path:
    """Write the dashboard of ``campaign`` to ``path`` (one self-contained HTML file)."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the campaign report needs plotly: pip install 'labsched[dashboard]'") from exc
    campaign.refresh()
    st, c = campaign.state, campaign.config
    gp = campaign.gp()
    status = campaign.status()
    rec = status.recommendation
    now = max(st.last_time, 0.0)
    planned, plan_note = campaign.planned()
    points = rd.point_rows(st, gp)
    surf = rd.surface(gp, rec)
    cal = rd.calendar_rows(st, planned, now)
    prog = rd.progress_rows(st, lambda X, y: rat.build_gp(c, X, y))
    decisions = campaign.decisions()
    log = rd.decision_rows(decisions)
    last = next((d for d in reversed(decisions) if d.get("top_candidates")), None)

    figs = [
        ("posterior", _points_figure(go, surf, points, rec)),
        ("candidates", _candidates_figure(go, last)),
        ("calendar", _calendar_figure(go, cal, now, c.spec.horizon)),
        ("progress", _progress_figure(go, prog, c.stop_when)),
    ]
    divs = {}
    for i, (name, fig) in enumerate(figs):
        fig.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white")
        divs[name] = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{name}")
    html_text = _page(campaign, status, divs, points, surf, cal, prog, log, last, plan_note)
    out = Path(path)
    out.write_text(html_text, encoding="utf-8")
    return out


def _status_rows(status: Any) -> list[dict[str, Any]]:
    rows = [{"quantity": k, "value": v} for k, v in status.to_json().items() if k not in ("thresholds",)]
    for name, t in status.thresholds.items():
        rows.append(
            {"quantity": f"threshold {name}", "value": f"{t['value']:.4g} < {t['level']:.4g}: {t['crossed']}"}
        )
    return rows


def _meta_line(campaign: Any) -> str:
    """Where the data come from and how the campaign was set up (HTML)."""
    c = campaign.config
    source = html.escape(str(Path(campaign._journal.path).resolve()))
    return (
        f"Data source: campaign journal <code>{source}</code> ({len(campaign.events())} committed events). "
        f"Campaign created with <code>{html.escape(c.code_version)}</code>; report written by "
        f"<code>{html.escape(code_version())}</code>. "
        f"Scheduler <code>{html.escape(c.scheduler)}</code>, selector "
        f"<code>{html.escape(c.selector)}</code>, goal {c.goal}, seed {c.seed}, "
        f"{c.spec.n_experiments} experiments on {c.spec.n_labs} labs, horizon {c.spec.horizon:g}."
    )


def _points_table(dim: int, points: list[dict[str, Any]]) -> str:
    """The observed and running points, one column a coordinate, rows anchored by order id."""
    dims = [f"x{i}" for i in range(dim)]
    pts_rows = [{**p, **{d: p["x"][i] for i, d in enumerate(dims)}} for p in points]
    return _table(
        pts_rows,
        ["id", "kind", *dims, "y", "mean", "sd", "lab", "decision"],
        row_ids=[f"order-{p['id']}" for p in points],
    )


def _grid_section(surf: dict[str, Any]) -> tuple[str, str]:
    """(title, table) of the posterior chart's numbers: a coarse grid (2-d) or the slices."""
    if surf["kind"] == "contour":
        step = max(1, len(surf["axes"][0]) // 10)
        grid = [
            {
                "x0": surf["axes"][0][i],
                "x1": surf["axes"][1][j],
                "mean": surf["mean"][j][i],
                "sd": surf["sd"][j][i],
            }
            for j in range(0, len(surf["axes"][1]), step)
            for i in range(0, len(surf["axes"][0]), step)
        ]
        title = f"posterior on a coarse grid (every {step}th grid point of the chart)"
        return title, _table(grid, ["x0", "x1", "mean", "sd"])
    grid = [
        {"dim": s["dim"], "t": t, "mean": m, "sd": sd}
        for s in surf["slices"]
        for t, m, sd in list(zip(s["t"], s["mean"], s["sd"], strict=True))[::4]
    ]
    return f"posterior along the slices through {_fmt(surf['through'])}", _table(
        grid, ["dim", "t", "mean", "sd"]
    )


def _candidate_rows(last: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The last decision's best scored candidates, then the batch it chose."""
    if not last:
        return []
    rows: list[dict[str, Any]] = [
        {"rank": i, "x": cnd["x"], "value": cnd["value"]} for i, cnd in enumerate(last["top_candidates"])
    ]
    rows += [
        {
            "rank": f"chosen (order {o})",
            "x": ch["x"],
            "value": ch.get("value"),
            "mean": ch["mean"],
            "sd": ch["sd"],
        }
        for o, ch in zip(last.get("orders", []), last["chosen"], strict=False)
    ]
    return rows


_LOG_COLUMNS = (
    "decision",
    "time",
    "started",
    "orders",
    "chosen policy",
    "scheduler estimates (CPE)",
    "note",
    "chosen inputs (posterior)",
    "best candidate value",
)


def _log_table(log: list[dict[str, Any]]) -> str:
    """The decision log; clicking a row highlights its orders (links to the points table)."""
    log_html = []
    for r in log:
        ids = json.dumps(r["orders"])
        cells = [
            r["decision"],
            r["time"],
            r["started"],
            ", ".join(f'<a href="#order-{i}">{i}</a>' for i in r["orders"]),
            r["chosen_policy"],
            r["policies"],
            r["note"],
            "; ".join(f"{_fmt(ch['x'])} μ={ch['mean']:.3g} σ={ch['sd']:.3g}" for ch in r["chosen"]),
            r["best_candidate_value"],
        ]
        tds = "".join(
            f'<td class="l">{v}</td>' if k == 3 else f'<td class="l">{html.escape(_fmt(v))}</td>'
            for k, v in enumerate(cells)
        )
        log_html.append(f"<tr class=\"click\" onclick='lsHighlight({ids}, this)'>{tds}</tr>")
    log_head = "".join(f"<th class='l'>{h}</th>" for h in _LOG_COLUMNS)
    return f"<table><tr>{log_head}</tr>{''.join(log_html)}</table>"


def _page(campaign, status, divs, points, surf, cal, prog, log, last, plan_note) -> str:
    """Assemble the HTML (one block per section)."""
    c = campaign.config
    meta = _meta_line(campaign)
    stop = '<p class="stop">A stop threshold is crossed.</p>' if status.stop else ""
    pts_table = _points_table(c.dim, points)
    grid_title, grid_table = _grid_section(surf)
    cand_rows = _candidate_rows(last)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>labsched campaign report</title>
<style>{_CSS}</style><script>{_JS}</script></head><body>
<h1>Campaign report</h1>
<p class="meta">{meta}</p>{stop}
<h2>Status</h2>{_table(_status_rows(status), ["quantity", "value"])}
<h2>Posterior confidence</h2>
<p>Surrogate (GP) mean and standard deviation; observed points (initial design and results), running
experiments (×) and the recommended input (★). Click a decision below to highlight its points.</p>
{divs["posterior"]}
<details open><summary>Points table</summary>{pts_table}</details>
<details><summary>{grid_title}</summary>{grid_table}</details>
<h2>Candidates at the last decision</h2>
<p>{html.escape(last.get("candidates_kind", "") if last else "no decision has chosen inputs yet")}: the best
scored candidates, and the batch the selector chose with its posterior mean and sd.</p>
{divs["candidates"]}
{_table(cand_rows, ["rank", "x", "value", "mean", "sd"])}
<h2>Calendar</h2>
<p>Finished, running (until now) and planned experiments per lab. Planned: {html.escape(plan_note)}.</p>
{divs["calendar"]}
<details><summary>Calendar table</summary>{_table(cal, ["lab", "status", "start", "end", "order"])}</details>
<h2>Progress</h2>
<p>After the initial data and after each result: best observed outcome, the recommended input's posterior
mean ± sd, and the integrated posterior variance over the box{
        ", against the sd threshold" if c.stop_when else ""
    }.</p>
{divs["progress"]}
<details><summary>Progress table</summary>{
        _table(
            prog,
            ["time", "results", "best_observed", "recommended_mean", "recommended_sd", "integrated_variance"],
        )
    }</details>
<h2>Decision log</h2>
<p>Asks that started experiments or where the scheduler evaluated its policies ({len(log)} of
{
        len(campaign.decisions())
    } asks; <code>labsched campaign log</code> prints all). Click a row to highlight.</p>
{_log_table(log)}
</body></html>
"""
