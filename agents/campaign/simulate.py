"""A simulated lab driving a campaign: the same decisions as the environment's regret mode.

:func:`simulate` creates a campaign whose results come from an objective and whose durations
come from the spec's law, and :func:`run_simulation` drives it to the end, asking at exactly
the environment's decision points (the grid ``0, Delta, 2 Delta, ...`` and every completion)
and telling completions in the environment's order (by end time, then start order). Both use
the seed's streams in the environment's order (:func:`~labsched.agents.campaign.config.seed_streams`):
the ``i``-th experiment started takes the ``i``-th duration and the ``i``-th noise draw, the
initial design is the environment's, and the selector consumes its stream call by call. With
the same scheduler (a fresh instance with the same seed), selector and seed, the campaign
therefore starts the same experiments at the same times in the same labs with the same inputs
as ``gymnasium.make("labsched/ConcurrentLabs-v0", reward="regret", ...)``.

The driver is resumable: each step is computed from the journal alone, so after a crash
``run_simulation(Campaign.open(path))`` continues where the last committed call left off.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.campaign.config import seed_streams
from labsched.agents.campaign.planner import Campaign
from labsched.agents.campaign.state import CampaignState, next_grid_point
from labsched.envs.bo.episode import default_n_initial
from labsched.envs.bo.objectives import Objective, make_objective
from labsched.envs.labs.spec import LabSpec

__all__ = ["run_simulation", "simulate"]


def simulate(
    path: str | Path,
    *,
    objective: str | Objective,
    spec: LabSpec,
    scheduler: str = "ps",
    selector: str = "kb-ei",
    seed: int = 0,
    goal: str = "optimize",
    noise_std: float = 0.0,
    n_initial: int | None = None,
    stop_when: dict[str, float] | None = None,
    scheduler_options: dict[str, Any] | None = None,
    selector_options: dict[str, Any] | None = None,
) -> Campaign:
    """Create a simulated campaign at ``path`` and run it to the end.

    Args:
        path: journal file to create.
        objective: a registered objective name (its bounds are the campaign's) or an
            :class:`~labsched.envs.bo.objectives.Objective` (then the journal records its name,
            and only a registered name can be resumed by :func:`run_simulation` from the journal).
        spec, scheduler, selector, seed, goal, stop_when, scheduler_options, selector_options:
            as :meth:`Campaign.create`.
        noise_std: sd of the Gaussian noise added to each outcome.
        n_initial: size of the random initial design (default: 5 for d <= 3, else 20).

    Returns:
        The finished campaign.
    """
    obj = make_objective(objective)
    n0 = default_n_initial(obj.dim) if n_initial is None else int(n_initial)
    if n0 < 1:
        raise ValueError(f"n_initial must be >= 1, got {n_initial}")
    streams = seed_streams(seed, spec) if isinstance(seed, int) and seed >= 0 else None
    if streams is None:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    bounds = np.asarray(obj.bounds, dtype=float)
    X0 = obj.scale_from_unit(np.random.default_rng(streams.init_seed).random((n0, obj.dim)))
    noise = streams.noise(n0, spec.n_experiments, float(noise_std))
    y0 = np.asarray(obj(X0), dtype=float) + noise[:n0]
    campaign = Campaign.create(
        path,
        spec=spec,
        bounds=bounds,
        scheduler=scheduler,
        selector=selector,
        goal=goal,
        seed=seed,
        scheduler_options=scheduler_options,
        selector_options=selector_options,
        noise_std=noise_std,
        initial_data=(X0, y0),
        stop_when=stop_when,
        simulation={"objective": obj.name, "noise_std": float(noise_std), "n_initial": n0},
    )
    return run_simulation(campaign, obj)


def _next_time(state: CampaignState, durations: tuple[float, ...]) -> float:
    """The env's next decision point after the last ask: the next grid point or the first
    completion among the experiments running right after that ask, whichever is first."""
    spec = state.config.spec
    t_ask, ask_seq = state.ask_times[-1], state.ask_seqs[-1]
    ends = [
        o.started_at + durations[o.id]
        for o in state.orders
        if o.status == "running" or state.finish_seq[o.id] > ask_seq
    ]
    t_end = min(ends, default=math.inf)
    t_grid = next_grid_point(spec, t_ask)
    return t_end if t_end < t_grid else t_grid


def run_simulation(campaign: Campaign, objective: str | Objective | None = None) -> Campaign:
    """Drive a simulated campaign (new or reopened after a crash) to its end.

    Args:
        campaign: a campaign made by :func:`simulate` (its journal records the simulation).
        objective: the objective (default: the registered name in the journal).
    """
    sim = campaign.config.simulation
    if sim is None:
        raise ValueError("this campaign is not a simulation (it was not created by simulate())")
    obj = make_objective(objective if objective is not None else sim["objective"])
    spec = campaign.config.spec
    streams = seed_streams(campaign.config.seed, spec)
    noise = streams.noise(sim["n_initial"], spec.n_experiments, sim["noise_std"])[sim["n_initial"] :]
    campaign.refresh()
    while True:
        st = campaign.state
        if not st.asks:
            campaign.ask(0.0)
            continue
        t_next = _next_time(st, streams.durations)
        ends = sorted(
            (o.started_at + streams.durations[o.id], o.id)
            for o in st.running
            if o.started_at <= st.ask_times[-1]
        )
        for end, i in ends:
            if end <= t_next:
                x = np.asarray(st.orders[i].x, dtype=float)
                campaign.tell(i, float(obj(x)) + float(noise[i]), finished_at=end)
        st = campaign.state
        if st.n_finished == spec.n_experiments or t_next >= spec.horizon:
            return campaign
        campaign.ask(t_next)
