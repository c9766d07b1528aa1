"""Decoding the concurrent-labs observation: what a scheduler knows at a decision point.

The environment's observation (its ``Dict`` form or the flat ``Box`` form of ``flatten=True``,
single or batched by a ``VecEnv``) and the problem spec determine a :class:`LabState`: time,
completed and started counts, which labs are busy and for how long. Baselines and saved agents
decide from it (:func:`decode_observation`). :class:`BatchObserver` builds the native vector
environment's batched observation from the engine's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs.labs.engine import LabsBatch
from labsched.envs.labs.spec import LabSpec

__all__ = ["BatchObserver", "LabState", "decode_observation", "is_batched"]

_FLAT_TAIL = 4  # completed, remaining_budget, remaining_time, started (plus 2 l or 3 l lab values)


@dataclass(frozen=True)
class LabState:
    """The scheduling state decoded from one observation.

    Attributes:
        time: current time ``t``.
        completed: experiments completed so far.
        started: experiments started so far.
        busy: (l,) bool, lab running an experiment.
        elapsed: (l,) elapsed running time of each lab's experiment (0 where idle), in time units.
        spec: the problem spec.
    """

    time: float
    completed: int
    started: int
    busy: np.ndarray
    elapsed: np.ndarray
    spec: LabSpec

    @property
    def running(self) -> int:
        """Number of experiments running."""
        return int(self.busy.sum())

    @property
    def free_labs(self) -> int:
        """Number of idle labs."""
        return self.spec.n_labs - self.running

    @property
    def remaining(self) -> int:
        """Experiments not yet started (remaining budget)."""
        return self.spec.n_experiments - self.started

    @property
    def remaining_time(self) -> float:
        """Time left until the horizon."""
        return max(self.spec.horizon - self.time, 0.0)

    @property
    def max_valid(self) -> int:
        """Largest valid action: ``min(free labs, remaining budget)``."""
        return min(self.free_labs, self.remaining)

    @property
    def running_elapsed(self) -> np.ndarray:
        """Elapsed times of the running experiments, in lab order."""
        return self.elapsed[self.busy]

    @property
    def is_initial(self) -> bool:
        """True at the start of an episode (time 0, nothing started)."""
        return self.started == 0 and self.time <= 1e-9 * self.spec.horizon


def _counts(x: np.ndarray, n: int) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * n).astype(int)


def decode_observation(observation: Any, spec: LabSpec) -> list[LabState]:
    """Decode an observation, single or batched, ``Dict`` or flat, into :class:`LabState` s.

    A spec with heterogeneous labs has the ``lab_duration`` key (flat: ``3 l + 4`` values); it
    is not decoded (each lab's expected duration is ``spec.lab_mean_durations``). ``completed``
    counts successful completions; failures are ``started - completed - running``.

    Args:
        observation: what the env (or a ``VecEnv``) returned.
        spec: the env's ``lab_spec``.

    Returns:
        One state per environment (a list of length 1 for an unbatched observation).
    """
    n, nl, h = spec.n_experiments, spec.n_labs, spec.horizon
    mean = float(spec.scheduler_view.duration.mean)  # the law the observation is scaled by
    if isinstance(observation, dict):
        busy = np.asarray(observation["busy"])
        elapsed = np.asarray(observation["elapsed"], dtype=float)
        for key, arr in (("busy", busy), ("elapsed", elapsed)):
            if arr.ndim == 0 or arr.shape[-1] != nl:
                size = arr.shape[-1] if arr.ndim else 1
                raise _mismatch(f"its {key!r} has shape {arr.shape} ({size} labs)", nl)
        busy = busy.reshape(-1, nl).astype(bool)
        elapsed = elapsed.reshape(-1, nl)
        completed = _counts(observation["completed"], n).reshape(-1)
        started = _counts(observation["started"], n).reshape(-1)
        rem_t = np.asarray(observation["remaining_time"], dtype=float).reshape(-1)
    else:
        flat = np.asarray(observation, dtype=float)
        per_lab = 3 if spec.heterogeneous else 2  # busy, elapsed (and lab_duration)
        width = per_lab * nl + _FLAT_TAIL
        if flat.ndim == 0 or flat.shape[-1] != width:
            size = flat.shape[-1] if flat.ndim else 1
            labs = (
                f", an env with n_labs={(size - _FLAT_TAIL) // per_lab}"
                if size > _FLAT_TAIL and (size - _FLAT_TAIL) % per_lab == 0
                else ""
            )
            raise _mismatch(
                f"it is a flat observation of shape {flat.shape} (length {size}{labs}) where "
                f"{per_lab} * n_labs + 4 = {width} is expected",
                nl,
            )
        flat = flat.reshape(-1, width)
        w = per_lab * nl
        busy = flat[:, :nl] > 0.5
        completed = _counts(flat[:, nl], n)
        elapsed = flat[:, nl + 1 : 2 * nl + 1]
        rem_t = flat[:, w + 2]
        started = _counts(flat[:, w + 3], n)
    times = np.clip(h * (1.0 - rem_t), 0.0, h)
    return [
        LabState(
            time=float(times[i]),
            completed=int(completed[i]),
            started=int(started[i]),
            busy=busy[i],
            elapsed=np.where(busy[i], elapsed[i] * mean, 0.0),
            spec=spec,
        )
        for i in range(busy.shape[0])
    ]


def _mismatch(what: str, n_labs: int) -> ValueError:
    return ValueError(
        f"the observation does not match the spec the policy was built for: {what}, but the spec has "
        f"n_labs={n_labs}; build the policy (or agent) with the environment's lab_spec"
    )


def is_batched(observation: Any) -> bool:
    """Whether an observation (``Dict`` or flat) holds a batch of environments."""
    if isinstance(observation, dict):
        return np.asarray(observation["busy"]).ndim == 2
    return np.asarray(observation).ndim == 2


class BatchObserver:
    """The observations of a :class:`~labsched.envs.labs.engine.LabsBatch` on the decision grid,
    equal to the single environment's, one row per episode (``Dict`` or flat).

    Every call returns fresh arrays, never written afterwards (consumers may keep them):
    ``busy`` and ``elapsed`` are transposed ``(N, l)`` views of fresh ``(l, N)`` arrays, the other
    ``Dict`` values ``(N, 1)``. The fractions ``c / n`` are looked up as the single environment's
    float32 values.

    Args:
        spec: the problem.
        n_envs: ``N``.
        flatten: the flat ``Box`` form.
        lab_obs: the ``(l,)`` float32 ``lab_duration`` values of heterogeneous labs, or ``None``.
    """

    def __init__(self, spec: LabSpec, n_envs: int, flatten: bool, lab_obs: np.ndarray | None) -> None:
        n = spec.n_experiments
        self.n_envs, self.n_labs, self.flatten, self.lab_obs = n_envs, spec.n_labs, flatten, lab_obs
        self.horizon = spec.horizon
        self._fractions = (np.arange(n + 1) / n).astype(np.float32)
        self._budget_fractions = self._fractions[::-1].copy()  # (n - c) / n

    def remaining_time(self, batch: LabsBatch) -> np.ndarray:
        """``(h - t) / h``: the batch's ``remaining_time`` without its ``max(., 0)``, as time never
        passes the horizon on the decision grid."""
        out = np.subtract(self.horizon, batch.t)
        out /= self.horizon
        return out

    def __call__(self, batch: LabsBatch) -> Any:
        nl, fractions = self.n_labs, self._fractions
        busy = batch.busy()
        elapsed = batch.elapsed(busy).T
        if self.flatten:  # filled in place: the single env's flat order
            w = 2 * nl if self.lab_obs is None else 3 * nl
            out = np.empty((self.n_envs, w + 4), dtype=np.float32)
            out[:, :nl] = busy.T
            out[:, nl] = fractions.take(batch.completed)
            out[:, nl + 1 : 2 * nl + 1] = elapsed
            if self.lab_obs is not None:
                out[:, 2 * nl + 1 : w + 1] = self.lab_obs
            out[:, w + 1] = self._budget_fractions.take(batch.started)
            out[:, w + 2] = self.remaining_time(batch)
            out[:, w + 3] = fractions.take(batch.started)
            return out
        obs = {
            "busy": busy.view(np.int8).T,
            "completed": fractions.take(batch.completed)[:, None],
            "elapsed": elapsed,
        }
        if self.lab_obs is not None:  # keys in sorted order, as the Dict space has them
            obs["lab_duration"] = np.tile(self.lab_obs, (self.n_envs, 1))
        obs["remaining_budget"] = self._budget_fractions.take(batch.started)[:, None]
        obs["remaining_time"] = self.remaining_time(batch).astype(np.float32)[:, None]
        obs["started"] = fractions.take(batch.started)[:, None]
        return obs
