"""What a campaign records to explain each decision, and the posterior summaries it reports.

Nothing here draws from the selector's stream: the candidate scores of a decision come from
their own generator, derived from ``(seed, decision index)``, so explaining a decision never
changes the next one.

Candidate values. When the selector keeps an audit of its picks (``selector.last_scores``, a
:class:`~labsched.envs.bo.scores.SelectionScores`), the record stores it and reports its values
(information gain for mes/ivr); when the selector has a ``score(gp, X_pending, X) -> (m,)``
method its values are used for the candidate set. Otherwise the report uses a stand-in stated in
the record:
for ``goal="optimize"`` the expected improvement under the kriging-believer model (the GP
conditioned on the running inputs at their posterior mean, as kb-ei scores its first pick),
for ``goal="learn"`` the posterior variance under that model (the variance a new observation
there would remove at that point).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import qmc

from labsched.agents.campaign.config import CampaignConfig
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.selectors import expected_improvement

__all__ = [
    "build_gp",
    "candidate_scores",
    "decision_rng",
    "integrated_variance",
    "planned_experiments",
    "posterior_at",
    "recommend",
    "scheduler_view",
]

#: Sobol' points (scrambled, fixed seed) on which the integrated variance is averaged.
N_IV_POINTS = 256
#: Candidate points scored per decision record.
N_CANDIDATES = 256
#: Candidates kept in a decision record.
N_TOP = 10

_IV_CACHE: dict[tuple[int, int], np.ndarray] = {}


def build_gp(config: CampaignConfig, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
    """The GP as the env's regret mode builds it: fit on the initial data, then one ``add``
    per result in the order told (the same floating-point operations, hence bitwise equal)."""
    n0 = len(config.initial_y)
    gp = GaussianProcess(config.bounds_array, config.hyperparameters()).fit(X[:n0], y[:n0])
    for x, v in zip(X[n0:], y[n0:], strict=True):
        gp.add(x, float(v))
    return gp


def decision_rng(seed: int, index: int, purpose: int = 0) -> np.random.Generator:
    """A generator for explanations only, derived from ``(seed, decision index, purpose)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, purpose)))


def _unit_sobol(dim: int, n: int, seed: int) -> np.ndarray:
    key = (dim, n, seed)
    if key not in _IV_CACHE:
        engine = qmc.Sobol(dim, scramble=True, rng=np.random.default_rng(seed))
        _IV_CACHE[key] = engine.random_base2(int(math.ceil(math.log2(n))))[:n]
    return _IV_CACHE[key]


def _to_box(gp: GaussianProcess, U: np.ndarray) -> np.ndarray:
    b = gp.bounds
    return b[:, 0] + U * (b[:, 1] - b[:, 0])


def integrated_variance(gp: GaussianProcess) -> float:
    """Mean posterior variance of the latent function over a fixed Sobol' set of the box."""
    X = _to_box(gp, _unit_sobol(gp.dim, N_IV_POINTS, 0))
    _, sd = gp.predict(X)
    return float(np.mean(np.square(sd)))


def posterior_at(gp: GaussianProcess, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd at the rows of ``X``."""
    if len(X) == 0:
        return np.zeros(0), np.zeros(0)
    mean, sd = gp.predict(np.asarray(X, dtype=float))
    return np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)


def recommend(gp: GaussianProcess) -> dict[str, Any] | None:
    """The env's recommendation: the observed input with the highest posterior mean."""
    if gp.n_observations == 0:
        return None
    X = gp.X
    mean, sd = posterior_at(gp, X)
    best = int(np.argmax(mean))
    return {"x": X[best].tolist(), "mean": float(mean[best]), "sd": float(sd[best]), "y": float(gp.y[best])}


def candidate_scores(
    config: CampaignConfig,
    selector: Any,
    gp: GaussianProcess,
    pending: np.ndarray,
    rng: np.random.Generator,
    chosen: np.ndarray | None = None,
) -> dict[str, Any]:
    """Score a fresh Sobol' candidate set (and the chosen inputs); see the module docstring.

    Returns:
        ``{"kind": str, "X": (m, d) list, "value": (m,) list, "chosen_value": list}`` (all
        candidates, unsorted; ``chosen_value`` scores the rows of ``chosen`` the same way).
    """
    U = qmc.Sobol(gp.dim, scramble=True, rng=rng).random_base2(int(math.log2(N_CANDIDATES)))
    n_extra = 0 if chosen is None else len(chosen)
    X = _to_box(gp, U)
    if n_extra:
        X = np.concatenate([X, np.asarray(chosen, dtype=float)])
    score = getattr(selector, "score", None)
    if callable(score):
        values = np.asarray(score(gp, pending, X), dtype=float).reshape(-1)
        kind = str(getattr(selector, "score_name", f"{config.selector} score"))
    else:
        model = gp.condition_on_pending(pending) if len(pending) else gp
        mean, sd = model.predict(X)
        if config.goal == "optimize":
            incumbent = (
                float(np.max(model.predict(model.X, return_std=False))) if model.n_observations else 0.0
            )
            values = expected_improvement(mean, sd, incumbent)
            kind = "expected improvement (kriging believer; stand-in, selector has no score())"
        else:
            values = np.square(sd)
            kind = "posterior variance (kriging believer; stand-in, selector has no score())"
    m = len(X) - n_extra
    return {
        "kind": kind,
        "X": X[:m].tolist(),
        "value": [float(v) for v in values[:m]],
        "chosen_value": [float(v) for v in values[m:]],
    }


def top_candidates(scores: dict[str, Any], k: int = N_TOP) -> list[dict[str, Any]]:
    """The ``k`` best-scored candidates, best first."""
    v = np.asarray(scores["value"], dtype=float)
    order = np.argsort(-v, kind="stable")[:k]
    return [{"x": scores["X"][i], "value": float(v[i])} for i in order]


def prefer_selector_scores(record: dict[str, Any]) -> None:
    """Use the selector's own audit (``selector.last_scores``) for the reported candidates and
    chosen values when it has them; the stand-in scores stay under ``"standin"``."""
    own = record.get("selector_scores")
    if not own or not own.get("picks") or own["picks"][0].get("value") is None:
        return
    record["standin"] = {"kind": record["candidates_kind"], "top_candidates": record["top_candidates"]}
    record["candidates_kind"] = f"{own['criterion']} (the selector's own scores, first pick)"
    record["top_candidates"] = [
        {"x": c["x"], "value": c["value"]} for c in own["picks"][0]["top"] if c["value"] is not None
    ][:N_TOP]
    for ch, pick in zip(record["chosen"], own["picks"], strict=False):
        ch["value"] = pick["value"]
        ch["reason"] = pick["reason"]


def scheduler_view(scheduler: Any, n_before: int, action: int, max_valid: int) -> dict[str, Any]:
    """The scheduler's side of a decision.

    For policy switching, the Monte-Carlo estimate of each candidate policy's CPE and the one
    chosen (when it evaluated at this time; otherwise it followed its current policy).
    """
    view: dict[str, Any] = {"action": int(action), "max_valid": int(max_valid)}
    history = getattr(scheduler, "history", None)
    if callable(history):
        records = history(0)
        if len(records) > n_before:
            d = records[-1]
            view["policies"] = {
                label: (None if not math.isfinite(v) else float(v))
                for label, v in zip(d.labels, d.estimates, strict=True)
            }
            view["chosen_policy"] = d.chosen
            view["note"] = "policy switching: estimated CPE of each candidate policy (Monte Carlo)"
        else:
            view["note"] = "policy switching followed its current policy (no evaluation at this time)"
    return view


def history_length(scheduler: Any) -> int:
    """Number of recorded decisions of a scheduler keeping a history (0 otherwise)."""
    history = getattr(scheduler, "history", None)
    return len(history(0)) if callable(history) else 0


def planned_experiments(scheduler: Any, now: float) -> tuple[list[dict[str, Any]], str]:
    """Upcoming starts of the scheduler's current plan, and a sentence saying what they are.

    For policy switching with a committed independent-lab schedule: the planned stage windows
    (start, planned end) of the experiments not started yet, per virtual lab (its physical lab
    when one is tracked). Other schedulers expose no plan.
    """
    memory = getattr(scheduler, "_memory", {}).get(0)
    tracker = getattr(memory, "tracker", None)
    kind = getattr(memory, "kind", None)
    if tracker is None or kind != "commit":
        if kind == "wait":
            target = getattr(memory, "target", 0)
            return [], f"policy switching is waiting until {target} experiments have finished, then re-plans"
        return [], "this scheduler exposes no plan: only finished and running experiments are shown"
    planned = []
    for v_index, (phys, ideal_end, lengths) in enumerate(tracker.snapshot()):
        start = max(float(ideal_end), now)
        for length in lengths:
            planned.append(
                {"virtual_lab": v_index, "lab": int(phys), "start": start, "end": start + float(length)}
            )
            start += float(length)
    return planned, "planned stages of the independent-lab schedule policy switching has committed to"
