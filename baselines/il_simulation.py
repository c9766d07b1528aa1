"""Compatibility path: the module moved to :mod:`labsched.baselines.labs.il_simulation`."""

from labsched.baselines.labs.il_simulation import *  # noqa: F403
from labsched.baselines.labs.il_simulation import __all__  # noqa: F401
