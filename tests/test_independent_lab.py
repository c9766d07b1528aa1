"""Tests of IL plans and the offline IL scheduler (OfIL)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labsched.baselines.labs.il_simulation import simulate_plan
from labsched.baselines.labs.independent_lab import (
    ILPlan,
    OfIL,
    log_cond_cdf,
    plan_from_state,
    plan_independent_labs,
    stage_boundaries,
)
from labsched.envs import ConcurrentLabsEnv, Deterministic, Gamma, LabSpec, LogNormal, Uniform

SPECS = [
    LabSpec(horizon=4.0),
    LabSpec(horizon=5.0),
    LabSpec(horizon=6.0),
    LabSpec(duration=Gamma(10.0, 0.1), horizon=5.0),
    LabSpec(duration=Uniform(0.5, 1.5), horizon=4.5),
    LabSpec(duration=LogNormal(0.0, 0.3), horizon=5.5, n_labs=8),
    LabSpec(n_experiments=13, n_labs=4, horizon=7.3),
]


def product_formula(spec: LabSpec, k: int) -> float:
    """``prod_i P_d(h / m_i) ** m_i`` for the even split of n over k labs, from the CDF."""
    q, rem = divmod(spec.n_experiments, k)
    h, cdf = spec.horizon, spec.duration.cdf
    big = float(cdf(h / (q + 1))) ** ((q + 1) * rem)
    small = float(cdf(h / q)) ** (q * (k - rem)) if q else 1.0
    return big * small


def run_episodes(
    policy, spec: LabSpec, n: int, seed0: int = 0, **env_kwargs
) -> tuple[np.ndarray, np.ndarray]:
    env = ConcurrentLabsEnv(spec, invalid_action="raise", **env_kwargs)
    cpe, complete = np.zeros(n), np.zeros(n, dtype=bool)
    for ep in range(n):
        obs, _ = env.reset(seed=seed0 + ep)
        policy.reset()
        done = False
        while not done:
            action, _ = policy.predict(obs)
            obs, _, done, _, info = env.step(action)
        cpe[ep], complete[ep] = info["cpe"], info["completed"] == spec.n_experiments
    return cpe, complete


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_plan_probability_is_the_product_formula(spec: LabSpec) -> None:
    plan = plan_independent_labs(spec)
    assert plan.n_labs >= 1
    assert plan.probability == pytest.approx(product_formula(spec, plan.n_labs), rel=1e-10, abs=1e-300)
    # Per-lab stage lengths are h / m_i.
    for lab, lengths in zip(plan.labs, plan.stage_lengths, strict=True):
        assert len(lengths) == lab.n_experiments
        assert np.allclose(lengths, spec.horizon / lab.n_experiments)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_counts_are_spread_evenly(spec: LabSpec) -> None:
    plan = plan_independent_labs(spec)
    k, n = plan.n_labs, spec.n_experiments
    counts = sorted(plan.counts, reverse=True)
    assert sum(counts) == n
    assert counts.count(n // k + 1) == n % k
    assert counts.count(n // k) == k - n % k


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_k_is_the_fewest_safe_labs(spec: LabSpec) -> None:
    plan = plan_independent_labs(spec)
    k = plan.n_labs
    if plan.safe:
        assert product_formula(spec, k) >= spec.p_safe
        for fewer in range(1, k):
            assert product_formula(spec, fewer) < spec.p_safe
    else:
        assert k == min(spec.n_labs, spec.n_experiments)
        assert all(product_formula(spec, j) < spec.p_safe for j in range(1, k + 1))


@pytest.mark.parametrize(
    ("horizon", "k", "counts", "stage"),
    [
        (4.0, 10, (2,) * 10, {2: 2.0}),
        (5.0, 10, (2,) * 10, {2: 2.5}),
        (6.0, 7, (3,) * 6 + (2,), {3: 2.0, 2: 3.0}),
    ],
)
def test_paper_setting_plans(
    horizon: float, k: int, counts: tuple[int, ...], stage: dict[int, float]
) -> None:
    """The paper's setting (n=20, l=10, p=0.95, N(1, 0.1) truncated): k = 10, 10, 7 for h = 4, 5, 6.

    P(safe) = 0.98445 (h=4), 0.99998 (h=5), 0.98599 (h=6); one lab fewer gives 0.384, 0.899, 0.620.
    Snapping changes nothing here: every h / m_i is a multiple of the 0.1 epoch.
    """
    spec = LabSpec(horizon=horizon)
    for snap in (False, True):
        plan = plan_independent_labs(spec, snap_to_grid=snap)
        print(plan.describe())
        assert plan.safe and plan.n_labs == k and plan.counts == counts
        for lab in plan.labs:
            assert np.allclose(lab.stage_lengths(0.0), stage[lab.n_experiments])
    assert plan_independent_labs(spec).probability == pytest.approx(
        plan_independent_labs(spec, snap_to_grid=True).probability, rel=1e-12
    )


def test_snapped_plan_probability_uses_snapped_lengths() -> None:
    spec = LabSpec(duration=Gamma(4.0, 0.25), horizon=5.3)
    plan = plan_independent_labs(spec, snap_to_grid=True)
    for lab in plan.labs:
        lengths = np.asarray(lab.stage_lengths(0.0))
        # intermediate boundaries are on the grid and the lengths differ by at most one epoch
        assert np.allclose(
            np.asarray(lab.boundaries[:-1]) / spec.epoch,
            np.round(np.asarray(lab.boundaries[:-1]) / spec.epoch),
        )
        assert lengths.max() - lengths.min() <= spec.epoch + 1e-9
        assert lab.log_safety == pytest.approx(float(np.sum(np.log(spec.duration.cdf(lengths)))), rel=1e-12)
    assert plan.probability == pytest.approx(math.exp(sum(lab.log_safety for lab in plan.labs)), rel=1e-12)


def test_stage_boundaries() -> None:
    assert stage_boundaries(0.0, 5.0, 3) == pytest.approx((5 / 3, 10 / 3, 5.0))
    assert stage_boundaries(0.0, 5.0, 3, 0.1) == pytest.approx((1.7, 3.4, 5.0))
    assert stage_boundaries(0.25, 5.0, 2, 0.1) == pytest.approx((2.7, 5.0))
    assert stage_boundaries(1.0, 5.0, 0) == ()


@pytest.mark.parametrize(
    "spec",
    [
        LabSpec(horizon=6.0),
        LabSpec(duration=Gamma(4.0, 0.25), horizon=5.3),
        LabSpec(duration=LogNormal(0.0, 0.5), horizon=7.0, n_labs=8),
    ],
    ids=repr,
)
def test_p_safety_matches_monte_carlo_of_the_execution(spec: LabSpec) -> None:
    """The fraction of simulated executions in which every experiment ends inside its stage is the
    plan's probability (snapped plans are replayed exactly on the decision grid)."""
    plan = plan_independent_labs(spec, snap_to_grid=True)
    n = 40_000
    _, n_done, safe = simulate_plan(spec, plan, n, np.random.default_rng(1))
    se = math.sqrt(plan.probability * (1 - plan.probability) / n)
    assert abs(safe.mean() - plan.probability) < 4 * se + 1e-3
    # a safe execution completes everything
    assert np.all(n_done[safe] == spec.n_experiments)


@pytest.mark.parametrize("horizon", [4.0, 5.0, 6.0])
def test_ofil_replay_completion_rate(horizon: float) -> None:
    spec = LabSpec(horizon=horizon)
    policy = OfIL(spec)
    cpe, complete = run_episodes(policy, spec, 300)
    assert complete.mean() >= spec.p_safe - 0.03
    # the simulator PS relies on reproduces the environment replay
    sim_cpe, _, _ = simulate_plan(spec, policy.plan, 20_000, np.random.default_rng(0))
    se = math.sqrt(cpe.var(ddof=1) / cpe.size + sim_cpe.var(ddof=1) / sim_cpe.size)
    assert abs(cpe.mean() - sim_cpe.mean()) < 4 * se + 0.05


def test_ofil_replay_semantics_with_an_overrun() -> None:
    """h=6 plan: 6 labs x 3 stages of 2, 1 lab x 2 stages of 3. Lab 0's first experiment runs 2.5:
    its next starts at the completion (2.5), and its third stage starts 2 later (4.5)."""
    spec = LabSpec(horizon=6.0)
    env = ConcurrentLabsEnv(spec, invalid_action="raise")
    policy = OfIL(spec)
    durations = [1.0] * 20
    durations[0] = 2.5
    obs, _ = env.reset(seed=0, options={"durations": durations})
    done = False
    while not done:
        action, _ = policy.predict(obs)
        obs, _, done, _, info = env.step(action)
    starts = [round(rec.start, 9) for rec in sorted(info["log"], key=lambda rec: rec.index)]
    assert starts == [0.0] * 7 + [2.0] * 5 + [2.5, 3.0] + [4.0] * 5 + [4.5]
    assert info["cpe"] == 5 * 6 + 7 + 12 + 6 * 14


def test_ofil_sequential_deterministic() -> None:
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=4.0, duration=Deterministic(1.0))
    policy = OfIL(spec)
    assert policy.plan.n_labs == 1 and policy.plan.safe
    cpe, complete = run_episodes(policy, spec, 2)
    assert list(cpe) == [6.0, 6.0] and complete.all()


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("snap", [False, True])
def test_from_state_without_running_equals_plain_plan(spec: LabSpec, snap: bool) -> None:
    plain = plan_independent_labs(spec, snap_to_grid=snap)
    general = plan_from_state(spec, spec.n_experiments, 0.0, (), snap_to_grid=snap)
    assert general.labs == plain.labs
    assert general.probability == pytest.approx(plain.probability, rel=1e-12, abs=1e-300)
    assert general.safe == plain.safe


@pytest.mark.parametrize("snap", [False, True])
def test_from_state_reuses_running_labs_first(snap: bool) -> None:
    spec = LabSpec(horizon=5.0)
    elapsed = [1.0, 0.9, 0.9, 0.2, 0.0]
    t, m = 1.0, 10
    plan = plan_from_state(spec, m, t, elapsed, snap_to_grid=snap)
    assert plan.safe and plan.n_reused_labs == len(elapsed) and plan.n_experiments == m
    # reused labs come first, longest-running first; loads even (running experiment counts as one)
    reused = plan.labs[: plan.n_reused_labs]
    assert [lab.running_elapsed for lab in reused] == sorted(elapsed, reverse=True)
    loads = [lab.n_experiments + (0 if lab.is_new else 1) for lab in plan.labs]
    assert max(loads) - min(loads) <= 1 and loads == sorted(loads, reverse=True)
    # each reused lab's safety factor: P(D <= e + x | D > e) times its new stages, from the CDF
    cdf, sf = spec.duration.cdf, spec.duration.sf
    for lab in reused:
        e, x = lab.running_elapsed, lab.boundaries[0] - t
        first = (cdf(e + x) - cdf(e)) / sf(e)
        rest = np.prod(cdf(np.asarray(lab.stage_lengths(t)[1:])))
        assert lab.log_safety == pytest.approx(math.log(first * rest), rel=1e-9)
        assert float(log_cond_cdf(spec.duration, e, x)) == pytest.approx(math.log(first), rel=1e-9)
    # new labs are added only when needed: one fewer is not p-safe
    if plan.n_new_labs:
        fewer = plan_from_state(spec, m, t, elapsed, snap_to_grid=snap, n_new_labs=plan.n_new_labs - 1)
        assert not fewer.safe
    assert plan.probability == pytest.approx(math.exp(plan.log_probability), rel=1e-12)


def test_from_state_monte_carlo_safety() -> None:
    """A plan with reused labs: its probability matches simulated executions (residuals drawn
    conditionally on the elapsed times)."""
    spec = LabSpec(horizon=5.0)
    elapsed = np.array([1.2, 0.7, 0.7, 0.3])
    t, m = 1.0, 9
    plan = plan_from_state(spec, m, t, elapsed, snap_to_grid=True)
    assert 0.5 < plan.probability < 1.0
    n = 40_000
    rng = np.random.default_rng(5)
    running_ends = t + spec.duration.sample_residual(rng, np.broadcast_to(elapsed, (n, elapsed.size)))
    _, _, safe = simulate_plan(spec, plan, n, rng, running_ends=running_ends)
    se = math.sqrt(plan.probability * (1 - plan.probability) / n)
    assert abs(safe.mean() - plan.probability) < 4 * se + 1e-3


def test_from_state_edge_cases() -> None:
    spec = LabSpec(horizon=5.0)
    # nothing left to start: only the running labs
    plan = plan_from_state(spec, 0, 4.0, [0.5, 0.8])
    assert plan.n_new_labs == 0 and plan.n_experiments == 0 and plan.n_labs == 2
    # no time left
    late = plan_from_state(spec, 3, 5.0, [0.5])
    assert not late.safe and late.n_experiments == 0
    # everything busy and not safe: best effort with a note
    busy = plan_from_state(spec, 5, 4.0, [0.1] * spec.n_labs)
    assert not busy.safe and busy.n_new_labs == 0 and any("best effort" in note for note in busy.notes)
    with pytest.raises(ValueError):
        plan_from_state(spec, 3, 1.0, [0.1] * (spec.n_labs + 1))


def test_best_effort_plan_does_not_hang() -> None:
    """n=100 on l=2 labs in h=3 cannot be p-safe: k = l = 2 with safe=False and a note. The replay
    then keeps both labs busy (stages shorter than an epoch are empty); no experiment can finish
    all 100 by h, so completion is 0 and CPE is small (about 7)."""
    spec = LabSpec(n_experiments=100, n_labs=2, horizon=3.0)
    plan = plan_independent_labs(spec)
    assert isinstance(plan, ILPlan)
    assert not plan.safe and plan.n_labs == 2 and plan.counts == (50, 50)
    assert any("best effort" in note for note in plan.notes)
    assert plan.probability < 1e-100
    cpe, complete = run_episodes(OfIL(spec), spec, 5)
    assert not complete.any() and np.all(cpe >= 0)


@pytest.mark.parametrize(
    "duration", [Gamma(10.0, 0.1), Uniform(0.5, 1.5), LogNormal(0.0, 0.3)], ids=lambda d: type(d).__name__
)
def test_ofil_other_duration_laws(duration) -> None:
    spec = LabSpec(duration=duration, horizon=5.0)
    policy = OfIL(spec)
    assert policy.plan.safe
    _, complete = run_episodes(policy, spec, 60)
    assert complete.mean() >= spec.p_safe - 0.06


def test_ofil_dict_and_flat_observations_agree() -> None:
    spec = LabSpec(horizon=6.0)
    a, _ = run_episodes(OfIL(spec), spec, 5)
    b, _ = run_episodes(OfIL(spec), spec, 5, flatten=True)
    assert np.array_equal(a, b)


def test_ofil_with_sb3_evaluate_policy() -> None:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    spec = LabSpec(horizon=6.0)
    for flatten in (False, True):
        venv = DummyVecEnv([lambda flatten=flatten: Monitor(ConcurrentLabsEnv(spec, flatten=flatten))] * 2)
        venv.seed(3)
        rewards, _ = evaluate_policy(OfIL(spec), venv, n_eval_episodes=10, return_episode_rewards=True)
        assert len(rewards) == 10
        # one rounding of the plan's CPE (about 133) for every episode
        assert 110 <= np.mean(rewards) <= 145
