from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ltr.evaluation.significance import paired_bootstrap, paired_test, paired_ttest


def test_ttest_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.02 + rng.normal(0, 0.1, 200)
    t = paired_ttest(a, b)
    ref = stats.ttest_rel(a, b)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert t.delta == pytest.approx(np.mean(a - b))
    ci = ref.confidence_interval(0.95)
    assert (t.ci_low, t.ci_high) == pytest.approx((ci.low, ci.high))


def test_bootstrap_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(300)
    shifted = base + 0.05 + rng.normal(0, 0.1, 300)
    t = paired_bootstrap(shifted, base, n_resamples=2000, seed=0)
    assert t.p_value < 0.01 and t.ci_low > 0 and t.ci_low < t.delta < t.ci_high
    # under H0 the p-values of many draws are roughly uniform: about 5% below 0.05
    ps = [paired_bootstrap(rng.normal(size=60), rng.normal(size=60), 400, seed=s).p_value
          for s in range(200)]
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.11
    # and agree with the t-test on well-behaved data
    a, b = rng.normal(size=500), rng.normal(size=500) + 0.1
    assert paired_bootstrap(a, b, 4000).p_value == pytest.approx(paired_ttest(a, b).p_value,
                                                                 abs=0.02)


def test_bootstrap_is_deterministic_and_bounded() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(50), rng.random(50)
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    t = paired_bootstrap(a, b, n_resamples=99)
    assert 1 / 100 <= t.p_value <= 1.0
    # chunking does not change the answer
    assert paired_bootstrap(a, b, 500, chunk_elements=60) == paired_bootstrap(a, b, 500)


def test_identical_models_give_p_one() -> None:
    a = np.array([0.1, 0.5, 0.9, 0.3])
    for t in (paired_bootstrap(a, a), paired_ttest(a, a)):
        assert t.delta == 0.0 and t.p_value == 1.0
    # a constant non-zero difference is as significant as it gets
    whole = np.array([1.0, 2.0, 3.0, 4.0])
    assert paired_ttest(whole + 1.0, whole).p_value == 0.0  # sd exactly 0
    assert paired_ttest(a + 0.1, a).p_value < 1e-10  # sd ~1e-17 from rounding
    assert paired_bootstrap(a + 0.1, a, 999).p_value == pytest.approx(1 / 1000)


def test_too_few_queries_give_nan_not_a_verdict() -> None:
    for test in ("bootstrap", "ttest"):
        t = paired_test(np.array([0.5]), np.array([0.1]), test)
        assert t.n == 1 and math.isnan(t.p_value)
        assert math.isnan(paired_test(np.array([]), np.array([]), test).p_value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="test must be"):
        paired_test(np.zeros(3), np.zeros(3), "wilcoxon")
    with pytest.raises(ValueError, match="equal length"):
        paired_ttest(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap(np.array([np.nan, 1.0]), np.zeros(2))
