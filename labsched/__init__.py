"""labsched: scheduling concurrent, stochastic-duration experiments for budgeted optimization.

Importing ``labsched`` registers its Gymnasium environments (Gymnasium 1.x loads no entry
points), so ``gymnasium.make("labsched/ConcurrentLabs-v0")`` works after ``import labsched``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from labsched._registration import CONCURRENT_LABS_ID, register_envs
from labsched.envs import ConcurrentLabsEnv, ExperimentRecord, LabSpec, durations

try:
    __version__ = version("labsched")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

register_envs()

__all__ = [
    "CONCURRENT_LABS_ID",
    "ConcurrentLabsEnv",
    "ExperimentRecord",
    "LabSpec",
    "__version__",
    "durations",
    "register_envs",
]
