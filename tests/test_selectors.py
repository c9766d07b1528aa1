"""Tests of the batch selectors ``labsched.envs.bo.selectors`` (the paper's ``SelectBatch``)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np
import pytest
from scipy import optimize

from labsched.envs.bo import acquisition as acq_mod
from labsched.envs.bo.gp import GaussianProcess
from labsched.envs.bo.objectives import make_objective
from labsched.envs.bo.selectors import (
    SELECTORS,
    KrigingBelieverEI,
    RandomSelector,
    Selector,
    SimulationMatching,
    ThompsonSampling,
    expected_improvement,
    k_medoids,
    make_selector,
)
from labsched.envs.bo.selectors import simulation_matching as sm_mod

NAMES = ("kb-ei", "thompson", "simulation-matching", "mes", "ivr", "random")
COSINES = make_objective("cosines")
HARTMANN6 = make_objective("hartmann6")


def fitted_gp(obj, n: int, seed: int) -> GaussianProcess:
    X = obj.sample_uniform(np.random.default_rng(seed), n)
    return GaussianProcess.paper_default(np.array(obj.bounds)).fit(X, obj(X))


@pytest.fixture(scope="module")
def gp2() -> GaussianProcess:
    return fitted_gp(COSINES, 10, 3)


@pytest.fixture(scope="module")
def gp6() -> GaussianProcess:
    # a box other than the unit cube, to exercise the scaling
    obj = make_objective("hartmann6")
    X = obj.sample_uniform(np.random.default_rng(5), 25)
    bounds = np.array(obj.bounds) * 2.0 - 0.5
    return GaussianProcess.paper_default(bounds).fit(X * 2.0 - 0.5, obj(X))


def unit(gp: GaussianProcess, X: np.ndarray) -> np.ndarray:
    b = gp.bounds
    return (X - b[:, 0]) / (b[:, 1] - b[:, 0])


def min_unit_distance(gp: GaussianProcess, A: np.ndarray, B: np.ndarray) -> float:
    if len(A) == 0 or len(B) == 0:
        return np.inf
    diff = unit(gp, A)[:, None, :] - unit(gp, B)[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).min())


def check_batch(gp: GaussianProcess, X: np.ndarray, X_pending: np.ndarray, k: int, tol: float = 1e-4) -> None:
    assert isinstance(X, np.ndarray)
    assert X.shape == (k, gp.dim)
    assert X.dtype == np.float64
    assert np.all(np.isfinite(X))
    b = gp.bounds
    assert np.all(X >= b[:, 0]) and np.all(X <= b[:, 1])
    U = unit(gp, X)
    if k > 1:
        d = np.sqrt(((U[:, None, :] - U[None, :, :]) ** 2).sum(-1))
        assert d[np.triu_indices(k, 1)].min() >= tol * 0.999
    assert min_unit_distance(gp, X, X_pending) >= tol * 0.999
    assert min_unit_distance(gp, X, gp.X) >= tol * 0.999


# --------------------------------------------------------------------------------------------
# the common contract


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("n_pending", [0, 3])
def test_contract_2d(gp2, name, k, n_pending):
    X_pending = COSINES.sample_uniform(np.random.default_rng(9), n_pending)
    X = make_selector(name).select(gp2, X_pending, k, np.random.default_rng(0))
    check_batch(gp2, X, X_pending, k)


@pytest.mark.parametrize("name", NAMES)
def test_contract_6d_scaled_box(gp6, name):
    X_pending = gp6.X[:2] * 0.5 + 0.25
    X = make_selector(name).select(gp6, X_pending, 5, np.random.default_rng(1))
    check_batch(gp6, X, X_pending, 5)


@pytest.mark.parametrize("name", NAMES)
def test_pending_at_observed_and_duplicate_points(gp2, name):
    """Pending points may repeat each other or sit on observed points; the batch stays apart."""
    X_pending = np.vstack([gp2.X[:2], gp2.X[:1]])
    X = make_selector(name).select(gp2, X_pending, 3, np.random.default_rng(2))
    check_batch(gp2, X, X_pending, 3)


@pytest.mark.parametrize("name", NAMES)
def test_without_observations(name):
    gp = GaussianProcess.paper_default(np.array(COSINES.bounds))
    X = make_selector(name).select(gp, None, 3, np.random.default_rng(0))
    check_batch(gp, X, np.zeros((0, 2)), 3)


@pytest.mark.parametrize("name", NAMES)
def test_large_batch_exceeds_candidate_count(gp2, name):
    options = {} if name == "random" else {"n_candidates": 8, "n_local": 0}
    X = make_selector(name, **options).select(gp2, None, 30, np.random.default_rng(0))
    check_batch(gp2, X, np.zeros((0, 2)), 30)


@pytest.mark.parametrize("name", NAMES)
def test_larger_min_distance_is_respected(gp2, name):
    X_pending = gp2.X[:3] + 0.01
    X = make_selector(name, min_distance=0.05).select(gp2, X_pending, 4, np.random.default_rng(0))
    check_batch(gp2, X, X_pending, 4, tol=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(gp2, name):
    s = make_selector(name)
    X_pending = gp2.X[:2] + 0.02
    a = s.select(gp2, X_pending, 3, np.random.default_rng(42))
    b = s.select(gp2, X_pending, 3, np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["thompson", "random"])
def test_randomised_selectors_vary_with_seed(gp2, name):
    s = make_selector(name)
    draws = {
        tuple(np.round(s.select(gp2, None, 2, np.random.default_rng(seed)).ravel(), 6)) for seed in range(5)
    }
    assert len(draws) > 1


@pytest.mark.parametrize("name", NAMES)
def test_gp_is_not_modified(name):
    gp = fitted_gp(COSINES, 8, 11)
    X, y, alpha, L = gp.X, gp.y, gp.alpha, gp.cholesky_factor
    make_selector(name).select(gp, gp.X[:2] + 0.03, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(gp.X, X)
    np.testing.assert_array_equal(gp.y, y)
    np.testing.assert_array_equal(gp.alpha, alpha)
    np.testing.assert_array_equal(gp.cholesky_factor, L)


# --------------------------------------------------------------------------------------------
# expected improvement and the posterior snapshot


def test_expected_improvement_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean, std, inc = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0]), 0.3
    draws = mean + std * rng.standard_normal((400_000, 3))
    mc = np.maximum(draws - inc, 0.0).mean(axis=0)
    np.testing.assert_allclose(expected_improvement(mean, std, inc), mc, rtol=0.02, atol=1e-3)


def test_expected_improvement_zero_std():
    ei = expected_improvement(np.array([1.0, -1.0]), np.array([0.0, 0.0]), 0.0)
    np.testing.assert_array_equal(ei, [1.0, 0.0])


def test_posterior_snapshot_matches_gp_and_gradient(gp6):
    post = acq_mod.Posterior(gp6)
    rng = np.random.default_rng(0)
    U = rng.random((30, 6))
    b = gp6.bounds
    mean, std = gp6.predict(b[:, 0] + U * (b[:, 1] - b[:, 0]))
    m2, s2 = post.mean_std(U)
    np.testing.assert_allclose(m2, mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s2, std, rtol=1e-8, atol=1e-10)
    inc = acq_mod.incumbent(gp6)
    # near the observations, where EI is not vanishingly small
    for u in unit(gp6, gp6.X[:4]) + 0.05:
        value, grad = post.ei_and_grad(u, inc)
        mean_u, std_u = gp6.predict((b[:, 0] + u * (b[:, 1] - b[:, 0]))[None, :])
        assert value * post.scale == pytest.approx(
            float(expected_improvement(mean_u, std_u, inc)[0]), rel=1e-8
        )
        fd = optimize.approx_fprime(u, lambda v: post.ei_and_grad(v, inc)[0], 1e-7)
        np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------------------------
# kriging believer EI


def ei_on_grid(gp: GaussianProcess, n: int = 301) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(0.0, 1.0, n)
    G = np.array(list(itertools.product(g, g)))
    mean, std = gp.predict(G)
    return G, expected_improvement(mean, std, acq_mod.incumbent(gp))


def test_kb_ei_single_pick_maximises_ei(gp2):
    _, ei = ei_on_grid(gp2)
    x = KrigingBelieverEI().select(gp2, None, 1, np.random.default_rng(0))
    mean, std = gp2.predict(x)
    assert float(expected_improvement(mean, std, acq_mod.incumbent(gp2))[0]) >= 0.999 * ei.max()


@pytest.mark.parametrize("liar", ["mean", "min", "max"])
def test_kb_ei_moves_away_from_pending_point_at_ei_maximum(gp2, liar):
    s = KrigingBelieverEI(liar=liar)
    x_star = s.select(gp2, None, 1, np.random.default_rng(0))
    x_new = s.select(gp2, x_star, 1, np.random.default_rng(0))
    ell = gp2.hyperparameters.lengthscales(2).min()
    assert min_unit_distance(gp2, x_new, x_star) > 0.3 * ell


def test_kb_ei_batch_is_spread_out(gp2):
    X = KrigingBelieverEI().select(gp2, None, 5, np.random.default_rng(0))
    ell = gp2.hyperparameters.lengthscales(2).min()
    U = unit(gp2, X)
    d = np.sqrt(((U[:, None] - U[None]) ** 2).sum(-1))[np.triu_indices(5, 1)]
    assert d.min() > 0.3 * ell


def test_kb_ei_first_pick_with_pending_equals_pick_after_fantasy(gp2):
    """Pending points and earlier picks of the same batch are treated alike."""
    s = KrigingBelieverEI(n_refine=0)
    batch = s.select(gp2, None, 2, np.random.default_rng(3))
    second = s.select(gp2, batch[:1], 1, np.random.default_rng(3))
    np.testing.assert_allclose(second[0], batch[1], atol=1e-12)


def test_kb_ei_beats_random_search_on_cosines():
    """20 sequential k=1 rounds from 10 random points, 5 fixed seeds."""
    regrets = {}
    for name in ("kb-ei", "random"):
        out = []
        for seed in range(5):
            gp = fitted_gp(COSINES, 10, 100 + seed)
            s, rng = make_selector(name), np.random.default_rng(seed)
            for _ in range(20):
                x = s.select(gp, None, 1, rng)
                gp.add(x[0], float(COSINES(x)[0]))
            out.append(COSINES.optimum_value - gp.y.max())
        regrets[name] = float(np.mean(out))
    assert regrets["kb-ei"] < 0.25 * regrets["random"]
    assert regrets["kb-ei"] < 0.05


# --------------------------------------------------------------------------------------------
# Thompson sampling


class FixedCandidates:
    """Mixin replacing the random candidate set by a fixed one (unit-cube coordinates)."""

    fixed_candidates: ClassVar[np.ndarray]

    def _candidates(self, ctx, rng, n_needed):
        return self.fixed_candidates.copy()


def tiny_problem() -> tuple[GaussianProcess, np.ndarray]:
    X = np.array([[0.2, 0.2], [0.8, 0.3], [0.5, 0.8]])
    y = np.array([0.0, 0.4, 0.2])
    gp = GaussianProcess(
        np.array([[0.0, 1.0], [0.0, 1.0]]),
        GaussianProcess.paper_hyperparameters(np.array([[0.0, 1.0], [0.0, 1.0]])).replace(lengthscale=0.3),
    ).fit(X, y)
    cands = np.array([[0.3, 0.3], [0.7, 0.35], [0.55, 0.7], [0.9, 0.9], [0.1, 0.9]])
    return gp, cands


def test_thompson_picks_follow_posterior_argmax_distribution():
    gp, cands = tiny_problem()

    class TinyTS(FixedCandidates, ThompsonSampling):
        fixed_candidates = cands

    draws = gp.sample_posterior(cands, 40_000, np.random.default_rng(123))
    expected = np.bincount(np.argmax(draws, axis=1), minlength=len(cands)) / draws.shape[0]
    assert expected.max() < 0.8 and np.sum(expected > 0.05) >= 3  # a non-degenerate target

    s, rng, n = TinyTS(), np.random.default_rng(7), 1500
    picks = np.array([s.select(gp, None, 1, rng)[0] for _ in range(n)])
    idx = np.argmin(((picks[:, None, :] - cands[None]) ** 2).sum(-1), axis=1)
    freq = np.bincount(idx, minlength=len(cands)) / n
    np.testing.assert_allclose(freq, expected, atol=0.05)


def test_thompson_conditions_on_pending_points():
    """A pending point next to an uncertain candidate takes away most of its argmax probability."""
    gp, cands = tiny_problem()

    class TinyTS(FixedCandidates, ThompsonSampling):
        fixed_candidates = cands

    def argmax_freq(model):
        draws = model.sample_posterior(cands, 20_000, np.random.default_rng(1))
        return np.bincount(np.argmax(draws, axis=1), minlength=len(cands)) / draws.shape[0]

    target = int(np.argmax(gp.predict(cands)[1]))  # the most uncertain candidate
    pending = cands[target : target + 1] - 0.01
    before, expected = argmax_freq(gp), argmax_freq(gp.condition_on_pending(pending))
    assert before[target] > 0.1 and expected[target] < 0.25 * before[target]

    s, rng, n = TinyTS(), np.random.default_rng(8), 800
    picks = np.array([s.select(gp, pending, 1, rng)[0] for _ in range(n)])
    idx = np.argmin(((picks[:, None, :] - cands[None]) ** 2).sum(-1), axis=1)
    freq = np.bincount(idx, minlength=len(cands)) / n
    np.testing.assert_allclose(freq, expected, atol=0.06)


def test_thompson_fantasize_option(gp2):
    X = ThompsonSampling(fantasize=True).select(gp2, gp2.X[:1] + 0.05, 4, np.random.default_rng(0))
    check_batch(gp2, X, gp2.X[:1] + 0.05, 4)


# --------------------------------------------------------------------------------------------
# simulation matching


def test_simulation_matching_k1_is_ei_argmax_over_candidates():
    gp, cands = tiny_problem()

    class TinySM(FixedCandidates, SimulationMatching):
        fixed_candidates = cands

    x = TinySM(n_refine=0).select(gp, None, 1, np.random.default_rng(0))
    mean, std = gp.predict(cands)
    best = cands[np.argmax(expected_improvement(mean, std, acq_mod.incumbent(gp)))]
    np.testing.assert_allclose(x[0], best)


def test_simulation_matching_free_medoids_avoid_pending(gp2):
    s = SimulationMatching()
    batch = s.select(gp2, None, 3, np.random.default_rng(0))
    ell = gp2.hyperparameters.lengthscales(2).min()
    for p in (1, 2):
        new = s.select(gp2, batch[:p], 3 - p, np.random.default_rng(0))
        assert min_unit_distance(gp2, new, batch[:p]) > 0.3 * ell


def test_simulation_matching_simulated_trajectories():
    """Each draw's trajectory has distinct points, and the first step is the same in every draw."""
    gp = fitted_gp(COSINES, 10, 3)
    s = SimulationMatching(n_samples=20, n_refine=0)
    captured = {}
    original = s.simulate

    def spy(ctx, U, steps, rng, incumbent):
        chosen = original(ctx, U, steps, rng, incumbent)
        captured["chosen"], captured["U"], captured["inc"] = chosen, U, incumbent
        return chosen

    s.simulate = spy
    s.select(gp, gp.X[:2] + 0.03, 3, np.random.default_rng(0))
    chosen, U = captured["chosen"], captured["U"]
    assert chosen.shape == (20, 5)
    assert all(len(set(row)) == 5 for row in chosen.tolist())
    assert len(set(chosen[:, 0].tolist())) == 1
    mean, std = gp.predict(U)
    assert chosen[0, 0] == np.argmax(expected_improvement(mean, std, captured["inc"]))
    assert len(set(map(tuple, chosen.tolist()))) > 1  # later steps depend on the draw


@pytest.mark.parametrize("policy", ["ei", "pi"])
def test_simulated_posterior_equals_gp_conditioned_on_simulated_outcomes(policy):
    """The vectorised simulation is exact Gaussian conditioning and follows the base policy."""
    gp = fitted_gp(COSINES, 10, 4)
    rng = np.random.default_rng(0)
    X = rng.random((60, 2))
    mean0, cov0 = gp.predict_cov(X)
    F = gp.sample_posterior(X, 3, rng)
    scale = gp.standardization[1]
    inc = acq_mod.incumbent(gp)
    chosen, mu, var = sm_mod.simulate_policy(
        mean0,
        cov0,
        F,
        inc,
        4,
        noise=gp.hyperparameters.noise_variance * scale**2,
        scale=scale,
        policy=policy,
        margin=0.01 * scale,
    )
    for s in range(3):
        model = gp.condition_on_pending(np.zeros((0, 2)))
        for j in chosen[s]:
            mean_t, std_t = model.predict(X)
            incumbent = max([inc, *F[s, chosen[s][: list(chosen[s]).index(j)]]])
            if policy == "ei":
                acq = expected_improvement(mean_t, std_t, incumbent)
            else:
                acq = acq_mod.probability_of_improvement(mean_t, std_t, incumbent + 0.01 * scale)
            acq[chosen[s][: list(chosen[s]).index(j)]] = -np.inf
            assert acq[j] >= acq.max() - 1e-9
            model.add(X[j], F[s, j])
        mean_f, std_f = model.predict(X)
        np.testing.assert_allclose(mu[s], mean_f, atol=1e-6 * scale)
        np.testing.assert_allclose(np.sqrt(var[s]), std_f, atol=1e-4 * scale)


@pytest.mark.parametrize("policy", ["ei", "pi"])
def test_simulation_matching_policies(gp2, policy):
    X = SimulationMatching(policy=policy, n_samples=10).select(
        gp2, gp2.X[:1] + 0.05, 3, np.random.default_rng(0)
    )
    check_batch(gp2, X, gp2.X[:1] + 0.05, 3)


# --------------------------------------------------------------------------------------------
# k-medoids


def clusters(rng, centres, n_ring: int = 8, radius: float = 0.1) -> np.ndarray:
    ang = np.linspace(0.0, 2.0 * np.pi, n_ring, endpoint=False)
    ring = radius * np.c_[np.cos(ang), np.sin(ang)]
    pts = [np.vstack([c, c + ring * rng.uniform(0.8, 1.2, (n_ring, 1))]) for c in centres]
    return np.vstack(pts)


CENTRES = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [3.0, 3.0]])


def test_k_medoids_recovers_cluster_centres():
    P = clusters(np.random.default_rng(0), CENTRES)
    res = k_medoids(P, 4)
    np.testing.assert_allclose(np.sort(P[res.indices], axis=0), np.sort(CENTRES, axis=0))
    assert res.labels.shape == (len(P),)
    assert len(set(res.labels.tolist())) == 4


def test_k_medoids_fixed_medoid_covers_its_cluster():
    P = clusters(np.random.default_rng(1), CENTRES)
    res = k_medoids(P, 3, fixed=CENTRES[:1])
    got = {tuple(np.round(x, 9)) for x in P[res.indices]}
    assert got == {tuple(c) for c in CENTRES[1:]}
    assert np.all(res.labels[:9] == 0)  # the first cluster's points belong to the fixed medoid


def test_k_medoids_weights_matter():
    P = np.array([[0.0], [1.0], [10.0]])
    assert P[k_medoids(P, 1).indices[0], 0] == 1.0
    assert P[k_medoids(P, 1, weights=[1.0, 1.0, 5.0]).indices[0], 0] == 10.0


def test_k_medoids_allowed_mask():
    P = clusters(np.random.default_rng(2), CENTRES)
    allowed = np.ones(len(P), dtype=bool)
    allowed[0] = False  # the first centre may not be a medoid
    res = k_medoids(P, 4, allowed=allowed)
    assert 0 not in res.indices
    assert np.all(allowed[res.indices])


def test_k_medoids_swaps_repair_the_greedy_start():
    P = np.r_[np.full(10, -1.0), np.full(10, 1.0), [0.0]][:, None] + np.r_[np.zeros(20), [0.0]][:, None]
    P[:20, 0] += np.r_[np.linspace(-1e-3, 1e-3, 10), np.linspace(-1e-3, 1e-3, 10)]
    greedy = k_medoids(P, 2, max_swaps=0)
    assert 0.0 in P[greedy.indices, 0]  # the greedy build starts from the middle point
    full = k_medoids(P, 2)
    assert full.n_swaps >= 1
    assert full.cost < 0.5 * greedy.cost
    assert sorted(np.round(P[full.indices, 0])) == [-1.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_k_medoids_is_swap_optimal_and_cost_is_correct(seed):
    rng = np.random.default_rng(seed)
    P, w = rng.random((14, 2)), rng.uniform(0.5, 2.0, 14)
    fixed = rng.random((1, 2)) if seed % 2 else None
    res = k_medoids(P, 3, weights=w, fixed=fixed)

    def cost(idx):
        med = P[list(idx)] if fixed is None else np.vstack([P[list(idx)], fixed])
        return float(w @ np.sqrt(((P[:, None] - med[None]) ** 2).sum(-1)).min(axis=1))

    assert res.cost == pytest.approx(cost(res.indices))
    for j, c in itertools.product(range(3), range(14)):
        if c in res.indices:
            continue
        trial = res.indices.copy()
        trial[j] = c
        assert cost(trial) >= res.cost - 1e-12
    best = min(cost(c) for c in itertools.combinations(range(14), 3))
    assert res.cost <= 1.2 * best


# --------------------------------------------------------------------------------------------
# registry and argument checking


def test_registry_and_aliases():
    assert set(SELECTORS) == set(NAMES)
    for cls in SELECTORS.values():
        assert SELECTORS[cls.name] is cls
    assert isinstance(make_selector("SM"), SimulationMatching)
    assert isinstance(make_selector("Simulation_Matching"), SimulationMatching)
    assert isinstance(make_selector("ei"), KrigingBelieverEI)
    assert isinstance(make_selector("KB-EI", liar="min"), KrigingBelieverEI)
    assert make_selector("kb-ei", liar="min").liar == "min"
    assert isinstance(make_selector("ts"), ThompsonSampling)
    assert isinstance(make_selector(" Thompson "), ThompsonSampling)
    assert isinstance(make_selector("random"), RandomSelector)
    assert isinstance(make_selector(RandomSelector), RandomSelector)
    inst = SimulationMatching(n_samples=10)
    assert make_selector(inst) is inst
    assert "n_samples=10" in repr(inst)


def test_make_selector_errors():
    with pytest.raises(ValueError, match=r"known selectors: .*kb-ei.*simulation-matching"):
        make_selector("bogus")
    with pytest.raises(ValueError, match="options"):
        make_selector(RandomSelector(), min_distance=0.1)
    with pytest.raises(TypeError, match="spec"):
        make_selector(3)
    with pytest.raises(TypeError):
        make_selector("sm", no_such_option=1)


def test_selector_is_abstract():
    with pytest.raises(TypeError):
        Selector()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"k": 0}, ValueError, "k must be an integer >= 1"),
        ({"k": 1.5}, TypeError, "k must be an integer"),
        ({"k": True}, TypeError, "k must be an integer"),
        ({"X_pending": np.zeros((2, 3))}, ValueError, "X_pending must have shape"),
        ({"X_pending": np.zeros(2)}, ValueError, "X_pending must have shape"),
        ({"X_pending": [[0.1, np.nan]]}, ValueError, "X_pending must contain only finite"),
        ({"X_pending": [["a", "b"]]}, TypeError, "X_pending"),
        ({"rng": 0}, TypeError, "rng must be a numpy.random.Generator"),
        ({"gp": "gp"}, TypeError, "gp must be a GaussianProcess"),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_select_argument_errors(gp2, name, kwargs, exc, match):
    args = {"gp": gp2, "X_pending": None, "k": 2, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(exc, match=match):
        make_selector(name).select(**args)


@pytest.mark.parametrize(
    ("name", "options", "exc", "match"),
    [
        ("kb-ei", {"liar": "median"}, ValueError, "liar"),
        ("kb-ei", {"n_refine": -1}, ValueError, "n_refine"),
        ("kb-ei", {"n_candidates": 1.5}, TypeError, "n_candidates"),
        ("kb-ei", {"n_candidates": 0}, ValueError, "n_candidates"),
        ("thompson", {"fantasize": "yes"}, TypeError, "fantasize"),
        ("thompson", {"local_scale": 0.0}, ValueError, "local_scale"),
        ("sm", {"n_samples": 0}, ValueError, "n_samples"),
        ("sm", {"policy": "ucb"}, ValueError, "policy"),
        ("sm", {"max_swaps": -2}, ValueError, "max_swaps"),
        ("random", {"min_distance": 0.0}, ValueError, "min_distance"),
        ("random", {"min_distance": 0.7}, ValueError, "min_distance"),
    ],
)
def test_constructor_errors(name, options, exc, match):
    with pytest.raises(exc, match=match):
        make_selector(name, **options)


def test_k_medoids_errors():
    P = np.random.default_rng(0).random((5, 2))
    with pytest.raises(ValueError, match="exceeds"):
        k_medoids(P, 6)
    with pytest.raises(ValueError, match="exceeds"):
        k_medoids(P, 2, allowed=np.array([True, False, False, False, False]))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        k_medoids(P, 0)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        k_medoids(P, 2, weights=[1, 1, -1, 1, 1])
    with pytest.raises(ValueError, match="weights must have shape"):
        k_medoids(P, 2, weights=[1, 1])
    with pytest.raises(ValueError, match="fixed must have shape"):
        k_medoids(P, 2, fixed=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="points must have shape"):
        k_medoids(np.zeros(3), 1)
    with pytest.raises(ValueError, match="allowed"):
        k_medoids(P, 2, allowed=[1, 1, 1, 1, 1])


@pytest.mark.parametrize("name", NAMES)
def test_impossible_min_distance_raises(gp2, name):
    with pytest.raises(ValueError, match="min_distance"):
        make_selector(name, min_distance=0.45).select(gp2, None, 8, np.random.default_rng(0))
