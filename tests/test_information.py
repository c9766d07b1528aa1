"""Information-gain selection (``"mes"``, ``"ivr"``), the audit record of a decision and the
environment's ``reward="information"`` goal."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import labsched
from labsched import LabSpec, baselines
from labsched.envs.bo.gp import GaussianProcess, GPHyperparameters
from labsched.envs.bo.information import (
    IntegratedVarianceReduction,
    MaxValueEntropy,
    integrated_variance,
    integration_points,
    posterior_rmse,
    sample_max_values,
)
from labsched.envs.bo.objectives import OBJECTIVES, make_objective
from labsched.envs.bo.selectors import (
    IntegratedVarianceSelector,
    MaxValueEntropySearch,
    SelectionScores,
    make_selector,
)

BOUNDS_1D = np.array([[0.0, 1.0]])
HP_1D = GPHyperparameters(lengthscale=0.2, signal_variance=1.0, noise_variance=1e-4)


def gp_1d() -> GaussianProcess:
    X = np.array([[0.1], [0.35], [0.8]])
    return GaussianProcess(BOUNDS_1D, HP_1D).fit(X, np.sin(6.0 * X[:, 0]))


def brute_integrated_variance(gp: GaussianProcess, Z: np.ndarray) -> float:
    return float(np.mean([gp.predict(z[None, :])[1][0] ** 2 for z in Z]))


# --------------------------------------------------------------------------------------------
# integrated variance reduction


def test_ivr_matches_brute_force_before_and_after_a_fantasy():
    gp = gp_1d()
    Z = integration_points(BOUNDS_1D, 256)
    iv0 = brute_integrated_variance(gp, Z)
    assert integrated_variance(gp, Z) == pytest.approx(iv0, rel=1e-12)
    X = np.array([[0.0], [0.22], [0.5], [0.6], [0.95]])
    ivr = IntegratedVarianceReduction(gp, Z)(X)
    for x, value in zip(X, ivr, strict=True):
        after = brute_integrated_variance(gp.condition_on_pending(x[None, :]), Z)
        assert value == pytest.approx(iv0 - after, rel=1e-6, abs=1e-12)
        assert value > 0.0
    # after one fantasy at 0.6, the next gains are those of the fantasised model
    fantasy = gp.condition_on_pending(np.array([[0.6]]))
    iv1 = brute_integrated_variance(fantasy, Z)
    for x, value in zip(X, IntegratedVarianceReduction(fantasy, Z)(X), strict=True):
        after = brute_integrated_variance(fantasy.condition_on_pending(x[None, :]), Z)
        assert value == pytest.approx(iv1 - after, rel=1e-6, abs=1e-12)


def test_ivr_selector_picks_the_largest_reduction_and_records_it():
    gp = gp_1d()
    s = IntegratedVarianceSelector(n_integration=256, n_candidates=512)
    X, scores = s.select(gp, None, 1, np.random.default_rng(0), return_scores=True)
    grid = np.linspace(0.0, 1.0, 2001)[:, None]
    best = IntegratedVarianceReduction(gp, integration_points(BOUNDS_1D, 256))(grid).max()
    assert isinstance(scores, SelectionScores) and s.last_scores is scores
    assert scores.selector == "ivr" and len(scores.picks) == 1
    pick = scores.picks[0]
    np.testing.assert_array_equal(pick.x, X[0])
    assert pick.value >= 0.995 * best
    assert pick.top[0].value == pick.value and len(pick.top) == s.n_scores
    assert [c.value for c in pick.top] == sorted((c.value for c in pick.top), reverse=True)
    assert scores.as_dict()["picks"][0]["x"] == [float(X[0, 0])]


def test_ivr_batch_accounts_for_pending_points():
    gp = gp_1d()
    s = IntegratedVarianceSelector(n_integration=256)
    alone = s.select(gp, None, 1, np.random.default_rng(1))
    with_pending = s.select(gp, alone, 1, np.random.default_rng(1))
    assert abs(float(with_pending[0, 0] - alone[0, 0])) > 0.05  # the running point is not repeated
    batch = s.select(gp, None, 3, np.random.default_rng(2))
    assert len(np.unique(np.round(batch[:, 0], 3))) == 3


# --------------------------------------------------------------------------------------------
# max-value entropy search


def test_mes_prefers_mass_near_the_maximum_over_equal_variance_elsewhere():
    # two symmetric gaps of equal variance: one next to the best observation, one next to the worst
    X = np.array([[0.0], [0.3], [0.7], [1.0]])
    y = np.array([0.0, 1.0, -1.0, 0.0])
    gp = GaussianProcess(BOUNDS_1D, HP_1D).fit(X, y)
    near_max, elsewhere = np.array([[0.4]]), np.array([[0.6]])
    assert gp.predict(near_max)[1][0] == pytest.approx(gp.predict(elsewhere)[1][0], rel=1e-9)
    y_star = sample_max_values(gp, np.linspace(0, 1, 201)[:, None], 32, np.random.default_rng(0))
    assert np.all(y_star >= float(np.max(gp.predict(X, return_std=False))))
    mes = MaxValueEntropy(gp, y_star)
    assert mes(near_max)[0] > 2.0 * mes(elsewhere)[0] > 0.0
    for method in ("gumbel", "sample"):
        x = MaxValueEntropySearch(max_value_method=method).select(gp, None, 1, np.random.default_rng(3))
        assert abs(x[0, 0] - 0.3) < 0.15, method  # in a gap next to the best observation


def test_mes_value_is_zero_where_the_posterior_is_certain():
    gp = gp_1d()
    mes = MaxValueEntropy(gp, np.array([2.0, 3.0]))
    values = mes(np.array([[0.1], [0.5]]))
    assert values[0] < 1e-3 * values[1]


# --------------------------------------------------------------------------------------------
# cost awareness and ties


def test_cost_aware_prefers_cheap_informative_points_but_not_cheap_useless_ones():
    gp = gp_1d()
    cheap_right = lambda X: np.where(X[:, 0] > 0.5, 0.2, 1.0)  # noqa: E731
    plain = IntegratedVarianceSelector(n_integration=256).select(gp, None, 1, np.random.default_rng(0))
    costly = IntegratedVarianceSelector(n_integration=256, duration_fn=cheap_right)
    x = costly.select(gp, None, 1, np.random.default_rng(0))
    assert x[0, 0] > 0.5
    pick = costly.last_scores.picks[0]
    assert pick.top[0].duration == 0.2 and pick.value == pytest.approx(pick.top[0].gain / 0.2)
    # the gain floor: a cheap point with little gain never wins on cost alone (it does without it)
    ivr = IntegratedVarianceReduction(gp, integration_points(BOUNDS_1D, 256))
    best = ivr(np.linspace(0.0, 1.0, 2001)[:, None]).max()
    cheap_useless = lambda X: np.where(ivr(X) < 0.4 * best, 1e-6, 1.0)  # noqa: E731
    guarded = IntegratedVarianceSelector(n_integration=256, duration_fn=cheap_useless)
    assert ivr(guarded.select(gp, None, 1, np.random.default_rng(0)))[0] >= 0.5 * best
    naive = IntegratedVarianceSelector(n_integration=256, duration_fn=cheap_useless, gain_floor=0.0)
    assert ivr(naive.select(gp, None, 1, np.random.default_rng(0)))[0] < 0.4 * best
    # cost_exponent 0 ignores the cost
    x3 = IntegratedVarianceSelector(n_integration=256, duration_fn=cheap_right, cost_exponent=0.0)
    np.testing.assert_allclose(x3.select(gp, None, 1, np.random.default_rng(0)), plain)


def test_ties_go_to_shorter_duration_then_farther_from_pending():
    s = IntegratedVarianceSelector(tie_tol=1e-6)
    U = np.array([[0.1], [0.5], [0.9]])
    scores = np.array([1.0, 1.0 - 1e-9, 0.5])
    assert s.choose(scores, np.array([2.0, 1.0, 1.0]), U, np.zeros((0, 1))) == (1, "tie: shorter duration")
    assert s.choose(scores, None, U, np.array([[0.05]])) == (1, "tie: farther from pending")
    assert s.choose(scores, None, U, np.array([[0.55]])) == (0, "tie: farther from pending")
    assert s.choose(scores, None, U, np.zeros((0, 1))) == (0, "tie: first candidate")
    assert s.choose(np.array([1.0, 0.9, 0.5]), None, U, np.zeros((0, 1))) == (0, "argmax")


def test_every_selector_records_its_decision():
    obj = make_objective("cosines")
    X = obj.sample_uniform(np.random.default_rng(0), 8)
    gp = GaussianProcess.paper_default(np.array(obj.bounds)).fit(X, obj(X))
    for name in ("kb-ei", "thompson", "simulation-matching", "mes", "ivr", "random"):
        s = make_selector(name, **({"n_samples": 10} if name == "simulation-matching" else {}))
        out = s.select(gp, X[:1] * 0.5 + 0.2, 3, np.random.default_rng(1))
        rec = s.last_scores
        assert rec.selector == s.name and len(rec.picks) == 3
        np.testing.assert_array_equal(np.array([p.x for p in rec.picks]), out)
        if name != "random":
            assert all(np.isfinite(p.value) and p.top for p in rec.picks), name


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"cost_exponent": -1.0}, ValueError, "cost_exponent"),
        ({"gain_floor": 1.5}, ValueError, "gain_floor"),
        ({"tie_tol": -1e-3}, ValueError, "tie_tol"),
        ({"duration_fn": 3.0}, TypeError, "duration_fn"),
        ({"n_integration": 0}, ValueError, "n_integration"),
    ],
)
def test_bad_information_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_selector("ivr", **kwargs)


def test_bad_information_inputs():
    gp = gp_1d()
    with pytest.raises(ValueError, match="max_value_method"):
        make_selector("mes", max_value_method="exact")
    with pytest.raises(ValueError, match="n_max_values"):
        make_selector("mes", n_max_values=0)
    bad = IntegratedVarianceSelector(duration_fn=lambda X: -np.ones(len(X)))
    with pytest.raises(ValueError, match="duration_fn must return"):
        bad.select(gp, None, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="did you mean 'mes'"):
        make_selector("mse")
    with pytest.raises(ValueError, match="bounds"):
        integration_points([[1.0, 0.0]])
    with pytest.raises(ValueError, match="method"):
        sample_max_values(gp, np.zeros((3, 1)), 4, np.random.default_rng(0), method="grid")


# --------------------------------------------------------------------------------------------
# the environment's information goal


def test_integration_points_are_fixed_and_inside_the_box():
    a = integration_points([[0.0, 2.0], [-1.0, 1.0]], 100)
    np.testing.assert_array_equal(a, integration_points([[0.0, 2.0], [-1.0, 1.0]], 100))
    assert a.shape == (100, 2) and np.all(a[:, 0] >= 0) and np.all(a[:, 0] <= 2) and np.all(a[:, 1] >= -1)


def _play(env, policy, seed):
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs)
        obs, reward, done, _, info = env.step(action)
        total += reward
    return total, info


@pytest.mark.parametrize("selector", ["ivr", "kb-ei", "random"])
def test_information_reward_is_minus_the_recomputed_integrated_variance(selector):
    spec = LabSpec(n_experiments=8, n_labs=3, horizon=8.0)
    env = labsched.ConcurrentLabsEnv(spec, reward="information", objective="hartmann3", selector=selector)
    total, info = _play(env, baselines.make("sequential", spec.replace(horizon=40.0)), 0)
    obj = OBJECTIVES["hartmann3"]
    bounds = np.array(obj.bounds)
    gp = GaussianProcess(bounds, GaussianProcess.paper_hyperparameters(bounds)).fit(info["X"], info["y"])
    Z = integration_points(bounds)
    assert total == pytest.approx(-integrated_variance(gp, Z), rel=1e-6)
    assert total == pytest.approx(-info["integrated_variance"], rel=1e-12)
    assert info["rmse"] == pytest.approx(posterior_rmse(gp, obj, Z), rel=1e-6)


def test_information_keys_are_reported_in_every_mode_with_an_objective():
    spec = LabSpec(n_experiments=6, n_labs=2, horizon=6.0)
    for reward in ("cpe", "regret"):
        env = labsched.ConcurrentLabsEnv(spec, reward=reward, objective="cosines", selector="random")
        _, info = _play(env, baselines.make("sequential", spec), 1)
        assert info["integrated_variance"] > 0.0 and info["rmse"] > 0.0
    env = labsched.ConcurrentLabsEnv(spec)
    _, info = _play(env, baselines.make("sequential", spec), 1)
    assert "integrated_variance" not in info
    with pytest.raises(ValueError, match="information"):
        labsched.ConcurrentLabsEnv(spec, reward="entropy")


def test_every_builtin_objective_pickles():
    for name, obj in OBJECTIVES.items():
        clone = pickle.loads(pickle.dumps(obj))
        x = np.asarray(obj.optimizer)
        assert clone(x) == obj(x) and clone.optimum_value == obj.optimum_value, name
    for spec in ("ackley(5)", "levy(3)", "michalewicz(3)"):
        obj = make_objective(spec)
        assert pickle.loads(pickle.dumps(obj))(np.asarray(obj.optimizer)) == obj(np.asarray(obj.optimizer))
