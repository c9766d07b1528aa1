"""Baselines whose safety knob is calibrated to the paper's constraint P(all n complete by h) >= p.

Policy switching's ``p`` (``spec.p_safe``) is a per-plan stage-safety threshold, not the overall
completion probability: PS(0.95) finishes all ``n`` experiments in 99.5-100% of episodes of the
paper's setting and so gives away CPE. :class:`CalibratedPolicySwitching` (``"ps-calibrated"``)
runs PS with an internal threshold ``q`` chosen so that mean CPE is as large as possible while the
estimated completion rate stays at or above ``spec.p_safe``; :class:`CalibratedKeepBusy`
(``"keep-busy-calibrated"``) does the same for "keep ``k`` labs busy" over ``k``.

**Seeds.** Calibration episodes use the environment seeds ``CALIBRATION_SEED + j``
(``CALIBRATION_SEED = 10**9``), ``j = 0, 1, ...``; evaluations must use seeds below ``10**9``
(every evaluation in labsched does), so the episodes that choose ``q`` are never the ones that
judge it. All candidates share the same seeds (common random numbers), so CPE differences between
candidates are paired.

**The rule (PS).** Completion is about monotone in ``q`` and CPE has a plateau for small ``q``
(at ``h = 5``, ``q`` from 0.3 to 0.7 score the same). So:

1. *Screen*: the grid is scanned from the safest ``q`` down, ``screen_episodes`` episodes each.
   The scan stops at a ``q`` whose completion is clearly below ``p`` (one-sided upper confidence
   bound at level ``1 - alpha`` below ``p``) or after two consecutive ``q`` without a CPE gain
   over the best so far of more than two paired standard errors (the plateau: smaller ``q`` only
   add risk).
2. *Order*: among the screened candidates whose completion estimate is at least ``p``, those
   whose CPE is within two paired standard errors of the best are statistical ties; the ties are
   tried safest (largest ``q``) first, then the others by CPE.
3. *Confirm*: a candidate gets ``confirm_episodes`` more episodes and is accepted when the
   one-sided Wilson lower confidence bound (level ``1 - alpha``) of its pooled completion rate is
   at least ``p``. Demanding the lower bound, not the estimate, is what keeps the choice p-safe
   on fresh seeds despite the noise of a few hundred episodes. If no candidate passes, the
   safest grid value is used and ``calibration.feasible`` is False.

The chosen ``q``, its completion rate and CPE (each with a standard error over all its
calibration episodes) are attributes, printed once per process on stderr. The calibration is
cached in-process per (spec, options) and on disk as a small JSON file (data only) in
``$LABSCHED_CACHE_DIR`` (default ``~/.cache/labsched``), keyed by a hash of the spec, the options
and the library version; ``cache=False`` recomputes.

**Keep-k-busy** is simulated exactly by :func:`~labsched.envs.labs.monte_carlo.simulate_keep_busy`
(it refills at completions, as the environment's default ``decide_on_completion=True`` lets a
policy do), so all ``k`` are estimated on ``n_simulations`` common draws and the feasible ``k``
(Wilson one-sided lower bound >= ``p``) with the largest mean CPE is kept. This is OnMEL with a
lower confidence bound instead of a point estimate and "largest CPE" instead of "fewest labs"
(the same ``k`` whenever CPE falls with ``k``), so no separate calibrated OnMEL is registered.
With failures, "complete" means every experiment ended by ``h`` (completed or failed, the
environment's ``cost`` 0); with heterogeneous labs keep-``k``-busy runs on the ``k`` labs fastest
in expectation (the simulation follows the environment's laws, speeds and failures).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.calibration import MEMO, Calibration, CalibrationPoint, cached_calibration
from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.stats import wilson_ci
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "CALIBRATION_SEED",
    "CalibratedKeepBusy",
    "CalibratedPolicySwitching",
    "Calibration",
    "CalibrationPoint",
    "calibrate_keep_busy",
    "calibrate_policy_switching",
]

#: First environment seed of the calibration episodes (evaluation seeds must stay below it).
CALIBRATION_SEED = 10**9
DEFAULT_GRID = (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
#: The per-process memo of :func:`~labsched.baselines.labs.calibration.cached_calibration`.
_MEMO = MEMO


# ---------------------------------------------------------------------------- validation
def _check_grid(grid: Any) -> tuple[float, ...]:
    try:
        values = tuple(float(q) for q in grid)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"grid must be a sequence of thresholds in (0, 1), got {grid!r}") from exc
    if not values:
        raise ValueError("grid must hold at least one threshold in (0, 1)")
    bad = [q for q in values if not (math.isfinite(q) and 0.0 < q < 1.0)]
    if bad:
        raise ValueError(f"grid thresholds must satisfy 0 < q < 1, got {bad}")
    return tuple(sorted(set(values), reverse=True))


def _check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 0.5:
        raise ValueError(f"alpha must satisfy 0 < alpha < 0.5, got {alpha!r}")
    return float(alpha)


# ---------------------------------------------------------------------------- estimates
def _point(knob: float, cpe: np.ndarray, complete: np.ndarray, alpha: float) -> CalibrationPoint:
    n = int(complete.size)
    k = int(complete.sum())
    prop = wilson_ci(k, n, 1.0 - 2.0 * alpha)  # its lower end is the one-sided 1 - alpha bound
    se = float(cpe.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return CalibrationPoint(float(knob), n, prop.rate, prop.std_error, prop.low, float(cpe.mean()), se)


def _upper(point: CalibrationPoint, alpha: float) -> float:
    k = round(point.completion * point.episodes)
    return wilson_ci(k, point.episodes, 1.0 - 2.0 * alpha).high


def _paired_gain(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0


def _run_ps(spec: LabSpec, q: float, seeds: range, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """CPE and completion indicator of PS with internal threshold ``q`` on ``seeds``."""
    ps = PolicySwitching(
        spec.replace(p_safe=q),
        n_simulations=options["n_simulations"],
        seed=options["ps_seed"],
        completion_decisions=options["completion_decisions"],
    )
    env = ConcurrentLabsEnv(spec, decide_on_completion=options["completion_decisions"])
    cpe, done = np.empty(len(seeds)), np.empty(len(seeds), dtype=bool)
    for j, s in enumerate(seeds):
        ep = play_episode(ps, env, seed=s)
        cpe[j] = ep.total_reward
        # Every experiment ended by h (with failures, completed or failed: cost 0).
        done[j] = ep.info["completed"] + ep.info.get("failed", 0) >= spec.n_experiments
    return cpe, done


# ---------------------------------------------------------------------------- PS
def calibrate_policy_switching(
    spec: LabSpec,
    *,
    grid: Any = DEFAULT_GRID,
    screen_episodes: int = 60,
    confirm_episodes: int = 240,
    alpha: float = 0.05,
    n_simulations: int = 200,
    completion_decisions: bool = True,
    ps_seed: int = 0,
    cache: bool = True,
) -> Calibration:
    """Choose PS's internal threshold ``q`` (see the module docstring for the rule).

    Args:
        spec: the problem; ``spec.p_safe`` is the demanded overall completion probability.
        grid: candidate thresholds, each in (0, 1).
        screen_episodes: episodes per screened candidate.
        confirm_episodes: extra episodes of a candidate being confirmed.
        alpha: one-sided level of the completion lower bound, in (0, 0.5).
        n_simulations: PS's Monte-Carlo simulations per decision (as deployed).
        completion_decisions: the environment's ``decide_on_completion``.
        ps_seed: seed of PS's own simulations during calibration.
        cache: use the in-process and on-disk caches.

    Returns:
        A :class:`Calibration` whose ``knob`` is ``q``.
    """
    if not isinstance(spec, LabSpec):
        raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
    opts = {
        "grid": _check_grid(grid),
        "screen_episodes": _check_count("screen_episodes", screen_episodes, 2),
        "confirm_episodes": _check_count("confirm_episodes", confirm_episodes, 0),
        "alpha": _check_alpha(alpha),
        "n_simulations": _check_count("n_simulations", n_simulations, 1),
        "completion_decisions": bool(completion_decisions),
        "ps_seed": _check_count("ps_seed", ps_seed, 0),
    }
    if spec.has_failures or spec.heterogeneous:
        # Completion counts failed experiments as ended, and PS simulates the labs' own draws
        # (labsched.baselines.labs.ps_lab_draws): a cache key apart from earlier calibrations.
        opts["lab_rules"] = "per-lab draws, ended"
    return cached_calibration("ps-calibrated", spec, opts, cache, _calibrate_ps)


def _calibrate_ps(spec: LabSpec, opts: dict[str, Any]) -> Calibration:
    p, alpha, n1, n2 = spec.p_safe, opts["alpha"], opts["screen_episodes"], opts["confirm_episodes"]
    screen_seeds = range(CALIBRATION_SEED, CALIBRATION_SEED + n1)
    runs: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    points: list[CalibrationPoint] = []
    best_q, stale = None, 0
    for q in opts["grid"]:
        runs[q] = _run_ps(spec, q, screen_seeds, opts)
        pt = _point(q, *runs[q], alpha)
        points.append(pt)
        if _upper(pt, alpha) < p:
            break  # clearly unsafe; smaller thresholds are riskier still
        if pt.completion < p:
            continue
        if best_q is None:
            best_q = q
            continue
        gain, se = _paired_gain(runs[q][0], runs[best_q][0])
        if gain > 2.0 * se and gain > 0:
            best_q, stale = q, 0
        else:
            stale += 1
            if runs[q][0].mean() > runs[best_q][0].mean():
                best_q = q
            if stale >= 2:
                break
    order = _candidate_order(points, runs, p)
    used = n1 * len(runs)
    for q in order:
        extra = range(CALIBRATION_SEED + n1, CALIBRATION_SEED + n1 + n2)
        cpe, done = runs[q]
        if n2:
            c2, d2 = _run_ps(spec, q, extra, opts)
            cpe, done = np.concatenate([cpe, c2]), np.concatenate([done, d2])
            used += n2
        pt = _point(q, cpe, done, alpha)
        points.append(pt)
        if pt.completion_low >= p:
            return Calibration(pt, True, p, alpha, tuple(points), used, 0.0)
    safest = max(runs)
    pt = next(x for x in reversed(points) if x.knob == safest)
    return Calibration(pt, False, p, alpha, tuple(points), used, 0.0)


def _candidate_order(
    points: list[CalibrationPoint], runs: dict[float, tuple[np.ndarray, np.ndarray]], p: float
) -> list[float]:
    """Screened candidates with completion >= p: CPE ties (2 paired SE) safest first, then by CPE."""
    ok = [pt for pt in points if pt.completion >= p]
    if not ok:
        return []
    best = max(ok, key=lambda pt: pt.cpe)
    ties, rest = [], []
    for pt in ok:
        gap, se = _paired_gain(runs[best.knob][0], runs[pt.knob][0])
        (ties if gap <= 2.0 * se else rest).append(pt)
    ties.sort(key=lambda pt: -pt.knob)
    rest.sort(key=lambda pt: -pt.cpe)
    return [pt.knob for pt in ties + rest]


# ---------------------------------------------------------------------------- keep-k-busy
def calibrate_keep_busy(
    spec: LabSpec, *, n_simulations: int = 20_000, alpha: float = 0.05, cache: bool = True
) -> Calibration:
    """Choose ``k`` of keep-``k``-busy: the largest mean CPE whose completion lower bound is >= p.

    Every ``k = 1..l`` is simulated exactly (batched) on the same ``n_simulations`` duration draws
    (a generator seeded with ``CALIBRATION_SEED``, a stream unrelated to environment seeds).
    """
    if not isinstance(spec, LabSpec):
        raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
    opts = {
        "n_simulations": _check_count("n_simulations", n_simulations, 2),
        "alpha": _check_alpha(alpha),
    }
    return cached_calibration("keep-busy-calibrated", spec, opts, cache, _calibrate_keep_busy)


def _calibrate_keep_busy(spec: LabSpec, opts: dict[str, Any]) -> Calibration:
    n_sim, alpha = opts["n_simulations"], opts["alpha"]
    rng = np.random.default_rng(CALIBRATION_SEED)
    shared = spec.lab_durations is None  # one law: every k replays the same durations
    durations = None
    if shared:
        durations = np.asarray(spec.duration.sample(rng, (n_sim, spec.n_experiments)), dtype=float)
    points = []
    for k in range(1, spec.n_labs + 1):
        # Labs with different laws draw quantiles: every k from the same stream (the same
        # quantiles, common random numbers), as the simulation draws them itself.
        rng_k = rng if shared else np.random.default_rng(CALIBRATION_SEED)
        out = simulate_keep_busy(spec, k, n_sim, rng_k, durations=durations)
        points.append(
            _point(k, np.asarray(out.cpe, dtype=float), out.all_completed(spec.n_experiments), alpha)
        )
    feasible = [pt for pt in points if pt.completion_low >= spec.p_safe]
    if feasible:
        return Calibration(
            max(feasible, key=lambda pt: pt.cpe), True, spec.p_safe, alpha, tuple(points), n_sim, 0.0
        )
    return Calibration(points[-1], False, spec.p_safe, alpha, tuple(points), n_sim, 0.0)


# ---------------------------------------------------------------------------- policies
class CalibratedPolicySwitching(PolicySwitching):
    """Policy switching with its internal threshold calibrated to P(all n complete by h) >= p.

    Built with ``spec.replace(p_safe=q)`` for the chosen ``q`` (see the module docstring);
    ``constraint_spec`` keeps the spec given. Attributes: ``threshold`` (``q``),
    ``completion`` / ``completion_se`` and ``cpe`` / ``cpe_se`` (calibration estimates) and
    ``calibration`` (the full :class:`Calibration`).

    Args:
        spec: the problem; ``spec.p_safe`` is the overall completion target.
        n_simulations: PS's simulations per decision (calibration uses the same).
        seed: seed of PS's simulations when deployed.
        completion_decisions: the environment's ``decide_on_completion``.
        keep_history: as for :class:`PolicySwitching`.
        **calibration: options of :func:`calibrate_policy_switching` (``grid``,
            ``screen_episodes``, ``confirm_episodes``, ``alpha``, ``cache``).
    """

    name = "ps-calibrated"

    def __init__(
        self,
        spec: LabSpec,
        *,
        n_simulations: int = 200,
        seed: int | None = None,
        completion_decisions: bool = True,
        keep_history: bool = False,
        **calibration: Any,
    ) -> None:
        cal = calibrate_policy_switching(
            spec, n_simulations=n_simulations, completion_decisions=completion_decisions, **calibration
        )
        super().__init__(
            spec.replace(p_safe=cal.knob),
            n_simulations=n_simulations,
            seed=seed,
            completion_decisions=completion_decisions,
            keep_history=keep_history,
        )
        self.constraint_spec = spec
        self.calibration = cal
        self.threshold = cal.knob
        self.completion, self.completion_se = cal.chosen.completion, cal.chosen.completion_se
        self.cpe, self.cpe_se = cal.chosen.cpe, cal.chosen.cpe_se


class CalibratedKeepBusy(BaselinePolicy):
    """Keep ``k`` labs busy, ``k`` chosen for the largest CPE with completion >= p (lower bound).

    Attributes: ``k``, ``completion`` / ``completion_se``, ``cpe`` / ``cpe_se`` and
    ``calibration``. Refills at completions, so it matches its calibration in an environment with
    ``decide_on_completion=True`` (the default).

    Args:
        spec: the problem.
        n_simulations: simulations per ``k``.
        alpha: one-sided level of the completion lower bound.
        cache: use the calibration caches.
        seed: unused (deterministic policy); accepted for a uniform interface.
    """

    name = "keep-busy-calibrated"

    def __init__(
        self,
        spec: LabSpec,
        *,
        n_simulations: int = 20_000,
        alpha: float = 0.05,
        cache: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(spec, seed=seed)
        cal = calibrate_keep_busy(spec, n_simulations=n_simulations, alpha=alpha, cache=cache)
        self.calibration = cal
        self.k = int(cal.knob)
        self.completion, self.completion_se = cal.chosen.completion, cal.chosen.completion_se
        self.cpe, self.cpe_se = cal.chosen.cpe, cal.chosen.cpe_se

    def act(self, state: LabState, memory: Any) -> int:
        return max(0, min(self.k - state.running, state.max_valid))
