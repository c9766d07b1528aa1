"""labsched: scheduling concurrent, stochastic-duration experiments for budgeted optimization.

Importing ``labsched`` registers its Gymnasium environments (Gymnasium 1.x loads no entry
points), so ``gymnasium.make("labsched/ConcurrentLabs-v0")`` and
``gymnasium.make("labsched/ExperimentQueue-v0")`` work after ``import labsched``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from labsched._registration import CONCURRENT_LABS_ID, EXPERIMENT_QUEUE_ID, register_envs
from labsched.envs import ConcurrentLabsEnv, ExperimentRecord, LabSpec, durations

try:
    __version__ = version("labsched")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

register_envs()


def __getattr__(name: str):  # PEP 562: the queue environment's modules load on first use
    if name in ("ExperimentQueueEnv", "QueueWorldSpec"):
        return getattr(importlib.import_module("labsched.envs"), name)
    raise AttributeError(f"module 'labsched' has no attribute {name!r}")


__all__ = [
    "CONCURRENT_LABS_ID",
    "EXPERIMENT_QUEUE_ID",
    "ConcurrentLabsEnv",
    "ExperimentQueueEnv",
    "ExperimentRecord",
    "LabSpec",
    "QueueWorldSpec",
    "__version__",
    "durations",
    "register_envs",
]
