"""Compatibility path: the module moved to :mod:`labsched.envs.labs.spec`."""

from labsched.envs.labs.spec import *  # noqa: F403
from labsched.envs.labs.spec import __all__  # noqa: F401
