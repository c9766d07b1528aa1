"""Batch Thompson sampling over a candidate set: the ``"thompson"`` selector."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labsched.envs._lib.validation import check_bool
from labsched.envs.bo.candidates import SelectionContext, random_far_point
from labsched.envs.bo.selectors.base import CandidateOptions, CandidateSelector

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ThompsonSampling"]


class ThompsonSampling(CandidateSelector):
    """Batch Thompson sampling over a finite candidate set.

    The model is conditioned on the pending inputs with kriging-believer values (posterior
    means), which removes their variance without moving the mean.  Then, by default, ``k``
    independent joint posterior draws over the candidate set are taken at once (one Cholesky
    factorisation) and pick ``i`` is the argmax of draw ``i`` among the candidates not within
    ``min_distance`` of an earlier pick: the parallel Thompson sampling of Kandasamy et al. (2018),
    where each pick is an independent sample of the posterior argmax.

    With ``fantasize=True`` each pick is instead added to the model as a believer fantasy before
    the next draw, so later draws shun earlier picks (``k`` factorisations; slower).

    Args:
        fantasize: refresh the posterior with a fantasy after every pick.
        n_candidates: Sobol' candidates per call; default ``min(1024, 256 d)`` (a joint draw
            costs O(m^3)).
        n_local, n_best, local_scale, min_distance: see :class:`CandidateSelector`.
    """

    name: ClassVar[str] = "thompson"
    criterion: ClassVar[str] = "posterior draw"
    _option_names: ClassVar[tuple[str, ...]] = ("fantasize",)

    def __init__(
        self,
        *,
        fantasize: bool = False,
        **options: Unpack[CandidateOptions],
    ) -> None:
        super().__init__(**options)
        self.fantasize = check_bool("fantasize", fantasize)

    def _default_n_candidates(self, dim: int) -> int:
        return min(1024, 256 * dim)

    def _select(self, ctx: SelectionContext, k: int, rng: np.random.Generator) -> np.ndarray:
        U = self._candidates(ctx, rng, k + ctx.U_pend.shape[0])
        Xc = ctx.to_x(U)
        model = ctx.gp.condition_on_pending(ctx.X_pending)
        alive = np.ones(U.shape[0], dtype=bool)
        old = np.concatenate([ctx.U_obs, ctx.U_pend])
        picks: list[np.ndarray] = []
        draws = None if self.fantasize else model.sample_posterior(Xc, k, rng)
        for i in range(k):
            f = model.sample_posterior(Xc, 1, rng)[0] if self.fantasize else draws[i]
            f = np.where(alive, f, -np.inf)
            j = int(np.argmax(f))
            if alive[j]:
                u = U[j]
                ctx.record(u, float(f[j]), U, f, self.n_scores)
            else:  # every candidate is taken (a large min_distance)
                u = random_far_point(ctx, np.concatenate([old, *([np.array(picks)] if picks else [])]), rng)
            picks.append(u)
            alive &= ctx.far_from(U, u[None, :])
            if self.fantasize and i + 1 < k:
                x = ctx.to_x(u[None, :])
                model.add(x[0], float(model.predict(x, return_std=False)[0]))
        return np.array(picks)
