"""Compatibility path: the module moved to :mod:`labsched.baselines.labs.staged`."""

from labsched.baselines.labs.staged import *  # noqa: F403
from labsched.baselines.labs.staged import __all__  # noqa: F401
