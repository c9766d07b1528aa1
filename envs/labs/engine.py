"""The event semantics of the concurrent-labs problem, and one batched NumPy engine that runs them.

Semantics (shared by :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv`, the native
vector environment and the Monte-Carlo simulations, and pinned together by tests):

* **Decision grid.** Decision point ``j`` is at ``j * epoch``; the first point at or past
  ``h - tol_grid`` is the horizon itself (:func:`grid_times`, computed lazily: no grid is stored).
* **Time tolerance.** Two event times closer than ``tol = TIME_RTOL * h`` are the same instant
  (:func:`time_tolerance`): floating-point round-off (``0.7000000000000001 + 1.0``) never splits a
  true tie between a completion and a decision point or between two completions.
* **Next event.** From time ``t`` the next decision point is the earliest completion ``e`` when
  ``decide_on_completion`` is on and ``e < g - tol`` for the next grid point ``g``; otherwise ``g``.
  Every experiment ending at or before ``t_next + tol`` completes there, all at once.
* **Starts.** ``k`` experiments start in the free labs fastest in expectation (the
  lowest-numbered free labs when labs are equal); the ``i``-th experiment started in an episode
  (start order) has the episode's ``i``-th draw (common random numbers), its duration on a lab and
  its failure follow :mod:`~labsched.envs.labs.lab_columns`.
* **Prior count.** An experiment's prior count is the number of experiments completed
  successfully when it starts (completions at the same instant included); it scores that count if
  it completes by ``h`` without failing. A failed experiment frees its lab when it ends.
* **End.** An episode ends when all ``n`` experiments have ended (completed or failed) or time
  reaches ``h``.

:class:`LabsBatch` holds ``E`` episodes as arrays (one row per episode, each with its own clock)
and steps them in lockstep: one NumPy pass per step over all episodes, never a Python loop per
episode. The vector environment drives it with the grid and horizon on; the Monte-Carlo
simulations drive it event to event (``grid=False``), continuing past the horizon so that every
started experiment gets its end time.
"""

from __future__ import annotations

import math

import numpy as np

from labsched.envs.labs.lab_columns import lab_columns
from labsched.envs.labs.spec import LabSpec

__all__ = ["TIME_RTOL", "LabsBatch", "grid_times", "time_tolerance"]

TIME_RTOL = 1e-9


def time_tolerance(horizon: float) -> float:
    """Event times closer than this are one instant: ``TIME_RTOL * horizon``."""
    return TIME_RTOL * horizon


#: Counter rows (next_grid, started, running, completed, failed, cpe) of a new episode, and of
#: one held before its first decision point (see LabsBatch.reset_rows).
_RESET_COUNTERS = np.array([[1], [0], [0], [0], [0], [0]])
_HOLD_COUNTERS = np.array([[0], [0], [0], [0], [0], [0]])
_COUNTER_NAMES = ("started", "running", "completed", "failed", "cpe")


def _grid_table(epoch: float, horizon: float) -> np.ndarray | None:
    """:func:`grid_times` of every grid index up to the horizon's (looked up, index clipped:
    later indices are the horizon too), or ``None`` when the grid is too fine for a table."""
    size = math.ceil(horizon / epoch) + 2
    if size > 2**16:
        return None
    table = grid_times(np.arange(size), epoch, horizon)
    return table if table[-1] == horizon else None


def grid_times(j: np.ndarray, epoch: float, horizon: float) -> np.ndarray:
    """Times of decision points ``j`` (an integer array): ``j * epoch``, or ``horizon`` from the
    first point at or past it (the scalar env computes the same expression per point)."""
    tj = j * epoch
    return np.where(tj > horizon - TIME_RTOL * horizon, horizon, tj)


class LabsBatch:
    """``E`` episodes of one spec as arrays, stepped together (see the module docstring).

    Arrays are episode-minor, so that every per-lab or per-experiment operation is a contiguous
    elementwise pass over the episodes (reductions over the short lab axis are then cheap). Per lab
    (``(l, E)``): ``lab_end`` (``inf`` when idle), ``lab_offset`` (start time in mean durations,
    ``start / E[D]``, the scalar environment's elapsed offset; on idle labs at most ``t / E[D]``),
    ``lab_prior``, ``lab_fail`` (with failures; both meaningful on busy labs only: idle labs keep
    stale values, which nothing reads). Per experiment (``(n, E)``, start order): ``durations``
    (the draws; with labs of different laws, ``law_durations`` ``(m, n, E)`` holds one row per
    law), ``fail_u`` (with failures), ``exp_start`` (NaN until started), ``exp_duration``,
    ``exp_prior``, ``exp_lab``, ``exp_fail`` and :attr:`exp_end` (``start + duration``). Per
    episode (``(E,)``): ``t``, ``next_grid``, ``started``, ``completed`` (successful), ``failed``,
    ``running``, ``cpe`` (the integer counters are rows of one block, so that a reset is one pass),
    ``done``.

    Args:
        spec: the problem.
        n_episodes: ``E``.
        decide_on_completion: completions are decision points (else only the grid is).
        grid: use the decision grid and end episodes at the horizon; ``False`` runs event to event
            (completion times only) with no horizon, for Monte-Carlo simulations.
        n_labs: number of lab columns: default all the spec's labs in index order; ``k`` gives the
            ``k`` fastest labs in expectation (a simulation of keep-``k``-busy needs only those).
        track_experiments: keep the per-experiment arrays (start, prior, lab) that
            :meth:`records` and the Monte-Carlo outcomes read; without them a start is cheaper.
    """

    def __init__(
        self,
        spec: LabSpec,
        n_episodes: int,
        *,
        decide_on_completion: bool = True,
        grid: bool = True,
        n_labs: int | None = None,
        track_experiments: bool = True,
    ) -> None:
        self.spec = spec
        self.track_experiments = bool(track_experiments)
        self.n_episodes = E = int(n_episodes)
        self.n_labs = nl = spec.n_labs if n_labs is None else int(n_labs)
        self.n = n = spec.n_experiments
        self.horizon = spec.horizon
        self.epoch = spec.epoch
        self.tol = time_tolerance(spec.horizon)
        self.decide_on_completion = bool(decide_on_completion)
        self.grid = bool(grid)
        # Elapsed times are in units of the law schedulers know (the first guess when
        # spec.known_durations is False), as the single env scales them.
        self.inv_mean = 1.0 / float(spec.scheduler_view.duration.mean)
        self.lab_columns = cols = lab_columns(spec, n_labs)
        self._renumber = not np.array_equal(cols.labs, np.arange(nl))
        self.lab_end = np.full((nl, E), np.inf)
        self.lab_offset = np.zeros((nl, E))
        # Priors (< n) in the smallest integer type that holds the sum of l of them: an episode's
        # reward is summed in that type (a smaller pass per step, no conversion).
        self._prior_dtype = _smallest_int(nl * n)
        self.lab_prior = np.zeros((nl, E), dtype=self._prior_dtype)
        # Draws in start order under one spare row: row i + 1 of the buffer is experiment i, so
        # a start's row is started + rank, with no - 1 (the dense start path below).
        self._durations_buf = np.zeros((n + 1, E))
        self.durations = self._durations_buf[1:]
        self.law_durations = np.zeros((len(cols.laws), n, E)) if cols.quantile_draws else None
        self._fails = cols.fail is not None
        # Durations depend on the lab (different laws or speeds): starts need each one's lab.
        self._per_lab_draws = self.law_durations is not None or cols.speed is not None
        # Completions per episode are counted in the smallest integer type that holds l.
        self._count_dtype = _smallest_int(nl)
        self.fail_u = np.ones((n, E)) if self._fails else None
        self.lab_fail = np.zeros((nl, E), dtype=bool)
        self.exp_start = np.full((n, E), np.nan)
        self.exp_duration = np.full((n, E), np.nan)
        self.exp_prior = np.zeros((n, E), dtype=np.int64)
        self.exp_lab = np.full((n, E), -1, dtype=np.int64)
        self.exp_fail = np.zeros((n, E), dtype=bool)
        self.t = np.zeros(E)
        self._counters = np.zeros((6, E), dtype=np.int64)
        self.next_grid, self.started, self.running, self.completed, self.failed, self.cpe = self._counters
        self._counters[0] = 1
        self.done = np.zeros(E, dtype=bool)
        self._columns = np.arange(E)
        self._grid_table = _grid_table(spec.epoch, spec.horizon) if self.grid else None
        # Ranks of free labs by byte-wise sums of 8 episodes per uint64 word (below): a buffer of
        # free-lab flags padded to a multiple of 8 episodes (padding stays False) and of k.
        self._width = -(-E // 8) * 8
        self._free = np.zeros((nl, self._width), dtype=bool) if nl < 2**7 else None
        self._k8 = np.zeros(self._width, dtype=np.int8)
        # Flat views of the per-lab state, written at the new starts.
        self._flat_end = self.lab_end.reshape(-1)
        self._flat_offset = self.lab_offset.reshape(-1)
        self._flat_prior = self.lab_prior.reshape(-1)
        # Starts read only durations[started + rank - 1] (one law, no failures, no records).
        self._dense = not (self._per_lab_draws or self._fails or self.track_experiments)

    # ------------------------------------------------------------------ episodes
    def reset_rows(
        self,
        rows: np.ndarray | slice,
        durations: np.ndarray,
        fail_u: np.ndarray | None = None,
        *,
        hold: bool = False,
    ) -> None:
        """Start new episodes in ``rows`` (indices, a bool mask or a slice).

        Args:
            rows: the episodes.
            durations: their draws in start order, ``(n, R)`` (or ``(1, n, R)``), or the
                ``(m, n, R)`` table of :func:`~labsched.envs.labs.lab_columns.draw_episode_columns`
                when labs have different laws.
            fail_u: ``(n, R)`` failure uniforms (required when some lab can fail).
            hold: leave the episodes just before their first decision point (grid point 0 at
                time 0): the next :meth:`advance` moves them there with nothing happening, while
                it moves the other episodes on (a vector environment's autoreset: one
                ``advance`` for every episode). Needs the grid.
        """
        if hold and not self.grid:
            raise ValueError("hold=True needs the decision grid (grid=True)")
        self.lab_end[:, rows] = np.inf
        self.lab_offset[:, rows] = 0.0  # idle labs show +0.0 elapsed: offsets never above t
        durations = np.asarray(durations, dtype=float)
        if self.law_durations is not None:
            self.law_durations[:, :, rows] = durations
            durations = durations[0]
        elif durations.ndim == 3:
            durations = durations[0]
        self.durations[:, rows] = durations
        if self._fails:
            if fail_u is None:
                raise ValueError("fail_u (failure uniforms) is required when experiments can fail")
            self.fail_u[:, rows] = fail_u
            self.lab_fail[:, rows] = False
        if self.track_experiments:
            self.exp_start[:, rows] = np.nan
            self.exp_duration[:, rows] = np.nan
            self.exp_prior[:, rows] = 0
            self.exp_lab[:, rows] = -1
            self.exp_fail[:, rows] = False
        self._counters[:, rows] = _HOLD_COUNTERS if hold else _RESET_COUNTERS
        self.t[rows] = 0.0
        self.done[rows] = False

    def max_valid(self) -> np.ndarray:
        """``(E,)`` largest valid number of starts: ``min(free labs, unstarted experiments)``."""
        return np.minimum(self.n_labs - self.running, self.n - self.started)

    # ------------------------------------------------------------------ dynamics
    def start(self, k: np.ndarray) -> None:
        """Start ``k[e]`` experiments now in episode ``e`` (``0 <= k <= max_valid()``, unchecked).

        Only the new starts are touched: the ``k[e]`` free labs of rank ``1 .. k[e]`` (fastest
        first) get the episode's next draws, in place.
        """
        if not np.count_nonzero(k):
            return
        E = self.n_episodes
        new, rank = self._new_starts(k)
        width = new.shape[1]
        flat = new.reshape(-1).nonzero()[0]  # lab * width + episode of every new start
        rows = flat % width
        exp1 = self.started[rows] + rank.reshape(-1)[flat]  # experiment index + 1
        t = self.t[rows]
        prior = self.completed[rows]
        if self._dense and width == E:
            flat_lab = flat
            duration = self._durations_buf[exp1, rows]
        else:
            labs = flat // width
            flat_lab = flat if width == E else labs * E + rows
            flat_exp = (exp1 - 1) * E + rows  # as a flat (n, E) index
            duration = self._durations_at(labs, flat_exp)
        self._flat_end[flat_lab] = t + duration
        self._flat_offset[flat_lab] = t * self.inv_mean
        self._flat_prior[flat_lab] = prior
        if self._fails:
            fail = self.fail_u.ravel()[flat_exp] < self.lab_columns.fail[labs]
            self.lab_fail.ravel()[flat_lab] = fail
        if self.track_experiments:
            self.exp_start.ravel()[flat_exp] = t
            self.exp_duration.ravel()[flat_exp] = duration
            self.exp_prior.ravel()[flat_exp] = prior
            self.exp_lab.ravel()[flat_exp] = labs
            if self._fails:
                self.exp_fail.ravel()[flat_exp] = fail
        self._counters[1:3] += k  # started, running

    def _new_starts(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(new, rank)``, both ``(l, W)`` with ``W >= E`` columns (extra columns start
        nothing): the labs starting now (the ``k[e]`` free labs fastest first) and the rank of
        each free lab among its episode's free labs (1 = fastest)."""
        order = self.lab_columns.order
        free = self._free
        if free is None:  # 128 labs or more
            free = self.lab_end == np.inf
            rank = self._rank(free)
            return free & (rank <= k.astype(rank.dtype)), rank
        E = self.n_episodes
        np.equal(self.lab_end, np.inf, out=free[:, :E])
        # Running counts down the lab axis, 8 episodes at a time: a uint64 word holds the 0/1
        # flags of 8 episodes in its bytes, and word sums add the bytes independently (no carry:
        # each byte counts at most l < 128).
        ordered = free if order is None else free[order]
        words = ordered.view(np.uint64)
        if words.shape[1] <= 256:  # NumPy's accumulate down axis 0 is slow on wide arrays
            rank = np.add.accumulate(words, axis=0).view(np.int8)
        else:
            rank = words.copy()
            for j in range(1, rank.shape[0]):
                np.add(rank[j - 1], rank[j], out=rank[j])
            rank = rank.view(np.int8)
        if order is not None:
            rank[order] = rank.copy()
        k8 = self._k8
        k8[:E] = k
        new = rank <= k8
        new &= free
        return new, rank

    def _durations_at(self, labs: np.ndarray, flat_exp: np.ndarray) -> np.ndarray:
        """Durations of the experiments at flat ``(n, E)`` indices ``flat_exp`` on lab columns
        ``labs`` (same shape, or broadcastable as a column)."""
        cols = self.lab_columns
        if not self._per_lab_draws:
            return self.durations.ravel()[flat_exp]
        if self.law_durations is None:
            d = self.durations.ravel()[flat_exp]
        else:
            d = self.law_durations.reshape(len(cols.laws), -1)[cols.law_of[labs], flat_exp]
        return d if cols.speed is None else d / cols.speed[labs]

    def _rank(self, free: np.ndarray) -> np.ndarray:
        """Rank of each free lab among its episode's free labs, fastest first (1 = fastest)."""
        order = self.lab_columns.order
        if order is None:
            return _running_count(free)
        rank = np.empty(free.shape, dtype=np.int64)
        rank[order] = _running_count(free[order])
        return rank

    def _next_times(self) -> tuple[np.ndarray, np.ndarray | bool]:
        """``(t_next, by_grid)``: each episode's next decision time and whether it is a grid
        point (the grid index then moves on)."""
        t_end = np.minimum.reduce(self.lab_end, axis=0)
        if not self.grid:
            return np.where(t_end < np.inf, t_end, self.t), False  # nothing running: stay
        if self._grid_table is not None:
            t_grid = self._grid_table.take(self.next_grid, mode="clip")
        else:
            t_grid = grid_times(self.next_grid, self.epoch, self.horizon)
        if not self.decide_on_completion:
            return t_grid, True
        by_grid = t_end >= t_grid - self.tol
        return np.where(by_grid, t_grid, t_end), by_grid

    def advance(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Move episodes to their next decision point, completing experiments on the way.

        Args:
            rows: bool mask of the episodes to move (default: all).

        Returns:
            ``(E,)`` float rewards: the summed prior counts of the experiments completed (0 for
            episodes not moved).
        """
        lab_end = self.lab_end
        t_next, by_grid = self._next_times()
        if rows is not None:
            t_next = np.where(rows, t_next, -np.inf)
            by_grid = by_grid & rows
        fin = lab_end <= t_next + self.tol
        success = fin & ~self.lab_fail if self._fails else fin
        reward = np.add.reduce(self.lab_prior * success, axis=0, dtype=self._prior_dtype)
        n_fin = np.add.reduce(fin.view(np.int8), axis=0, dtype=self._count_dtype)
        np.putmask(lab_end, fin, np.inf)
        if self._fails:
            n_ok = np.add.reduce(success.view(np.int8), axis=0, dtype=self._count_dtype)
            self.completed += n_ok
            self.failed += n_fin
            self.failed -= n_ok
        else:
            self.completed += n_fin
        self.running -= n_fin
        self.cpe += reward
        self.t = t_next if rows is None else np.where(rows, t_next, self.t)
        if by_grid is not False:
            self.next_grid += by_grid
        if self.grid:
            ended = (self.completed + self.failed if self._fails else self.completed) == self.n
            ended |= self.t >= self.horizon
            if rows is None:
                self.done = ended  # an episode that ended stays ended: no need to keep done
            else:
                ended &= rows
                self.done |= ended
        else:
            self.done |= (self.started == self.n) & (self.running == 0)
        return reward.astype(np.float64)

    # ------------------------------------------------------------------ views
    @property
    def exp_end(self) -> np.ndarray:
        """``(n, E)`` end time of each experiment (``start + duration``; NaN until started)."""
        return self.exp_start + self.exp_duration

    def elapsed(self, busy: np.ndarray | None = None) -> np.ndarray:
        """``(l, E)`` float32 elapsed time of each lab's experiment in mean durations (0 when idle).

        ``t / E[D] - start / E[D]``, the scalar environment's floating-point expression.
        ``busy`` is :meth:`busy` when the caller has it already.
        """
        out = np.subtract(self.inv_mean * self.t, self.lab_offset).astype(np.float32)
        # Times the busy mask (exact: y * 1 = y, and y >= 0 for idle labs, so y * 0 = +0.0).
        np.multiply(out, self.lab_end != np.inf if busy is None else busy, out=out)
        return out

    def counters(self) -> dict[str, np.ndarray]:
        """Copies of the ``(E,)`` counters ``started``, ``running``, ``completed``, ``failed`` and
        ``cpe``: rows of one fresh block (one copy for all five)."""
        return dict(zip(_COUNTER_NAMES, self._counters[1:].copy(), strict=True))

    def busy(self) -> np.ndarray:
        """``(l, E)`` bool: lab running an experiment."""
        return self.lab_end != np.inf

    def remaining_time(self) -> np.ndarray:
        """``(E,)`` ``max(h - t, 0) / h``."""
        return np.maximum(self.horizon - self.t, 0.0) / self.horizon

    def records(self, rows: np.ndarray) -> list[tuple[list[tuple], list[tuple], list[tuple]]]:
        """``(completed, failed, running)`` record tuples ``(index, lab, start, end, prior)`` per
        episode.

        For each episode of ``rows``: the successfully completed experiments in completion order
        (end time, then start order), the failed ones in the same order, and the running ones in
        lab order with ``end=None``. One NumPy pass for all the episodes; only the tuples are
        built in Python.
        """
        rows = np.asarray(rows)
        n = self.n
        index = np.arange(n)[:, None]
        start = self.exp_start[:, rows]
        end = start + self.exp_duration[:, rows]
        started = index < self.started[rows][None, :]
        ended = started & (end <= self.t[rows] + self.tol)
        running = started & ~ended
        lab = self.exp_lab[:, rows]
        if self._renumber:  # columns are the fastest labs: the spec's lab numbers
            lab = self.lab_columns.labs[lab]
        key1 = np.where(ended, end, np.where(running, np.inf, np.nan))
        key2 = np.where(ended, index, np.where(running, lab, n))
        if self._fails:
            # Completed first, then failed, by (end, index); running next, by lab; unstarted last.
            failed = ended & self.exp_fail[:, rows]
            done = ended & ~failed
            group = np.where(done, 0, np.where(failed, 1, np.where(running, 2, 3)))
            n_failed = failed.sum(axis=0).tolist()
        else:  # completed first, by (end, index); running next, by lab; unstarted last
            done = ended
            group = ~done & ~running
            n_failed = [0] * rows.size
        order = np.lexsort((key2, key1, group), axis=0)
        cols = np.arange(rows.size)[None, :]
        sorted_ = [a[order, cols].T.tolist() for a in (np.broadcast_to(index, start.shape), lab, start, end)]
        prior = self.exp_prior[:, rows][order, cols].T.tolist()
        n_done = done.sum(axis=0).tolist()
        n_run = running.sum(axis=0).tolist()
        out = []
        for j, (idx, lb, st, en, pr) in enumerate(zip(*sorted_, prior, strict=True)):
            d, f, r = n_done[j], n_failed[j], n_run[j]
            a, b = d + f, d + f + r
            completed = list(zip(idx[:d], lb[:d], st[:d], en[:d], pr[:d], strict=True))
            lost = list(zip(idx[d:a], lb[d:a], st[d:a], en[d:a], pr[d:a], strict=True)) if f else []
            run = [(i, c, t, None, q) for i, c, t, q in zip(idx[a:b], lb[a:b], st[a:b], pr[a:b], strict=True)]
            out.append((completed, lost, run))
        return out


def _smallest_int(bound: int) -> type[np.signedinteger]:
    """The smallest signed integer type holding ``bound``."""
    return np.int8 if bound < 2**7 else np.int16 if bound < 2**15 else np.int64


def _running_count(mask: np.ndarray) -> np.ndarray:
    """``np.cumsum(mask, axis=0)`` for a bool ``(l, E)`` array, fast for short lab axes.

    NumPy's strided accumulate along axis 0 is slow; a row loop of contiguous additions is
    several times faster while ``l`` is small.
    """
    n_rows = mask.shape[0]
    dtype = np.int16 if n_rows < 2**15 else np.int64
    if n_rows > 64:
        return np.cumsum(mask.view(np.int8), axis=0, dtype=dtype)
    # Counts up to 64 fit int8: same-type additions (mixed int16 + bool ones are slower).
    ones = mask.view(np.int8)
    out = ones.copy()
    for j in range(1, n_rows):
        np.add(out[j - 1], ones[j], out=out[j])
    return out
