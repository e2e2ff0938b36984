"""From a log folder to lists: shapes, labels, and no leakage from held-out queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError
from ltr.training.lists import OutcomeSampler
from ltr.training.prepare import prepare

FEATURES = {"numeric": ["price", "price_sensitivity", "hist_pair_ctr", "hist_product_ctr",
                        "lex_coverage"],
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


def test_new_and_known_query_pools(tiny_log_dir, tmp_path):
    """``pools``: judged queries no model trained on (held out, or absent from the log);
    ``known_pools``: the trained-on ones, with their training labels beside the human
    grades."""
    import shutil

    import pandas as pd

    folded = prepare(str(tiny_log_dir), TASKS, FEATURES, folds=3, fold=1, pool_lists=1)
    assert set(folded.pools.keys) == set(folded.held_out_queries)
    known = set(folded.known_pools.keys)
    assert known and not known & set(folded.held_out_queries)
    assert {"human", "label"} <= set(folded.known_pools.labels)
    assert folded.known_pools.warm.all() and not folded.pools.warm.any()
    # a judged query that never reached the log is a new query even without folds
    log = tmp_path / "log"
    shutil.copytree(tiny_log_dir, log)
    judged = pd.read_parquet(log / "judgements.parquet")
    extra = judged[judged["query"] == judged["query"].iloc[0]].assign(query="never typed")
    pd.concat([judged, extra]).to_parquet(log / "judgements.parquet", index=False)
    plain = prepare(str(log), TASKS, FEATURES, pool_lists=1)
    assert list(plain.pools.keys) == ["never typed"]
    assert "never typed" not in set(plain.known_pools.keys)


def test_history_is_as_of_each_windows_start(tiny_log_dir):
    """Training rows see the history window only; judged pools and packages the log up to
    the test window (more impressions for the same pair)."""
    data = prepare(str(tiny_log_dir), TASKS, FEATURES, pool_lists=1)
    pairs_infer = data.history[0].set_index(["query", "product_id"])["hist_pair_impressions"]
    from ltr.data import load_log
    from ltr.features.split import time_windows

    log = load_log(str(tiny_log_dir))
    imp = log.impressions.assign(query=log.impressions["query"].astype(str))
    w = time_windows(imp, 7, 3, 4)
    before_test = imp[w != "test"].groupby(["query", "product_id"]).size()
    history_only = imp[w == "history"].groupby(["query", "product_id"]).size()
    common = pairs_infer.index.intersection(before_test.index)
    # validation queries' pairs join the inference history too (every non-held-out query)
    np.testing.assert_array_equal(pairs_infer.loc[common].to_numpy(),
                                  before_test.loc[common].to_numpy())
    assert before_test.sum() > history_only.sum()
    assert "hist_pair_label" in data.history[0]
    assert data.lexical_weight >= 0 and data.info["lexical_weight"] == data.lexical_weight


def test_neighbour_features_never_use_the_query_itself(tiny_log_dir, tmp_path):
    """With one known query besides itself, a query's neighbour label is that other
    query's label, never its own."""
    from tests.text.conftest import build_tiny_bert

    bert = build_tiny_bert(tmp_path / "bert")
    text = {"model_name": str(bert), "max_length": 16, "progress": False}
    feats = {**FEATURES, "numeric": [*FEATURES["numeric"], "nn_label", "nn_coverage",
                                     "nn_max_sim"]}
    data = prepare(str(tiny_log_dir), TASKS, feats, text=text, pool_lists=1,
                   neighbours={"k": 3})
    nn = data.neighbours
    assert nn is not None and len(nn) >= 2
    table = nn.label_table()
    for q in nn.queries[:2]:
        own = table[table["query"] == q]
        emb = data.query_embeddings[data.query_index[q]][None, :]
        cols = nn.columns([q], emb, own["product_id"].tolist(), np.zeros(len(own), int))
        idx, sim = nn.neighbours([q], emb)
        assert nn.query_index[q] not in idx[0][sim[0] > 0]
        assert np.isfinite(cols["nn_coverage"]).all()
    with pytest.raises(ConfigError, match="data.neighbours.k"):
        prepare(str(tiny_log_dir), TASKS, feats, text=text, neighbours={"k": -1})


@pytest.mark.parametrize("key,value,model_key", [
    ("trainable_layers", 1, "model.trainable_layers"),
    ("shared_towers", False, "model.tuned_tower"),
    ("interactions", ["cosine"], "model.interactions")])
def test_text_keys_the_model_decides_are_refused_not_ignored(tiny_log_dir, key, value,
                                                              model_key):
    from ltr.errors import ConfigError
    from ltr.training.prepare import prepare

    with pytest.raises(ConfigError, match=model_key) as err:
        prepare(str(tiny_log_dir), ["click"], text={"model_name": "x", key: value})
    assert err.value.key == f"data.text.{key}"


def test_hard_negatives_are_unshown_distinct_pool_products():
    """The vectorised draw: per session min(n, unshown pool products) distinct products
    of its query's pool, none shown; a pool nearly all shown gives what it has."""
    from ltr.training.prepare import _hard_negatives

    rng = np.random.default_rng(0)
    n_sess, size = 400, 8
    sid = np.repeat(np.arange(n_sess), 5)
    query = np.repeat(rng.integers(0, 20, n_sess), 5)
    train = pd.DataFrame({"session_id": sid, "timestamp": pd.Timestamp("2026-01-01"),
                          "customer_id": sid % 7, "query": [f"q{q}" for q in query],
                          "product_id": query * 100 + rng.integers(0, size + 3, len(sid))})
    train = train.drop_duplicates(["session_id", "product_id"])
    pool = pd.DataFrame({"query": np.repeat([f"q{q}" for q in range(20)], size),
                         "product_id": np.repeat(np.arange(20) * 100, size)
                         + np.tile(np.arange(size), 20)})
    neg = _hard_negatives(train, pool, 4, seed=3)
    shown = set(zip(train["session_id"], train["product_id"], strict=True))
    assert not any(k in shown for k in zip(neg["session_id"], neg["product_id"],
                                                 strict=True))
    assert not neg.duplicated(["session_id", "product_id"]).any()
    assert ((neg["product_id"] // 100).astype(str).radd("q") == neg["query"]).all()
    assert (neg["product_id"] % 100 < size).all()
    in_pool = train[train["product_id"] % 100 < size].groupby("session_id").size()
    want = np.minimum(4, size - in_pool.reindex(range(n_sess), fill_value=0))
    got = neg.groupby("session_id").size().reindex(range(n_sess), fill_value=0)
    assert (got.to_numpy() == want.to_numpy()).all()
    assert neg[["clicked", "position"]].eq(0).all().all()


def test_pool_lists_partition_each_query_per_repeat():
    from ltr.training.prepare import _pool_lists

    labels = pd.DataFrame({"query": np.repeat(["a", "b", "c"], [7, 3, 12]),
                           "product_id": np.arange(22), "grade": np.arange(22) % 3})
    rows = _pool_lists(labels, repeats=2, size=5, seed=1, first_id=-1, keep_grade=True)
    assert len(rows) == 2 * len(labels)
    ids = rows["session_id"].unique()
    assert list(ids) == list(range(-1, -len(ids) - 1, -1))  # consecutive, in order
    assert len(ids) == 2 * (2 + 1 + 3)  # ceil(7/5) + ceil(3/5) + ceil(12/5), twice
    per_list = rows.groupby("session_id")
    assert (per_list.size() <= 5).all() and (per_list["query"].nunique() == 1).all()
    half = rows.iloc[:len(labels)]  # the first repeat holds every labelled pair once
    assert sorted(half["product_id"]) == list(range(22))
    assert (half.merge(labels, on=["query", "product_id"])["grade_x"]
            == half.merge(labels, on=["query", "product_id"])["grade_y"]).all()
