"""Policy switching's draws on failing or heterogeneous labs (:mod:`~labsched.envs.labs.lab_columns`).

PS compares IL policies by simulation; on the paper's problem every simulated lab column draws
from ``spec.duration``. With failures or labs that differ, each column is given the physical lab
it stands for, and its draws follow that lab's law, speed and failure probability:

* a **running** column ``j`` is the lab running that experiment (its residual time is drawn
  from that lab's law given its elapsed time, in the lab's own time scale, and divided by its
  speed);
* a **new** column ``c`` is the ``c``-th lab of the labs free at the decision time, fastest in
  expectation first, then the busy ones in the same order (cycling if a plan has more columns):
  where the environment puts new starts. Later experiments of a column stay on its lab, an
  approximation of the environment, which puts every start on the fastest lab free at that
  moment (the IL plans keep labs busy, so a freed lab is mostly refilled at once).

A **failure** is drawn per experiment (a uniform below the lab's failure probability). A failed
experiment ends at its drawn time like any other (its lab frees then), but it scores nothing
and is no one's prior: its end time is replaced by ``inf`` where CPE is counted.
With one law and no speeds the durations are exactly the paper's draws (failure uniforms are
drawn after them), so a spec with failures only sees the same durations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labsched.envs.labs.spec import LabSpec

__all__ = ["ColumnLabs", "needs_lab_draws"]


def needs_lab_draws(spec: LabSpec) -> bool:
    """Whether PS's simulation needs per-lab draws (failures or heterogeneous labs)."""
    return spec.heterogeneous or spec.has_failures


@dataclass(frozen=True)
class ColumnLabs:
    """The physical labs of PS's simulated columns at one decision.

    Attributes:
        spec: the problem.
        running: ``(r,)`` lab of each running column (PS's order: longest-running first).
        new_order: labs for the new columns, in order (free now fastest first, then the others).
    """

    spec: LabSpec
    running: np.ndarray
    new_order: np.ndarray

    @classmethod
    def at(cls, spec: LabSpec, running_labs: np.ndarray) -> ColumnLabs:
        """The columns of a decision where ``running_labs`` run (in PS's column order)."""
        running = np.asarray(running_labs, dtype=np.int64)
        busy = set(running.tolist())
        order = list(spec.lab_order)
        new = [c for c in order if c not in busy] + [c for c in order if c in busy]
        return cls(spec, running, np.asarray(new, dtype=np.int64))

    def labs(self, width: int) -> np.ndarray:
        """``(width,)`` lab of columns ``0 .. width - 1`` (running columns first)."""
        r = self.running.size
        extra = max(width - r, 0)
        new = self.new_order[np.arange(extra) % self.new_order.size]
        return np.concatenate([self.running, new])[:width]

    def running_draws(
        self, rng: np.random.Generator, elapsed: np.ndarray, n_sim: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(residual, fail)``: ``(n_sim, r)`` residual times of the running experiments and
        whether each fails (``None`` without failures)."""
        spec, labs = self.spec, self.running
        el = np.broadcast_to(np.asarray(elapsed, dtype=float), (n_sim, labs.size))
        if not spec.heterogeneous:
            residual = spec.duration.sample_residual(rng, el)
        else:
            residual = np.empty((n_sim, labs.size))
            laws, speeds = spec.lab_laws, spec.lab_speed_factors
            for j, c in enumerate(labs.tolist()):
                residual[:, j] = laws[c].sample_residual(rng, el[:, j] * speeds[c]) / speeds[c]
        return np.asarray(residual, dtype=float), self._fails(rng, labs, (n_sim, labs.size))

    def new_draws(
        self, rng: np.random.Generator, n_sim: int, width: int, n_stage: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(durations, fail)``, each ``(n_sim, width, n_stage)``: the draws of the new
        experiments of each column and stage, and whether each fails (``None`` without failures)."""
        spec = self.spec
        labs = self.labs(width)
        shape = (n_sim, width, n_stage)
        laws = spec.lab_laws
        if spec.lab_durations is None:
            d = np.asarray(spec.duration.sample(rng, shape), dtype=float)
        else:  # one quantile per experiment, mapped through its column's law
            v = 1.0 - rng.random(shape)
            d = np.empty(shape)
            for c in np.unique(labs).tolist():
                cols = labs == c
                d[:, cols] = np.asarray(laws[c].isf(v[:, cols]), dtype=float)
        if spec.lab_speeds is not None:
            d = d / np.asarray(spec.lab_speed_factors)[labs][None, :, None]
        return d, self._fails(rng, labs[None, :, None], shape)

    def _fails(self, rng: np.random.Generator, labs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
        if not self.spec.has_failures:
            return None
        q = np.asarray(self.spec.lab_failure_probs)[labs]
        return rng.random(shape) < q
