"""Statistics helpers: intervals and tests agree with SciPy; bad input is rejected clearly."""

import numpy as np
import pytest
from scipy import stats

from labsched.envs._lib.stats import mean_ci, p_safe_verdict, paired_difference, wilson_ci

CASES = [(0, 10), (1, 10), (5, 10), (10, 10), (950, 1000), (380, 400), (199, 200), (3, 7)]


@pytest.mark.parametrize("k,n", CASES)
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, level):
    ours = wilson_ci(k, n, level)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert ours.low == pytest.approx(ref.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.high, abs=1e-12)
    assert ours.rate == k / n and ours.low <= ours.rate <= ours.high


@pytest.mark.parametrize(
    "k,n,p",
    [
        (950, 1000, 0.95),
        (935, 1000, 0.95),
        (930, 1000, 0.95),
        (380, 400, 0.95),
        (372, 400, 0.95),
        (20, 20, 0.95),
        (0, 5, 0.5),
        (40, 50, 0.9),
    ],
)
def test_p_safe_verdict_matches_binomtest(k, n, p):
    v = p_safe_verdict(k, n, p)
    ref = stats.binomtest(k, n, p, alternative="less").pvalue
    assert v.p_value == pytest.approx(ref, rel=1e-9, abs=1e-15)
    assert v.safe == (ref >= 0.05)
    assert v.completion.successes == k and v.completion.n == n


def test_p_safe_verdict_known_cases():
    assert p_safe_verdict(950, 1000, 0.95).safe
    assert not p_safe_verdict(930, 1000, 0.95).safe  # 93% of 1,000 is significantly below 95%
    assert p_safe_verdict(18, 20, 0.95).safe  # too few episodes to call 90% unsafe


def test_mean_ci_matches_t_interval():
    x = np.random.default_rng(0).normal(3.0, 2.0, 57)
    m = mean_ci(x, 0.95)
    lo, hi = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert m.low == pytest.approx(lo) and m.high == pytest.approx(hi) and m.n == 57
    assert m.std_error == pytest.approx(stats.sem(x))
    one = mean_ci([4.0])
    assert one.mean == one.low == one.high == 4.0 and one.std_error == 0.0


def test_paired_difference_matches_scipy():
    rng = np.random.default_rng(1)
    b = rng.normal(100, 5, 200)
    a = b + rng.normal(0.5, 1.0, 200)
    d = paired_difference(a, b, wilcoxon=True)
    assert d.diff.mean == pytest.approx((a - b).mean())
    assert d.t_p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert d.wilcoxon_p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)
    lo, hi = stats.t.interval(0.95, 199, loc=(a - b).mean(), scale=stats.sem(a - b))
    assert d.diff.low == pytest.approx(lo) and d.diff.high == pytest.approx(hi)
    same = paired_difference(a, a, wilcoxon=True)
    assert same.diff.mean == 0.0 and same.t_p_value == 1.0 and same.wilcoxon_p_value == 1.0
    assert paired_difference(a, b).wilcoxon_p_value is None


def test_bad_inputs_raise_clearly():
    with pytest.raises(ValueError, match="successes must be <= n"):
        wilson_ci(11, 10)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        wilson_ci(0, 0)
    with pytest.raises(TypeError, match="successes"):
        wilson_ci(1.5, 10)
    with pytest.raises(ValueError, match="confidence"):
        wilson_ci(1, 10, 1.0)
    with pytest.raises(ValueError, match="0 < p < 1"):
        p_safe_verdict(5, 10, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        p_safe_verdict(5, 10, 0.9, alpha=0.7)
    with pytest.raises(ValueError, match="at least 1"):
        mean_ci([])
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [2.0])
    with pytest.raises(TypeError, match="sequence"):
        mean_ci(3.0)
