"""Real campaigns: an ask/tell planner over the env's schedulers and selectors.

A :class:`Campaign` runs a budgeted optimisation with real, concurrent, stochastic-duration
experiments (lab benches, compute jobs) using the same scheduler (any registered baseline or a
saved agent) and selector code as :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv`::

    c = Campaign.create("bench.db", spec=LabSpec(n_experiments=20, n_labs=4, horizon=10.0),
                        bounds=[(0.0, 1.0), (0.0, 1.0)], scheduler="ps", selector="kb-ei", seed=0)
    orders = c.ask(now=0.0)            # start these now
    c.tell(orders[0].id, y=0.73, finished_at=1.2)
    c.ask(now=1.2)                     # a result arrived: ask again
    c.next_ask_time()                  # or ask at this time if nothing arrives first

Decisions. ``ask(now)`` shows the scheduler the observation the env would show it in the same
state (busy labs, elapsed times, counts, remaining time; a failed run counts as finished) and
starts the number of experiments it chooses in the lowest-numbered free labs; the selector picks
their inputs from the GP fitted on the results so far (built exactly as the env builds it), with
the running orders as pending points. Nothing starts at or after the horizon.

Determinism. Decisions are a pure function of the seed and the journal: the scheduler's memory is
rebuilt on :meth:`Campaign.open` by replaying every recorded observation (and checked against the
recorded action); the selector uses one stream, seeded as in the env, whose state after each ask
is stored in that ask, so a reopened campaign continues the stream exactly; explanations use
their own generators derived from ``(seed, decision index)``. The env-parity requirement is why
the selector stream is chained rather than derived per decision: the env's selector consumes a
single stream, and a simulated campaign (:func:`simulate`) reproduces the env's decisions exactly.

Journal and crash safety: see :mod:`labsched.agents.campaign.journal`. After a crash an ask that
was committed shows its orders as running, and ``ask`` with the same ``now`` (nothing told in
between) returns those orders again instead of starting new ones.
"""

from labsched.agents.campaign.config import GOALS, STOP_RULES, CampaignConfig, code_version, seed_streams
from labsched.agents.campaign.journal import Journal, JournalError
from labsched.agents.campaign.planner import Campaign, CampaignStatus
from labsched.agents.campaign.simulate import run_simulation, simulate
from labsched.agents.campaign.state import STATUSES, CampaignState, Order

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
