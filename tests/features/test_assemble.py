"""The one join path of training and serving (ltr.features.assemble, ltr.features.stores),
checked against pandas merges as the independent reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError
from ltr.features.assemble import KeyRows, RowJoiner, row_schema
from ltr.features.spec import FeatureSpec
from ltr.features.stores import ColumnStore, key_of, keys_of
from ltr.features.text_match import coverage_column
from ltr.training.prepare import join_rows

PRODUCTS = pd.DataFrame({"product_id": [10, 11, 12, 13],
                         "title": ["grey sofa", "oak table", "sofa bed", "lamp"],
                         "category": ["Sofas", "Tables", "Sofas", None],
                         "brand": ["a", "b", "a", "c"], "price": [500.0, 200.0, np.nan, 30.0]})
CUSTOMERS = pd.DataFrame({"customer_id": [1, 2], "preferred_brand": ["a", "c"],
                          "age": [30.0, np.nan]})
PAIRS = pd.DataFrame({"query": ["sofa", "sofa", "table"], "product_id": [10, 12, 11],
                      "hist_pair_impressions": [5.0, 2.0, 7.0], "hist_pair_ctr": [.2, .1, .3]})
PRODS = pd.DataFrame({"product_id": [10, 11], "hist_product_impressions": [9.0, 4.0]})
ROWS = pd.DataFrame({"session_id": [1, 1, 1, 2, 2, 3], "query": ["sofa"] * 3 + ["table"] * 2
                     + ["sofa"], "product_id": [10, 12, 13, 11, 10, 11],
                     "customer_id": [1.0, 1.0, 1.0, np.nan, np.nan, 2.0],
                     "position": [1, 2, 3, 1, 2, 1]})
SPEC = FeatureSpec.from_dict({"numeric": ["price", "age", "hist_pair_ctr", "lex_coverage"],
                              "categorical": ["category"],
                              "derived": ["brand_match", "price_z_in_list"]})


def joiner() -> RowJoiner:
    schema = row_schema(SPEC, ["click"], PRODUCTS, CUSTOMERS, (PAIRS, PRODS),
                        ["title", "category"], row_columns=set(ROWS.columns))
    return RowJoiner.from_tables(schema, SPEC, PRODUCTS, CUSTOMERS, (PAIRS, PRODS))


def test_lookup_equals_the_dictionary_index() -> None:
    frame = pd.DataFrame({"k": [3, 5, 3, 7], "v": [1.0, 2.0, 3.0, 4.0]})
    store = ColumnStore(frame, "k", ["v"], "t")
    wanted = np.array([3, 7.0, "5", None, 9, np.nan], dtype=object)
    got = store.lookup(wanted)
    by_dict = store.rows([key_of(v) if v is not None and v == v else None for v in wanted])
    np.testing.assert_array_equal(got, by_dict)
    np.testing.assert_array_equal(got, [2, 3, 1, -1, -1, -1])  # a repeated key: last row
    pairs = ColumnStore(PAIRS, ["query", "product_id"], [], "pairs")
    np.testing.assert_array_equal(pairs.lookup(np.array(["sofa", "table", "sofa"], object),
                                               np.array([12, 11, 11])), [1, 2, -1])


def test_keys_normalise_integral_floats() -> None:
    assert keys_of(np.array([3.0, 2.5, np.nan, "x"], dtype=object)).tolist() == \
        ["3", "2.5", None, "x"]
    assert keys_of(np.array([1, 2])).tolist() == ["1", "2"]


def test_training_join_equals_pandas_merges() -> None:
    out = join_rows(ROWS, joiner(), None, "session_id")
    want = ROWS.merge(PRODUCTS, on="product_id", how="left") \
        .merge(CUSTOMERS, on="customer_id", how="left") \
        .assign(query=ROWS["query"]).merge(PAIRS, on=["query", "product_id"], how="left") \
        .merge(PRODS, on="product_id", how="left")
    for col in ("price", "age", "hist_pair_impressions", "hist_pair_ctr",
                "hist_product_impressions"):
        np.testing.assert_allclose(out[col].astype(float), want[col].astype(float),
                                   err_msg=col)
    for col in ("category", "brand", "preferred_brand"):
        assert out[col].where(out[col].notna(), None).tolist() == \
            want[col].where(want[col].notna(), None).tolist(), col
    np.testing.assert_allclose(out["lex_coverage"],
                               coverage_column(want, ["title", "category"]))
    # derived: brand_match 1 where the customer's brand is the product's
    np.testing.assert_array_equal(out["brand_match"], [1, 1, 0, 0, 0, 0])
    assert list(out["position"]) == list(ROWS["position"])  # row columns kept


def test_request_rows_equal_training_rows() -> None:
    """A service's key rows (text ids, one customer per request) give the columns the
    training rows give."""
    j = joiner()
    train = join_rows(ROWS, j, None, "session_id")
    keys = keys_of(ROWS["product_id"].to_numpy())
    group = np.array([0, 0, 0, 1, 1, 2])
    request = j.columns(KeyRows(
        queries=["sofa", "table", "sofa"], query_codes=group, catalog_rows=j.catalog.rows(keys),
        product_keys=keys, customer_rows=np.array([0, -1, 1]), customer_of_row=group,
        group=group))
    for col, values in request.items():
        a, b = pd.Series(values), pd.Series(train[col].to_numpy())
        assert a.isna().tolist() == b.isna().tolist(), col
        assert a[a.notna()].tolist() == b[b.notna()].tolist(), col


def test_a_product_record_replaces_the_lookup() -> None:
    j = joiner()
    record = {"product_id": "new", "title": "velvet sofa", "price": 99.0, "brand": "a"}
    cols = j.columns(KeyRows(
        queries=["sofa"], query_codes=np.zeros(2, np.int64),
        catalog_rows=np.array([0, -1]), product_keys=np.array(["10", "new"], object),
        customer_rows=np.array([0]), customer_of_row=np.zeros(2, np.int64),
        group=np.zeros(2, np.int64), records={1: record}))
    assert cols["price"].tolist() == [500.0, 99.0]
    assert cols["lex_coverage"].tolist() == [1.0, 1.0]
    assert np.isnan(cols["hist_pair_ctr"][1])


def test_a_column_no_table_has_is_refused() -> None:
    spec = FeatureSpec.from_dict({"numeric": ["weight"]})
    with pytest.raises(ConfigError, match="weight"):
        row_schema(spec, ["click"], PRODUCTS, CUSTOMERS, (PAIRS, PRODS), ["title"])
