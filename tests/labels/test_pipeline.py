"""The label pipeline end to end on the bundled sample log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_table
from ltr.labels import LabelConfig, derive_labels, pair_counts
from ltr.labels.diagnostics import agreement
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def log():
    return read_table(SAMPLE / "impressions.parquet"), read_table(SAMPLE / "judgements.parquet")


@pytest.fixture(scope="module")
def noisy_similarity(log):
    """A stand-in for text similarity: the human grade plus heavy noise, independent of
    the clicks, aligned with the pairs as pair_counts orders them."""
    imp, judged = log
    pairs, _, _ = pair_counts(imp, LabelConfig(), judged)
    grade = pairs.merge(judged, on=["query", "product_id"], how="left")["grade"].fillna(0)
    rng = np.random.default_rng(0)
    return grade.to_numpy(float) + rng.normal(0.0, 1.5, len(pairs))


def test_labels_cover_log_and_judged_pool_without_nan(log, noisy_similarity):
    imp, judged = log
    res = derive_labels(imp, LabelConfig(), noisy_similarity, judged)
    labels = res.labels
    assert len(labels) == len(judged)  # the sample's log only shows judged products
    assert labels["grade"].between(0, 4).all()
    for col in ("score", "behaviour", "similarity", "smoothed_ctr", "expected_exams"):
        assert labels[col].notna().all(), col
    shares = labels["grade"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(shares, [0.2, 0.25, 0.25, 0.2, 0.1], atol=0.01)
    never = labels["impressions"] == 0
    assert labels.loc[never, "debiased_ctr"].isna().all()
    assert (labels.loc[never, "behaviour_weight"] == 0.5).all()


def test_combined_agrees_better_than_each_signal(log, noisy_similarity):
    imp, judged = log
    rows = {}
    for variant in ("behaviour_only", "similarity_only", "combined"):
        rows[variant] = agreement(
            derive_labels(imp, LabelConfig(), noisy_similarity, judged, variant).labels, judged)
    for metric in ("spearman", "weighted_kappa"):
        assert rows["combined"][metric] > rows["behaviour_only"][metric], metric
        assert rows["combined"][metric] > rows["similarity_only"][metric], metric


def test_query_without_clicks_rests_on_similarity(log, noisy_similarity):
    imp, judged = log
    imp = imp.copy()
    q0 = imp["query"].astype(str).iloc[0]
    dead = imp["query"].astype(str) == q0
    imp.loc[dead, ["clicked", "added_to_cart", "purchased"]] = 0
    res = derive_labels(imp, LabelConfig(), noisy_similarity, judged)
    mine = res.labels[res.labels["query"] == q0]
    assert (mine["behaviour_weight"] == 0).all()
    assert any("had no click at all" in n for n in res.notes)
    assert res.labels["score"].notna().all()


def test_single_position_log_falls_back_and_says_so(log, noisy_similarity):
    imp, _ = log
    top = imp[imp["position"] == 1]
    res = derive_labels(top, LabelConfig(), variant="behaviour_only")
    assert any("not identifiable" in n for n in res.notes)
    assert res.labels["score"].notna().all()


def test_bad_inputs(log):
    imp, _ = log
    with pytest.raises(ConfigError, match="text.model_name"):
        derive_labels(imp, LabelConfig(), None)
    with pytest.raises(DataValidationError, match="similarity"):
        derive_labels(imp, LabelConfig(), np.zeros(3))
    with pytest.raises(DataValidationError, match="is empty"):
        derive_labels(imp.iloc[:0], LabelConfig(), variant="behaviour_only")
    with pytest.raises(ConfigError, match="labels.variant"):
        derive_labels(imp, LabelConfig(), variant="clicks")
    bad = pd.DataFrame({"query": ["x"], "product_id": ["not-an-int"]})
    with pytest.raises(DataValidationError, match="product_id type differs"):
        derive_labels(imp, LabelConfig(), variant="behaviour_only", extra_pairs=bad)


@pytest.mark.parametrize("values,key", [
    ({"behaviour_weight": "x"}, "labels.behaviour_weight"),
    ({"em_max_iter": "a"}, "labels.em_max_iter"),
    ({"prior_min_evidence": None}, "labels.prior_min_evidence"),
    ({"n_grades": 2.5}, "labels.n_grades"),
    ({"grade_values": ["a"]}, "labels.grade_values[0]"),
])
def test_label_config_wrong_types_name_the_key(values, key):
    from ltr.errors import ConfigError
    from ltr.labels.config import LabelConfig

    with pytest.raises(ConfigError) as err:
        LabelConfig(**values)
    assert err.value.key == key
