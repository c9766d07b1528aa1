"""Callbacks of the training loop: seeded evaluation log, wall-clock budget, progress bar."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from labsched.agents.loading import save_normalizer
from labsched.envs._lib.reporting import write_csv

try:  # the rl extra; without it this module still imports (the pickled schedules need it)
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
except ImportError:  # pragma: no cover - depends on the install
    BaseCallback = EvalCallback = object  # type: ignore[assignment, misc]

__all__ = ["EVAL_LOG_FIELDS", "ProgressCallback", "TimeLimitCallback", "make_eval_callback"]

EVAL_LOG_FIELDS = (
    "timesteps",
    "wall_seconds",
    "train_seconds",
    "mean_cpe",
    "se_cpe",
    "std_cpe",
    "completion_rate",
    "mean_length",
    "best_mean_cpe",
)


class _TimeAwareSchedule:
    """A schedule evaluated at the smaller of the timestep and the wall-clock progress left."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.time_remaining = 1.0

    def __call__(self, progress_remaining: float) -> float:
        return self.inner(min(progress_remaining, self.time_remaining))


#: Schedules of SB3 models (called with the share of timesteps left), by attribute name.
_SCHEDULES = ("lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule")


class TimeLimitCallback(BaseCallback):
    """Stop training once ``minutes`` of wall-clock time have passed since training started.

    During training, the model's schedules (learning rate, PPO's clip range, DQN's exploration
    rate) run on whichever budget is used up faster, timesteps or time, so that ``lin_``
    learning rates reach 0 and DQN's exploration its final value when the time is up; the
    original schedules are put back at the end (a saved model carries no clock).
    """

    def __init__(self, minutes: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not (isinstance(minutes, (int, float)) and minutes > 0):
            raise ValueError(f"time_limit_minutes must be > 0, got {minutes!r}")
        self.seconds = 60.0 * float(minutes)
        self.start = math.nan
        self.triggered = False
        self._wrapped: dict[str, _TimeAwareSchedule] = {}

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        for name in _SCHEDULES:
            inner = getattr(self.model, name, None)
            if callable(inner):
                self._wrapped[name] = _TimeAwareSchedule(inner)
                setattr(self.model, name, self._wrapped[name])

    def _on_training_end(self) -> None:
        for name, wrapper in self._wrapped.items():
            setattr(self.model, name, wrapper.inner)
        self._wrapped.clear()

    def _on_step(self) -> bool:
        elapsed = time.perf_counter() - self.start
        for wrapper in self._wrapped.values():
            wrapper.time_remaining = max(1.0 - elapsed / self.seconds, 0.0)
        if elapsed >= self.seconds:
            self.triggered = True
            if self.verbose:
                print(f"time limit of {self.seconds / 60:g} min reached at {self.num_timesteps} steps")
            return False
        return True


class ProgressCallback(BaseCallback):
    """A tqdm progress bar over the timestep budget (plain lines every 10% without tqdm).

    Shows the last evaluation's mean CPE when an evaluation callback reports it.
    """

    def __init__(self, total: int) -> None:
        super().__init__(0)
        self.total = int(total)
        self.bar = None
        self._next_print = 0.1
        self.last_eval: float | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _on_step(self) -> bool:
        n = self.training_env.num_envs
        if self.bar is not None:
            self.bar.update(n)
        elif self.num_timesteps >= self._next_print * self.total:
            print(f"{self.num_timesteps}/{self.total} steps", file=sys.stderr, flush=True)
            self._next_print += 0.1
        return True

    def report_eval(self, mean_cpe: float) -> None:
        self.last_eval = mean_cpe
        if self.bar is not None:
            self.bar.set_postfix_str(f"eval CPE {mean_cpe:.2f}")

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def make_eval_callback(
    masked: bool,
    eval_env: Any,
    *,
    eval_seed: int,
    n_eval_episodes: int,
    eval_freq_steps: int,
    n_train_envs: int,
    out: Path,
    progress: ProgressCallback | None = None,
    verbose: int = 1,
) -> EvalCallback:
    """A (Maskable)EvalCallback that evaluates on the same seeded episodes every time.

    Before each evaluation the eval envs are re-seeded with ``eval_seed`` (common random
    numbers: every evaluation, and the baselines' reference run, meets the same duration draws).
    It also evaluates once before training starts, and can be forced at the end
    (:meth:`evaluate_now`). Each evaluation appends a row to ``eval_log.csv`` (timesteps, wall
    time, mean CPE ± SE, completion rate); ``evaluations.npz`` is SB3's log; the best model is
    saved as ``best_model.zip`` with its ``VecNormalize`` statistics.
    """
    if masked:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as base
    else:
        base = EvalCallback

    class SeededEvalCallback(base):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            self.recorder = _EvalRecorder(out, progress, verbose)
            super().__init__(
                eval_env,
                callback_after_eval=self.recorder,
                n_eval_episodes=n_eval_episodes,
                eval_freq=max(eval_freq_steps // max(n_train_envs, 1), 1),
                log_path=str(out),
                best_model_save_path=str(out),
                deterministic=True,
                verbose=0,
                warn=False,
            )
            self.eval_seed = eval_seed
            self.eval_seconds = 0.0
            self.train_start = math.nan
            self.eval_started = math.nan

        def _on_training_start(self) -> None:
            super()._on_training_start()
            self.train_start = time.perf_counter()
            self.evaluate_now()

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                return self._evaluate()
            return True

        def _evaluate(self) -> bool:
            t0 = self.eval_started = time.perf_counter()
            self.eval_env.seed(self.eval_seed)
            best_before = self.best_mean_reward
            cont = super()._on_step()
            if self.best_mean_reward > best_before:
                vn = self.model.get_vec_normalize_env()
                if vn is not None:
                    save_normalizer(vn, out / "best_model.zip")
            self.eval_seconds += time.perf_counter() - t0
            return cont

        def evaluate_now(self) -> bool:
            """Evaluate the current model now (unless this timestep was just evaluated)."""
            if self.evaluations_timesteps and self.evaluations_timesteps[-1] == self.num_timesteps:
                return True
            saved, self.n_calls = self.n_calls, self.eval_freq
            try:
                return self._evaluate()
            finally:
                self.n_calls = saved

    return SeededEvalCallback()


class _EvalRecorder(BaseCallback):
    """Called after every evaluation (as ``callback_after_eval``): appends to ``eval_log.csv``."""

    def __init__(self, out: Path, progress: ProgressCallback | None, verbose: int) -> None:
        super().__init__(0)
        self.path = Path(out) / "eval_log.csv"
        self.progress = progress
        self.print_evals = verbose
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        parent = self.parent
        rewards = np.asarray(parent.evaluations_results[-1], dtype=float)
        lengths = np.asarray(parent.evaluations_length[-1], dtype=float)
        success = parent.evaluations_successes[-1] if parent.evaluations_successes else []
        now = time.perf_counter()
        wall = now - parent.train_start
        row = {
            "timesteps": int(parent.num_timesteps),
            "wall_seconds": round(wall, 3),
            "train_seconds": round(wall - parent.eval_seconds - (now - parent.eval_started), 3),
            "mean_cpe": float(rewards.mean()),
            "se_cpe": float(rewards.std(ddof=1) / math.sqrt(rewards.size)) if rewards.size > 1 else math.nan,
            "std_cpe": float(rewards.std()),
            "completion_rate": float(np.mean(success)) if len(success) else math.nan,
            "mean_length": float(lengths.mean()),
            "best_mean_cpe": float(max(parent.best_mean_reward, rewards.mean())),
        }
        self.rows.append(row)
        write_csv(self.rows, self.path, EVAL_LOG_FIELDS)  # the whole log: a few rows, rewritten
        self.logger.record("eval/mean_cpe", row["mean_cpe"])
        self.logger.record("eval/completion_rate", row["completion_rate"])
        if self.progress is not None:
            self.progress.report_eval(row["mean_cpe"])
        if self.print_evals:
            line = (
                f"eval @ {row['timesteps']:>9} steps ({wall:7.1f} s): CPE {row['mean_cpe']:7.2f} "
                f"± {row['se_cpe']:.2f}  complete {row['completion_rate']:.3f}  "
                f"best {row['best_mean_cpe']:.2f}"
            )
            if self.progress is not None:
                self.progress.write(line)
            else:
                print(line, file=sys.stderr, flush=True)
        return True
