"""Observation forms of the RL agents: the flat vector, plus optional spec-derived features.

Every learned agent sees the environment's flat observation (``flatten=True``, length
``2 l + 4``: ``busy``, ``completed``, ``elapsed``, ``remaining_budget``, ``remaining_time``,
``started``). With ``features=True`` it also sees :data:`FEATURE_NAMES`, computed by
:class:`LabFeatures` from that observation and the problem spec alone (no hidden state, so a
saved agent recomputes them at predict time from any observation):

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
    sums per ``k``, cached), so the feature is a deterministic function of the observation,
    about 60 microseconds per step. The fixed split makes it a little conservative against a
    simulation of OnFCP's dynamic refilling (paper setting, all 10 labs busy for 0.5, 10
    unstarted, 2.5 left: 0.87 against 0.93; 5 busy, 10 unstarted, 2.4 left: 0.976 against 0.990).
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
_CACHE: dict[LabSpec, LabFeatures] = {}


def flat_observation(observation: Any, n_labs: int) -> np.ndarray:
    """The flat ``(batch, 2 l + 4)`` float32 form of a ``Dict`` or flat observation, batched or not."""
    if isinstance(observation, dict):
        parts = [
            np.asarray(observation[k], dtype=np.float32).reshape(-1, width)
            for k, width in (
                ("busy", n_labs),
                ("completed", 1),
                ("elapsed", n_labs),
                ("remaining_budget", 1),
                ("remaining_time", 1),
                ("started", 1),
            )
        ]
        return np.concatenate(parts, axis=1)
    flat = np.asarray(observation, dtype=np.float32)
    return flat.reshape(-1, flat.shape[-1])


class LabFeatures:
    """The features of :data:`FEATURE_NAMES` for one spec (use :meth:`for_spec`, which caches).

    Args:
        spec: the problem.
    """

    def __init__(self, spec: LabSpec) -> None:
        self.spec = spec
        n, nl = spec.n_experiments, spec.n_labs
        self._mean = float(spec.duration.mean)
        self._max_chain = max(1, math.ceil(n / nl) + 1)
        rng = np.random.default_rng(12345)
        draws = np.asarray(spec.duration.sample(rng, (_N_SUMS, self._max_chain)), dtype=float)
        sums = np.cumsum(draws, axis=1)  # column k - 1: sums of k durations
        self._sorted = [np.zeros(1)] + [np.sort(sums[:, k - 1]) for k in range(1, self._max_chain + 1)]
        # The CDF tabulated on [0, 2 h] (elapsed + time left never exceeds it): np.interp is
        # much cheaper than the models' exact special functions, and exact enough here.
        self._grid = np.linspace(0.0, 2.0 * spec.horizon, _N_GRID)
        self._cdf_tab = np.clip(np.asarray(spec.duration.cdf(self._grid), dtype=float), 0.0, 1.0)
        self._inv_step = (_N_GRID - 1) / self._grid[-1]
        qs = (np.arange(_N_QUANTILES) + 0.5) / _N_QUANTILES
        self._quant = np.zeros((self._max_chain + 1, _N_QUANTILES))
        for k in range(1, self._max_chain + 1):
            self._quant[k] = np.quantile(self._sorted[k], qs)

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

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """The tabulated CDF, linearly interpolated on its uniform grid (clamped outside it).

        What ``np.interp(x, grid, table)`` computes, with the cell found by arithmetic instead of
        a binary search (the grid is uniform), several times faster on large batches.
        """
        x = np.asarray(x, dtype=float)
        pos = np.clip(x, 0.0, self._grid[-1]) * self._inv_step
        i = np.minimum(pos.astype(np.int64), _N_GRID - 2)
        w = pos - i
        tab = self._cdf_tab
        return tab[i] + w * (tab[i + 1] - tab[i])

    def _p_chain_free(self, k: int, t: float) -> float:
        """P(S_k <= t) for a lab that is idle now."""
        if k == 0:
            return 1.0
        if t <= 0.0:
            return 0.0
        s = self._sorted[min(k, self._max_chain)]
        return float(np.searchsorted(s, t, side="right")) / s.size

    def _p_chains_busy(self, elapsed: np.ndarray, ks: np.ndarray, t: float) -> float:
        """Product over busy labs of P(R_i + S_{k_i} <= t), R_i the residual given ``elapsed[i]``."""
        if t <= 0.0:
            return 0.0
        sf_e = 1.0 - self._cdf(elapsed)
        done = sf_e <= 1e-12  # should have finished already: no residual left
        cdf_e = 1.0 - sf_e
        # S_k by its quantiles (S_0 = 0); R + S <= t  <=>  e < D <= e + t - S.
        q = self._quant[np.minimum(ks, self._max_chain)]
        room = elapsed[:, None] + t - q
        cdf_room = self._cdf(room)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (cdf_room - cdf_e[:, None]) / sf_e[:, None]
        p = np.where(room > elapsed[:, None], np.clip(p, 0.0, 1.0), 0.0).mean(axis=1)
        if done.any():
            p[done] = [self._p_chain_free(int(k), t) for k in ks[done]]
        return float(np.prod(p))

    def _p_finish(
        self, busy: np.ndarray, elapsed: np.ndarray, unstarted: int, t_left: float, delay: float
    ) -> tuple[float, float]:
        """P(finish) if the free labs start now and if they start after ``delay``."""
        nl = busy.size
        # Labs in the order they free: idle ones first, then busy ones by elapsed time (longest first).
        idle = int(nl - busy.sum())
        running = np.flatnonzero(busy)
        running = running[np.argsort(-elapsed[running], kind="stable")]
        base, extra = divmod(unstarted, nl)
        p_busy = 1.0
        if running.size:
            ks = base + (np.arange(idle, nl) < extra).astype(int)
            p_busy = self._p_chains_busy(elapsed[running], ks, t_left)
        # The idle labs take base + 1 or base new experiments each: two distinct factors.
        n_more = min(extra, idle)
        out = []
        for t in (t_left, t_left - delay):
            p = p_busy
            if idle and p > 0.0:
                p *= self._p_chain_free(base + 1, t) ** n_more
                p *= self._p_chain_free(base, t) ** (idle - n_more)
            out.append(p)
        return out[0], out[1]

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        """Features of a batch of flat observations: ``(batch, 2 l + 4)`` to ``(batch, 5)``."""
        spec = self.spec
        n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
        flat = np.asarray(flat, dtype=float).reshape(-1, 2 * nl + 4)
        out = np.empty((flat.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
        for i, row in enumerate(flat):
            busy = row[:nl] > 0.5
            elapsed = row[nl + 1 : 2 * nl + 1] * self._mean
            started = round(row[2 * nl + 3] * n)
            completed = round(row[nl] * n)
            t_left = max(row[2 * nl + 2], 0.0) * h
            unstarted = n - started
            running = int(busy.sum())
            if completed >= n:
                p_now = p_wait = 1.0
            else:
                p_now, p_wait = self._p_finish(busy, elapsed, unstarted, t_left, spec.epoch)
            out[i] = (
                (nl - running) / nl,
                t_left / self._mean,
                (unstarted + running) / nl,
                p_now,
                p_wait,
            )
        return out

    def batch(self, flat: np.ndarray) -> np.ndarray:
        """:meth:`__call__` for many observations at once, without a Python loop per row.

        The same estimates as the row-by-row form (equal up to floating-point summation order,
        ~1e-15); the native vector environment's training path uses it.
        """
        spec = self.spec
        n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
        flat = np.asarray(flat, dtype=float).reshape(-1, 2 * nl + 4)
        busy = flat[:, :nl] > 0.5
        elapsed = flat[:, nl + 1 : 2 * nl + 1] * self._mean
        started = np.rint(flat[:, 2 * nl + 3] * n).astype(np.int64)
        completed = np.rint(flat[:, nl] * n).astype(np.int64)
        t_left = np.maximum(flat[:, 2 * nl + 2], 0.0) * h
        unstarted = n - started
        running = busy.sum(axis=1)
        idle = nl - running
        base, extra = np.divmod(unstarted, nl)
        p_busy = self._batch_busy(busy, elapsed, running, idle, base, extra, t_left)
        n_more = np.minimum(extra, idle)
        out = np.empty((flat.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
        out[:, 0] = (nl - running) / nl
        out[:, 1] = t_left / self._mean
        out[:, 2] = (unstarted + running) / nl
        for col, t in ((3, t_left), (4, t_left - spec.epoch)):
            p = p_busy.copy()
            use = (idle > 0) & (p > 0.0)
            p = np.where(use, p * self._batch_free(base + 1, t) ** n_more, p)
            p = np.where(use, p * self._batch_free(base, t) ** (idle - n_more), p)
            out[:, col] = np.where(completed >= n, 1.0, p)
        return out

    def _batch_free(self, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """P(S_k <= t) per row (:meth:`_p_chain_free`, vectorised)."""
        out = np.where(k == 0, 1.0, 0.0)
        for kk in np.unique(k[(k > 0) & (t > 0.0)]).tolist():
            rows = (k == kk) & (t > 0.0)
            s = self._sorted[min(kk, self._max_chain)]
            out[rows] = np.searchsorted(s, t[rows], side="right") / s.size
        return out

    def _batch_busy(
        self,
        busy: np.ndarray,
        elapsed: np.ndarray,
        running: np.ndarray,
        idle: np.ndarray,
        base: np.ndarray,
        extra: np.ndarray,
        t: np.ndarray,
    ) -> np.ndarray:
        """Product over busy labs of P(R_i + S_{k_i} <= t) per row (:meth:`_p_chains_busy`)."""
        nl = busy.shape[1]
        order = np.argsort(np.where(busy, -elapsed, np.inf), axis=1, kind="stable")
        e = np.take_along_axis(elapsed, order, axis=1)
        slot = np.arange(nl)[None, :]
        valid = slot < running[:, None]
        ks = base[:, None] + ((idle[:, None] + slot) < extra[:, None])
        sf_e = 1.0 - self._cdf(e)
        done = sf_e <= 1e-12
        cdf_e = 1.0 - sf_e
        q = self._quant[np.minimum(ks, self._max_chain)]
        room = e[:, :, None] + t[:, None, None] - q
        cdf_room = self._cdf(room)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (cdf_room - cdf_e[:, :, None]) / sf_e[:, :, None]
        p = np.where(room > e[:, :, None], np.clip(p, 0.0, 1.0), 0.0).mean(axis=2)
        if (done & valid).any():
            tt = np.broadcast_to(t[:, None], ks.shape)
            p = np.where(done, self._batch_free(ks.ravel(), tt.ravel()).reshape(ks.shape), p)
        p = np.where(valid, p, 1.0)
        return np.where((running > 0) & (t <= 0.0), 0.0, np.prod(p, axis=1))

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
