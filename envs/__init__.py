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
from .spec import LabSpec

__all__ = [
    "OBJECTIVES",
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
    "Objective",
    "SimState",
    "TruncatedNormal",
    "Uniform",
    "estimate_maximum",
    "make_objective",
    "simulate_keep_busy",
]
