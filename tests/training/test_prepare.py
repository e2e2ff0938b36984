"""From a log folder to lists: shapes, labels, and no leakage from held-out queries."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.errors import ConfigError
from ltr.training.lists import OutcomeSampler
from ltr.training.prepare import prepare

FEATURES = {"numeric": ["price", "price_sensitivity", "hist_pair_ctr", "hist_product_ctr"],
            "log1p": ["price"], "categorical": ["brand", "segment"],
            "derived": ["brand_match", "price_z_in_list"]}
TASKS = ["click", "add_to_cart", "purchase", "relevance"]


@pytest.fixture(scope="module")
def folded(tiny_log_dir):
    return prepare(str(tiny_log_dir), TASKS, FEATURES, None, None, folds=3, fold=1,
                   hard_negatives=2, pool_lists=1)


def test_lists_shapes_and_labels(folded):
    tr = folded.train
    g, l_, f = tr.numeric.shape
    assert tr.categorical.shape == (g, l_, 2)  # brand, segment
    assert f == folded.preprocessor.numeric_width
    assert tr.mask.sum() > 0 and set(tr.labels) == set(TASKS)
    sessions = tr.keys > 0
    # session lists: real positions 1..10 first, then hard negatives at position 0
    first = tr.position[sessions][:, :10]
    assert (first == np.arange(1, 11)).all()
    assert (tr.position[sessions][:, 10:12] == 0).all()
    assert np.nan_to_num(tr.labels["click"][sessions][:, 10:12]).max() == 0
    # pool lists: no behaviour labels, relevance labels present
    pools = ~sessions
    assert pools.any()
    assert not np.isfinite(tr.labels["click"][pools]).any()
    assert np.isfinite(tr.labels["relevance"][pools][tr.mask[pools]]).all()
    assert (tr.outcomes()[pools] == 4).all()
    # evaluation pools carry human grades and no customer
    assert folded.pools is not None and "human" in folded.pools.labels


def test_held_out_queries_reach_nothing_of_training(folded, tiny_log_dir):
    held = set(folded.held_out_queries)
    assert held
    train_queries = {folded.query_texts[i] for i in folded.train.query_text}
    assert not held & train_queries
    valid = folded.valid
    cold = {folded.query_texts[i] for i in valid.query_text[~valid.warm]}
    warm = {folded.query_texts[i] for i in valid.query_text[valid.warm]}
    assert cold and not held & (cold | warm)
    assert not cold & train_queries  # cold validation queries are never trained on
    assert warm <= train_queries  # warm ones are training queries, labelled by later clicks
    # validation lists are candidate pools scored against derived relevance labels
    assert not np.isfinite(valid.labels["click"]).any()
    assert np.isfinite(valid.labels["relevance"][valid.mask]).all()
    # the cold lists carry no (query, product) history, the warm ones do
    j = folded.preprocessor.numeric_names.index("hist_pair_ctr__missing")
    assert (valid.numeric[~valid.warm][..., j][valid.mask[~valid.warm]] == 1).all()
    assert (valid.numeric[valid.warm][..., j][valid.mask[valid.warm]] == 0).any()
    test_queries = {folded.query_texts[i] for i in folded.test.query_text}
    assert test_queries == held
    pool_queries = set(folded.pools.keys)
    assert pool_queries == held
    # history features of held-out pairs are missing (their history was never used)
    j = folded.preprocessor.numeric_names.index("hist_pair_ctr__missing")
    assert (folded.pools.numeric[..., j][folded.pools.mask] == 1).all()


def test_outcome_sampler_shares():
    outcomes = np.array([0] * 90 + [1] * 8 + [3] * 2)
    s = OutcomeSampler(outcomes, {"none": 0.5, "click": 0.25, "purchase": 0.25, "cart": 0.9},
                       seed=0, num_samples=20_000)
    drawn = outcomes[list(iter(s))]
    share = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(share, [0.5, 0.25, 0.0, 0.25], atol=0.02)  # cart absent
    uniform = list(iter(OutcomeSampler(outcomes, None, seed=0)))
    assert sorted(uniform) == list(range(100))


def test_bad_data_config(tiny_log_dir):
    with pytest.raises(ConfigError, match="model.tasks"):
        prepare(str(tiny_log_dir), ["clicks"], FEATURES)
    with pytest.raises(ConfigError, match="data.split.train_days"):
        prepare(str(tiny_log_dir), TASKS, FEATURES, split={"train_days": 3})
    with pytest.raises(ConfigError, match="data.fold"):
        prepare(str(tiny_log_dir), TASKS, FEATURES, folds=3, fold=5)
