"""Policy switching (PS) over a generator of IL-based policies (Azimi, Fern & Fern, section 5).

At a decision epoch in state ``s`` with ``r`` experiments running, the generator returns
``pi_0 .. pi_r``: ``pi_i`` starts nothing until ``i`` of the running experiments have finished,
then makes the IL plan of :func:`~labsched.baselines.labs.independent_lab.plan_from_state` from the
state at that moment (reusing the running labs, adding labs only for ``p``-safety) and follows
it. PS estimates by Monte-Carlo the CPE of every generated policy and of the policy it selected
at the previous epoch, and acts as the best one would now: ``pi_0`` starts the new labs of its
plan at once, ``pi_i`` (``i > 0``) starts nothing. By the paper's Theorem 2 this is never much
worse than the best of those policies; in the initial state ``pi_0`` is the offline IL plan.

Precise definitions used here:

* **Decision epochs** are the multiples of ``spec.epoch``. When the environment adds decision
  points at completions (``decide_on_completion=True``) PS does not re-plan there; it just does
  what the current policy does: a committed IL schedule restarts a lab whose experiment overran
  its stage (the start the IL semantics ask for at that instant), a waiting policy waits. States
  where nothing can start (no free lab or no budget left) are not evaluated either; the current
  policy is carried on.
* **When ``pi_i`` plans**: at the first decision epoch at or after the ``i``-th completion (a
  completion exactly on an epoch counts), from the state then (all completions up to that epoch
  included). This is the same policy PS would run in the environment, so the simulation of
  ``pi_i`` is exact, and it puts every plan time on the grid, which is what makes the
  simulation vectorisable (see below).
* **The previous policy** is the selected *policy*, continued rather than re-derived:
  ``pi_0`` selected means its IL schedule is committed and later epochs re-evaluate that same
  schedule (its virtual labs, stage clocks and remaining stages; a
  :class:`~labsched.baselines.labs.independent_lab.ScheduleTracker` follows it in the environment);
  ``pi_i`` selected means "wait for ``i`` completions counted from then", which after ``j``
  completions is exactly the generator's ``pi_{i-j}`` (or ``pi_0`` once ``j >= i``), so it needs
  no extra simulation. Ties between estimates go to the previous policy, then to the smaller
  ``i``.
* **The first decision** (nothing running, no previous policy) has a single candidate,
  ``pi_0``, which is the offline IL plan: PS starts exactly like :class:`OfIL` (snapped).
* **CPE** of a simulation counts the new experiments that complete by ``h`` (a policy that
  leaves experiments unfinished is penalised automatically); the prior counts of experiments
  already running are policy-independent and left out.

**Failures and heterogeneous labs.** The generator is unchanged (its IL plans are made for
``l`` identical labs with law ``spec.duration``), but the simulation that compares its policies
follows the real labs (:mod:`labsched.baselines.labs.ps_lab_draws`): each simulated column
draws from the law, speed and failure probability of the lab it stands for, and a failed
experiment scores nothing and is no one's prior. "``i`` completions" of ``pi_i`` are ``i``
running experiments that have *ended* (completed or failed), and a committed schedule's starts
go to the fastest free labs, as the environment places them. So PS still picks, at every
decision, the generated policy with the best simulated CPE on the real problem.

Monte-Carlo (vectorised over simulations, :mod:`labsched.baselines.labs.il_simulation`): the
residual times of the running experiments are drawn with ``sample_residual`` from their elapsed
times and the durations of new experiments per (lab slot, stage); both are shared by all
compared policies (common random numbers). ``pi_i``'s plan depends on the simulated state at
its plan time; since plan times are grid points, each running experiment's best first stage for
every (plan time, number of new experiments) is tabulated once per decision
(``r x |plan times| x m`` entries, a max over boundaries), and the even-load rule then needs only
a few array operations per candidate number of new labs for all simulations at once. The plans
are the exact ones the scalar planner would make (a test checks it). Rows whose simulated
execution is known to equal another's (``pi_i`` and ``pi_{i-1}`` planning at the same epoch) or
to start nothing (plan time past ``h``) are not simulated twice.

**Scale.** Nothing is allocated per pair of grid points or per (simulation x experiment x
experiment): the tables are built lazily (one row per load asked for, the running labs' first
stages only for the (plan time, load) pairs a plan looks up), the candidate numbers of new labs
whose new labs alone already miss ``p`` are ruled out before the running labs are looked at
(an upper bound, so the choice is unchanged), plans are kept as a few integers per row and
simulated in chunks of bounded size, and prior counts of wide rows come from a sorted merge.
Memory is ``O(r x n_simulations)`` integers plus a constant; a decision costs about
``O(r x n_simulations x (m + r))`` array work and does not depend on ``epoch``, because PS plans
on a grid of at most ``max_plan_points`` points (default 100): when ``h / epoch`` is larger, the
planning grid is every ``s``-th epoch (``s = ceil(N / max_plan_points)``), stage boundaries and
``pi_i``'s plan times are on it, and PS re-decides only there (it follows its committed schedule,
which starts experiments at any epoch, in between). This is still policy switching over a
generator of IL policies (Theorem 2 holds for that generator); what changes is that a planned
boundary or plan time may fall up to ``s * epoch`` after the epoch the full grid would use.
Below the grid cap (``epoch >= h / 100``, the paper's settings included) PS is unchanged, decision for
decision (pinned by ``tests/test_scale.py``). Effect of the cap, measured on the paper's setting
at ``epoch = 0.01`` (500 grid points; the cap plans every 4th/5th/6th epoch), capped minus exact
PS on the same episodes: h=4 -0.10 +- 0.07 CPE (40 episodes), h=5 0.00 +- 0.14 (60), h=6
+0.23 +- 0.31 (40), completion 100% in both, for 9-19x less CPU per episode.

A decision with many candidates races them (``race_above``, default 3,000 (candidate,
simulation) pairs, so never with up to 14 running experiments, the paper's settings included):
every candidate is simulated on the first ``race_first`` (25) simulations; after 25, 50 and
100 simulations, those whose mean so far is below the best one's by more than ``race_z`` (3)
standard errors of the paired difference are dropped, and only the others run the next
simulations. All durations are drawn first, so a candidate that stays gets exactly the estimate
it gets without racing, and the decision differs only if a dropped candidate would have won.
At ``n = 200, l = 32`` (up to 34 candidates) this bounds a decision's cost without the loss of
simply simulating less (see ``docs/results/scale/README.md``).

Choosing ``n_simulations`` (default 200), measured on the paper's setting: against decisions
made with 8,000 simulations (about 140 sampled states per horizon), 200 simulations pick the
same action in 99-100% of states and lose 0.003-0.008 estimated CPE per decision (100: 0.02,
25: 0.03-0.05); over 200 episodes the mean CPE is flat from 25 to 400 simulations (h=5:
118.7-119.1, h=6: 135.4-135.6, standard errors 0.25 and 0.15). With 200, a decision that
simulates takes ~2-4 ms (median; ~10 ms when ten experiments run) and an episode 50-120 ms of
one core (h = 4, 5, 6), about 3x the cost of 50 simulations, whose decisions are already
almost as good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from labsched.baselines.base import BaselinePolicy, LabState
from labsched.baselines.labs.il_batch_plan import batch_row_plan
from labsched.baselines.labs.il_plan import GRID_TOL
from labsched.baselines.labs.il_tables import grid_tables
from labsched.baselines.labs.independent_lab import ILPlan, ScheduleTracker, snap_time
from labsched.baselines.labs.ps_lab_draws import ColumnLabs, needs_lab_draws
from labsched.baselines.labs.ps_simulation import plan_generator, simulate_candidates
from labsched.envs._lib.validation import check_int, check_real
from labsched.envs.labs.spec import LabSpec

__all__ = ["MAX_PLAN_POINTS", "RACE_ABOVE", "PSDecision", "PolicySwitching"]

#: Default most points of PS's planning grid (``max_plan_points``).
MAX_PLAN_POINTS = 100

#: Default number of (candidate, simulation) pairs above which a decision races (``race_above``).
RACE_ABOVE = 3_000


@dataclass
class PSDecision:
    """Record of one evaluated decision (kept in the episode memory for inspection).

    Attributes:
        time: decision time.
        labels: candidate names (``"pi0"``, ``"pi1"``, ..., ``"prev"`` for a committed schedule).
        estimates: estimated CPE of each candidate.
        chosen: label selected.
        action: experiments started.
        plan0: the IL plan ``pi_0`` would start from this state.
    """

    time: float
    labels: tuple[str, ...]
    estimates: tuple[float, ...]
    chosen: str
    action: int
    plan0: ILPlan | None = None


@dataclass
class _Memory:
    kind: str = "none"  # "none" | "wait" | "commit"
    target: int = 0  # ended experiments (completed or failed) at which a waiting policy plans
    tracker: ScheduleTracker | None = None
    history: list[PSDecision] = field(default_factory=list)


class PolicySwitching(BaselinePolicy):
    """Policy switching over the IL policy generator (see the module docstring).

    Args:
        spec: the problem.
        n_simulations: Monte-Carlo simulations per compared policy and decision.
        seed: seed of the simulations. With a seed, every decision's random numbers are derived
            from ``(seed, state)``, so decisions are reproducible and independent of the order
            in which episodes are run.
        completion_decisions: whether the environment decides at completions
            (``decide_on_completion``); it only changes how simulated overruns restart.
        keep_history: store a :class:`PSDecision` per evaluated decision in the episode memory.
        max_plan_points: most points of PS's planning grid (see "Scale" in the module
            docstring): when the decision grid has more than this many points before the
            horizon, PS plans and re-decides on every ``s``-th epoch only, the smallest ``s``
            that fits. The default covers every grid with ``epoch >= h / 100``, where PS is
            exactly the policy of the paper.
        race_above: a decision whose candidates need more than this many (candidate,
            simulation) pairs races them (see "Scale" in the module docstring); the default
            (3,000) never races with up to 15 candidates (up to 14 running experiments; the
            paper's settings have at most 10); ``None`` never races.
        race_first: simulations every candidate gets before racing drops any (default 25);
            racing looks again after twice, four times, ... as many.
        race_z: at each look, racing drops a candidate whose mean so far is below the best
            one's by more than ``race_z`` standard errors of their paired difference (default 3;
            ``inf`` never drops one).

    Attributes:
        plan_spec: the spec on the planning grid (``spec`` itself when ``s = 1``).
    """

    name = "ps"

    def __init__(
        self,
        spec: LabSpec,
        *,
        n_simulations: int = 200,
        seed: int | None = None,
        completion_decisions: bool = True,
        keep_history: bool = False,
        max_plan_points: int = MAX_PLAN_POINTS,
        race_above: int | None = RACE_ABOVE,
        race_first: int = 25,
        race_z: float = 3.0,
    ) -> None:
        super().__init__(spec, seed=seed)
        self.n_simulations = check_int("n_simulations", n_simulations, 1)
        self.completion_decisions = bool(completion_decisions)
        self.keep_history = bool(keep_history)
        self.max_plan_points = check_int("max_plan_points", max_plan_points, 2)
        self.race_above = None if race_above is None else check_int("race_above", race_above, 1)
        self.race_first = check_int("race_first", race_first, 2)
        self.race_z = check_real("race_z", race_z, 0.0, finite=False)
        self.n_evaluations = 0
        n_grid = int(math.ceil(spec.horizon / spec.epoch - GRID_TOL))
        stride = max(1, math.ceil(n_grid / self.max_plan_points))
        self.plan_spec = spec if stride == 1 else spec.replace(epoch=spec.epoch * stride)
        self._tables = grid_tables(self.plan_spec)

    # ------------------------------------------------------------------ protocol
    def begin_episode(self, state: LabState) -> _Memory:
        return _Memory()

    def history(self, env_index: int = 0) -> list[PSDecision]:
        """Evaluated decisions of the current episode of environment ``env_index``.

        Recorded only with ``keep_history=True`` (empty otherwise).
        """
        memory = self._memory.get(env_index)
        return list(memory.history) if isinstance(memory, _Memory) else []

    def act(self, state: LabState, memory: _Memory) -> int:
        spec = self.spec
        t = snap_time(state.time, spec)
        if memory.tracker is not None:
            memory.tracker.observe(t, state.busy)
        if state.remaining == 0 or state.max_valid == 0:
            return 0
        pe = self.plan_spec.epoch
        g = round(t / pe)
        on_grid = abs(t - g * pe) <= 1e-9 * max(spec.horizon, 1.0) and g < self._tables.n_points
        if not on_grid:
            return self._follow(state, t, memory)
        return self._decide(state, t, g, memory)

    # ------------------------------------------------------------------ helpers
    def _follow(self, state: LabState, t: float, memory: _Memory) -> int:
        if memory.kind != "commit" or memory.tracker is None:
            return 0
        due = memory.tracker.due(t)
        if not due:
            return 0
        return memory.tracker.start(t, state.busy, min(len(due), state.max_valid))

    def _rng(self, g: int, state: LabState, elapsed: np.ndarray) -> np.random.Generator:
        if self.seed is None:
            return self.rng
        key = [g, state.completed, state.started, *(int(round(float(e) * 1e6)) for e in elapsed)]
        ss = np.random.SeedSequence(int(self.seed) % (1 << 63), spawn_key=tuple(max(k, 0) for k in key))
        return np.random.default_rng(ss)

    def _decide(self, state: LabState, t: float, g0: int, memory: _Memory) -> int:
        spec = self.spec
        busy = np.asarray(state.busy, dtype=bool)
        phys = np.flatnonzero(busy)
        el = np.asarray(state.elapsed, dtype=float)[phys]
        order = sorted(range(phys.size), key=lambda j: (-el[j], phys[j]))
        phys, el = phys[order], el[order]
        r, m = int(phys.size), state.remaining
        with_prev = memory.kind == "commit" and memory.tracker is not None and memory.tracker.remaining > 0
        labels = [f"pi{i}" for i in range(r + 1)] + (["prev"] if with_prev else [])
        incumbent = "prev" if with_prev else None
        ended = state.started - state.running  # completed, or failed
        if memory.kind == "wait":
            incumbent = f"pi{min(max(memory.target - ended, 0), r)}"
        n_sim = self.n_simulations if len(labels) > 1 else 0
        rng = self._rng(g0, state, el)
        columns, run_fail = None, None
        if needs_lab_draws(spec):
            columns = ColumnLabs.at(spec, phys)
            residual, run_fail = columns.running_draws(rng, el, n_sim)
            run_end = t + residual
        else:
            run_end = t + spec.duration.sample_residual(rng, np.broadcast_to(el, (n_sim, r)))

        # Plan rows: row 0 is pi_0 (now, everything running); then pi_i for each simulation,
        # made at the first planning point at or after the i-th completion (row 1 + (i - 1) * E + e).
        gen = plan_generator(self.plan_spec, g0, el, run_end, m)
        plan0 = batch_row_plan(
            self.plan_spec, gen.batch_plan(np.array([0])), 0, g0, el, gen.running, int(gen.k_index[0])
        )

        if n_sim:
            fixed = None
            if with_prev:
                assert memory.tracker is not None
                fixed = self._fixed_from_tracker(memory.tracker, phys, r)
            values = simulate_candidates(
                spec,
                self.plan_spec,
                t,
                state.completed,
                m,
                gen,
                fixed,
                rng,
                completion_decisions=self.completion_decisions,
                columns=columns,
                run_fail=run_fail,
                racing=self._racing(len(labels), n_sim),
                keep=None if incumbent is None else labels.index(incumbent),
            )
            estimates = tuple(float(v) for v in values)
            best = max(estimates)
            ties = [lab for lab, v in zip(labels, estimates, strict=True) if v == best]
            choice = incumbent if incumbent in ties else ties[0]
            self.n_evaluations += 1
        else:
            choice, estimates = "pi0", (math.nan,)
        if choice == "pi0":
            order = spec.lab_order if spec.heterogeneous else None
            memory.kind, memory.tracker = "commit", ScheduleTracker(plan0, phys, spec.epoch, order)
            action = memory.tracker.start(t, busy, min(plan0.n_new_labs, state.max_valid))
        elif choice == "prev":
            action = self._follow(state, t, memory)
        else:
            memory.kind, memory.tracker = "wait", None
            memory.target = ended + int(choice[2:])
            action = 0
        if self.keep_history:
            memory.history.append(PSDecision(t, tuple(labels), estimates, choice, action, plan0))
        return action

    def _racing(self, n_candidates: int, n_sim: int) -> tuple[int, float] | None:
        """``(first, z)`` when this decision races its candidates, else None."""
        if self.race_above is None or n_candidates * n_sim <= self.race_above or n_sim <= self.race_first:
            return None
        return self.race_first, self.race_z

    @staticmethod
    def _fixed_from_tracker(
        tracker: ScheduleTracker, phys: np.ndarray, r: int
    ) -> tuple[list[float], list[list[float]]]:
        """Per-column ideal stage end and stage lengths of a committed schedule."""
        ideal = [0.0] * r
        lens: list[list[float]] = [[] for _ in range(r)]
        col_of = {int(p): j for j, p in enumerate(phys)}
        for p, ideal_end, lengths in tracker.snapshot():
            if p >= 0 and p in col_of:
                j = col_of[p]
                ideal[j] = ideal_end
                lens[j] = list(lengths)
            elif lengths:
                ideal.append(ideal_end)
                lens.append(list(lengths))
        return ideal, lens

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(spec={self.spec!r}, n_simulations={self.n_simulations}, seed={self.seed!r})"
