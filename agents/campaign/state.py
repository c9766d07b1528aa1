"""The state of a campaign as a pure function of its journal events.

:class:`CampaignState` folds the events in order: asks start orders, tells and fails end them.
:func:`observation` builds, from that state, exactly the observation
:class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv` would give a scheduler at the
same time (same ``float32`` arithmetic), so a scheduler cannot tell a campaign from the env.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from labsched.agents.campaign.config import CampaignConfig
from labsched.agents.campaign.journal import Event

__all__ = ["STATUSES", "CampaignState", "Order", "decision_grid", "observation"]

#: Order statuses.
STATUSES = ("running", "done", "failed")

_TIME_TOL = 1e-9


@dataclass(frozen=True)
class Order:
    """One experiment of a campaign.

    Attributes:
        id: start index (0 for the first experiment started).
        lab: the lab that runs it (0-based).
        x: the input to test.
        started_at: the campaign time it was ordered (the ``now`` of its ``ask``).
        finished_at: when its result (or failure) was reported, ``None`` while running.
        y: the observed outcome (``None`` unless ``status == "done"``).
        status: ``"running"``, ``"done"`` or ``"failed"``.
        decision: index of the ask that started it.
        prior: experiments finished (done or failed) when it started.
    """

    id: int
    lab: int
    x: tuple[float, ...]
    started_at: float
    finished_at: float | None = None
    y: float | None = None
    status: str = "running"
    decision: int = 0
    prior: int = 0

    def to_json(self) -> dict[str, Any]:
        """A plain dict (for JSON and tables)."""
        return {
            "id": self.id,
            "lab": self.lab,
            "x": list(self.x),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "y": self.y,
            "status": self.status,
            "decision": self.decision,
            "prior": self.prior,
        }


@dataclass
class CampaignState:
    """Everything the events so far imply.

    Attributes:
        config: the configuration (from the ``create`` event).
        orders: every order, by id.
        asks: the payload of every ask, in order.
        ask_seqs: journal position of each ask.
        ask_times: campaign time of each ask.
        finish_seq: journal position of the tell or fail of each finished order.
        data_order: ids of done orders in the order their results were told (the GP's order).
        last_seq: position of the last event applied.
        last_time: campaign time of the last event (``-inf`` before the first ask).
        last_kind: kind of the last event.
    """

    config: CampaignConfig
    orders: list[Order] = field(default_factory=list)
    asks: list[dict[str, Any]] = field(default_factory=list)
    ask_seqs: list[int] = field(default_factory=list)
    ask_times: list[float] = field(default_factory=list)
    finish_seq: dict[int, int] = field(default_factory=dict)
    data_order: list[int] = field(default_factory=list)
    last_seq: int = 0
    last_time: float = -math.inf
    last_kind: str = "create"

    def apply(self, event: Event) -> None:
        """Fold one event in (events must come in journal order)."""
        if event.seq != self.last_seq + 1:
            raise RuntimeError(f"journal event {event.seq} applied after {self.last_seq}")
        p = event.payload
        if event.kind == "ask":
            decision = len(self.asks)
            prior = self.n_finished
            for o in p["orders"]:
                if o["id"] != len(self.orders):
                    raise RuntimeError(f"journal order ids out of sequence at event {event.seq}")
                self.orders.append(
                    Order(o["id"], o["lab"], tuple(o["x"]), float(event.time), decision=decision, prior=prior)
                )
            self.asks.append(p)
            self.ask_seqs.append(event.seq)
            self.ask_times.append(float(event.time))
        elif event.kind in ("tell", "fail"):
            i = p["id"]
            done = event.kind == "tell"
            self.orders[i] = replace(
                self.orders[i],
                finished_at=float(event.time),
                y=float(p["y"]) if done else None,
                status="done" if done else "failed",
            )
            self.finish_seq[i] = event.seq
            if done:
                self.data_order.append(i)
        else:
            raise RuntimeError(f"unexpected journal event kind {event.kind!r} at {event.seq}")
        self.last_seq = event.seq
        self.last_time = float(event.time)
        self.last_kind = event.kind

    # ------------------------------------------------------------------ counts
    @property
    def n_started(self) -> int:
        """Orders started."""
        return len(self.orders)

    @property
    def running(self) -> list[Order]:
        """Running orders, by id."""
        return [o for o in self.orders if o.status == "running"]

    @property
    def n_done(self) -> int:
        """Orders with a result."""
        return len(self.data_order)

    @property
    def n_finished(self) -> int:
        """Orders done or failed (the env's "completed" count)."""
        return sum(1 for o in self.orders if o.status != "running")

    @property
    def remaining_budget(self) -> int:
        """Experiments not started yet."""
        return self.config.spec.n_experiments - self.n_started

    def busy_labs(self) -> dict[int, Order]:
        """Running order of each busy lab."""
        return {o.lab: o for o in self.running}

    def free_labs(self) -> list[int]:
        """Idle labs, lowest first."""
        busy = self.busy_labs()
        return [lab for lab in range(self.config.spec.n_labs) if lab not in busy]

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """All observations in GP order: the initial data, then results in the order told."""
        d = self.config.dim
        X = [list(r) for r in self.config.initial_X] + [list(self.orders[i].x) for i in self.data_order]
        y = list(self.config.initial_y) + [float(self.orders[i].y) for i in self.data_order]  # type: ignore[arg-type]
        return np.array(X, dtype=float).reshape(-1, d), np.array(y, dtype=float)

    def pending(self) -> np.ndarray:
        """Inputs of the running orders, by id (the selector's pending points)."""
        return np.array([o.x for o in self.running], dtype=float).reshape(-1, self.config.dim)


def observation(state: CampaignState, now: float) -> dict[str, np.ndarray]:
    """The env's ``Dict`` observation of ``state`` at time ``now`` (bitwise as the env computes it)."""
    spec = state.config.spec
    n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
    inv_mean = 1.0 / float(spec.scheduler_view.duration.mean)  # as the env scales elapsed times
    busy = np.zeros(nl, dtype=np.int8)
    scale = np.zeros(nl)
    offset = np.zeros(nl)
    for lab, o in state.busy_labs().items():
        busy[lab] = 1
        scale[lab] = inv_mean
        offset[lab] = o.started_at * inv_mean
    elapsed = (scale * now - offset).astype(np.float32)
    rt = np.zeros(1, dtype=np.float32)
    rt[0] = max(h - now, 0.0) / h
    started = state.n_started
    return {
        "busy": busy,
        "completed": np.array([state.n_finished / n], dtype=np.float32),
        "elapsed": elapsed,
        "remaining_budget": np.array([(n - started) / n], dtype=np.float32),
        "remaining_time": rt,
        "started": np.array([started / n], dtype=np.float32),
    }


def observation_to_json(obs: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """JSON form of an observation (float32 values are exactly representable as floats)."""
    return {k: [float(v) for v in np.asarray(a).reshape(-1)] for k, a in obs.items()}


def observation_from_json(data: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Inverse of :func:`observation_to_json`."""
    out = {k: np.array(v, dtype=np.float32) for k, v in data.items()}
    out["busy"] = out["busy"].astype(np.int8)
    return out


def decision_grid(spec: Any) -> list[float]:
    """The env's decision grid ``0, Delta, 2 Delta, ...``, the horizon replacing the last point."""
    grid: list[float] = []
    h, j = spec.horizon, 0
    while not grid or grid[-1] < h:
        tj = j * spec.epoch
        grid.append(h if tj > h - _TIME_TOL * h else tj)
        j += 1
    return grid


def next_grid_point(spec: Any, t: float) -> float:
    """The first decision-grid point strictly after ``t`` (``inf`` past the horizon)."""
    for g in decision_grid(spec):
        if g > t:
            return g
    return math.inf
