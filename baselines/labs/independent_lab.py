"""Independent-lab (IL) schedules and the offline IL scheduler OfIL (Azimi, Fern & Fern, sec. 4.2).

An IL schedule runs ``k`` labs independently of each other. Lab ``i`` runs ``m_i`` experiments
back to back in *stages*: stage ``j`` has a planned length ``d_i^j``, and it ends when that length
has passed or when its experiment finishes, whichever is later (experiments are never killed).
An execution is *safe* when every experiment finishes inside its stage, so the probability of a
safe execution of a plan is a product of CDF values, one factor per stage. The offline scheduler
uses the fewest labs whose plan is safe with probability at least ``p``.

Reading of the paper used here (section 4.2 and footnote 1 of section 5):

* **Plain plan** (:func:`plan_independent_labs`, time 0, nothing running): for ``k = 1 .. l`` the
  ``n`` experiments are spread as evenly as possible (``n mod k`` labs get ``floor(n/k) + 1``,
  the others ``floor(n/k)``), every stage of lab ``i`` lasts ``h / m_i``, and the safety
  probability is ``prod_i P_d(h / m_i) ** m_i``. The smallest ``k`` reaching ``p`` is returned;
  when none does, the plan with the most useful labs (``min(l, n)``) is returned with
  ``safe=False`` and a note.
* **Grid snapping** (``snap_to_grid=True``): schedulers only act at decision points, which are
  the multiples of ``spec.epoch`` (plus completion instants). A stage boundary that falls between
  two epochs would start its experiment late and eat into the next stage, so a snapped plan puts
  every intermediate boundary on the epoch grid: boundary ``j`` of a lab with ``a`` stages that
  starts at ``s`` is ``ceil_grid(s + j (h - s) / a)``, the last one is ``h``. From a grid point
  this is the most even split of the whole epochs into ``a`` stages (longer stages first), which
  maximises the safety probability among on-grid splits for a log-concave CDF. The safety
  probability of a snapped plan is computed for the snapped lengths, and ``k`` is chosen with it.
  In the paper's setting (``n=20, l=10, epoch 0.1, h in {4, 5, 6}``) ``h / m_i`` is already on
  the grid and both modes give the same plan. Measured elsewhere (20,000 simulated executions
  on the grid): snapping does not change *when* experiments start (an unsnapped boundary is
  delayed to the same epoch), but it makes the stated probability the true one. Gamma(4, 0.25),
  ``h=5.3``: unsnapped plan states 0.8753, its executions are safe 0.866 of the time; snapped
  states 0.8741, observed 0.874. LogNormal(0, 0.5), ``h=7, l=8``: 0.5474 stated vs 0.526
  observed unsnapped, 0.5462 vs 0.5448 snapped. :class:`OfIL` therefore snaps by default.
* **Plan from a mid-episode state** (:func:`plan_from_state`, used by policy switching): ``m``
  experiments not started yet, time ``t``, and running experiments with elapsed times ``e``.
  Every running experiment keeps its lab (those labs are reused first); its current experiment
  is that lab's first stage, safe with probability ``P(D <= e + x | D > e) =
  (P_d(e + x) - P_d(e)) / (1 - P_d(e))`` when the stage ends ``x`` after ``t``. New labs are
  opened, fewest first, only when the running labs alone are not ``p``-safe.

  *Distribution*: with ``r`` running labs and ``k_new`` new ones, the load (running experiment
  plus new ones) ``m + r`` is spread as evenly as possible over the ``r + k_new`` labs, as in
  the plain plan, a running experiment counting as one unit of its lab's load. The labs that
  get the larger load ``floor + 1`` are the running labs first, longest-running first (for a
  duration law with increasing failure rate they have the smallest expected residual), then new
  labs. With nothing running this is exactly the plain plan.

  *Stage lengths*: a new lab splits ``[t, h]`` evenly (snapped or not). A running lab with
  ``a`` new experiments chooses the end ``t + x`` of its current stage by a 1-d maximisation of
  ``log P(D <= e + x | D > e) + a log P_d((h - t - x) / a)`` (over grid points when snapped,
  else numerically), and splits the rest evenly: the same equal-lengths argument as the paper's
  (Lemma 1) applies to the ``a`` new stages, and only the first stage is different. A running
  lab that gets no new experiment keeps its stage open until ``h``.

Execution semantics (:class:`ScheduleTracker`, used by :class:`OfIL` and by policy switching):
each virtual lab keeps an *ideal clock*, the planned end of its current stage. When its
experiment finishes after that end (an overrun) the stage ends at the completion and the clock
moves there; the next stage then ends one stage length later. The next experiment starts at the
first decision point at or after the stage end, so a late start caused by the decision grid
does not shift later stages (delays do not accumulate), while an overrun does (the paper's
"the stage ends when its experiment finishes").
"""

from __future__ import annotations

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.domain import require_identical_labs
from labsched.baselines.labs.il_plan import GRID_TOL as GRID_TOL
from labsched.baselines.labs.il_plan import ILPlan, LabSchedule, grid_ceil, log_cond_cdf, stage_boundaries
from labsched.baselines.labs.il_planner import plan_from_state, plan_independent_labs
from labsched.baselines.labs.il_tracker import ScheduleTracker, snap_time
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "ILPlan",
    "LabSchedule",
    "OfIL",
    "ScheduleTracker",
    "grid_ceil",
    "log_cond_cdf",
    "plan_from_state",
    "plan_independent_labs",
    "snap_time",
    "stage_boundaries",
]


class OfIL(BaselinePolicy):
    """Offline independent-lab scheduler: compute the IL plan once, replay it in every episode.

    Each virtual lab runs its experiments back to back; stage ``j`` ends ``d`` after the end of
    stage ``j - 1`` or when its experiment finishes, whichever is later, and the next experiment
    starts at the first decision point at or after that stage end.

    Failures leave the plan defined (the paper's; see :mod:`~labsched.baselines.labs.domain`);
    heterogeneous labs raise ``ValueError`` naming the baselines defined there.

    Args:
        spec: the problem.
        snap_to_grid: snap stage boundaries to the decision grid (default True: a boundary
            between two epochs would otherwise start its experiment late, shortening the stage
            actually available; see the module docstring). In the paper's setting both modes
            give the same plan.
        seed: unused (OfIL is deterministic); accepted for a uniform constructor.

    Attributes:
        plan: the :class:`ILPlan` replayed.
    """

    name = "ofil"

    def __init__(self, spec: LabSpec, *, snap_to_grid: bool = True, seed: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        self.snap_to_grid = bool(snap_to_grid)
        require_identical_labs(spec, self.name)
        self.plan = plan_independent_labs(spec, snap_to_grid=self.snap_to_grid)

    def begin_episode(self, state: LabState) -> ScheduleTracker:
        return ScheduleTracker(self.plan, (), self.spec.epoch)

    def act(self, state: LabState, memory: ScheduleTracker) -> int:
        t = snap_time(state.time, self.spec)
        memory.observe(t, state.busy)
        due = memory.due(t)
        if not due:
            return 0
        return memory.start(t, state.busy, min(len(due), state.max_valid))
