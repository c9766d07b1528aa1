"""A generated queue of online experiments (:class:`ExperimentDataset`): features, ground
truth, subsets, and running its experiments (fresh runs, bootstrap of the recorded runs,
session-by-session simulation, exploration features). Generation is in
:mod:`labsched.envs.queue.generation`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int
from labsched.envs.queue.click_model import SDBNModel
from labsched.envs.queue.records import ABSessions, CandidateRanker, InterleavingSessions
from labsched.envs.queue.search_world import SearchWorld
from labsched.envs.queue.significance import (
    ABOutcome,
    InterleavingOutcome,
    ab_power,
    ab_test,
    interleaving_power,
    interleaving_test,
)
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = ["ExperimentDataset", "OutcomeSource", "readonly_copy"]

OutcomeSource = Literal["model", "bootstrap", "sessions"]


@dataclass(frozen=True, eq=False)
class ExperimentDataset:
    """A generated queue of online experiments with features and ground truth (synthetic).

    Build with :func:`generate_dataset` (or :func:`cached_dataset`); take train/test parts with
    :meth:`subset`. All arrays are read-only; experiment ``i`` is row ``i`` everywhere.

    Attributes:
        spec: the generating :class:`QueueWorldSpec`.
        world: the hidden :class:`SearchWorld` (ground truth; schedulers must not look).
        labels: ``(Q, D)`` offline relevance labels (-1 = unlabelled).
        sdbn: the :class:`SDBNModel` trained on the historical log.
        candidates: tuple of :class:`CandidateRanker` (B of each experiment; A is production).
        features: ``(E, F)`` pre-experiment features (see the module docstring).
        feature_names: ``F`` column names.
        interactions: ``(E,)`` user interactions (sessions) each experiment consumes when run.
        session_probs: ``(E, 3)`` exact per-session (A wins, B wins, tie) probabilities for
            interleaving, ``(E, 2)`` exact click-through rates (A, B) for A/B tests.
        effect: ``(E,)`` true effect: the expected Equation 1 outcome ``(p_B - p_A) / 2``
            (interleaving) or ``CTR_B - CTR_A`` (A/B).
        success_probability: ``(E,)`` ``P(e)``: probability that a run of ``interactions``
            sessions succeeds (normal approximation of the test).
        outcome: the realised full-size run of every experiment, an
            :class:`InterleavingOutcome` or :class:`ABOutcome` of ``(E,)`` arrays.
        indices: ``(E,)`` each experiment's index in the dataset it was generated in
            (``arange(E)`` unless this is a :meth:`subset`).
    """

    spec: QueueWorldSpec
    world: SearchWorld
    labels: np.ndarray
    sdbn: SDBNModel
    candidates: tuple[CandidateRanker, ...]
    features: np.ndarray
    feature_names: tuple[str, ...]
    interactions: np.ndarray
    session_probs: np.ndarray
    effect: np.ndarray
    success_probability: np.ndarray
    outcome: InterleavingOutcome | ABOutcome
    indices: np.ndarray

    # ------------------------------------------------------------------ basic views
    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def experiment_type(self) -> str:
        return self.spec.experiment_type

    @property
    def success(self) -> np.ndarray:
        """``(E,)`` labels ``y(e)``: the realised full-size run found B significantly better."""
        return np.asarray(self.outcome.success, dtype=bool)

    @property
    def statistic(self) -> np.ndarray:
        """``(E,)`` realised outcome ``sigma(e)`` (Equation 1, or ``CTR_B - CTR_A``)."""
        return np.asarray(self.outcome.statistic, dtype=float)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    def feature_index(self, name: str) -> int:
        """Column of a feature, e.g. ``"dERR@3[irrel]|all"``."""
        try:
            return self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"unknown feature {name!r}; see ExperimentDataset.feature_names") from None

    def _index(self, i: Any) -> int:
        i = check_int("experiment index", i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"experiment index {i} out of range for {len(self)} experiments")
        return int(i) % len(self)

    def _indices(self, indices: Any) -> np.ndarray:
        if indices is None:
            return np.arange(len(self))
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"a boolean index must have shape ({len(self)},), got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).ravel()
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} experiments")
        return idx % max(len(self), 1)

    # ------------------------------------------------------------------ subsets
    def subset(self, indices: Any) -> ExperimentDataset:
        """The experiments ``indices`` (integers or a boolean mask), in that order."""
        idx = self._indices(indices)
        return ExperimentDataset(
            spec=self.spec,
            world=self.world,
            labels=self.labels,
            sdbn=self.sdbn,
            candidates=tuple(self.candidates[i] for i in idx),
            features=readonly_copy(self.features[idx]),
            feature_names=self.feature_names,
            interactions=readonly_copy(self.interactions[idx]),
            session_probs=readonly_copy(self.session_probs[idx]),
            effect=readonly_copy(self.effect[idx]),
            success_probability=readonly_copy(self.success_probability[idx]),
            outcome=type(self.outcome)(*(readonly_copy(np.asarray(f)[idx]) for f in self.outcome)),
            indices=readonly_copy(self.indices[idx]),
        )

    # ------------------------------------------------------------------ running experiments
    def success_probability_at(self, n_sessions: Any, indices: Any = None) -> np.ndarray:
        """``P(e)`` of runs of ``n_sessions`` (scalar or per experiment) for ``indices`` (default all)."""
        idx = self._indices(indices)
        n = np.asarray(n_sessions, dtype=float)
        if self.experiment_type == "interleaving":
            return interleaving_power(self.session_probs[idx], n, self.spec.significance_level)
        return ab_power(self.session_probs[idx], n, self.spec.significance_level)

    def sample_outcomes(
        self,
        n_sessions: Any,
        rng: np.random.Generator,
        indices: Any = None,
        *,
        source: OutcomeSource = "model",
    ) -> InterleavingOutcome | ABOutcome:
        """Run experiments ``indices`` (default all) for ``n_sessions`` each; arrays of verdicts.

        ``source="model"``: fresh sessions, drawn from the exact law of the counts
        (multinomial for interleaving, one binomial per arm for A/B; equivalent to simulating
        every session). ``"bootstrap"``: ``n_sessions`` sessions resampled with replacement
        from each experiment's realised full-size run (Algorithm 4's ``sample``), i.e. counts
        drawn from the run's empirical proportions. ``"sessions"``: simulate every session
        with :meth:`simulate_sessions` (slow for large ``n``; a cross-check).
        """
        check_generator("rng", rng)
        idx = self._indices(indices)
        n = np.broadcast_to(np.asarray(n_sessions), idx.shape)
        if n.size and (not np.issubdtype(n.dtype, np.integer) or n.min() < 0):
            raise ValueError("n_sessions must be non-negative integers")
        n = n.astype(np.int64)
        alpha = self.spec.significance_level
        if source == "sessions":
            counts = [
                self.simulate_sessions(int(i), int(k), rng).counts() for i, k in zip(idx, n, strict=True)
            ]
            cols = np.array(counts, dtype=np.int64).reshape(len(idx), -1).T
            if self.experiment_type == "interleaving":
                return interleaving_test(cols[0], cols[1], cols[2], alpha)
            return ab_test(cols[0], cols[1], cols[2], cols[3], alpha)
        law = self.session_law(source)[idx]
        if self.experiment_type == "interleaving":
            counts = rng.multinomial(n, law) if idx.size else np.zeros((0, 3), dtype=np.int64)
            return interleaving_test(counts[:, 0], counts[:, 1], counts[:, 2], alpha)
        ctr = law
        na = n // 2
        nb = n - na
        ca = rng.binomial(na, ctr[:, 0])
        cb = rng.binomial(nb, ctr[:, 1])
        return ab_test(na, ca, nb, cb, alpha)

    def session_law(self, source: OutcomeSource = "model") -> np.ndarray:
        """The per-session law runs of every experiment are drawn from: ``(E, 3)`` normalised
        (A wins, B wins, tie) probabilities (interleaving) or ``(E, 2)`` click-through rates
        (A, B); ``source="model"`` the exact law, ``"bootstrap"`` the realised run's proportions."""
        if source not in ("model", "bootstrap"):
            raise ValueError(f"source must be 'model', 'bootstrap' or 'sessions', got {source!r}")
        o = self.outcome
        if self.experiment_type == "interleaving":
            if source == "model":
                p = np.asarray(self.session_probs, dtype=float)
            else:
                c = np.stack([o.wins_a, o.wins_b, o.ties], axis=1).astype(float)
                p = c / np.maximum(c.sum(axis=1, keepdims=True), 1.0)
            return p / p.sum(axis=1, keepdims=True)
        if source == "model":
            return np.asarray(self.session_probs, dtype=float)
        return np.stack(
            [o.clicks_a / np.maximum(o.sessions_a, 1), o.clicks_b / np.maximum(o.sessions_b, 1)], axis=1
        )

    def sample_outcome(
        self, i: int, n_sessions: int, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> InterleavingOutcome | ABOutcome:
        """One experiment's verdict after ``n_sessions`` (scalars); see :meth:`sample_outcomes`."""
        i = self._index(i)
        n = check_int("n_sessions", n_sessions, 0)
        out = self.sample_outcomes(n, rng, [i], source=source)
        return type(out)(*(_scalar(f[0]) for f in out))

    def bootstrap_outcome(
        self, i: int, n_sessions: int, rng: np.random.Generator
    ) -> InterleavingOutcome | ABOutcome:
        """Algorithm 4's ``sample(S(j))``: resample ``n_sessions`` sessions of the realised run."""
        return self.sample_outcome(i, n_sessions, rng, source="bootstrap")

    def simulate_sessions(
        self, i: int, n_sessions: int, rng: np.random.Generator
    ) -> InterleavingSessions | ABSessions:
        """Simulate experiment ``i`` session by session (vectorised NumPy)."""
        i = self._index(i)
        n = check_int("n_sessions", n_sessions, 0)
        ranking = self.candidates[i].ranking
        if self.experiment_type == "interleaving":
            return self.world.simulate_interleaving(ranking, n, rng)
        return self.world.simulate_ab(ranking, n, rng)

    # ------------------------------------------------------------------ exploration
    def exploration_features(
        self,
        n_interactions: Any,
        rng: np.random.Generator,
        indices: Any = None,
        *,
        source: OutcomeSource = "model",
    ) -> np.ndarray:
        """The paper's exploration feature: the outcome statistic (Equation 1, or
        ``CTR_B - CTR_A``) of a preliminary run of ``n_interactions`` sessions per experiment.
        ``source`` as in :meth:`sample_outcomes` (``"bootstrap"`` samples the realised run,
        as the paper does; ``"model"`` runs fresh sessions)."""
        return np.asarray(
            self.sample_outcomes(n_interactions, rng, indices, source=source).statistic, dtype=float
        )

    def exploration_feature(
        self, i: int, n_interactions: int, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> float:
        """:meth:`exploration_features` of one experiment."""
        return float(self.sample_outcome(i, n_interactions, rng, source=source).statistic)

    def features_with_exploration(
        self, n_interactions: Any, rng: np.random.Generator, *, source: OutcomeSource = "model"
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """``(E, F + 1)`` features with the exploration feature appended (the paper's 61/57
        features) and the names (last: ``"explore"``)."""
        x = self.exploration_features(n_interactions, rng, source=source)
        return np.column_stack([self.features, x]), (*self.feature_names, "explore")


def readonly_copy(a: np.ndarray) -> np.ndarray:
    """A read-only copy of ``a``."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
