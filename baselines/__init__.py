"""The paper's schedulers as agents with stable-baselines3's ``predict`` interface."""

from .base import BaselinePolicy, LabState, decode_observation
from .online import LabCountEstimate, OnFCP, OnMEL, RandomPolicy, Sequential, min_eager_labs
from .registry import BASELINES, make, register
from .staged import OfStaged, StagedPlan, max_prob_uniform, plan_staged

for _cls in (Sequential, OnFCP, OnMEL, OfStaged, RandomPolicy):
    register(_cls)

__all__ = [
    "BASELINES",
    "BaselinePolicy",
    "LabCountEstimate",
    "LabState",
    "OfStaged",
    "OnFCP",
    "OnMEL",
    "RandomPolicy",
    "Sequential",
    "StagedPlan",
    "decode_observation",
    "make",
    "max_prob_uniform",
    "min_eager_labs",
    "plan_staged",
    "register",
]
