"""Compatibility path: the module moved to :mod:`labsched.baselines.labs.online`."""

from labsched.baselines.labs.online import *  # noqa: F403
from labsched.baselines.labs.online import __all__  # noqa: F401
