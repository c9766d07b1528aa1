"""The learned queue schedulers (fitted on a training part of an ``ExperimentDataset``): their
base class, pointwise L1 logistic regression and the pairwise RankingSVM (the boosted trees are
in :mod:`.boosted`). scikit-learn (the ``queue`` extra) is imported when a model is fitted."""

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

    def tuned_params(self) -> dict[str, Any]:
        """Constructor options that refit this scheduler with its tuned hyperparameters and
        without tuning again (empty: nothing to reuse)."""
        return {}

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


def _lr_l1_kwargs() -> dict[str, Any]:
    """L1 keywords for ``LogisticRegression`` across scikit-learn versions."""
    from sklearn.linear_model import LogisticRegression

    param = inspect.signature(LogisticRegression.__init__).parameters.get("penalty")
    return {"l1_ratio": 1.0} if param is not None and param.default == "deprecated" else {"penalty": "l1"}


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
        C: a fixed ``C`` (no cross-validation: one fit), e.g. one chosen by an earlier fit's
            cross-validation (:meth:`tuned_params`).
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
        C: float | None = None,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(seed=seed, **kw)
        if solver not in ("liblinear", "saga"):
            raise ValueError(f"solver must be 'liblinear' or 'saga', got {solver!r}")
        self.Cs, self.cv, self.solver, self.tol = Cs, int(cv), solver, float(tol)
        self.C = None if C is None else check_real("C", C, 0.0, low_open=True)

    def tuned_params(self) -> dict[str, Any]:
        """``{"C": ...}``: the cross-validated ``C`` (empty without a cross-validated fit)."""
        if self.C is not None or getattr(self, "model_", None) is None or not hasattr(self.model_, "C_"):
            return {}
        return {"C": float(np.asarray(self.model_.C_).reshape(-1)[0])}

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
        if self.C is not None:
            from sklearn.linear_model import LogisticRegression

            model: Any = LogisticRegression(
                C=self.C,
                solver=self.solver,
                tol=self.tol,
                max_iter=2000 if self.solver == "saga" else 200,
                random_state=self._random_state(),
                **_lr_l1_kwargs(),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(z, y.astype(int))
            self.model_ = model
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
