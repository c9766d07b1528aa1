"""Compatibility path: the module moved to :mod:`labsched.evaluation.labs.figure1`."""

from labsched.evaluation.labs.figure1 import *  # noqa: F403
from labsched.evaluation.labs.figure1 import __all__  # noqa: F401
