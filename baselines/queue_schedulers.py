"""Schedulers of the experiment queue (``labsched/ExperimentQueue-v0``), greedy by a score.

Kharitonov, Macdonald, Serdyukov & Ounis (SIGIR 2015) order a queue of online experiments by an
estimate of each experiment's probability of success and deploy the best-ranked one whenever
the pipeline is free; with known probabilities and equal costs this greedy rule maximises the
expected number of successes (their Fact 1). Every scheduler here is such a greedy rule: it
gives each queued experiment a **score** (higher runs first) and deploys the best deployable
one. They differ in where the score comes from:

| name | label | score | reads ground truth |
|---|---|---|---|
| ``random`` | Rnd | a uniform random number (the un-prioritised queue) | no |
| ``dcg`` | DCG | the feature ``dDCG@3[irrel]\\|all`` (B minus A) | no |
| ``err`` | ERR | the feature ``dERR@3[irrel]\\|all`` | no |
| ``cm`` | CM | the click-model feature ``dClicks@5\\|all`` (interleaving only) | no |
| ``feature`` | the column | any feature column, ``feature="dSat@5\\|len2"`` | no |
| ``explore`` | Explore | the exploration feature: the outcome statistic of a short preliminary run | no |
| ``lr`` | LR | pointwise L1 logistic regression, ``C`` by cross-validation: ``P(success)`` | no |
| ``lgbm`` | LGBM | pointwise gradient-boosted trees: ``P(success)`` | no |
| ``svm`` | SVM | pairwise RankingSVM on feature differences: ``w . x`` | no |
| ``pgbm`` | PGBM | pairwise gradient-boosted trees (RankNet loss on all ordered pairs) | no |
| ``upper_bound`` | UB | the true outcome (a reference, **not a scheduler one can run**) | **yes** |
| ``oracle`` | Oracle | the true ``P(e)`` (Fact 1's greedy rule; a reference) | **yes** |

The learned schedulers (``lr``, ``lgbm``, ``svm``, ``pgbm``) must be :meth:`~QueueScheduler.fit`
on a training part of an :class:`~labsched.envs.queue_features.ExperimentDataset` (labels: the
realised success; pairs: ordered by the realised outcome statistic) and are then applied
greedily to unseen experiments. ``fit(train, exploration=values)`` adds the exploration
feature as one more column (the paper's 61st / 57th feature); a scheduler fitted that way needs
exploration results to score. ``upper_bound`` and ``oracle`` read the ground truth of the
environment or dataset (``ExperimentQueueEnv.episode_outcomes``, ``success_probability``);
they are bounds for comparison only.

## Two ways to use a scheduler
*On a dataset* (the paper's offline protocol, :mod:`labsched.evaluation.queue_protocol`):
``scheduler.rank(QueueView(features=..., exploration=...))`` returns the schedule (indices,
best first).

*In the environment*, with stable-baselines3's ``predict`` signature (so
``stable_baselines3.common.evaluation.evaluate_policy`` runs it)::

    env = gym.make("labsched/ExperimentQueue-v0", deployment_interactions=100_000,
                   budget=300_000, max_queue=8)
    sched = make_queue_scheduler("pgbm", seed=0).fit(train_dataset).attach(env)
    obs, info = env.reset(seed=0)
    action, _ = sched.predict(obs)

:meth:`~QueueScheduler.attach` tells the scheduler the environment's observation layout and
its feature normalisation (the env z-scores features with its pool's mean and standard
deviation; the scheduler maps them back to raw values, which is exact except for values the
env clipped at ``feature_clip`` standard deviations). It is required for the learned
schedulers, the two references, ``per_cost=True`` and flat observations of ambiguous length;
the other schedulers rank correctly from a ``Dict`` observation alone (their ranking does not
change under the env's per-column affine normalisation). A bound scheduler takes the valid
deploy actions from ``env.action_masks()``; unbound, from the observation (``valid`` and
``cost <= budget``). ``predict`` also accepts ``action_masks=`` as sb3-contrib's MaskablePPO
does.

In an environment with exploration actions (``exploration_interactions > 0``), a scheduler
that uses exploration first explores every queued experiment it has not explored yet (while
exploring is valid), then deploys the best; the others never explore. With
``normalize_features=True`` the env reports exploration results as z scores; a bound
scheduler reads the raw outcome statistic (the feature it was trained on) from the env's own
exploration records (``env.schedule``), which carry the same run.

Scores of equal value are ordered at random (the scheduler's own generator), so constant
scores (e.g. an L1 model that kept no feature) give the random schedule, not slot order.
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "QUEUE_SCHEDULERS",
    "ExploreScheduler",
    "FeatureScheduler",
    "LearnedScheduler",
    "ObservationLayout",
    "OracleScheduler",
    "PairwiseBoostedTrees",
    "PointwiseBoostedTrees",
    "PointwiseLogistic",
    "QueueScheduler",
    "QueueView",
    "RandomScheduler",
    "RankingSVM",
    "UpperBoundScheduler",
    "make_queue_scheduler",
    "register_queue_scheduler",
]

# Feature columns of the single-feature schedulers (the paper's DCG, ERR and CM schedulers:
# unlabelled documents counted irrelevant, all queries).
DCG_FEATURE = "dDCG@3[irrel]|all"
ERR_FEATURE = "dERR@3[irrel]|all"
CM_FEATURE = "dClicks@5|all"


# ----------------------------------------------------------------------------------------------
# What a scheduler sees
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueView:
    """The experiments to be ranked, as a scheduler sees them.

    Attributes:
        features: ``(n, F)`` raw pre-experiment features (columns ``feature_names`` of the
            dataset; B minus A).
        exploration: ``(n,)`` exploration results (the outcome statistic of a preliminary run;
            0 where an experiment was not explored), or None without exploration.
        costs: ``(n,)`` interactions each experiment consumes (for ``per_cost``), or None.
        true_statistic: ``(n,)`` the experiments' real outcome statistic (ground truth, for
            ``upper_bound`` only), or None.
        true_success: ``(n,)`` the real success of their deployment (ground truth, for
            ``upper_bound`` in the env), or None.
        true_probability: ``(n,)`` the real ``P(e)`` (ground truth, for ``oracle``), or None.
        feature_names: names of the feature columns, or None (inferred from ``F``: 60 columns
            are the interleaving features, 56 the A/B-test features).
    """

    features: np.ndarray
    exploration: np.ndarray | None = None
    costs: np.ndarray | None = None
    true_statistic: np.ndarray | None = None
    true_success: np.ndarray | None = None
    true_probability: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.features, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"features must be a 2-D (n, F) array, got shape {x.shape}")
        object.__setattr__(self, "features", x)
        n = x.shape[0]
        for name in ("exploration", "costs", "true_statistic", "true_success", "true_probability"):
            v = getattr(self, name)
            if v is None:
                continue
            arr = np.asarray(v, dtype=float).reshape(-1)
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.shape(v)}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return self.features.shape[0]

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        exploration: Any = None,
        *,
        costs: Any = None,
        with_truth: bool = False,
    ) -> QueueView:
        """A view of every experiment of an :class:`ExperimentDataset` (optionally with its
        ground truth: the realised statistic and success, and ``success_probability``)."""
        truth: dict[str, Any] = {}
        if with_truth:
            truth = dict(
                true_statistic=dataset.statistic,
                true_success=dataset.success,
                true_probability=dataset.success_probability,
            )
        return cls(
            features=dataset.features,
            exploration=exploration,
            costs=dataset.interactions if costs is None else costs,
            feature_names=tuple(dataset.feature_names),
            **truth,
        )


def _resolve_feature_names(view_names: tuple[str, ...] | None, n_features: int) -> tuple[str, ...]:
    if view_names is not None:
        return tuple(view_names)
    from labsched.envs.queue_features import feature_names

    for kind in ("interleaving", "ab"):
        names = feature_names(kind)
        if len(names) == n_features:
            return names
    raise ValueError(
        f"cannot tell the feature columns of a {n_features}-column matrix; pass feature_names "
        "(or fit the scheduler on a dataset)"
    )


# ----------------------------------------------------------------------------------------------
# Observation layout and the env binding
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservationLayout:
    """Shape of an ``ExperimentQueueEnv`` observation: ``max_queue`` slots of ``n_features``
    features, with or without the exploration keys. The flat form concatenates the ``Dict``
    keys in sorted order: budget (1), cost (Q), [exploration (Q), explored (Q)], features
    (Q * F), valid (Q)."""

    max_queue: int
    n_features: int
    exploration: bool

    @property
    def flat_size(self) -> int:
        q = self.max_queue
        return 1 + q + (2 * q if self.exploration else 0) + q * self.n_features + q

    @property
    def n_actions(self) -> int:
        return 2 * self.max_queue if self.exploration else self.max_queue

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """``(B, flat_size)`` -> batched ``Dict`` arrays."""
        q, f = self.max_queue, self.n_features
        flat = np.asarray(flat, dtype=np.float64)
        if flat.ndim != 2 or flat.shape[1] != self.flat_size:
            raise ValueError(f"flat observation must have length {self.flat_size}, got shape {flat.shape}")
        out: dict[str, np.ndarray] = {}
        pos = 0

        def take(key: str, width: int, shape: tuple[int, ...]) -> None:
            nonlocal pos
            out[key] = flat[:, pos : pos + width].reshape(flat.shape[0], *shape)
            pos += width

        take("budget", 1, (1,))
        take("cost", q, (q,))
        if self.exploration:
            take("exploration", q, (q,))
            take("explored", q, (q,))
        take("features", q * f, (q, f))
        take("valid", q, (q,))
        return out

    @classmethod
    def infer(cls, flat_size: int, n_features: int) -> ObservationLayout:
        """The unique layout of a flat observation of ``flat_size`` with ``n_features`` columns."""
        found = []
        for explore, per_slot in ((False, n_features + 2), (True, n_features + 4)):
            if (flat_size - 1) % per_slot == 0 and flat_size > 1:
                found.append(cls((flat_size - 1) // per_slot, n_features, explore))
        if len(found) != 1:
            raise ValueError(
                f"cannot infer the layout of a flat observation of length {flat_size} with "
                f"{n_features} features; call scheduler.attach(env)"
            )
        return found[0]


class _Binding:
    """What a scheduler knows about one (unwrapped) ``ExperimentQueueEnv``."""

    def __init__(self, env: Any) -> None:
        from labsched.envs.experiment_queue import ExperimentQueueEnv

        base = getattr(env, "unwrapped", env)
        if not isinstance(base, ExperimentQueueEnv):
            kind = type(env).__name__
            raise TypeError(f"attach() needs an ExperimentQueueEnv (or a wrapper of one), got {kind}")
        self.env = base
        self.layout = ObservationLayout(base.max_queue, base.n_features, base.exploration_interactions > 0)
        self.feature_names = tuple(base.dataset.feature_names) if base.dataset is not None else None

    def _normalisation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The env's current per-column (mean, std) (recomputed: ``fresh`` pools change)."""
        if not self.env.normalize_features:
            return None
        x = np.asarray(self.env.dataset.features, dtype=float)
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 0, std, 1.0)

    def raw_features(self, obs_features: np.ndarray) -> np.ndarray:
        norm = self._normalisation()
        if norm is None:
            return obs_features
        mean, std = norm
        return obs_features * std + mean

    def slots(self) -> np.ndarray:
        return self.env.queue

    def exploration_statistics(self) -> np.ndarray:
        """Raw exploration statistic per slot (0 if not explored) from the env's records."""
        stats: dict[int, float] = {}
        for rec in self.env.schedule:
            if rec.kind == "explore":
                stats[rec.experiment] = rec.statistic
        return np.array([stats.get(int(e), 0.0) if e >= 0 else 0.0 for e in self.slots()])


# ----------------------------------------------------------------------------------------------
# The base class
# ----------------------------------------------------------------------------------------------


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
        self._bindings: list[_Binding] = []

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
        return _order(s, gen.random(s.size))

    # ------------------------------------------------------------------ env protocol
    def attach(self, env: Any) -> QueueScheduler:
        """Bind to an ``ExperimentQueueEnv`` (a wrapper of one, or a ``DummyVecEnv`` of them);
        returns ``self``. See the module docstring for what it provides."""
        envs = getattr(env, "envs", None)
        self._bindings = [_Binding(e) for e in envs] if envs is not None else [_Binding(env)]
        for b in self._bindings:
            self._check_binding(b)
        return self

    def _check_binding(self, binding: _Binding) -> None:
        if binding.feature_names is not None:
            self._check_feature_names(binding.feature_names)

    def _check_feature_names(self, names: tuple[str, ...]) -> None:  # noqa: B027 (optional hook)
        """Hook for schedulers with a fixed feature set (default: accept any)."""

    def _binding(self, i: int) -> _Binding | None:
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

    def _act(self, obs: dict[str, np.ndarray], binding: _Binding | None, mask: np.ndarray | None) -> int:
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

    def _view(self, obs: dict[str, np.ndarray], binding: _Binding | None, valid: np.ndarray) -> QueueView:
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


def _order(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, ties by ``tiebreak`` (NaN scores last)."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((tiebreak, -s)).astype(np.int64)


def rank_rows(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise :func:`_order` of a ``(R, n)`` score matrix with random tie-breaks."""
    s = np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=float))
    tb = rng.random(s.shape)
    return np.lexsort((tb, -s), axis=-1).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Simple schedulers
# ----------------------------------------------------------------------------------------------


class RandomScheduler(QueueScheduler):
    """The un-prioritised queue: a uniformly random order."""

    name = "random"
    label = "Rnd"

    def score(self, view: QueueView) -> np.ndarray:
        return self.rng.random(len(view))


class FeatureScheduler(QueueScheduler):
    """Greedy by one pre-experiment feature (largest first; ``per_cost`` divides by cost).

    Args:
        feature: the column name, e.g. ``"dERR@3[irrel]|all"``.
        label: table label (default: the column name).
    """

    name = "feature"

    def __init__(
        self, feature: str = ERR_FEATURE, *, label: str | None = None, seed: int | None = None, **kw: Any
    ) -> None:
        super().__init__(seed=seed, **kw)
        if not isinstance(feature, str):
            raise TypeError(f"feature must be a column name, got {type(feature).__name__}")
        self.feature = feature
        self.label = label or type(self).label or feature

    def _check_feature_names(self, names: tuple[str, ...]) -> None:
        if self.feature not in names:
            hint = ""
            if "Clicks" in self.feature:
                hint = " (the click-model CM feature exists only for interleaving)"
            raise ValueError(f"{self.name}: the data has no feature {self.feature!r}{hint}")

    def fit(self, dataset: Any, exploration: Any = None) -> FeatureScheduler:
        self._check_feature_names(tuple(dataset.feature_names))
        return self

    def score(self, view: QueueView) -> np.ndarray:
        names = _resolve_feature_names(view.feature_names, view.features.shape[1])
        self._check_feature_names(names)
        return view.features[:, names.index(self.feature)].copy()

    def _needs_raw_features(self) -> bool:
        return self.per_cost


class DCGScheduler(FeatureScheduler):
    """Greedy by the DCG@3 difference (unlabelled documents irrelevant, all queries)."""

    name = "dcg"
    label = "DCG"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(DCG_FEATURE, seed=seed, **kw)


class ERRScheduler(FeatureScheduler):
    """Greedy by the ERR@3 difference (unlabelled documents irrelevant, all queries)."""

    name = "err"
    label = "ERR"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(ERR_FEATURE, seed=seed, **kw)


class CMScheduler(FeatureScheduler):
    """Greedy by the click model's expected interleaving click difference (interleaving only)."""

    name = "cm"
    label = "CM"

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(CM_FEATURE, seed=seed, **kw)


class ExploreScheduler(QueueScheduler):
    """Greedy by the exploration feature (the outcome of a short preliminary deployment)."""

    name = "explore"
    label = "Explore"

    @property
    def uses_exploration(self) -> bool:
        return True

    def score(self, view: QueueView) -> np.ndarray:
        if view.exploration is None:
            raise ValueError("explore needs exploration results (QueueView.exploration)")
        return view.exploration.copy()


class UpperBoundScheduler(QueueScheduler):
    """Reference bound that **reads the ground truth**: sorts by the true outcome.

    On a dataset (the paper's UpperBound) it sorts by the realised outcome statistic of each
    experiment (``QueueView.true_statistic``). In the env it sorts by the episode's drawn
    outcome (``ExperimentQueueEnv.episode_outcomes``): successful deployments first, each group
    by its statistic. No real scheduler can do this.
    """

    name = "upper_bound"
    label = "UB"
    reads_ground_truth = True

    def score(self, view: QueueView) -> np.ndarray:
        if view.true_statistic is None:
            raise ValueError("upper_bound reads the ground truth: QueueView.true_statistic is missing")
        stat = view.true_statistic
        if view.true_success is None:
            return stat.copy()
        if stat.size == 0:
            return stat.copy()
        # Lexicographic (success, statistic) as one number: successes first.
        shifted = stat - stat.min()  # in [0, ptp]
        return view.true_success * (2.0 * (float(np.ptp(stat)) + 1.0)) + shifted

    def _needs_raw_features(self) -> bool:
        return False


class OracleScheduler(QueueScheduler):
    """Reference that **reads the ground truth**: greedy by the true probability of success
    ``P(e)`` (the greedy rule of the paper's Fact 1, optimal with equal costs).

    In the env, ``P(e)`` is the generative model's probability at the deployment size
    (``dataset.success_probability_at``); with ``outcome="bootstrap"`` the episode's outcomes
    are resampled from recorded runs instead, whose success rate can differ from it.
    """

    name = "oracle"
    label = "Oracle"
    reads_ground_truth = True

    def score(self, view: QueueView) -> np.ndarray:
        if view.true_probability is None:
            raise ValueError("oracle reads the ground truth: QueueView.true_probability is missing")
        return view.true_probability.copy()


# ----------------------------------------------------------------------------------------------
# Learned schedulers
# ----------------------------------------------------------------------------------------------


@dataclass
class _FitState:
    feature_names: tuple[str, ...]
    with_exploration: bool
    n_train: int
    extra: dict[str, Any] = field(default_factory=dict)


class LearnedScheduler(QueueScheduler):
    """Base of the learned greedy schedulers: ``fit(train)``, then score unseen experiments.

    ``fit(dataset, exploration=None)``: ``dataset`` is an ``ExperimentDataset`` (its
    ``features``, ``success`` labels and ``statistic`` outcomes are used); ``exploration``,
    if given, is the ``(E,)`` exploration feature of the training experiments and becomes the
    last column (the scheduler then needs exploration results to score).
    """

    needs_fit = True

    def __init__(self, *, seed: int | None = None, **kw: Any) -> None:
        super().__init__(seed=seed, **kw)
        self.fitted_: _FitState | None = None

    @property
    def uses_exploration(self) -> bool:
        return self.fitted_ is not None and self.fitted_.with_exploration

    def _random_state(self) -> int:
        return int(np.random.default_rng(self.seed).integers(2**31 - 1))

    def fit(self, dataset: Any, exploration: Any = None) -> LearnedScheduler:
        x = np.asarray(dataset.features, dtype=float)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"{self.name}: need at least two training experiments, got features {x.shape}")
        if exploration is not None:
            e = np.asarray(exploration, dtype=float).reshape(-1)
            if e.shape != (x.shape[0],):
                raise ValueError(f"exploration must have shape ({x.shape[0]},), got {np.shape(exploration)}")
            x = np.column_stack([x, e])
        y = np.asarray(dataset.success, dtype=bool)
        sigma = np.asarray(dataset.statistic, dtype=float)
        self.fitted_ = _FitState(tuple(dataset.feature_names), exploration is not None, x.shape[0])
        self._fit(x, y, sigma)
        return self

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        """Fit on the design matrix (features [+ exploration]), labels and outcomes."""

    @abstractmethod
    def _score(self, x: np.ndarray) -> np.ndarray:
        """Scores of design rows."""

    def design(self, view: QueueView) -> np.ndarray:
        """The model's input rows for ``view`` (features, plus exploration if fitted with it)."""
        if self.fitted_ is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit(train_dataset) first")
        x = view.features
        nf = len(self.fitted_.feature_names)
        if x.shape[1] != nf:
            raise ValueError(f"{self.name} was fitted on {nf} features, the view has {x.shape[1]}")
        if view.feature_names is not None and tuple(view.feature_names) != self.fitted_.feature_names:
            raise ValueError(f"{self.name}: the view's feature columns differ from the training data's")
        if self.fitted_.with_exploration:
            if view.exploration is None:
                raise ValueError(
                    f"{self.name} was fitted with the exploration feature: pass exploration results"
                )
            x = np.column_stack([x, view.exploration])
        return x

    def score(self, view: QueueView) -> np.ndarray:
        return np.asarray(self._score(self.design(view)), dtype=float).reshape(-1)

    def _check_feature_names(self, names: tuple[str, ...]) -> None:
        if self.fitted_ is not None and tuple(names) != self.fitted_.feature_names:
            raise ValueError(f"{self.name}: the env's feature columns differ from the training data's")

    def _expected_n_features(self) -> int | None:
        return None if self.fitted_ is None else len(self.fitted_.feature_names)

    def _needs_raw_features(self) -> bool:
        return True


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def _lr_cv_kwargs() -> dict[str, Any]:
    """L1 keywords for ``LogisticRegressionCV`` across scikit-learn versions (``penalty`` is
    deprecated from 1.8 in favour of ``l1_ratios``)."""
    from sklearn.linear_model import LogisticRegressionCV

    params = inspect.signature(LogisticRegressionCV.__init__).parameters
    kw: dict[str, Any] = {}
    if "use_legacy_attributes" in params:
        kw["use_legacy_attributes"] = False
    if params.get("penalty") is not None and params["penalty"].default == "deprecated":
        kw["l1_ratios"] = (1.0,)
    else:
        kw["penalty"] = "l1"
    return kw


def _neg_log_loss(estimator: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Mean log-likelihood of binary labels (scikit-learn's ``neg_log_loss``, without its
    input validation, which dominated the cross-validation's run time on these tiny folds)."""
    z = np.asarray(
        x @ np.asarray(estimator.coef_).reshape(-1) + np.asarray(estimator.intercept_).reshape(-1)[0]
    )
    pos = np.asarray(y) == estimator.classes_[1]
    return float(-np.mean(np.logaddexp(0.0, np.where(pos, -z, z))))


DEFAULT_CS = tuple(float(c) for c in np.logspace(-2.0, 2.0, 10))


class PointwiseLogistic(LearnedScheduler):
    """Pointwise logistic regression with an L1 penalty; ``C`` chosen by stratified k-fold
    cross-validation (log loss) on the training set; score ``P(success)``.

    Args:
        Cs: candidate ``C`` values (default 10 on a log grid from 0.01 to 100: on standardised
            features smaller ones keep no feature, larger ones barely regularise), or their
            number (scikit-learn's 1e-4..1e4 grid).
        cv: folds (the paper's ten; fewer if the minority class is smaller).
        solver: ``"liblinear"`` (default) or ``"saga"``.
    """

    name = "lr"
    label = "LR"

    def __init__(
        self,
        *,
        Cs: int | Any = DEFAULT_CS,
        cv: int = 10,
        solver: str = "liblinear",
        tol: float = 1e-3,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(seed=seed, **kw)
        if solver not in ("liblinear", "saga"):
            raise ValueError(f"solver must be 'liblinear' or 'saga', got {solver!r}")
        self.Cs, self.cv, self.solver, self.tol = Cs, int(cv), solver, float(tol)

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        self._mean, self._std = _standardise(x)
        z = (x - self._mean) / self._std
        minority = int(min(y.sum(), (~y).sum()))
        self._const = None
        if minority < 2:
            self._const = float(y.mean())
            return
        folds = StratifiedKFold(min(self.cv, minority), shuffle=True, random_state=self._random_state())
        model = LogisticRegressionCV(
            Cs=self.Cs if isinstance(self.Cs, int) else list(self.Cs),
            cv=folds,
            solver=self.solver,
            scoring=_neg_log_loss,
            tol=self.tol,
            max_iter=2000 if self.solver == "saga" else 200,
            random_state=self._random_state(),
            **_lr_cv_kwargs(),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny folds
            model.fit(z, y.astype(int))
        self.model_ = model

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self._const is not None:
            return np.full(x.shape[0], self._const)
        return self.model_.predict_proba((x - self._mean) / self._std)[:, 1]

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients on the standardised features (L1: many are exactly zero)."""
        return np.asarray(self.model_.coef_).reshape(-1)


class PointwiseBoostedTrees(LearnedScheduler):
    """Pointwise gradient-boosted trees (``GradientBoostingClassifier``); score ``P(success)``.

    Args:
        n_estimators, learning_rate, max_depth, subsample: the booster's (fixed by default; the
            values below suit datasets of tens of experiments).
        tune: choose the number of trees by stratified ``cv``-fold cross-validation of the log
            loss along the boosting path (one fit per fold; slower).
        cv: folds when tuning.
    """

    name = "lgbm"
    label = "LGBM"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        max_depth: int = 2,
        subsample: float = 0.8,
        tune: bool = False,
        cv: int = 5,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(seed=seed, **kw)
        self.n_estimators, self.learning_rate = int(n_estimators), float(learning_rate)
        self.max_depth, self.subsample = int(max_depth), float(subsample)
        self.tune, self.cv = bool(tune), int(cv)

    def _booster(self, n: int) -> Any:
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(
            n_estimators=n,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            subsample=self.subsample,
            random_state=self._random_state(),
        )

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        self._const = None
        if y.all() or not y.any():
            self._const = float(y.mean())
            return
        n = self.n_estimators
        minority = int(min(y.sum(), (~y).sum()))
        if self.tune and minority >= 2:
            from sklearn.model_selection import StratifiedKFold

            losses = np.zeros(self.n_estimators)
            folds = StratifiedKFold(min(self.cv, minority), shuffle=True, random_state=self._random_state())
            for tr, te in folds.split(x, y):
                m = self._booster(self.n_estimators).fit(x[tr], y[tr])
                for k, p in enumerate(m.staged_predict_proba(x[te])):
                    q = np.clip(p[:, 1], 1e-9, 1 - 1e-9)
                    losses[k] -= np.sum(np.where(y[te], np.log(q), np.log1p(-q)))
            n = int(np.argmin(losses)) + 1
        self.n_trees_ = n
        self.model_ = self._booster(n).fit(x, y)

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self._const is not None:
            return np.full(x.shape[0], self._const)
        return self.model_.predict_proba(x)[:, 1]


def _ordered_pairs(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``sigma_i > sigma_j``."""
    i, j = np.nonzero(sigma[:, None] > sigma[None, :])
    return i.astype(np.int64), j.astype(np.int64)


class RankingSVM(LearnedScheduler):
    """Pairwise RankingSVM: a linear SVM (``LinearSVC``, no intercept) separating the feature
    differences ``x_i - x_j`` of the ordered pairs ``sigma_i > sigma_j`` (standardised
    features; each pair used once with a random orientation); score ``w . x``.

    Args:
        C: the SVM's regularisation constant.
    """

    name = "svm"
    label = "SVM"

    def __init__(self, *, C: float = 0.001, seed: int | None = None, **kw: Any) -> None:
        super().__init__(seed=seed, **kw)
        if not (math.isfinite(C) and C > 0):
            raise ValueError(f"C must be finite and > 0, got {C!r}")
        self.C = float(C)

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        from sklearn.svm import LinearSVC

        self._mean, self._std = _standardise(x)
        z = (x - self._mean) / self._std
        i, j = _ordered_pairs(sigma)
        self.n_pairs_ = int(i.size)
        if i.size == 0:
            self.w_ = np.zeros(z.shape[1])
            return
        flip = np.random.default_rng(self._random_state()).random(i.size) < 0.5
        d = z[i] - z[j]
        d[flip] *= -1.0
        lab = np.where(flip, -1, 1)
        svm = LinearSVC(C=self.C, fit_intercept=False, max_iter=20_000, random_state=self._random_state())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            svm.fit(d, lab)
        self.w_ = np.asarray(svm.coef_).reshape(-1)

    def _score(self, x: np.ndarray) -> np.ndarray:
        return ((x - self._mean) / self._std) @ self.w_


class PairwiseBoostedTrees(LearnedScheduler):
    """Pairwise gradient-boosted regression trees: a scoring function ``f`` grown to minimise
    the pairwise logistic (RankNet) loss ``sum log(1 + exp(f(x_j) - f(x_i)))`` over the ordered
    pairs ``sigma_i > sigma_j``, a smooth stand-in for the number of misordered pairs (what R's
    ``gbm`` pairwise distribution optimises). Each round fits a ``DecisionTreeRegressor`` to
    the negative gradient on a subsample of experiments and sets every leaf by a Newton step.

    Args:
        n_estimators, learning_rate, max_depth, subsample, min_samples_leaf: the booster's.
    """

    name = "pgbm"
    label = "PGBM"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        max_depth: int = 2,
        subsample: float = 0.8,
        min_samples_leaf: int = 3,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(seed=seed, **kw)
        self.n_estimators, self.learning_rate = int(n_estimators), float(learning_rate)
        self.max_depth, self.subsample = int(max_depth), float(subsample)
        self.min_samples_leaf = int(min_samples_leaf)

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.default_rng(self._random_state())
        x = np.ascontiguousarray(x, dtype=np.float32)  # what the trees use internally anyway
        n = x.shape[0]
        pi, pj = _ordered_pairs(sigma)
        self.n_pairs_ = int(pi.size)
        self.trees_: list[tuple[Any, np.ndarray]] = []
        f = np.zeros(n)
        self.train_loss_ = []
        if pi.size == 0:
            return
        for _ in range(self.n_estimators):
            diff = f[pi] - f[pj]
            rho = 1.0 / (1.0 + np.exp(diff))  # d loss / d diff = -rho
            g = np.bincount(pi, rho, minlength=n) - np.bincount(pj, rho, minlength=n)  # -gradient
            w = rho * (1.0 - rho)
            h = np.bincount(pi, w, minlength=n) + np.bincount(pj, w, minlength=n)
            self.train_loss_.append(float(np.logaddexp(0.0, -diff).mean()))
            rows = np.flatnonzero(rng.random(n) < self.subsample)
            if rows.size < 2 * self.min_samples_leaf:
                rows = np.arange(n)
            tree = DecisionTreeRegressor(
                max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf,
                random_state=int(rng.integers(2**31 - 1)),
            )
            tree.fit(x[rows], g[rows], check_input=False)
            leaves = tree.apply(x[rows], check_input=False)
            n_nodes = tree.tree_.node_count
            gs = np.bincount(leaves, g[rows], minlength=n_nodes)
            hs = np.bincount(leaves, h[rows], minlength=n_nodes)
            value = np.where(hs > 1e-12, gs / np.maximum(hs, 1e-12), 0.0)
            self.trees_.append((tree, value))
            f += self.learning_rate * value[tree.apply(x, check_input=False)]
        self.train_scores_ = f

    def _score(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape[0])
        x = np.ascontiguousarray(x, dtype=np.float32)
        for tree, value in self.trees_:
            out += self.learning_rate * value[tree.apply(x, check_input=False)]
        return out


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

QUEUE_SCHEDULERS: dict[str, type[QueueScheduler]] = {}


def register_queue_scheduler(cls: type[QueueScheduler]) -> type[QueueScheduler]:
    """Add a queue scheduler class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    QUEUE_SCHEDULERS[cls.name] = cls
    return cls


for _cls in (
    RandomScheduler,
    DCGScheduler,
    ERRScheduler,
    CMScheduler,
    FeatureScheduler,
    ExploreScheduler,
    PointwiseLogistic,
    PointwiseBoostedTrees,
    RankingSVM,
    PairwiseBoostedTrees,
    UpperBoundScheduler,
    OracleScheduler,
):
    register_queue_scheduler(_cls)

_ALIASES = {"rnd": "random", "ub": "upper_bound", "upperbound": "upper_bound", "upper-bound": "upper_bound"}


def make_queue_scheduler(name: str, **options: Any) -> QueueScheduler:
    """Build a queue scheduler by name (case-insensitive; ``rnd`` and ``ub`` are aliases).

    Args:
        name: one of ``sorted(QUEUE_SCHEDULERS)``.
        **options: constructor options (``seed=...``, ``per_cost=...``, ``feature=...`` for
            ``feature``, the learners' hyperparameters).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"scheduler name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in QUEUE_SCHEDULERS:
        raise ValueError(f"unknown queue scheduler {name!r}; known: {', '.join(sorted(QUEUE_SCHEDULERS))}")
    return QUEUE_SCHEDULERS[key](**options)
