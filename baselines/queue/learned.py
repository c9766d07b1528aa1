"""The learned queue schedulers (fitted on a training part of an ``ExperimentDataset``):
pointwise L1 logistic regression and boosted trees, pairwise RankingSVM and pairwise boosted
trees. scikit-learn (the ``queue`` extra) is imported when a model is fitted."""

from __future__ import annotations

import inspect
import warnings
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labsched.baselines.queue.base import QueueScheduler
from labsched.baselines.queue.view import QueueView
from labsched.envs._lib.validation import check_real

__all__ = [
    "DEFAULT_CS",
    "LearnedScheduler",
    "PairwiseBoostedTrees",
    "PointwiseBoostedTrees",
    "PointwiseLogistic",
    "RankingSVM",
]


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


class _BoostedTrees(LearnedScheduler):
    """The hyperparameters both tree boosters share (``n_estimators``, ``learning_rate``,
    ``max_depth``, ``subsample``); other keywords go to :class:`LearnedScheduler`."""

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        max_depth: int = 2,
        subsample: float = 0.8,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.n_estimators, self.learning_rate = int(n_estimators), float(learning_rate)
        self.max_depth, self.subsample = int(max_depth), float(subsample)


class PointwiseBoostedTrees(_BoostedTrees):
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

    def __init__(self, *, tune: bool = False, cv: int = 5, **kw: Any) -> None:
        super().__init__(**kw)
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
        self.C = check_real("C", C, 0.0, low_open=True)

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


class PairwiseBoostedTrees(_BoostedTrees):
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

    def __init__(self, *, min_samples_leaf: int = 3, **kw: Any) -> None:
        super().__init__(**kw)
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
