"""Compatibility path: the module moved to :mod:`labsched.envs.labs.durations`."""

from labsched.envs.labs.durations import *  # noqa: F403
from labsched.envs.labs.durations import __all__  # noqa: F401
