"""Compatibility path: the module moved to :mod:`labsched.evaluation.queue.protocol`.

Names resolve on first use, so importing this path does not load the RL agent's dependencies.
"""

from labsched.envs._lib.lazy import lazy_attributes
from labsched.evaluation.queue import protocol as _protocol

__all__ = list(_protocol.__all__)
__getattr__, __dir__ = lazy_attributes(__name__, {_protocol.__name__: __all__})
