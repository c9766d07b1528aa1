"""The boosted-tree queue schedulers: pointwise gradient boosting of the success label (LGBM,
cross-validated by default) and pairwise boosting of a RankNet loss (PGBM), both on the NumPy
trees of :mod:`.small_trees`. scikit-learn (the ``queue`` extra) is imported for the folds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from labsched.baselines.queue.learned import LearnedScheduler, _ordered_pairs
from labsched.baselines.queue.small_trees import SmallTree, SortedColumns, fit_tree

__all__ = ["LGBM_GRID", "PairwiseBoostedTrees", "PointwiseBoostedTrees"]


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


#: The grid of the LGBM's cross-validation: tree depths and learning rates (every number of
#: trees up to ``n_estimators`` is scored along the boosting path of each pair).
LGBM_GRID: dict[str, tuple[Any, ...]] = {"max_depth": (1, 2, 3), "learning_rate": (0.05, 0.1)}


def _logit_boost(
    x: np.ndarray,
    y: np.ndarray,
    *,
    learning_rate: float,
    max_depth: int,
    subsample: float,
    min_leaf: int,
    rng: np.random.Generator,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> Iterator[tuple[float, SmallTree, np.ndarray, float]]:
    """Friedman's gradient boosting of the binomial log-likelihood (what scikit-learn's
    ``GradientBoostingClassifier`` does), one round per ``next``: each round grows a
    least-squares tree on the residuals ``y - p`` of a subsample and sets each leaf by one
    Newton step. Yields ``(initial log-odds, tree, leaf values, validation log loss)`` (the
    loss summed over the validation rows after this round; 0 without them)."""
    cols = SortedColumns.of(x)
    yf = y.astype(float)
    prior = float(np.clip(yf.mean(), 1e-9, 1 - 1e-9))
    f0 = float(np.log(prior / (1 - prior)))
    f = np.full(yf.size, f0)
    fv = None if x_val is None else np.full(x_val.shape[0], f0)
    yv = None if y_val is None else y_val.astype(float)
    while True:
        p = 1.0 / (1.0 + np.exp(-f))
        r = yf - p
        rows = rng.random(yf.size) < subsample
        if rows.sum() < 2 * min_leaf:
            rows[:] = True
        tree = fit_tree(cols, r, rows, max_depth=max_depth, min_leaf=min_leaf)
        leaf = tree.apply(x)
        num = np.bincount(leaf[rows], r[rows], minlength=tree.n_nodes)
        den = np.bincount(leaf[rows], (p * (1 - p))[rows], minlength=tree.n_nodes)
        value = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
        f += learning_rate * value[leaf]
        loss = 0.0
        if fv is not None:
            fv += learning_rate * value[tree.apply(x_val)]
            loss = float(np.sum(np.logaddexp(0.0, fv) - yv * fv))
        yield f0, tree, value, loss


class PointwiseBoostedTrees(_BoostedTrees):
    """Pointwise gradient-boosted trees for the success label (logistic loss, the
    ``GradientBoostingClassifier`` algorithm on :mod:`.small_trees`); score ``P(success)``.

    By default the booster is tuned as in the paper, by stratified ``cv``-fold
    cross-validation (folds seeded from ``seed``) of the log loss over :data:`LGBM_GRID`
    (depth 1-3, learning rate 0.05 or 0.1) and every number of trees up to ``n_estimators``
    (scored along the folds' boosting paths, stopped ``patience`` trees after the best), then
    refitted on the whole training set.

    Args:
        n_estimators, learning_rate, max_depth, subsample: the booster's (``learning_rate`` and
            ``max_depth`` are used as given only with ``tune=False``; ``n_estimators`` is then
            the number of trees, with tuning its maximum).
        min_samples_leaf: fewest training experiments in a leaf.
        tune: cross-validate (default) or use the given hyperparameters (fast).
        cv: folds when tuning (fewer if the minority class is smaller).
        grid: the tuning grid (default :data:`LGBM_GRID`).
        patience: a grid point's cross-validated path stops this many trees after its best
            loss (early stopping; the folds boost in lockstep).
    """

    name = "lgbm"
    label = "LGBM"

    def __init__(
        self,
        *,
        tune: bool = True,
        cv: int = 5,
        min_samples_leaf: int = 2,
        grid: dict[str, tuple[Any, ...]] | None = None,
        patience: int = 20,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.tune, self.cv, self.min_samples_leaf = bool(tune), int(cv), int(min_samples_leaf)
        self.patience = int(patience)
        self.grid = dict(LGBM_GRID if grid is None else grid)

    def _boost(self, x: np.ndarray, y: np.ndarray, rate: float, depth: int, seed: int, **val: Any) -> Any:
        return _logit_boost(
            x,
            y,
            learning_rate=rate,
            max_depth=depth,
            subsample=self.subsample,
            min_leaf=self.min_samples_leaf,
            rng=np.random.default_rng(seed),
            **val,
        )

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        self._const, self.tuned_ = None, False
        if y.all() or not y.any():
            self._const = float(y.mean())
            return
        n, rate, depth = self.n_estimators, self.learning_rate, self.max_depth
        minority = int(min(y.sum(), (~y).sum()))
        seed = self._random_state()
        if self.tune and minority >= 2:
            from sklearn.model_selection import StratifiedKFold

            folds = list(StratifiedKFold(min(self.cv, minority), shuffle=True, random_state=seed).split(x, y))
            best = (np.inf, n, rate, depth)
            for d in self.grid["max_depth"]:
                for lr in self.grid["learning_rate"]:
                    k, loss = self._cv_path(x, y, folds, lr, d, seed)
                    if loss < best[0] - 1e-9:
                        best = (loss, k, float(lr), int(d))
            _, n, rate, depth = best
            self.tuned_ = True
        self.n_trees_, self.learning_rate_, self.max_depth_ = n, rate, depth
        rounds = list(itertools.islice(self._boost(x, y, rate, depth, seed), n))
        self._f0, self._rounds = rounds[0][0], [(tree, value) for _, tree, value, _ in rounds]

    def _cv_path(
        self, x: np.ndarray, y: np.ndarray, folds: list[Any], rate: float, depth: int, seed: int
    ) -> tuple[int, float]:
        """``(trees, loss)`` minimising the cross-validated log loss along the boosting path
        of one grid point: the folds boost in lockstep, and the path stops ``patience`` rounds
        after its best (or at ``n_estimators``)."""
        paths = [
            self._boost(x[tr], y[tr], rate, depth, seed + i, x_val=x[te], y_val=y[te])
            for i, (tr, te) in enumerate(folds)
        ]
        best_loss, best_k = np.inf, 1
        for k in range(1, self.n_estimators + 1):
            loss = sum(next(path)[3] for path in paths)
            if loss < best_loss - 1e-12:
                best_loss, best_k = loss, k
            elif k - best_k >= self.patience:
                break
        return best_k, float(best_loss)

    def tuned_params(self) -> dict[str, Any]:
        """The cross-validated hyperparameters as constructor options (with ``tune=False``), to
        fit another booster with them without tuning again; empty before a tuned fit."""
        if not getattr(self, "tuned_", False):
            return {}
        return dict(
            tune=False,
            n_estimators=self.n_trees_,
            learning_rate=self.learning_rate_,
            max_depth=self.max_depth_,
        )

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self._const is not None:
            return np.full(x.shape[0], self._const)
        f = np.full(x.shape[0], self._f0)
        for tree, value in self._rounds:
            f += self.learning_rate_ * value[tree.apply(x)]
        return 1.0 / (1.0 + np.exp(-f))


class PairwiseBoostedTrees(_BoostedTrees):
    """Pairwise gradient-boosted regression trees: a scoring function ``f`` grown to minimise
    the pairwise logistic (RankNet) loss ``sum log(1 + exp(f(x_j) - f(x_i)))`` over the ordered
    pairs ``sigma_i > sigma_j``, a smooth stand-in for the number of misordered pairs (what R's
    ``gbm`` pairwise distribution optimises). Each round fits a ``DecisionTreeRegressor`` to
    the negative gradient on a subsample of experiments (a least-squares tree of
    :mod:`.small_trees`) and sets every leaf by a Newton step.

    Args:
        n_estimators, learning_rate, max_depth, subsample, min_samples_leaf: the booster's.
    """

    name = "pgbm"
    label = "PGBM"

    def __init__(self, *, min_samples_leaf: int = 3, **kw: Any) -> None:
        super().__init__(**kw)
        self.min_samples_leaf = int(min_samples_leaf)

    def _fit(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        rng = np.random.default_rng(self._random_state())
        x = np.asarray(x, dtype=float)
        n = x.shape[0]
        pi, pj = _ordered_pairs(sigma)
        self.n_pairs_ = int(pi.size)
        self.trees_: list[tuple[SmallTree, np.ndarray]] = []
        f = np.zeros(n)
        self.train_loss_ = []
        if pi.size == 0:
            return
        cols = SortedColumns.of(x)
        for _ in range(self.n_estimators):
            diff = f[pi] - f[pj]
            rho = 1.0 / (1.0 + np.exp(diff))  # d loss / d diff = -rho
            g = np.bincount(pi, rho, minlength=n) - np.bincount(pj, rho, minlength=n)  # -gradient
            w = rho * (1.0 - rho)
            h = np.bincount(pi, w, minlength=n) + np.bincount(pj, w, minlength=n)
            self.train_loss_.append(float(np.logaddexp(0.0, -diff).mean()))
            rows = rng.random(n) < self.subsample
            if rows.sum() < 2 * self.min_samples_leaf:
                rows[:] = True
            tree = fit_tree(cols, g, rows, max_depth=self.max_depth, min_leaf=self.min_samples_leaf)
            leaf = tree.apply(x)
            gs = np.bincount(leaf[rows], g[rows], minlength=tree.n_nodes)
            hs = np.bincount(leaf[rows], h[rows], minlength=tree.n_nodes)
            value = np.where(hs > 1e-12, gs / np.maximum(hs, 1e-12), 0.0)
            self.trees_.append((tree, value))
            f += self.learning_rate * value[leaf]
        self.train_scores_ = f

    def _score(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape[0])
        for tree, value in self.trees_:
            out += self.learning_rate * value[tree.apply(x)]
        return out
