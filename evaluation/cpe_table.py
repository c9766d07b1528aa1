"""Compatibility path: the module moved to :mod:`labsched.evaluation.labs.cpe_table`."""

from labsched.evaluation.labs.cpe_table import *  # noqa: F403
from labsched.evaluation.labs.cpe_table import __all__  # noqa: F401
