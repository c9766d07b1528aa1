"""The selector interface: :class:`Selector` (argument checks, unit-cube mapping, distinctness,
audit record) and :class:`CandidateSelector` (a selector scoring a finite candidate set)."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, TypedDict

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int, check_real
from labsched.envs.bo.candidates import (
    SelectionContext,
    check_pending,
    generate_candidates,
    random_far_point,
)
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.linalg import one_blas_thread
from labsched.envs.bo.scores import SelectionScores

__all__ = ["CandidateOptions", "CandidateSelector", "Selector"]


class Selector(abc.ABC):
    """Chooses ``k`` new inputs given a GP on the completed observations and the pending inputs.

    Subclasses set :attr:`name` and implement :meth:`_select`, which works in unit-cube
    coordinates; :meth:`select` validates the arguments, maps the result back to ``gp.bounds``
    and guarantees the distinctness contract described in the module docstring.

    Auditing. After every :meth:`select` the decision is kept in :attr:`last_scores` (and
    returned with ``return_scores=True``): a :class:`SelectionScores` with, for each returned
    input in order, its score and the :attr:`n_scores` best candidates of that pick with their
    values (for the model-based selectors: the acquisition value, e.g. expected improvement or
    information gain, and for cost-aware selectors the gain and expected duration too).

    Args:
        min_distance: smallest allowed unit-cube distance between a new point and any other new,
            pending or observed point, in ``(0, 0.5)``.
    """

    name: ClassVar[str]
    #: What the recorded scores measure (see :attr:`last_scores`).
    criterion: ClassVar[str] = ""
    #: How many top candidates each pick of :attr:`last_scores` keeps.
    n_scores: int = 5
    #: The constructor options this class adds (attributes of the same names); :meth:`_options`
    #: collects them over the class hierarchy, the most derived class first, for ``repr``.
    _option_names: ClassVar[tuple[str, ...]] = ("min_distance",)

    def __init__(self, *, min_distance: float = 1e-4) -> None:
        self.min_distance = check_real("min_distance", min_distance, 0.0, 0.5, low_open=True, high_open=True)
        self.last_scores: SelectionScores | None = None

    def select(
        self,
        gp: GaussianProcess,
        X_pending: Any,
        k: int,
        rng: np.random.Generator,
        *,
        return_scores: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, SelectionScores]:
        """Return ``k`` new inputs, shape ``(k, d)``, float64, inside ``gp.bounds``.

        Args:
            gp: the GP conditioned on the completed observations (it is not modified).
            X_pending: ``(p, d)`` inputs of the experiments still running (``p`` may be 0;
                ``None`` is accepted for none).
            k: number of new inputs, an integer >= 1.
            rng: the only source of randomness.
            return_scores: also return the audit record of this decision (the same object is
                kept in :attr:`last_scores`).

        Returns:
            The inputs, or ``(inputs, scores)`` with ``return_scores``.
        """
        if not isinstance(gp, GaussianProcess):
            raise TypeError(f"gp must be a GaussianProcess, got {type(gp).__name__}")
        k = check_int("k", k, 1)
        check_generator("rng", rng)
        Xp = check_pending(X_pending, gp.dim)
        b = gp.bounds
        low, span = b[:, 0].copy(), b[:, 1] - b[:, 0]
        ctx = SelectionContext(
            gp=gp,
            low=low,
            span=span,
            ell=gp.hyperparameters.lengthscales(gp.dim),
            U_obs=(gp.X - low) / span,
            y_obs=gp.y,
            U_pend=(Xp - low) / span,
            X_pending=Xp,
            min_distance=self.min_distance,
        )
        with one_blas_thread(gp.limit_threads):
            U = np.asarray(self._select(ctx, k, rng), dtype=float)
        if U.shape != (k, gp.dim):  # pragma: no cover - a bug in a subclass
            raise RuntimeError(f"{type(self).__name__} returned shape {U.shape}, expected {(k, gp.dim)}")
        U = self._enforce_distinct(ctx, np.clip(U, 0.0, 1.0), rng)
        X = np.ascontiguousarray(np.clip(ctx.to_x(U), b[:, 0], b[:, 1]), dtype=np.float64)
        self.last_scores = SelectionScores.from_picks(self.name, self.criterion, X, ctx.picks)
        return (X, self.last_scores) if return_scores else X

    @abc.abstractmethod
    def _select(self, ctx: SelectionContext, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` new points in unit-cube coordinates."""

    def _enforce_distinct(self, ctx: SelectionContext, U: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Replace (by uniform draws) any point breaking the distinctness contract.

        The selectors respect it by construction, so this safety net does not consume ``rng``
        unless a point has to be replaced.
        """
        old = np.concatenate([ctx.U_obs, ctx.U_pend])
        out = U.copy()
        for i in range(out.shape[0]):
            ref = np.concatenate([old, out[:i]])
            if not ctx.far_from(out[i : i + 1], ref)[0]:
                out[i] = random_far_point(ctx, ref, rng)
        return out

    def _options(self) -> dict[str, Any]:
        """The constructor options (see :attr:`_option_names`) and their values."""
        names = [name for cls in type(self).__mro__ for name in vars(cls).get("_option_names", ())]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({opts})"


class CandidateOptions(TypedDict, total=False):
    """The keyword options of :class:`CandidateSelector`, which its subclasses pass on."""

    n_candidates: int | None
    n_local: int | None
    n_best: int
    local_scale: float
    min_distance: float


class CandidateSelector(Selector):
    """Shared candidate generation (Sobol' set plus neighbourhoods of the best observations).

    Args:
        n_candidates: Sobol' points per call (``None``: the subclass default for the dimension);
            raised to ``4 * (k + p)`` when a batch needs more.
        n_local: perturbations around the best observations (``None``: ``min(256, 32 d)``).
        n_best: how many of the best observed inputs get a neighbourhood.
        local_scale: standard deviation of the perturbations, in GP lengthscales.
        min_distance: see :class:`Selector`.

    Subclasses take these options as ``**options: Unpack[CandidateOptions]`` and pass them on.
    """

    _option_names: ClassVar[tuple[str, ...]] = ("n_candidates", "n_local", "n_best", "local_scale")

    def __init__(
        self,
        *,
        n_candidates: int | None = None,
        n_local: int | None = None,
        n_best: int = 5,
        local_scale: float = 0.5,
        min_distance: float = 1e-4,
    ) -> None:
        super().__init__(min_distance=min_distance)
        self.n_candidates = None if n_candidates is None else check_int("n_candidates", n_candidates, 1)
        self.n_local = None if n_local is None else check_int("n_local", n_local, 0)
        self.n_best = check_int("n_best", n_best, 0)
        self.local_scale = check_real("local_scale", local_scale, 0.0, low_open=True)

    def _default_n_candidates(self, dim: int) -> int:
        return min(2048, 512 * dim)

    def _candidates(self, ctx: SelectionContext, rng: np.random.Generator, n_needed: int) -> np.ndarray:
        """Unit-cube candidates for a call needing ``n_needed`` points (see :func:`generate_candidates`)."""
        d = ctx.dim
        return generate_candidates(
            ctx,
            rng,
            n_needed,
            n_sobol=self.n_candidates if self.n_candidates is not None else self._default_n_candidates(d),
            n_local=self.n_local if self.n_local is not None else min(256, 32 * d),
            n_best=self.n_best,
            local_scale=self.local_scale,
        )
