"""Scheduling a queue of online A/B and interleaving experiments as a Gymnasium environment."""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from labsched.envs._lib.validation import check_real
from labsched.envs.queue.dataset import ExperimentDataset
from labsched.envs.queue.env_config import (
    PAPER_DEPLOYMENT,
    RENDER_MODES,
    QueueEnvConfig,
    observation_space,
    resolve_spec,
)
from labsched.envs.queue.env_helpers import as_action, checked_order, most_successes, render_text
from labsched.envs.queue.feature_vectors import feature_names
from labsched.envs.queue.generation import cached_dataset, generate_dataset
from labsched.envs.queue.records import DeploymentRecord
from labsched.envs.queue.significance import fast_verdicts
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = ["DeploymentRecord", "ExperimentQueueEnv", "QueueEnvConfig"]


class ExperimentQueueEnv(gym.Env):
    """Order a queue of online experiments to maximise the successful ones within a budget.

    Kharitonov, Macdonald, Serdyukov & Ounis (SIGIR 2015): user interactions are a limited
    resource; experiments wait in a queue; each deployed experiment runs to completion (no
    preemption) and consumes its interactions; the scheduler picks which experiment runs next.
    The return of an episode is the realised ``Q(S)`` of the paper's Equation 5: the number of
    successful experiments (B significantly better than A) deployed within the budget ``T``. The
    experiments, their features and outcomes come from the **synthetic** world of
    :mod:`labsched.envs.queue.search_world` (the paper's data are private).

    ## Experiments
    ``pool="fixed"`` (default): the experiments come from one generated
    :class:`~labsched.envs.queue.features.ExperimentDataset` (``dataset``, or
    ``cached_dataset(spec, pool_seed)``, generated once per process, seconds at the default
    interleaving spec, with a message on stderr when it takes over a second; part of the
    configuration, identical across resets);
    each reset shuffles it with ``np_random`` and queues the first ``queue_size`` experiments;
    the rest form the arrival stream. ``pool="fresh"``: each reset generates a new dataset from
    ``np_random`` (seconds per reset at the default spec; use a small spec). ``np_random`` is the
    only source of per-episode randomness.

    By default every deployment consumes the same number of sessions, the paper's size of
    Tables 4 and 5 (``deployment_interactions="paper"``: 10^5 interleaved sessions or 2 * 10^6
    A/B sessions, with the budget ``T`` of 3 or 2 deployments); an integer sets another common
    size. ``deployment_interactions="experiment"`` (or ``None``) is the unequal-cost world:
    each experiment consumes its own ``interactions`` (Table 1-shaped, heavy tailed); there
    the greedy rule by ``P(e)`` is no longer optimal and :attr:`episode_upper_bound` (the
    cheapest successes first) is the reference. Whether a deployment succeeds is decided at
    reset for every experiment of the episode (common random numbers across policies):

    * ``outcome="resample"`` (default): a fresh run of the deployment size, drawn from the
      exact law of its session counts;
    * ``outcome="bootstrap"``: that many sessions resampled from the experiment's realised
      full-size run (Algorithm 4's bootstrap);
    * ``outcome="dataset"``: the dataset's realised label (needs
      ``deployment_interactions="experiment"``).

    The paper's Table 4 (Table 5) protocol is the default with ``max_queue=9`` (an A/B world,
    ``max_queue=4``); ``outcome="bootstrap"`` reproduces its bootstrap of the recorded runs.

    ## Arrivals
    With ``arrivals_per_budget = lam > 0``, after every action that consumes ``c`` interactions,
    ``Poisson(lam * c / T)`` further experiments of the stream arrive; they fill free slots in
    arrival order and wait in an (unobserved) FIFO backlog while the queue is full. Experiments
    keep their slot until deployed (no compaction).

    ## Action space
    ``Discrete(max_queue)``: deploy the experiment in slot ``i``. With
    ``exploration_interactions = k > 0``, ``Discrete(2 * max_queue)``: action
    ``max_queue + i`` explores slot ``i``'s experiment: a preliminary run of ``k`` sessions
    that costs ``k`` interactions, pays nothing and reveals its outcome (the paper's exploration
    feature) in the observation; an experiment is explored at most once and stays queued.
    Deploying slot ``i`` is valid iff it is occupied and its cost fits the remaining budget;
    exploring iff occupied, not yet explored and ``k`` fits. :meth:`action_masks` and
    ``info["action_mask"]`` give the valid set (sb3-contrib's MaskablePPO convention). An
    invalid action is, with ``invalid_action="clip"`` (default), replaced by the lowest valid
    deploy action and reported in ``info["clipped"]`` / ``info["requested_action"]``; with
    ``"raise"`` it raises ``ValueError``.

    ## Observation space
    A ``Dict`` (keys in Gymnasium's sorted order), with ``Q = max_queue``, ``F`` features:

    | key | shape | range | meaning |
    |---|---|---|---|
    | ``budget`` | (1,) | [0, 1] | remaining interactions / ``T`` |
    | ``cost`` | (Q,) | [0, 1] | slot's experiment cost / ``T`` (clipped at 1; 0 if empty) |
    | ``explored`` | (Q,) | {0, 1} | slot's experiment was explored (exploration only) |
    | ``exploration`` | (Q,) | [-c, c] | its exploration result (exploration only; 0 if not) |
    | ``features`` | (Q, F) | [-c, c] | the experiment's pre-experiment features (0 if empty) |
    | ``valid`` | (Q,) | {0, 1} | slot is occupied |

    ``c = feature_clip``. With ``normalize_features=True`` (default) features are z-scored with
    the pool's per-column mean and standard deviation (per dataset in ``"fresh"`` mode) and the
    exploration result is the z score of its significance test (sign test for interleaving,
    two-proportion test for A/B); otherwise the raw feature values and the raw outcome
    statistic; both clipped to ``[-c, c]``. ``flatten=True`` returns
    ``gymnasium.spaces.flatten`` of the dict (a ``float32`` ``Box``, same key order) for
    ``MlpPolicy``. Feature columns are ``dataset.feature_names``.

    ## Rewards and episode end
    Deploying a successful experiment pays 1, anything else 0, so the return is ``Q(S)``.
    ``terminated=True`` once no queued experiment fits the remaining budget (or the queue is
    empty); ``truncated`` is always False. The budget never goes negative. Reset guarantees at
    least one queued experiment fits (if none of the drawn queue does, the first fitting
    experiment of the stream replaces the last queued one).

    ## Info
    Every step: ``action_mask``, ``clipped``, ``q`` (successes so far), ``remaining_budget``,
    ``spent`` (interactions), ``n_deployed``, ``n_explored``, ``queue`` (experiment index per
    slot, -1 empty), ``backlog`` (waiting arrivals) and, after an action, ``record`` (its
    :class:`DeploymentRecord`). At the end also ``schedule``: all records in order.

    Args:
        spec: the world (default ``QueueWorldSpec()``); keyword ``overrides`` change fields.
        dataset: a pre-generated pool (e.g. a test split, ``dataset.subset(idx)``) instead of
            ``cached_dataset(spec, pool_seed)``; implies ``pool="fixed"``.
        pool: ``"fixed"`` or ``"fresh"``.
        pool_seed: seed of the fixed pool's generation (not of the episodes).
        max_queue: number of queue slots ``Q`` (>= 1).
        queue_size: experiments queued at reset (1..max_queue, default ``max_queue``).
        budget: interactions ``T`` per episode (default: the paper's 3 (interleaving) or 2
            (A/B) deployments with ``"paper"``, else three times the median deployment cost).
        deployment_interactions: ``"paper"`` (default: the paper's size for the experiment
            type), an integer (every deployment consumes this many sessions), or
            ``"experiment"`` / ``None`` (each experiment its own cost).
        outcome: ``"resample"``, ``"bootstrap"`` or ``"dataset"``.
        exploration_interactions: sessions per exploration action (0 disables exploration).
        arrivals_per_budget: expected arrivals per ``T`` interactions consumed (>= 0).
        normalize_features: z-score features and report exploration z scores.
        feature_clip: bound ``c`` of feature and exploration observations (> 0).
        flatten: return the flat ``Box`` observation.
        invalid_action: ``"clip"`` or ``"raise"``.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self,
        spec: QueueWorldSpec | None = None,
        *,
        dataset: ExperimentDataset | None = None,
        pool: Literal["fixed", "fresh"] = "fixed",
        pool_seed: int = 0,
        max_queue: int = 10,
        queue_size: int | None = None,
        budget: float | None = None,
        deployment_interactions: int | str | None = "paper",
        outcome: Literal["resample", "bootstrap", "dataset"] = "resample",
        exploration_interactions: int = 0,
        arrivals_per_budget: float = 0.0,
        normalize_features: bool = True,
        feature_clip: float = 5.0,
        flatten: bool = False,
        invalid_action: Literal["clip", "raise"] = "clip",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        spec = resolve_spec(spec, dataset, pool, overrides)
        config = QueueEnvConfig(
            pool=pool,
            pool_seed=pool_seed,
            max_queue=max_queue,
            queue_size=queue_size,
            deployment_interactions=deployment_interactions,
            outcome=outcome,
            exploration_interactions=exploration_interactions,
            arrivals_per_budget=arrivals_per_budget,
            normalize_features=normalize_features,
            feature_clip=feature_clip,
            flatten=flatten,
            invalid_action=invalid_action,
            render_mode=render_mode,
        )
        self.world_spec: QueueWorldSpec = spec
        self.config = config
        self.pool = config.pool
        self.pool_seed = config.pool_seed
        self.max_queue = config.max_queue
        self.queue_size = config.queue_size
        self.deployment_interactions: int | None = config.deployment_size(spec.experiment_type)
        self.cost_mode = "equal" if self.deployment_interactions is not None else "experiment"
        self.outcome = config.outcome
        self.exploration_interactions = config.exploration_interactions
        self.arrivals_per_budget = config.arrivals_per_budget
        self.normalize_features = config.normalize_features
        self.feature_clip = config.feature_clip
        self.flatten = config.flatten
        self.invalid_action = config.invalid_action
        self.render_mode = config.render_mode
        self._explore = config.explore
        self.dataset: ExperimentDataset | None = None
        self._obs_tables_for: ExperimentDataset | None = None  # the pool of the padded tables
        self.budget = self._pool_and_budget(dataset, budget)
        self.n_features = len(feature_names(spec.experiment_type))
        self.action_space = spaces.Discrete(2 * self.max_queue if self._explore else self.max_queue)
        self.dict_observation_space = observation_space(config, self.n_features)
        if self.flatten:
            self.observation_space = spaces.flatten_space(self.dict_observation_space)
        else:
            self.observation_space = self.dict_observation_space
        self._clear_episode()

    def _pool_and_budget(self, dataset: ExperimentDataset | None, budget: float | None) -> int:
        """Set the fixed pool (if any) and return the validated budget ``T``."""
        spec = self.world_spec
        if self.pool == "fixed":
            self._set_pool(dataset if dataset is not None else cached_dataset(spec, self.pool_seed))
            min_cost = int(self._costs.min())
            median_cost = float(np.median(self._costs))
        else:
            min_cost = self.deployment_interactions or spec.interactions_min
            median_cost = float(self.deployment_interactions or spec.interactions_median)
        if budget is None:
            k = (
                PAPER_DEPLOYMENT[spec.experiment_type][1]
                if self.config.deployment_interactions == "paper"
                else 3
            )
            budget = k * median_cost
        budget = check_real("budget", budget, 0.0)
        if budget < min_cost:
            raise ValueError(f"budget must be >= the smallest deployment cost {min_cost}, got {budget!r}")
        return int(budget)

    # ------------------------------------------------------------------ pool
    def _set_pool(self, dataset: ExperimentDataset) -> None:
        self.dataset = dataset
        n = len(dataset)
        if self.deployment_interactions is not None:
            self._costs = np.full(n, self.deployment_interactions, dtype=np.int64)
        else:
            self._costs = np.asarray(dataset.interactions, dtype=np.int64)
        x = np.asarray(dataset.features, dtype=float)
        if self.normalize_features:
            mean = x.mean(axis=0)
            std = x.std(axis=0)
            x = (x - mean) / np.where(std > 0, std, 1.0)
        self._obs_features = np.clip(x, -self.feature_clip, self.feature_clip).astype(np.float32)
        # What a reset needs to draw every outcome (the per-session law of each experiment).
        if self.outcome != "dataset":
            source = "model" if self.outcome == "resample" else "bootstrap"
            self._outcome_law = dataset.session_law(source)

    def _clear_episode(self) -> None:
        nq = self.max_queue
        self._slots = np.full(nq, -1, dtype=np.int64)
        self._explored = np.zeros(nq, dtype=bool)
        self._explore_value = np.zeros(nq, dtype=np.float32)
        self._explore_stat = np.zeros(nq)
        self._stream: np.ndarray = np.zeros(0, dtype=np.int64)
        self._next_arrival = 0
        self._backlog: deque[int] = deque()
        self._remaining = 0
        self._q = 0
        self._records: list[DeploymentRecord] = []
        self._n_deployed = 0
        self._n_explored = 0
        self._success = np.zeros(0, dtype=bool)
        self._statistic = np.zeros(0)
        self._done = True

    # ------------------------------------------------------------------ reset
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode: shuffle (or generate) the pool, queue, and draw every outcome.

        Args:
            seed: seeds ``self.np_random``, the only source of randomness.
            options: ``{"order": [...]}`` forces the episode's order of pool experiments (a
                permutation of a subset of ``range(len(dataset))``; the first ``queue_size``
                are queued, the rest arrive), e.g. to evaluate schedulers on a fixed queue.

        Returns:
            The first observation and the info dict.
        """
        super().reset(seed=seed)
        rng = self.np_random
        if self.pool == "fresh":
            self._set_pool(generate_dataset(self.world_spec, rng=rng))
        assert self.dataset is not None
        n = len(self.dataset)
        self._clear_episode()
        forced = None if options is None else options.get("order")
        order = rng.permutation(n).astype(np.int64) if forced is None else checked_order(forced, n)
        k = min(self.queue_size, order.size)
        fits = self._costs[order] <= self.budget
        if not fits[:k].any():
            later = np.flatnonzero(fits)
            if later.size == 0:
                raise RuntimeError(
                    f"no experiment of the episode fits the budget {self.budget}; increase budget"
                )
            j = int(later[0])
            order[[k - 1, j]] = order[[j, k - 1]]
        self._stream = order
        self._slots[:k] = order[:k]
        self._next_arrival = k
        self._remaining = self.budget
        # Every outcome of the episode, drawn now (common random numbers across policies).
        if self.outcome == "dataset":
            self._success = np.asarray(self.dataset.success, dtype=bool).copy()
            self._statistic = np.asarray(self.dataset.statistic, dtype=float).copy()
        else:
            self._success, self._statistic = fast_verdicts(
                self.dataset.experiment_type,
                self._outcome_law,
                self._costs,
                rng,
                self.world_spec.significance_level,
            )
        self._done = False
        return self._observation(), self._info(None, False, None)

    # ------------------------------------------------------------------ masks
    def action_masks(self) -> np.ndarray:
        """Boolean mask of the valid actions (deploy slots, then explore slots)."""
        occupied = self._slots >= 0
        costs = np.where(occupied, self._costs[np.maximum(self._slots, 0)], 0)
        deploy = occupied & (costs <= self._remaining)
        if not self._explore:
            return deploy
        explore = occupied & ~self._explored & (self.exploration_interactions <= self._remaining)
        return np.concatenate([deploy, explore])

    # ------------------------------------------------------------------ step
    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        a = as_action(action, int(self.action_space.n))
        mask = self.action_masks()
        clipped, requested = False, None
        if not mask[a]:
            if self.invalid_action == "raise":
                raise ValueError(self._invalid_reason(a))
            requested, clipped = a, True
            a = int(np.flatnonzero(mask[: self.max_queue])[0])
        nq = self.max_queue
        slot = a % nq
        e = int(self._slots[slot])
        before = self._remaining
        reward = 0.0
        if a < nq:
            cost = int(self._costs[e])
            success = bool(self._success[e])
            record = DeploymentRecord(
                len(self._records), "deploy", e, slot, cost, before, success, float(self._statistic[e])
            )
            self._remaining -= cost
            self._slots[slot] = -1
            self._explored[slot] = False
            self._explore_value[slot] = 0.0
            self._explore_stat[slot] = 0.0
            self._n_deployed += 1
            if success:
                self._q += 1
                reward = 1.0
        else:
            cost = self.exploration_interactions
            source = "model" if self.outcome == "resample" else "bootstrap"
            res = self.dataset.sample_outcome(e, cost, self.np_random, source=source)
            stat = float(res.statistic)
            value = float(res.z) if self.normalize_features else stat
            self._explored[slot] = True
            self._explore_value[slot] = np.float32(np.clip(value, -self.feature_clip, self.feature_clip))
            self._explore_stat[slot] = stat
            self._remaining -= cost
            self._n_explored += 1
            record = DeploymentRecord(len(self._records), "explore", e, slot, cost, before, False, stat)
        self._records.append(record)
        self._arrivals(cost)
        terminated = not self.action_masks()[:nq].any()
        self._done = terminated
        info = self._info(record, clipped, requested)
        return self._observation(), reward, terminated, False, info

    def _arrivals(self, consumed: int) -> None:
        if self.arrivals_per_budget > 0.0 and self._next_arrival < self._stream.size:
            k = int(self.np_random.poisson(self.arrivals_per_budget * consumed / self.budget))
            k = min(k, self._stream.size - self._next_arrival)
            self._backlog.extend(int(x) for x in self._stream[self._next_arrival : self._next_arrival + k])
            self._next_arrival += k
        while self._backlog:
            free = np.flatnonzero(self._slots < 0)
            if free.size == 0:
                break
            self._slots[free[0]] = self._backlog.popleft()

    def _invalid_reason(self, a: int) -> str:
        nq = self.max_queue
        slot = a % nq
        kind = "deploy" if a < nq else "explore"
        e = int(self._slots[slot])
        if e < 0:
            why = f"slot {slot} is empty"
        elif a >= nq and self._explored[slot]:
            why = f"slot {slot}'s experiment was already explored"
        else:
            cost = int(self._costs[e]) if a < nq else self.exploration_interactions
            why = f"its cost {cost} exceeds the remaining budget {self._remaining}"
        return f"invalid action {a} ({kind} slot {slot}): {why}"

    # ------------------------------------------------------------------ views
    def _observation(self) -> Any:
        occupied = self._slots >= 0
        if self._obs_tables_for is not self.dataset:
            # One zero row at index -1 (an empty slot), built once per pool.
            n_f = self._obs_features.shape[1]
            self._padded_features = np.vstack([self._obs_features, np.zeros((1, n_f), dtype=np.float32)])
            cost = np.minimum(self._costs / self.budget, 1.0)
            self._padded_cost = np.append(cost, 0.0).astype(np.float32)
            self._obs_tables_for = self.dataset
        features = self._padded_features[self._slots]
        cost = self._padded_cost[self._slots]
        obs: dict[str, np.ndarray] = {
            "budget": np.array([self._remaining / self.budget], dtype=np.float32),
            "cost": cost,
            "features": features,
            "valid": occupied.astype(np.int8),
        }
        if self._explore:
            obs["explored"] = self._explored.astype(np.int8)
            obs["exploration"] = self._explore_value.copy()
        if self.flatten:
            return spaces.flatten(self.dict_observation_space, obs).astype(np.float32)
        return {k: obs[k] for k in self.dict_observation_space.spaces}

    def _info(self, record: DeploymentRecord | None, clipped: bool, requested: int | None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "action_mask": self.action_masks(),
            "clipped": clipped,
            "q": self._q,
            "remaining_budget": self._remaining,
            "spent": self.budget - self._remaining,
            "n_deployed": self._n_deployed,
            "n_explored": self._n_explored,
            "queue": self._slots.copy(),
            "backlog": len(self._backlog),
        }
        if record is not None:
            info["record"] = record
        if clipped:
            info["requested_action"] = requested
        if self._done and record is not None:
            info["schedule"] = tuple(self._records)
        return info

    @property
    def remaining_budget(self) -> int:
        """Interactions left in the episode."""
        return self._remaining

    @property
    def queue(self) -> np.ndarray:
        """Experiment index (in :attr:`dataset`) per slot, -1 for an empty slot."""
        return self._slots.copy()

    @property
    def schedule(self) -> tuple[DeploymentRecord, ...]:
        """Records of the actions taken so far in the episode."""
        return tuple(self._records)

    @property
    def episode_outcomes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(success, statistic)`` per dataset experiment as drawn at reset for this episode
        (ground truth for oracles and the paper's UpperBound; schedulers must not look)."""
        return self._success.copy(), self._statistic.copy()

    @property
    def episode_upper_bound(self) -> int:
        """The most successful deployments any schedule can reach in this episode (reads the
        ground truth; schedulers must not look): the largest number of the episode's successful
        experiments whose costs fit the budget together, i.e. the cheapest successes first.

        The experiments that can ever be deployed are the queue at reset, plus the whole
        arrival stream when ``arrivals_per_budget > 0`` (arrival times ignored, so with
        arrivals it is a bound, not always reachable). With equal deployment sizes it is
        ``min(successes, T // n)``.
        """
        k = min(self.queue_size, self._stream.size)
        pool = self._stream if self.arrivals_per_budget > 0 else self._stream[:k]
        return most_successes(self._costs[pool], self._success[pool], self.budget)

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return render_text(self)
