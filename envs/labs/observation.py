"""Decoding the concurrent-labs observation: what a scheduler knows at a decision point.

The environment's observation (its ``Dict`` form or the flat ``Box`` form of ``flatten=True``,
single or batched by a ``VecEnv``) and the problem spec determine a :class:`LabState`: time,
completed and started counts, which labs are busy and for how long. Baselines and saved agents
decide from it (:func:`decode_observation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs.labs.spec import LabSpec

__all__ = ["LabState", "decode_observation", "is_batched"]

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
