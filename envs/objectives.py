"""Compatibility path: the module moved to :mod:`labsched.envs.bo.objectives`."""

from labsched.envs.bo.objectives import *  # noqa: F403
from labsched.envs.bo.objectives import __all__  # noqa: F401
