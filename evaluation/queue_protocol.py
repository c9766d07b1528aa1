"""Compatibility path: the module moved to :mod:`labsched.evaluation.queue.protocol`.

Names resolve on first use, so importing this path does not load the RL agent's dependencies.
"""

from typing import Any

from labsched.evaluation.queue import protocol as _protocol

__all__ = list(_protocol.__all__)


def __getattr__(name: str) -> Any:
    return getattr(_protocol, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
