"""labsched: scheduling concurrent, stochastic-duration experiments for budgeted optimization.

Importing ``labsched`` registers its Gymnasium environments (Gymnasium 1.x loads no entry
points), so ``gymnasium.make("labsched/ConcurrentLabs-v0")`` and
``gymnasium.make("labsched/ExperimentQueue-v0")`` work after ``import labsched``.
"""

# No ``from __future__ import annotations`` and no plain helper imports here: every name bound
# in this module shows in ``dir(labsched)``, so helpers are imported privately and deleted.
import importlib.metadata as _metadata

from labsched._registration import CONCURRENT_LABS_ID, EXPERIMENT_QUEUE_ID, register_envs
from labsched.envs import ConcurrentLabsEnv, ExperimentRecord, LabSpec, durations
from labsched.envs._lib.lazy import lazy_attributes as _lazy_attributes

try:
    __version__ = _metadata.version("labsched")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
del _metadata

register_envs()


# PEP 562: the queue environment's modules load on first use.
__getattr__, __dir__ = _lazy_attributes(__name__, {"labsched.envs": ("ExperimentQueueEnv", "QueueWorldSpec")})
del _lazy_attributes


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
