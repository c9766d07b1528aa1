"""Compatibility path: the module moved to :mod:`labsched.envs.bo.episode`."""

from labsched.envs.bo.episode import *  # noqa: F403
from labsched.envs.bo.episode import __all__  # noqa: F401
