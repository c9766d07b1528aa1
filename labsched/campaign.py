"""Real campaigns (``from labsched.campaign import Campaign``): see :mod:`labsched.agents.campaign`."""

from labsched.agents.campaign import *  # noqa: F403
from labsched.agents.campaign import __all__  # noqa: F401
