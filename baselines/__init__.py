"""The paper's schedulers as agents with stable-baselines3's ``predict`` interface."""

from labsched.baselines.base import BaselinePolicy, LabState, decode_observation
from labsched.baselines.labs.calibrated import CalibratedKeepBusy, CalibratedPolicySwitching
from labsched.baselines.labs.clairvoyant import Clairvoyant
from labsched.baselines.labs.independent_lab import ILPlan, OfIL, plan_from_state, plan_independent_labs
from labsched.baselines.labs.online import (
    LabCountEstimate,
    OnFCP,
    OnMEL,
    RandomPolicy,
    Sequential,
    min_eager_labs,
)
from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.baselines.labs.staged import OfStaged, StagedPlan, max_prob_uniform, plan_staged
from labsched.baselines.labs.synthetic import BernoulliStarts, KeepBusy, make_scheduler
from labsched.baselines.queue.schedulers import (
    QUEUE_SCHEDULERS,
    QueueScheduler,
    QueueView,
    make_queue_scheduler,
    register_queue_scheduler,
)
from labsched.baselines.registry import BASELINES, make, register

for _cls in (Sequential, OnFCP, OnMEL, OfStaged, OfIL, PolicySwitching, RandomPolicy):
    register(_cls)
register(CalibratedPolicySwitching)
register(CalibratedKeepBusy)
register(Clairvoyant)

__all__ = [
    "BASELINES",
    "QUEUE_SCHEDULERS",
    "BaselinePolicy",
    "BernoulliStarts",
    "ILPlan",
    "KeepBusy",
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
    "make_scheduler",
    "max_prob_uniform",
    "min_eager_labs",
    "plan_from_state",
    "plan_independent_labs",
    "plan_staged",
    "register",
    "register_queue_scheduler",
]
