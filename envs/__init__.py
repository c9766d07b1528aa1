"""Environments: the concurrent-labs simulator, its problem spec and duration models, the
Bayesian-optimisation layer of its regret mode, and the experiment-queue environment.

The regret-mode and experiment-queue modules import SciPy's heavier parts, so their names are
loaded on first use (PEP 562): ``import labsched`` stays quick.
"""

from __future__ import annotations

from labsched.envs._lib.lazy import lazy_attributes, lazy_names
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv, ExperimentRecord
from labsched.envs.labs.durations import (
    Deterministic,
    Discrete,
    DurationModel,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    TruncatedNormal,
    Uniform,
)
from labsched.envs.labs.monte_carlo import BatchOutcome, SimState, simulate_keep_busy
from labsched.envs.labs.spec import LabSpec

_LAZY = {
    ".queue.experiment_queue": ("DeploymentRecord", "ExperimentQueueEnv"),
    ".bo.objectives": ("OBJECTIVES", "Objective", "estimate_maximum", "make_objective"),
    ".queue.features": ("ExperimentDataset", "SDBNModel", "cached_dataset", "generate_dataset", "train_sdbn"),
    ".queue.search_world": ("QueueWorldSpec", "SearchWorld"),
    ".bo.selectors": (
        "SELECTORS",
        "KrigingBelieverEI",
        "RandomSelector",
        "Selector",
        "SimulationMatching",
        "ThompsonSampling",
        "make_selector",
    ),
}
_LAZY_NAMES = lazy_names(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "BatchOutcome",
    "ConcurrentLabsEnv",
    "Deterministic",
    "Discrete",
    "DurationModel",
    "ExperimentRecord",
    "Exponential",
    "Gamma",
    "LabSpec",
    "LogNormal",
    "Mixture",
    "SimState",
    "TruncatedNormal",
    "Uniform",
    "simulate_keep_busy",
    *sorted(_LAZY_NAMES),
]
