"""Kriging-believer / constant-liar expected improvement: the ``"kb-ei"`` selector."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labsched.envs._lib.validation import check_choice, check_int
from labsched.envs.bo.acquisition import Posterior, expected_improvement
from labsched.envs.bo.acquisition import incumbent as model_incumbent
from labsched.envs.bo.candidates import SelectionContext, polish_ei, random_far_point
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.selectors.base import CandidateOptions, CandidateSelector

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["LIARS", "KrigingBelieverEI"]

#: Fantasy values of :class:`KrigingBelieverEI`.
LIARS = ("mean", "min", "max")


class KrigingBelieverEI(CandidateSelector):
    """Sequential expected improvement with fantasy observations (kriging believer / constant liar).

    The model is first conditioned on every pending input, then the ``k`` points are chosen
    one at a time: each is the maximiser of expected improvement under the current fantasy
    model and is then added to that model as a fantasy observation (a rank-1 update).  The
    fantasy value is ``liar``:

    * ``"mean"`` (default, the kriging believer of Ginsbourger et al.): the current posterior
      mean at the point, which leaves the posterior mean unchanged and only removes the
      variance there, so the next pick moves away;
    * ``"min"`` / ``"max"``: the worst / best observed value (constant liar CL-min / CL-max;
      without observations the posterior mean is used).  CL-min pushes later picks further
      apart, CL-max lets them crowd around the incumbent.

    Expected improvement is for maximisation, over the incumbent = the largest posterior mean
    among the points the fantasy model is conditioned on (observed and fantasy points; with
    the default near-noiseless GP this is the best observed ``y`` while only real points are
    in it, and a believer fantasy above it raises the bar for the picks that follow).

    Maximisation: EI is evaluated on the candidate set (see the module docstring); the
    ``n_refine`` best distinct candidates are polished by L-BFGS-B with the analytic EI gradient
    (at most ``refine_maxiter`` iterations each) and the best valid result is taken.

    Args:
        liar: ``"mean"``, ``"min"`` or ``"max"``.
        n_refine: how many top candidates to polish per pick (0: no polishing).
        refine_maxiter: L-BFGS-B iteration cap.
        n_candidates: Sobol' candidates per call; default ``min(2048, 512 d)``.
        n_local, n_best, local_scale, min_distance: see :class:`CandidateSelector`.
    """

    name: ClassVar[str] = "kb-ei"
    criterion: ClassVar[str] = "expected improvement"
    _option_names: ClassVar[tuple[str, ...]] = ("liar", "n_refine", "refine_maxiter")

    def __init__(
        self,
        *,
        liar: str = "mean",
        n_refine: int = 3,
        refine_maxiter: int = 30,
        **options: Unpack[CandidateOptions],
    ) -> None:
        super().__init__(**options)
        self.liar = check_choice("liar", liar.lower() if isinstance(liar, str) else liar, LIARS)
        self.n_refine = check_int("n_refine", n_refine, 0)
        self.refine_maxiter = check_int("refine_maxiter", refine_maxiter, 1)

    def _lie(self, ctx: SelectionContext, model: GaussianProcess, U: np.ndarray) -> np.ndarray:
        if self.liar == "mean" or ctx.y_obs.size == 0:
            return model.predict(ctx.to_x(U), return_std=False)
        value = float(np.min(ctx.y_obs) if self.liar == "min" else np.max(ctx.y_obs))
        return np.full(U.shape[0], value)

    def _select(self, ctx: SelectionContext, k: int, rng: np.random.Generator) -> np.ndarray:
        gp = ctx.gp
        U = self._candidates(ctx, rng, k + ctx.U_pend.shape[0])
        Xc = ctx.to_x(U)
        model = gp.condition_on_pending(ctx.X_pending, self._lie(ctx, gp, ctx.U_pend))
        alive = np.ones(U.shape[0], dtype=bool)
        old = np.concatenate([ctx.U_obs, ctx.U_pend])
        picks: list[np.ndarray] = []
        for _ in range(k):
            incumbent = model_incumbent(model)
            mean, std = model.predict(Xc)
            ei = expected_improvement(mean, std, incumbent)
            ei[~alive] = -np.inf
            best = int(np.argmax(ei))
            u_pick, ei_pick, reason = U[best], float(ei[best]), "argmax"
            ref = np.concatenate([old, *([np.array(picks)] if picks else [])])
            if not np.isfinite(ei_pick):  # every candidate is taken (a large min_distance)
                u_pick, reason = random_far_point(ctx, ref, rng), "uniform"
            elif self.n_refine:
                post = Posterior(model)
                order = np.argsort(-ei, kind="stable")[: self.n_refine]
                starts = U[order[np.isfinite(ei[order])]]
                scale = post.scale
                for value, u in polish_ei(post, starts, incumbent, self.refine_maxiter):
                    if value * scale > ei_pick and ctx.far_from(u[None, :], ref)[0]:
                        u_pick, ei_pick, reason = u, value * scale, "polished"
            ctx.record(u_pick, ei_pick, U, ei, self.n_scores, reason=reason)
            picks.append(u_pick)
            alive &= ctx.far_from(U, u_pick[None, :])
            model.add(ctx.to_x(u_pick[None, :])[0], float(self._lie(ctx, model, u_pick[None, :])[0]))
        return np.array(picks)
