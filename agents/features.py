"""Observation forms of the RL agents: the flat vector, plus optional spec-derived features.

Every learned agent sees the environment's flat observation (``flatten=True``, length
``2 l + 4``: ``busy``, ``completed``, ``elapsed``, ``remaining_budget``, ``remaining_time``,
``started``; ``3 l + 4`` with heterogeneous labs, ``lab_duration`` after ``elapsed``). With
``features=True`` it also sees :data:`FEATURE_NAMES`, computed by :class:`LabFeatures` from that
observation and the problem spec alone (no hidden state, so a saved agent recomputes them at
predict time from any observation):

``free_labs``
    idle labs / l.
``remaining_time_means``
    time left, ``(h - t) / E[D]``: how many mean durations still fit.
``waves``
    (unstarted + running experiments) / l: how many rounds of all labs the rest needs.
``p_finish_now``
    probability that every running and unstarted experiment completes by ``h`` if all free
    labs start now and every lab is refilled as it frees (the fastest completion, OnFCP's
    schedule). Estimate: the remaining budget is split evenly over the labs (the extra ones to
    the labs that free first: idle ones, then busy ones by elapsed time); lab ``i`` finishes
    in time with probability ``P(R_i + S_k <= h - t)``, with ``R_i`` the residual duration
    of its running experiment given its elapsed time (from the CDF, tabulated once on a fine
    grid) and ``S_k`` a sum of ``k`` fresh durations; the labs are treated as independent. The
    law of ``S_k`` comes from a Monte-Carlo sample drawn once per spec with a fixed seed (4,096
    sums per ``k``, cached), so the feature is a deterministic function of the observation:
    about 60-150 microseconds for one observation, a few microseconds per row of a large batch
    (the residual term, 64 quantiles per busy lab, dominates). With heterogeneous labs each lab
    has its own law (``lab_durations`` divided by ``lab_speeds``). The fixed split makes it a
    little conservative against a simulation of OnFCP's dynamic refilling (paper setting, all 10
    labs busy for 0.5, 10 unstarted, 2.5 left: 0.87 against 0.93; 5 busy, 10 unstarted, 2.4
    left: 0.976 against 0.990).
``p_finish_wait``
    the same if the free labs instead wait one decision interval ``Delta`` before starting.

``p_finish_now`` is the largest probability of finishing the budget that any schedule can
reach from this state (up to the approximation), and the gap to ``p_finish_wait`` is the risk
of waiting: the quantity the paper's p-safe schedules reason about.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from labsched.envs.labs.spec import LabSpec

__all__ = ["FEATURE_NAMES", "FeatureWrapper", "LabFeatures", "flat_observation"]

FEATURE_NAMES = ("free_labs", "remaining_time_means", "waves", "p_finish_now", "p_finish_wait")

_N_SUMS = 4096  # Monte-Carlo sums per k (sorted: F_k(T) by binary search)
_N_QUANTILES = 64  # quantiles of S_k averaged over for a busy lab's residual-plus-chain
_N_GRID = 8193  # points of the tabulated CDF
_CHUNK = 256  # busy labs per pass of the residual estimate (keeps its temporaries in cache)
_DONE_SF = 1e-12  # a running experiment with survival below this has no residual left
_CACHE: dict[LabSpec, LabFeatures] = {}
_FLAT_KEYS = ("busy", "completed", "elapsed", "lab_duration", "remaining_budget", "remaining_time", "started")


def flat_observation(observation: Any, n_labs: int) -> np.ndarray:
    """The flat ``(batch, width)`` float32 form of a ``Dict`` or flat observation, batched or not.

    ``width`` is ``2 l + 4``, or ``3 l + 4`` when the ``Dict`` has the ``lab_duration`` key of
    heterogeneous labs (the environment's own flat order).
    """
    if isinstance(observation, dict):
        widths = {"busy": n_labs, "elapsed": n_labs, "lab_duration": n_labs}
        parts = [
            np.asarray(observation[k], dtype=np.float32).reshape(-1, widths.get(k, 1))
            for k in _FLAT_KEYS
            if k != "lab_duration" or k in observation
        ]
        return np.concatenate(parts, axis=1)
    flat = np.asarray(observation, dtype=np.float32)
    return flat.reshape(-1, flat.shape[-1])


class LabFeatures:
    """The features of :data:`FEATURE_NAMES` for one spec (use :meth:`for_spec`, which caches).

    The features read the flat observation of the spec's environment (:attr:`obs_width` values):
    ``2 l + 4``, or ``3 l + 4`` with heterogeneous labs (``lab_duration`` after ``elapsed``);
    any other width is refused with a ``ValueError`` naming the layout expected. With
    heterogeneous labs every lab has its own law (``LabSpec.lab_durations`` divided by
    ``lab_speeds``), the extra experiments of the even split go to the idle labs fastest in
    expectation first, and the rest is as for identical labs. A spec whose durations are unknown
    (``known_durations=False``) is read through its ``scheduler_view``: the features use the law
    schedulers are told, never the true one.

    :meth:`batch` runs the residual estimate over the busy labs of all rows together, grouped by
    law and chain length, in cache-sized chunks; :meth:`__call__` takes it too, except for one
    observation of identical labs, which a scalar form computes faster (the same float32
    values).

    Args:
        spec: the problem.
    """

    def __init__(self, spec: LabSpec) -> None:
        self.spec = spec
        view = getattr(spec, "scheduler_view", spec)
        n, nl = spec.n_experiments, spec.n_labs
        self._mean = float(view.duration.mean)
        self._max_chain = max(1, math.ceil(n / nl) + 1)
        self._heterogeneous = bool(spec.heterogeneous)
        self.obs_width = (3 if self._heterogeneous else 2) * nl + 4
        # Distinct (law, speed) pairs of the labs: one table per group (one for identical labs).
        pairs: list[tuple[Any, float]] = []
        group = np.empty(nl, dtype=np.int64)
        for lab, pair in enumerate(zip(view.lab_laws, view.lab_speed_factors, strict=True)):
            if pair not in pairs:
                pairs.append(pair)
            group[lab] = pairs.index(pair)
        self._group = group
        self._n_groups = len(pairs)
        # Idle labs take the extra experiments fastest first (the env's placement order).
        self._idle_order = np.asarray(view.lab_order, dtype=np.int64)
        # The CDF tabulated on [0, 2 h] (elapsed + time left never exceeds it): interpolation is
        # much cheaper than the models' exact special functions, and exact enough here.
        self._grid = np.linspace(0.0, 2.0 * spec.horizon, _N_GRID)
        self._inv_step = (_N_GRID - 1) / self._grid[-1]
        qs = (np.arange(_N_QUANTILES) + 0.5) / _N_QUANTILES
        self._sorted: list[list[np.ndarray]] = []
        tab = np.empty((self._n_groups, _N_GRID))
        self._quant = np.zeros((self._n_groups, self._max_chain + 1, _N_QUANTILES))
        for g, (law, speed) in enumerate(pairs):
            rng = np.random.default_rng(12345 if g == 0 else [12345, g])
            draws = np.asarray(law.sample(rng, (_N_SUMS, self._max_chain)), dtype=float)
            if speed != 1.0:
                draws = draws / speed
            sums = np.cumsum(draws, axis=1)  # column k - 1: sums of k durations
            self._sorted.append(
                [np.zeros(1)] + [np.sort(sums[:, k - 1]) for k in range(1, self._max_chain + 1)]
            )
            x = self._grid if speed == 1.0 else self._grid * speed
            tab[g] = np.clip(np.asarray(law.cdf(x), dtype=float), 0.0, 1.0)
            for k in range(1, self._max_chain + 1):
                self._quant[g, k] = np.quantile(self._sorted[g][k], qs)
        # Value and slope per cell, flat over the groups; the last point of each table has slope 0
        # so that a position clamped to the end of the grid needs no special case.
        slope = np.zeros_like(tab)
        slope[:, :-1] = np.diff(tab, axis=1)
        self._tab, self._slope = tab.ravel(), slope.ravel()
        self._qpos = self._quant * self._inv_step  # quantiles in grid cells

    @classmethod
    def for_spec(cls, spec: LabSpec) -> LabFeatures:
        """A cached instance for ``spec``."""
        feats = _CACHE.get(spec)
        if feats is None:
            if len(_CACHE) > 64:
                _CACHE.clear()
            feats = _CACHE[spec] = cls(spec)
        return feats

    @property
    def size(self) -> int:
        return len(FEATURE_NAMES)

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        """Features of flat observations: ``(batch, obs_width)`` (or one row) to ``(batch, 5)``.

        One observation of identical labs takes a scalar form of :meth:`batch` (cheaper for a
        single row; the same values in float32), anything else :meth:`batch`.
        """
        x = self._rows(flat)
        if x.shape[0] != 1 or self._n_groups != 1:
            return self.batch(x)
        return self._row(x[0])[None, :]

    # ------------------------------------------------------------------ one observation
    def _row(self, row: np.ndarray) -> np.ndarray:
        """:meth:`batch` for one observation of identical labs, in scalar steps."""
        spec = self.spec
        n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
        tail = self.obs_width - 3
        busy = row[:nl] > 0.5
        elapsed = row[nl + 1 : 2 * nl + 1] * self._mean
        started = round(row[tail + 2] * n)
        completed = round(row[nl] * n)
        t_left = max(row[tail + 1], 0.0) * h
        unstarted = n - started
        running = int(busy.sum())
        if completed >= n:
            p_now = p_wait = 1.0
        else:
            p_now, p_wait = self._p_finish_row(busy, elapsed, unstarted, t_left, spec.epoch)
        return np.array(
            [(nl - running) / nl, t_left / self._mean, (unstarted + running) / nl, p_now, p_wait],
            dtype=np.float32,
        )

    def _cdf_row(self, x: np.ndarray) -> np.ndarray:
        """The tabulated CDF of identical labs at ``x`` (clamped to the grid)."""
        pos = np.clip(x, 0.0, self._grid[-1]) * self._inv_step
        i = np.minimum(pos.astype(np.int64), _N_GRID - 2)
        return self._tab[i] + (pos - i) * self._slope[i]

    def _p_free_row(self, k: int, t: float) -> float:
        """P(S_k <= t) for an idle lab."""
        if k == 0:
            return 1.0
        if t <= 0.0:
            return 0.0
        s = self._sorted[0][min(k, self._max_chain)]
        return float(np.searchsorted(s, t, side="right")) / s.size

    def _p_finish_row(
        self, busy: np.ndarray, elapsed: np.ndarray, unstarted: int, t_left: float, delay: float
    ) -> tuple[float, float]:
        """P(finish) if the free labs start now and if they start after ``delay``."""
        nl = busy.size
        idle = int(nl - busy.sum())
        running = np.flatnonzero(busy)
        running = running[np.argsort(-elapsed[running], kind="stable")]  # longest elapsed first
        base, extra = divmod(unstarted, nl)
        p_busy = 1.0
        if running.size:
            if t_left <= 0.0:
                p_busy = 0.0
            else:
                e = elapsed[running]
                ks = base + (np.arange(idle, nl) < extra).astype(np.int64)
                sf_e = 1.0 - self._cdf_row(e)
                done = sf_e <= _DONE_SF
                cdf_e = 1.0 - sf_e
                q = self._quant[0][np.minimum(ks, self._max_chain)]
                room = e[:, None] + t_left - q
                with np.errstate(divide="ignore", invalid="ignore"):
                    p = (self._cdf_row(room) - cdf_e[:, None]) / sf_e[:, None]
                p = np.where(room > e[:, None], np.clip(p, 0.0, 1.0), 0.0).mean(axis=1)
                if done.any():
                    p[done] = [self._p_free_row(int(k), t_left) for k in ks[done]]
                p_busy = float(np.prod(p))
        n_more = min(extra, idle)
        out = []
        for t in (t_left, t_left - delay):
            p = p_busy
            if idle and p > 0.0:
                p *= self._p_free_row(base + 1, t) ** n_more
                p *= self._p_free_row(base, t) ** (idle - n_more)
            out.append(p)
        return out[0], out[1]

    def _rows(self, flat: np.ndarray) -> np.ndarray:
        """``flat`` as a float64 ``(batch, obs_width)`` array, its layout checked."""
        x = np.asarray(flat, dtype=float)
        width = x.shape[-1] if x.ndim else 0
        if width != self.obs_width:
            nl = self.spec.n_labs
            layout = (
                f"3 * n_labs + 4 = {self.obs_width} (busy, completed, elapsed, lab_duration, "
                "remaining_budget, remaining_time, started: the spec has heterogeneous labs)"
                if self._heterogeneous
                else f"2 * n_labs + 4 = {self.obs_width} (busy, completed, elapsed, remaining_budget, "
                "remaining_time, started)"
            )
            raise ValueError(
                f"features need the flat observation of the spec's env (n_labs={nl}): width {layout}; "
                f"got shape {x.shape}"
            )
        return x.reshape(-1, width)

    def batch(self, flat: np.ndarray) -> np.ndarray:
        """Features of a batch of flat observations, ``(batch, obs_width)`` to ``(batch, 5)``,
        without a Python loop per row."""
        spec = self.spec
        n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
        x = self._rows(flat)
        tail = self.obs_width - 3  # remaining_budget; remaining_time and started follow
        busy = x[:, :nl] > 0.5
        elapsed = x[:, nl + 1 : 2 * nl + 1] * self._mean
        started = np.rint(x[:, tail + 2] * n).astype(np.int64)
        completed = np.rint(x[:, nl] * n).astype(np.int64)
        t_left = np.maximum(x[:, tail + 1], 0.0) * h
        unstarted = n - started
        running = busy.sum(axis=1)
        idle = nl - running
        base, extra = np.divmod(unstarted, nl)
        out = np.empty((x.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
        out[:, 0] = idle / nl
        out[:, 1] = t_left / self._mean
        out[:, 2] = (unstarted + running) / nl
        p_busy = self._busy_product(busy, elapsed, running, idle, base, extra, t_left)
        finished = completed >= n
        for col, t in ((3, t_left), (4, t_left - spec.epoch)):
            out[:, col] = np.where(finished, 1.0, self._with_idle(p_busy, busy, idle, base, extra, t))
        return out

    # ------------------------------------------------------------------ the estimates
    def _p_free(self, g: int, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """P(S_k <= t) for labs of group ``g`` that are idle now (``k`` fresh durations)."""
        out = np.where(k == 0, 1.0, 0.0)
        live = (k > 0) & (t > 0.0)
        if live.any():
            for kk in np.unique(k[live]).tolist():
                rows = live & (k == kk)
                s = self._sorted[g][min(kk, self._max_chain)]
                out[rows] = np.searchsorted(s, t[rows], side="right") / s.size
        return out

    def _with_idle(
        self,
        p_busy: np.ndarray,
        busy: np.ndarray,
        idle: np.ndarray,
        base: np.ndarray,
        extra: np.ndarray,
        t: np.ndarray,
    ) -> np.ndarray:
        """``p_busy`` times the product over idle labs of P(S_k <= t): ``base + 1`` experiments
        for the first ``extra`` idle labs (fastest first), ``base`` for the others."""
        n_more = np.minimum(extra, idle)
        if self._n_groups == 1:  # two distinct factors (x ** 0 = 1 where no lab is idle)
            return (
                p_busy * self._p_free(0, base + 1, t) ** n_more * self._p_free(0, base, t) ** (idle - n_more)
            )
        free = ~busy[:, self._idle_order]  # idle labs, fastest first
        rank = np.cumsum(free, axis=1)  # 1 = the fastest idle lab
        k = base[:, None] + (rank <= n_more[:, None])
        p = np.ones(free.shape)
        tt = np.broadcast_to(t[:, None], free.shape)
        groups = self._group[self._idle_order]
        for g in range(self._n_groups):
            sel = free & (groups == g)[None, :]
            if sel.any():
                p[sel] = self._p_free(g, k[sel], tt[sel])
        return p_busy * np.prod(p, axis=1)

    def _busy_product(
        self,
        busy: np.ndarray,
        elapsed: np.ndarray,
        running: np.ndarray,
        idle: np.ndarray,
        base: np.ndarray,
        extra: np.ndarray,
        t: np.ndarray,
    ) -> np.ndarray:
        """Product over busy labs of P(R_i + S_{k_i} <= t), ``R_i`` the residual of lab ``i``'s
        experiment given its elapsed time and ``k_i`` its share of the unstarted experiments:
        ``base + 1`` for the first ``extra - idle`` busy labs by elapsed time (longest first)."""
        rows, labs = np.nonzero(busy)
        if rows.size == 0:
            return np.ones(busy.shape[0])
        e = elapsed[rows, labs]
        # Rank of each busy lab among its row's busy labs, longest elapsed first (ties by index).
        order = np.argsort(np.where(busy, -elapsed, np.inf), axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(busy.shape[1])[None, :], axis=1)
        slot = rank[rows, labs]
        k = base[rows] + (slot < (extra - idle)[rows])
        np.minimum(k, self._max_chain, out=k)
        p = self._residual_chain(e, k, t[rows], self._group[labs])
        prod = np.ones(busy.shape)  # in slot order (longest elapsed first), 1 for idle slots
        prod[rows, slot] = p
        return np.where((running > 0) & (t <= 0.0), 0.0, np.prod(prod, axis=1))

    def _cdf_at(self, pos: np.ndarray, offset: int) -> np.ndarray:
        """The tabulated CDF at grid positions ``pos`` (clamped to the grid), in place in ``pos``."""
        np.clip(pos, 0.0, _N_GRID - 1, out=pos)
        i = pos.astype(np.intp)
        pos -= i  # now the weight within the cell
        if offset:
            i += offset
        pos *= np.take(self._slope, i)
        pos += np.take(self._tab, i)
        return pos

    def _residual_chain(self, e: np.ndarray, k: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
        """P(R + S_k <= t) per busy lab: the mean over the quantiles ``q`` of S_k of
        ``P(e < D <= e + t - q) / P(D > e)`` (0 where ``q >= t``).

        Labs are grouped by law and ``k`` and sorted by ``t`` (longest first), so that each chunk
        only evaluates the quantiles below its largest ``t``; ``k = 0`` has one quantile (0).
        """
        inv = self._inv_step
        if self._n_groups == 1:
            sf_e = 1.0 - self._cdf_at(e * inv, 0)
        else:
            sf_e = np.empty(e.size)
            for gg in np.unique(g).tolist():
                sel = g == gg
                sf_e[sel] = 1.0 - self._cdf_at(e[sel] * inv, gg * _N_GRID)
        cdf_e = 1.0 - sf_e
        done = sf_e <= _DONE_SF  # should have finished already: no residual left
        out = np.zeros(e.size)
        xpos = (e + t) * inv
        live = np.flatnonzero(~done & (t > 0.0))
        key = (g * (self._max_chain + 1) + k)[live]
        order = np.lexsort((-t[live], key))
        idx, key = live[order], key[order]
        bounds = (
            np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
            if key.size
            else np.zeros(1, dtype=np.int64)
        )
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            gg, kk = divmod(int(key[a]), self._max_chain + 1)
            q, qpos = self._quant[gg, kk], self._qpos[gg, kk]
            if kk == 0:  # S_0 = 0: all the quantiles are 0, the mean is the one value
                q, qpos = q[:1], qpos[:1]
            for c0 in range(a, b, _CHUNK):
                sel = idx[c0 : min(b, c0 + _CHUNK)]
                ts = t[sel]
                m = int(np.searchsorted(q, ts[0], side="left"))  # quantiles below the largest t
                if m == 0:
                    continue
                # (m, rows): one quantile per row of the table, the labs along contiguous rows.
                cdf_room = self._cdf_at(xpos[sel][None, :] - qpos[:m, None], gg * _N_GRID)
                cdf_room -= cdf_e[sel]
                cdf_room /= sf_e[sel]
                np.clip(cdf_room, 0.0, 1.0, out=cdf_room)
                if ts[-1] <= q[m - 1]:  # some rows need fewer quantiles: R + S <= t needs S < t
                    cdf_room *= q[:m, None] < ts[None, :]
                out[sel] = np.add.reduce(cdf_room, axis=0) * (1.0 / q.size)
        if done.any():
            for gg in np.unique(g[done]).tolist():
                sel = done & (g == gg)
                out[sel] = self._p_free(gg, k[sel], t[sel])
        return out

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the features (for the wrapped observation space)."""
        spec = self.spec
        low = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
        high = np.array(
            [1.0, spec.horizon / self._mean, spec.n_experiments / spec.n_labs, 1.0, 1.0], dtype=np.float32
        )
        return low, high


class FeatureWrapper(gym.ObservationWrapper):
    """Append :data:`FEATURE_NAMES` to the flat observation of a ``ConcurrentLabsEnv``.

    The wrapped env must have been made with ``flatten=True``. ``action_masks()`` still reaches
    the env (``get_wrapper_attr``), so MaskablePPO trains through this wrapper.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not getattr(base, "flatten", False):
            raise ValueError("FeatureWrapper needs the flat observation: make the env with flatten=True")
        self.lab_spec: LabSpec = base.lab_spec
        self.features = LabFeatures.for_spec(self.lab_spec)
        inner = env.observation_space
        f_low, f_high = self.features.observation_bounds()
        self.observation_space = spaces.Box(
            np.concatenate([inner.low, f_low]).astype(np.float32),
            np.concatenate([inner.high, f_high]).astype(np.float32),
            dtype=np.float32,
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self.features(observation)[0]]).astype(np.float32)
