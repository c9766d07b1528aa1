"""Information-gain selectors: ``"mes"`` (max-value entropy search) and ``"ivr"`` (integrated
variance reduction), with pending experiments, greedy fantasised batches, optional cost awareness
and a documented tie-break.

Batches. The model is first conditioned on the pending (running) inputs with kriging-believer
values (posterior means: the mean is unchanged, the variance there removed); then the ``k`` inputs
are chosen one at a time, each added to the model as a believer fantasy before the next one is
scored, as :class:`~labsched.envs.bo.selectors.ei.KrigingBelieverEI` does.  For ``"ivr"`` this is
exact: a GP's posterior variance does not depend on the observed values.

Cost awareness. With ``duration_fn`` (``(m, d)`` inputs -> ``(m,)`` positive expected durations,
in any fixed unit) a candidate's score is ``gain / duration ** cost_exponent``.  Plain gain per
cost (``cost_exponent = 1`` over every candidate) is known to misbehave: it favours cheap points
with almost no information, since a near-zero gain over a tiny cost can beat a large gain over an
ordinary one, and the search then lingers in the cheap corner of the domain (Snoek et al. 2012
observed it for EI per second; Lee et al. 2020 analyse it and propose cost cooling).  Two guards
avoid it here: only candidates whose gain is at least ``gain_floor`` times the best gain of the
pick are eligible (default 0.5: a cheaper point may win only if it is at least half as
informative as the best one), and ``cost_exponent`` (default 1; 0 ignores the cost, values in
between damp it, as cost cooling does) sets how strongly the cost counts.

Ties. Scores within ``tie_tol`` (relative to the largest score) of the best count as tied; among
them the one with the shorter expected duration wins (when ``duration_fn`` is given), then the one
farthest from the pending inputs and the inputs already chosen in the batch (unit-cube distance),
then the first candidate.  The pick's ``reason`` in :attr:`Selector.last_scores` says which rule
decided: ``"argmax"``, ``"tie: shorter duration"``, ``"tie: farther from pending"`` or
``"tie: first candidate"``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.spatial.distance import cdist

from labsched.envs._lib.validation import check_choice, check_int, check_real
from labsched.envs.bo.candidates import SelectionContext, random_far_point
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.information import (
    DEFAULT_INTEGRATION_POINTS,
    IntegratedVarianceReduction,
    MaxValueEntropy,
    integration_points,
    sample_max_values,
)
from labsched.envs.bo.selectors.base import CandidateOptions, CandidateSelector

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["InformationSelector", "IntegratedVarianceSelector", "MaxValueEntropySearch"]

DurationFn = Callable[[np.ndarray], Any]


class InformationSelector(CandidateSelector):
    """A selector maximising an information gain over a candidate set (see the module docstring).

    Args:
        duration_fn: expected duration of an experiment at each row of an ``(m, d)`` array of
            inputs (model units), ``(m,)`` positive finite values; ``None``: ignore costs.
        cost_exponent: ``gain / duration ** cost_exponent``, ``>= 0``.
        gain_floor: only candidates with ``gain >= gain_floor * best gain`` compete on cost, in
            ``[0, 1]``.
        tie_tol: relative tolerance under which scores are tied, ``>= 0``.
        n_candidates, n_local, n_best, local_scale, min_distance: see :class:`CandidateSelector`.
    """

    _option_names: ClassVar[tuple[str, ...]] = ("duration_fn", "cost_exponent", "gain_floor", "tie_tol")

    def __init__(
        self,
        *,
        duration_fn: DurationFn | None = None,
        cost_exponent: float = 1.0,
        gain_floor: float = 0.5,
        tie_tol: float = 1e-9,
        **options: Unpack[CandidateOptions],
    ) -> None:
        super().__init__(**options)
        if duration_fn is not None and not callable(duration_fn):
            raise TypeError(f"duration_fn must be callable or None, got {type(duration_fn).__name__}")
        self.duration_fn = duration_fn
        self.cost_exponent = check_real("cost_exponent", cost_exponent, 0.0)
        self.gain_floor = check_real("gain_floor", gain_floor, 0.0, 1.0)
        self.tie_tol = check_real("tie_tol", tie_tol, 0.0)

    @abc.abstractmethod
    def _prepare(self, ctx: SelectionContext, model: GaussianProcess, Xc: np.ndarray, rng: Any) -> Any:
        """Per-call state shared by the picks of a batch (max-value samples, integration set)."""

    @abc.abstractmethod
    def _gains(self, model: GaussianProcess, Xc: np.ndarray, state: Any) -> np.ndarray:
        """The information gain of each candidate under ``model``."""

    def durations(self, X: np.ndarray) -> np.ndarray | None:
        """Expected durations of the rows of ``X`` from ``duration_fn`` (checked), or ``None``."""
        if self.duration_fn is None:
            return None
        out = np.asarray(self.duration_fn(X), dtype=float)
        if out.shape != (X.shape[0],) or not np.all(np.isfinite(out)) or np.any(out <= 0.0):
            raise ValueError(
                f"duration_fn must return {X.shape[0]} positive finite durations for inputs of shape "
                f"{X.shape}, got shape {out.shape}"
            )
        return out

    def _select(self, ctx: SelectionContext, k: int, rng: np.random.Generator) -> np.ndarray:
        U = self._candidates(ctx, rng, k + ctx.U_pend.shape[0])
        Xc = ctx.to_x(U)
        model = ctx.gp.condition_on_pending(ctx.X_pending)
        dur = self.durations(Xc)
        state = self._prepare(ctx, model, Xc, rng)
        alive = np.ones(U.shape[0], dtype=bool)
        old = np.concatenate([ctx.U_obs, ctx.U_pend])
        picks: list[np.ndarray] = []
        for _ in range(k):
            ref = np.concatenate([old, *([np.array(picks)] if picks else [])])
            if not alive.any():  # every candidate is taken (a large min_distance)
                u = random_far_point(ctx, ref, rng)
                picks.append(u)
            else:
                gains = np.where(alive, self._gains(model, Xc, state), -np.inf)
                scores = self.scores(gains, dur)
                near = np.concatenate([ctx.U_pend, *([np.array(picks)] if picks else [])])
                j, reason = self.choose(scores, dur, U, near)
                u = U[j]
                extra = {"gains": gains, "durations": dur, "reason": reason}
                ctx.record(u, float(scores[j]), U, scores, self.n_scores, **extra)
                picks.append(u)
                alive &= ctx.far_from(U, u[None, :])
            x = ctx.to_x(u[None, :])
            model.add(x[0], float(model.predict(x, return_std=False)[0]))
        return np.array(picks)

    def scores(self, gains: np.ndarray, durations: np.ndarray | None) -> np.ndarray:
        """Cost-adjusted scores: ``gains`` without durations, else ``gain / duration ** exponent``
        for candidates with ``gain >= gain_floor * max gain`` and ``-inf`` for the others."""
        if durations is None:
            return gains
        best = float(np.max(gains))
        eligible = gains >= self.gain_floor * best if best > 0.0 else np.isfinite(gains)
        return np.where(eligible, gains / durations**self.cost_exponent, -np.inf)

    def choose(
        self, scores: np.ndarray, durations: np.ndarray | None, U: np.ndarray, U_pending: np.ndarray
    ) -> tuple[int, str]:
        """Index of the best score, ties broken as the module docstring says; and the rule used."""
        top = float(np.max(scores))
        tied = np.flatnonzero(scores >= top - self.tie_tol * max(abs(top), 1e-300))
        if tied.size == 1:
            return int(tied[0]), "argmax"
        if durations is not None:
            d = durations[tied]
            shortest = tied[d <= d.min() * (1.0 + 1e-12)]
            if shortest.size < tied.size:
                tied = shortest
                if tied.size == 1:
                    return int(tied[0]), "tie: shorter duration"
        if U_pending.shape[0]:
            dist = cdist(U[tied], U_pending).min(axis=1)
            far = tied[dist >= dist.max() * (1.0 - 1e-12)]
            if far.size < tied.size:
                return int(far[0]), "tie: farther from pending"
        return int(tied[0]), "tie: first candidate"


class MaxValueEntropySearch(InformationSelector):
    """Max-value entropy search (``"mes"``): :class:`~labsched.envs.bo.information.MaxValueEntropy`.

    ``n_max_values`` samples of the maximum value are drawn once per call from the model
    conditioned on the pending inputs (``max_value_method="gumbel"`` or ``"sample"``, see
    :func:`~labsched.envs.bo.information.sample_max_values`) and kept for every pick of the batch.

    Args:
        n_max_values: number of max-value samples ``K``.
        max_value_method: ``"gumbel"`` or ``"sample"``.
        **options: see :class:`InformationSelector`.
    """

    name: ClassVar[str] = "mes"
    criterion: ClassVar[str] = "max-value entropy (nats)"
    _option_names: ClassVar[tuple[str, ...]] = ("n_max_values", "max_value_method")

    def __init__(self, *, n_max_values: int = 16, max_value_method: str = "gumbel", **options: Any) -> None:
        super().__init__(**options)
        self.n_max_values = check_int("n_max_values", n_max_values, 1)
        self.max_value_method = check_choice("max_value_method", max_value_method, ("gumbel", "sample"))

    def _prepare(self, ctx: SelectionContext, model: GaussianProcess, Xc: np.ndarray, rng: Any) -> Any:
        return sample_max_values(model, Xc, self.n_max_values, rng, method=self.max_value_method)

    def _gains(self, model: GaussianProcess, Xc: np.ndarray, state: Any) -> np.ndarray:
        return MaxValueEntropy(model, state)(Xc)


class IntegratedVarianceSelector(InformationSelector):
    """Integrated variance reduction (``"ivr"``): learn the function everywhere.

    Scores :class:`~labsched.envs.bo.information.IntegratedVarianceReduction` over the fixed
    integration set :func:`~labsched.envs.bo.information.integration_points` of the GP's box
    (``n_integration`` points, the set the environment's ``reward="information"`` is measured on).

    Args:
        n_integration: size of the integration set.
        n_candidates: candidates per call; default ``min(1024, 256 d)``.
        **options: see :class:`InformationSelector`.
    """

    name: ClassVar[str] = "ivr"
    criterion: ClassVar[str] = "integrated variance reduction"
    _option_names: ClassVar[tuple[str, ...]] = ("n_integration",)

    def __init__(self, *, n_integration: int = DEFAULT_INTEGRATION_POINTS, **options: Any) -> None:
        super().__init__(**options)
        self.n_integration = check_int("n_integration", n_integration, 1)

    def _default_n_candidates(self, dim: int) -> int:
        return min(1024, 256 * dim)

    def _prepare(self, ctx: SelectionContext, model: GaussianProcess, Xc: np.ndarray, rng: Any) -> Any:
        return integration_points(ctx.gp.bounds, self.n_integration)

    def _gains(self, model: GaussianProcess, Xc: np.ndarray, state: Any) -> np.ndarray:
        return IntegratedVarianceReduction(model, state)(Xc)
