"""Tests of the Gaussian-process model ``labsched.envs.bo.gp``.

scikit-learn serves as the reference implementation at fixed hyperparameters.  The mapping is:
our lengthscale is in unit-cube coordinates, so sklearn's RBF gets ``ell * (high - low)``; our
variances are in standardised units, which is what sklearn's ``normalize_y=True`` uses (constant
mean, population std); with a zero mean, or without standardisation, sklearn runs with
``normalize_y=False`` on ``y - offset`` and both variances multiplied by ``scale ** 2``.
``noise_variance`` is sklearn's ``alpha`` (latent predictions) or a ``WhiteKernel`` with
``alpha=0`` (noisy predictions, ``include_noise=True``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from labsched.envs.bo import gp as gpmod
from labsched.envs.bo import linalg as bo_linalg
from labsched.envs.bo import posterior as posterior_mod
from labsched.envs.bo.gp import GaussianProcess, GPHyperparameters, HyperparameterFit

BOUNDS = np.array([[-1.0, 3.0], [10.0, 12.0]])


def smooth(X: np.ndarray) -> np.ndarray:
    """A smooth test function on ``BOUNDS`` with an offset and a scale far from (0, 1)."""
    u = (X - BOUNDS[:, 0]) / (BOUNDS[:, 1] - BOUNDS[:, 0])
    return 20.0 + 5.0 * np.sin(3.0 * u[:, 0]) * np.cos(2.0 * u[:, 1]) + 3.0 * u[:, 1] ** 2


def design(rng: np.random.Generator, n: int, bounds: np.ndarray = BOUNDS) -> np.ndarray:
    return rng.uniform(bounds[:, 0], bounds[:, 1], size=(n, bounds.shape[0]))


def sklearn_model(hp: GPHyperparameters, bounds: np.ndarray, *, y_scale: float = 1.0, white: bool = False):
    """sklearn GPR equal to our GP with ``hp`` (``y_scale`` rescales variances for unstandardised y)."""
    sk_gp = pytest.importorskip("sklearn.gaussian_process")
    sk_kernels = pytest.importorskip("sklearn.gaussian_process.kernels")
    span = bounds[:, 1] - bounds[:, 0]
    ell = np.asarray(hp.lengthscales(bounds.shape[0])) * span
    s2 = hp.signal_variance * y_scale**2
    noise = hp.noise_variance * y_scale**2
    kernel = sk_kernels.ConstantKernel(s2, "fixed") * sk_kernels.RBF(ell, "fixed")
    if white:
        kernel = kernel + sk_kernels.WhiteKernel(noise, "fixed")
        alpha = 0.0
    else:
        alpha = noise
    return sk_gp.GaussianProcessRegressor(
        kernel, alpha=alpha, optimizer=None, normalize_y=hp.standardize and hp.mean == "constant"
    )


# --------------------------------------------------------------------------------------------
# agreement with scikit-learn


@pytest.mark.parametrize("lengthscale", [0.3, (0.25, 0.4)])
@pytest.mark.parametrize("white", [False, True])
def test_matches_sklearn_constant_mean_standardised(lengthscale, white):
    rng = np.random.default_rng(1)
    X, Xs = design(rng, 25), design(rng, 40)
    y = smooth(X)
    hp = GPHyperparameters(lengthscale=lengthscale, signal_variance=1.7, noise_variance=1e-3)
    gp = GaussianProcess(BOUNDS, hp).fit(X, y)
    ref = sklearn_model(hp, BOUNDS, white=white).fit(X, y)

    mean, std = gp.predict(Xs, include_noise=white)
    ref_mean, ref_std = ref.predict(Xs, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=0, atol=1e-6)
    np.testing.assert_allclose(gp.predict(Xs, return_std=False), ref_mean, rtol=0, atol=1e-6)

    mean_c, cov = gp.predict_cov(Xs, include_noise=white)
    _, ref_cov = ref.predict(Xs, return_cov=True)
    np.testing.assert_allclose(mean_c, ref_mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cov, ref_cov, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.diagonal(cov), std**2, rtol=1e-9, atol=1e-12)

    # sklearn's marginal likelihood is also that of the standardised outputs
    assert gp.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood_value_, rel=1e-9)
    assert gp.standardization == pytest.approx((np.mean(y), np.std(y)), rel=1e-14)


def test_matches_sklearn_zero_mean_standardised():
    # zero mean: y is only divided by rms(y); equivalently variances scale by rms(y)^2
    rng = np.random.default_rng(2)
    X, Xs = design(rng, 20), design(rng, 30)
    y = smooth(X) - 18.0
    hp = GPHyperparameters(lengthscale=0.35, signal_variance=0.8, noise_variance=1e-4, mean="zero")
    gp = GaussianProcess(BOUNDS, hp).fit(X, y)
    rms = math.sqrt(float(np.mean(y**2)))
    assert gp.standardization == pytest.approx((0.0, rms), rel=1e-14)
    ref = sklearn_model(hp, BOUNDS, y_scale=rms).fit(X, y)
    mean, std = gp.predict(Xs)
    ref_mean, ref_std = ref.predict(Xs, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=0, atol=1e-6)
    _, cov = gp.predict_cov(Xs)
    np.testing.assert_allclose(cov, ref.predict(Xs, return_cov=True)[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mean", ["constant", "zero"])
def test_matches_sklearn_unstandardised(mean):
    rng = np.random.default_rng(3)
    X, Xs = design(rng, 20), design(rng, 30)
    y = smooth(X) - 20.0
    hp = GPHyperparameters(lengthscale=(0.3, 0.5), signal_variance=4.0, noise_variance=1e-3, mean=mean)
    hp = hp.replace(standardize=False)
    gp = GaussianProcess(BOUNDS, hp).fit(X, y)
    offset = float(np.mean(y)) if mean == "constant" else 0.0
    assert gp.standardization == (pytest.approx(offset, rel=1e-14), 1.0)
    ref = sklearn_model(hp, BOUNDS).fit(X, y - offset)
    m, s = gp.predict(Xs)
    ref_m, ref_s = ref.predict(Xs, return_std=True)
    np.testing.assert_allclose(m, ref_m + offset, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s, ref_s, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# incremental updates


def assert_same_state(a: GaussianProcess, b: GaussianProcess, Xs: np.ndarray, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(a.cholesky_factor, b.cholesky_factor, rtol=0, atol=tol)
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=0, atol=tol * max(1.0, np.max(np.abs(b.alpha))))
    np.testing.assert_allclose(a.standardization, b.standardization, rtol=1e-12)
    ma, sa = a.predict(Xs)
    mb, sb = b.predict(Xs)
    np.testing.assert_allclose(ma, mb, rtol=0, atol=tol)
    np.testing.assert_allclose(sa, sb, rtol=0, atol=tol)


@pytest.mark.parametrize("mean", ["constant", "zero"])
def test_sequential_add_equals_refit(mean):
    rng = np.random.default_rng(4)
    X, Xs = design(rng, 35), design(rng, 50)
    y = smooth(X)
    hp = GPHyperparameters(lengthscale=0.2, noise_variance=1e-5, mean=mean)
    gp = GaussianProcess(BOUNDS, hp).fit(X[:5], y[:5])
    for i in range(5, 35):  # 30 sequential adds, crossing the initial buffer capacity
        gp.add(X[i], y[i])
    assert gp.n_observations == 35
    ref = GaussianProcess(BOUNDS, hp).fit(X, y)
    np.testing.assert_array_equal(gp.X, X)
    np.testing.assert_array_equal(gp.y, y)
    assert np.all(gp.jitter == 0.0) and np.all(ref.jitter == 0.0)
    assert_same_state(gp, ref, Xs)


def test_add_from_empty_and_add_many_equal_refit():
    rng = np.random.default_rng(5)
    X, Xs = design(rng, 40), design(rng, 30)
    y = smooth(X)
    hp = GPHyperparameters(lengthscale=(0.2, 0.3), noise_variance=1e-6)
    ref = GaussianProcess(BOUNDS, hp).fit(X, y)

    one = GaussianProcess(BOUNDS, hp)
    for i in range(40):
        one.add(X[i : i + 1], np.float64(y[i]))
    assert_same_state(one, ref, Xs)

    block = GaussianProcess(BOUNDS, hp).add_many(X[:7], y[:7]).add_many(X[7:30], y[7:30])
    block.add_many(X[30:], y[30:]).add_many(np.zeros((0, 2)), np.zeros(0))
    assert_same_state(block, ref, Xs)


def test_prior_without_data():
    hp = GPHyperparameters(lengthscale=0.3, signal_variance=2.0)
    gp = GaussianProcess(BOUNDS, hp)
    m, s = gp.predict(design(np.random.default_rng(0), 4))
    np.testing.assert_array_equal(m, 0.0)
    np.testing.assert_allclose(s, math.sqrt(2.0))


def test_copy_is_independent():
    rng = np.random.default_rng(6)
    X = design(rng, 12)
    gp = GaussianProcess.paper_default(BOUNDS).fit(X, smooth(X))
    before = gp.predict(X[:3])
    twin = gp.copy()
    x_new = np.array([[0.5, 11.0]])
    twin.add(x_new[0], 3.0)
    assert gp.n_observations == 12 and twin.n_observations == 13
    np.testing.assert_array_equal(gp.predict(X[:3])[0], before[0])
    np.testing.assert_array_equal(gp.X, X)
    assert twin.predict(x_new, return_std=False)[0] == pytest.approx(3.0, abs=1e-3)
    assert abs(gp.predict(x_new, return_std=False)[0] - 3.0) > 1.0


def test_set_hyperparameters_refits_and_failures_leave_the_model_alone(monkeypatch):
    rng = np.random.default_rng(18)
    X, Xs = design(rng, 15), design(rng, 20)
    y = smooth(X)
    gp = GaussianProcess.paper_default(BOUNDS).fit(X, y)
    hp = GPHyperparameters(lengthscale=(0.3, 0.4), signal_variance=2.0, noise_variance=1e-4)
    gp.set_hyperparameters(hp)
    assert_same_state(gp, GaussianProcess(BOUNDS, hp).fit(X, y), Xs)

    before = (gp.cholesky_factor, gp.alpha, gp.hyperparameters, gp.predict(Xs))

    def broken(*args):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(gpmod, "cholesky_with_jitter", broken)
    with pytest.raises(np.linalg.LinAlgError):
        gp.set_hyperparameters(hp.replace(lengthscale=0.2))
    with pytest.raises(np.linalg.LinAlgError):
        gp.fit(X[:5], y[:5])
    assert gp.n_observations == 15 and gp.hyperparameters == before[2]
    np.testing.assert_array_equal(gp.cholesky_factor, before[0])
    np.testing.assert_array_equal(gp.alpha, before[1])
    np.testing.assert_array_equal(gp.predict(Xs)[1], before[3][1])


# --------------------------------------------------------------------------------------------
# posterior variance and jitter


def test_variance_non_negative_and_about_noise_at_observations():
    rng = np.random.default_rng(7)
    bounds = np.array([[0.0, 1.0], [0.0, 1.0]])
    X = np.vstack([rng.uniform(0.0, 0.5, size=(30, 2)), [[0.95, 0.95]]])  # the last one is isolated
    y = np.sin(4 * X[:, 0]) + X[:, 1]
    noise, s2 = 1e-4, 1.5
    gp = GaussianProcess(bounds, GPHyperparameters(lengthscale=0.1, signal_variance=s2, noise_variance=noise))
    gp.fit(X, y)
    scale2 = gp.standardization[1] ** 2

    _, std = gp.predict(X)
    var = std**2
    assert np.all(var >= 0.0)
    # conditioning on more points only shrinks the variance below the one-point value
    one_point = s2 * noise / (s2 + noise) * scale2
    assert np.all(var <= one_point * (1 + 1e-9))
    assert var[-1] == pytest.approx(one_point, rel=1e-3)
    _, std_noisy = gp.predict(X, include_noise=True)
    np.testing.assert_allclose(std_noisy**2, var + noise * scale2, rtol=1e-12)

    # dense candidates, including exact and near copies of observations
    cand = np.vstack([rng.random((500, 2)), X, X + 1e-9])
    _, std_c = gp.predict(cand)
    assert np.all(np.isfinite(std_c)) and np.all(std_c >= 0.0)
    _, cov = gp.predict_cov(cand)
    assert np.all(np.diagonal(cov) >= 0.0)
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=0)


def test_jitter_only_when_needed():
    bounds = np.array([[0.0, 1.0]])
    hp0 = GPHyperparameters(lengthscale=0.2, noise_variance=0.0)
    X = np.array([[0.1], [0.4], [0.7]])
    gp = GaussianProcess(bounds, hp0).fit(X, np.array([0.0, 1.0, 0.5]))
    np.testing.assert_array_equal(gp.jitter, 0.0)

    # a repeated point without noise: fit adds a uniform jitter, add a per-point one
    Xd = np.array([[0.1], [0.4], [0.4]])
    fitted = GaussianProcess(bounds, hp0).fit(Xd, np.array([0.0, 1.0, 1.0]))
    assert np.all(fitted.jitter > 0.0) and np.all(fitted.jitter <= 1e-4)
    grown = GaussianProcess(bounds, hp0).fit(X[:2], np.array([0.0, 1.0])).add(np.array([0.4]), 1.0)
    assert grown.jitter[:2].tolist() == [0.0, 0.0] and 0.0 < grown.jitter[2] <= 1e-9
    assert np.min(np.diagonal(grown.cholesky_factor)) ** 2 >= 1e-10 * (1 - 1e-12)
    m, s = grown.predict(np.array([[0.4], [0.25]]))
    assert np.all(np.isfinite(m)) and np.all(np.isfinite(s))
    assert m[0] == pytest.approx(1.0, abs=1e-4)
    # add_many hits the same floor and falls back to per-point updates
    many = GaussianProcess(bounds, hp0).fit(X[:2], np.array([0.0, 1.0]))
    many.add_many(np.array([[0.55], [0.55]]), np.ones(2))
    assert many.jitter.tolist()[:3] == [0.0, 0.0, 0.0] and many.jitter[3] > 0.0


# --------------------------------------------------------------------------------------------
# joint sampling


def test_joint_samples_have_posterior_mean_and_covariance():
    rng = np.random.default_rng(8)
    X = design(rng, 10)
    gp = GaussianProcess(BOUNDS, GPHyperparameters(lengthscale=0.4, noise_variance=1e-3)).fit(X, smooth(X))
    Xs = np.vstack([design(rng, 4), X[:1]])  # one candidate sits on an observation
    mean, cov = gp.predict_cov(Xs)
    n = 20_000
    draws = gp.sample_posterior(Xs, n, np.random.default_rng(123))
    assert draws.shape == (n, 5)

    se_mean = np.sqrt(np.diagonal(cov) / n)
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 4 * se_mean)
    emp = np.cov(draws, rowvar=False)
    sd = np.sqrt(np.diagonal(cov))
    se_cov = np.sqrt((np.outer(sd, sd) ** 2 + cov**2) / n)  # standard error of a sample covariance
    assert np.all(np.abs(emp - cov) <= 4 * se_cov)
    assert np.all(np.abs(emp - cov)[~np.eye(5, dtype=bool)] > 0)  # the draws are genuinely random

    again = gp.sample_posterior(Xs, n, np.random.default_rng(123))
    np.testing.assert_array_equal(draws, again)


def test_samples_on_a_dense_candidate_set():
    # 400 candidates 1/20 of a lengthscale apart: the covariance is numerically singular
    rng = np.random.default_rng(9)
    bounds = np.array([[0.0, 1.0], [0.0, 1.0]])
    X = rng.random((15, 2))
    gp = GaussianProcess.paper_default(bounds).fit(X, np.sin(5 * X[:, 0]) + X[:, 1])
    g = np.linspace(0.0, 1.0, 20)
    Xs = np.column_stack([np.repeat(g, 20), np.tile(g, 20)])
    draws = gp.sample_posterior(Xs, 2000, rng)
    assert draws.shape == (2000, 400) and np.all(np.isfinite(draws))
    mean, std = gp.predict(Xs)
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 5 * std / math.sqrt(2000) + 1e-6)


def test_psd_sqrt_falls_back_to_eigendecomposition():
    rng = np.random.default_rng(10)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    w = np.array([3.0, 2.0, 1.0, 0.5, 0.0, -1e-3])  # slightly indefinite, as rounding can make it
    cov = (Q * w) @ Q.T
    A, how = bo_linalg.psd_sqrt(cov)
    assert how == "eigh"
    np.testing.assert_allclose(A @ A.T, (Q * np.clip(w, 0, None)) @ Q.T, atol=1e-12)
    A2, how2 = bo_linalg.psd_sqrt((Q * (np.abs(w) + 0.1)) @ Q.T)
    assert how2 == "cholesky(jitter=0)"
    np.testing.assert_allclose(np.triu(A2, 1), 0.0)


# --------------------------------------------------------------------------------------------
# fantasies


def test_condition_on_pending_is_a_kriging_believer():
    rng = np.random.default_rng(11)
    X, Xs, Xp = design(rng, 15), design(rng, 60), design(rng, 4)
    gp = GaussianProcess.paper_default(BOUNDS).fit(X, smooth(X))
    m0, s0 = gp.predict(Xs)
    fantasy = gp.condition_on_pending(Xp)
    assert fantasy.n_observations == 19 and gp.n_observations == 15
    np.testing.assert_allclose(gp.predict(Xs)[0], m0, rtol=0, atol=0)  # parent untouched
    m1, s1 = fantasy.predict(Xs)
    np.testing.assert_allclose(m1, m0, rtol=0, atol=1e-8 * np.max(np.abs(m0)))
    assert np.all(s1 <= s0 + 1e-12) and np.any(s1 < 0.9 * s0)
    _, sp = fantasy.predict(Xp)
    assert np.all(sp <= 2e-3 * gp.standardization[1])

    # the same as adding the believer values one at a time with the parent's standardisation
    liar = gp.condition_on_pending(Xp, y_pending=25.0)
    assert liar.standardization == gp.standardization
    np.testing.assert_allclose(liar.predict(Xp, return_std=False), 25.0, atol=1e-3)
    assert not np.allclose(liar.predict(Xs)[0], m0)


# --------------------------------------------------------------------------------------------
# marginal likelihood and hyperparameter fitting


@pytest.mark.parametrize("lengthscale", [0.25, (0.2, 0.35)])
def test_lml_gradient_matches_finite_differences(lengthscale):
    rng = np.random.default_rng(12)
    X = design(rng, 20)
    hp = GPHyperparameters(lengthscale=lengthscale, signal_variance=1.3, noise_variance=1e-2)
    gp = GaussianProcess(BOUNDS, hp).fit(X, smooth(X))
    theta = gp.theta
    lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
    assert lml == pytest.approx(gp.log_marginal_likelihood(), rel=1e-12)
    h = 1e-5
    fd = np.array(
        [
            (gp.log_marginal_likelihood(theta + h * e) - gp.log_marginal_likelihood(theta - h * e)) / (2 * h)
            for e in np.eye(theta.size)
        ]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(grad)) > 1e-2  # not trivially zero


@pytest.mark.parametrize("ard", [False, True])
def test_fit_hyperparameters_increases_marginal_likelihood(ard):
    rng = np.random.default_rng(13)
    X, Xs = design(rng, 30), design(rng, 200)
    y = smooth(X)
    gp = GaussianProcess.paper_default(BOUNDS).fit(X, y)
    err0 = np.sqrt(np.mean((gp.predict(Xs, return_std=False) - smooth(Xs)) ** 2))
    lml0 = gp.log_marginal_likelihood()
    fit = gp.fit_hyperparameters(np.random.default_rng(0), n_restarts=2, ard=ard)
    assert isinstance(fit, HyperparameterFit)
    assert fit.initial_log_marginal_likelihood == pytest.approx(lml0, rel=1e-12)
    assert fit.log_marginal_likelihood > lml0 + 1.0
    assert gp.hyperparameters == fit.hyperparameters and gp.hyperparameters.ard == ard
    # (loose: an optimum near the noise floor makes K ill-conditioned)
    assert gp.log_marginal_likelihood() == pytest.approx(fit.log_marginal_likelihood, rel=1e-6)
    ell = np.atleast_1d(gp.hyperparameters.lengthscale)
    assert np.all((ell >= 1e-2 * (1 - 1e-12)) & (ell <= 10.0 * (1 + 1e-12)))
    assert 1e-8 * (1 - 1e-12) <= gp.hyperparameters.noise_variance <= 1.0
    err1 = np.sqrt(np.mean((gp.predict(Xs, return_std=False) - smooth(Xs)) ** 2))
    assert err1 < err0
    # the model was refitted with the new hyperparameters
    fresh = GaussianProcess(BOUNDS, fit.hyperparameters).fit(X, y)
    np.testing.assert_allclose(gp.predict(Xs)[0], fresh.predict(Xs)[0], atol=1e-9)


def test_fit_hyperparameters_is_seeded():
    rng = np.random.default_rng(14)
    X = design(rng, 15)
    a = GaussianProcess.paper_default(BOUNDS).fit(X, smooth(X))
    b = a.copy()
    fa = a.fit_hyperparameters(np.random.default_rng(5), n_restarts=2)
    fb = b.fit_hyperparameters(np.random.default_rng(5), n_restarts=2)
    assert fa.hyperparameters == fb.hyperparameters


def test_leave_one_out_matches_refits():
    rng = np.random.default_rng(15)
    X = design(rng, 12)
    y = smooth(X) - 20.0
    hp = GPHyperparameters(lengthscale=0.3, noise_variance=1e-2, mean="zero", standardize=False)
    mean, var = GaussianProcess(BOUNDS, hp).fit(X, y).leave_one_out()
    for i in range(12):
        keep = np.arange(12) != i
        m, s = GaussianProcess(BOUNDS, hp).fit(X[keep], y[keep]).predict(X[i : i + 1], include_noise=True)
        assert mean[i] == pytest.approx(m[0], abs=1e-9)
        assert var[i] == pytest.approx(s[0] ** 2, rel=1e-8)


# --------------------------------------------------------------------------------------------
# the paper's fixed kernel width


@pytest.mark.parametrize(
    ("d", "ell"), [(2, 0.1), (3, math.sqrt(0.015)), (5, math.sqrt(0.025)), (6, 0.17320508)]
)
def test_paper_default_lengthscale(d, ell):
    unit = np.array([[0.0, 1.0]] * d)
    assert GaussianProcess.paper_lengthscale(unit) == pytest.approx(ell, rel=1e-7)
    wide = np.column_stack([-np.arange(1.0, d + 1), 10.0 * np.arange(1.0, d + 1)])
    assert GaussianProcess.paper_lengthscale(wide) == pytest.approx(ell, rel=1e-7)  # unit invariant
    assert GaussianProcess.paper_lengthscale(unit, literal_units=True) == pytest.approx((ell,) * d)
    gp = GaussianProcess.paper_default(unit)
    assert gp.hyperparameters == GPHyperparameters(lengthscale=math.sqrt(0.005 * d), noise_variance=1e-6)
    assert GaussianProcess(unit).hyperparameters == gp.hyperparameters
    hp = gp.hyperparameters
    assert (hp.signal_variance, hp.mean, hp.standardize) == (1.0, "constant", True)


def test_paper_lengthscale_literal_units_on_a_wide_box():
    shekel_box = np.array([[0.0, 10.0]] * 4)  # w = 0.01 * 40 = 0.4, ell = sqrt(0.2) in original units
    ell = GaussianProcess.paper_lengthscale(shekel_box, literal_units=True)
    assert ell == pytest.approx((math.sqrt(0.2) / 10.0,) * 4, rel=1e-12)
    assert GaussianProcess.paper_lengthscale(shekel_box) == pytest.approx(0.1 * math.sqrt(2.0), rel=1e-12)


# --------------------------------------------------------------------------------------------
# BLAS threads


def test_thread_limit_is_applied_and_optional(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen: list[int] = []
    original = posterior_mod.rbf

    def spy(*args):
        infos = threadpoolctl.threadpool_info()
        seen.append(max(i["num_threads"] for i in infos if i["user_api"] == "blas"))
        return original(*args)

    rng = np.random.default_rng(16)
    X, Xs = design(rng, 20), design(rng, 100)
    limited = GaussianProcess.paper_default(BOUNDS).fit(X, smooth(X))
    free = GaussianProcess.paper_default(BOUNDS, limit_threads=False).fit(X, smooth(X))
    monkeypatch.setattr(posterior_mod, "rbf", spy)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        limited.predict(Xs)
        assert seen == [1]
        free.predict(Xs)
        assert seen[1] == 2
    np.testing.assert_array_equal(limited.predict(Xs)[0], free.predict(Xs)[0])


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"lengthscale": -0.1}, ValueError, "lengthscale"),
        ({"lengthscale": 0.0}, ValueError, "lengthscale"),
        ({"lengthscale": (0.1, float("nan"))}, ValueError, r"lengthscale\[1\]"),
        ({"lengthscale": ()}, ValueError, "lengthscale"),
        ({"lengthscale": True}, TypeError, "lengthscale"),
        ({"lengthscale": "0.1"}, TypeError, "lengthscale"),
        ({"lengthscale": 0.1, "signal_variance": -1.0}, ValueError, "signal_variance"),
        ({"lengthscale": 0.1, "signal_variance": 0.0}, ValueError, "signal_variance"),
        ({"lengthscale": 0.1, "noise_variance": -1e-6}, ValueError, "noise_variance"),
        ({"lengthscale": 0.1, "noise_variance": float("inf")}, ValueError, "noise_variance"),
        ({"lengthscale": 0.1, "noise_variance": "1"}, TypeError, "noise_variance"),
        ({"lengthscale": 0.1, "mean": "linear"}, ValueError, "mean"),
        ({"lengthscale": 0.1, "standardize": 1}, TypeError, "standardize"),
    ],
)
def test_hyperparameter_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GPHyperparameters(**kwargs)


@pytest.mark.parametrize(
    ("bounds", "exc", "match"),
    [
        ([[0.0, 1.0], [2.0, 2.0]], ValueError, r"bounds\[1\].*low < high"),
        ([[1.0, 0.0]], ValueError, r"bounds\[0\]"),
        ([0.0, 1.0], ValueError, "bounds"),
        ([[0.0, 1.0, 2.0]], ValueError, "bounds"),
        (np.zeros((0, 2)), ValueError, "bounds"),
        ([[0.0, float("nan")]], ValueError, "bounds"),
        ([["a", "b"]], TypeError, "bounds"),
    ],
)
def test_bounds_validation(bounds, exc, match):
    with pytest.raises(exc, match=match):
        GaussianProcess(bounds)


def test_data_validation():
    gp = GaussianProcess.paper_default(BOUNDS)
    X = design(np.random.default_rng(17), 5)
    y = smooth(X)
    bad_calls = [
        (lambda: gp.fit(X[:, :1], y), ValueError, r"X must have shape \(n, 2\)"),
        (lambda: gp.fit(X[0], y), ValueError, "X must have shape"),
        (lambda: gp.fit(X, y[:4]), ValueError, r"y must have shape \(5,\)"),
        (lambda: gp.fit(X, y[:, None]), ValueError, "y must have shape"),
        (lambda: gp.fit(np.where(X > 0, np.nan, X), y), ValueError, "X must contain only finite"),
        (lambda: gp.fit(X, np.full(5, np.inf)), ValueError, "y must contain only finite"),
        (lambda: gp.fit(X.astype(complex), y), TypeError, "X must be an array of real"),
        (lambda: gp.fit([[1.0, 2.0], [3.0]], y[:2]), ValueError, "X must be a rectangular"),
        (lambda: gp.add(X[:2], 1.0), ValueError, r"x must have shape \(2,\)"),
        (lambda: gp.add(X[0], float("nan")), ValueError, "y must be a finite"),
        (lambda: gp.add(X[0], "1"), TypeError, "y must be a real"),
        (lambda: gp.add_many(X, y[:3]), ValueError, "y must have shape"),
        (lambda: gp.predict(X[0]), ValueError, "Xs must have shape"),
        (lambda: gp.predict_cov(np.ones((3, 3))), ValueError, "Xs must have shape"),
        (lambda: gp.sample_posterior(X, 10, 0), TypeError, "rng must be a numpy.random.Generator"),
        (lambda: gp.sample_posterior(X, 0, np.random.default_rng()), ValueError, "n_samples"),
        (lambda: gp.sample_posterior(X, 2.0, np.random.default_rng()), TypeError, "n_samples"),
        (lambda: gp.condition_on_pending(X[:, :1]), ValueError, "X_pending must have shape"),
        (lambda: gp.condition_on_pending(X, y[:2]), ValueError, "y_pending must have shape"),
        (lambda: gp.log_marginal_likelihood(), ValueError, "at least one observation"),
        (lambda: GaussianProcess(BOUNDS, {"lengthscale": 0.1}), TypeError, "hyperparameters"),
        (
            lambda: GaussianProcess(BOUNDS, GPHyperparameters((0.1, 0.2, 0.3))),
            ValueError,
            "lengthscale has 3",
        ),
    ]
    for call, exc, match in bad_calls:
        with pytest.raises(exc, match=match):
            call()
    gp.fit(X, y)
    with pytest.raises(ValueError, match="theta must have length 3"):
        gp.log_marginal_likelihood(np.zeros(5))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        gp.fit_hyperparameters(None)
    with pytest.raises(ValueError, match="n_restarts"):
        gp.fit_hyperparameters(np.random.default_rng(), n_restarts=-1)
    with pytest.raises(ValueError, match="lengthscale_bounds"):
        gp.fit_hyperparameters(np.random.default_rng(), lengthscale_bounds=(1.0, 0.1))
    with pytest.raises(ValueError, match="noise_variance_bounds"):
        gp.fit_hyperparameters(np.random.default_rng(), noise_variance_bounds=(-1.0, 1.0))
    assert gp.n_observations == 5  # failed calls left the model alone
