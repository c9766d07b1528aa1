"""Bounded cost at scale: exactness pins of the rewritten planners, memory bounds, the scale
benchmark (issue 16). No timing is asserted (speed goes in ``labsched benchmark --scale``)."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tracemalloc

import gymnasium as gym
import numpy as np
import pytest

from labsched import LabSpec
from labsched.baselines.labs.il_replay import SORT_WIDTH, cpe_of_new, prior_sums
from labsched.baselines.labs.il_tables import RunningPlans, grid_tables, running_tables
from labsched.baselines.labs.online import OnMEL, keep_busy_completion, min_eager_labs
from labsched.baselines.labs.policy_switching import PolicySwitching
from labsched.baselines.registry import make
from labsched.cli import main
from labsched.envs import ConcurrentLabsEnv, Gamma, LogNormal, Uniform
from labsched.envs._lib.rollout import play_episode
from labsched.envs.labs.durations import Deterministic, Discrete, Exponential
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.evaluation.scale_benchmark import SKIPPED, run_scale

SPECS = {
    "paper_h4": LabSpec(horizon=4.0),
    "paper_h5": LabSpec(horizon=5.0),
    "paper_h6": LabSpec(horizon=6.0),
    "small_n6_l3_h3": LabSpec(n_experiments=6, n_labs=3, horizon=3.0),
    "small_n10_l4_h4_e025": LabSpec(n_experiments=10, n_labs=4, horizon=4.0, epoch=0.25),
    "gamma_h4": LabSpec(duration=Gamma(10.0, 0.1), horizon=4.0),
    "lognormal_h55": LabSpec(duration=LogNormal(0.0, 0.3), horizon=5.5),
    "uniform_h43": LabSpec(duration=Uniform(0.5, 1.5), horizon=4.3),
    "paper_h5_e005": LabSpec(horizon=5.0, epoch=0.05),
    "n40_l12_h5": LabSpec(n_experiments=40, n_labs=12, horizon=5.0),
}

#: PS (seed 0, 200 simulations) before the rewrite, env seed 1000 + episode:
#: (steps, {step: action} for the non-zero actions, CPE).
PS_PINS = {
    ("paper_h4", 0): (50, {0: 10, 27: 10}, 100.0),
    ("paper_h4", 2): (47, {0: 10, 25: 10}, 100.0),
    ("paper_h5", 0): (58, {0: 10, 21: 4, 42: 6}, 112.0),
    ("paper_h5", 1): (64, {0: 10, 22: 5, 45: 5}, 120.0),
    ("paper_h5", 2): (57, {0: 10, 23: 5, 42: 5}, 120.0),
    ("paper_h6", 0): (64, {0: 7, 24: 7, 35: 1, 49: 5}, 134.0),
    ("paper_h6", 1): (73, {0: 7, 9: 1, 23: 6, 38: 3, 58: 3}, 137.0),
    ("paper_h6", 2): (63, {0: 7, 9: 1, 23: 6, 36: 2, 49: 4}, 138.0),
    ("small_n6_l3_h3", 0): (35, {0: 3, 19: 3}, 6.0),
    ("small_n6_l3_h3", 1): (32, {0: 3, 16: 3}, 9.0),
    ("small_n10_l4_h4_e025", 0): (25, {0: 4, 11: 4, 20: 2}, 24.0),
    ("small_n10_l4_h4_e025", 1): (24, {0: 4, 10: 4, 17: 2}, 30.0),
    ("gamma_h4", 0): (50, {0: 10, 26: 10}, 100.0),
    ("paper_h5_e005", 0): (96, {0: 10, 36: 4, 70: 6}, 112.0),
}

#: OnMEL's lab count before the rewrite (20,000 simulations, seed 0).
ONMEL_K = {
    "paper_h4": 7,
    "paper_h5": 6,
    "paper_h6": 5,
    "small_n6_l3_h3": 3,
    "small_n10_l4_h4_e025": 4,
    "gamma_h4": 8,
    "lognormal_h55": 5,
    "uniform_h43": 7,
    "paper_h5_e005": 6,
    "n40_l12_h5": 11,
}

#: 30 episodes (env seeds 1000..1029) per paper horizon before the rewrite: total CPE and the
#: first 16 hex digits of sha256(json of the action lists).
EPISODE_DIGESTS = {
    ("paper_h4", "ps"): (3007.0, "d7c3e75917fb4042"),
    ("paper_h4", "onmel"): (2730.0, "e85d81bcb12ef450"),
    ("paper_h4", "ofil"): (3000.0, "53bfbf1a3d589a57"),
    ("paper_h4", "ofstaged"): (3000.0, "53bfbf1a3d589a57"),
    ("paper_h5", "ps"): (3556.0, "84a6fbed57149c18"),
    ("paper_h5", "onmel"): (3150.0, "09ec1e0ef40d8e4d"),
    ("paper_h5", "ofil"): (3000.0, "d0de818631675ccd"),
    ("paper_h5", "ofstaged"): (3000.0, "d0de818631675ccd"),
    ("paper_h6", "ps"): (4078.0, "07825e49a370faef"),
    ("paper_h6", "onmel"): (3600.0, "c047c342e1a3f1c2"),
    ("paper_h6", "ofil"): (4022.0, "c97ce514efd29598"),
    ("paper_h6", "ofstaged"): (3990.0, "f817671cb0399f4a"),
}


class _Recorder:
    def __init__(self, policy) -> None:
        self.policy, self.actions = policy, []

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        action, state = self.policy.predict(obs, state, episode_start, deterministic)
        self.actions.append(int(action))
        return action, state


def _episode(policy, spec: LabSpec, seed: int) -> tuple[list[int], float]:
    env = gym.make("labsched/ConcurrentLabs-v0", spec=spec)
    rec = _Recorder(policy)
    policy.reset()
    ep = play_episode(rec, env, seed)
    return rec.actions, float(ep.info["cpe"])


@pytest.mark.parametrize("key", sorted(PS_PINS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_ps_decisions_unchanged(key) -> None:
    name, episode = key
    steps, nonzero, cpe = PS_PINS[key]
    actions, got = _episode(PolicySwitching(SPECS[name], seed=0), SPECS[name], 1000 + episode)
    assert (len(actions), {i: a for i, a in enumerate(actions) if a}, got) == (steps, nonzero, cpe)


@pytest.mark.parametrize("name", sorted(ONMEL_K))
def test_onmel_lab_count_unchanged(name: str) -> None:
    assert OnMEL(SPECS[name], seed=0).k == ONMEL_K[name]


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(EPISODE_DIGESTS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_thirty_episodes_unchanged(key) -> None:
    name, policy_name = key
    spec = SPECS[name]
    policy = make(policy_name, spec, seed=0)
    runs = [_episode(policy, spec, 1000 + s) for s in range(30)]
    digest = hashlib.sha256(json.dumps([a for a, _ in runs]).encode()).hexdigest()[:16]
    assert (sum(c for _, c in runs), digest) == EPISODE_DIGESTS[key]


def test_ps_plans_on_a_capped_grid() -> None:
    """Past max_plan_points grid points PS plans and re-decides on every s-th epoch only (and is
    exactly the paper's PS below it, see the pins above)."""
    fine = LabSpec(epoch=0.001)
    ps = PolicySwitching(fine, seed=0, max_plan_points=100, keep_history=True)
    assert ps.plan_spec.epoch == pytest.approx(0.05) and grid_tables(ps.plan_spec).n_points == 100
    assert PolicySwitching(LabSpec(), seed=0).plan_spec == LabSpec()
    _, cpe = _episode(ps, fine, 3)
    times = [d.time for d in ps.history()]
    assert len(times) > 5 and cpe > 90
    assert all(abs(t / 0.05 - round(t / 0.05)) < 1e-6 for t in times)
    with pytest.raises(ValueError, match="max_plan_points"):
        PolicySwitching(fine, max_plan_points=1)


def test_ps_memory_is_bounded_at_a_fine_epoch() -> None:
    """n=200, l=32, epoch 1e-3: the first three evaluated decisions (up to 32 running
    experiments) allocate < 96 MiB (before: 6.2 GB already at n=20, l=10 and this epoch)."""
    spec = LabSpec(n_experiments=200, n_labs=32, epoch=1e-3)
    ps = PolicySwitching(spec, seed=0)
    env = ConcurrentLabsEnv(spec)
    obs, _ = env.reset(seed=0)
    tracemalloc.start()
    try:
        while ps.n_evaluations < 3:
            action, _ = ps.predict(obs)
            obs, *_ = env.step(action)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 96 * 2**20


def test_onmel_memory_does_not_grow_with_simulations_times_n() -> None:
    """20,000 simulations of n = 2,000 experiments: one (E, n) float array would be 305 MiB."""
    tracemalloc.start()
    try:
        est = min_eager_labs(LabSpec(n_experiments=2_000, n_labs=400), 20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert est.n_labs == 400 and not est.safe and est.curve == {400: 0.0}
    assert peak < 64 * 2**20


def test_onmel_search_is_logarithmic_and_minimal() -> None:
    spec = LabSpec(n_experiments=400, n_labs=200, horizon=5.0)
    est = min_eager_labs(spec, 4_000)
    assert est.safe and len(est.curve) <= 2 * math.ceil(math.log2(200)) + 2
    assert est.curve[est.n_labs] >= spec.p_safe and est.curve[est.n_labs - 1] < spec.p_safe


@pytest.mark.parametrize(
    "spec, k",
    [
        (LabSpec(n_experiments=20, n_labs=10, horizon=4.0, duration=Exponential(1.0)), 8),
        (LabSpec(n_experiments=60, n_labs=10, horizon=4.0, duration=Exponential(0.3)), 6),
        (LabSpec(n_experiments=20, n_labs=10, horizon=5.0), 5),
        (LabSpec(n_experiments=30, n_labs=10, horizon=3.0, duration=Discrete((0.5, 1.0), (0.5, 0.5))), 9),
        (LabSpec(n_experiments=4, n_labs=10, horizon=1.0, duration=Exponential(0.5)), 3),
    ],
    ids=["exp", "exp-many", "paper", "discrete", "k>n"],
)
def test_keep_busy_completion_matches_the_event_engine(spec: LabSpec, k: int) -> None:
    """The per-lab renewal simulation and the event engine estimate the same probability
    (fixed seeds; 20,000 runs each; |z| < 4)."""
    a = keep_busy_completion(spec, k, 20_000, 11)
    b = simulate_keep_busy(spec, min(k, spec.n_labs), 20_000, np.random.default_rng(5))
    b = float(b.all_completed(spec.n_experiments).mean())
    se = math.sqrt((a * (1 - a) + b * (1 - b)) / 20_000)
    assert abs(a - b) < 4 * se + 1e-12


def test_keep_busy_completion_with_ties() -> None:
    """Deterministic durations: 10 labs x 2 rounds of 1.0 fit h = 2 (all 20 complete), 21 do not."""
    spec = LabSpec(n_experiments=20, n_labs=10, horizon=2.0, duration=Deterministic(1.0))
    assert keep_busy_completion(spec, 10, 100, 0) == 1.0
    assert keep_busy_completion(spec.replace(n_experiments=21), 10, 100, 0) == 0.0
    assert keep_busy_completion(spec.replace(horizon=1.5), 10, 100, 0) == 0.0


def test_sorted_prior_counts_equal_pairwise() -> None:
    """The sorted merge (wide rows) counts exactly the pairs the pairwise comparison counts,
    exact ties (a restart at a completion, an end at s + tol) included."""
    rng = np.random.default_rng(1)
    spec = LabSpec()
    tol = 1e-9 * spec.horizon
    for width in (10, SORT_WIDTH + 5, 200):
        st = rng.uniform(0, 5, (300, width))
        d = rng.uniform(0.5, 1.5, (300, width))
        st[:, 1] = st[:, 0] + d[:, 0]
        en = st + d
        en[:, 4] = st[:, 2] + tol
        st[:, -3:], en[:, -3:] = np.inf, np.inf
        run = rng.uniform(0, 2, (300, 10))
        run[:, 0] = st[:, 3] + tol
        done = en <= spec.horizon + tol
        ref = [
            sum(int((en[i][done[i]] <= s + tol).sum() + (run[i] <= s + tol).sum()) for s in st[i][done[i]])
            + 3 * int(done[i].sum())
            for i in range(300)
        ]
        assert cpe_of_new(spec, st, en, run, 3, 100).tolist() == ref
        pads = np.where(done, st, -np.inf), np.where(done, en, np.inf)
        assert (prior_sums(*pads, run, tol) + 3 * done.sum(axis=1)).tolist() == ref


def test_running_plans_on_demand_equal_the_full_table() -> None:
    spec = LabSpec(horizon=5.0)
    el = np.array([0.9, 0.6, 0.3, 0.1])
    points = np.array([3, 5, 8, 20, 40])
    g_tab, b_tab = running_tables(spec, 3, el, points, 12)
    plans = RunningPlans(spec, 3, el, points, 12)
    kk, aa = np.array([4, 0, 2, 2, 1]), np.array([12, 0, 5, 1, 7])
    cols = plans.columns(kk, aa)
    assert np.array_equal(plans.g[:, cols], g_tab[:, kk, aa])
    assert np.array_equal(plans.b[:, cols], b_tab[:, kk, aa])


def test_scale_benchmark_help() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--scale", "--help"])
    assert exc.value.code == 0


def test_scale_benchmark_one_cell(tmp_path, capsys) -> None:
    args = ["--scale", "--subjects", "env", "--n", "20", "--labs", "10", "--epochs", "0.1"]
    code = main(["benchmark", *args, "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| env | 20 | 10 | 0.1 | ok |" in out
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert len(rows) == 1 and rows[0]["status"] == "ok" and int(rows[0]["steps"]) > 0
    assert 0 < float(rows[0]["peak_rss_mib"]) < 1024
    assert (tmp_path / "table.md").read_text().startswith("| subject |")


def test_scale_benchmark_budget_skips() -> None:
    """A cell over budget is stopped; a larger one of the same subject is not started."""
    cells = run_scale(["ps"], [200, 2000], [32], [0.1], budget=0.05, progress=False)
    assert [c.status for c in cells] == [SKIPPED, SKIPPED]
    assert cells[1].note == "a smaller cell ran out of budget"
    with pytest.raises(ValueError, match="nope"):
        run_scale(["nope"], [20], [10], [0.1])
