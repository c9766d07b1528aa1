"""Online baselines: sequential, OnFCP, OnMEL and a random floor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.il_tables import CHUNK_ELEMENTS
from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.engine import time_tolerance
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "LabCountEstimate",
    "OnFCP",
    "OnMEL",
    "RandomPolicy",
    "Sequential",
    "keep_busy_completion",
    "min_eager_labs",
]


class Sequential(BaselinePolicy):
    """One experiment at a time: the unconstrained (h = infinity) reference.

    It ignores the horizon; evaluate it with a horizon long enough for ``n`` sequential runs
    to reach the sequential CPE ``n (n - 1) / 2``.
    """

    name = "sequential"

    def act(self, state: LabState, memory: Any) -> int:
        return 1 if state.running == 0 and state.remaining > 0 else 0


class OnFCP(BaselinePolicy):
    """Online fastest-completion policy: keep every lab busy while experiments remain."""

    name = "onfcp"

    def act(self, state: LabState, memory: Any) -> int:
        return state.max_valid


@dataclass(frozen=True)
class LabCountEstimate:
    """Result of the OnMEL lab-count search.

    Attributes:
        n_labs: the chosen number of labs ``k``.
        p_complete: estimated probability that all ``n`` complete by ``h`` with ``k`` labs.
        std_error: its Monte-Carlo standard error ``sqrt(p (1 - p) / N)``.
        n_simulations: Monte-Carlo sample size ``N``.
        safe: whether ``p_complete >= p_safe`` (False: no ``k <= l`` is safe; ``k = l``).
        curve: estimated completion probability for every ``k`` tried, ``{k: p}``.
    """

    n_labs: int
    p_complete: float
    std_error: float
    n_simulations: int
    safe: bool
    curve: dict[int, float]


def min_eager_labs(
    spec: LabSpec, n_simulations: int = 20_000, rng: np.random.Generator | None = None
) -> LabCountEstimate:
    """Fewest labs ``k`` for which keeping ``k`` labs busy completes all ``n`` by ``h`` with
    probability at least ``p_safe`` (Monte-Carlo, :func:`keep_busy_completion`).

    The completion probability increases with ``k``. The search starts at
    ``k0 = floor(n E[D] / h)`` (fewer labs cannot finish on average); if ``k0`` is not safe it
    doubles its step up from ``k0`` until a safe ``k`` is found and then bisects between the last
    unsafe and the first safe ``k``: ``O(log l)`` estimates, each simulated in chunks of bounded
    memory (not ``N x n``). If no ``k <= min(l, n)`` is safe, ``k = l`` is returned with ``safe=False`` (more
    labs than experiments change nothing).

    Failures and heterogeneous labs: "complete" means that every experiment has *ended* by
    ``h`` (completed or failed; the environment's ``cost`` is 0), and keep-``k``-busy runs on the
    ``k`` labs fastest in expectation, where the environment puts its starts; the estimate is
    then the engine's exact simulation (:func:`~labsched.envs.labs.monte_carlo.simulate_keep_busy`,
    with the labs' laws, speeds and failures), and the search starts from the fastest lab's mean.

    Args:
        spec: the problem.
        n_simulations: Monte-Carlo sample size per ``k`` (standard error at most
            ``0.5 / sqrt(N)``; about 0.0015 near p = 0.95 for the default 20,000).
        rng: generator the simulations' seed is drawn from (a fixed default seed when omitted,
            so the result is a deterministic function of the spec).

    Raises:
        TypeError: for an ``n_simulations`` that is not an integer or an ``rng`` that is not a
            ``numpy.random.Generator``.
        ValueError: for ``n_simulations < 1``.
    """
    n_simulations = check_int("n_simulations", n_simulations, 1)
    rng = np.random.default_rng(0) if rng is None else check_generator("rng", rng)
    entropy = int(rng.integers(1 << 63))
    n = spec.n_experiments
    k_top = min(spec.n_labs, n)
    curve: dict[int, float] = {}

    def safe(k: int) -> bool:
        if k not in curve:
            curve[k] = keep_busy_completion(spec, k, n_simulations, entropy)
        return curve[k] >= spec.p_safe

    def estimate(k: int, ok: bool) -> LabCountEstimate:
        p = curve[min(k, k_top)]
        se = math.sqrt(p * (1 - p) / n_simulations)
        return LabCountEstimate(k, p, se, n_simulations, ok, dict(sorted(curve.items())))

    # Any k below n E[D] / h cannot finish on average; starting just below it saves work.
    fastest = min(spec.lab_mean_durations) if spec.heterogeneous else float(spec.duration.mean)
    k0 = max(1, min(k_top, math.floor(n * fastest / spec.horizon)))
    if safe(k0):
        return estimate(k0, True)
    lo, step = k0, 1
    while True:  # gallop: lo is unsafe
        hi = min(lo + step, k_top)
        if safe(hi):
            break
        if hi == k_top:
            return estimate(spec.n_labs, False)
        lo, step = hi, 2 * step
    while hi - lo > 1:  # bisect: lo unsafe, hi safe
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if safe(mid) else (mid, hi)
    return estimate(hi, True)


def keep_busy_completion(spec: LabSpec, n_busy: int, n_simulations: int, seed: int) -> float:
    """Estimated probability that keeping ``n_busy`` labs busy completes all ``n`` by ``h``.

    Simulated per lab rather than per event: with i.i.d. durations, "start the next experiment
    in a lab as soon as it frees, while budget remains" is, in distribution, ``n_busy``
    independent renewal sequences (lab ``i``'s experiments back to back) of which the ``n``
    earliest starts are run. All ``n`` complete by ``h`` exactly when those ``n`` starts all
    precede the first start of an experiment that would end after ``h`` (ties at that instant,
    which only duration laws with atoms produce, go to the lowest-numbered labs, as in the
    environment). Each simulation draws about ``h / E[D]`` durations per lab (``O(n)`` in all),
    in chunks of at most :data:`~labsched.baselines.labs.il_tables.CHUNK_ELEMENTS` durations,
    each chunk from its own stream ``(seed, n_busy, chunk)``: the estimate for each ``n_busy``
    is reproducible on its own, whatever else is estimated.

    Args:
        spec: the problem.
        n_busy: labs kept busy (``>= 1``; more than ``n`` behave as ``n``).
        n_simulations: simulations.
        seed: root seed of the streams.
    """
    n = spec.n_experiments
    k = check_int("n_busy", n_busy, 1)
    k = min(k, n)
    if spec.heterogeneous or spec.has_failures:
        return _engine_completion(spec, min(k, spec.n_labs), n_simulations, seed)
    h_tol = spec.horizon + time_tolerance(spec.horizon)
    j0 = min(n - k + 1, math.ceil(spec.horizon / spec.duration.mean) + 2)
    step = max(1, CHUNK_ELEMENTS // (k * j0))
    done = 0
    for c, lo in enumerate(range(0, n_simulations, step)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, c)))
        rows = min(step, n_simulations - lo)
        done += int(_all_complete(spec.duration, n, k, h_tol, rng, rows, j0).sum())
    return done / n_simulations


def _engine_completion(spec: LabSpec, k: int, n_simulations: int, seed: int) -> float:
    """:func:`keep_busy_completion` by the engine's simulation (failures, heterogeneous labs):
    the fraction of executions whose ``n`` experiments all end by ``h``, in chunks of bounded
    memory, each from its own stream ``(seed, k, chunk)``."""
    n = spec.n_experiments
    step = max(1, CHUNK_ELEMENTS // (8 * n))
    done = 0
    for c, lo in enumerate(range(0, n_simulations, step)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, c)))
        out = simulate_keep_busy(spec, k, min(step, n_simulations - lo), rng)
        done += int(out.all_completed(n).sum())
    return done / n_simulations


def _all_complete(
    dist: DurationModel, n: int, k: int, h_tol: float, rng: np.random.Generator, n_rows: int, j: int
) -> np.ndarray:
    """``(n_rows,)``: keep-``k``-busy completed all ``n`` (see :func:`keep_busy_completion`).

    Each lab's first ``j`` experiments are drawn; a lab whose drawn experiments all complete is
    continued (its own sequence, so the estimate stays unbiased) until one does not or it has
    ``n - k + 1`` experiments (more of a lab's starts can never be among the ``n`` run).
    """
    cap = n - k + 1
    j = min(j, cap)
    ends = np.cumsum(np.asarray(dist.sample(rng, (n_rows, k, j)), dtype=float), axis=2)
    n_ok = (ends <= h_tol).sum(axis=2)  # completing experiments per lab (ends increase)
    row, lab = np.nonzero((n_ok == j) & (j < cap))
    long = ends[row, lab]  # (labs continued, j)
    while long.shape[0]:
        n_long = (long <= h_tol).sum(axis=1)
        go = (n_long == long.shape[1]) & (long.shape[1] < cap)
        if not go.any():
            break
        extra = min(long.shape[1], cap - long.shape[1])
        tail = np.cumsum(np.asarray(dist.sample(rng, (long.shape[0], extra)), dtype=float), axis=1)
        long = np.concatenate([long, long[:, -1:] + tail], axis=1)
    ends[row, lab] = np.inf  # counted from `long` below (their starts after 0)
    v_lab = _first_late_start(ends, n_ok, cap)
    if row.size:
        v_lab[row, lab] = _first_late_start(long[:, None, :], (long <= h_tol).sum(axis=1)[:, None], cap)[:, 0]
    v = v_lab.min(axis=1)
    later = ends[:, :, :-1]  # starts after time 0 (inf: counted from `long`)
    before = np.where(v > 0.0, k, 0) + (later < v[:, None, None]).sum(axis=(1, 2))
    at_v = (later == v[:, None, None]).any(axis=2) | (v == 0.0)[:, None]
    if row.size:
        np.add.at(before, row, (long[:, :-1] < v[row, None]).sum(axis=1))
        at_v[row, lab] |= (long[:, :-1] == v[row, None]).any(axis=1)
    ok = before >= n
    # Ties at v (duration laws with atoms): the lowest-numbered labs starting then take the
    # budget left; the run fails if one of them starts its non-completing experiment.
    tie = ~ok & (before + at_v.sum(axis=1) >= n)
    if tie.any():
        taken = at_v[tie] & (np.cumsum(at_v[tie], axis=1) <= (n - before[tie])[:, None])
        ok[tie] = ~(taken & (v_lab[tie] == v[tie, None])).any(axis=1)
    return ok


def _first_late_start(ends: np.ndarray, n_ok: np.ndarray, cap: int) -> np.ndarray:
    """Per lab, the start of its first experiment ending after ``h`` (the end of its last one
    ending by ``h``; 0 if none does; ``inf`` when all ``cap`` drawn experiments do)."""
    j = ends.shape[2]
    v = np.take_along_axis(ends, np.maximum(n_ok - 1, 0)[..., None], axis=2)[..., 0]
    return np.where(n_ok == 0, 0.0, np.where(n_ok >= j, np.inf if j >= cap else v, v))


class OnMEL(BaselinePolicy):
    """Online minimum-eager-lab policy: OnFCP restricted to the fewest p-safe labs ``k``.

    ``k`` comes from :func:`min_eager_labs` (computed once, at construction). When no
    ``k <= l`` reaches ``p_safe`` the policy uses all ``l`` labs (best effort) and
    ``self.estimate.safe`` is False.

    Args:
        spec: the problem.
        n_simulations: Monte-Carlo sample size per candidate ``k`` (an integer >= 1).
        seed: seed of the Monte-Carlo estimate.

    Raises:
        TypeError: for an ``n_simulations`` that is not an integer (``2.5``, ``"5"``).
        ValueError: for ``n_simulations < 1``.
    """

    name = "onmel"

    def __init__(self, spec: LabSpec, *, n_simulations: int = 20_000, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        n_simulations = check_int("n_simulations", n_simulations, 1)
        self.estimate = min_eager_labs(spec, n_simulations, np.random.default_rng(seed or 0))
        self.k = self.estimate.n_labs

    def act(self, state: LabState, memory: Any) -> int:
        return max(0, min(self.k - state.running, state.remaining))


class RandomPolicy(BaselinePolicy):
    """A uniformly random valid action at every decision point (a sanity floor)."""

    name = "random"

    def act(self, state: LabState, memory: Any) -> int:
        return int(self.rng.integers(0, state.max_valid + 1))
