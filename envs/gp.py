"""Compatibility path: the module moved to :mod:`labsched.envs.bo.gp`."""

from labsched.envs.bo.gp import *  # noqa: F403
from labsched.envs.bo.gp import __all__  # noqa: F401
