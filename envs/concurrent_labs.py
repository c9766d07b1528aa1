"""Compatibility path: the module moved to :mod:`labsched.envs.labs.concurrent_labs`."""

from labsched.envs.labs.concurrent_labs import *  # noqa: F403
from labsched.envs.labs.concurrent_labs import __all__  # noqa: F401
