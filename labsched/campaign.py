"""Real campaigns (``from labsched.campaign import Campaign``): see :mod:`labsched.agents.campaign`."""

from labsched.agents.campaign import (
    GOALS,
    STATUSES,
    STOP_RULES,
    Campaign,
    CampaignConfig,
    CampaignState,
    CampaignStatus,
    Journal,
    JournalError,
    Order,
    code_version,
    run_simulation,
    seed_streams,
    simulate,
)

__all__ = [
    "GOALS",
    "STATUSES",
    "STOP_RULES",
    "Campaign",
    "CampaignConfig",
    "CampaignState",
    "CampaignStatus",
    "Journal",
    "JournalError",
    "Order",
    "code_version",
    "run_simulation",
    "seed_streams",
    "simulate",
]
