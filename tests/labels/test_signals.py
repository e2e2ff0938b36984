import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from ltr.errors import ConfigError
from ltr.labels.config import LabelConfig
from ltr.labels.diagnostics import quantile_match, weighted_kappa
from ltr.labels.signals import (
    BetaPrior,
    fit_beta_prior,
    normalise,
    prior_bins,
    smooth_rate,
    to_grades,
)


def test_smooth_rate_hand_computed():
    prior = BetaPrior(2.0, 8.0)
    # (x + a) / (E + a + b): (3 + 2) / (10 + 10) = 0.25 ; no evidence -> prior mean 0.2
    np.testing.assert_allclose(smooth_rate(np.array([3.0, 0.0]), np.array([10.0, 0.0]), prior),
                               [0.25, 0.2])


def test_fit_beta_prior_recovers_beta_binomial():
    rng = np.random.default_rng(0)
    p = rng.beta(3.0, 12.0, size=20_000)  # mean 0.2, strength 15
    n = rng.integers(20, 200, size=p.size).astype(float)
    x = rng.binomial(n.astype(int), p).astype(float)
    prior = fit_beta_prior(x, n, min_trials=5, max_strength=1000)
    assert prior.mean == pytest.approx(0.2, abs=0.005)
    assert prior.alpha + prior.beta == pytest.approx(15.0, rel=0.1)


def test_fit_beta_prior_without_overdispersion_uses_max_strength():
    n = np.full(1000, 50.0)
    x = np.random.default_rng(1).binomial(50, 0.3, size=1000).astype(float)
    prior = fit_beta_prior(x, n, 5, 200)
    assert prior.alpha + prior.beta == pytest.approx(200.0, rel=0.3)


def test_normalise_percentiles_within_query_and_ties():
    v = np.array([1.0, 2.0, 2.0, 5.0, 1.0])
    q = np.array(["a", "a", "a", "b", "b"])
    np.testing.assert_allclose(normalise(v, q, "query_percentile"),
                               [0.5 / 3, 2.0 / 3, 2.0 / 3, 0.75, 0.25])


def test_prior_bins_cross_exposure_and_similarity():
    e = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    s = np.array([0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9])
    bins = prior_bins(e, s, 2, 2)
    assert bins[0] == bins[2] != bins[1]  # same exposure half, different similarity
    assert len(np.unique(bins)) == 4
    assert (prior_bins(e, None, 1, 5) == 0).all()


def test_grades_by_quantiles_and_thresholds():
    score = np.linspace(0, 1, 100)
    g = to_grades(score, LabelConfig())
    assert np.bincount(g).tolist() == [20, 25, 25, 20, 10]
    cfg = LabelConfig(grading="thresholds", n_grades=3, grade_values=[0.3, 0.6])
    assert to_grades(np.array([0.1, 0.3, 0.7]), cfg).tolist() == [0, 1, 2]


def test_weighted_kappa_matches_sklearn():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, 400)
    b = np.clip(a + rng.integers(-1, 2, 400), 0, 2)
    assert weighted_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))


def test_quantile_match_keeps_reference_shares():
    ref = np.array([0, 0, 1, 1, 1, 2])
    out = quantile_match(np.array([0.9, 0.1, 0.5, 0.4, 0.3, 0.2]), ref)
    assert out.tolist() == [2, 0, 1, 1, 1, 0]


@pytest.mark.parametrize("key,value", [("normalise", "zscore"), ("behaviour_weight", 1.5),
                                       ("n_grades", 1), ("grade_values", [0.5, 0.6]),
                                       ("prior_similarity_bins", 0), ("click_weight", -1)])
def test_bad_label_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"labels.{key}"):
        LabelConfig.from_dict({key: value})


def test_unknown_label_key():
    with pytest.raises(ConfigError, match="labels.behavior_weight"):
        LabelConfig.from_dict({"behavior_weight": 0.5})
