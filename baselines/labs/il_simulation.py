"""Vectorised Monte-Carlo machinery for IL schedules (used by policy switching).

Everything here works on a batch of ``R`` simulated executions ("rows") at once, with one NumPy
operation per *stage* or per *candidate number of labs*, never a Python loop per row, and with
temporaries of bounded size (rows are processed in chunks; see
:data:`~labsched.baselines.labs.il_tables.CHUNK_ELEMENTS`).

Conventions shared with :mod:`labsched.baselines.labs.independent_lab` (snapped plans):

* Boundary indices ``g = 0 .. N`` name the times ``tau_g = g * epoch`` for ``g < N`` and
  ``tau_N = h`` (``N = ceil(h / epoch)``): the decision grid plus the horizon.
* ``Hs[a, g]`` is the log-probability that ``a`` stages splitting ``[tau_g, h]`` evenly on the
  grid (:func:`~labsched.baselines.labs.independent_lab.stage_boundaries`) all hold their
  experiments; ``Hs[0, g]`` is 0 at ``g = N`` and ``-inf`` elsewhere. Rows of it are built on
  first use (:class:`GridTables`).
* A *lab* of a simulated plan is described by its ideal clock (planned end of its current
  stage), the completion time of its current experiment (``-inf`` when idle) and the lengths of
  the stages still to start; :func:`simulate_stages` replays it with the tracker's semantics
  (stage end = max(ideal end, completion); start at the completion after an overrun, else at the
  first grid point at or after the stage end).

The pieces live in :mod:`~labsched.baselines.labs.il_tables` (grid tables, the running labs'
best first stages), :mod:`~labsched.baselines.labs.il_batch_plan` (the planner for many states)
and :mod:`~labsched.baselines.labs.il_replay` (replaying plans, CPE); this module gathers them.
"""

from __future__ import annotations

from labsched.baselines.labs.il_batch_plan import (
    BatchPlan,
    RowPlans,
    batch_row_plan,
    new_loads,
    plan_batch,
    plan_rows,
    plan_rows_unique,
    row_extra,
    to_batch_plan,
)
from labsched.baselines.labs.il_replay import cpe_of_new, simulate_plan, simulate_stages, split_lengths
from labsched.baselines.labs.il_tables import (
    CHUNK_ELEMENTS,
    DenseRunning,
    GridTables,
    RunningPlans,
    grid_tables,
    running_tables,
)

__all__ = [
    "CHUNK_ELEMENTS",
    "BatchPlan",
    "DenseRunning",
    "GridTables",
    "RowPlans",
    "RunningPlans",
    "batch_row_plan",
    "cpe_of_new",
    "grid_tables",
    "new_loads",
    "plan_batch",
    "plan_rows",
    "plan_rows_unique",
    "row_extra",
    "running_tables",
    "simulate_plan",
    "simulate_stages",
    "split_lengths",
    "to_batch_plan",
]
