"""Tests of the offline staged scheduler (``labsched.baselines.labs.staged``).

Covers the theory of section 4.1 of Azimi, Fern & Fern (Proposition 1, Equation 1, Lemma 1,
Algorithm 1) by brute force, and the replaying agent in the Gymnasium environment.
"""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest

import labsched  # noqa: F401  (registers the environment)
from labsched.baselines.labs.staged import (
    OfStaged,
    StagedPlan,
    max_prob_uniform,
    plan_staged,
    snap_plan,
    staged_cpe,
    uniform_sizes,
)
from labsched.envs.labs.durations import (
    Deterministic,
    DurationModel,
    Gamma,
    Mixture,
    TruncatedNormal,
    Uniform,
)
from labsched.envs.labs.spec import LabSpec

ENV_ID = "labsched/ConcurrentLabs-v0"
LOG_CONCAVE = [TruncatedNormal(), Gamma(10.0, 0.1), Uniform(0.5, 1.5)]


# ------------------------------------------------------------------------------------ helpers
def compositions(n: int, parts: int, cap: int):
    """All ordered tuples of ``parts`` integers in ``[1, cap]`` summing to ``n``."""
    if parts == 1:
        if 1 <= n <= cap:
            yield (n,)
        return
    for first in range(1, min(cap, n - parts + 1) + 1):
        for rest in compositions(n - first, parts - 1, cap):
            yield (first, *rest)


def eq1(model: DurationModel, n: int, n_stages: int, h: float, d_big: np.ndarray) -> np.ndarray:
    """Equation 1 in probability form, vectorised over ``d'``."""
    n_big, big = n % n_stages, n // n_stages + 1
    d_small = (h - n_big * d_big) / (n_stages - n_big)
    ok = d_small >= 0
    p = model.cdf(d_big) ** (n_big * big) * model.cdf(np.maximum(d_small, 0.0)) ** (
        (n_stages - n_big) * (big - 1)
    )
    return np.where(ok, p, 0.0)


def run_episode(env: gym.Env, policy: OfStaged, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    policy.reset()
    terminated = truncated = False
    while not (terminated or truncated):
        action, _ = policy.predict(obs)
        obs, _, terminated, truncated, info = env.step(action)
    return info


def stage_index(plan: StagedPlan) -> list[int]:
    """Stage of each experiment, in start order."""
    return [i for i, size in enumerate(plan.sizes) for _ in range(size)]


def within_stages(info: dict, plan: StagedPlan, tol: float = 1e-9) -> bool:
    """True when all experiments completed and each finished by its stage's planned end."""
    log = info["log"]
    if len(log) != plan.n_experiments:
        return False
    stage = stage_index(plan)
    ends = [s + d for s, d in zip(plan.start_times, plan.durations, strict=True)]
    return all(rec.end <= ends[stage[rec.index]] + tol for rec in log)


# ------------------------------------------------------------------------------ CPE and sizes
def test_staged_cpe_matches_pair_formula_and_is_order_invariant():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sizes = tuple(int(x) for x in rng.integers(1, 8, size=rng.integers(1, 7)))
        pairs = sum(a * b for i, a in enumerate(sizes) for j, b in enumerate(sizes) if i != j) // 2
        assert staged_cpe(sizes) == pairs
        assert staged_cpe(tuple(rng.permutation(sizes))) == pairs
    assert staged_cpe((7, 7, 6)) == 7 * 7 + 6 * 14 == 133
    assert staged_cpe((10, 10)) == 100


@pytest.mark.parametrize("n", [1, 5, 20, 23])
def test_uniform_sizes(n):
    for n_stages in range(1, n + 1):
        sizes = uniform_sizes(n, n_stages)
        assert len(sizes) == n_stages and sum(sizes) == n
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
        assert list(sizes) == sorted(sizes, reverse=True)  # larger stages first
    with pytest.raises(ValueError):
        uniform_sizes(n, n + 1)


@pytest.mark.parametrize(("n", "n_labs"), [(5, 2), (7, 3), (8, 3), (9, 4), (9, 9), (10, 4)])
def test_proposition_1_uniform_sizes_exactly_maximise_cpe(n, n_labs):
    prev_best = None
    for n_stages in range(math.ceil(n / n_labs), n + 1):
        cpes = {c: staged_cpe(c) for c in compositions(n, n_stages, n_labs)}
        best = max(cpes.values())
        maximisers = {c for c, v in cpes.items() if v == best}
        uniform = {c for c in cpes if max(c) - min(c) <= 1}
        assert maximisers == uniform, (n, n_labs, n_stages)
        assert staged_cpe(uniform_sizes(n, n_stages)) == best
        if prev_best is not None:  # one more stage beats every schedule with one fewer
            assert best > prev_best
        prev_best = best


# ------------------------------------------------------------------------ MaxProbUniform
CASES = [(7, 4, 3.0, 2), (20, 10, 6.0, 3), (11, 4, 4.0, 4), (13, 5, 5.0, 3)]


@pytest.mark.parametrize("model", LOG_CONCAVE, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize(("n", "n_labs", "h", "n_stages"), CASES)
def test_max_prob_uniform_beats_dense_bruteforce_grid(model, n, n_labs, h, n_stages):
    spec = LabSpec(n_experiments=n, n_labs=n_labs, horizon=h, duration=model)
    plan = max_prob_uniform(spec, n_stages)
    assert plan.sizes == uniform_sizes(n, n_stages)
    assert math.isclose(sum(plan.durations), h, rel_tol=1e-12)
    n_big = n % n_stages
    assert len(set(plan.durations[:n_big])) == 1 and len(set(plan.durations[n_big:])) == 1
    grid = np.linspace(0.0, h / n_big, 200_001)
    brute = float(np.max(eq1(model, n, n_stages, h, grid)))
    assert plan.p_safe_probability >= brute * (1 - 1e-9)
    assert math.isclose(
        plan.p_safe_probability, float(eq1(model, n, n_stages, h, np.array([plan.durations[0]]))[0])
    )


def test_max_prob_uniform_is_not_just_the_equal_split():
    # The brute-force comparison above has teeth: here equal durations are measurably worse.
    spec = LabSpec(n_experiments=7, n_labs=4, horizon=3.0)
    plan = max_prob_uniform(spec, 2)
    equal = StagedPlan.for_spec(spec, [(s, 1.5) for s in plan.sizes])
    assert plan.durations[0] > plan.durations[1]  # the 4-experiment stage gets more time
    assert plan.p_safe_probability > equal.p_safe_probability + 1e-3


def test_max_prob_uniform_divisible_and_infeasible_n():
    spec = LabSpec(horizon=6.0)
    plan = max_prob_uniform(spec, 4)  # 4 divides 20
    assert plan.stages == ((5, 1.5),) * 4
    with pytest.raises(ValueError):
        max_prob_uniform(spec, 1)  # 20 experiments in one stage, only 10 labs
    with pytest.raises(ValueError):
        max_prob_uniform(spec, 21)


@pytest.mark.parametrize("model", LOG_CONCAVE, ids=lambda m: type(m).__name__)
def test_lemma_1_equalising_within_groups_never_lowers_safety(model):
    rng = np.random.default_rng(1)
    for _ in range(300):
        k = int(rng.integers(2, 7))
        sizes = rng.integers(1, 4, size=k)  # a few size groups, several stages each
        durs = rng.uniform(0.3, 2.5, size=k)
        logs = model.logcdf(durs)
        before = -np.inf if np.any(np.isneginf(logs)) else float(sizes @ logs)
        eq = durs.copy()
        for s in np.unique(sizes):
            eq[sizes == s] = durs[sizes == s].mean()
        logs_eq = model.logcdf(eq)
        after = -np.inf if np.any(np.isneginf(logs_eq)) else float(sizes @ logs_eq)
        assert after >= before - 1e-12


def test_lemma_1_check_fails_for_a_non_log_concave_mixture():
    # The same check is violated by the bimodal mixture, so the test above can fail.
    model = Mixture()
    assert not model.log_concave
    durs = np.array([0.9, 2.6])
    before = float(np.sum(model.logcdf(durs)))
    after = float(2 * model.logcdf(np.array([durs.mean()]))[0])
    assert after < before - 0.1


def test_non_log_concave_search_beats_bruteforce_grid():
    model = Mixture()
    n, n_labs, h, n_stages = 7, 4, 3.0, 2
    plan = max_prob_uniform(LabSpec(n_experiments=n, n_labs=n_labs, horizon=h, duration=model), n_stages)
    assert "not log-concave" in plan.notes
    brute = float(np.max(eq1(model, n, n_stages, h, np.linspace(0.0, h, 200_001))))
    assert plan.p_safe_probability >= brute * (1 - 1e-9)


# ---------------------------------------------------------------------------- Algorithm 1
@pytest.mark.parametrize("snap", [False, True])
@pytest.mark.parametrize(("h", "expected_cpe"), [(4.0, 100), (5.0, 100), (6.0, 133)])
def test_plan_staged_on_paper_setting(h, expected_cpe, snap):
    spec = LabSpec(horizon=h)
    plan = plan_staged(spec, snap_to_grid=snap)
    n_stages = plan.n_stages

    def candidate(k: int) -> StagedPlan:
        p = max_prob_uniform(spec, k)
        return snap_plan(spec, p) if snap else p

    assert plan.is_uniform and plan.safe
    assert plan.p_safe_probability >= spec.p_safe
    assert sum(plan.sizes) == spec.n_experiments and max(plan.sizes) <= spec.n_labs
    assert math.isclose(sum(plan.durations), h, rel_tol=1e-12)
    assert plan.sizes == uniform_sizes(spec.n_experiments, n_stages)
    # Algorithm 1: every N from ceil(n/l) up to the chosen one is p-safe, N + 1 is not.
    for k in range(math.ceil(spec.n_experiments / spec.n_labs), n_stages + 1):
        assert candidate(k).safe
    assert not candidate(n_stages + 1).safe
    assert plan.cpe == staged_cpe(uniform_sizes(spec.n_experiments, n_stages)) == expected_cpe
    if snap:
        starts = np.asarray(plan.start_times) / spec.epoch
        assert np.allclose(starts, np.round(starts), atol=1e-9)


def test_plan_staged_all_stages_safe_reaches_sequential():
    spec = LabSpec(n_experiments=12, n_labs=12, horizon=40.0)
    for snap in (False, True):
        plan = plan_staged(spec, snap_to_grid=snap)
        assert plan.n_stages == 12 and plan.cpe == spec.max_cpe and plan.safe


@pytest.mark.parametrize("snap", [False, True])
def test_best_effort_when_nothing_is_p_safe(snap):
    spec = LabSpec(n_experiments=100, n_labs=2, horizon=3.0)
    plan = plan_staged(spec, snap_to_grid=snap)
    assert not plan.safe
    assert "best effort" in plan.notes
    assert plan.n_stages == 50 and plan.sizes == (2,) * 50
    assert math.isclose(sum(plan.durations), 3.0, rel_tol=1e-12)
    assert plan.p_safe_probability < 1e-6


def test_mixture_spec_gives_valid_plan_and_runs():
    spec = LabSpec(duration=Mixture(), horizon=6.0)
    for snap in (False, True):
        plan = plan_staged(spec, snap_to_grid=snap)
        assert "not log-concave" in plan.notes
        assert plan.is_uniform and sum(plan.sizes) == spec.n_experiments
        assert max(plan.sizes) <= spec.n_labs
        assert math.isclose(sum(plan.durations), spec.horizon, rel_tol=1e-12)
        assert plan.safe == (plan.p_safe_probability >= spec.p_safe)
    policy = OfStaged(spec)
    env = gym.make(ENV_ID, spec=spec, disable_env_checker=True)
    for seed in range(5):
        info = run_episode(env, policy, seed)
        if within_stages(info, policy.plan):
            assert info["cpe"] == policy.plan.cpe


# ---------------------------------------------------------------------------- grid plans
@pytest.mark.parametrize(("h", "n_stages"), [(6.0, 3), (5.0, 3), (5.0, 4), (4.0, 3)])
def test_optimal_snap_matches_bruteforce_over_grid_starts(h, n_stages):
    spec = LabSpec(horizon=h)
    cont = max_prob_uniform(spec, n_stages)
    best = snap_plan(spec, cont, "optimal")
    last = int(round(h / spec.epoch)) - 1
    top = -math.inf
    for inner in itertools.combinations(range(1, last + 1), n_stages - 1):
        times = [0.0, *(j * spec.epoch for j in inner), h]
        plan = StagedPlan.for_spec(spec, [(s, times[i + 1] - times[i]) for i, s in enumerate(cont.sizes)])
        top = max(top, plan.log_p_safe_probability)
    assert best.log_p_safe_probability == pytest.approx(top, abs=1e-12)
    for mode in ("ceil", "floor", "nearest"):
        assert best.log_p_safe_probability >= snap_plan(spec, cont, mode).log_p_safe_probability - 1e-12
    assert best.log_p_safe_probability <= cont.log_p_safe_probability + 1e-12


def test_snap_rejects_more_stages_than_grid_points():
    spec = LabSpec(n_experiments=100, n_labs=2, horizon=3.0)
    with pytest.raises(ValueError):
        snap_plan(spec, max_prob_uniform(spec, 50))


# ------------------------------------------------------------------------- replay in the env
@pytest.mark.parametrize(
    ("horizon", "snap", "on_completion"),
    [(5.0, True, True), (5.25, False, True), (5.25, True, False), (5.25, False, False)],
)
def test_replay_deterministic_durations_gives_plan_cpe(horizon, snap, on_completion):
    spec = LabSpec(horizon=horizon, duration=Deterministic(0.9))
    policy = OfStaged(spec, snap_to_grid=snap)
    assert policy.plan.safe and policy.plan.n_stages == 5
    env = gym.make(ENV_ID, spec=spec, decide_on_completion=on_completion, disable_env_checker=True)
    for seed in range(3):
        info = run_episode(env, policy, seed)
        assert within_stages(info, policy.plan)
        assert info["cpe"] == policy.plan.cpe == 160


def test_replay_waits_for_free_labs():
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=5.0, duration=Deterministic(0.95))
    plan = StagedPlan.for_spec(spec, [(2, 0.55), (2, 4.45)])  # stage 2 due while stage 1 runs
    policy = OfStaged(spec, plan=plan)
    # Labs free at 0.95: the completion moment, or the next grid point without completion decisions.
    for on_completion, expected_start in ((True, 0.95), (False, 1.0)):
        env = gym.make(ENV_ID, spec=spec, decide_on_completion=on_completion, disable_env_checker=True)
        info = run_episode(env, policy, 0)
        starts = sorted(rec.start for rec in info["log"])
        assert starts[:2] == [0.0, 0.0]
        assert starts[2:] == pytest.approx([expected_start] * 2, abs=1e-9)
        assert info["cpe"] == 4


@pytest.mark.parametrize("h", [4.0, 5.0, 6.0])
def test_replay_default_distribution_statistics(h):
    spec = LabSpec(horizon=h)
    policy = OfStaged(spec)
    plan = policy.plan
    env = gym.make(ENV_ID, spec=spec, disable_env_checker=True)
    episodes = 300
    cpes, completed, safe = [], [], []
    stage = stage_index(plan)
    for seed in range(episodes):
        info = run_episode(env, policy, seed)
        cpes.append(info["cpe"])
        completed.append(info["completed"] == spec.n_experiments)
        ok = within_stages(info, plan)
        safe.append(ok)
        if ok:
            assert info["cpe"] == plan.cpe
            # Grid plans start every stage exactly on time (float32 time decoding tolerated).
            for rec in info["log"]:
                assert rec.start == pytest.approx(plan.start_times[stage[rec.index]], abs=1e-9)
    cpes_arr = np.asarray(cpes, dtype=float)
    se = cpes_arr.std(ddof=1) / math.sqrt(episodes)
    assert abs(cpes_arr.mean() - plan.cpe) <= 4 * se + 1e-12
    assert np.mean(completed) >= spec.p_safe - 0.03
    p = plan.p_safe_probability
    assert np.mean(safe) >= p - 4 * math.sqrt(p * (1 - p) / episodes) - 1e-12


def test_replay_with_flat_observation_matches_dict():
    spec = LabSpec(horizon=6.0)
    policy = OfStaged(spec)
    env_dict = gym.make(ENV_ID, spec=spec, disable_env_checker=True)
    env_flat = gym.make(ENV_ID, spec=spec, flatten=True, disable_env_checker=True)
    for seed in range(20):
        a = run_episode(env_dict, policy, seed)
        b = run_episode(env_flat, policy, seed)
        assert a["cpe"] == b["cpe"] and a["completed"] == b["completed"]
        assert [r.start for r in a["log"]] == [r.start for r in b["log"]]


def test_evaluate_policy_on_dummy_vec_env():
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv

    spec = LabSpec()
    policy = OfStaged(spec)
    venv = DummyVecEnv([lambda: gym.make(ENV_ID, spec=spec) for _ in range(2)])
    venv.seed(0)
    rewards, lengths = evaluate_policy(
        policy, venv, n_eval_episodes=4, return_episode_rewards=True, warn=False
    )
    venv.close()
    assert len(rewards) == 4 and all(length > 0 for length in lengths)
    assert np.mean(rewards) >= 0.9 * policy.plan.cpe


def test_ofstaged_construction():
    spec = LabSpec()
    assert OfStaged.name == "ofstaged"
    assert OfStaged(spec).plan == plan_staged(spec, snap_to_grid=True)
    assert OfStaged(spec, snap_to_grid=False).plan == plan_staged(spec)
    with pytest.raises(ValueError):
        OfStaged(spec, plan=StagedPlan.for_spec(spec, [(11, 2.0), (9, 3.0)]))  # 11 > l labs
    with pytest.raises(TypeError):
        OfStaged(spec, plan=((10, 2.5), (10, 2.5)))  # type: ignore[arg-type]
