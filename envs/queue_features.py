"""Compatibility path: the module moved to :mod:`labsched.envs.queue.features`."""

from labsched.envs.queue.features import *  # noqa: F403
from labsched.envs.queue.features import __all__  # noqa: F401
