"""Compatibility path: the module moved to :mod:`labsched.envs.queue.search_world`."""

from labsched.envs.queue.search_world import *  # noqa: F403
from labsched.envs.queue.search_world import __all__  # noqa: F401
