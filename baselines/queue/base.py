"""The base class of the experiment-queue schedulers: greedy by a score, with
stable-baselines3's ``predict`` on ``ExperimentQueueEnv`` observations (see
:mod:`labsched.baselines.queue.schedulers` for the list and the two ways to use them)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from labsched.baselines.queue.view import EnvBinding, ObservationLayout, QueueView

__all__ = ["QueueScheduler", "order_scores", "rank_rows"]


class QueueScheduler(ABC):
    """Greedy scheduler of the experiment queue: score each queued experiment, deploy the best.

    Subclasses implement :meth:`score`. Learned ones also implement :meth:`fit`.

    Args:
        seed: seed of the scheduler's generator (random tie-breaks, the random scheduler, the
            learners' randomness), for reproducible decisions.
        per_cost: rank by ``score / cost`` instead of ``score`` (value per interaction; meant
            for non-negative scores such as probabilities; needs costs, i.e. an attached env or
            ``QueueView.costs``).
    """

    #: Registry name.
    name: ClassVar[str] = ""
    #: Short label used in tables (the paper's abbreviations).
    label: ClassVar[str] = ""
    #: Reads ground truth (a reference bound, not a runnable scheduler).
    reads_ground_truth: ClassVar[bool] = False
    #: Must be fitted before use.
    needs_fit: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None, per_cost: bool = False) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.per_cost = bool(per_cost)
        self._bindings: list[EnvBinding] = []

    # ------------------------------------------------------------------ scoring
    @property
    def uses_exploration(self) -> bool:
        """Whether scoring needs the exploration feature."""
        return False

    def fit(self, dataset: Any, exploration: Any = None) -> QueueScheduler:
        """Learn from a training dataset (no-op for the schedulers that do not learn)."""
        return self

    @abstractmethod
    def score(self, view: QueueView) -> np.ndarray:
        """``(n,)`` scores of the experiments of ``view``; higher is deployed earlier."""

    def priority(self, view: QueueView) -> np.ndarray:
        """The scores actually ranked: :meth:`score`, divided by cost with ``per_cost``."""
        s = np.asarray(self.score(view), dtype=float).reshape(-1)
        if s.shape != (len(view),):
            who = type(self).__name__
            raise RuntimeError(f"{who}.score returned shape {s.shape}, expected ({len(view)},)")
        if self.per_cost:
            if view.costs is None:
                raise ValueError(f"{self.name}: per_cost=True needs costs (attach the scheduler to the env)")
            s = s / np.maximum(view.costs, 1.0)
        return s

    def rank(self, view: QueueView, rng: np.random.Generator | None = None) -> np.ndarray:
        """The schedule: indices into ``view``, best first (equal scores in random order)."""
        s = self.priority(view)
        gen = self.rng if rng is None else rng
        return order_scores(s, gen.random(s.size))

    # ------------------------------------------------------------------ env protocol
    def attach(self, env: Any) -> QueueScheduler:
        """Bind to an ``ExperimentQueueEnv`` (a wrapper of one, or a ``DummyVecEnv`` of them);
        returns ``self``. See the module docstring for what it provides."""
        envs = getattr(env, "envs", None)
        self._bindings = [EnvBinding(e) for e in envs] if envs is not None else [EnvBinding(env)]
        for b in self._bindings:
            self._check_binding(b)
        return self

    def _check_binding(self, binding: EnvBinding) -> None:
        if binding.feature_names is not None:
            self._check_feature_names(binding.feature_names)

    def _check_feature_names(self, names: tuple[str, ...]) -> None:  # noqa: B027 (optional hook)
        """Hook for schedulers with a fixed feature set (default: accept any)."""

    def _binding(self, i: int) -> EnvBinding | None:
        if not self._bindings:
            return None
        if i >= len(self._bindings):
            n = len(self._bindings)
            raise ValueError(f"observation batch has more environments than the {n} attached")
        return self._bindings[i]

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        """Choose actions, with stable-baselines3's signature.

        Args:
            observation: a single or batched (``VecEnv``) observation, ``Dict`` or flat.
            state: recurrent state (unused; returned unchanged).
            episode_start: unused (the schedulers keep no per-episode memory).
            deterministic: unused (ties are broken by the scheduler's generator).
            action_masks: optional valid-action masks (single ``(A,)`` or batched ``(B, A)``);
                otherwise taken from the attached env or the observation.

        Returns:
            ``(actions, state)``: shape ``()`` for a single observation, ``(n_envs,)`` batched.
        """
        batch, batched = self._decode(observation)
        masks = None
        if action_masks is not None:
            masks = np.asarray(action_masks, dtype=bool).reshape(len(batch), -1)
        actions = np.empty(len(batch), dtype=np.int64)
        for i, obs in enumerate(batch):
            binding = self._binding(i)
            mask = masks[i] if masks is not None else None
            actions[i] = self._act(obs, binding, mask)
        if batched:
            return actions, state
        return actions.reshape(()), state

    def _decode(self, observation: Any) -> tuple[list[dict[str, np.ndarray]], bool]:
        if isinstance(observation, dict):
            feats = np.asarray(observation["features"], dtype=np.float64)
            batched = feats.ndim == 3
            keys = list(observation)
            arrays = {k: np.asarray(observation[k], dtype=np.float64) for k in keys}
            if not batched:
                arrays = {k: v[None] for k, v in arrays.items()}
            n = arrays["features"].shape[0]
            return [{k: v[i] for k, v in arrays.items()} for i in range(n)], batched
        flat = np.asarray(observation, dtype=np.float64)
        batched = flat.ndim == 2
        flat2 = flat if batched else flat[None]
        layout = self._bindings[0].layout if self._bindings else None
        if layout is None:
            nf = self._expected_n_features()
            if nf is None:
                raise ValueError(f"{self.name}: a flat observation needs attach(env) to be decoded")
            layout = ObservationLayout.infer(flat2.shape[1], nf)
        d = layout.unflatten(flat2)
        return [{k: v[i] for k, v in d.items()} for i in range(flat2.shape[0])], batched

    def _expected_n_features(self) -> int | None:
        return None

    def _act(self, obs: dict[str, np.ndarray], binding: EnvBinding | None, mask: np.ndarray | None) -> int:
        valid = obs["valid"] > 0.5
        q = valid.size
        has_explore_actions = "exploration" in obs
        if mask is None and binding is not None:
            mask = np.asarray(binding.env.action_masks(), dtype=bool)
        if mask is None:
            deploy = _observed_deployable(valid, obs["cost"], float(obs["budget"][0]))
            explore = None
            if has_explore_actions:
                explore = valid & (obs["explored"] < 0.5)  # budget for exploring is not observed
        else:
            deploy = mask[:q]
            explore = mask[q:] if mask.size > q else None
        if self.uses_exploration:
            if not has_explore_actions:
                raise ValueError(
                    f"{self.name} uses the exploration feature; "
                    "build the env with exploration_interactions > 0"
                )
            can = explore if explore is not None else np.zeros(q, dtype=bool)
            todo = np.flatnonzero(valid & (obs["explored"] < 0.5) & can)
            if todo.size:
                return int(q + todo[0])
        if not deploy.any():
            # Nothing fits (cannot happen before the env terminates); any occupied slot.
            occupied = np.flatnonzero(valid)
            return int(occupied[0]) if occupied.size else 0
        view = self._view(obs, binding, valid)
        idx = np.flatnonzero(valid)
        pri = np.full(q, -np.inf)
        pri[idx] = self.priority(view)
        pri[~deploy] = -np.inf
        cand = np.flatnonzero(deploy)
        best = cand[pri[cand] == pri[cand].max()]
        return int(best[0] if best.size == 1 else self.rng.choice(best))

    def _view(self, obs: dict[str, np.ndarray], binding: EnvBinding | None, valid: np.ndarray) -> QueueView:
        idx = np.flatnonzero(valid)
        feats = obs["features"]
        names = None
        if binding is not None:
            feats = binding.raw_features(feats)
            names = binding.feature_names
        elif self._needs_raw_features():
            raise ValueError(
                f"{self.name} needs the env's feature normalisation: call scheduler.attach(env) first"
            )
        exploration = None
        if "exploration" in obs:
            if binding is not None and binding.env.normalize_features:
                exploration = binding.exploration_statistics()[idx]
            else:
                exploration = obs["exploration"][idx]
        costs = None
        truth: dict[str, Any] = {}
        if binding is not None:
            env = binding.env
            slots = binding.slots()
            if not np.array_equal(slots >= 0, valid):
                raise RuntimeError("the attached env's queue does not match the observation")
            exps = slots[idx]
            if env.deployment_interactions is not None:
                costs = np.full(exps.size, float(env.deployment_interactions))
            else:
                costs = np.asarray(env.dataset.interactions, dtype=float)[exps]
            if self.reads_ground_truth:
                success, statistic = env.episode_outcomes
                truth = dict(
                    true_success=success[exps],
                    true_statistic=statistic[exps],
                    true_probability=env.dataset.success_probability_at(costs, exps),
                )
        elif self.reads_ground_truth:
            raise ValueError(f"{self.name} reads the ground truth: call scheduler.attach(env) first")
        elif self.per_cost:
            raise ValueError(f"{self.name}: per_cost=True needs attach(env) (costs)")
        return QueueView(
            features=feats[idx], exploration=exploration, costs=costs, feature_names=names, **truth
        )

    def _needs_raw_features(self) -> bool:
        return self.per_cost

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed!r})"


def _observed_deployable(valid: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """Deployable slots judged from the observation alone: occupied and ``cost <= budget``.

    The observed cost is clipped at 1 (= ``T``), so a clipped slot is taken to fit only when
    the whole budget is left and no unclipped slot fits (it fits iff its cost is exactly
    ``T``); an attached scheduler uses the env's exact mask instead.
    """
    ok = valid & (cost < 1.0) & (cost <= budget * (1.0 + 1e-6))
    if not ok.any() and budget >= 1.0:
        ok = valid & (cost >= 1.0)
    return ok


def order_scores(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, ties by ``tiebreak`` (NaN scores last)."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((tiebreak, -s)).astype(np.int64)


def rank_rows(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise :func:`order_scores` of a ``(R, n)`` score matrix with random tie-breaks."""
    s = np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=float))
    tb = rng.random(s.shape)
    return np.lexsort((tb, -s), axis=-1).astype(np.int64)
