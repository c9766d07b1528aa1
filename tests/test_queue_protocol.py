"""The bootstrap protocol of the experiment queue: metrics by hand, Fact 1, splits, the
learned-versus-random result on a fixed seed, reproducibility, outputs, the result dataclasses,
the queue agent (training and comparison) and the CLI."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from labsched.agents.queue import (
    AGENT_ENV_KWARGS,
    QueueAgentResult,
    WallClockStop,
    split_env,
    train_queue_agent,
)
from labsched.baselines.queue.schedulers import QueueView, make_queue_scheduler
from labsched.envs.queue.features import cached_dataset
from labsched.envs.queue.search_world import QueueWorldSpec
from labsched.evaluation.queue.protocol import (
    AgentRow,
    PairTest,
    ProtocolConfig,
    QueueEvalResult,
    SummaryRow,
    agent_markdown,
    brute_force_best_order,
    compare_agent_with_schedulers,
    expected_q,
    figure1_rows,
    greedy_order,
    paper_config,
    plot_figure1,
    queue_eval,
    run_protocol,
    schedule_auc,
    schedule_q,
    stratified_splits,
    summarize,
    tables_markdown,
    wilcoxon_p,
    write_rows_csv,
)
from labsched.evaluation.queue.runner import ProtocolResult
from labsched.evaluation.queue.worlds import across_worlds, findings, worlds_markdown

SMALL = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=40)


# ----------------------------------------------------------------------------------------------
# Equations 4 and 5 by hand
# ----------------------------------------------------------------------------------------------


def test_auc_matches_hand_computed_values():
    sigma = [0.3, 0.1, 0.2, -0.1]
    success = [True, False, True, False]
    # Evaluation pairs: (0,1) (0,2) (0,3) (1,2) (2,3); (1,3) has no success.
    assert schedule_auc([0, 2, 1, 3], sigma, success) == 1.0
    # pos: e2 0, e0 1, e3 2, e1 3 -> only (0,2) is misordered: 4/5.
    assert schedule_auc([2, 0, 3, 1], sigma, success) == pytest.approx(0.8)
    # Reversed: every pair wrong.
    assert schedule_auc([3, 1, 2, 0], sigma, success) == 0.0
    # Equal outcomes are not evaluation pairs: (0,2) is dropped, leaving (0,1) (0,3) (1,2) (2,3).
    assert schedule_auc([2, 0, 3, 1], [0.3, 0.1, 0.3, -0.1], success) == pytest.approx(1.0)
    # e1 first: (0,1) and (1,2) wrong, (0,3) and (2,3) right.
    assert schedule_auc([1, 0, 2, 3], [0.3, 0.1, 0.3, -0.1], success) == pytest.approx(0.5)
    assert schedule_auc([0, 2, 3, 1], [0.3, 0.1, 0.3, -0.1], success) == pytest.approx(1.0)
    assert schedule_auc([0, 3, 1, 2], [0.3, 0.1, 0.3, -0.1], success) == pytest.approx(0.5)
    assert math.isnan(schedule_auc([0, 1], [0.1, 0.2], [False, False]))
    with pytest.raises(ValueError, match="permutation"):
        schedule_auc([0, 0, 1, 2], sigma, success)


def test_q_matches_hand_computed_values():
    success = [True, False, True]
    costs = [2, 3, 4]
    # Order e1 (3), e0 (5 <= 5), e2 (9 > 5): e0 is the only success that fits.
    assert schedule_q([1, 0, 2], success, costs, 5) == 1
    assert schedule_q([1, 0, 2], success, costs, 9) == 2
    assert schedule_q([2, 0, 1], success, costs, 4) == 1
    assert schedule_q([1, 2, 0], success, costs, 6) == 0  # e1 fits, e2 would need 7
    # Equation 5 stops at the first experiment that does not fit (even if a later one would).
    assert schedule_q([0, 1], [True, True], [10, 1], 5) == 0
    # Equal costs T / k: the first k count.
    assert schedule_q([2, 1, 0], success, 1.0, 2.0) == 1
    # Equation 2, the expectation, on the same schedules.
    assert expected_q([1, 0, 2], [0.5, 0.2, 0.9], costs, 5) == pytest.approx(0.7)
    assert expected_q([2, 0, 1], [0.5, 0.2, 0.9], costs, 6) == pytest.approx(1.4)


# ----------------------------------------------------------------------------------------------
# Fact 1: greedy is optimal with known probabilities and equal costs
# ----------------------------------------------------------------------------------------------


def test_greedy_by_probability_is_optimal_on_small_instances():
    rng = np.random.default_rng(0)
    discriminating = 0
    for _ in range(40):
        n = int(rng.integers(2, 7))
        p = rng.random(n) if rng.random() < 0.7 else rng.choice([0.1, 0.5, 0.9], n)
        c = float(rng.integers(1, 5))
        budget = c * int(rng.integers(1, n + 1)) + float(rng.random() * c * 0.99)
        _, best = brute_force_best_order(p, c, budget)
        greedy = greedy_order(p)
        assert expected_q(greedy, p, c, budget) == pytest.approx(best, abs=1e-12)
        # The oracle scheduler is that greedy rule, through the scheduler interface.
        view = QueueView(features=np.zeros((n, 60)), true_probability=p)
        oracle = make_queue_scheduler("oracle", seed=1).rank(view)
        assert expected_q(oracle, p, c, budget) == pytest.approx(best, abs=1e-12)
        worst = min(expected_q(o, p, c, budget) for o in permutations(range(n)))
        discriminating += worst < best - 1e-9
    assert discriminating > 20  # most instances have orders that are worse than the best


def test_greedy_is_not_optimal_with_unequal_costs():
    # Fact 1 needs equal costs: a cheap pair beats one expensive likely success.
    p, costs, budget = [0.9, 0.6, 0.6], [10.0, 5.0, 5.0], 10.0
    _, best = brute_force_best_order(p, costs, budget)
    assert best == pytest.approx(1.2)
    assert expected_q(greedy_order(p), p, costs, budget) == pytest.approx(0.9)


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,n_pos", [(82, 31), (35, 10), (40, 15)])
def test_splits_are_stratified(n, n_pos):
    y = np.zeros(n, dtype=bool)
    y[np.random.default_rng(n).choice(n, n_pos, replace=False)] = True
    splits = stratified_splits(y, 25, 0.1, seed=3)
    assert len(splits) == 25
    share = n_pos / n
    for tr, te in splits:
        assert len(te) == math.ceil(0.1 * n) and len(tr) == n - len(te)
        assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).size == n
        assert abs(y[te].sum() - share * len(te)) <= 1.0  # class shares kept up to rounding
        assert abs(y[tr].mean() - share) <= 1.0 / len(tr) + 1e-12
    tests = {tuple(te) for _, te in splits}
    assert len(tests) > 20  # random splits, not one repeated
    assert [te.tolist() for _, te in stratified_splits(y, 5, 0.1, seed=3)] == [
        te.tolist() for _, te in splits[:5]
    ]


# ----------------------------------------------------------------------------------------------
# The protocol
# ----------------------------------------------------------------------------------------------


def _small_config(**kw):
    base = dict(
        n_splits=3,
        n_bootstrap=20,
        explore_fractions=(0.1,),
        q_settings=((300_000, 3),),
        figure_settings=((100_000, 1), (300_000, 3)),
        learned=("lr", "pgbm"),
        baselines=("random", "err", "cm", "upper_bound"),
        figure_entries=(("random", 0.0), ("explore", 0.1), ("pgbm", 0.0)),
        spec=SMALL,
    )
    base.update(kw)
    return ProtocolConfig(**base)


def test_learned_schedulers_beat_random_on_a_fixed_seed():
    cfg = paper_config(
        "interleaving",
        n_splits=8,
        n_bootstrap=50,
        explore_fractions=(0.1,),
        q_settings=((300_000, 3),),
        figure_settings=(),
        learned=("lr", "pgbm"),
        baselines=("random", "err", "upper_bound"),
    )
    res = run_protocol(cfg, progress=False)
    for metric, t, k in (("auc", res.n_test * 100_000, 0), ("q", 300_000, 3)):
        rnd = res.value(metric, t, k, 0.0, "random")
        for name in ("lr", "pgbm"):
            v = res.value(metric, t, k, 0.0, name)
            assert v.mean() > rnd.mean() + (0.15 if metric == "auc" else 0.5), (metric, name)
            assert wilcoxon_p(v, rnd) < 0.05, (metric, name)  # 8 paired splits
        ub = res.value(metric, t, k, 0.0, "upper_bound")
        assert ub.mean() >= max(res.value(metric, t, k, 0.0, n).mean() for n in ("lr", "pgbm")) - 1e-9
    assert np.all(res.value("auc", res.n_test * 100_000, 0, 0.0, "upper_bound") == 1.0)
    assert 0.35 < res.value("auc", res.n_test * 100_000, 0, 0.0, "random").mean() < 0.65
    assert np.all(res.test_successes >= 3)


def test_same_seed_same_numbers_and_independent_of_workers():
    ds = cached_dataset(SMALL, 0)
    a = run_protocol(_small_config(), dataset=ds, progress=False)
    b = run_protocol(_small_config(), dataset=ds, progress=False, n_jobs=2)
    assert a.cells == b.cells
    np.testing.assert_array_equal(a.values, b.values)
    ra, _ = summarize(a)
    rb, _ = summarize(b)
    assert tables_markdown(ra) == tables_markdown(rb)
    c = run_protocol(_small_config(seed=1), dataset=ds, progress=False)
    assert not np.array_equal(a.values, c.values)
    # A scheduler's numbers do not depend on which others run beside it.
    d = run_protocol(_small_config(learned=("pgbm",)), dataset=ds, progress=False)
    for key in d.cells:
        np.testing.assert_array_equal(d.values[d.cells.index(key)], a.values[a.cells.index(key)])


def test_exploration_budget_is_subtracted_and_tables_have_the_papers_shape(tmp_path):
    ds = cached_dataset(SMALL, 0)
    cfg = _small_config()
    res = run_protocol(cfg, dataset=ds, progress=False)
    rows, tests = summarize(res)
    keys = set(res.cells)
    assert ("q", 300_000, 3, 0.1, "explore") in keys and ("q", 300_000, 3, 0.0, "explore") not in keys
    assert ("q", 100_000, 1, 0.0, "pgbm") in keys and ("q", 100_000, 1, 0.0, "lr") not in keys
    for r in rows:
        assert r.ci_low <= r.mean <= r.ci_high
        if r.metric == "q":
            assert 0.0 <= r.mean <= r.deployed
    md = tables_markdown(rows, cfg)
    assert "Table 2 (AUC, interleaving)" in md and "Table 4 (Q(S), interleaving)" in md
    assert "T = 1·10^5" not in md  # figure-only budgets are not tables
    header = next(line for line in md.splitlines() if line.startswith("| #sample"))
    assert header.split(" | ")[1:] == ["Rnd", "ERR", "CM", "Explore", "LR", "PGBM", "UB |"]
    assert "| 0.10·T | – | – | – |" in md
    assert all(t.a != "upper_bound" and t.b != "upper_bound" for t in tests)
    fig = figure1_rows(rows, cfg)
    assert {(r.budget, r.scheduler, r.fraction) for r in fig} >= {(100_000, "explore", 0.1)}
    out = write_rows_csv(rows, tmp_path / "r.csv")
    assert out.read_text().count("\n") == len(rows) + 1
    png = plot_figure1(fig, tmp_path / "f.png")
    assert png.stat().st_size > 1000


def test_bold_needs_a_significant_win():
    cfg = _small_config(n_splits=2)
    res = run_protocol(cfg, dataset=cached_dataset(SMALL, 0), progress=False)
    rows, _ = summarize(res)
    assert not any(r.bold for r in rows)  # two splits can never give p < 0.05
    assert sum(r.best for r in rows if r.metric == "auc" and r.fraction == 0.0) == 1


def test_config_validation():
    with pytest.raises(ValueError, match="unknown queue scheduler"):
        _small_config(learned=("xgb",))
    with pytest.raises(ValueError, match="explore_fractions"):
        _small_config(explore_fractions=(0.0,))
    with pytest.raises(ValueError, match="experiment_type"):
        ProtocolConfig(experiment_type="ab", spec=SMALL)
    ab = paper_config("ab")
    assert ab.q_settings == ((4_000_000, 2),) and ab.auc_interactions == 2_000_000
    assert "cm" not in ab.baselines


def test_cli_queue_eval_quick(tmp_path, capsys):
    from labsched.cli import main

    out = tmp_path / "q"
    args = ["queue-eval", "--quick", "--datasets", "ab", "--splits", "2", "--bootstrap", "10"]
    args += ["--worlds", "1"]
    rc = main([*args, "--out", str(out), "--jobs", "1", "--no-plot"])
    assert rc == 0
    assert (out / "tables.md").exists() and (out / "results.csv").exists() and (out / "wilcoxon.csv").exists()
    text = capsys.readouterr().out
    assert "Table 3 (AUC, ab)" in text and "Table 5 (Q(S), ab)" in text


# ----------------------------------------------------------------------------------------------
# Result dataclasses, writers and the queue agent
# ----------------------------------------------------------------------------------------------


def test_queue_eval_returns_a_dataclass_and_writes_what_it_lists(tmp_path):
    res = queue_eval(
        tmp_path, ("ab",), quick=True, n_splits=2, n_bootstrap=10, n_jobs=1, plot=False, progress=False
    )
    assert isinstance(res, QueueEvalResult) and res.agent is None and res.seconds > 0
    assert [p.name for p in res.files] == ["tables.md", "results.csv", "wilcoxon.csv"]
    assert all(p.exists() for p in res.files)
    assert (tmp_path / "tables.md").read_text() == res.markdown
    assert "Table 3 (AUC, ab)" in res.markdown and "Table 5 (Q(S), ab)" in res.markdown
    assert (tmp_path / "results.csv").read_text().count("\n") == len(res.rows) + 1
    assert (tmp_path / "wilcoxon.csv").read_text().count("\n") == len(res.tests) + 1
    assert set(res.results) == {"ab"} and res.results["ab"].values.shape[1] == 2
    assert all(isinstance(r, SummaryRow) for r in res.rows) and all(
        isinstance(t, PairTest) for t in res.tests
    )
    assert {r.experiment_type for r in res.rows} == {"ab"}


def test_write_rows_csv_header_and_empty_rows(tmp_path):
    row = AgentRow("random", 1.0, 0.1, 1.5, 0.2, 0.03)
    data = write_rows_csv([row], tmp_path / "a.csv").read_bytes()
    assert (
        data == b"policy,test_mean,test_ci,train_mean,train_ci,p_vs_agent\r\nrandom,1.0,0.1,1.5,0.2,0.03\r\n"
    )
    empty = write_rows_csv([], tmp_path / "sub" / "e.csv")
    assert empty.exists() and empty.read_bytes() == b""


def test_split_env_queues_only_its_experiments_and_is_seeded():
    ds = cached_dataset(SMALL, 0)
    idx = np.arange(0, 40, 3)
    env = split_env(ds, idx, **AGENT_ENV_KWARGS)
    _, info = env.reset(seed=5)
    queued = info["queue"][info["queue"] >= 0]
    assert queued.size == 8 and set(queued.tolist()) <= set(idx.tolist())
    _, again = env.reset(seed=5)
    np.testing.assert_array_equal(again["queue"], info["queue"])
    np.testing.assert_array_equal(env.action_masks(), again["action_mask"])
    _, other = env.reset(seed=6)
    assert not np.array_equal(other["queue"], info["queue"])


def test_wall_clock_stop():
    assert WallClockStop(0.0, model=None, progress=False)({}, {}) is False
    assert WallClockStop(1.0, model=None, progress=False)({}, {}) is True


def test_train_queue_agent_and_compare_on_shared_episodes(tmp_path):
    pytest.importorskip("sb3_contrib")
    small = dict(n_steps=128, batch_size=64, n_epochs=1)
    agent = train_queue_agent(
        minutes=5.0, total_timesteps=256, n_envs=2, hyperparams=small, out=tmp_path, progress=False
    )
    assert isinstance(agent, QueueAgentResult)
    assert agent.timesteps == 256 and agent.model_path == tmp_path / "maskable_ppo_interleaving_split0.zip"
    assert agent.model_path.exists()
    _, te = stratified_splits(agent.dataset.success, 1, 0.1, 0)[0]  # the protocol's split 0
    np.testing.assert_array_equal(agent.test_idx, te)
    assert np.intersect1d(agent.train_idx, agent.test_idx).size == 0
    assert agent.train_idx.size + agent.test_idx.size == len(agent.dataset)
    assert agent.env_kwargs == {**AGENT_ENV_KWARGS, "flatten": True}
    rows = compare_agent_with_schedulers(agent, schedulers=("random", "upper_bound"), episodes=10)
    assert all(isinstance(r, AgentRow) for r in rows)
    assert [r.policy for r in rows] == ["maskable_ppo", "random", "upper_bound"]
    assert math.isnan(rows[0].p_vs_agent) and all(0.0 <= r.p_vs_agent <= 1.0 for r in rows[1:])
    # Same episodes for every policy: the upper bound deploys the successes first (equal costs).
    assert rows[2].test_mean >= max(r.test_mean for r in rows[:2])
    assert rows[2].train_mean >= max(r.train_mean for r in rows[:2])
    md = agent_markdown(rows, agent)
    assert "| upper_bound |" in md and "256 steps" in md


# ----------------------------------------------------------------------------------------------
# Several worlds
# ----------------------------------------------------------------------------------------------


def _fake_result(seed: int, values: dict[str, float], noise: float = 0.01):
    """A ProtocolResult of the quick A/B configuration whose per-split Q values (T = 4e6, k = 2)
    are ``values[scheduler] (+ explore fraction)`` plus small noise."""
    cfg = paper_config("ab", quick=True, n_splits=12, dataset_seed=seed)
    rng = np.random.default_rng(seed)
    cells, rows = [], []
    for f in (0.0, *cfg.explore_fractions):
        names = (*cfg.baselines, *cfg.learned) if f == 0.0 else ("explore", *cfg.learned)
        for name in names:
            base = values.get(name, 0.5) + (f if name == "explore" else -f if name in cfg.learned else 0.0)
            cells.append(("q", 4_000_000, 2, f, name))
            rows.append(base + noise * rng.standard_normal(cfg.n_splits))
    return ProtocolResult(cfg, cells, np.array(rows), 4, np.ones(cfg.n_splits, dtype=int), 0.0)


def test_across_worlds_and_findings():
    good = {"random": 0.4, "dcg": 0.6, "err": 0.55, "lr": 0.8, "svm": 0.7, "lgbm": 0.75, "pgbm": 0.7}
    flat = dict.fromkeys(good, 0.5)
    results = {0: _fake_result(0, good), 1: _fake_result(1, good), 2: _fake_result(2, flat)}
    rows = across_worlds(results)
    lr = next(r for r in rows if r.scheduler == "lr" and r.fraction == 0.0)
    assert lr.n_worlds == 3
    assert lr.mean == pytest.approx((0.8 + 0.8 + 0.5) / 3, abs=0.01)
    assert lr.min_world == pytest.approx(0.5, abs=0.01) and lr.max_world == pytest.approx(0.8, abs=0.01)
    assert lr.sd_worlds == pytest.approx(np.std([0.8, 0.8, 0.5], ddof=1), abs=0.01)
    found = findings(results)
    by = {(r.finding, r.dataset_seed): r for r in found}
    for seed in (0, 1):  # learned (LR 0.8) > best single feature (DCG 0.6) > random (0.4)
        assert by[("learned > single feature", seed)].holds
        assert by[("learned > single feature", seed)].left == "LR"
        assert by[("single feature > random", seed)].holds
        assert by[("exploration helps Explore", seed)].holds  # +f for explore
        assert by[("exploration hurts learned", seed)].holds  # -f for learned
    assert not by[("learned > single feature", 2)].holds  # all equal: no significant difference
    md = worlds_markdown(rows, found)
    assert "| ab | learned > single feature | 2/3 | holds |" in md
    assert "mean ± sd across 3 worlds" in md


@pytest.mark.slow
def test_queue_eval_over_two_worlds_writes_the_world_tables(tmp_path):
    res = queue_eval(tmp_path, ["ab"], quick=True, n_worlds=2, n_jobs=1, plot=False, progress=False)
    assert set(res.world_results["ab"]) == {0, 1}
    assert res.worlds and all(r.n_worlds == 2 for r in res.worlds)
    assert {r.dataset_seed for r in res.findings} == {0, 1}
    for name in ("worlds.md", "worlds.csv", "findings.csv"):
        assert (tmp_path / name) in res.files and (tmp_path / name).stat().st_size > 0
    assert "Across worlds" in res.markdown
