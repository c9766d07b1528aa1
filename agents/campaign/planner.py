"""The ask/tell campaign planner (see :mod:`labsched.agents.campaign` for the full contract)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.campaign import rationale as rat
from labsched.agents.campaign.config import CampaignConfig, check_points, is_finite_real, seed_streams
from labsched.agents.campaign.journal import Journal
from labsched.agents.campaign.report import write_report
from labsched.agents.campaign.state import (
    CampaignState,
    Order,
    next_grid_point,
    observation,
    observation_from_json,
    observation_to_json,
)
from labsched.agents.loading import load_agent
from labsched.baselines.registry import make as make_baseline
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.selectors import make_selector
from labsched.envs.labs.spec import LabSpec

__all__ = ["Campaign", "CampaignStatus"]


@dataclass(frozen=True)
class CampaignStatus:
    """A summary of a campaign now (see :meth:`Campaign.status`).

    Attributes:
        time: campaign time of the last event.
        horizon: the deadline.
        started, running, done, failed: order counts.
        remaining_budget: experiments not started.
        next_ask_time: :meth:`Campaign.next_ask_time`.
        recommendation: ``{"x", "mean", "sd", "y"}`` or ``None`` before any data.
        best_observed: the largest observed outcome (``None`` before any data).
        integrated_variance: mean posterior variance over the box.
        batch_gain: best candidate value (expected improvement, or the selector's score) now.
        thresholds: per ``stop_when`` rule: ``{"level", "value", "crossed"}``.
        stop: whether any threshold is crossed.
        finished: nothing left to start and nothing running.
    """

    time: float
    horizon: float
    started: int
    running: int
    done: int
    failed: int
    remaining_budget: int
    next_ask_time: float | None
    recommendation: dict[str, Any] | None
    best_observed: float | None
    integrated_variance: float
    batch_gain: float
    thresholds: dict[str, dict[str, Any]]
    stop: bool
    finished: bool

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return dict(self.__dict__)


def _check_time(name: str, value: Any) -> float:
    if not is_finite_real(value):
        raise ValueError(f"{name} must be a finite real number (campaign time), got {value!r}")
    return float(value)


class Campaign:
    """A real campaign driven by a scheduler and a selector, journalled in SQLite.

    Build one with :meth:`create` or :meth:`open`, never directly.
    """

    def __init__(self, journal: Journal, config: CampaignConfig) -> None:
        self._journal = journal
        self.config = config
        self._reset_replay()

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        spec: LabSpec,
        bounds: Any,
        scheduler: str = "ps",
        selector: str = "kb-ei",
        goal: str = "optimize",
        seed: int = 0,
        scheduler_options: dict[str, Any] | None = None,
        selector_options: dict[str, Any] | None = None,
        gp: Any = "paper",
        noise_std: float = 0.0,
        initial_data: Any = None,
        stop_when: dict[str, float] | None = None,
        simulation: dict[str, Any] | None = None,
    ) -> Campaign:
        """Start a new campaign journal at ``path`` (which must not hold one already).

        Args:
            path: the SQLite journal file to create.
            spec: budget, labs, horizon, duration law (in the campaign's time unit) and epoch.
            bounds: one ``(low, high)`` pair per input.
            scheduler: a registered baseline name (``labsched baselines``) or a saved agent.
            selector: a registered selector name (``"kb-ei"``, ``"mes"``, ...).
            goal: ``"optimize"`` (find the maximum) or ``"learn"`` (the function everywhere).
            seed: the campaign seed; decisions are a function of it and the journal.
            scheduler_options, selector_options: constructor options.
            gp: ``"paper"`` or :class:`~labsched.envs.bo.gp.GPHyperparameters`.
            noise_std: expected observation noise sd (raises the GP's noise floor).
            initial_data: ``(X, y)`` known before the campaign (the GP starts from them;
                without it the first picks are made on the prior).
            stop_when: thresholds, e.g. ``{"sd_at_best": 0.05, "batch_gain": 1e-3}``.
            simulation: internal (set by :func:`~labsched.agents.campaign.simulate.simulate`).
        """
        config = CampaignConfig.build(
            spec=spec,
            bounds=bounds,
            scheduler=scheduler,
            selector=selector,
            goal=goal,
            seed=seed,
            scheduler_options=scheduler_options,
            selector_options=selector_options,
            gp=gp,
            noise_std=noise_std,
            initial_data=initial_data,
            stop_when=stop_when,
            simulation=simulation,
        )
        campaign = cls(None, config)  # type: ignore[arg-type]  # validates scheduler/selector first
        campaign._journal = Journal.create(path, config.to_json())
        return campaign

    @classmethod
    def open(cls, path: str | Path) -> Campaign:
        """Open an existing journal: the state of its last committed call."""
        journal = Journal.open(path)
        first = journal.events_after(-1)[0]
        campaign = cls(journal, CampaignConfig.from_json(first.payload))
        campaign._sync(None)
        return campaign

    def close(self) -> None:
        """Close the journal connection."""
        self._journal.close()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_scheduler(self) -> Any:
        c = self.config
        if c.scheduler_kind == "agent":
            return load_agent(c.scheduler, spec=c.spec)
        options = {"seed": c.seed, **c.scheduler_options}
        scheduler = make_baseline(c.scheduler, c.spec, **options)
        if hasattr(scheduler, "keep_history"):  # policy switching: record its evaluations
            scheduler.keep_history = True
        return scheduler

    # ------------------------------------------------------------------ replay
    def _sync(self, conn: Any, *, replay: bool = True) -> None:
        """Apply the events committed since the last sync (by this or another process).

        ``replay=False`` is for the event this object just wrote: its scheduler and selector
        stream already made that decision.
        """
        if self._stale:
            self._reset_replay()
        for event in self._journal.events_after(self._state.last_seq, conn):
            if event.kind == "ask" and replay:
                self._replay_ask(event.payload)
            self._state.apply(event)

    def _reset_replay(self) -> None:
        """Start the replay from the ``create`` event (fresh scheduler, selector and stream)."""
        self._state = CampaignState(self.config)
        self._scheduler = self._make_scheduler()
        self._selector = make_selector(self.config.selector, **self.config.selector_options)
        self._select_rng = np.random.default_rng(seed_streams(self.config.seed, self.config.spec).select_seed)
        self._stale = False

    def _replay_ask(self, payload: dict[str, Any]) -> None:
        if payload["fed"]:
            action = self._predict(observation_from_json(payload["observation"]))
            if action != payload["action"]:
                raise RuntimeError(
                    f"journal replay diverged: the scheduler now chooses {action} where the journal "
                    f"recorded {payload['action']} (decision {len(self._state.asks)}; code changed?)"
                )
        self._select_rng = _rng_from_json(payload["rng_after"])

    def _predict(self, obs: dict[str, np.ndarray]) -> int:
        action, _ = self._scheduler.predict(obs, deterministic=True)
        return int(np.asarray(action).reshape(()))

    # ------------------------------------------------------------------ calls
    def ask(self, now: float) -> list[Order]:
        """The experiments to start at time ``now`` (``[]`` if none); they run from now on.

        Asking again with the same ``now`` and nothing told in between returns the same orders
        (e.g. after a crash that lost the answer). Raises ``ValueError`` for a time earlier than
        the last event.
        """
        now = _check_time("now", now)
        with self._journal.transaction() as conn:
            self._sync(conn)
            st = self._state
            if st.last_kind == "ask" and st.last_time == now:
                ids = [o["id"] for o in st.asks[-1]["orders"]]
                return [st.orders[i] for i in ids]
            self._check_not_before(now)
            try:
                payload = self._decide(now)
                self._journal.append(conn, "ask", now, payload)
                self._sync(conn, replay=False)
            except BaseException:
                self._stale = True  # the scheduler and the stream moved on: rebuild on next call
                raise
        return [self._state.orders[o["id"]] for o in payload["orders"]]

    def _decide(self, now: float) -> dict[str, Any]:
        st, spec = self._state, self.config.spec
        obs = observation(st, now)
        max_valid = min(len(st.free_labs()), st.remaining_budget)
        fed = now < spec.horizon
        n_hist = rat.history_length(self._scheduler)
        action = min(max(self._predict(obs), 0), max_valid) if fed else 0
        view = rat.scheduler_view(self._scheduler, n_hist, action, max_valid)
        if not fed:
            view["note"] = "the horizon is reached: nothing starts"
        gp = rat.build_gp(self.config, *st.data())
        pending = st.pending()
        X = np.zeros((0, self.config.dim))
        if action:
            X = np.asarray(self._selector.select(gp, pending, action, self._select_rng), dtype=float)
        decision = len(st.asks)
        free = st.free_labs()  # the env's rule: the lowest-numbered free labs, in order
        orders = [
            {"id": st.n_started + j, "lab": free[j], "x": [float(v) for v in x]} for j, x in enumerate(X)
        ]
        payload: dict[str, Any] = {
            "fed": fed,
            "observation": observation_to_json(obs),
            "action": action,
            "orders": orders,
            "rng_after": _rng_state_to_json(self._select_rng),
        }
        payload["rationale"] = self._rationale(decision, gp, pending, X, view)
        return payload

    def _rationale(
        self, decision: int, gp: GaussianProcess, pending: np.ndarray, X: np.ndarray, view: dict[str, Any]
    ) -> dict[str, Any]:
        c = self.config
        mean, sd = rat.posterior_at(gp, X)
        out: dict[str, Any] = {
            "decision": decision,
            "scheduler": c.scheduler,
            "scheduler_view": view,
            "selector": c.selector,
            "chosen": [
                {"x": x.tolist(), "mean": float(m), "sd": float(s)}
                for x, m, s in zip(X, mean, sd, strict=True)
            ],
            "gp": {**_hp_json(gp), "n_observations": gp.n_observations},
            "code_version": c.code_version,
            "seed": c.seed,
        }
        record = getattr(self._selector, "last_scores", None) if len(X) else None
        if record is not None and callable(getattr(record, "as_dict", None)):
            out["selector_scores"] = record.as_dict()  # the selector's own audit of its picks
        if len(X):
            rng = rat.decision_rng(c.seed, decision)
            scores = rat.candidate_scores(c, self._selector, gp, pending, rng, chosen=X)
            out["candidates_kind"] = scores["kind"]
            out["top_candidates"] = rat.top_candidates(scores)
            for ch, v in zip(out["chosen"], scores["chosen_value"], strict=True):
                ch["value"] = v
            rat.prefer_selector_scores(out)
        return out

    def _check_not_before(self, t: float) -> None:
        if t < self._state.last_time:
            raise ValueError(
                f"time {t!r} is earlier than the last event of the campaign ({self._state.last_time!r}); "
                "campaign time never goes backwards"
            )

    def tell(self, order_id: int, y: float, finished_at: float) -> Order:
        """Record the outcome ``y`` of a running order, finished at ``finished_at``."""
        if not is_finite_real(y):
            raise ValueError(f"y must be a finite real number, got {y!r}")
        return self._finish("tell", order_id, finished_at, {"y": float(y)})

    def fail(self, order_id: int, finished_at: float) -> Order:
        """Record that a running order failed: its lab frees and its budget slot is spent."""
        return self._finish("fail", order_id, finished_at, {})

    def _finish(self, kind: str, order_id: Any, finished_at: Any, extra: dict[str, Any]) -> Order:
        if isinstance(order_id, bool) or not isinstance(order_id, (int, np.integer)):
            raise TypeError(f"order id must be an integer, got {order_id!r}")
        t = _check_time("finished_at", finished_at)
        i = int(order_id)
        with self._journal.transaction() as conn:
            self._sync(conn)
            st = self._state
            if not 0 <= i < st.n_started:
                raise ValueError(f"unknown order id {i}: ids are 0..{st.n_started - 1}")
            if st.orders[i].status != "running":
                raise ValueError(f"order {i} is already {st.orders[i].status}; it cannot be told again")
            self._check_not_before(t)
            self._journal.append(conn, kind, t, {"id": i, **extra})
            self._sync(conn, replay=False)
        return self._state.orders[i]

    # ------------------------------------------------------------------ views
    def refresh(self) -> Campaign:
        """Read events committed by other processes since the last call."""
        self._sync(None)
        return self

    def history(self) -> list[Order]:
        """Every order so far, by id."""
        self.refresh()
        return list(self._state.orders)

    @property
    def state(self) -> CampaignState:
        """The current state (read-only use)."""
        return self._state

    def next_ask_time(self) -> float | None:
        """When to ask again if no result arrives first; ``None`` when nothing is left to start.

        After a result (or failure) it is the time of that event (ask now); otherwise the next
        decision-grid point (multiples of ``spec.epoch``) after the last ask, before the horizon.
        """
        self.refresh()
        st, spec = self._state, self.config.spec
        if st.remaining_budget == 0:
            return None
        if st.last_kind == "create":
            return 0.0
        t = st.last_time if st.last_kind != "ask" else next_grid_point(spec, st.last_time)
        return t if t < spec.horizon else None

    def gp(self) -> GaussianProcess:
        """The GP fitted on every result so far."""
        self.refresh()
        return rat.build_gp(self.config, *self._state.data())

    def posterior(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd at the rows of ``X`` (shape ``(m, d)``)."""
        pts = check_points("X", X, self.config.dim)
        return rat.posterior_at(self.gp(), pts)

    def recommendation(self) -> dict[str, Any] | None:
        """The recommended input: the observed input with the highest posterior mean."""
        return rat.recommend(self.gp())

    def status(self) -> CampaignStatus:
        """Counts, recommendation, uncertainty and the ``stop_when`` thresholds."""
        gp = self.gp()
        st, c = self._state, self.config
        rec = rat.recommend(gp)
        scores = rat.candidate_scores(
            c, self._selector, gp, st.pending(), rat.decision_rng(c.seed, len(st.asks), 1)
        )
        gain = float(max(scores["value"]))
        values = {"sd_at_best": rec["sd"] if rec else math.inf, "batch_gain": gain}
        thresholds = {
            k: {"level": level, "value": values[k], "crossed": bool(values[k] < level)}
            for k, level in c.stop_when.items()
        }
        n_failed = sum(1 for o in st.orders if o.status == "failed")
        return CampaignStatus(
            time=st.last_time if st.asks else 0.0,
            horizon=c.spec.horizon,
            started=st.n_started,
            running=len(st.running),
            done=st.n_done,
            failed=n_failed,
            remaining_budget=st.remaining_budget,
            next_ask_time=self.next_ask_time(),
            recommendation=rec,
            best_observed=float(np.max(gp.y)) if gp.n_observations else None,
            integrated_variance=rat.integrated_variance(gp),
            batch_gain=gain,
            thresholds=thresholds,
            stop=any(t["crossed"] for t in thresholds.values()),
            finished=not st.running and (st.remaining_budget == 0 or self.next_ask_time() is None),
        )

    def decisions(self) -> list[dict[str, Any]]:
        """The rationale of every ask, in order, with its time and orders."""
        self.refresh()
        st = self._state
        return [
            {"seq": seq, "time": t, "orders": [o["id"] for o in p["orders"]], **p["rationale"]}
            for seq, t, p in zip(st.ask_seqs, st.ask_times, st.asks, strict=True)
        ]

    def events(self) -> list[dict[str, Any]]:
        """Every committed event (kind, time, payload), in order."""
        return [
            {"seq": e.seq, "kind": e.kind, "time": e.time, "payload": e.payload}
            for e in self._journal.events_after(-1)
        ]

    def export_jsonl(self, path: str | Path) -> Path:
        """Write the decision log as JSON Lines (one decision per line)."""
        p = Path(path)
        with p.open("w") as f:
            for d in self.decisions():
                f.write(json.dumps(d, allow_nan=False) + "\n")
        return p

    def planned(self) -> tuple[list[dict[str, Any]], str]:
        """Upcoming experiments of the scheduler's current plan (see :func:`planned_experiments`)."""
        self.refresh()
        return rat.planned_experiments(self._scheduler, max(self._state.last_time, 0.0))

    def report(self, path: str | Path) -> Path:
        """Write the self-contained HTML dashboard (needs the ``dashboard`` extra: plotly)."""
        return write_report(self, path)


def _hp_json(gp: GaussianProcess) -> dict[str, Any]:
    hp = gp.hyperparameters
    ls = hp.lengthscale
    return {
        "lengthscale": list(ls) if isinstance(ls, tuple) else float(ls),
        "signal_variance": hp.signal_variance,
        "noise_variance": hp.noise_variance,
        "mean": hp.mean,
        "standardize": hp.standardize,
    }


def _rng_state_to_json(rng: np.random.Generator) -> dict[str, Any]:
    """The full state of a generator: its bit generator's state and its seed sequence's spawn
    counter (some SciPy routines spawn child generators, which depends on that counter)."""
    ss = rng.bit_generator.seed_seq
    return {
        "state": json.loads(json.dumps(rng.bit_generator.state)),
        "entropy": ss.entropy,
        "spawn_key": list(ss.spawn_key),
        "n_children_spawned": ss.n_children_spawned,
    }


def _rng_from_json(data: dict[str, Any]) -> np.random.Generator:
    """Inverse of :func:`_rng_state_to_json`."""
    ss = np.random.SeedSequence(
        data["entropy"], spawn_key=tuple(data["spawn_key"]), n_children_spawned=data["n_children_spawned"]
    )
    rng = np.random.Generator(np.random.PCG64(ss))
    rng.bit_generator.state = data["state"]
    return rng
