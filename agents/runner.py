"""Running schedulers on many seeded episodes: baselines by name, saved agents by path.

Every episode is played by the one episode loop, :func:`labsched.envs._lib.rollout.play_episode`,
except that :func:`run_task` plays a saved agent's CPE-mode episodes in batches on the native vector
env (:func:`labsched.agents.vector_rollout.run_episodes_batched`: the same results, episode for
episode, many times faster).
Episode ``i`` of a run has env seed ``seed + i`` under every scheduler (common random numbers:
the env draws all ``n`` durations at reset, in start order); a :class:`TaskResult` keeps the
per-episode outcomes, so paired differences between schedulers can be taken episode by episode.
The ``clairvoyant`` reference reads each episode's durations from the env
(:func:`run_clairvoyant`): its CPE is the exact optimum when the exact search fits in
``max_states`` on the first episode, else the proven upper bound for every episode.
:func:`run_tasks` runs a list of :class:`RunTask` s in-process or in joblib worker processes
(BLAS held to one thread); a task's numbers do not depend on where or in which order it runs. The CPE table
(:mod:`labsched.evaluation.labs.cpe_table`) and :func:`labsched.agents.compare` both run on it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from joblib import Parallel, delayed

from labsched.agents.constrained import ConstraintConfig, FeasibilityMaskedAgent
from labsched.agents.episode_result import EpisodeResult, episode_result
from labsched.agents.loading import LoadedAgent, load_agent
from labsched.agents.random_agent import RandomSpecAgent
from labsched.agents.vector_rollout import run_episodes_batched, vector_env_supports
from labsched.baselines.labs.clairvoyant import Clairvoyant, clairvoyant_bound, clairvoyant_cpe
from labsched.baselines.registry import make
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.threads import single_threaded_blas, torch_threads
from labsched.envs._lib.validation import check_choice, check_int, check_real
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "CpeRow",
    "EpisodeResult",
    "Predictor",
    "RunSummary",
    "RunTask",
    "TaskResult",
    "build_scheduler",
    "run_clairvoyant",
    "run_episode",
    "run_episodes",
    "run_task",
    "run_tasks",
    "standard_error",
    "summarize",
]


@dataclass(frozen=True)
class CpeRow:
    """One scheduler's CPE results at one horizon: a cell of the CPE table
    (:mod:`labsched.evaluation.labs.cpe_table`) and the first columns of a comparison row
    (:class:`labsched.agents.comparison.CompareRow` extends it), so both CSVs start alike.

    Attributes:
        scheduler: baseline name, or a model path.
        horizon: horizon evaluated.
        episodes: episodes run.
        mean_cpe, se_cpe: mean CPE and its standard error.
        completion_rate: share of episodes completing all ``n`` experiments.
        mean_completed: mean number completed.
        paper_cpe: the paper's Table 2 value (NaN off the paper's setting).
        seconds: wall time.
    """

    scheduler: str
    horizon: float
    episodes: int
    mean_cpe: float
    se_cpe: float
    completion_rate: float
    mean_completed: float
    paper_cpe: float
    seconds: float


#: Schedulers whose tasks are dispatched first in parallel runs (the slowest).
SLOW_FIRST = ("ps",)


class Predictor(Protocol):
    """Anything with stable-baselines3's ``predict`` (baselines, SB3 models)."""

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class RunSummary:
    """Mean and standard error of a set of episodes.

    Attributes:
        n_episodes: number of episodes.
        mean_cpe: mean CPE.
        se_cpe: standard error of the mean CPE.
        completion_rate: share of episodes that completed all ``n`` experiments (NaN when no
            episode's count is known).
        mean_completed: mean number of completed experiments (NaN likewise).
        seconds: wall time of the run.
        mean_regret, se_regret: mean regret and its standard error (NaN outside regret mode).
    """

    n_episodes: int
    mean_cpe: float
    se_cpe: float
    completion_rate: float
    mean_completed: float
    seconds: float
    mean_regret: float = math.nan
    se_regret: float = math.nan


def standard_error(x: np.ndarray) -> float:
    """Standard error of the mean of ``x`` (NaN for fewer than two values)."""
    x = np.asarray(x, dtype=float)
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def run_episode(
    agent: Predictor, env: ConcurrentLabsEnv, seed: int, deterministic: bool = True
) -> EpisodeResult:
    """Play one episode of ``env`` with ``agent`` from ``env.reset(seed=seed)``."""
    return episode_result(play_episode(agent, env, seed, deterministic=deterministic))


def run_episodes(
    agent: Predictor,
    spec: LabSpec,
    n_episodes: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Play ``n_episodes`` episodes with seeds ``seed, seed + 1, ...``.

    Every agent run with the same ``seed`` meets the same duration draws (the env draws all
    ``n`` durations at reset, in start order): common random numbers across agents.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    env = ConcurrentLabsEnv(spec, **dict(env_kwargs or {}))
    return [run_episode(agent, env, seed + i) for i in range(n_episodes)]


def summarize(results: Sequence[EpisodeResult], n_experiments: int, seconds: float = math.nan) -> RunSummary:
    """Mean CPE with its standard error, completion rate, mean completed count and mean regret."""
    cpe = np.array([r.cpe for r in results], dtype=float)
    done = np.array([r.completed for r in results if r.completed >= 0], dtype=float)
    regret = np.array([r.regret for r in results], dtype=float)
    with_regret = bool(np.isfinite(regret).any())
    return RunSummary(
        n_episodes=len(results),
        mean_cpe=float(cpe.mean()),
        se_cpe=standard_error(cpe),
        completion_rate=float((done >= n_experiments).mean()) if done.size else math.nan,
        mean_completed=float(done.mean()) if done.size else math.nan,
        seconds=seconds,
        mean_regret=float(regret.mean()) if with_regret else math.nan,
        se_regret=standard_error(regret) if with_regret else math.nan,
    )


@dataclass(frozen=True)
class RunTask:
    """One scheduler on one spec for ``episodes`` episodes (env seeds ``seed, seed + 1, ...``).

    Attributes:
        name: a baseline name, or the path of a saved agent (``kind="model"``).
        spec: the problem (``sequential`` runs with ``spec.sequential_horizon``).
        episodes: episodes to play.
        seed: seed of the first episode; also the baseline's own seed.
        kind: ``"baseline"`` or ``"model"``.
        options: baseline constructor options (``{"n_simulations": 300}``).
        env_kwargs: env options (regret mode: ``objective``, ``selector``).
        trust: load a saved agent with ``load_agent(..., trust=True)`` (unpickles: runs any code
            its files contain; only for files you trust).
        mask_threshold: a saved agent acts inside feasibility masks at this threshold
            (:class:`~labsched.agents.constrained.FeasibilityMaskedAgent`); None: the threshold
            it was trained with, if any.
        factory: builds the scheduler from the spec instead of ``name`` (a picklable callable,
            e.g. ``functools.partial(KeepBusy, k=3)``); ``name`` is then only a label.
    """

    name: str
    spec: LabSpec
    episodes: int
    seed: int = 0
    kind: str = "baseline"
    options: Mapping[str, Any] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    trust: bool = False
    mask_threshold: float | None = None
    factory: Callable[[LabSpec], Predictor] | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("baseline", "model"))
        check_int("episodes", self.episodes, 1)
        check_int("seed", self.seed)


@dataclass(frozen=True)
class TaskResult:
    """What :func:`run_task` measured: the task, the horizon it ran at, and the summary."""

    task: RunTask
    horizon: float
    summary: RunSummary
    episodes: tuple[EpisodeResult, ...] = field(default=(), repr=False)


def load_model_for(path: str, spec: LabSpec, trust: bool = False) -> LoadedAgent | RandomSpecAgent:
    """A saved agent acting on ``spec`` (a note on stderr when it was trained on another one; an
    agent trained on ``labsched/Random-v0`` is bound to ``spec`` silently: it was trained for many);
    ``trust``: see :func:`~labsched.agents.loading.load_agent` (unpickling runs code)."""
    agent = load_agent(path, trust=trust)
    if isinstance(agent, RandomSpecAgent):
        return agent.with_spec(spec)
    if agent.spec != spec:
        print(f"note: {path} was trained on {agent.spec}; evaluating it on {spec}", file=sys.stderr)
        agent = agent.with_spec(spec)
    return agent


def deployment_mask(metadata: Mapping[str, Any]) -> float | None:
    """The feasibility-mask threshold a saved agent acts under when deployed, from its ``agent.json``.

    ``deployment.mask_threshold`` (a threshold chosen after training, e.g. on validation seeds)
    wins; otherwise the mask it was trained inside (``constraint`` of kind ``mask`` or
    ``lagrangian+mask``); otherwise None (no mask).
    """
    chosen = (metadata.get("deployment") or {}).get("mask_threshold")
    if chosen is not None:
        return check_real("deployment.mask_threshold", chosen, 0.0, 1.0, low_open=True, high_open=True)
    saved = metadata.get("constraint")
    if saved:
        config = ConstraintConfig.from_dict(saved)
        return config.mask_threshold if config.masked else None
    return None


def build_scheduler(task: RunTask) -> tuple[Predictor, LabSpec]:
    """The task's scheduler and the spec it runs on (``sequential``: its long horizon)."""
    if task.factory is not None:
        return task.factory(task.spec), task.spec
    if task.kind == "model":
        torch_threads(1)  # small networks: one thread is fastest, and fair on a shared machine
        agent = load_model_for(task.name, task.spec, task.trust)
        threshold = (
            task.mask_threshold if task.mask_threshold is not None else deployment_mask(agent.metadata)
        )
        return (agent if threshold is None else FeasibilityMaskedAgent(agent, threshold)), task.spec
    spec = task.spec
    if task.name == "sequential":
        spec = spec.replace(horizon=spec.sequential_horizon)
    # Randomised baselines draw from their own generator, seeded from the run's seed.
    return make(task.name, spec, **{"seed": task.seed, **task.options}), spec


def run_clairvoyant(
    spec: LabSpec,
    n_episodes: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    max_states: int = 20_000,
) -> list[EpisodeResult]:
    """The clairvoyant value of episodes ``seed, seed + 1, ...`` (their durations read from the env).

    The first episode tries the exact search within ``max_states``: if it fits, every episode is
    played by :class:`~labsched.baselines.labs.clairvoyant.Clairvoyant` (the exact optimum, with
    its completion count; an episode whose search would not fit gets the bound); otherwise every
    episode gets the proven upper bound :func:`clairvoyant_bound` (completion unknown: -1).
    """
    kwargs = dict(env_kwargs or {})
    if "objective" in kwargs:
        raise ValueError("the clairvoyant reference has no regret mode (it bounds CPE only)")
    check_int("n_episodes", n_episodes, 1)
    env = ConcurrentLabsEnv(spec, **kwargs)
    doc = bool(kwargs.get("decide_on_completion", True))
    env.reset(seed=seed)
    exact = clairvoyant_cpe(
        spec, env.unwrapped._durations, decide_on_completion=doc, max_states=max_states
    ).exact
    policy = Clairvoyant(spec, decide_on_completion=doc, max_states=max_states)
    out = []
    for i in range(n_episodes):
        env.reset(seed=seed + i)
        d = np.asarray(env.unwrapped._durations, dtype=float)
        res = clairvoyant_cpe(spec, d, decide_on_completion=doc, max_states=max_states) if exact else None
        if res is not None and res.exact:
            policy.result = res
            out.append(episode_result(play_episode(policy, env, seed + i, options={"durations": d})))
        else:
            value = res.value if res is not None else clairvoyant_bound(spec, d)
            out.append(EpisodeResult(seed + i, int(round(value)), -1, 0, spec.horizon))
    return out


def run_task(task: RunTask) -> TaskResult:
    """Play the task's episodes and summarise them (keeping the per-episode outcomes)."""
    t0 = time.perf_counter()
    if task.factory is None and task.kind == "baseline" and task.name == "clairvoyant":
        spec = task.spec
        max_states = int(task.options.get("max_states", 20_000))
        results = run_clairvoyant(spec, task.episodes, task.seed, task.env_kwargs, max_states)
    else:
        agent, spec = build_scheduler(task)
        if _batched(task):
            results = run_episodes_batched(agent, spec, task.episodes, task.seed, task.env_kwargs)
        else:
            results = run_episodes(agent, spec, task.episodes, task.seed, task.env_kwargs)
    summary = summarize(results, spec.n_experiments, time.perf_counter() - t0)
    return TaskResult(task, spec.horizon, summary, tuple(results))


def _batched(task: RunTask) -> bool:
    """Whether the task's episodes go to the batched runner: a saved agent (no ``factory``) in
    CPE mode with options the native vector env takes (its results equal the single env's)."""
    return (
        task.kind == "model"
        and task.factory is None
        and task.seed >= 0
        and vector_env_supports(task.env_kwargs)
    )


def _indexed(i: int, task: RunTask) -> tuple[int, TaskResult]:
    return i, run_task(task)


def run_tasks(
    tasks: Sequence[RunTask],
    n_jobs: int = 1,
    on_result: Callable[[int, int, TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Run every task, in-process (``n_jobs=1``) or in joblib worker processes.

    Args:
        tasks: the tasks.
        n_jobs: worker processes (1: in-process, in order); in parallel the slow tasks
            (:data:`SLOW_FIRST`) are dispatched first and results come back as they finish,
            with BLAS limited to one thread per worker.
        on_result: called as ``on_result(k, i, result)`` for the ``k``-th finished task ``i``.

    Returns:
        One :class:`TaskResult` per task, in the order of ``tasks``.
    """
    tasks = list(tasks)
    if n_jobs != -1:
        check_int("n_jobs", n_jobs, 1)
    done: dict[int, TaskResult] = {}
    if n_jobs == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            done[i] = run_task(task)
            if on_result is not None:
                on_result(i, i, done[i])
        return [done[i] for i in range(len(tasks))]
    order = sorted(range(len(tasks)), key=lambda i: tasks[i].name not in SLOW_FIRST)
    with single_threaded_blas():
        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for k, (i, result) in enumerate(runner(delayed(_indexed)(i, tasks[i]) for i in order)):
            done[i] = result
            if on_result is not None:
                on_result(k, i, result)
    return [done[i] for i in range(len(tasks))]
