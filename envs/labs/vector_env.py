"""The concurrent-labs environment as a native Gymnasium vector environment (NumPy-batched)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from labsched.envs._lib.validation import check_bool, check_choice, check_int
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv, ExperimentRecord
from labsched.envs.labs.engine import LabsBatch
from labsched.envs.labs.env_io import (
    as_lab_choices,
    check_reset_options,
    forced_duration_array,
    lab_action_mask,
)
from labsched.envs.labs.lab_columns import draw_ahead_columns, draw_episode_columns, episodes_per_draw
from labsched.envs.labs.observation import BatchObserver
from labsched.envs.labs.spec import LabSpec

__all__ = ["ConcurrentLabsVectorEnv", "make_vector_env"]


class ConcurrentLabsVectorEnv(VectorEnv):
    """``num_envs`` episodes of :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv`
    stepped as one batched NumPy state (:class:`~labsched.envs.labs.engine.LabsBatch`).

    Built by ``gymnasium.make_vec("labsched/ConcurrentLabs-v0", num_envs=N,
    vectorization_mode="vector_entry_point", **kwargs)`` (the default mode for this id) or
    directly. It takes the single environment's keyword arguments and follows its semantics
    exactly: sub-environment ``i`` after ``reset(seed=s)`` is seeded with ``s + i`` (Gymnasium's
    convention) and then produces, action for action, the observations, rewards, terminations and
    infos the single environment produces after ``reset(seed=s + i)`` (a test pins the two
    together over thousands of random episodes).

    ## Spaces
    ``single_observation_space`` and ``single_action_space`` are the single environment's
    (``Dict`` or flat ``Box`` observation, ``Discrete(l + 1)`` actions); ``observation_space`` and
    ``action_space`` are their batched forms (``MultiDiscrete`` actions, an array of ``N``
    numbers of experiments to start). :meth:`action_masks` returns the ``(N, l + 1)`` bool masks.
    With ``action="labs"`` the single action space is ``MultiBinary(l)`` (start on exactly the
    labs marked 1, see the single environment), ``action_space`` is ``MultiBinary((N, l))`` and
    :meth:`action_masks` returns sb3-contrib's ``(N, 2 l)`` masks (per lab ``[0 allowed,
    1 allowed]``); ``requested_action`` is then the ``(N, l)`` choice where it was clipped.

    ## Rewards and infos
    As in the single environment (CPE reward, ``normalize_reward``), batched in Gymnasium's vector
    info convention (each key an array with a ``_key`` mask): ``cpe``, ``completed``, ``started``,
    ``running``, ``time``, ``action_mask``, ``clipped``, ``cost`` (1.0 on the final step of an
    episode that did not complete all ``n`` experiments by ``h``), ``requested_action`` where an
    action was clipped, and at the end of an episode ``log`` and ``unfinished`` (object arrays of
    record tuples) for the sub-environments that ended. Specs with failures add ``failed`` every
    step and ``failed_log`` at the end; heterogeneous labs add the ``lab_duration`` observation
    key (the single environment documents both).

    ## Autoreset
    ``metadata["autoreset_mode"]`` is ``autoreset_mode``: ``NEXT_STEP`` (Gymnasium's default: the
    step after an episode ends resets that sub-environment, ignores its action and returns its
    first observation with reward 0; what CleanRL-style loops expect) or ``SAME_STEP`` (the ending
    step resets at once, returns the new first observation and puts the last one in
    ``info["final_obs"]`` and the last info in ``info["final_info"]``; what stable-baselines3
    expects, see :class:`labsched.agents.LabsVecEnv`).

    Regret and information modes run a Gaussian process per episode and are not batched:
    :func:`make_vector_env` returns Gymnasium's ``SyncVectorEnv`` of single environments for them.

    Args:
        num_envs: number ``N`` of sub-environments (>= 1).
        spec: the problem (default: the paper's setting).
        decide_on_completion: add a decision point at every completion time.
        invalid_action: ``"clip"`` or ``"raise"`` (an invalid number of starts for any
            sub-environment raises ``ValueError`` before any state changes).
        action: ``"count"`` (``Discrete(l + 1)``, default) or ``"labs"`` (``MultiBinary(l)``).
        normalize_reward: divide CPE rewards by ``n (n - 1) / 2``.
        flatten: flat ``Box`` observations instead of ``Dict``.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``AutoresetMode.SAME_STEP``.
        episode_log: put ``log`` and ``unfinished`` in the final infos (building the records of
            every ended episode is the largest cost of a step; training turns it off).
        **overrides: individual ``LabSpec`` fields.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        spec: LabSpec | None = None,
        *,
        decide_on_completion: bool = True,
        invalid_action: Literal["clip", "raise"] = "clip",
        normalize_reward: bool = False,
        flatten: bool = False,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        episode_log: bool = True,
        action: Literal["count", "labs"] = "count",
        **overrides: Any,
    ) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        # The single env validates the spec and the options and owns the space definitions.
        self._single = ConcurrentLabsEnv(
            spec,
            decide_on_completion=decide_on_completion,
            invalid_action=invalid_action,
            normalize_reward=normalize_reward,
            flatten=flatten,
            action=action,
            **overrides,
        )
        self.action_mode = action
        self.lab_spec = spec = self._single.lab_spec
        self.decide_on_completion = check_bool("decide_on_completion", decide_on_completion)
        self.invalid_action = check_choice("invalid_action", invalid_action, ("clip", "raise"))
        self.flatten = check_bool("flatten", flatten)
        self.normalize_reward = check_bool("normalize_reward", normalize_reward)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.episode_log = check_bool("episode_log", episode_log)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.single_observation_space = self._single.observation_space
        self.single_action_space = self._single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._n, self._l = spec.n_experiments, spec.n_labs
        self._reward_scale = 1.0 / max(spec.max_cpe, 1) if self.normalize_reward else 1.0
        self._batch = LabsBatch(
            spec,
            self.num_envs,
            decide_on_completion=self.decide_on_completion,
            track_experiments=self.episode_log,
        )
        self._rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(self.num_envs)]
        # NEXT_STEP: the sub-environments whose episode ended on the last step (reset on this one).
        self._pending = np.zeros(0, dtype=np.intp)
        self._all_true = np.ones(self.num_envs, dtype=bool)
        self._all_true.flags.writeable = False  # shared by every info mask that is all True
        self._needs_reset = True
        self._lab_range = np.arange(self._l + 1)
        # Row m: the mask of an env whose largest valid action is m (one gather per step).
        self._mask_rows = self._lab_range[None, :] <= self._lab_range[:, None]
        # Largest valid actions and (private) mask of the current state, computed once per state.
        self._max_valid: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._fails = spec.has_failures
        # Draws of each sub-env's next episodes, taken ahead in bulk (one call for many sub-envs,
        # several episodes per generator call when the law allows): a sub-env's generator is used
        # only for its episodes' draws, in order, so drawing early gives the same numbers. Without
        # failures only: a forced-duration reset draws nothing, so the cached draws stay next in
        # the stream. _ahead[:, e] holds sub-env e's episodes in order, the next at Q - left[e].
        laws = self._batch.lab_columns.laws
        self._ahead_q = episodes_per_draw(spec, laws, self.num_envs)
        self._ahead = np.empty((self._ahead_q, self.num_envs, len(laws), spec.n_experiments))
        self._ahead_left = np.zeros(self.num_envs, dtype=np.int64)  # episodes drawn, not yet used
        self._lab_obs = self._single._lab_obs  # float32 (l,) expected durations / E[D], or None
        self._observer = BatchObserver(spec, self.num_envs, self.flatten, self._lab_obs)

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-environment.

        Args:
            seed: ``s`` seeds sub-environment ``i`` with ``s + i``; a sequence gives one seed (or
                ``None``) per sub-environment; ``None`` continues each sub-environment's generator.
            options: ``{"durations": D}`` forces the durations, ``D`` of shape ``(N, n)``.
        """
        seeds = _seed_list(seed, self.num_envs)
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
                self._ahead_left[i] = 0
        check_reset_options(options, optimising=False)
        durations = None if options is None else options.get("durations")
        forced = None if durations is None else forced_duration_array(durations, (self.num_envs, self._n))
        rows = np.arange(self.num_envs)
        self._reset_rows(rows, forced)
        self._pending = rows[:0]
        self._needs_reset = False
        return self._observation(), self._info(np.zeros(self.num_envs, dtype=bool))

    def action_masks(self) -> np.ndarray:
        """``(N, l + 1)`` bool: ``k`` is valid for sub-environment ``e`` when ``k <= max valid``
        (``action="labs"``: ``(N, 2 l)``, per lab ``[0 allowed, 1 allowed]``)."""
        if self.action_mode == "labs":
            b = self._batch
            return lab_action_mask(~b.busy().T, b.started < self._n)
        return self._state_mask().copy()

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Start ``actions[e]`` experiments in sub-environment ``e`` and move each to its next
        decision point (see the class docstring for autoreset)."""
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self.action_mode == "labs":
            return self._step_on_labs(actions)
        k = self._check_actions(actions)
        rows = self._pending  # NEXT_STEP: these reset now and their actions are ignored
        max_valid = self._state_max_valid()
        clipped = k > max_valid
        if rows.size:
            clipped[rows] = False
        if self.invalid_action == "raise" and np.count_nonzero(clipped):
            e = int(np.flatnonzero(clipped)[0])
            b = self._batch
            raise ValueError(
                f"invalid action {int(k[e])} for sub-environment {e}: at most {int(max_valid[e])} "
                f"experiments can start now (free labs={self._l - int(b.running[e])}, "
                f"unstarted experiments={self._n - int(b.started[e])})"
            )
        requested = k
        k = np.minimum(k, max_valid)
        if rows.size:
            k[rows] = 0
            self._reset_rows(rows, None, hold=True)
        self._invalidate()
        self._batch.start(k)
        return self._advance(clipped, requested)

    def _advance(self, clipped: np.ndarray, requested: np.ndarray) -> tuple[Any, ...]:
        """The end of a step, once the experiments have started: advance every sub-environment
        (the ones reset with ``hold`` just reach their first decision point), then the results."""
        batch = self._batch
        reward = batch.advance()
        if self._reward_scale != 1.0:
            reward *= self._reward_scale
        terminated = batch.done.copy()  # sub-envs reset this step were held: not done
        info = self._info(terminated, clipped, requested)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            obs = self._same_step_reset(terminated, info) if terminated.any() else self._observation()
        else:
            obs = self._observation()
            self._pending = terminated.nonzero()[0]
        return obs, reward, terminated, np.zeros(self.num_envs, dtype=bool), info

    def close_extras(self, **kwargs: Any) -> None:
        self._single.close()

    # ------------------------------------------------------------------ action="labs"
    def _step_on_labs(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`step` for ``action="labs"``: start on exactly the chosen free labs (the single
        environment's rules: busy labs and choices beyond the budget are invalid)."""
        chosen = as_lab_choices(actions, self.num_envs, self._l)  # (N, l) bool
        batch = self._batch
        rows = self._pending
        keep, clipped = self._valid_choice(chosen)
        if rows.size:
            clipped[rows] = False
        if clipped.any() and self.invalid_action == "raise":
            e = int(np.flatnonzero(clipped)[0])
            raise ValueError(
                f"invalid action {chosen[e].astype(int).tolist()} for sub-environment {e}: it chooses "
                f"busy labs or more labs than the budget allows (free labs="
                f"{self._l - int(batch.running[e])}, unstarted experiments={self._n - int(batch.started[e])})"
            )
        if rows.size:
            keep[rows] = False
            self._reset_rows(rows, None, hold=True)
        self._invalidate()
        self._start_on(keep)
        return self._advance(clipped, np.where(clipped[:, None], chosen, False).astype(np.int8))

    def _valid_choice(self, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, clipped)``: the chosen free labs, fastest first up to each budget, and whether
        anything chosen was dropped."""
        b = self._batch
        ok = chosen & ~b.busy().T
        order = b.lab_columns.order
        ranked = ok if order is None else ok[:, order]
        rank = np.cumsum(ranked, axis=1)
        if order is not None:
            rank = rank[:, np.argsort(order)]
        keep = ok & (rank <= (self._n - b.started)[:, None])
        return keep, (keep != chosen).any(axis=1)

    def _start_on(self, keep: np.ndarray) -> None:
        """Start on exactly the labs ``keep`` ((N, l) bool, free): the engine starts ``k`` on the
        fastest free labs, so the other free labs are hidden (marked not free) for that call."""
        b = self._batch
        k = keep.sum(axis=1)
        if not k.any():
            return
        hide = (b.busy() == 0) & ~keep.T & (k > 0)[None, :]  # (l, N), free labs not chosen
        b.lab_end[hide] = np.nan
        b.start(k)
        b.lab_end[hide] = np.inf

    # ------------------------------------------------------------------ internals
    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions
        if type(a) is np.ndarray and a.dtype == np.int64 and a.shape == (self.num_envs,):
            if np.maximum.reduce(a.view(np.uint64)) <= self._l:  # as unsigned, negatives are huge
                return a  # the common case, in one pass
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            if a.shape == (self.num_envs, 1):
                a = a[:, 0]
            else:
                raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise TypeError(f"actions must be integers in [0, n_labs={self._l}], got dtype {a.dtype}")
        if a.size and (np.minimum.reduce(a) < 0 or np.maximum.reduce(a) > self._l):
            raise ValueError(
                f"actions must be in [0, n_labs={self._l}], got values in [{a.min()}, {a.max()}]"
            )
        return a.astype(np.int64, copy=False)

    def _invalidate(self) -> None:  # the state changes: forget the largest valid actions, the mask
        self._max_valid = self._mask = None

    def _state_max_valid(self) -> np.ndarray:
        if self._max_valid is None:
            self._max_valid = self._batch.max_valid()
        return self._max_valid

    def _state_mask(self) -> np.ndarray:
        """The ``(N, l + 1)`` mask of the current state (private: callers get copies)."""
        if self._mask is None:
            self._mask = self._mask_rows.take(self._state_max_valid(), axis=0)
        return self._mask

    def _reset_rows(self, rows: np.ndarray, forced: np.ndarray | None, hold: bool = False) -> None:
        self._invalidate()
        rngs = [self._rngs[i] for i in rows.tolist()] if self._fails else []
        fail_u = None
        if forced is not None:
            if self._batch.lab_columns.quantile_draws:
                raise ValueError(
                    "options['durations'] needs labs sharing one duration law; LabSpec.lab_durations "
                    "gives different laws (their draws are quantiles, see labsched.envs.labs.lab_columns)"
                )
            durations = forced[rows].T
            if self._fails:
                fail_u = np.stack([rng.random(self._n) for rng in rngs], axis=1)
        elif self._fails:
            durations, fail_u = draw_episode_columns(self.lab_spec, rngs, self._batch.lab_columns.laws)
        else:
            left = self._ahead_left[rows]
            if not left.all():
                self._draw_ahead()
                left = self._ahead_left[rows]
            durations = self._ahead[self._ahead_q - left, rows].transpose(1, 2, 0)  # (m, n, R)
            self._ahead_left[rows] = left - 1
        self._batch.reset_rows(rows, durations, fail_u, hold=hold)

    @property
    def _has_ahead(self) -> np.ndarray:
        """``(N,)`` bool: the sub-environment has episodes drawn ahead."""
        return self._ahead_left > 0

    def _draw_ahead(self) -> None:
        """Draw the next episodes of every sub-env that has none drawn ahead (no failures)."""
        missing = np.flatnonzero(self._ahead_left == 0)
        rngs = [self._rngs[i] for i in missing.tolist()]
        table = draw_ahead_columns(self.lab_spec, rngs, self._batch.lab_columns.laws, self._ahead_q)
        self._ahead[:, missing] = table.transpose(0, 3, 1, 2)
        self._ahead_left[missing] = self._ahead_q

    def _observation(self) -> Any:
        return self._observer(self._batch)

    def _info(
        self, ended: np.ndarray, clipped: np.ndarray | None = None, requested: np.ndarray | None = None
    ) -> dict[str, Any]:
        b, N = self._batch, self.num_envs
        full = self._all_true  # read-only, shared by the masks that are all True
        counts = b.counters()  # views of one fresh copy
        info: dict[str, Any] = {
            "cpe": counts["cpe"],
            "_cpe": full,
            "completed": counts["completed"],
            "_completed": full,
            "started": counts["started"],
            "_started": full,
            "running": counts["running"],
            "_running": full,
            "time": b.t.copy(),
            "_time": full,
            "action_mask": self.action_masks(),
            "_action_mask": full,
            "clipped": np.zeros(N, dtype=bool) if clipped is None else clipped,
            "_clipped": full,
            "cost": self._cost(ended),
            "_cost": full,
        }
        if self._fails:
            info["failed"], info["_failed"] = counts["failed"], full
        if clipped is not None and np.count_nonzero(clipped):
            info["requested_action"] = np.where(_column(clipped, requested), requested, 0)
            info["_requested_action"] = clipped.copy()
        if self.episode_log and np.count_nonzero(ended):
            self._log_info(info, ended)
        return info

    def _log_info(self, info: dict[str, Any], ended: np.ndarray) -> None:
        """``log``, ``unfinished`` (and ``failed_log``) of the episodes ending now."""
        b, N = self._batch, self.num_envs
        logs = np.full(N, None, dtype=object)
        unfinished = np.full(N, None, dtype=object)
        failed = np.full(N, None, dtype=object) if self._fails else None
        rows = np.flatnonzero(ended)
        new = tuple.__new__  # the fastest way to build the named tuples
        for e, (done, lost, running) in zip(rows.tolist(), b.records(rows), strict=True):
            logs[e] = tuple([new(ExperimentRecord, r) for r in done])
            unfinished[e] = tuple([new(ExperimentRecord, r) for r in running])
            if failed is not None:
                failed[e] = tuple([new(ExperimentRecord, r) for r in lost])
        info["log"], info["_log"] = logs, ended.copy()
        info["unfinished"], info["_unfinished"] = unfinished, ended.copy()
        if failed is not None:
            info["failed_log"], info["_failed_log"] = failed, ended.copy()

    def _cost(self, ended: np.ndarray) -> np.ndarray:
        """1.0 for the episodes ending now without all ``n`` experiments completed, else 0.0."""
        if not np.count_nonzero(ended):
            return np.zeros(self.num_envs)
        b = self._batch
        short = (b.completed + b.failed if self._fails else b.completed) < self._n
        return np.multiply(ended, short, dtype=np.float64)

    def _same_step_reset(self, ended: np.ndarray, info: dict[str, Any]) -> Any:
        """SAME_STEP autoreset: keep the final observations and infos, reset the ended rows."""
        last = self._observation()
        final_obs = np.full(self.num_envs, None, dtype=object)
        rows = np.flatnonzero(ended)
        for e in rows.tolist():
            final_obs[e] = {k: v[e] for k, v in last.items()} if isinstance(last, dict) else last[e]
        final_info = {k: v.copy() for k, v in info.items()}
        for key in [k for k in final_info if k.startswith("_")]:
            final_info[key] = final_info[key] & ended
        self._reset_rows(rows, None)
        # Ended rows now show their reset info (Gymnasium's SAME_STEP convention); keys that only
        # an ending step has (log, unfinished, requested_action) stay in final_info.
        fresh = self._info(np.zeros(self.num_envs, dtype=bool))
        for key in [k for k in info if not k.startswith("_")]:
            if key in fresh:
                info[key] = np.where(_column(ended, fresh[key]), fresh[key], info[key])
            else:
                keep = info[f"_{key}"] & ~ended
                if keep.any():
                    info[f"_{key}"] = keep
                else:
                    del info[key], info[f"_{key}"]
        info["final_obs"], info["_final_obs"] = final_obs, ended.copy()
        info["final_info"], info["_final_info"] = final_info, ended.copy()
        return self._observation()


def make_vector_env(num_envs: int = 1, **kwargs: Any) -> VectorEnv:
    """The vector entry point of ``labsched/ConcurrentLabs-v0``.

    CPE mode gives the native :class:`ConcurrentLabsVectorEnv`; regret and information modes (or
    any ``objective``) give Gymnasium's ``SyncVectorEnv`` of single environments, which follows
    the same seeding convention (so does ``duration_fn``, whose single environment explains
    that it needs an optimisation).
    """
    reward = kwargs.get("reward", "cpe")
    if reward != "cpe" or kwargs.get("objective") is not None or kwargs.get("duration_fn") is not None:
        n = check_int("num_envs", num_envs, 1)
        mode = _autoreset_mode(kwargs.pop("autoreset_mode", AutoresetMode.NEXT_STEP))
        kwargs.pop("max_episode_steps", None)
        return SyncVectorEnv([lambda: ConcurrentLabsEnv(**kwargs) for _ in range(n)], autoreset_mode=mode)
    kwargs.pop("reward", None)
    kwargs.pop("max_episode_steps", None)
    return ConcurrentLabsVectorEnv(num_envs, **kwargs)


def _autoreset_mode(mode: Any) -> AutoresetMode:
    try:
        value = AutoresetMode(mode)
    except ValueError:
        allowed = [AutoresetMode.NEXT_STEP.value, AutoresetMode.SAME_STEP.value]
        raise ValueError(f"autoreset_mode must be one of {allowed}, got {mode!r}") from None
    if value == AutoresetMode.DISABLED:
        raise ValueError("autoreset_mode DISABLED is not supported; use NEXT_STEP or SAME_STEP")
    return value


def _seed_list(seed: Any, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        s = check_int("seed", seed, 0)
        return [s + i for i in range(n)]
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        if len(seed) != n:
            raise ValueError(f"seed must be an integer or a sequence of {n} seeds, got {len(seed)} seeds")
        return [None if s is None else check_int("seed", s, 0) for s in seed]
    raise TypeError(f"seed must be None, an integer or a sequence of integers, got {type(seed).__name__}")


def _column(mask: np.ndarray, value: np.ndarray) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (np.ndim(value) - 1))
