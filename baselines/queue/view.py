"""What a queue scheduler sees: a :class:`QueueView` of the experiments to rank, the layout of
the queue environment's observation (:class:`ObservationLayout`) and the binding to one env
(:class:`EnvBinding`: its feature normalisation, queue and exploration records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs.queue.experiment_queue import ExperimentQueueEnv
from labsched.envs.queue.feature_vectors import feature_names

__all__ = ["EnvBinding", "ObservationLayout", "QueueView", "resolve_feature_names"]


@dataclass(frozen=True)
class QueueView:
    """The experiments to be ranked, as a scheduler sees them.

    Attributes:
        features: ``(n, F)`` raw pre-experiment features (columns ``feature_names`` of the
            dataset; B minus A).
        exploration: ``(n,)`` exploration results (the outcome statistic of a preliminary run;
            0 where an experiment was not explored), or None without exploration.
        costs: ``(n,)`` interactions each experiment consumes (for ``per_cost``), or None.
        true_statistic: ``(n,)`` the experiments' real outcome statistic (ground truth, for
            ``upper_bound`` only), or None.
        true_success: ``(n,)`` the real success of their deployment (ground truth, for
            ``upper_bound`` in the env), or None.
        true_probability: ``(n,)`` the real ``P(e)`` (ground truth, for ``oracle``), or None.
        feature_names: names of the feature columns, or None (inferred from ``F``: 60 columns
            are the interleaving features, 56 the A/B-test features).
    """

    features: np.ndarray
    exploration: np.ndarray | None = None
    costs: np.ndarray | None = None
    true_statistic: np.ndarray | None = None
    true_success: np.ndarray | None = None
    true_probability: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.features, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"features must be a 2-D (n, F) array, got shape {x.shape}")
        object.__setattr__(self, "features", x)
        n = x.shape[0]
        for name in ("exploration", "costs", "true_statistic", "true_success", "true_probability"):
            v = getattr(self, name)
            if v is None:
                continue
            arr = np.asarray(v, dtype=float).reshape(-1)
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.shape(v)}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return self.features.shape[0]

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        exploration: Any = None,
        *,
        costs: Any = None,
        with_truth: bool = False,
    ) -> QueueView:
        """A view of every experiment of an :class:`ExperimentDataset` (optionally with its
        ground truth: the realised statistic and success, and ``success_probability``)."""
        truth: dict[str, Any] = {}
        if with_truth:
            truth = dict(
                true_statistic=dataset.statistic,
                true_success=dataset.success,
                true_probability=dataset.success_probability,
            )
        return cls(
            features=dataset.features,
            exploration=exploration,
            costs=dataset.interactions if costs is None else costs,
            feature_names=tuple(dataset.feature_names),
            **truth,
        )


def resolve_feature_names(view_names: tuple[str, ...] | None, n_features: int) -> tuple[str, ...]:
    """``view_names``, or the feature columns of an ``n_features``-column matrix (60: interleaving,
    56: A/B tests)."""
    if view_names is not None:
        return tuple(view_names)
    for kind in ("interleaving", "ab"):
        names = feature_names(kind)
        if len(names) == n_features:
            return names
    raise ValueError(
        f"cannot tell the feature columns of a {n_features}-column matrix; pass feature_names "
        "(or fit the scheduler on a dataset)"
    )


@dataclass(frozen=True)
class ObservationLayout:
    """Shape of an ``ExperimentQueueEnv`` observation: ``max_queue`` slots of ``n_features``
    features, with or without the exploration keys. The flat form concatenates the ``Dict``
    keys in sorted order: budget (1), cost (Q), [exploration (Q), explored (Q)], features
    (Q * F), valid (Q)."""

    max_queue: int
    n_features: int
    exploration: bool

    @property
    def flat_size(self) -> int:
        q = self.max_queue
        return 1 + q + (2 * q if self.exploration else 0) + q * self.n_features + q

    @property
    def n_actions(self) -> int:
        return 2 * self.max_queue if self.exploration else self.max_queue

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """``(B, flat_size)`` -> batched ``Dict`` arrays."""
        q, f = self.max_queue, self.n_features
        flat = np.asarray(flat, dtype=np.float64)
        if flat.ndim != 2 or flat.shape[1] != self.flat_size:
            raise ValueError(f"flat observation must have length {self.flat_size}, got shape {flat.shape}")
        out: dict[str, np.ndarray] = {}
        pos = 0

        def take(key: str, width: int, shape: tuple[int, ...]) -> None:
            nonlocal pos
            out[key] = flat[:, pos : pos + width].reshape(flat.shape[0], *shape)
            pos += width

        take("budget", 1, (1,))
        take("cost", q, (q,))
        if self.exploration:
            take("exploration", q, (q,))
            take("explored", q, (q,))
        take("features", q * f, (q, f))
        take("valid", q, (q,))
        return out

    @classmethod
    def infer(cls, flat_size: int, n_features: int) -> ObservationLayout:
        """The unique layout of a flat observation of ``flat_size`` with ``n_features`` columns."""
        found = []
        for explore, per_slot in ((False, n_features + 2), (True, n_features + 4)):
            if (flat_size - 1) % per_slot == 0 and flat_size > 1:
                found.append(cls((flat_size - 1) // per_slot, n_features, explore))
        if len(found) != 1:
            raise ValueError(
                f"cannot infer the layout of a flat observation of length {flat_size} with "
                f"{n_features} features; call scheduler.attach(env)"
            )
        return found[0]


class EnvBinding:
    """What a scheduler knows about one (unwrapped) ``ExperimentQueueEnv``."""

    def __init__(self, env: Any) -> None:
        base = getattr(env, "unwrapped", env)
        if not isinstance(base, ExperimentQueueEnv):
            kind = type(env).__name__
            raise TypeError(f"attach() needs an ExperimentQueueEnv (or a wrapper of one), got {kind}")
        self.env = base
        self.layout = ObservationLayout(base.max_queue, base.n_features, base.exploration_interactions > 0)
        self.feature_names = tuple(base.dataset.feature_names) if base.dataset is not None else None

    def normalisation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The env's current per-column (mean, std) (recomputed: ``fresh`` pools change)."""
        if not self.env.normalize_features:
            return None
        x = np.asarray(self.env.dataset.features, dtype=float)
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 0, std, 1.0)

    def raw_features(self, obs_features: np.ndarray) -> np.ndarray:
        """Observed (possibly z-scored) features mapped back to raw feature values."""
        norm = self.normalisation()
        if norm is None:
            return obs_features
        mean, std = norm
        return obs_features * std + mean

    def slots(self) -> np.ndarray:
        """Experiment index per queue slot (-1: empty)."""
        return self.env.queue

    def exploration_statistics(self) -> np.ndarray:
        """Raw exploration statistic per slot (0 if not explored) from the env's records."""
        stats: dict[int, float] = {}
        for rec in self.env.schedule:
            if rec.kind == "explore":
                stats[rec.experiment] = rec.statistic
        return np.array([stats.get(int(e), 0.0) if e >= 0 else 0.0 for e in self.slots()])
