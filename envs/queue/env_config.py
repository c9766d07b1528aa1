"""The validated settings of :class:`~labsched.envs.queue.experiment_queue.ExperimentQueueEnv`
and its observation space (what the environment is built from, kept apart from how it runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from labsched.envs._lib.validation import check_choice, check_int, check_real
from labsched.envs.queue.dataset import ExperimentDataset
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = [
    "DEPLOYMENT_MODES",
    "PAPER_DEPLOYMENT",
    "RENDER_MODES",
    "QueueEnvConfig",
    "observation_space",
    "resolve_spec",
]

RENDER_MODES = ("ansi",)

#: ``(sessions per deployment, experiments deployed per budget)`` of the paper's Tables 4 and 5
#: per experiment type: the default equal deployment size and budget ``T = k * n``.
PAPER_DEPLOYMENT: dict[str, tuple[int, int]] = {"interleaving": (100_000, 3), "ab": (2_000_000, 2)}

DEPLOYMENT_MODES = ("paper", "experiment")
"""Named values of ``deployment_interactions`` (besides a number of sessions)."""


@dataclass(frozen=True)
class QueueEnvConfig:
    """The episode settings of the queue environment, validated (see the env's ``Args``).

    Every field has the meaning of the ``ExperimentQueueEnv`` argument of the same name; bad
    values raise ``TypeError`` (wrong type) or ``ValueError`` naming the argument.
    """

    pool: Literal["fixed", "fresh"] = "fixed"
    pool_seed: int = 0
    max_queue: int = 10
    queue_size: int | None = None
    deployment_interactions: int | str | None = "paper"
    outcome: Literal["resample", "bootstrap", "dataset"] = "resample"
    exploration_interactions: int = 0
    arrivals_per_budget: float = 0.0
    normalize_features: bool = True
    feature_clip: float = 5.0
    flatten: bool = False
    invalid_action: Literal["clip", "raise"] = "clip"
    render_mode: str | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        check_choice("pool", self.pool, ("fixed", "fresh"))
        s(self, "pool_seed", check_int("pool_seed", self.pool_seed, 0))
        s(self, "max_queue", check_int("max_queue", self.max_queue, 1))
        size = self.max_queue if self.queue_size is None else self.queue_size
        s(self, "queue_size", check_int("queue_size", size, 1, self.max_queue))
        if self.deployment_interactions is None:
            s(self, "deployment_interactions", "experiment")
        elif isinstance(self.deployment_interactions, str):
            check_choice("deployment_interactions", self.deployment_interactions, DEPLOYMENT_MODES)
        else:
            n = check_int("deployment_interactions", self.deployment_interactions, 1)
            s(self, "deployment_interactions", n)
        check_choice("outcome", self.outcome, ("resample", "bootstrap", "dataset"))
        if self.outcome == "dataset" and self.deployment_interactions != "experiment":
            raise ValueError(
                "outcome='dataset' uses the realised full-size labels and needs "
                f"deployment_interactions='experiment' (or None), got {self.deployment_interactions!r}"
            )
        s(
            self,
            "exploration_interactions",
            check_int("exploration_interactions", self.exploration_interactions, 0),
        )
        s(self, "arrivals_per_budget", check_real("arrivals_per_budget", self.arrivals_per_budget, 0.0))
        s(self, "feature_clip", check_real("feature_clip", self.feature_clip, 0.0, low_open=True))
        s(self, "normalize_features", bool(self.normalize_features))
        s(self, "flatten", bool(self.flatten))
        check_choice("invalid_action", self.invalid_action, ("clip", "raise"))
        if self.render_mode is not None and self.render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be None or one of {list(RENDER_MODES)}, got {self.render_mode!r}"
            )

    def deployment_size(self, experiment_type: str) -> int | None:
        """Sessions every deployment consumes, or ``None`` when each experiment has its own."""
        if self.deployment_interactions == "experiment":
            return None
        if self.deployment_interactions == "paper":
            return PAPER_DEPLOYMENT[experiment_type][0]
        return int(self.deployment_interactions)

    @property
    def explore(self) -> bool:
        """Whether the env has exploration actions."""
        return self.exploration_interactions > 0


def resolve_spec(
    spec: QueueWorldSpec | None, dataset: ExperimentDataset | None, pool: str, overrides: dict[str, Any]
) -> QueueWorldSpec:
    """The world of the env: ``dataset.spec`` when a dataset is given (which must agree with
    ``spec`` and ``pool``), else ``spec`` (default ``QueueWorldSpec()``) with ``overrides``."""
    if dataset is not None:
        if not isinstance(dataset, ExperimentDataset):
            raise TypeError(f"dataset must be an ExperimentDataset, got {type(dataset).__name__}")
        if overrides:
            raise TypeError(f"spec overrides {sorted(overrides)} cannot be combined with a dataset")
        if spec is not None and spec != dataset.spec:
            raise ValueError("spec must be None or equal to dataset.spec when a dataset is given")
        if pool != "fixed":
            raise ValueError(f"pool must be 'fixed' when a dataset is given, got {pool!r}")
        if len(dataset) == 0:
            raise ValueError("dataset must contain at least one experiment")
        spec = dataset.spec
    if spec is None:
        spec = QueueWorldSpec()
    elif not isinstance(spec, QueueWorldSpec):
        raise TypeError(f"spec must be a QueueWorldSpec, got {type(spec).__name__}")
    if overrides:
        spec = spec.replace(**overrides)
    return spec


def observation_space(config: QueueEnvConfig, n_features: int) -> spaces.Dict:
    """The ``Dict`` observation space of ``config.max_queue`` slots of ``n_features`` features."""
    nq = config.max_queue
    c = np.float32(config.feature_clip)
    obs_spaces: dict[str, spaces.Space] = {
        "budget": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
        "cost": spaces.Box(0.0, 1.0, shape=(nq,), dtype=np.float32),
        "features": spaces.Box(-c, c, shape=(nq, n_features), dtype=np.float32),
        "valid": spaces.MultiBinary(nq),
    }
    if config.explore:
        obs_spaces["explored"] = spaces.MultiBinary(nq)
        obs_spaces["exploration"] = spaces.Box(-c, c, shape=(nq,), dtype=np.float32)
    return spaces.Dict(obs_spaces)
