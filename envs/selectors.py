"""Compatibility path: the module moved to :mod:`labsched.envs.bo.selectors`."""

from labsched.envs.bo.selectors import *  # noqa: F403
from labsched.envs.bo.selectors import __all__  # noqa: F401
