"""``lex_coverage`` of training rows (a DataFrame) and of a request (column -> array)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import DataValidationError
from ltr.features.text_match import COVERAGE_COLUMN, coverage_column, lexical_fields


@pytest.fixture()
def rows() -> pd.DataFrame:
    return pd.DataFrame({
        "query": ["red sofa", "oak beds", "none lamp", "nan lamp", "Décor rugs", "blue chair"],
        "title": ["Red Sofa", "oak table", None, "desk lamp", "Wool Rug", "Armchair"],
        "category": ["Furniture / Sofas", None, "Lighting / Lamps", np.nan, "Home Decor",
                     "Furniture / Chairs"],
        "brand": ["a", "Beds & Co", "acme", None, "x", "Blue Ocean"],
    })


# |T(q) & T(text)| / |T(q)| with text = title + category + brand, missing values skipped:
# {red, sofa} in "red sofa furniture sofa a": 1; {oak, bed} in "oak table beds co": 1;
# {none, lamp} in "lighting lamps acme" (a missing title is not the word "None"): 1/2;
# {nan, lamp} in "desk lamp" (a missing category/brand is not "nan"): 1/2;
# {decor, rug} in "wool rug home decor x": 1; {blue, chair} in "armchair furniture chairs
# blue ocean": 1
EXPECTED = [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]
WITHOUT_BRAND = [1.0, 0.5, 0.5, 0.5, 1.0, 0.5]


def test_lexical_fields() -> None:
    assert lexical_fields() == ["title", "category"]
    assert lexical_fields(["brand", "color"]) == ["title", "category", "brand", "color"]
    # duplicates dropped, first position kept
    assert lexical_fields(["category", "brand", "title", "brand"]) == \
        ["title", "category", "brand"]
    assert COVERAGE_COLUMN == "lex_coverage"


def test_coverage_column_hand_values(rows) -> None:
    np.testing.assert_allclose(coverage_column(rows, lexical_fields(["brand"])), EXPECTED)
    np.testing.assert_allclose(coverage_column(rows, lexical_fields()), WITHOUT_BRAND)


def test_dataframe_and_request_mapping_agree(rows) -> None:
    fields = lexical_fields(["brand"])
    frame = coverage_column(rows, fields)
    as_numpy = {c: rows[c].to_numpy() for c in rows}  # object arrays with None / NaN
    as_lists = {c: np.array(rows[c].tolist(), dtype=object) for c in rows}
    as_string = {c: rows[c].astype("string").array for c in rows}  # pandas' string dtype
    for table in (as_numpy, as_lists, as_string):
        np.testing.assert_array_equal(coverage_column(table, fields, "request"), frame)
    np.testing.assert_array_equal(frame, coverage_column(rows.astype({"query": "string"}),
                                                         fields))


def test_fields_absent_from_the_table_are_skipped(rows) -> None:
    got = coverage_column(rows, lexical_fields(["brand", "not_a_column"]))
    np.testing.assert_allclose(got, EXPECTED)
    got = coverage_column(rows.drop(columns="category"), ["title"])
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0, 0.5, 0.5, 0.0])


def test_numeric_product_field() -> None:
    table = {"query": np.array(["sofa 3", "sofa 3"], dtype=object),
             "title": np.array(["sofa", "sofa"], dtype=object),
             "seats": np.array([3.0, np.nan])}
    np.testing.assert_allclose(coverage_column(table, ["title", "seats"]), [1.0, 0.5])


def test_missing_query_column_raises_naming_it(rows) -> None:
    with pytest.raises(DataValidationError, match="'query'") as err:
        coverage_column(rows.drop(columns="query"), lexical_fields(), "training rows")
    assert err.value.column == "query"
    assert err.value.source == "training rows"
    with pytest.raises(DataValidationError) as err:
        coverage_column({"title": np.array(["lamp"], dtype=object)}, ["title"], "request")
    assert err.value.column == "query"
    assert err.value.source == "request"


def test_empty_table() -> None:
    table = {"query": np.array([], dtype=object), "title": np.array([], dtype=object)}
    assert coverage_column(table, lexical_fields()).shape == (0,)
