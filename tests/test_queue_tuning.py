"""The queue protocol's tuned schedulers: the NumPy regression trees the boosters grow, LGBM
cross-validated by default, tuned hyperparameters reused across exploration sizes, and the
``queue-eval --worlds`` / ``--no-lgbm-cv`` options."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from labsched.baselines.queue.boosted import LGBM_GRID, PointwiseBoostedTrees
from labsched.baselines.queue.schedulers import QueueView, make_queue_scheduler
from labsched.baselines.queue.small_trees import SortedColumns, fit_tree
from labsched.envs.queue.features import cached_dataset
from labsched.envs.queue.search_world import QueueWorldSpec
from labsched.envs.queue.splits import stratified_splits
from labsched.evaluation.queue.config import paper_config
from labsched.evaluation.queue.runner import _SplitEvaluation

SPEC = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=40)


@pytest.fixture(scope="module")
def ds():
    return cached_dataset(SPEC, 0)


# ------------------------------------------------------------------------------- small trees


@pytest.mark.parametrize("depth,min_leaf", [(1, 1), (2, 1), (3, 4)])
def test_small_tree_matches_scikit_learn_on_distinct_values(depth, min_leaf):
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(depth)
    x = rng.normal(size=(60, 7))
    g = x[:, 2] - 2 * (x[:, 5] > 0.3) + rng.normal(0, 0.3, 60)
    rows = rng.random(60) < 0.8
    tree = fit_tree(SortedColumns.of(x), g, rows, max_depth=depth, min_leaf=min_leaf)
    ref = DecisionTreeRegressor(max_depth=depth, min_samples_leaf=min_leaf, random_state=0).fit(
        x[rows], g[rows]
    )
    # continuous features: the best split of every node is unique, so the partitions agree
    ours = tree.apply(x)
    theirs = ref.apply(x)
    pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
    assert len(pairs) == len(set(ours.tolist())) == len(set(theirs.tolist()))
    assert tree.depth == ref.get_depth()
    leaf_rows = [ours[rows] == leaf for leaf in set(ours[rows].tolist())]
    assert min(int(m.sum()) for m in leaf_rows) >= min_leaf


def test_small_tree_splits_only_between_distinct_values():
    x = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [2.0]])
    g = np.array([0.0, 0.0, 5.0, 5.0, 5.0, 5.0])
    tree = fit_tree(SortedColumns.of(x), g, np.ones(6, bool), max_depth=1)
    assert tree.feature[0] == 0 and tree.threshold[0] == 0.5  # not inside the tie at 0
    assert (
        fit_tree(SortedColumns.of(np.ones((5, 2))), np.arange(5.0), np.ones(5, bool), max_depth=2).n_nodes
        == 1
    )


# ------------------------------------------------------------------------------- LGBM tuning


def test_lgbm_is_cross_validated_by_default_and_reproducible(ds):
    assert PointwiseBoostedTrees().tune is True
    tuned = make_queue_scheduler("lgbm", seed=3, n_estimators=40).fit(ds)
    again = make_queue_scheduler("lgbm", seed=3, n_estimators=40).fit(ds)
    params = tuned.tuned_params()
    assert params["tune"] is False and 1 <= params["n_estimators"] <= 40
    assert params["max_depth"] in LGBM_GRID["max_depth"]
    assert params["learning_rate"] in LGBM_GRID["learning_rate"]
    view = QueueView.from_dataset(ds)
    p = tuned.priority(view)
    np.testing.assert_array_equal(p, again.priority(view))
    assert np.all((p > 0) & (p < 1))
    # refitting with the tuned hyperparameters (no tuning) gives the same model
    reuse = make_queue_scheduler("lgbm", seed=3, **params).fit(ds)
    np.testing.assert_array_equal(reuse.priority(view), p)
    assert reuse.tuned_params() == {}
    # the fixed booster fits the training labels: better than chance in-sample
    fixed = make_queue_scheduler("lgbm", seed=3, tune=False).fit(ds)
    y = np.asarray(ds.success, bool)
    s = fixed.priority(view)
    assert s[y].mean() > s[~y].mean()


def test_lr_tuned_c_reproduces_the_cross_validated_model(ds):
    lr = make_queue_scheduler("lr", seed=1).fit(ds)
    c = lr.tuned_params()["C"]
    assert min(lr.Cs) <= c <= max(lr.Cs)
    fixed = make_queue_scheduler("lr", seed=1, C=c).fit(ds)
    assert fixed.tuned_params() == {}
    np.testing.assert_allclose(fixed.coef_, lr.coef_, atol=1e-8)
    with pytest.raises(ValueError, match="C"):
        make_queue_scheduler("lr", C=0.0)


def test_protocol_reuses_the_split_hyperparameters_for_exploration(ds):
    cfg = paper_config("interleaving", spec=SPEC, n_splits=1, n_bootstrap=5)
    tr, te = stratified_splits(ds.success, 1, 0.1, 0)[0]
    ev = _SplitEvaluation(cfg, ds, 0, tr, te)
    base, explored = ev.scheduler("lgbm", 0), ev.scheduler("lgbm", 500)
    assert base.tuned_params() and explored.uses_exploration and not explored.tune
    assert explored.n_trees_ == base.n_trees_ and explored.max_depth_ == base.max_depth_
    assert ev.scheduler("lr", 500).C == ev.scheduler("lr", 0).tuned_params()["C"]
    retune = _SplitEvaluation(
        paper_config("interleaving", spec=SPEC, n_splits=1, retune_per_exploration=True), ds, 0, tr, te
    )
    assert retune.scheduler("lgbm", 500).tune and retune.scheduler("lr", 500).C is None


def test_paper_defaults_and_quick_budget():
    cfg = paper_config("ab")
    assert cfg.n_splits == 100 and cfg.scheduler_options == {} and not cfg.retune_per_exploration
    quick = paper_config("ab", quick=True)
    assert quick.scheduler_options == {"lgbm": {"tune": False}}


# ------------------------------------------------------------------------------- the CLI


def test_cli_queue_eval_defaults_five_worlds_and_cross_validated_lgbm():
    from labsched.cli import build_parser

    args = build_parser().parse_args(["queue-eval"])
    assert args.worlds == 5 and args.no_lgbm_cv is False and args.splits is None
    assert build_parser().parse_args(["queue-eval", "--worlds", "7", "--no-lgbm-cv"]).worlds == 7


@pytest.mark.slow
def test_cli_queue_eval_worlds_option(tmp_path, capsys):
    from labsched.cli import main

    out = tmp_path / "q"
    opts = ["--splits", "3", "--bootstrap", "5", "--worlds", "2", "--out", str(out), "--jobs", "1"]
    rc = main(["queue-eval", "--quick", "--datasets", "ab", *opts, "--no-plot", "--no-progress"])
    assert rc == 0
    worlds = (out / "worlds.csv").read_text().splitlines()
    header = worlds[0].split(",")
    assert "n_worlds" in header
    col = header.index("n_worlds")
    assert {line.split(",")[col] for line in worlds[1:]} == {"2"}
    assert (out / "findings.csv").exists() and "Across worlds" in capsys.readouterr().out
    bad = ["queue-eval", "--quick", "--datasets", "ab", "--worlds", "0", "--out", str(tmp_path / "bad")]
    assert main(bad) == 2
    assert "n_worlds" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_small_tree_splits_neighbouring_floats():
    a = 0.1
    b = np.nextafter(a, 1.0)
    x = np.array([[a], [a], [b], [b]])
    tree = fit_tree(SortedColumns.of(x), np.array([0.0, 0.0, 1.0, 1.0]), np.ones(4, bool), max_depth=1)
    leaves = tree.apply(x)
    assert leaves[0] == leaves[1] != leaves[2] == leaves[3]
