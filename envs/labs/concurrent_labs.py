"""Concurrent stochastic-duration experiments as a Gymnasium environment."""

# size: over 500 lines, about 150 of them the class docstring documenting the reference
# environment's spaces, rewards, options and extensions; the stepping code is kept in one place.

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from labsched.envs import bo
from labsched.envs._lib.validation import check_bool
from labsched.envs.bo.duration_fn import duration_scales, make_duration_fn
from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.engine import TIME_RTOL, time_tolerance
from labsched.envs.labs.env_io import (
    as_count,
    as_lab_choice,
    check_env_options,
    check_reset_options,
    dict_observation_space,
    forced_durations,
    lab_action_mask,
    mask_templates,
    readonly,
)
from labsched.envs.labs.env_views import EnvViews
from labsched.envs.labs.lab_columns import draw_episode, lab_columns
from labsched.envs.labs.records import ExperimentRecord
from labsched.envs.labs.spec import LabSpec

__all__ = ["ConcurrentLabsEnv", "ExperimentRecord"]


class ConcurrentLabsEnv(EnvViews, gym.Env):
    """Scheduling ``n`` stochastic-duration experiments on ``l`` labs before horizon ``h``.

    Azimi, Fern & Fern's budgeted setting: ``l`` labs run experiments concurrently, durations
    are i.i.d. from a known law ``p_d``, at most ``n`` experiments may be run and results count
    only if they complete by ``h``. The agent decides *when* and *how many* experiments to start;
    which inputs they test is the business of a selector (CPE mode needs none).

    ## Time and decision points
    Time is continuous. The agent acts at the decision points ``0, Delta, 2 Delta, ...``
    (``Delta = spec.epoch``) and, when ``decide_on_completion`` is true (the default), also at the
    exact moment any experiment completes, so that an online policy can refill a lab the
    instant it frees. Between decision points each completion is processed at its exact time;
    simultaneous completions are processed together. All ``n`` durations are drawn at
    :meth:`reset` in start order, so the ``i``-th experiment started has the same duration under
    every policy for a given seed (common random numbers).

    ## Failures and heterogeneous labs (beyond the paper; off by default)
    ``LabSpec(failure_prob=q)`` (a float, or one per lab): an experiment fails with probability
    ``q`` of its lab, discovered when it ends; its lab time and budget slot are spent, it yields
    no result, adds nothing to CPE and does not count in later prior counts. ``info["failed"]``
    counts failures and the final info has ``failed_log``. ``LabSpec(lab_durations=[...],
    lab_speeds=[...])``: lab ``i``'s durations are ``lab_durations[i]`` divided by
    ``lab_speeds[i]``; ``k`` starts go to the free labs fastest in expectation (lowest index
    first among equals) and the observation gains ``lab_duration``. Draws stay common random
    numbers (:mod:`~labsched.envs.labs.lab_columns`): failure uniforms are drawn after the
    durations, only when something can fail, so the default episodes are the paper's.

    ## Action space
    ``action="count"`` (default): ``Discrete(l + 1)``, start ``k`` new experiments now, in the
    free labs fastest in expectation (the lowest-numbered free labs when labs are equal).
    ``k`` is valid when ``k <= free labs`` and ``k <= n - started``; :meth:`action_masks` and
    ``info["action_mask"]`` give the valid set (``k = 0`` is always valid). An invalid ``k``
    is, with ``invalid_action="clip"`` (default), reduced to the largest valid number and
    reported in ``info["clipped"]``; with ``invalid_action="raise"`` it raises ``ValueError``.

    ``action="labs"``: ``MultiBinary(l)``, start one experiment on exactly the labs marked 1
    (useful when labs differ). The experiments take the next indices in start order, fastest
    chosen lab first, so choosing the ``k`` fastest free labs is the count action ``k``, draw for
    draw. The mask is sb3-contrib's ``MultiBinary`` convention: ``(2 l,)`` bool, per lab
    ``[0 allowed, 1 allowed]`` (``0`` always; ``1`` when the lab is free and budget remains).
    The per-lab mask cannot say "at most ``n - started`` labs in all": choosing a busy lab, or
    more labs than the remaining budget, is invalid and, with ``invalid_action="clip"``, the busy
    labs are dropped and the chosen free labs kept fastest first up to the budget (``clipped``
    True, ``info["requested_action"]`` the action given); with ``"raise"`` it raises
    ``ValueError``.

    ## Observation space
    A ``Dict`` (keys in Gymnasium's sorted order), all values ``float32`` except ``busy``:

    | key                | shape | range          | meaning                                         |
    |--------------------|-------|----------------|-------------------------------------------------|
    | ``busy``           | (l,)  | {0, 1} (int8)  | lab ``i`` is running an experiment              |
    | ``completed``      | (1,)  | [0, 1]         | completed experiments / n                       |
    | ``elapsed``        | (l,)  | [0, h / E[D]]  | running time of lab ``i``'s experiment / E[D]    |
    | ``lab_duration``   | (l,)  | > 0            | lab ``i``'s expected duration / E[D] (only with  |
    |                    |       |                | ``lab_durations`` or ``lab_speeds``)             |
    | ``remaining_budget``| (1,) | [0, 1]         | (n - started) / n                               |
    | ``remaining_time`` | (1,)  | [0, 1]         | (h - t) / h                                     |
    | ``started``        | (1,)  | [0, 1]         | started experiments / n                         |

    ``E[D]`` is the mean of ``spec.scheduler_view.duration`` (``spec.duration``, or the first
    guess when ``spec.known_durations`` is False); ``completed`` counts successful completions.
    Counts are exact after ``round(x * n)``. With ``flatten=True`` the observation is the
    ``float32`` vector ``gymnasium.spaces.flatten`` makes of that dict (length ``2 l + 4``, or
    ``3 l + 4`` with ``lab_duration``; same order), so ``MlpPolicy`` works directly.

    ## Rewards
    ``reward="cpe"``: when an experiment completes by ``h`` the reward is its prior count (the
    number of experiments completed when it was started), so the return of an episode is the
    cumulative prior experiments (CPE) of the completed set. ``normalize_reward=True`` divides by
    the sequential maximum ``n (n - 1) / 2``.

    ``reward="regret"`` runs the budgeted Bayesian optimisation the schedule drives (section 6
    of the paper): ``objective`` (a registered name such as ``"hartmann3"``, an ``Objective``,
    default ``"cosines"``) is optimised by a GP; every started experiment gets its input from
    ``selector`` (``"kb-ei"``, ``"simulation-matching"``, ``"thompson"``, ``"random"`` or an
    object with ``select(gp, X_pending, k, rng)``) at the moment it starts, and its outcome
    (plus Gaussian noise of std ``noise_std``) joins the GP when it completes. The episode starts
    from ``n_initial`` random observations (the paper's 5 for d <= 3, 20 otherwise). The reward
    is 0 until the last step, which pays minus the regret: the optimum minus the true value at the
    predicted best observed input (highest posterior mean). An ``objective`` given with
    ``reward="cpe"`` runs the same optimisation while rewarding CPE, so ``info["regret"]`` is
    reported in both modes. ``reward="information"`` runs the same optimisation and its last step
    pays minus the integrated posterior variance of the GP over a fixed Sobol' set of the box
    (``info["integrated_variance"]``; ``info["rmse"]`` is the posterior mean's error against the
    true function on that set; both are reported in every mode with an objective). ``gp``:
    ``"paper"`` (fixed kernel width), ``"fit"`` (marginal likelihood) or ``GPHyperparameters``.
    Same seed, same initial design, same noise draws.

    ``duration_fn`` (needs an optimisation): an experiment started at input ``x`` takes its base
    draw (on its lab) times ``duration_fn(x)`` (:mod:`labsched.envs.bo.duration_fn`).

    ## Episode end
    ``terminated=True`` when all ``n`` experiments have ended (completed or failed) or time
    reaches ``h``; experiments still running at ``h`` are lost. ``info["cost"]`` is 1.0 on the
    final step when some experiment had not ended by ``h``. ``truncated`` is always False (the
    remaining time is part of the observation).

    ## Info
    Every step: ``cpe`` (running, unnormalised), ``completed``, ``started``, ``running``,
    ``time``, ``action_mask``, ``clipped``. At the end also ``log`` (tuple of
    :class:`ExperimentRecord` of the completed experiments, in completion order) and
    ``unfinished`` (records of experiments still running at ``h``, ``end=None``); with an
    objective also ``regret``, ``best_x``, ``best_value``, ``X`` and ``y`` (all observed inputs
    and outcomes, initial design first) and ``n_initial``.

    ## Rendering
    ``"ansi"``: a compact text picture of labs and time. ``"rgb_array"``: a Gantt chart of the
    execution so far (needs matplotlib, imported lazily).

    Args:
        spec: the problem (defaults to the paper's setting ``LabSpec()``), or its
            :meth:`LabSpec.to_dict` form (what the suite ids are registered with, so that
            ``env.spec.to_json()`` round-trips through ``EnvSpec.from_json``).
        decide_on_completion: add a decision point at every completion time.
        invalid_action: ``"clip"`` or ``"raise"``.
        action: ``"count"`` (``Discrete(l + 1)``) or ``"labs"`` (``MultiBinary(l)``), see above.
        reward: ``"cpe"``.
        normalize_reward: divide CPE rewards by ``n (n - 1) / 2``.
        flatten: return the flat ``Box`` observation instead of the ``Dict``.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        duration_fn: ``None``, a callable ``x -> scale > 0`` or a built-in cost surface name.
        **overrides: individual ``LabSpec`` fields (``n_labs=4``, ``known_durations=False``, ...).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    # size: 8x lines: one keyword per documented option, each checked and stored; spaces last.
    def __init__(
        self,
        spec: LabSpec | Mapping[str, Any] | None = None,
        *,
        decide_on_completion: bool = True,
        invalid_action: Literal["clip", "raise"] = "clip",
        reward: Literal["cpe", "regret", "information"] = "cpe",
        normalize_reward: bool = False,
        objective: Any = None,
        selector: Any = "kb-ei",
        noise_std: float = 0.0,
        n_initial: int | None = None,
        gp: Any = "paper",
        duration_fn: Any = None,
        flatten: bool = False,
        render_mode: str | None = None,
        action: Literal["count", "labs"] = "count",
        **overrides: Any,
    ) -> None:
        if spec is None:
            spec = LabSpec()
        elif isinstance(spec, Mapping):
            try:
                spec = LabSpec.from_dict(dict(spec))
            except TypeError as err:
                raise TypeError(f"spec mapping is not in LabSpec.to_dict() form: {err}") from None
        elif not isinstance(spec, LabSpec):
            raise TypeError(
                "spec must be a labsched.LabSpec or a mapping of LabSpec.to_dict() form, got "
                f"{type(spec).__name__}"
            )
        if overrides:
            spec = spec.replace(**overrides)
        check_env_options(invalid_action, action, reward, render_mode, self.metadata["render_modes"])
        self.lab_spec: LabSpec = spec
        self.decide_on_completion = check_bool("decide_on_completion", decide_on_completion)
        self.invalid_action = invalid_action
        self.action_mode = action
        self.reward_mode = reward
        self.normalize_reward = check_bool("normalize_reward", normalize_reward)
        self.flatten = check_bool("flatten", flatten)
        self.render_mode = render_mode

        n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
        self._n, self._l, self._h, self._epoch = n, nl, h, spec.epoch
        self._dist: DurationModel = spec.duration
        # Time unit of the observation: E[D] of the law schedulers know (the first guess).
        self._mean = float(spec.scheduler_view.duration.mean)
        self._inv_mean = 1.0 / self._mean
        # Read-only mask templates, copied into every info: masks[k] allows actions 0..k.
        self._masks = mask_templates(nl)
        self._setup_labs(spec)
        # Read-only (1,)-arrays of c / n, the templates of the count fields.
        self._fractions = [readonly(np.array([c / n], dtype=np.float32)) for c in range(n + 1)]
        self._rt_template = np.zeros(1, dtype=np.float32)
        self._reward_scale = 1.0 / max(spec.max_cpe, 1) if self.normalize_reward else 1.0
        if reward in ("regret", "information") and objective is None:
            objective = "cosines"
        self._bo = None
        if objective is not None:
            self._bo = bo.BOEpisode(
                objective,
                bo.make_selector(selector),
                n,
                n_initial=n_initial,
                noise_std=noise_std,
                gp=gp,
            )
        self._duration_fn = None
        if duration_fn is not None:
            if self._bo is None:
                raise ValueError(
                    "duration_fn scales durations by the experiment's input: it needs an optimisation "
                    "(reward='regret' or 'information', or an objective)"
                )
            self._duration_fn = make_duration_fn(duration_fn, self._bo.bounds)

        # Decision point j is at j * epoch, the horizon from the first point at or past it
        # (engine.grid_times, inlined per point in _advance); event times closer than _tol are one instant.
        self._grid_cut = h - TIME_RTOL * h
        self._tol = time_tolerance(h)
        self.action_space = spaces.MultiBinary(nl) if action == "labs" else spaces.Discrete(nl + 1)
        self.dict_observation_space = dict_observation_space(nl, h, self._mean, self._lab_obs)
        if self._lab_obs is not None:  # float32 once the space has checked the values fit
            self._lab_obs = readonly(self._lab_obs.astype(np.float32))
        if self.flatten:
            self.observation_space = spaces.flatten_space(self.dict_observation_space)
        else:
            self.observation_space = self.dict_observation_space

        self._reset_state()
        self._done = True  # no episode yet: step() before reset() raises ResetNeeded
        self._has_reset = False

    def _setup_labs(self, spec: LabSpec) -> None:
        """Per-lab settings (failures, heterogeneous labs) as plain lists for the step loop."""
        cols = lab_columns(spec)
        self._laws = cols.laws
        self._order = range(spec.n_labs) if cols.order is None else cols.order.tolist()
        self._lab_law = None if cols.law_of is None else cols.law_of.tolist()
        self._lab_speed = None if cols.speed is None else cols.speed.tolist()
        self._lab_q = None if cols.fail is None else cols.fail.tolist()
        self._plain = cols.law_of is None and cols.speed is None
        self._lab_obs = None
        if spec.heterogeneous:  # each lab's expected duration / E[D]
            self._lab_obs = np.array(spec.scheduler_view.lab_mean_durations, dtype=float) / self._mean

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        nl = self._l
        self._t = 0.0
        self._next_grid = 1
        self._lab_start = [0.0] * nl
        self._lab_end = [math.inf] * nl
        self._lab_prior = [0] * nl
        self._lab_index = [-1] * nl
        self._busy = [0] * nl
        self._n_running = 0
        self._started = 0
        self._completed = 0
        self._failed = 0
        self._cpe = 0
        self._log: list[ExperimentRecord] = []
        self._failed_log: list[ExperimentRecord] = []
        self._lab_fail = [False] * nl
        self._durations: list[float] = []
        self._table: list[list[float]] = []
        self._fail_u: list[float] = []
        self._busy_np = np.zeros(nl, dtype=np.int8)
        self._elapsed_scale = np.zeros(nl)  # 1 / E[D] for busy labs, 0 for idle ones
        self._elapsed_offset = np.zeros(nl)  # start / E[D] for busy labs
        self._next_end = math.inf
        self._done = False
        self._event = False
        self._refresh_event_fields()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a new episode.

        Args:
            seed: seeds ``self.np_random``, the only source of randomness.
            options: ``{"durations": [...]}`` forces the ``n`` durations (in start order),
                e.g. to replay an execution or share draws between schedulers;
                ``{"initial_points": X0}`` forces the initial design when the env runs an
                optimisation (an objective, or ``reward="regret"`` / ``"information"``).

        Returns:
            The first observation and the info dict.

        Raises:
            TypeError: when ``options`` is not a dict (or None).
            ValueError: for an unknown option key or a bad value.
        """
        check_reset_options(options, self._bo is not None)
        forced = None if options is None else options.get("durations")
        if forced is not None:
            if len(self._laws) > 1:
                raise ValueError(
                    "options['durations'] needs labs sharing one duration law; LabSpec.lab_durations "
                    "gives different laws (their draws are quantiles, see labsched.envs.labs.lab_columns)"
                )
            forced = forced_durations(forced, self._n)
        super().reset(seed=seed)
        self._reset_state()
        self._has_reset = True
        if forced is not None:
            self._durations = forced
            self._table = [self._durations]
            if self._lab_q is not None:
                self._fail_u = self.np_random.random(self._n).tolist()
        else:
            table, fail_u = draw_episode(self.lab_spec, self.np_random, self._laws)
            self._table = table.tolist()
            self._durations = self._table[0]
            if fail_u is not None:
                self._fail_u = fail_u.tolist()
        if self._bo is not None:
            self._bo.reset(self.np_random, None if options is None else options.get("initial_points"))
        return self._observation(), self._info(False)

    # ------------------------------------------------------------------ API
    def action_masks(self) -> np.ndarray:
        """Boolean mask of valid actions in sb3-contrib's MaskablePPO convention: ``(l + 1,)``
        for ``k = 0..l`` (``action="count"``), or ``(2 l,)``, per lab ``[0 allowed, 1 allowed]``
        (``action="labs"``)."""
        if self.action_mode == "labs":
            return self._lab_mask()
        return self._masks[self._max_valid()].copy()

    def _lab_mask(self) -> np.ndarray:
        return lab_action_mask(self._busy_np == 0, self._started < self._n)

    def _max_valid(self) -> int:
        return min(self._l - self._n_running, self._n - self._started)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._done:
            if not self._has_reset:
                raise ResetNeeded("step() called before reset(); call reset() first")
            raise RuntimeError("step() called after the episode ended; call reset() first")
        nl = self._l
        if self.action_mode == "labs":
            return self._step_on_labs(action)
        k = action if action.__class__ is int and 0 <= action <= nl else as_count(action, nl)
        max_valid = min(nl - self._n_running, self._n - self._started)
        clipped = False
        if k > max_valid:
            if self.invalid_action == "raise":
                raise ValueError(
                    f"invalid action {k}: at most {max_valid} experiments can start now "
                    f"(free labs={nl - self._n_running}, "
                    f"unstarted experiments={self._n - self._started})"
                )
            requested, k, clipped = k, max_valid, True
        if k:
            self._start(k)
        return self._finish_step(clipped, requested if clipped else None)

    def _step_on_labs(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """:meth:`step` for ``action="labs"``: start on exactly the chosen free labs."""
        chosen = as_lab_choice(action, self._l)
        busy, budget = self._busy, self._n - self._started
        labs = [lab for lab in self._order if chosen[lab]]
        valid = [lab for lab in labs if not busy[lab]][:budget]
        clipped = len(valid) < len(labs)
        if clipped and self.invalid_action == "raise":
            taken = [lab for lab in labs if busy[lab]]
            raise ValueError(
                f"invalid action {chosen.astype(int).tolist()}: "
                + (f"labs {taken} are busy" if taken else f"{len(labs)} labs chosen")
                + f" (free labs={self._l - self._n_running}, unstarted experiments={budget})"
            )
        if valid:
            self._start(len(valid), valid)
        return self._finish_step(clipped, chosen.astype(np.int8) if clipped else None)

    def _finish_step(self, clipped: bool, requested: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advance to the next decision point and build the step's result."""
        nl = self._l
        reward = self._advance()
        if self._event:
            self._refresh_event_fields()
            self._event = False
        done = self._done
        info = {
            "cpe": self._cpe,
            "completed": self._completed,
            "started": self._started,
            "running": self._n_running,
            "time": self._t,
            "action_mask": (
                self._masks[min(nl - self._n_running, self._n - self._started)].copy()
                if self.action_mode == "count"
                else self._lab_mask()
            ),
            "clipped": clipped,
            "cost": 1.0 if done and self._completed + self._failed < self._n else 0.0,
        }
        if self._lab_q is not None:
            info["failed"] = self._failed
        if clipped:
            info["requested_action"] = requested
        if done:
            self._add_final_info(info)
        if self.reward_mode == "regret":
            reward = -info["regret"] if done else 0.0
        elif self.reward_mode == "information":
            reward = -info["integrated_variance"] if done else 0.0
        else:
            reward *= self._reward_scale
        return self._observation(), reward, done, False, info

    def _start(self, k: int, labs: list[int] | None = None) -> None:
        """Start ``k`` experiments on the free labs fastest first, or on ``labs`` (free, in
        start order, ``k = len(labs)``)."""
        t, busy, ends = self._t, self._busy, self._lab_end
        i, completed = self._started, self._completed
        scales = None
        if self._duration_fn is not None:  # inputs first: durations depend on them
            scales = duration_scales(self._duration_fn, self._bo.start(list(range(i, i + k))))
        for lab in self._order if labs is None else labs:
            if not busy[lab]:
                busy[lab] = 1
                d = self._durations[i] if self._plain else self._duration_on(lab, i)
                end = t + (d if scales is None else d * scales[i - self._started])
                if self._lab_q is not None:
                    self._lab_fail[lab] = self._fail_u[i] < self._lab_q[lab]
                self._lab_start[lab] = t
                ends[lab] = end
                self._lab_prior[lab] = completed
                self._lab_index[lab] = i
                self._busy_np[lab] = 1
                self._elapsed_scale[lab] = self._inv_mean
                self._elapsed_offset[lab] = t * self._inv_mean
                if end < self._next_end:
                    self._next_end = end
                i += 1
                k -= 1
                if k == 0:
                    break
        if self._bo is not None and scales is None:
            self._bo.start(list(range(self._started, i)))
        self._n_running += i - self._started
        self._started = i
        self._event = True

    def _duration_on(self, lab: int, i: int) -> float:
        """Duration of the ``i``-th experiment started when it runs on ``lab``."""
        d = self._table[0 if self._lab_law is None else self._lab_law[lab]][i]
        return d if self._lab_speed is None else d / self._lab_speed[lab]

    def _advance(self) -> float:
        """Move time to the next decision point, processing completions on the way."""
        t_grid = self._next_grid * self._epoch
        if t_grid > self._grid_cut:
            t_grid = self._h
        t_end = self._next_end
        tol = self._tol
        if self.decide_on_completion and t_end < t_grid - tol:
            t_next = t_end
        else:
            t_next = t_grid
            self._next_grid += 1
        reward = 0
        t_done = t_next + tol
        if t_end <= t_done:
            busy, ends = self._busy, self._lab_end
            batch, failed = [], []
            for lab in range(self._l):
                end = ends[lab]
                if end <= t_done:
                    prior = self._lab_prior[lab]
                    rec = ExperimentRecord(self._lab_index[lab], lab, self._lab_start[lab], end, prior)
                    if self._lab_fail[lab]:
                        failed.append(rec)
                    else:
                        reward += prior
                        batch.append(rec)
                    busy[lab] = 0
                    ends[lab] = math.inf
                    self._busy_np[lab] = 0
                    self._elapsed_scale[lab] = 0.0
                    self._elapsed_offset[lab] = 0.0
            if len(batch) > 1:
                batch.sort(key=_end_key)
            if self._bo is not None:
                for rec in batch:
                    self._bo.complete(rec.index)
            self._log.extend(batch)
            self._cpe += reward
            self._completed += len(batch)
            self._n_running -= len(batch)
            if failed:
                self._record_failures(failed)
            self._next_end = min(ends)
            self._event = True
        self._t = t_next
        if self._completed + self._failed == self._n or t_next >= self._h:
            self._done = True
        return float(reward)

    def _record_failures(self, failed: list[ExperimentRecord]) -> None:
        failed.sort(key=_end_key)
        if self._bo is not None:
            for rec in failed:
                self._bo.discard(rec.index)
        self._failed_log.extend(failed)
        self._failed += len(failed)
        self._n_running -= len(failed)


def _end_key(rec: ExperimentRecord) -> tuple[float, int]:
    return (rec.end if rec.end is not None else math.inf, rec.index)
