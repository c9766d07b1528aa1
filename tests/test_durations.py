"""Tests of the duration models in ``labsched.envs.labs.durations`` against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from labsched.envs.labs.durations import (
    Deterministic,
    Discrete,
    DurationModel,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    TruncatedNormal,
    Uniform,
)

N_DRAWS = 20_000
KS_P_MIN = 1e-3


class _MixtureRef:
    """A scipy-style reference for a finite mixture of frozen scipy distributions."""

    def __init__(self, comps, weights):
        self.comps = comps
        self.weights = weights

    def cdf(self, t):
        return sum(w * c.cdf(t) for c, w in zip(self.comps, self.weights, strict=True))

    def sf(self, t):
        return sum(w * c.sf(t) for c, w in zip(self.comps, self.weights, strict=True))

    def logsf(self, t):
        return np.log(self.sf(t))

    def mean(self):
        return sum(w * c.mean() for c, w in zip(self.comps, self.weights, strict=True))

    def ppf(self, q):
        from scipy.optimize import brentq

        scalar = np.ndim(q) == 0
        q = np.atleast_1d(q)
        lo = min(c.ppf(1e-12) for c in self.comps)
        hi = max(c.ppf(1 - 1e-12) for c in self.comps)
        out = np.array([brentq(lambda t, qq=qq: self.cdf(t) - qq, lo, hi, xtol=1e-14) for qq in q])
        return float(out[0]) if scalar else out


def _truncnorm(mu, sigma, low=0.0, high=math.inf):
    return stats.truncnorm(a=(low - mu) / sigma, b=(high - mu) / sigma, loc=mu, scale=sigma)


def _cases():
    """(id, model, scipy reference) for every continuous model."""
    sq = math.sqrt(0.1)
    mix = Mixture()
    mix_ref = _MixtureRef([_truncnorm(0.6, 0.1), _truncnorm(2.0, 0.2)], [0.8, 0.2])
    return [
        ("truncnorm_default", TruncatedNormal(), _truncnorm(1.0, sq)),
        (
            "truncnorm_finite_high",
            TruncatedNormal(mu=1.0, sigma=0.3, low=0.2, high=1.5),
            _truncnorm(1.0, 0.3, 0.2, 1.5),
        ),
        ("lognormal", LogNormal(mu=0.1, sigma=0.4), stats.lognorm(s=0.4, scale=math.exp(0.1))),
        ("gamma_0.5", Gamma(shape=0.5, scale=2.0), stats.gamma(a=0.5, scale=2.0)),
        ("gamma_10", Gamma(shape=10.0, scale=0.1), stats.gamma(a=10.0, scale=0.1)),
        ("uniform", Uniform(low=0.5, high=1.5), stats.uniform(loc=0.5, scale=1.0)),
        ("exponential", Exponential(1.3), stats.expon(scale=1.3)),
        ("mixture", mix, mix_ref),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


def _grid(ref) -> np.ndarray:
    """Evaluation points covering the body and both tails, plus points outside the support."""
    q = np.concatenate([np.logspace(-9, -1, 17), np.linspace(0.02, 0.98, 49), 1 - np.logspace(-1, -9, 17)])
    t = np.asarray(ref.ppf(q), dtype=float)
    extra = np.array([-1.0, 0.0, 1e-6, 0.3, 1.0, 2.5, 7.0, 50.0])
    return np.unique(np.concatenate([t, extra]))


# ----------------------------------------------------------------------------------------------
# Distribution functions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_cdf_sf_match_scipy(name, model, ref):
    t = _grid(ref)
    np.testing.assert_allclose(model.cdf(t), ref.cdf(t), rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.sf(t), ref.sf(t), rtol=0, atol=1e-10)


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_cdf_plus_sf_is_one(name, model, ref):
    t = _grid(ref)
    np.testing.assert_allclose(model.cdf(t) + model.sf(t), 1.0, rtol=0, atol=1e-12)
    # Monotone and within [0, 1].
    c = model.cdf(t)
    assert np.all((c >= 0) & (c <= 1))
    assert np.all(np.diff(c) >= -1e-15)


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_isf_inverts_sf(name, model, ref):
    t = np.asarray(ref.ppf(np.linspace(0.01, 0.99, 99)), dtype=float)
    np.testing.assert_allclose(model.isf(model.sf(t)), t, rtol=1e-7, atol=1e-9)
    # quantile is the inverse of the cdf as well
    np.testing.assert_allclose(model.quantile(model.cdf(t)), t, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_mean_matches_scipy(name, model, ref):
    assert model.mean == pytest.approx(float(ref.mean()), rel=1e-9, abs=1e-12)


def test_truncnorm_deep_tail_sf_is_accurate():
    m = TruncatedNormal()
    ref = _truncnorm(1.0, math.sqrt(0.1))
    t = np.array([3.0, 4.0, 5.0])
    np.testing.assert_allclose(m.logsf(t), ref.logsf(t), rtol=1e-10)
    assert np.all(m.sf(t) > 0)


def test_support():
    assert TruncatedNormal().support == (0.0, math.inf)
    assert TruncatedNormal(low=0.2, high=1.5).support == (0.2, 1.5)
    assert Uniform(0.5, 1.5).support == (0.5, 1.5)
    assert Deterministic(2.0).support == (2.0, 2.0)
    assert Discrete().support == (0.5, 1.5)
    assert Mixture().support == (0.0, math.inf)
    assert Gamma().support == (0.0, math.inf)


def test_discrete_distribution_functions():
    d = Discrete(values=(1.5, 0.5, 1.0), probs=(0.25, 0.25, 0.5))  # unsorted input is sorted
    assert d.values == (0.5, 1.0, 1.5)
    assert d.probs == (0.25, 0.5, 0.25)
    np.testing.assert_allclose(d.cdf([0.4, 0.5, 0.9, 1.0, 1.49, 1.5, 3.0]), [0, 0.25, 0.25, 0.75, 0.75, 1, 1])
    np.testing.assert_allclose(d.isf([1.0, 0.75, 0.5, 0.25, 0.1]), [0.5, 0.5, 1.0, 1.0, 1.5])
    assert d.mean == pytest.approx(1.0)


def test_deterministic_distribution_functions():
    d = Deterministic(1.0)
    np.testing.assert_array_equal(d.cdf([0.5, 1.0, 1.5]), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(d.sf([0.5, 1.0, 1.5]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(d.isf([0.1, 0.9]), [1.0, 1.0])
    assert d.sample(np.random.default_rng(0)) == 1.0
    np.testing.assert_array_equal(d.sample(np.random.default_rng(0), (2, 3)), np.ones((2, 3)))


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_sample_ks(name, model, ref):
    x = model.sample(np.random.default_rng(12345), N_DRAWS)
    assert x.shape == (N_DRAWS,)
    assert np.all(np.isfinite(x))
    lo, hi = model.support
    assert np.all((x >= lo) & (x <= hi))
    p_own = stats.kstest(x, model.cdf).pvalue
    p_ref = stats.kstest(x, ref.cdf).pvalue
    assert p_own > KS_P_MIN, (name, p_own)
    assert p_ref > KS_P_MIN, (name, p_ref)


def test_ks_detects_wrong_distribution():
    """Sanity check of the KS-based tests: draws of one model are rejected for another."""
    x = TruncatedNormal().sample(np.random.default_rng(12345), N_DRAWS)
    assert stats.kstest(x, Gamma(10.0, 0.1).cdf).pvalue < KS_P_MIN


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_sample_shapes(name, model, ref):
    rng = np.random.default_rng(0)
    scalar = model.sample(rng)
    assert isinstance(scalar, float)
    assert model.support[0] <= scalar <= model.support[1]
    arr = model.sample(rng, (3, 4))
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (3, 4)
    assert model.sample(rng, 5).shape == (5,)


@pytest.mark.parametrize(
    "model",
    [*[c[1] for c in CASES], Deterministic(0.7), Discrete()],
    ids=[*IDS, "deterministic", "discrete"],
)
def test_same_seed_same_draws(model):
    a = model.sample(np.random.default_rng(2024), 100)
    b = model.sample(np.random.default_rng(2024), 100)
    np.testing.assert_array_equal(a, b)
    e = np.linspace(0.0, 1.2, 50)
    ra = model.sample_residual(np.random.default_rng(7), e)
    rb = model.sample_residual(np.random.default_rng(7), e)
    np.testing.assert_array_equal(ra, rb)
    if not isinstance(model, Deterministic):
        c = model.sample(np.random.default_rng(2025), 100)
        assert not np.array_equal(a, c)


# ----------------------------------------------------------------------------------------------
# Residual durations
# ----------------------------------------------------------------------------------------------


def _conditional_cdf(ref, e: float):
    """P(D - e <= x | D > e) computed from the reference's log survival function."""
    log_s_e = float(ref.logsf(e))

    def cdf(x):
        x = np.asarray(x, dtype=float)
        return -np.expm1(ref.logsf(e + x) - log_s_e)

    return cdf


def _elapsed_values(ref) -> list[float]:
    return [0.0, float(ref.ppf(0.3)), float(ref.ppf(0.9))]


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_residual_ks(name, model, ref):
    rng = np.random.default_rng(99)
    for e in _elapsed_values(ref):
        r = model.sample_residual(rng, np.full(N_DRAWS, e))
        assert r.shape == (N_DRAWS,)
        assert np.all(np.isfinite(r)) and np.all(r >= 0)
        p = stats.kstest(r, _conditional_cdf(ref, e)).pvalue
        assert p > KS_P_MIN, (name, e, p)


def test_residual_ks_detects_unconditioned_draws():
    """Sanity check: residuals that ignore the elapsed time would be rejected by the KS test."""
    model = Gamma(10.0, 0.1)
    ref = stats.gamma(a=10.0, scale=0.1)
    e = float(ref.ppf(0.5))
    wrong = model.sample(np.random.default_rng(1), N_DRAWS)
    assert stats.kstest(wrong, _conditional_cdf(ref, e)).pvalue < KS_P_MIN


def _residual_mean_quad(ref, e: float) -> float:
    log_s_e = float(ref.logsf(e))
    val, _ = integrate.quad(lambda x: math.exp(float(ref.logsf(e + x)) - log_s_e), 0.0, np.inf, limit=200)
    return val


def test_truncnorm_residual_deep_tail():
    model = TruncatedNormal()  # mean 1, sd ~0.316: e = 4.0 is ~9.5 sigma above the mean
    ref = _truncnorm(1.0, math.sqrt(0.1))
    e = 4.0
    r = model.sample_residual(np.random.default_rng(5), np.full(N_DRAWS, e))
    assert np.all(np.isfinite(r))
    assert np.all(r > 0)
    expected = _residual_mean_quad(ref, e)
    assert 0.0 < expected < 0.1
    assert r.mean() == pytest.approx(expected, rel=0.05)
    assert stats.kstest(r, _conditional_cdf(ref, e)).pvalue > KS_P_MIN


@pytest.mark.parametrize(
    ("model", "ref", "e"),
    [
        (Gamma(10.0, 0.1), stats.gamma(a=10.0, scale=0.1), 3.0),
        (LogNormal(0.0, 0.3), stats.lognorm(s=0.3), 4.0),
        (TruncatedNormal(low=0.2, high=1.5, sigma=0.3), _truncnorm(1.0, 0.3, 0.2, 1.5), 1.45),
    ],
    ids=["gamma_tail", "lognormal_tail", "truncnorm_near_high"],
)
def test_residual_tail_mean(model, ref, e):
    r = model.sample_residual(np.random.default_rng(8), np.full(N_DRAWS, e))
    assert np.all(np.isfinite(r)) and np.all(r > 0)
    assert r.mean() == pytest.approx(_residual_mean_quad(ref, e), rel=0.05)


@pytest.mark.parametrize(("name", "model", "ref"), CASES, ids=IDS)
def test_residual_vectorised_mixed_elapsed(name, model, ref):
    rng = np.random.default_rng(3)
    e_lo, e_hi = 0.0, float(ref.ppf(0.7))
    elapsed = np.tile([e_lo, e_hi], N_DRAWS // 2).reshape(-1, 2, 5)
    r = model.sample_residual(rng, elapsed)
    assert r.shape == elapsed.shape
    assert np.all(np.isfinite(r)) and np.all(r >= 0)
    flat_e, flat_r = elapsed.ravel(), r.ravel()
    for e in (e_lo, e_hi):
        sel = flat_r[flat_e == e]
        assert stats.kstest(sel, _conditional_cdf(ref, e)).pvalue > KS_P_MIN, (name, e)
    # a scalar-like 0-d input keeps its (empty) shape
    r0 = model.sample_residual(rng, np.float64(e_hi))
    assert np.shape(r0) == ()


def test_exponential_residual_is_memoryless():
    model = Exponential(0.8)
    r = model.sample_residual(np.random.default_rng(11), np.full(N_DRAWS, 5.0))
    assert stats.kstest(r, stats.expon(scale=0.8).cdf).pvalue > KS_P_MIN


def test_deterministic_residual_exact():
    d = Deterministic(1.0)
    rng = np.random.default_rng(0)
    assert float(d.sample_residual(rng, 0.3)) == 0.7
    np.testing.assert_array_equal(d.sample_residual(rng, [0.0, 0.25, 1.0, 2.0]), [1.0, 0.75, 0.0, 0.0])


def test_discrete_residual_support_and_frequencies():
    d = Discrete()  # values (0.5, 1, 1.5), probs (0.25, 0.5, 0.25)
    rng = np.random.default_rng(4)
    r = d.sample_residual(rng, np.full(N_DRAWS, 0.7))
    vals, counts = np.unique(np.round(r, 12), return_counts=True)
    np.testing.assert_allclose(vals, [0.3, 0.8])
    # P(D = 1 | D > 0.7) = 2/3
    frac = counts[0] / N_DRAWS
    assert abs(frac - 2 / 3) < 4 * math.sqrt(2 / 9 / N_DRAWS)

    r = d.sample_residual(rng, np.full(N_DRAWS, 0.5))  # D > 0.5 strictly
    assert set(np.round(r, 12)) == {0.5, 1.0}

    r = d.sample_residual(rng, np.full(N_DRAWS, 0.0))
    vals, counts = np.unique(r, return_counts=True)
    np.testing.assert_allclose(vals, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(counts / N_DRAWS, [0.25, 0.5, 0.25], atol=0.02)

    # no mass beyond the largest value: residual 0
    np.testing.assert_array_equal(d.sample_residual(rng, [1.5, 3.0]), [0.0, 0.0])
    # shape preserved for a 2-d input
    assert d.sample_residual(rng, np.zeros((2, 3))).shape == (2, 3)


def test_discrete_sample_frequencies():
    d = Discrete()
    x = d.sample(np.random.default_rng(6), N_DRAWS)
    vals, counts = np.unique(x, return_counts=True)
    np.testing.assert_allclose(vals, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(counts / N_DRAWS, [0.25, 0.5, 0.25], atol=0.02)


def test_uniform_residual_past_support():
    u = Uniform(0.5, 1.5)
    rng = np.random.default_rng(0)
    r = u.sample_residual(rng, np.full(1000, 1.0))
    assert np.all((r >= 0) & (r <= 0.5))
    np.testing.assert_array_equal(u.sample_residual(rng, [1.5, 2.0]), [0.0, 0.0])


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "exc", "name"),
    [
        (lambda: TruncatedNormal(sigma=0), ValueError, "sigma"),
        (lambda: TruncatedNormal(sigma=-1.0), ValueError, "sigma"),
        (lambda: TruncatedNormal(sigma=math.inf), ValueError, "sigma"),
        (lambda: TruncatedNormal(sigma="a"), TypeError, "sigma"),
        (lambda: TruncatedNormal(mu=math.nan), ValueError, "mu"),
        (lambda: TruncatedNormal(low=-1.0), ValueError, "low"),
        (lambda: TruncatedNormal(low=2.0, high=1.0), ValueError, "high"),
        (lambda: LogNormal(sigma=0.0), ValueError, "sigma"),
        (lambda: LogNormal(mu=None), TypeError, "mu"),
        (lambda: Uniform(low=2, high=1), ValueError, "high"),
        (lambda: Uniform(low=-0.5, high=1), ValueError, "low"),
        (lambda: Gamma(shape=-1), ValueError, "shape"),
        (lambda: Gamma(scale=0), ValueError, "scale"),
        (lambda: Gamma(shape=True), TypeError, "shape"),
        (lambda: Exponential(0.0), ValueError, "mean_duration"),
        (lambda: Deterministic(-1.0), ValueError, "value"),
        (lambda: Discrete(values=(1, 2), probs=(0.5,)), ValueError, "probs"),
        (lambda: Discrete(values=(1, 2), probs=(0.5, 0.6)), ValueError, "probs"),
        (lambda: Discrete(values=(0, 2), probs=(0.5, 0.5)), ValueError, "values"),
        (lambda: Discrete(values=(), probs=()), ValueError, "values"),
        (lambda: Mixture(components=(), weights=()), TypeError, "components"),
        (lambda: Mixture(components=(Gamma(), "x"), weights=(0.5, 0.5)), TypeError, "components"),
        (lambda: Mixture(components=(Gamma(), Uniform()), weights=(1.0,)), ValueError, "weights"),
        (lambda: Mixture(components=(Gamma(), Uniform()), weights=(0.7, 0.7)), ValueError, "weights"),
    ],
)
def test_validation(factory, exc, name):
    with pytest.raises(exc, match=name):
        factory()


def test_truncnorm_without_mass_rejected():
    with pytest.raises(ValueError, match="mass"):
        TruncatedNormal(mu=0.0, sigma=1e-300, low=1.0)


def test_truncnorm_far_tail_interval_sampling_is_exact():
    # The interval [50, 60] lies 5000 sigma above the mean: still representable in log space.
    m = TruncatedNormal(mu=0.0, sigma=0.01, low=50.0, high=60.0)
    x = m.sample(np.random.default_rng(0), 1000)
    assert np.all((x >= 50.0) & (x <= 60.0))
    # the excess over low is ~ Exponential with mean sigma^2 / (low - mu) = 2e-6
    assert np.mean(x - 50.0) == pytest.approx(2e-6, rel=0.1)


@pytest.mark.parametrize(
    ("mu", "sigma", "low", "high"),
    [
        (0.0, 1.0, 30.0, math.inf),
        (0.0, 1.0, 38.3, math.inf),
        (0.0, 1.0, 39.0, math.inf),
        (1.0, 0.1, 5.0, 6.0),
    ],
)
def test_truncnorm_mean_far_in_the_tail(mu, sigma, low, high):
    """The constructor accepts (and the sampler handles, in log space) intervals far in the upper
    tail, so ``mean`` must be right there too; it is computed from ``exp(log_mass)``, which
    underflows (inaccurate for a > ~37.5 sigma, ZeroDivisionError beyond ~38.5 sigma)."""
    m = TruncatedNormal(mu=mu, sigma=sigma, low=low, high=high)
    ref = _truncnorm(mu, sigma, low, high).mean()
    assert m.mean == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("bad_high", ["x", "2.5", None])
def test_truncnorm_high_is_validated_like_the_other_parameters(bad_high):
    """``high`` must be validated like ``mu``/``sigma``/``low``: a non-number is a TypeError naming it.

    ``TruncatedNormal(sigma="a")`` and ``TruncatedNormal(low="2.5")`` raise ``TypeError`` naming the
    parameter, but ``high`` goes through a bare ``float(self.high)``.
    """
    with pytest.raises(TypeError, match="high"):
        TruncatedNormal(high=bad_high)


def test_models_are_frozen():
    m = Gamma()
    with pytest.raises(AttributeError):
        m.shape = 3.0  # type: ignore[misc]
    assert Gamma(2.0, 0.5) == Gamma(2.0, 0.5)
    assert TruncatedNormal() == TruncatedNormal()
    assert hash(TruncatedNormal()) == hash(TruncatedNormal())


def test_truncnorm_from_variance():
    m = TruncatedNormal.from_variance(1.0, 0.1)
    assert m.sigma == pytest.approx(math.sqrt(0.1), rel=1e-15)
    assert m == TruncatedNormal()


def test_lognormal_from_mean_std():
    m = LogNormal.from_mean_std(2.0, 0.5)
    ref = stats.lognorm(s=m.sigma, scale=math.exp(m.mu))
    assert ref.mean() == pytest.approx(2.0, rel=1e-12)
    assert ref.std() == pytest.approx(0.5, rel=1e-12)
    assert m.mean == pytest.approx(2.0, rel=1e-12)


# ----------------------------------------------------------------------------------------------
# Log-concavity
# ----------------------------------------------------------------------------------------------


LOG_CONCAVE = [
    c
    for c in CASES
    if c[0] in ("truncnorm_default", "truncnorm_finite_high", "lognormal", "gamma_0.5", "gamma_10")
] + [
    ("uniform", Uniform(0.5, 1.5), stats.uniform(loc=0.5, scale=1.0)),
    ("exponential", Exponential(1.3), stats.expon(scale=1.3)),
]


def _max_second_difference(model: DurationModel, ref) -> float:
    lo, hi = float(ref.ppf(1e-6)), float(ref.ppf(1 - 1e-6))
    t = np.linspace(lo, hi, 401)[1:-1]
    f = model.logcdf(t)
    assert np.all(np.isfinite(f))
    return float(np.max(f[:-2] - 2 * f[1:-1] + f[2:]))


@pytest.mark.parametrize(("name", "model", "ref"), LOG_CONCAVE, ids=[c[0] for c in LOG_CONCAVE])
def test_log_concave_flag_and_numerics(name, model, ref):
    assert model.log_concave is True
    assert _max_second_difference(model, ref) <= 1e-10


def test_log_concave_flags_false():
    assert Mixture().log_concave is False
    assert Mixture(components=(Gamma(), Uniform()), weights=(0.5, 0.5)).log_concave is False
    assert Mixture(components=(Gamma(),), weights=(1.0,)).log_concave is True
    assert Discrete().log_concave is False


def test_mixture_cdf_is_numerically_not_log_concave():
    """The bimodal default mixture violates log-concavity (so the numerical check can fail)."""
    mix, ref = CASES[IDS.index("mixture")][1:]
    assert _max_second_difference(mix, ref) > 1e-6
