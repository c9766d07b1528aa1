"""Policy switching's Monte-Carlo: the plans of ``pi_0 .. pi_r`` in every simulation and the
simulated CPE of each candidate, in chunks of bounded memory.

:func:`plan_generator` makes, for each simulation ``e`` and each ``i = 1 .. r``, the IL plan
``pi_i`` makes at the first planning point at or after the ``i``-th simulated completion (and
``pi_0``'s plan now), keeping only a few integers per row (:class:`GeneratorPlans`): the subset
of running experiments still running at the plan time is recomputed from the simulated
completion times whenever it is needed, and the running labs' first stages are looked up in a
:class:`~labsched.baselines.labs.il_tables.RunningPlans`. :func:`simulate_candidates` replays
every plan (and the committed schedule) on common random numbers, a chunk of rows at a time.
Memory is therefore ``O(r x n_simulations)`` integers plus chunks of
:data:`~labsched.baselines.labs.il_tables.CHUNK_ELEMENTS` floats, whatever ``n``, ``l`` or the
grid; the results are those of one unchunked pass (every row is computed independently).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labsched.baselines.labs.il_batch_plan import (
    BatchPlan,
    RowPlans,
    new_loads,
    plan_rows_unique,
    to_batch_plan,
)
from labsched.baselines.labs.il_replay import cpe_of_new, simulate_stages_by_stage, split_lengths_by_stage
from labsched.baselines.labs.il_tables import CHUNK_ELEMENTS, RunningPlans, grid_tables
from labsched.baselines.labs.ps_lab_draws import ColumnLabs
from labsched.envs.labs.spec import LabSpec

__all__ = ["GeneratorPlans", "plan_generator", "simulate_candidates"]


@dataclass
class GeneratorPlans:
    """Plans of ``pi_0`` (row 0) and of ``pi_i`` in simulation ``e`` (row ``1 + (i - 1) E + e``).

    Attributes:
        plan_g: ``(R,)`` planning-grid index of each row's plan time.
        k_index: ``(R,)`` index of ``plan_g`` among the running lookup's plan points.
        live: ``(R,)`` the plan time is before the horizon (else the row starts nothing).
        n_run: ``(R,)`` experiments still running at the plan time.
        plans: the compact plans (:class:`~labsched.baselines.labs.il_batch_plan.RowPlans`).
        running: the running labs' first stages.
        run_end: ``(E, r)`` simulated completion times of the running experiments.
    """

    plan_g: np.ndarray
    k_index: np.ndarray
    live: np.ndarray
    n_run: np.ndarray
    plans: RowPlans
    running: RunningPlans
    run_end: np.ndarray

    def still(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), r)``: which running experiments are still running at each row's plan."""
        n_sim, r = self.run_end.shape
        if n_sim == 0:
            return np.ones((rows.size, r), dtype=bool)
        out = self.run_end[(rows - 1) % n_sim] > self.running.tab.times[self.plan_g[rows]][:, None]
        out[rows == 0] = True
        return out

    def row_plans(self, rows: np.ndarray) -> RowPlans:
        """The compact plans of some rows."""
        return RowPlans(*(getattr(self.plans, f)[rows] for f in RowPlans.__dataclass_fields__))

    def batch_plan(self, rows: np.ndarray) -> BatchPlan:
        """The full :class:`~labsched.baselines.labs.il_batch_plan.BatchPlan` of some rows."""
        n_points = self.running.tab.n_points
        return to_batch_plan(
            self.row_plans(rows), self.still(rows), self.k_index[rows], self.running, n_points
        )


def plan_generator(
    plan_spec: LabSpec, g0: int, elapsed: np.ndarray, run_end: np.ndarray, remaining: int
) -> GeneratorPlans:
    """Plans of every generated policy in every simulation (see the module docstring).

    Args:
        plan_spec: the problem on PS's planning grid.
        g0: planning-grid index of the decision time.
        elapsed: ``(r,)`` elapsed times of the running experiments, longest-running first.
        run_end: ``(E, r)`` simulated completion times of those experiments (``E`` may be 0).
        remaining: experiments not started.
    """
    tab = grid_tables(plan_spec)
    n_sim, r = run_end.shape
    plan_g, live = np.array([g0]), np.ones(1, dtype=bool)
    if r and n_sim:
        # pi_i plans at the first planning point at or after the i-th completion.
        pg = np.ceil(np.sort(run_end, axis=1).T / plan_spec.epoch - 1e-6).astype(int)
        pg = np.maximum(pg, g0 + 1)
        live = np.concatenate([live, (pg < tab.n_points).reshape(-1)])
        plan_g = np.concatenate([plan_g, np.minimum(pg, tab.n_points - 1).reshape(-1)])
    points = np.unique(plan_g)
    k_index = np.searchsorted(points, plan_g)
    running = RunningPlans(plan_spec, g0, elapsed, points, remaining)
    if running.table_size() <= CHUNK_ELEMENTS // 4 and running.width <= 64:
        running.fill()  # small problem: one pass over every pair beats many look-ups
    n_rows = plan_g.size
    fields = {f: np.zeros(n_rows, dtype=np.int64) for f in ("chosen", "q", "rem", "n_big")}
    total, safe = np.zeros(n_rows), np.zeros(n_rows, dtype=bool)
    n_run = np.zeros(n_rows, dtype=np.int64)
    out = GeneratorPlans(
        plan_g, k_index, live, n_run, RowPlans(**fields, total=total, safe=safe), running, run_end
    )
    step = max(1, CHUNK_ELEMENTS // max(8 * r, 1))
    for lo in range(0, n_rows, step):
        rows = np.arange(lo, min(lo + step, n_rows))
        still = out.still(rows)
        rp = plan_rows_unique(
            plan_spec, remaining, plan_g[rows], still, k_index[rows], running, totals=rows == 0
        )
        for f in RowPlans.__dataclass_fields__:
            getattr(out.plans, f)[rows] = getattr(rp, f)
        n_run[rows] = still.sum(axis=1)
    return out


def _shape(gen: GeneratorPlans, src: np.ndarray) -> tuple[int, int]:
    """``(new-lab columns, stages)`` of the simulated plans (the duration draw's shape)."""
    p = gen.plans
    n_new = int(p.chosen.max(initial=0))
    max_extra = np.where(gen.n_run[src] > 0, p.q[src] - 1 + (p.rem[src] > 0), 0)
    max_load = np.where(p.chosen[src] > 0, p.q[src] + (p.n_big[src] > 0), 0)
    return n_new, max(1, int(max_extra.max(initial=0)), int(max_load.max(initial=0)))


def _generator_layout(
    gen: GeneratorPlans, plan_spec: LabSpec, src: np.ndarray, sim: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labs of the plans of rows ``src`` in compact columns: the running labs still running at
    the plan time, then the new labs; no empty column is simulated.

    Returns:
        ``(ideal, comp, lens, column)``: ``(R, L)`` ideal stage ends, ``(R, L)`` current
        completion times, ``(A, R, L)`` stage lengths (NaN: none) and ``(R, L)`` the column of
        each lab in the duration draw (running lab ``j``: ``j``; new lab ``c``: ``r + c``).
    """
    tab = grid_tables(plan_spec)
    rp, still = gen.row_plans(src), gen.still(src)
    n_rows, r = still.shape
    bp = to_batch_plan(rp, still, gen.k_index[src], gen.running, tab.n_points)
    n_run = still.sum(axis=1)
    width = int((n_run + rp.chosen).max(initial=0))
    loads = new_loads(rp)
    n_stage = max(1, int(bp.run_extra.max(initial=0)), int(loads.max(initial=0)))
    column = np.full((n_rows, width), -1, dtype=np.int64)
    split_g = np.zeros((n_rows, width), dtype=np.int64)  # grid index where the even split starts
    n_split = np.zeros((n_rows, width), dtype=np.int64)
    comp = np.full((n_rows, width), -np.inf)
    row_of, j = np.nonzero(still)
    pos = (np.cumsum(still, axis=1) - 1)[row_of, j]
    column[row_of, pos] = j
    split_g[row_of, pos] = bp.run_first[row_of, j]
    n_split[row_of, pos] = bp.run_extra[row_of, j]
    comp[row_of, pos] = gen.run_end[sim[row_of], j]
    row_of, c = np.nonzero(np.arange(loads.shape[1])[None, :] < rp.chosen[:, None])
    pos = n_run[row_of] + c
    column[row_of, pos] = r + c
    split_g[row_of, pos] = gen.plan_g[src[row_of]]
    n_split[row_of, pos] = loads[row_of, c]
    a_max = -(-n_stage // 8) * 8
    if a_max * (a_max + 1) * (tab.n_points + 1) <= CHUNK_ELEMENTS // 8:  # a look-up in a small table
        lens = _split_table(plan_spec, a_max)[:n_stage, n_split, split_g]
    else:
        lens = split_lengths_by_stage(plan_spec, tab.times[split_g], n_split, n_stage)
    return tab.times[split_g], comp, lens, column


@lru_cache(maxsize=8)
def _split_table(plan_spec: LabSpec, a_max: int) -> np.ndarray:
    """``(a_max, a_max + 1, N + 1)``: the stage lengths of ``a`` stages splitting ``[tau_g, h]``
    evenly on the grid (:func:`~labsched.baselines.labs.il_replay.split_lengths_by_stage`, the
    same numbers), indexed ``[stage, a, g]``; NaN beyond ``a``."""
    times = grid_tables(plan_spec).times
    starts = np.broadcast_to(times[None, :], (a_max + 1, times.size))
    loads = np.broadcast_to(np.arange(a_max + 1)[:, None], starts.shape)
    return split_lengths_by_stage(plan_spec, starts, loads, a_max)


def _fixed_layout(
    fixed: tuple[list[float], list[list[float]]], run_rows: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The committed schedule's labs (same for every simulation) in :func:`_generator_layout`'s form."""
    ideal_f, lens_f = fixed
    n_rows, r = run_rows.shape
    width = len(ideal_f)
    n_stage = max([1, *(len(x) for x in lens_f)])
    ideal = np.broadcast_to(np.asarray(ideal_f, dtype=float), (n_rows, width)).copy()
    comp = np.full((n_rows, width), -np.inf)
    comp[:, :r] = run_rows
    lens = np.full((n_stage, n_rows, width), np.nan)
    for c, lv in enumerate(lens_f):
        lens[: len(lv), :, c] = np.asarray(lv, dtype=float)[:, None]
    return ideal, comp, lens, np.broadcast_to(np.arange(width), (n_rows, width))


def _draws_by_stage(
    spec: LabSpec, columns: ColumnLabs | None, rng: np.random.Generator, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(durations, fails)`` of the new experiments per (simulation, column, stage), stage axis
    first; ``fails`` is ``None`` when nothing can fail."""
    if columns is None:
        return np.asarray(spec.duration.sample(rng, shape), dtype=float).transpose(2, 0, 1), None
    durations, fails = columns.new_draws(rng, *shape)
    return durations.transpose(2, 0, 1), None if fails is None else fails.transpose(2, 0, 1)


# size: 8x lines, 35 of them the docstring: one chunked pass over the rows of every candidate.
def simulate_candidates(
    spec: LabSpec,
    plan_spec: LabSpec,
    time: float,
    completed: int,
    remaining: int,
    gen: GeneratorPlans,
    fixed: tuple[list[float], list[list[float]]] | None,
    rng: np.random.Generator,
    *,
    completion_decisions: bool = True,
    columns: ColumnLabs | None = None,
    run_fail: np.ndarray | None = None,
    racing: tuple[int, float] | None = None,
    keep: int | None = None,
) -> np.ndarray:
    """Mean simulated CPE of ``pi_0 .. pi_r`` (and of the committed schedule ``fixed``, last).

    Every simulation ``e`` draws one duration per (lab column, stage) (common random numbers:
    running lab ``j`` is column ``j``, new lab ``c`` of a plan column ``r + c``, and the
    committed schedule's labs keep their columns), so all candidates see the same draws.

    Args:
        spec: the problem (its decision grid is where the simulated labs start experiments).
        plan_spec: the problem on PS's planning grid (where the plans' boundaries lie).
        time: the decision time.
        completed: experiments completed so far.
        remaining: experiments not started.
        gen: the generated plans (:func:`plan_generator`).
        fixed: per-column ideal stage end and stage lengths of the committed schedule, or None.
        rng: source of the new experiments' durations.
        completion_decisions: overruns restart at the completion (else at the next epoch).
        columns: the physical lab of each column, for failing or heterogeneous labs
            (:mod:`~labsched.baselines.labs.ps_lab_draws`; ``None``: ``spec.duration`` everywhere).
        run_fail: ``(E, r)`` which running experiments fail (``None``: none).
        racing: ``(first, z)`` to race the candidates: every candidate is simulated on the first
            ``first`` simulations; then, after ``first``, ``2 first``, ``4 first``, ...
            simulations, a candidate whose mean so far is below the best one's by more than ``z``
            standard errors of their paired difference is dropped (its estimate is ``-inf``),
            and only the others are simulated on the next simulations. The durations of all
            simulations are drawn first, so a candidate that stays has exactly the estimate it
            has without racing. ``None``: no racing.
        keep: a candidate racing never drops (PS's incumbent, which wins ties).

    Returns:
        ``(r + 1,)`` or ``(r + 2,)`` mean simulated CPE per candidate (``-inf``: dropped by racing).
    """
    run_end = gen.run_end
    n_sim, r = run_end.shape
    n_cand = r + 1 + (fixed is not None)
    n_gen = (r + 1) * n_sim
    # Which rows to simulate. pi_i's execution equals pi_{i-1}'s in a simulation where both
    # plan at the same epoch (same state then), and it starts nothing when its plan time is
    # past the horizon: such rows are filled in afterwards instead of simulated.
    need = np.ones(n_cand * n_sim, dtype=bool)
    dup = np.zeros((r, n_sim), dtype=bool)
    if r:
        pg = gen.plan_g[1:].reshape(r, n_sim)
        lv = gen.live[1:].reshape(r, n_sim)
        dup[1:] = lv[1:] & lv[:-1] & (pg[1:] == pg[:-1])
        need[n_sim:n_gen] = (lv & ~dup).reshape(-1)
    rows = np.flatnonzero(need)
    gen_rows = rows[rows < n_gen]
    n_new, n_stage = _shape(gen, np.where(gen_rows < n_sim, 0, gen_rows - n_sim + 1))
    if fixed is not None:
        n_new = max(n_new, len(fixed[0]) - r)
        n_stage = max([n_stage, *(len(x) for x in fixed[1])])
    by_stage, fail_by_stage = _draws_by_stage(spec, columns, rng, (n_sim, r + n_new, n_stage))
    # Failed experiments score nothing and are no one's prior: their ends are inf for CPE.
    score_end = run_end if run_fail is None else np.where(run_fail, np.inf, run_end)
    cpe = np.zeros(n_cand * n_sim)
    step = max(1, CHUNK_ELEMENTS // ((r + n_new) * n_stage))

    def simulate_rows(rows: np.ndarray) -> None:
        for lo in range(0, rows.size, step):
            rows_c = rows[lo : lo + step]
            for part in (rows_c[rows_c < n_gen], rows_c[rows_c >= n_gen]):
                if not part.size:
                    continue
                sim = part % n_sim
                if part[0] < n_gen:
                    src = np.where(part < n_sim, 0, part - n_sim + 1)
                    ideal, comp, lens, column = _generator_layout(gen, plan_spec, src, sim)
                else:
                    assert fixed is not None
                    ideal, comp, lens, column = _fixed_layout(fixed, run_end[sim])
                dur = by_stage[: lens.shape[0], sim[:, None], np.maximum(column, 0)]
                starts, ends = simulate_stages_by_stage(
                    spec, time, ideal, comp, lens, dur, completion_decisions=completion_decisions
                )
                if fail_by_stage is not None:
                    ends = np.where(
                        fail_by_stage[: lens.shape[0], sim[:, None], np.maximum(column, 0)], np.inf, ends
                    )
                starts = np.moveaxis(starts, 0, 1).reshape(part.size, -1)
                ends = np.moveaxis(ends, 0, 1).reshape(part.size, -1)
                cpe[part] = cpe_of_new(spec, starts, ends, score_end[sim], completed, remaining)

    # pi_i's rows that equal pi_{i-1}'s take the values of the last simulated row above them.
    src_i = np.maximum.accumulate(np.where(dup, 0, np.arange(r)[:, None]), axis=0) if r else None

    def filled() -> np.ndarray:
        out = cpe.reshape(n_cand, n_sim).copy()
        if r:
            out[1 : r + 1] = np.take_along_axis(out[1 : r + 1], src_i, axis=0)
        return out

    first = n_sim if racing is None else int(racing[0])
    if first >= n_sim or n_cand < 2:
        simulate_rows(rows)
        return filled().mean(axis=1)
    assert racing is not None
    alive = np.ones(n_cand, dtype=bool)
    sim_of = rows % n_sim
    done = 0
    while done < n_sim:
        upto = min(max(2 * done, first), n_sim)  # looks after first, 2 first, 4 first, ... simulations
        simulate_rows(
            rows[_wanted(alive, src_i, n_sim).reshape(-1)[rows] & (sim_of >= done) & (sim_of < upto)]
        )
        done = upto
        if done < n_sim:
            alive = _survivors(filled()[:, :done], alive, float(racing[1]), keep)
    return np.where(alive, filled().mean(axis=1), -np.inf)


def _wanted(alive: np.ndarray, src_i: np.ndarray | None, n_sim: int) -> np.ndarray:
    """``(n_cand, n_sim)``: the rows the candidates ``alive`` need (their own, or for ``pi_i``
    the rows its values are copied from, :func:`simulate_candidates`'s ``src_i``)."""
    n_cand = alive.size
    wanted = np.zeros((n_cand, n_sim), dtype=bool)
    wanted[0] = alive[0]
    if src_i is None:
        wanted[1:] = alive[1:, None]
        return wanted
    r = src_i.shape[0]
    wanted[r + 1 :] = alive[r + 1 :, None]
    ks = np.flatnonzero(alive[1 : r + 1])
    wanted_gen = np.zeros((r, n_sim), dtype=bool)
    wanted_gen[src_i[ks], np.arange(n_sim)[None, :]] = True
    wanted[1 : r + 1] = wanted_gen
    return wanted


def _survivors(values: np.ndarray, alive: np.ndarray, z: float, keep: int | None) -> np.ndarray:
    """The candidates among ``alive`` whose mean of ``values`` (``(n_cand, n)``, one column per
    simulation so far) is not below the best one's by more than ``z`` standard errors of their
    paired difference; ``keep`` always survives."""
    n = values.shape[1]
    means = np.where(alive, values.mean(axis=1), -np.inf)
    best = int(np.argmax(means))
    se = (values - values[best]).std(axis=1, ddof=1) / np.sqrt(n)
    # A zero-variance difference is a sure gap (every simulation so far agrees); z = inf drops nothing.
    out = alive.copy() if np.isinf(z) else alive & (means[best] - means <= np.where(se > 0, z * se, 0.0))
    if keep is not None:
        out[keep] = True
    return out
