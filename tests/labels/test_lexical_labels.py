"""Query-term coverage in the label similarity: a set weight, a weight calibrated on the
log's clicks (``labels.lexical_weight: auto``) and no lexical matcher at all.

Data: the bundled sample log cut to its first 12 queries (~1,600 pairs); cosine and
coverage are arrays aligned with the pairs as :func:`pair_counts` orders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_table
from ltr.labels import LabelConfig, derive_labels, pair_counts
from ltr.labels.pipeline import calibrate_similarity
from ltr.text.lexical import LEXICAL_WEIGHTS, calibrate_lexical_weight
from tests.conftest import SAMPLE

KEY = ["query", "product_id"]


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    imp = read_table(SAMPLE / "impressions.parquet")
    queries = sorted(imp["query"].astype(str).unique())[:12]
    return imp[imp["query"].astype(str).isin(queries)].reset_index(drop=True)


@pytest.fixture(scope="module")
def pairs(log) -> pd.DataFrame:
    """The pairs in derive_labels' order, with a random cosine and coverage."""
    p, _, _ = pair_counts(log, LabelConfig())
    rng = np.random.default_rng(0)
    p = p[KEY].copy()
    p["cos"] = rng.uniform(-0.2, 0.9, len(p))
    p["cov"] = rng.choice([0.0, 1 / 3, 0.5, 2 / 3, 1.0], len(p))
    return p


def aligned(labels: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``labels`` rows in ``pairs`` order, with ``pairs``' columns."""
    out = pairs.merge(labels, on=KEY, how="left", validate="one_to_one")
    assert len(out) == len(pairs)
    return out


# --------------------------------------------------------------------------- a set weight


@pytest.mark.parametrize("w", [0.3, 1, 0.0])
def test_set_weight_similarity_is_cosine_plus_weighted_coverage(log, pairs, w) -> None:
    cos, cov = pairs["cos"].to_numpy(), pairs["cov"].to_numpy()
    res = derive_labels(log, LabelConfig(lexical_weight=w), cos, lexical=cov)
    assert res.lexical_weight == w and isinstance(res.lexical_weight, float)
    assert res.lexical_curve == {}
    got = aligned(res.labels, pairs)
    np.testing.assert_allclose(got["similarity"], cos + w * cov, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["cosine"], cos)
    np.testing.assert_array_equal(got["coverage"], cov)
    # the labels are those of that hybrid similarity given as the similarity
    plain = aligned(derive_labels(log, LabelConfig(), cos + w * cov).labels, pairs)
    np.testing.assert_allclose(got["score"], plain["score"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["grade"], plain["grade"])


def test_set_weight_without_normalisation_rescales_to_unit_interval(log, pairs) -> None:
    # normalise none: similarity part = (1 + cos + w cov) / (2 + w), in [0, 1]
    cos, cov, w = pairs["cos"].to_numpy(), pairs["cov"].to_numpy(), 0.5
    res = derive_labels(log, LabelConfig(lexical_weight=w, normalise="none"), cos,
                        variant="similarity_only", lexical=cov)
    got = aligned(res.labels, pairs)
    np.testing.assert_allclose(got["score"], (1 + cos + w * cov) / (2 + w), atol=1e-12)


def test_lexical_as_a_function(log, pairs) -> None:
    cos = pairs["cos"].to_numpy()
    lookup = dict(zip(zip(pairs["query"].astype(str), pairs["product_id"], strict=True),
                      pairs["cov"], strict=True))
    calls = []

    def lexical(queries, product_ids):
        calls.append(len(queries))
        return np.array([lookup[(str(q), p)] for q, p in zip(queries, product_ids,
                                                              strict=True)])

    cfg = LabelConfig(lexical_weight=0.2)
    a = derive_labels(log, cfg, cos, lexical=lexical).labels
    b = derive_labels(log, cfg, cos, lexical=pairs["cov"].to_numpy()).labels
    assert calls == [len(pairs)]
    pd.testing.assert_frame_equal(a, b)


def test_bad_lexical_values_raise(log, pairs) -> None:
    cos = pairs["cos"].to_numpy()
    with pytest.raises(DataValidationError, match="lexical coverage"):
        derive_labels(log, LabelConfig(lexical_weight=0.2), cos, lexical=np.zeros(3))
    bad = pairs["cov"].to_numpy().copy()
    bad[5] = np.nan
    with pytest.raises(DataValidationError, match="lexical coverage"):
        derive_labels(log, LabelConfig(lexical_weight=0.2), cos, lexical=bad)


@pytest.mark.parametrize("value", [-1, -0.1, "x", True, None])
def test_bad_lexical_weight_is_a_config_error(value) -> None:
    with pytest.raises(ConfigError, match="labels.lexical_weight") as err:
        LabelConfig(lexical_weight=value)
    assert err.value.key == "labels.lexical_weight"
    with pytest.raises(ConfigError, match="labels.lexical_weight"):
        LabelConfig.from_dict({"lexical_weight": value})


def test_good_lexical_weights() -> None:
    for value in ("auto", 0, 0.0, 0.25, 3):
        assert LabelConfig(lexical_weight=value).lexical_weight == value
    assert LabelConfig().lexical_weight == "auto"


# --------------------------------------------------------------------------- calibrated


def behaviour_target(log, pairs) -> np.ndarray:
    """The calibration target in ``pairs`` order: the behaviour score with priors by
    exposure alone (one similarity bin crosses nothing), kept pairs only are used."""
    labels = derive_labels(log, LabelConfig(prior_similarity_bins=1, lexical_weight=0.0),
                           pairs["cos"].to_numpy(), lexical=pairs["cov"].to_numpy()).labels
    return aligned(labels, pairs)


def test_auto_weight_is_in_the_grid_and_maximises_the_curve(log, pairs) -> None:
    cos, cov = pairs["cos"].to_numpy(), pairs["cov"].to_numpy()
    res = derive_labels(log, LabelConfig(), cos, lexical=cov)
    curve = res.lexical_curve
    assert list(curve) == [float(w) for w in LEXICAL_WEIGHTS]
    assert res.lexical_weight in LEXICAL_WEIGHTS
    best = max(curve.values())
    assert res.lexical_weight == min(w for w, v in curve.items() if v >= best - 1e-12)
    got = aligned(res.labels, pairs)
    np.testing.assert_allclose(got["similarity"], cos + res.lexical_weight * cov, atol=1e-12)
    assert any("calibrated" in n for n in res.notes)
    # the curve: mean NDCG@10 of the hybrid similarity against the exposure-prior
    # behaviour score, over the pairs of clicked queries with >= min_evidence examinations
    ref = behaviour_target(log, pairs)
    clicked = ref.groupby("query", observed=True)["clicks"].transform("sum") > 0
    keep = (clicked & (ref["expected_exams"] >= LabelConfig().min_evidence)).to_numpy()
    assert 0 < keep.sum() < len(keep)
    w_ref, curve_ref = calibrate_lexical_weight(
        pairs["query"].astype(str).to_numpy()[keep], cos[keep], cov[keep],
        ref["behaviour"].to_numpy()[keep])
    assert w_ref == res.lexical_weight
    for w in curve:
        assert curve[w] == pytest.approx(curve_ref[w], abs=1e-12), w


def test_auto_picks_zero_when_the_cosine_already_ranks_like_the_clicks(log, pairs) -> None:
    target = behaviour_target(log, pairs)["behaviour"].to_numpy()
    res = derive_labels(log, LabelConfig(prior_similarity_bins=1), target,
                        lexical=pairs["cov"].to_numpy())
    assert res.lexical_curve[0.0] == pytest.approx(1.0)
    assert res.lexical_weight == 0.0
    assert min(res.lexical_curve.values()) < 1.0


def test_auto_picks_a_weight_when_coverage_ranks_like_the_clicks(log, pairs) -> None:
    target = behaviour_target(log, pairs)["behaviour"].to_numpy()
    noise = 0.02 * pairs["cos"].to_numpy()
    res = derive_labels(log, LabelConfig(prior_similarity_bins=1), noise, lexical=target)
    curve = res.lexical_curve
    assert res.lexical_weight > 0
    assert curve[res.lexical_weight] == max(curve.values())
    assert curve[res.lexical_weight] > curve[0.0] + 0.05


def test_calibrate_similarity_returns_a_set_weight_untouched(pairs) -> None:
    frame = pairs.assign(expected_exams=1.0, clicks=0, carts=0, purchases=0)
    for w in (0, 0.4):
        assert calibrate_similarity(frame, frame["cos"].to_numpy(), frame["cov"].to_numpy(),
                                    LabelConfig(lexical_weight=w)) == (float(w), {})


def test_auto_without_well_observed_clicked_pairs_falls_back_to_zero(pairs) -> None:
    # no query has a click: nothing to calibrate on
    frame = pairs.assign(expected_exams=10.0, clicks=0, carts=0, purchases=0)
    assert calibrate_similarity(frame, frame["cos"].to_numpy(), frame["cov"].to_numpy(),
                                LabelConfig()) == (0.0, {})


# --------------------------------------------------------------------------- no matcher


def test_without_lexical_nothing_changes(log, pairs) -> None:
    cos = pairs["cos"].to_numpy()
    for cfg in (LabelConfig(), LabelConfig(lexical_weight=0.7)):
        res = derive_labels(log, cfg, cos)
        assert res.lexical_weight == 0.0
        assert res.lexical_curve == {}
        assert "cosine" not in res.labels and "coverage" not in res.labels
        assert not any("coverage" in n for n in res.notes)
        np.testing.assert_array_equal(aligned(res.labels, pairs)["similarity"], cos)
    # coverage with weight 0 gives the same labels, plus the two columns
    with_zero = derive_labels(log, LabelConfig(lexical_weight=0), cos,
                              lexical=pairs["cov"].to_numpy()).labels
    without = derive_labels(log, LabelConfig(), cos).labels
    pd.testing.assert_frame_equal(with_zero.drop(columns=["cosine", "coverage"]), without)
    # behaviour_only has no similarity: a lexical matcher is not used
    res = derive_labels(log, LabelConfig(), variant="behaviour_only",
                        lexical=pairs["cov"].to_numpy())
    assert res.lexical_weight == 0.0 and "coverage" not in res.labels
