"""Compatibility path: the module moved to :mod:`labsched.baselines.labs.independent_lab`."""

from labsched.baselines.labs.independent_lab import *  # noqa: F403
from labsched.baselines.labs.independent_lab import __all__  # noqa: F401
