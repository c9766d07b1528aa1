"""Compatibility path: the module moved to :mod:`labsched.envs.labs.monte_carlo`."""

from labsched.envs.labs.monte_carlo import *  # noqa: F403
from labsched.envs.labs.monte_carlo import __all__  # noqa: F401
