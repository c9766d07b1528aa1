"""The paper's schedulers as agents with stable-baselines3's ``predict`` interface."""

from .base import BaselinePolicy, LabState, decode_observation
from .online import LabCountEstimate, OnFCP, OnMEL, RandomPolicy, Sequential, min_eager_labs
from .registry import BASELINES, make, register

for _cls in (Sequential, OnFCP, OnMEL, RandomPolicy):
    register(_cls)

__all__ = [
    "BASELINES",
    "BaselinePolicy",
    "LabCountEstimate",
    "LabState",
    "OnFCP",
    "OnMEL",
    "RandomPolicy",
    "Sequential",
    "decode_observation",
    "make",
    "min_eager_labs",
    "register",
]
