"""The paper's schedulers as agents with stable-baselines3's ``predict`` interface."""

from .base import BaselinePolicy, LabState, decode_observation
from .independent_lab import ILPlan, OfIL, plan_from_state, plan_independent_labs
from .online import LabCountEstimate, OnFCP, OnMEL, RandomPolicy, Sequential, min_eager_labs
from .policy_switching import PolicySwitching
from .queue_schedulers import (
    QUEUE_SCHEDULERS,
    QueueScheduler,
    QueueView,
    make_queue_scheduler,
    register_queue_scheduler,
)
from .registry import BASELINES, make, register
from .staged import OfStaged, StagedPlan, max_prob_uniform, plan_staged

for _cls in (Sequential, OnFCP, OnMEL, OfStaged, OfIL, PolicySwitching, RandomPolicy):
    register(_cls)

__all__ = [
    "BASELINES",
    "QUEUE_SCHEDULERS",
    "BaselinePolicy",
    "ILPlan",
    "LabCountEstimate",
    "LabState",
    "OfIL",
    "OfStaged",
    "OnFCP",
    "OnMEL",
    "PolicySwitching",
    "QueueScheduler",
    "QueueView",
    "RandomPolicy",
    "Sequential",
    "StagedPlan",
    "decode_observation",
    "make",
    "make_queue_scheduler",
    "max_prob_uniform",
    "min_eager_labs",
    "plan_from_state",
    "plan_independent_labs",
    "plan_staged",
    "register",
    "register_queue_scheduler",
]
