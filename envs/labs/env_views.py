"""The views of :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv`: its observation,
info dicts, execution records and rendering (kept apart from the stepping code)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from labsched.envs.labs.records import ExperimentRecord
from labsched.envs.labs.rendering import close_figures, render_ansi, render_gantt

__all__ = ["EnvViews"]


class EnvViews:
    """Mixin of :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv` reading its state
    (the attributes its ``__init__`` and ``_reset_state`` set)."""

    _t: float
    render_mode: str | None

    def _refresh_event_fields(self) -> None:
        """Look up the cached templates of the count fields, which change only when
        experiments start or end (copied into every observation: each step returns fresh
        arrays)."""
        fractions, n = self._fractions, self._n
        self._event_fields = (
            fractions[self._completed],
            fractions[n - self._started],
            fractions[self._started],
        )

    def _observation(self) -> Any:
        t = self._t
        # (t - start) / E[D] for busy labs, 0 for idle ones.
        elapsed = (self._elapsed_scale * t - self._elapsed_offset).astype(np.float32)
        remaining_time = max(self._h - t, 0.0) / self._h
        if self.flatten:
            n, started = self._n, self._started
            return np.array(
                [
                    *self._busy,
                    self._completed / n,
                    *elapsed.tolist(),
                    *(() if self._lab_obs is None else self._lab_obs.tolist()),
                    (n - started) / n,
                    remaining_time,
                    started / n,
                ],
                dtype=np.float32,
            )
        completed, remaining_budget, started_arr = self._event_fields
        rt = self._rt_template.copy()
        rt[0] = remaining_time
        obs = {"busy": self._busy_np.copy(), "completed": completed.copy(), "elapsed": elapsed}
        if self._lab_obs is not None:  # keys in sorted order, as the Dict space has them
            obs["lab_duration"] = self._lab_obs.copy()
        obs["remaining_budget"] = remaining_budget.copy()
        obs["remaining_time"] = rt
        obs["started"] = started_arr.copy()
        return obs

    def _info(self, final: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "cpe": self._cpe,
            "completed": self._completed,
            "started": self._started,
            "running": self._n_running,
            "time": self._t,
            "action_mask": self.action_masks(),
            "clipped": False,
            "cost": 0.0,
        }
        if self._lab_q is not None:
            info["failed"] = self._failed
        if final:
            self._add_final_info(info)
        return info

    def _add_final_info(self, info: dict[str, Any]) -> None:
        info["log"] = tuple(self._log)
        info["unfinished"] = self.running_records()
        if self._lab_q is not None:
            info["failed_log"] = tuple(self._failed_log)
        if self._bo is not None:
            res = self._bo.result()
            info["regret"] = res.regret
            info["best_x"] = res.best_x
            info["best_value"] = res.best_value
            info["X"] = res.X
            info["y"] = res.y
            info["n_initial"] = res.n_initial
            info["integrated_variance"] = res.integrated_variance
            info["rmse"] = res.rmse

    @property
    def time(self) -> float:
        """Current simulated time."""
        return self._t

    def execution_log(self) -> tuple[ExperimentRecord, ...]:
        """Records of the experiments completed so far, in completion order."""
        return tuple(self._log)

    def failed_records(self) -> tuple[ExperimentRecord, ...]:
        """Records of the experiments that failed so far, in the order they ended."""
        return tuple(self._failed_log)

    def running_records(self) -> tuple[ExperimentRecord, ...]:
        """Records (``end=None``) of the experiments running now."""
        return tuple(
            ExperimentRecord(self._lab_index[i], i, self._lab_start[i], None, self._lab_prior[i])
            for i in range(self._l)
            if self._busy[i]
        )

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "ansi":
            return render_ansi(self)
        return render_gantt(self)

    def close(self) -> None:
        close_figures(self)
