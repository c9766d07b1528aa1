"""The Bayesian-optimisation run that a schedule drives (the environment's regret mode).

One :class:`BOEpisode` lives inside :class:`~labsched.envs.ConcurrentLabsEnv` when an objective
is given. The scheduler decides when and how many experiments start; at every start the
selector (``SelectBatch``) chooses the inputs, given the completed observations (a Gaussian
process) and the inputs of the experiments still running; at every completion the outcome joins
the GP by a rank-1 update. At the end the regret is scored as in the paper: the optimum minus the
true value at the predicted best input, the observed input with the highest posterior mean
(:func:`scored_regret`: never clipped beyond round-off; a stated optimum that is exceeded raises).
The end of an episode also reports the information goal: the integrated posterior variance of the
GP over a fixed Sobol' set of the box (:func:`~labsched.envs.bo.information.integration_points`)
and the root mean squared error of the posterior mean against the true function on that set.

Randomness (common random numbers). At reset the environment draws, from its seeded generator
and after the durations, three seeds: one for the initial design, one for observation noise and
one for the selector. The initial points and each experiment's noise draw (indexed by start
order) are therefore the same for every scheduler run with the same seed; only the selector's
stream is consumed in a schedule-dependent way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.bo.gp import GaussianProcess, GPHyperparameters
from labsched.envs.bo.information import integrated_variance, integration_points, posterior_rmse
from labsched.envs.bo.objectives import Objective, make_objective

__all__ = ["REGRET_RTOL", "BOEpisode", "BOResult", "default_n_initial", "scored_regret"]


#: Relative tolerance (times ``max(1, |optimum|)``) within which a value above the optimum is round-off.
REGRET_RTOL = 1e-6


def scored_regret(objective: Objective, x: np.ndarray, value: float) -> float:
    """The regret ``objective.optimum_value - value`` of the true value at ``x``, never hidden.

    * A value above the optimum by at most ``REGRET_RTOL * max(1, |optimum|)`` is round-off (or
      the precision of a stated optimum): the regret is 0.
    * Beyond that, an *estimated* optimum (``optimum_estimated=True``, found numerically) was
      simply beaten: the negative regret is reported as it is.
    * Beyond that, a *stated* optimum is wrong, and every scheduler would otherwise score as if
      it had found the maximum: ``ValueError``.

    Raises:
        ValueError: when ``value`` exceeds a stated (not estimated) ``optimum_value`` by more
            than the tolerance; the message gives both values and ``x``.
    """
    optimum = objective.optimum_value
    regret = optimum - value
    tol = REGRET_RTOL * max(1.0, abs(optimum))
    if regret >= -tol:
        return max(regret, 0.0)
    if objective.optimum_estimated:
        return regret
    raise ValueError(
        f"objective {objective.name!r}: the true value {value!r} at x={np.asarray(x).tolist()} exceeds "
        f"its stated optimum_value {optimum!r} by {-regret:.3g} (tolerance {tol:.3g}); the stated "
        "optimum is wrong: give the true maximum (or omit optimum_value to have it estimated)"
    )


def default_n_initial(dim: int) -> int:
    """The paper's initial design size: 5 points for d <= 3, 20 otherwise."""
    return 5 if dim <= 3 else 20


@dataclass(frozen=True)
class BOResult:
    """What a finished episode reports in ``info``.

    Attributes:
        regret: ``optimum - f(x_best)`` (true, noise-free value); see :func:`scored_regret` (0 for
            round-off above the optimum, negative when an estimated optimum was beaten).
        best_x: the predicted best input (highest posterior mean among observed inputs).
        best_value: ``f(best_x)``.
        X: all observed inputs (initial design first, then experiments in completion order).
        y: their (noisy) outcomes.
        n_initial: size of the initial design.
        integrated_variance: mean posterior variance of the latent function over the fixed
            Sobol' set :attr:`BOEpisode.integration_points` (original units of ``y``).
        rmse: root mean squared error of the posterior mean against the true (noise-free)
            function on the same set.
    """

    regret: float
    best_x: np.ndarray
    best_value: float
    X: np.ndarray
    y: np.ndarray
    n_initial: int
    integrated_variance: float = float("nan")
    rmse: float = float("nan")


class BOEpisode:
    """Per-episode Bayesian-optimisation state.

    Args:
        objective: a registered objective name, an :class:`Objective` or a callable (with
            ``bounds`` given through :func:`make_objective` beforehand).
        selector: an object with ``select(gp, X_pending, k, rng) -> (k, d) array``.
        n_experiments: budget ``n`` (for pre-drawing the noise of each experiment).
        n_initial: initial design size (default: :func:`default_n_initial`).
        noise_std: standard deviation of Gaussian observation noise (0: noise free).
        gp: ``"paper"`` (fixed kernel width, see :meth:`GaussianProcess.paper_default`),
            ``"fit"`` (marginal-likelihood hyperparameters, refitted on the initial design and
            then every ``refit_every`` completions) or a :class:`GPHyperparameters`.
        refit_every: completions between refits with ``gp="fit"``.
    """

    def __init__(
        self,
        objective: Any,
        selector: Any,
        n_experiments: int,
        *,
        n_initial: int | None = None,
        noise_std: float = 0.0,
        gp: str | GPHyperparameters = "paper",
        refit_every: int = 5,
    ) -> None:
        self.objective: Objective = make_objective(objective)
        if not callable(getattr(selector, "select", None)):
            raise TypeError(
                f"selector must have a select(gp, X_pending, k, rng) method, got {type(selector).__name__}"
            )
        self.selector = selector
        d = self.objective.dim
        self.n_initial = default_n_initial(d) if n_initial is None else check_int("n_initial", n_initial, 1)
        self.noise_std = check_real("noise_std", noise_std, 0.0)
        if not (gp in ("paper", "fit") or isinstance(gp, GPHyperparameters)):
            raise ValueError(f"gp must be 'paper', 'fit' or a GPHyperparameters, got {gp!r}")
        self.gp_mode = gp
        self.refit_every = check_int("refit_every", refit_every, 1)
        self.n_experiments = check_int("n_experiments", n_experiments, 0)
        self.bounds = np.asarray(self.objective.bounds, dtype=float)
        #: The fixed integration set of the information goal (same for every episode).
        self.integration_points = integration_points(self.bounds)

    # ------------------------------------------------------------------ episode
    def reset(self, rng: np.random.Generator, initial_points: Any = None) -> None:
        """Start an episode: draw the initial design and the noise of every experiment.

        Args:
            rng: the environment's generator (three seeds are drawn from it).
            initial_points: optional (n_initial, d) design replacing the random one.
        """
        seeds = rng.integers(0, 2**63 - 1, size=3)
        init_rng = np.random.default_rng(seeds[0])
        noise_rng = np.random.default_rng(seeds[1])
        self.select_rng = np.random.default_rng(seeds[2])
        d = self.objective.dim
        if initial_points is None:
            X0 = self.objective.scale_from_unit(init_rng.random((self.n_initial, d)))
        else:
            X0 = np.asarray(initial_points, dtype=float)
            if X0.ndim != 2 or X0.shape[1] != d or len(X0) < 1:
                raise ValueError(f"initial_points must have shape (m, {d}) with m >= 1, got {X0.shape}")
        noise = noise_rng.standard_normal(len(X0) + self.n_experiments) * self.noise_std
        self._noise_initial = noise[: len(X0)]
        self._noise_experiment = noise[len(X0) :]
        y0 = np.asarray(self.objective(X0), dtype=float) + self._noise_initial
        self.gp = self._make_gp(X0, y0)
        self._pending: dict[int, np.ndarray] = {}
        self._inputs: dict[int, np.ndarray] = {}
        self._n_initial_observed = len(X0)
        self._completions = 0

    def _hyperparameters(self) -> GPHyperparameters:
        if isinstance(self.gp_mode, GPHyperparameters):
            return self.gp_mode
        hp = GaussianProcess.paper_hyperparameters(self.bounds)
        if self.noise_std > 0:
            hp = hp.replace(noise_variance=max(hp.noise_variance, 1e-4))
        return hp

    def _make_gp(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        gp = GaussianProcess(self.bounds, self._hyperparameters()).fit(X, y)
        if self.gp_mode == "fit" and len(X) >= 3:
            gp.fit_hyperparameters(self.select_rng, n_restarts=2)
        return gp

    def start(self, indices: list[int]) -> np.ndarray:
        """Choose the inputs of the experiments with these start indices (SelectBatch)."""
        k = len(indices)
        d = self.objective.dim
        pending = np.array(list(self._pending.values()), dtype=float).reshape(-1, d)
        X = np.asarray(self.selector.select(self.gp, pending, k, self.select_rng), dtype=float)
        if X.shape != (k, d):
            raise ValueError(f"selector returned shape {X.shape}, expected {(k, d)}")
        for i, x in zip(indices, X, strict=True):
            self._pending[i] = x
            self._inputs[i] = x
        return X

    def complete(self, index: int) -> float:
        """The experiment started ``index``-th completed: observe it and update the GP."""
        x = self._pending.pop(index)
        y = float(self.objective(x)) + float(self._noise_experiment[index])
        self.gp.add(x, y)
        self._completions += 1
        if self.gp_mode == "fit" and self._completions % self.refit_every == 0:
            self.gp.fit_hyperparameters(self.select_rng, n_restarts=1)
        return y

    def discard(self, index: int) -> None:
        """The experiment started ``index``-th failed: it yields no observation and is no longer
        pending."""
        self._pending.pop(index)

    def input_of(self, index: int) -> np.ndarray:
        """Input chosen for the experiment started ``index``-th."""
        return self._inputs[index]

    def result(self) -> BOResult:
        """Regret of the predicted best observed input (highest posterior mean)."""
        X, y = self.gp.X, self.gp.y
        mean = np.asarray(self.gp.predict(X, return_std=False))
        best = int(np.argmax(mean))
        value = float(self.objective(X[best]))
        regret = scored_regret(self.objective, X[best], value)
        Z = self.integration_points
        return BOResult(
            regret,
            X[best].copy(),
            value,
            X.copy(),
            y.copy(),
            self._n_initial_observed,
            integrated_variance(self.gp, Z),
            posterior_rmse(self.gp, self.objective, Z),
        )
