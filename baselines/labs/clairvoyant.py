"""A clairvoyant reference: the best CPE of a schedule that knows every duration in advance.

.. warning::
   This is **not a scheduler one can run**: it reads the episode's durations, which no policy
   sees (like the queue env's ``upper_bound``). Use it only as a ceiling above every method.

The environment draws the ``n`` durations at reset in *start order* (the ``i``-th experiment
started has duration ``d_i``, whatever the policy; common random numbers). A schedule chooses,
at each decision point (multiples of ``epoch`` and, with ``decide_on_completion``, completion
instants), how many experiments to start. With the durations known the execution is
deterministic, so for each episode there is a best CPE over all schedules, ``V*(d)``. Every
policy - however it uses the observations - produces one of those schedules on that episode,
so its CPE is at most ``V*(d)``, episode by episode.

:func:`clairvoyant_cpe` returns either

* ``V*(d)`` **exactly** (``exact=True``): a memoised exhaustive search over the env's own
  decision semantics (the same decision points, the same completion processing, including
  starts that cannot finish, which a schedule may use to skip a long duration), when the
  number of distinct states stays within ``max_states`` (small problems); or
* a **proven upper bound** ``U(d) >= V*(d)`` (``exact=False``), for larger problems.
  For a schedule in which ``s`` experiments complete by ``h``, with run intervals
  ``I_i = [s_i, c_i]`` inside ``[0, h]`` (durations ``delta_i`` distinct members of ``d``):

  1. *Pairs.* An experiment's prior count is the number of experiments ended at or before its
     start, so CPE counts the ordered pairs of completers with ``c_j <= s_i``. Of the
     ``C(s, 2)`` pairs, the others overlap in time. With ``r(t)`` the completers running at
     ``t``, ``int r (r - 1) dt = sum_{i != j} |I_i & I_j| <= 2 D * (#overlapping pairs)``, with
     ``D`` the largest duration ``<= h``; and ``int r^2 >= (int r)^2 / h`` (Cauchy-Schwarz on
     ``[0, h]``) with ``int r = sum delta_i >= S_s`` (the sum of the ``s`` smallest durations).
     Hence ``CPE <= C(s, 2) - ceil((S_s^2 / h - S_s) / (2 D))``.
  2. *Chains.* The ``q``-th completion cannot happen before
     ``F(q) = max(d_(q), S_q / l, S_ceil(q / l))`` (the ``q`` first completers each ran inside
     ``[0, T_q]``: each is at least the ``q``-th smallest duration long overall, their total
     work fits on ``l`` labs, and some lab ran ``ceil(q / l)`` of them back to back). An
     experiment with prior ``q`` that completes needs ``F(q) + delta <= h``, and the ``k``-th
     completer has prior ``<= k - 1``. Matching the largest priors with the shortest
     durations (an exchange argument) gives ``CPE <= sum_i q_i`` with
     ``q_i = max{q <= s - i : F(q) <= h - d_(i)}``.

  ``U(d) = max_s min(bound 1, bound 2)`` (and at most ``n (n - 1) / 2``). Decision points are
  relaxed to continuous time, so the bound holds with or without ``decide_on_completion``.

The exact value with ``decide_on_completion=True`` also bounds an environment without
completion decisions (its decision points are a subset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.envs.labs.spec import LabSpec

__all__ = ["Clairvoyant", "ClairvoyantResult", "clairvoyant_bound", "clairvoyant_cpe", "decision_grid"]

_TIME_TOL = 1e-9


@dataclass(frozen=True)
class ClairvoyantResult:
    """The clairvoyant value of one episode.

    Attributes:
        value: ``V*(d)`` when ``exact``, else an upper bound of it.
        exact: whether ``value`` is the exact optimum.
        actions: with ``exact``, the optimal action at each successive decision point of the
            environment (replayable; empty otherwise).
        states: distinct states the search visited.
    """

    value: float
    exact: bool
    actions: tuple[int, ...] = ()
    states: int = 0


def decision_grid(spec: LabSpec) -> list[float]:
    """The environment's decision grid ``0, epoch, ...`` with ``h`` replacing the first point at or
    past it, plus a guard entry (as :class:`~labsched.envs.ConcurrentLabsEnv` builds it)."""
    h, grid, j = spec.horizon, [], 0
    while not grid or grid[-1] < h:
        tj = j * spec.epoch
        grid.append(h if tj > h - _TIME_TOL * h else tj)
        j += 1
    grid.append(h)
    return grid


def _durations(spec: LabSpec, durations: Any) -> np.ndarray:
    d = np.asarray(durations, dtype=float)
    if d.shape != (spec.n_experiments,) or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(
            f"durations must be {spec.n_experiments} finite durations > 0 (start order), got shape {d.shape}"
        )
    return d


class _Search:
    """Memoised exhaustive search of the env's decision process (durations known)."""

    def __init__(self, spec: LabSpec, d: np.ndarray, decide_on_completion: bool, max_states: int) -> None:
        self.n, self.l, self.h = spec.n_experiments, spec.n_labs, spec.horizon
        self.d = d.tolist()
        self.grid = decision_grid(spec)
        self.doc = decide_on_completion
        self.max_states = max_states
        self.memo: dict[tuple, tuple[int, int]] = {}

    def value(self, t: float, ng: int, i: int, done: int, ends: tuple[float, ...]) -> int:
        key = (t, ng, i, done, ends)
        hit = self.memo.get(key)
        if hit is not None:
            return hit[0]
        if len(self.memo) >= self.max_states:
            raise _Budget
        best, best_k = -1, 0
        for k in range(min(self.l - len(ends), self.n - i) + 1):
            gain, new = 0, list(ends)
            for j in range(i, i + k):
                e = t + self.d[j]
                new.append(e)
                if e <= self.h:
                    gain += done
            v = gain + self._after(ng, i + k, done, new)
            if v > best:
                best, best_k = v, k
        self.memo[key] = (best, best_k)
        return best

    def _step(self, ng: int, done: int, ends: list[float]) -> tuple[float, int, int, tuple[float, ...]]:
        t_grid = self.grid[ng]
        t_end = min(ends) if ends else math.inf
        if t_end < t_grid and self.doc:
            t_next = t_end
        else:
            t_next, ng = t_grid, ng + 1
        left = tuple(sorted(e for e in ends if e > t_next))
        return t_next, ng, done + len(ends) - len(left), left

    def _after(self, ng: int, i: int, done: int, ends: list[float]) -> int:
        t_next, ng, done, left = self._step(ng, done, ends)
        if done == self.n or t_next >= self.h:
            return 0
        return self.value(t_next, ng, i, done, left)

    def actions(self) -> tuple[int, ...]:
        """Replay the optimal actions from the initial state."""
        out, t, ng, i, done, ends = [], 0.0, 1, 0, 0, ()
        while True:
            k = self.memo[(t, ng, i, done, ends)][1]
            out.append(k)
            new = list(ends) + [t + self.d[j] for j in range(i, i + k)]
            i += k
            t, ng, done, ends = self._step(ng, done, new)
            if done == self.n or t >= self.h:
                return tuple(out)


class _Budget(Exception):
    pass


def require_equal_labs(spec: LabSpec) -> None:
    """Raise ``ValueError`` unless ``spec`` has equal labs and no failures (the clairvoyant's domain)."""
    if spec.has_failures or spec.heterogeneous:
        raise ValueError(
            "the clairvoyant reference is defined for equal labs without failures only "
            "(spec.failure_prob, spec.lab_durations and spec.lab_speeds must be the defaults)"
        )


def clairvoyant_bound(spec: LabSpec, durations: Any) -> float:
    """The proven upper bound ``U(d)`` of the module docstring (no search)."""
    require_equal_labs(spec)
    d = _durations(spec, durations)
    n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
    ds = np.sort(d)
    csum = np.concatenate([[0.0], np.cumsum(ds)])
    fits = ds[ds <= h]
    if fits.size == 0:
        return 0.0
    big = float(fits.max())
    reach = np.zeros(n + 1)  # F(q), earliest possible q-th completion
    for q in range(1, n + 1):
        reach[q] = max(ds[q - 1], csum[q] / nl, csum[math.ceil(q / nl)])
    best = 0
    for s in range(1, int(fits.size) + 1):
        if csum[s] > nl * h + 1e-12:
            break
        area = csum[s]
        overlaps = max(0.0, (area * area / h - area) / (2.0 * big))
        pairs = s * (s - 1) // 2 - math.ceil(overlaps - 1e-9)
        chains = 0
        for i in range(1, s + 1):
            room = h - ds[i - 1]
            q = s - i
            while q > 0 and reach[q] > room + 1e-12:
                q -= 1
            chains += q
        best = max(best, min(pairs, chains))
    return float(min(best, spec.max_cpe))


def clairvoyant_cpe(
    spec: LabSpec,
    durations: Any,
    *,
    decide_on_completion: bool = True,
    max_states: int = 200_000,
) -> ClairvoyantResult:
    """Best CPE of a schedule that knows the episode's durations (exact, or a proven bound).

    Args:
        spec: the problem.
        durations: the ``n`` durations in start order (``ConcurrentLabsEnv._durations`` or the
            ``options["durations"]`` given to ``reset``).
        decide_on_completion: the environment's decision points (the default True also bounds
            an environment without completion decisions).
        max_states: search budget; past it, the proven bound :func:`clairvoyant_bound` is returned.

    Returns:
        A :class:`ClairvoyantResult` (``exact`` says which of the two ``value`` is).
    """
    if not isinstance(spec, LabSpec):
        raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
    require_equal_labs(spec)
    d = _durations(spec, durations)
    if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
        raise ValueError(f"max_states must be an integer >= 1, got {max_states!r}")
    search = _Search(spec, d, bool(decide_on_completion), max_states)
    try:
        value = search.value(0.0, 1, 0, 0, ())
    except (_Budget, RecursionError):
        # RecursionError: the search recurses once per decision point (about h / epoch + n
        # deep), past Python's recursion limit on fine grids (epoch <= 0.01 at h = 5): too large
        # for the exact search, like a state budget exceeded.
        return ClairvoyantResult(clairvoyant_bound(spec, d), False, (), len(search.memo))
    return ClairvoyantResult(float(value), True, search.actions(), len(search.memo))


class Clairvoyant(BaselinePolicy):
    """Clairvoyant reference (reads the durations no policy sees; NOT a runnable scheduler).

    Each episode it replays the exact optimal schedule of :func:`clairvoyant_cpe`, so it needs
    the episode's durations: give ``env=`` (its ``_durations`` are read at the start of every
    episode) or call :meth:`set_durations` before each episode. For problems too large for the
    exact search (more than ``max_states`` states, or a decision grid too fine for the recursive
    search, e.g. ``epoch <= 0.01`` at ``h = 5``) it raises ``RuntimeError``: use
    :func:`clairvoyant_cpe`, whose value is then a proven bound.

    Args:
        spec: the problem.
        env: the environment the policy acts in (optional).
        decide_on_completion: must match the environment.
        max_states: search budget per episode.
        seed: unused.
    """

    name = "clairvoyant"
    #: Reads what no policy can see (like the queue env's ``upper_bound``).
    clairvoyant: ClassVar[bool] = True

    def __init__(
        self,
        spec: LabSpec,
        *,
        env: Any = None,
        decide_on_completion: bool = True,
        max_states: int = 200_000,
        seed: int | None = None,
    ) -> None:
        require_equal_labs(spec)
        super().__init__(spec, seed=seed)
        self.env = env
        self.decide_on_completion = bool(decide_on_completion)
        self.max_states = max_states
        self.result: ClairvoyantResult | None = None

    def set_durations(self, durations: Any) -> ClairvoyantResult:
        """Plan the next episode from its durations (start order)."""
        res = clairvoyant_cpe(
            self.spec, durations, decide_on_completion=self.decide_on_completion, max_states=self.max_states
        )
        if not res.exact:
            raise RuntimeError(
                f"the exact clairvoyant search exceeded max_states={self.max_states} (or Python's "
                f"recursion limit: {len(decision_grid(self.spec))} decision points) for this spec; "
                "only the proven bound clairvoyant_cpe(...).value is available"
            )
        self.result = res
        return res

    def begin_episode(self, state: LabState) -> Any:
        if self.env is not None:
            self.set_durations(np.asarray(self.env.unwrapped._durations, dtype=float))
        if self.result is None:
            raise RuntimeError(
                "Clairvoyant needs the episode's durations: pass env=... or call set_durations(d)"
            )
        return {"step": 0, "actions": self.result.actions}

    def act(self, state: LabState, memory: Any) -> int:
        step = memory["step"]
        memory["step"] = step + 1
        actions = memory["actions"]
        return int(actions[step]) if step < len(actions) else 0
