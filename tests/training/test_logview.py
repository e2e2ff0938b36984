"""Preparation reads the log through a LogView: in memory (pandas) or on an SQL engine
(DuckDB, Spark local mode). Same selections, same lists, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.errors import ConfigError
from ltr.training.logview import ALL_WINDOWS, Selection, open_log_view
from ltr.training.prepare import prepare
from tests.labels.test_engine import _spark_missing
from tests.training.test_prepare import FEATURES, TASKS

pytest.importorskip("duckdb")

# everything that draws at random is on: hard negatives, pool lists, anonymous sessions,
# history dropout, a query-fold hold-out and validation queries
SETTINGS = dict(features=FEATURES, folds=3, fold=1, hard_negatives=2, pool_lists=2,
                anonymous_share=0.2, history_dropout=0.3, valid_query_share=0.3, seed=3)
SETS = ("train", "valid", "test", "pools", "known_pools")


def assert_same_prepared(a, b) -> None:
    assert a.query_texts == b.query_texts and a.product_ids == b.product_ids
    assert a.held_out_queries == b.held_out_queries
    pa, pb = a.preprocessor, b.preprocessor
    assert pa.vocabularies == pb.vocabularies and pa.indicators == pb.indicators
    for col, mean in pa.means.items():
        assert mean == pytest.approx(pb.means[col], rel=1e-9, abs=1e-12)
    for name in SETS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is None:
            continue
        assert np.array_equal(x.keys, y.keys), name
        np.testing.assert_allclose(x.numeric, y.numeric, rtol=0, atol=1e-5, err_msg=name)
        for field in ("categorical", "mask", "product_text", "position", "query_text"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), (name, field)
        assert x.labels.keys() == y.labels.keys()
        for task in x.labels:
            np.testing.assert_allclose(x.labels[task], y.labels[task], atol=1e-6,
                                       err_msg=f"{name} {task}")
        assert [c is None for c in x.customer_id] == [c is None for c in y.customer_id]


@pytest.fixture(scope="module")
def on_pandas(tiny_log_dir):
    return prepare(str(tiny_log_dir), TASKS, engine="pandas", **SETTINGS)


def test_duckdb_lists_equal_pandas_lists(tiny_log_dir, on_pandas):
    on_duckdb = prepare(str(tiny_log_dir), TASKS, engine="duckdb", memory_limit="256MB",
                        **SETTINGS)
    assert on_duckdb.info["engine"] == "duckdb" and on_pandas.info["engine"] == "pandas"
    assert on_duckdb.info["rows"] == on_pandas.info["rows"]
    assert_same_prepared(on_pandas, on_duckdb)


def test_selections_agree(tiny_log_dir):
    """Every selection prepare asks for: the same rows, queries, products and sessions."""
    views = [open_log_view(str(tiny_log_dir), e, None, 3, 1, 3) for e in ("pandas", "duckdb")]
    try:
        assert views[0].held_out == views[1].held_out and views[0].held_out
        some = frozenset(sorted(views[0].queries(Selection(("train",), "trained")))[:2])
        for v in views:
            v.set_validation_queries(set(some))
        for sel in (Selection(("train",), "trained"), Selection(("train",), "model"),
                    Selection(("history", "train"), "model"), Selection(ALL_WINDOWS, "held_out"),
                    Selection(("test",)), Selection(("valid",), "trained", some)):
            a, b = views
            assert a.count(sel) == b.count(sel) > 0, sel
            assert a.queries(sel) == b.queries(sel), sel
            assert a.queries(sel, clicked=True) == b.queries(sel, clicked=True), sel
            assert sorted(a.products(sel)) == sorted(b.products(sel)), sel
            assert a.max_list_size(sel) == b.max_list_size(sel), sel
            assert a.fingerprint(sel) == b.fingerprint(sel), sel
            sa, sb = a.sessions(sel), b.sessions(sel)
            assert sa["session_id"].tolist() == sb["session_id"].tolist(), sel
    finally:
        for v in views:
            v.close()


def test_auto_engine_and_bad_engine(tiny_log_dir, tmp_path):
    streamed = prepare(str(tiny_log_dir), TASKS, FEATURES, stream_dir=str(tmp_path))
    assert streamed.info["engine"] == "duckdb"  # auto: the SQL engine when streaming
    with pytest.raises(ConfigError, match="data.engine"):
        prepare(str(tiny_log_dir), TASKS, FEATURES, engine="polars")
    with pytest.raises(ConfigError, match="'data.memory_limit'"):
        prepare(str(tiny_log_dir), TASKS, FEATURES, engine="duckdb", memory_limit="lots")


def test_spark_lists_equal_pandas_lists(tiny_log_dir, on_pandas):
    reason = _spark_missing()
    if reason:
        print(f"skipping the Spark test: {reason}")
        pytest.skip(reason)
    on_spark = prepare(str(tiny_log_dir), TASKS, engine="spark",
                       spark={"master": "local[2]",
                              "conf": {"spark.sql.shuffle.partitions": "2"}}, **SETTINGS)
    assert_same_prepared(on_pandas, on_spark)
