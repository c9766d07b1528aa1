"""Staged plans and MaxProbUniform (Azimi, Fern & Fern, section 4.1, Proposition 1 and Equation 1).

A plan is a sequence of stages ``(n_i, d_i)``; :func:`staged_cpe` is the CPE of a safe execution,
:func:`uniform_sizes` the CPE-maximising sizes for ``N`` stages, and :func:`max_prob_uniform` the
durations of the uniform ``N``-stage schedule most likely to execute safely. See
:mod:`labsched.baselines.labs.staged` for the whole method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = ["StagedPlan", "max_prob_uniform", "staged_cpe", "uniform_sizes"]

#: Grid resolution of the numeric search used for non-log-concave duration laws.
_SEARCH_GRID = 4001
#: Number of best grid local maxima refined by a bounded local search (non-log-concave case).
_SEARCH_REFINE = 5
#: Brent's absolute tolerance on ``d'``.
_XATOL = 1e-10


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------


def staged_cpe(sizes: tuple[int, ...] | list[int]) -> int:
    """CPE of a safe execution of stages with the given sizes.

    Args:
        sizes: stage sizes ``n_1, ..., n_N`` in execution order.

    Returns:
        ``sum_{i >= 2} n_i * sum_{j < i} n_j`` (order-invariant).
    """
    total, before = 0, 0
    for size in sizes:
        total += int(size) * before
        before += int(size)
    return total


def uniform_sizes(n: int, n_stages: int) -> tuple[int, ...]:
    """Stage sizes of the uniform ``n_stages``-stage schedule of ``n`` experiments.

    ``N' = n mod N`` stages of ``n' = floor(n / N) + 1`` experiments come first, followed by
    ``N - N'`` stages of ``n' - 1``. When ``N`` divides ``n`` every stage has ``n / N``.

    Args:
        n: number of experiments (>= 1).
        n_stages: number of stages ``N`` with ``1 <= N <= n``.

    Returns:
        The ``N`` stage sizes, largest first.

    Raises:
        ValueError: if ``N`` is outside ``[1, n]`` (a stage cannot be empty).
    """
    if not 1 <= n_stages <= n:
        raise ValueError(f"the number of stages must be in [1, n={n}], got {n_stages}")
    n_big, base = n % n_stages, n // n_stages
    return (base + 1,) * n_big + (base,) * (n_stages - n_big)


@dataclass(frozen=True)
class StagedPlan:
    """A staged schedule ``<(n_i, d_i)>`` with what is needed to judge its safety.

    Attributes:
        stages: ``(n_i, d_i)`` pairs in execution order: stage ``i`` starts ``n_i``
            experiments and lasts ``d_i`` time units.
        duration: the duration law used to evaluate ``P_d(d_i)``.
        p_target: the demanded safety probability ``p``.
        horizon: the horizon ``h``; the durations sum to at most ``h``.
        notes: free-text remarks (best-effort plans, numeric fallbacks, grid snapping).
    """

    stages: tuple[tuple[int, float], ...]
    duration: DurationModel
    p_target: float
    horizon: float
    notes: str = ""

    def __post_init__(self) -> None:
        stages = tuple((int(n), float(d)) for n, d in self.stages)
        if not stages:
            raise ValueError("a staged plan needs at least one stage")
        for n_i, d_i in stages:
            if n_i < 1:
                raise ValueError(f"stage sizes must be >= 1, got {n_i}")
            if not (math.isfinite(d_i) and d_i >= 0.0):
                raise ValueError(f"stage durations must be finite and >= 0, got {d_i}")
        total = math.fsum(d for _, d in stages)
        if total > self.horizon * (1.0 + 1e-9):
            raise ValueError(f"stage durations sum to {total}, beyond the horizon {self.horizon}")
        object.__setattr__(self, "stages", stages)

    @classmethod
    def for_spec(cls, spec: LabSpec, stages: Any, notes: str = "") -> StagedPlan:
        """Build a plan for ``spec`` (its duration law, ``p_safe`` and horizon).

        Args:
            spec: the problem.
            stages: iterable of ``(n_i, d_i)`` pairs.
            notes: remarks stored with the plan.

        Returns:
            The plan.
        """
        return cls(tuple(stages), spec.duration, spec.p_safe, spec.horizon, notes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Stage sizes ``n_i``."""
        return tuple(n for n, _ in self.stages)

    @property
    def durations(self) -> tuple[float, ...]:
        """Stage durations ``d_i``."""
        return tuple(d for _, d in self.stages)

    @property
    def n_stages(self) -> int:
        """Number of stages ``N``."""
        return len(self.stages)

    @property
    def n_experiments(self) -> int:
        """Experiments the plan starts, ``sum_i n_i``."""
        return sum(self.sizes)

    @property
    def start_times(self) -> tuple[float, ...]:
        """Planned start time of each stage (cumulative durations, the first is 0)."""
        out, t = [], 0.0
        for d in self.durations:
            out.append(t)
            t += d
        return tuple(out)

    @property
    def cpe(self) -> int:
        """CPE(S): the CPE of any safe execution."""
        return staged_cpe(self.sizes)

    @property
    def log_p_safe_probability(self) -> float:
        """``sum_i n_i log P_d(d_i)`` (``-inf`` when some stage cannot be safe)."""
        logs = np.asarray(self.duration.logcdf(np.asarray(self.durations, dtype=float)), dtype=float)
        if not np.all(logs > -np.inf):
            return -math.inf
        return float(np.dot(np.asarray(self.sizes, dtype=float), logs))

    @property
    def p_safe_probability(self) -> float:
        """Probability that an execution is safe, ``prod_i P_d(d_i)^{n_i}``."""
        return math.exp(self.log_p_safe_probability)

    @property
    def safe(self) -> bool:
        """Whether the plan is p-safe (``p_safe_probability >= p_target``)."""
        return self.p_safe_probability >= self.p_target

    @property
    def is_uniform(self) -> bool:
        """Whether stage sizes differ by at most one."""
        return max(self.sizes) - min(self.sizes) <= 1

    def describe(self) -> str:
        """A one-line human-readable summary."""
        stages = ", ".join(f"({n}, {d:.4f})" for n, d in self.stages)
        text = (
            f"N={self.n_stages} stages [{stages}] starts={[round(s, 4) for s in self.start_times]} "
            f"P(safe)={self.p_safe_probability:.4f} (p={self.p_target}) safe={self.safe} CPE(S)={self.cpe}"
        )
        return text + (f" notes: {self.notes}" if self.notes else "")


# --------------------------------------------------------------------------------------------
# MaxProbUniform
# --------------------------------------------------------------------------------------------


def _positive_cdf_from(model: DurationModel) -> float:
    """The lower end of the region where the CDF is positive (the support's lower end)."""
    return max(float(model.support[0]), 0.0)


def _bounded_argmax(fun: Any, lo: float, hi: float) -> float:
    """Maximise ``fun`` on ``[lo, hi]`` with bounded Brent (``-inf`` mapped to a huge penalty)."""

    def neg(x: float) -> float:
        v = fun(x)
        return -v if math.isfinite(v) else 1e100

    if hi - lo <= _XATOL:
        return 0.5 * (lo + hi)
    res = minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": _XATOL, "maxiter": 500})
    return float(res.x)


def _grid_search_argmax(fun: Any, lo: float, hi: float) -> float:
    """Dense grid over ``[lo, hi]`` then bounded refinement around the best local maxima."""
    xs = np.linspace(lo, hi, _SEARCH_GRID)
    vals = np.array([fun(float(x)) for x in xs])
    left = np.concatenate([[-np.inf], vals[:-1]])
    right = np.concatenate([vals[1:], [-np.inf]])
    peaks = np.flatnonzero((vals >= left) & (vals >= right) & np.isfinite(vals))
    best_x = float(xs[int(np.argmax(vals))])
    best_v = float(np.max(vals))
    for k in peaks[np.argsort(vals[peaks])[::-1][:_SEARCH_REFINE]]:
        a, b = float(xs[max(k - 1, 0)]), float(xs[min(k + 1, xs.size - 1)])
        x = _bounded_argmax(fun, a, b)
        v = fun(x)
        if v > best_v:
            best_x, best_v = x, v
    return best_x


# size: 85 lines, 40 of them the docstring stating Equation 1 and both search regimes.
def max_prob_uniform(spec: LabSpec, n_stages: int) -> StagedPlan:
    """The uniform ``N``-stage schedule with the highest probability of a safe execution.

    The sizes are :func:`uniform_sizes` (``N' = n mod N`` stages of ``n' = floor(n / N) + 1``
    first, then ``N - N'`` stages of ``n' - 1``). Stages of equal size get equal durations,
    ``d'`` and ``d'' = (h - N' d') / (N - N')``, and ``d'`` maximises (Equation 1)

        P_d(d')^{N' n'} * P_d(d'')^{(N - N')(n' - 1)}.

    When ``N`` divides ``n`` (``N' = 0``) all stages are equal and last ``h / N``.

    * Log-concave CDF (``spec.duration.log_concave``): the log of Equation 1 is a sum of
      concave functions of ``d'`` (the second composed with an affine map), hence concave;
      it is maximised by bounded Brent (``scipy.optimize.minimize_scalar``, ``xatol=1e-10``)
      on the interval where both CDF values are positive. By Lemma 1, equal durations within
      each size group lose nothing, so the result is the best uniform ``N``-stage schedule.
    * Otherwise (e.g. ``Mixture``, ``Discrete``) Lemma 1 does not hold and the log of
      Equation 1 may have several local maxima: a dense grid of 4001 values of ``d'`` is
      evaluated and the five best grid local maxima are refined by bounded Brent within their
      neighbouring grid cells. Keeping durations equal within each size group is then a
      restriction of the search, not a property of the optimum, and this is said in
      ``notes``.

    The equal split ``d' = h / N`` is always a candidate and wins ties. If no split gives a
    positive probability (e.g. a support starting beyond ``h / N``), the equal split is
    returned with probability 0.

    Args:
        spec: the problem (``n``, ``l``, ``h``, the duration law and ``p``).
        n_stages: ``N``, with ``ceil(n / l) <= N <= n``.

    Returns:
        The plan (its ``safe`` says whether it is p-safe).

    Raises:
        ValueError: if ``N`` is not in ``[ceil(n / l), n]`` (a stage would be empty or larger
            than the number of labs).
    """
    n, n_labs, h = spec.n_experiments, spec.n_labs, spec.horizon
    sizes = uniform_sizes(n, n_stages)
    if sizes[0] > n_labs:
        raise ValueError(
            f"a uniform {n_stages}-stage schedule of n={n} needs stages of {sizes[0]} > l={n_labs} "
            f"experiments; use at least ceil(n / l) = {math.ceil(n / n_labs)} stages"
        )
    model = spec.duration
    n_big, big = n % n_stages, n // n_stages + 1
    notes: list[str] = []
    if not model.log_concave:
        notes.append(
            "duration CDF is not log-concave: Lemma 1 does not apply; d' found by a dense grid "
            "search with local refinement, and equal durations within size groups is a "
            "restriction, not an optimality guarantee"
        )
    if n_big == 0:
        d = h / n_stages
        return StagedPlan.for_spec(spec, [(sizes[0], d)] * n_stages, "; ".join(notes))

    n_small_stages = n_stages - n_big
    exp_big = float(n_big * big)
    exp_small = float(n_small_stages * (big - 1))

    def d_small(x: float) -> float:
        return (h - n_big * x) / n_small_stages

    def log_eq1(x: float) -> float:
        lp = model.logcdf(np.array([x, d_small(x)], dtype=float))
        if not np.all(lp > -np.inf):
            return -math.inf
        return float(exp_big * lp[0] + exp_small * lp[1])

    s0 = _positive_cdf_from(model)
    lo = max(s0, 0.0)
    hi = min((h - n_small_stages * s0) / n_big, h / n_big)
    equal = h / n_stages
    if lo > hi:
        notes.append("no split of the horizon gives a positive probability; equal durations used")
        d_big = equal
    else:
        search = _bounded_argmax if model.log_concave else _grid_search_argmax
        x_opt = search(log_eq1, lo, hi)
        candidates = [c for c in (equal, x_opt, lo, hi) if lo <= c <= hi]
        d_big = max(candidates, key=log_eq1)  # first maximum: the equal split wins ties
    stages = [(big, d_big)] * n_big + [(big - 1, d_small(d_big))] * n_small_stages
    return StagedPlan.for_spec(spec, stages, "; ".join(notes))
