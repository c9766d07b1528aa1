"""Callbacks of the training loop: seeded evaluation log, wall-clock or CPU-time budget, progress
bar, and the choice of ``best_model.zip`` (highest mean evaluation CPE; under a chance constraint,
the highest among the p-safe evaluations: :class:`ConstrainedBest`)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from labsched.agents.loading import save_normalizer
from labsched.envs._lib.reporting import write_csv
from labsched.envs._lib.stats import PSafeVerdict, p_safe_verdict
from labsched.envs._lib.validation import check_int, check_real

try:  # the rl extra; without it this module still imports (the pickled schedules need it)
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
except ImportError:  # pragma: no cover - depends on the install
    BaseCallback = EvalCallback = object  # type: ignore[assignment, misc]

__all__ = [
    "CONSTRAINED_EVAL_FIELDS",
    "EVAL_LOG_FIELDS",
    "TIME_LIMIT_CLOCKS",
    "ConstrainedBest",
    "CpuMinutes",
    "Evaluation",
    "ProgressCallback",
    "TimeLimitCallback",
    "best_evaluation",
    "make_eval_callback",
]

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
#: Further ``eval_log.csv`` columns of constrained training: this evaluation's p-safe verdict
#: (1/0) and one-sided p-value, and whether the best model so far is p-safe (0: no evaluation
#: was p-safe yet, the best model is the one with the highest completion rate).
CONSTRAINED_EVAL_FIELDS = ("p_safe", "p_value", "best_p_safe")


# ----------------------------------------------------------------------------- the best model
@dataclass(frozen=True)
class Evaluation:
    """One evaluation, as the constraint-aware best-model rule sees it.

    Attributes:
        mean_cpe: mean CPE of its episodes.
        successes: episodes that completed all ``n`` experiments.
        episodes: episodes evaluated (>= 1).
        timesteps: training timesteps at the evaluation (-1: unknown).
    """

    mean_cpe: float
    successes: int
    episodes: int
    timesteps: int = -1

    @property
    def completion_rate(self) -> float:
        return self.successes / self.episodes


class ConstrainedBest:
    """The best model under the chance constraint ``P(all n complete by h) >= p``, evaluation by
    evaluation.

    An evaluation is p-safe when its completion count is not significantly below ``p``
    (:func:`~labsched.envs._lib.stats.p_safe_verdict`: one-sided exact binomial test at level
    ``alpha``). The best evaluation is the p-safe one with the highest mean CPE; while none is
    p-safe, the one with the highest completion rate (ties: higher mean CPE). Remaining ties go to
    the earliest. Since p-safe evaluations rank above the others, the best of a longer sequence is
    either the best so far or the newest evaluation: :meth:`add` says which.

    Args:
        p: demanded completion probability, in (0, 1) (``1 - target`` violation rate).
        alpha: test level, in (0, 1).
    """

    def __init__(self, p: float, alpha: float = 0.05) -> None:
        self.p = check_real("p", p, 0.0, 1.0, low_open=True, high_open=True)
        self.alpha = check_real("alpha", alpha, 0.0, 1.0, low_open=True, high_open=True)
        self.evaluations: list[Evaluation] = []
        self.verdicts: list[PSafeVerdict] = []
        self.index: int | None = None

    def add(self, mean_cpe: float, successes: int, episodes: int, timesteps: int = -1) -> bool:
        """Record the next evaluation; True when it is the new best (save the model now).

        Raises:
            ValueError: ``episodes < 1``, ``successes`` outside ``[0, episodes]`` or a non-finite
                ``mean_cpe``.
        """
        episodes = check_int("episodes", episodes, 1)
        successes = check_int("successes", successes, 0, episodes)
        mean_cpe = check_real("mean_cpe", mean_cpe)
        evaluation = Evaluation(float(mean_cpe), successes, episodes, int(timesteps))
        self.evaluations.append(evaluation)
        self.verdicts.append(p_safe_verdict(successes, episodes, self.p, self.alpha))
        new = len(self.evaluations) - 1
        if self.index is None or self._rank(new) > self._rank(self.index):
            self.index = new
            return True
        return False

    def _rank(self, i: int) -> tuple[int, float, float]:
        e = self.evaluations[i]
        return (1, e.mean_cpe, 0.0) if self.verdicts[i].safe else (0, e.completion_rate, e.mean_cpe)

    @property
    def best(self) -> Evaluation:
        """The best evaluation so far."""
        if self.index is None:
            raise RuntimeError("no evaluation recorded yet")
        return self.evaluations[self.index]

    @property
    def best_safe(self) -> bool:
        """Whether the best evaluation is p-safe (False: none is, it has the highest completion)."""
        return self.index is not None and self.verdicts[self.index].safe

    def summary(self) -> dict[str, Any]:
        """The choice, for ``agent.json``: rule, the chosen evaluation and its verdict."""
        best, verdict = self.best, self.verdicts[self.index]
        return {
            "rule": "highest mean CPE among the p-safe evaluations"
            if verdict.safe
            else "no evaluation was p-safe: highest completion rate",
            "p": self.p,
            "alpha": self.alpha,
            "p_safe": bool(verdict.safe),
            "p_value": verdict.p_value,
            "timesteps": best.timesteps,
            "mean_cpe": best.mean_cpe,
            "completion_rate": best.completion_rate,
            "evaluations": len(self.evaluations),
            "p_safe_evaluations": sum(v.safe for v in self.verdicts),
        }


def best_evaluation(evaluations: Sequence[Evaluation], p: float, alpha: float = 0.05) -> tuple[int, bool]:
    """Index of the best of ``evaluations`` under the constraint, and whether it is p-safe
    (the rule of :class:`ConstrainedBest`).

    Raises:
        ValueError: no evaluations.
    """
    if not evaluations:
        raise ValueError("evaluations must not be empty")
    rule = ConstrainedBest(p, alpha)
    for e in evaluations:
        rule.add(e.mean_cpe, e.successes, e.episodes, e.timesteps)
    return int(rule.index), rule.best_safe


class _TimeAwareSchedule:
    """A schedule evaluated at the smaller of the timestep and the wall-clock progress left."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.time_remaining = 1.0

    def __call__(self, progress_remaining: float) -> float:
        return self.inner(min(progress_remaining, self.time_remaining))


#: Schedules of SB3 models (called with the share of timesteps left), by attribute name.
_SCHEDULES = ("lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule")


class CpuMinutes(float):
    """A time limit in minutes of *process CPU time* (``time.process_time``, all threads of the
    training process) instead of wall-clock time.

    A ``float``, so it goes wherever a ``time_limit_minutes`` goes (``train(time_limit_minutes=
    CpuMinutes(1.5))``, ``labsched train --cpu-time-limit-minutes 1.5``): :class:`TimeLimitCallback`
    reads the clock from the type. On a shared machine a CPU-time budget gives every run the same
    compute whatever the other jobs take.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"CpuMinutes({float(self)!r})"


#: Clocks of :class:`TimeLimitCallback`: wall-clock time and process CPU time, in seconds.
TIME_LIMIT_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class TimeLimitCallback(BaseCallback):
    """Stop training once ``minutes`` of time have passed since training started.

    The clock is wall-clock time, or the process's CPU time when ``clock="cpu"`` or ``minutes``
    is a :class:`CpuMinutes`. Time spent in evaluations during training counts. During training,
    the model's schedules (learning rate, PPO's clip range, DQN's exploration rate) run on
    whichever budget is used up faster, timesteps or time, so that ``lin_`` learning rates reach
    0 and DQN's exploration its final value when the time is up; the original schedules are put
    back at the end (a saved model carries no clock).

    Args:
        minutes: the budget, > 0.
        verbose: 1 prints a line when the limit stops training.
        clock: ``"wall"`` or ``"cpu"`` (default: ``"cpu"`` for a :class:`CpuMinutes`, else ``"wall"``).

    Raises:
        ValueError: ``minutes`` not a finite number > 0, or an unknown ``clock``.
    """

    def __init__(self, minutes: float, verbose: int = 0, clock: str | None = None) -> None:
        super().__init__(verbose)
        if not (
            isinstance(minutes, (int, float))
            and not isinstance(minutes, bool)
            and math.isfinite(minutes)
            and minutes > 0
        ):
            raise ValueError(f"time_limit_minutes must be a finite number > 0, got {minutes!r}")
        if clock is None:
            clock = "cpu" if isinstance(minutes, CpuMinutes) else "wall"
        if clock not in TIME_LIMIT_CLOCKS:
            raise ValueError(f"clock must be one of {sorted(TIME_LIMIT_CLOCKS)}, got {clock!r}")
        self.clock = clock
        self._now = TIME_LIMIT_CLOCKS[clock]
        self.seconds = 60.0 * float(minutes)
        self.start = math.nan
        self.elapsed = 0.0
        self.triggered = False
        self._wrapped: dict[str, _TimeAwareSchedule] = {}

    def _on_training_start(self) -> None:
        self.start = self._now()
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
        self.elapsed = elapsed = self._now() - self.start
        for wrapper in self._wrapped.values():
            wrapper.time_remaining = max(1.0 - elapsed / self.seconds, 0.0)
        if elapsed >= self.seconds:
            self.triggered = True
            if self.verbose:
                kind = "CPU-time" if self.clock == "cpu" else "time"
                print(f"{kind} limit of {self.seconds / 60:g} min reached at {self.num_timesteps} steps")
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


# size: 86 lines; the callback class is defined inside (its SB3 base class depends on masking).
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
    target_completion: float | None = None,
) -> EvalCallback:
    """A (Maskable)EvalCallback that evaluates on the same seeded episodes every time.

    Before each evaluation the eval envs are re-seeded with ``eval_seed`` (common random
    numbers: every evaluation, and the baselines' reference run, meets the same duration draws).
    It also evaluates once before training starts, and can be forced at the end
    (:meth:`evaluate_now`). Each evaluation appends a row to ``eval_log.csv`` (timesteps, wall
    time, mean CPE ± SE, completion rate); ``evaluations.npz`` is SB3's log; the best model is
    saved as ``best_model.zip`` with its ``VecNormalize`` statistics: the highest mean CPE, or
    with ``target_completion`` (``p`` of constrained training) the choice of
    :class:`ConstrainedBest` (the callback's ``best_rule``; the log gets :data:`CONSTRAINED_EVAL_FIELDS`).
    """
    if masked:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as base
    else:
        base = EvalCallback

    class SeededEvalCallback(base):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            self.recorder = _EvalRecorder(out, progress, verbose)
            self.episode_regrets: list[float] = []  # regret mode: read and emptied by the recorder
            # Constrained: the recorder feeds the rule, _save_best (not SB3) saves best_model.zip.
            self.best_rule = ConstrainedBest(target_completion) if target_completion is not None else None
            super().__init__(
                eval_env,
                callback_after_eval=self.recorder,
                n_eval_episodes=n_eval_episodes,
                eval_freq=max(eval_freq_steps // max(n_train_envs, 1), 1),
                log_path=str(out),
                best_model_save_path=str(out) if self.best_rule is None else None,
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
            before = (self.best_mean_reward, len(self.best_rule.evaluations) if self.best_rule else 0)
            cont = super()._on_step()
            _save_best(self, out, *before)
            self.eval_seconds += time.perf_counter() - t0
            return cont

        def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
            super()._log_success_callback(locals_, globals_)
            if locals_["done"] and "regret" in locals_["info"]:  # regret mode (issue 12)
                self.episode_regrets.append(float(locals_["info"]["regret"]))

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


def _save_best(callback: Any, out: Path, best_before: float, seen: int) -> None:
    """After an evaluation: when it is the new best, ``best_model.zip`` (saved here under the
    constraint, by SB3 otherwise) gets its ``VecNormalize`` statistics."""
    rule = callback.best_rule
    if rule is None:
        new_best = callback.best_mean_reward > best_before  # SB3 saved the model
    else:
        new_best = len(rule.evaluations) > seen and rule.index == len(rule.evaluations) - 1
        if new_best:
            callback.model.save(str(out / "best_model.zip"))
        if rule.index is not None:  # what TrainResult.best_mean_cpe reports
            callback.best_mean_reward = rule.best.mean_cpe
    if new_best:
        vn = callback.model.get_vec_normalize_env()
        if vn is not None:
            save_normalizer(vn, out / "best_model.zip")


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
        fields = EVAL_LOG_FIELDS
        rule = getattr(parent, "best_rule", None)
        if rule is not None:
            fields = fields + CONSTRAINED_EVAL_FIELDS
            row.update(_constrained_columns(rule, success, row))
        regrets, parent.episode_regrets = parent.episode_regrets, []  # regret mode (issue 12)
        if regrets:
            row["mean_regret"] = float(np.mean(regrets))
            self.logger.record("eval/mean_regret", row["mean_regret"])
        self.rows.append(row)
        fields = fields + (("mean_regret",) if regrets else ())
        write_csv(self.rows, self.path, fields)  # the whole log: a few rows, rewritten
        self.logger.record("eval/mean_cpe", row["mean_cpe"])
        self.logger.record("eval/completion_rate", row["completion_rate"])
        if self.progress is not None:
            self.progress.report_eval(row["mean_cpe"])
        if self.print_evals:
            line = (
                f"eval @ {row['timesteps']:>9} steps ({wall:7.1f} s): CPE {row['mean_cpe']:7.2f} "
                f"± {row['se_cpe']:.2f}  complete {row['completion_rate']:.3f}  "
                f"best {row['best_mean_cpe']:.2f}"
            ) + (f"  regret {row['mean_regret']:.4f}" if regrets else "")
            if rule is not None:
                line += f"  p-safe {'yes' if row['p_safe'] else 'no'}"
                line += "" if row["best_p_safe"] else " (no p-safe evaluation yet: best = highest completion)"
            if self.progress is not None:
                self.progress.write(line)
            else:
                print(line, file=sys.stderr, flush=True)
        return True


def _constrained_columns(
    rule: ConstrainedBest, success: Sequence[Any], row: dict[str, Any]
) -> dict[str, Any]:
    """Feed an evaluation to the rule; its p-safe columns and the best model's mean CPE."""
    if not len(success):
        raise RuntimeError(
            "constrained training needs the completion of every evaluation episode "
            "(info['is_success'] of the evaluation envs)"
        )
    rule.add(row["mean_cpe"], int(np.sum(success)), len(success), row["timesteps"])
    verdict = rule.verdicts[-1]
    return {
        "p_safe": int(verdict.safe),
        "p_value": verdict.p_value,
        "best_p_safe": int(rule.best_safe),
        "best_mean_cpe": rule.best.mean_cpe,
    }
