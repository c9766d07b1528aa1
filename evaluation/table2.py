"""Compatibility path: the module moved to :mod:`labsched.evaluation.labs.table2`."""

from labsched.evaluation.labs.table2 import *  # noqa: F403
from labsched.evaluation.labs.table2 import __all__  # noqa: F401
