"""Compatibility path: the module moved to :mod:`labsched.baselines.labs.policy_switching`."""

from labsched.baselines.labs.policy_switching import *  # noqa: F403
from labsched.baselines.labs.policy_switching import __all__  # noqa: F401
