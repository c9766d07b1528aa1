"""Compatibility path: the module moved to :mod:`labsched.envs.queue.experiment_queue`."""

from labsched.envs.queue.experiment_queue import *  # noqa: F403
from labsched.envs.queue.experiment_queue import __all__  # noqa: F401
