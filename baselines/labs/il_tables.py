"""Planning tables of the vectorised IL machinery, computed lazily and in bounded memory.

Conventions (shared with :mod:`labsched.baselines.labs.il_simulation`):

* Boundary indices ``g = 0 .. N`` name the times ``tau_g = g * epoch`` for ``g < N`` and
  ``tau_N = h`` (``N = ceil(h / epoch)``): the decision grid plus the horizon.
* ``Hs[a, g]`` is the log-probability that ``a`` stages splitting ``[tau_g, h]`` evenly on the
  grid (:func:`~labsched.baselines.labs.il_plan.stage_boundaries`) all hold their experiments;
  ``Hs[0, g]`` is 0 at ``g = N`` and ``-inf`` elsewhere.

Nothing here is allocated per pair of grid points: :class:`GridTables` builds a row ``Hs[a, :]``
(``O(N a)`` time, ``N + 1`` floats) the first time a load ``a`` is asked for, and
:class:`RunningPlans` computes the best first stage of a running lab only for the (plan time,
load) pairs a planner actually looks up, in chunks of at most :data:`CHUNK_ELEMENTS` floats.
The values are bit-for-bit those of a full table (the same operations on the same numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from labsched.baselines.labs.il_plan import GRID_TOL
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = ["CHUNK_ELEMENTS", "DenseRunning", "GridTables", "RunningPlans", "grid_tables", "running_tables"]

#: Largest temporary array (in float64 elements, 16 MiB) built by one vectorised step.
CHUNK_ELEMENTS = 1 << 21


def logcdf(dist: DurationModel, t: np.ndarray) -> np.ndarray:
    """``log P(D <= t)``, ``-inf`` for ``t <= 0``."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(dist.logcdf(np.maximum(t, 0.0)), dtype=float)
    return np.where(t <= 0.0, -np.inf, out)


def logsf(dist: DurationModel, t: np.ndarray) -> np.ndarray:
    """``log P(D > t)``."""
    fn = getattr(dist, "logsf", None)
    if fn is not None:
        return np.asarray(fn(t), dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(dist.sf(t), dtype=float))


@dataclass
class GridTables:
    """Per-spec tables on the decision grid (see the module docstring).

    Attributes:
        spec: the problem.
        n_points: ``N``, index of the horizon in :attr:`times`.
        times: ``(N + 1,)`` boundary times ``tau_g``.
    """

    spec: LabSpec
    n_points: int
    times: np.ndarray
    _rows: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def row(self, a: int) -> np.ndarray:
        """``Hs[a, :]`` (built on first use and cached; do not modify)."""
        a = int(a)
        if a < 0:
            raise ValueError(f"a must be >= 0, got {a}")
        out = self._rows.get(a)
        if out is None:
            out = self._rows[a] = self._build(a)
        return out

    def rows(self, a: np.ndarray) -> np.ndarray:
        """``Hs[a_i, :]`` for each entry of the 1-d array ``a``: shape ``(len(a), N + 1)``."""
        a = np.asarray(a, dtype=np.int64).reshape(-1)
        out = np.empty((a.size, self.n_points + 1))
        for v in np.unique(a).tolist():
            out[a == v] = self.row(v)
        return out

    def at(self, a: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``Hs[a, g]`` elementwise for integer arrays of one shape."""
        a = np.asarray(a, dtype=np.int64)
        g = np.asarray(g, dtype=np.int64)
        if a.size == 0:
            return np.empty(a.shape)
        lo, hi = int(a.min()), int(a.max())
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[a - lo] = True
        values = np.flatnonzero(present)  # the loads asked for (a linear-time unique)
        position = np.zeros(hi - lo + 1, dtype=np.int64)
        position[values] = np.arange(values.size)
        table = np.stack([self.row(v) for v in (values + lo).tolist()])
        return table[position[a - lo], g]

    def hs(self, a_max: int) -> np.ndarray:
        """The full table ``Hs[0 .. a_max, :]`` (``(a_max + 1, N + 1)``, built row by row)."""
        return np.stack([self.row(a) for a in range(int(a_max) + 1)])

    def _build(self, a: int) -> np.ndarray:
        spec, tau, n = self.spec, self.times, self.n_points
        h, eps = spec.horizon, spec.epoch
        if a == 0:
            out = np.full(n + 1, -np.inf)
            out[n] = 0.0
            return out
        out = np.empty(n + 1)
        j = np.arange(1, a)
        # Rows of the grid in blocks, so that the (block, a + 1) boundary array stays bounded.
        step = max(1, CHUNK_ELEMENTS // (a + 1))
        for lo in range(0, n + 1, step):
            t = tau[lo : lo + step, None]
            inner = t + (h - t) * j[None, :] / a
            inner = np.minimum(np.ceil(inner / eps - GRID_TOL) * eps, h)
            b = np.concatenate([t, inner, np.full((t.shape[0], 1), h)], axis=1)
            out[lo : lo + step] = logcdf(spec.duration, np.diff(b, axis=1)).sum(axis=1)
        return out


@lru_cache(maxsize=32)
def grid_tables(spec: LabSpec) -> GridTables:
    """The (cached) :class:`GridTables` of ``spec``."""
    eps, h = spec.epoch, spec.horizon
    n = int(math.ceil(h / eps - GRID_TOL))
    times = np.minimum(np.arange(n + 1) * eps, h)
    times[n] = h
    return GridTables(spec, n, times)


class RunningPlans:
    """Best first stage of each running lab, per (plan time, number of new experiments), on demand.

    For running experiment ``j`` (elapsed ``elapsed[j]`` at the decision time ``tau_{g0}``), plan
    time ``tau_g`` and ``a`` new experiments, the first stage may end at any boundary ``b > g``;
    its value is ``log P(D <= e_j + tau_b - tau_g0 | D > e_j + tau_g - tau_g0) + Hs[a, b]``. The
    best value and the boundary reaching it (the first one on ties; the horizon when no boundary
    is feasible) are computed the first time a pair ``(plan point, a)`` is looked up, for every
    running lab at once, and kept: memory ``r x (pairs looked up)``.

    Args:
        spec: the problem.
        g0: grid index of the decision time.
        elapsed: ``(r,)`` elapsed times at the decision time.
        points: ``(K,)`` grid indices (``g0 <= g < N``) of the plan times.
        max_load: largest ``a`` that may be asked for.
    """

    def __init__(
        self, spec: LabSpec, g0: int, elapsed: np.ndarray, points: np.ndarray, max_load: int
    ) -> None:
        self.tab = grid_tables(spec)
        self.g0 = int(g0)
        self.r = int(np.asarray(elapsed).size)
        self.width = int(max_load) + 1
        tau = self.tab.times[self.g0 :]
        self._rel = np.asarray(points, dtype=np.int64) - self.g0
        self._ls = logsf(spec.duration, np.asarray(elapsed, dtype=float)[:, None] + (tau - tau[0])[None, :])
        self._col = np.full(self._rel.size * self.width, -1, dtype=np.int64)
        self._g = np.empty((64, self.r))  # one row per pair (gathers of pairs are contiguous)
        self._b = np.empty((64, self.r), dtype=np.int64)
        self._n = 0
        # The first stage's log-probabilities of each plan point, kept once computed when all of
        # them fit in one chunk (they are the bulk of a look-up's work).
        n_logp = self.r * self._rel.size * self._ls.shape[1]
        self._logp = (
            np.empty((self.r, self._rel.size, self._ls.shape[1])) if n_logp <= CHUNK_ELEMENTS else None
        )
        self._have_logp = np.zeros(self._rel.size, dtype=bool)

    def columns(self, k_index: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Columns of :attr:`g` / :attr:`b` holding the pairs ``(k_index, a)`` (computed if new)."""
        key = np.asarray(k_index, dtype=np.int64) * self.width + np.asarray(a, dtype=np.int64)
        col = self._col[key]
        missing = col < 0
        if missing.any():
            mark = np.zeros(self._col.size, dtype=bool)
            mark[key[missing]] = True
            self._compute(np.flatnonzero(mark))
            col = self._col[key]
        return col

    @property
    def g(self) -> np.ndarray:
        """``(r, pairs)`` best log-safety of each running lab (index with :meth:`columns`)."""
        return self._g[: self._n].T

    @property
    def b(self) -> np.ndarray:
        """``(r, pairs)`` absolute boundary index ending the first stage."""
        return self._b[: self._n].T

    @property
    def g_rows(self) -> np.ndarray:
        """:attr:`g` transposed, ``(pairs, r)`` and contiguous: ``g_rows[columns]`` gathers rows."""
        return self._g[: self._n]

    @property
    def b_rows(self) -> np.ndarray:
        """:attr:`b` transposed, ``(pairs, r)`` and contiguous."""
        return self._b[: self._n]

    def fill(self) -> None:
        """Compute every pair now (one vectorised pass; cheaper than many small look-ups)."""
        missing = np.flatnonzero(self._col < 0)
        if missing.size:
            self._compute(missing)

    def table_size(self) -> int:
        """Floats a full :meth:`fill` pass touches (``r x pairs x boundaries``)."""
        return int(self.r * self._col.size * self._ls.shape[1])

    def _compute(self, keys: np.ndarray) -> None:
        r, nb = self._ls.shape
        need = self._n + keys.size
        if need > self._g.shape[0]:
            cap = max(need, 2 * self._g.shape[0])
            self._g = np.concatenate([self._g[: self._n], np.empty((cap - self._n, r))])
            self._b = np.concatenate([self._b[: self._n], np.empty((cap - self._n, r), dtype=np.int64)])
        step = max(1, CHUNK_ELEMENTS // max(r * nb, 1))
        k_all = keys // self.width
        # Pairs in groups of neighbouring plan points: a group looks only at the boundaries after
        # its earliest point (the others are -inf for all its pairs, so the first best is the same).
        order = np.argsort(k_all, kind="stable")
        keys, k_all = keys[order], k_all[order]
        step = max(1, min(step, -(-keys.size // 4)))
        for lo in range(0, keys.size, step):
            kk, ka = keys[lo : lo + step], k_all[lo : lo + step]
            b0 = int(self._rel[ka].min()) + 1
            hs = self.tab.rows(kk % self.width)[:, self.g0 + b0 :]
            vals = self._point_logp(ka, b0) + hs[None, :, :]
            best = vals.argmax(axis=2) + b0
            g_best = np.take_along_axis(vals, (best - b0)[..., None], axis=2)[..., 0]
            cols = np.arange(self._n, self._n + kk.size)
            self._g[cols] = g_best.T
            # No feasible first boundary: keep the stage open to the horizon (as the scalar
            # planner does).
            self._b[cols] = np.where(np.isneginf(g_best), self.tab.n_points, best + self.g0).T
            self._col[kk] = cols
            self._n += kk.size

    def _point_logp(self, ka: np.ndarray, b0: int) -> np.ndarray:
        """``(r, len(ka), Nb - b0)``: :func:`_first_stage_logp` of the plan points ``ka``, from
        boundary ``b0`` on."""
        if self._logp is None:
            k_u, k_inv = np.unique(ka, return_inverse=True)
            return _first_stage_logp(self._ls, self._rel[k_u])[:, k_inv.reshape(-1), b0:]
        new = np.unique(ka[~self._have_logp[ka]])
        if new.size:
            self._logp[:, new] = _first_stage_logp(self._ls, self._rel[new])
            self._have_logp[new] = True
        return self._logp[:, ka, b0:]


def _first_stage_logp(ls: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """``(r, P, Nb)``: log-probability that the first stage, from plan point ``rel_p`` to
    boundary ``b``, holds the running experiment (``-inf`` for ``b <= rel_p``)."""
    ls_k = ls[:, rel]  # (r, P)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.exp(ls[:, None, :] - ls_k[:, :, None])  # (r, P, Nb)
        logp = np.log1p(-np.minimum(ratio, 1.0))
    dead = ~np.isfinite(ls_k)
    logp = np.where(dead[:, :, None], 0.0, logp)
    later = np.arange(ls.shape[1])[None, :] > rel[:, None]  # (P, Nb)
    return np.where(later[None, :, :], logp, -np.inf)


class DenseRunning:
    """Full ``(r, K, A1)`` tables (from :func:`running_tables`) behind :class:`RunningPlans`'s lookup."""

    def __init__(self, g_tab: np.ndarray, b_tab: np.ndarray) -> None:
        self.r, k, self.width = g_tab.shape
        self.g = g_tab.reshape(self.r, k * self.width)
        self.b = b_tab.reshape(self.r, k * self.width)
        self.g_rows, self.b_rows = self.g.T, self.b.T

    def columns(self, k_index: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Columns of the pairs ``(k_index, a)``."""
        return np.asarray(k_index, dtype=np.int64) * self.width + np.asarray(a, dtype=np.int64)


def running_tables(
    spec: LabSpec, g0: int, elapsed: np.ndarray, plan_points: np.ndarray, a_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every value of :class:`RunningPlans` as full tables (for small problems and tests).

    Returns:
        ``(G, B)``: ``(r, K, a_max + 1)`` best log-safety and the boundary index achieving it.
    """
    plans = RunningPlans(spec, g0, elapsed, plan_points, a_max)
    k = np.asarray(plan_points).size
    kk, aa = np.meshgrid(np.arange(k), np.arange(a_max + 1), indexing="ij")
    cols = plans.columns(kk.reshape(-1), aa.reshape(-1))
    shape = (plans.r, k, a_max + 1)
    return plans.g[:, cols].reshape(shape), plans.b[:, cols].reshape(shape)
