"""Compatibility path: the module moved to :mod:`labsched.baselines.queue.schedulers`."""

from labsched.baselines.queue.schedulers import *  # noqa: F403
from labsched.baselines.queue.schedulers import __all__  # noqa: F401
