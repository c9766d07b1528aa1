"""Environments: the concurrent-labs simulator, its problem spec and duration models."""

from .batched import BatchOutcome, SimState, simulate_keep_busy
from .concurrent_labs import ConcurrentLabsEnv, ExperimentRecord
from .durations import (
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
from .objectives import OBJECTIVES, Objective, estimate_maximum, make_objective
from .selectors import (
    SELECTORS,
    KrigingBelieverEI,
    RandomSelector,
    Selector,
    SimulationMatching,
    ThompsonSampling,
    make_selector,
)
from .spec import LabSpec

__all__ = [
    "OBJECTIVES",
    "SELECTORS",
    "BatchOutcome",
    "ConcurrentLabsEnv",
    "Deterministic",
    "Discrete",
    "DurationModel",
    "ExperimentRecord",
    "Exponential",
    "Gamma",
    "KrigingBelieverEI",
    "LabSpec",
    "LogNormal",
    "Mixture",
    "Objective",
    "RandomSelector",
    "Selector",
    "SimState",
    "SimulationMatching",
    "ThompsonSampling",
    "TruncatedNormal",
    "Uniform",
    "estimate_maximum",
    "make_objective",
    "make_selector",
    "simulate_keep_busy",
]
