"""The numbers behind the campaign dashboard (no plotting here, so they can be tested alone).

Every chart of the report is drawn from one of these tables, and the same table is printed under
the chart: :func:`posterior_table` (points and a coarse grid of the surrogate),
:func:`calendar_rows` (finished, running and planned experiments), :func:`progress_rows` (after
each result) and :func:`decision_rows` (the decision log).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labsched.agents.campaign import rationale as rat
from labsched.agents.campaign.state import CampaignState

__all__ = ["calendar_rows", "decision_rows", "point_rows", "progress_rows", "surface"]


def point_rows(state: CampaignState, gp: Any) -> list[dict[str, Any]]:
    """Observed (initial and done) and running points, with the posterior mean and sd there."""
    rows: list[dict[str, Any]] = []
    for j, (x, y) in enumerate(zip(state.config.initial_X, state.config.initial_y, strict=True)):
        rows.append(
            {"id": f"init-{j}", "kind": "initial", "x": list(x), "y": y, "lab": None, "decision": None}
        )
    for o in state.orders:
        if o.status == "failed":
            continue
        rows.append(
            {"id": o.id, "kind": o.status, "x": list(o.x), "y": o.y, "lab": o.lab, "decision": o.decision}
        )
    if rows:
        mean, sd = rat.posterior_at(gp, np.array([r["x"] for r in rows], dtype=float))
        for r, m, s in zip(rows, mean, sd, strict=True):
            r["mean"], r["sd"] = float(m), float(s)
    return rows


def surface(gp: Any, recommendation: dict[str, Any] | None, n: int = 41) -> dict[str, Any]:
    """Posterior mean and sd to draw: a grid for d <= 2, 1-d slices through the recommendation
    (or the box centre before any data) for d > 2."""
    b = gp.bounds
    d = gp.dim
    axes = [np.linspace(b[i, 0], b[i, 1], n) for i in range(d)]
    if d == 2:
        g0, g1 = np.meshgrid(axes[0], axes[1])
        mean, sd = rat.posterior_at(gp, np.column_stack([g0.ravel(), g1.ravel()]))
        return {
            "kind": "contour",
            "axes": [a.tolist() for a in axes],
            "mean": mean.reshape(n, n).tolist(),
            "sd": sd.reshape(n, n).tolist(),
        }
    centre = np.array(recommendation["x"]) if recommendation else b.mean(axis=1)
    slices = []
    for i in range(d):
        X = np.repeat(centre[None, :], n, axis=0)
        X[:, i] = axes[i]
        mean, sd = rat.posterior_at(gp, X)
        slices.append({"dim": i, "t": axes[i].tolist(), "mean": mean.tolist(), "sd": sd.tolist()})
    return {"kind": "slices", "through": centre.tolist(), "slices": slices}


def calendar_rows(state: CampaignState, planned: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Gantt bars: finished (done / failed), running (until now) and planned experiments."""
    rows = []
    for o in state.orders:
        end = o.finished_at if o.finished_at is not None else now
        rows.append(
            {"lab": f"lab {o.lab}", "status": o.status, "start": o.started_at, "end": end, "order": o.id}
        )
    for p in planned:
        lab = f"lab {p['lab']}" if p["lab"] >= 0 else f"plan lab {p['virtual_lab']}"
        rows.append({"lab": lab, "status": "planned", "start": p["start"], "end": p["end"], "order": None})
    return rows


def progress_rows(state: CampaignState, gp_builder: Any) -> list[dict[str, Any]]:
    """After the initial data and after each result: best observed value, recommended input's
    posterior mean and sd, and the integrated posterior variance."""
    X, y = state.data()
    n0 = len(state.config.initial_y)
    rows = []
    times = [None] + [state.orders[i].finished_at for i in state.data_order]
    for step in range(len(state.data_order) + 1):
        m = n0 + step
        gp = gp_builder(X[:m], y[:m])
        rec = rat.recommend(gp)
        rows.append(
            {
                "time": 0.0 if times[step] is None else times[step],
                "results": step,
                "best_observed": float(np.max(y[:m])) if m else None,
                "recommended_mean": rec["mean"] if rec else None,
                "recommended_sd": rec["sd"] if rec else None,
                "integrated_variance": rat.integrated_variance(gp),
            }
        )
    return rows


def decision_rows(decisions: list[dict[str, Any]], *, all_asks: bool = False) -> list[dict[str, Any]]:
    """Decision-log rows: asks that started experiments or where the scheduler evaluated policies."""
    rows = []
    for d in decisions:
        view = d.get("scheduler_view", {})
        if not (all_asks or d["orders"] or "policies" in view):
            continue
        policies = view.get("policies") or {}
        top = d.get("top_candidates") or []
        rows.append(
            {
                "decision": d["decision"],
                "time": d["time"],
                "started": len(d["orders"]),
                "orders": d["orders"],
                "chosen_policy": view.get("chosen_policy", ""),
                "policies": ", ".join(
                    f"{k}: {v:.2f}" if v is not None else f"{k}: -" for k, v in policies.items()
                ),
                "note": view.get("note", ""),
                "chosen": d.get("chosen", []),
                "best_candidate_value": top[0]["value"] if top else None,
                "gp_observations": d.get("gp", {}).get("n_observations"),
            }
        )
    return rows
