"""Every bad input of the data contract gets an error naming the file and the column."""

from __future__ import annotations

import pandas as pd
import pytest

from ltr.data import load_impressions, load_judgements, load_log, load_products
from ltr.errors import DataValidationError
from tests.conftest import SAMPLE, write_tables


def _load(tables, tmp_path, fmt="csv"):
    return load_log(write_tables(tables, tmp_path / "log", fmt))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_log_loads_and_reports_absent_optional(tiny_tables, tmp_path, fmt):
    log = _load(tiny_tables, tmp_path, fmt)
    assert len(log.impressions) == 5
    assert log.absent_optional == {"products": ["description"]}
    assert str(log.impressions["timestamp"].dtype).startswith("datetime64")
    assert log.impressions["clicked"].dtype.name == "int8"
    assert "description" not in log.products  # reported absent, not invented
    s = log.summary()
    assert s["impressions"] == 5 and s["sessions"] == 2
    assert s["ctr_by_position"] == {1: 1.0, 2: 0.0, 3: 0.0}


def _expect(tables, tmp_path, file, column, *fragments):
    with pytest.raises(DataValidationError) as err:
        _load(tables, tmp_path)
    msg = str(err.value)
    assert f"{file}." in msg, msg
    assert f"column '{column}'" in msg, msg
    for f in fragments:
        assert f in msg, msg
    assert err.value.column == column
    return err.value


def test_missing_required_column(tiny_tables, tmp_path):
    tiny_tables["impressions"] = tiny_tables["impressions"].drop(columns=["position"])
    _expect(tiny_tables, tmp_path, "impressions", "position", "missing required column")


def test_wrong_dtype_names_rows_and_values(tiny_tables, tmp_path):
    tiny_tables["impressions"]["position"] = ["1", "2", "x", "1", "2"]
    e = _expect(tiny_tables, tmp_path, "impressions", "position", "not numbers")
    assert e.rows == [2] and e.values == ["x"]


def test_non_binary_outcome(tiny_tables, tmp_path):
    tiny_tables["impressions"]["clicked"] = [1, 0, 2, 1, 0]
    _expect(tiny_tables, tmp_path, "impressions", "clicked", "not 0 or 1")


def test_nan_in_required_column(tiny_tables, tmp_path):
    tiny_tables["products"].loc[2, "price"] = None
    e = _expect(tiny_tables, tmp_path, "products", "price", "missing")
    assert e.rows == [2]


def test_position_below_one(tiny_tables, tmp_path):
    tiny_tables["impressions"]["position"] = [0, 1, 2, 1, 2]
    e = _expect(tiny_tables, tmp_path, "impressions", "position", "position < 1")
    assert e.rows == [0]


def test_purchased_without_click(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[1, "purchased"] = 1
    e = _expect(tiny_tables, tmp_path, "impressions", "purchased", "without a click")
    assert e.rows == [1]


def test_duplicate_session_position(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[4, "position"] = 1
    e = _expect(tiny_tables, tmp_path, "impressions", "session_id,position", "repeat the key")
    assert e.rows == [4]


def test_product_absent_from_catalog(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[3, "product_id"] = 99
    e = _expect(tiny_tables, tmp_path, "impressions", "product_id", "absent from the products")
    assert e.rows == [3] and e.values == [99]


def test_unknown_customer(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[[3, 4], "customer_id"] = 42
    _expect(tiny_tables, tmp_path, "impressions", "customer_id", "absent from the customers")


def test_session_with_two_queries(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[4, "query"] = "chair"
    _expect(tiny_tables, tmp_path, "impressions", "query", "more than one query")


def test_unparseable_timestamp(tiny_tables, tmp_path):
    tiny_tables["impressions"].loc[0, "timestamp"] = "yesterday-ish"
    _expect(tiny_tables, tmp_path, "impressions", "timestamp", "not parseable")


def test_duplicate_product_and_bad_price(tiny_tables, tmp_path):
    bad = tiny_tables["products"].copy()
    bad.loc[1, "price"] = -5.0
    tiny_tables["products"] = bad
    _expect(tiny_tables, tmp_path, "products", "price", "price outside its range: it must be > 0")
    dup = pd.concat([tiny_tables["products"].iloc[:1]] * 2)
    dup["price"] = 10.0
    path = tmp_path / "dup.csv"
    dup.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="dup.csv, column 'product_id'"):
        load_products(path)


def test_unreadable_and_missing_files(tmp_path):
    corrupt = tmp_path / "impressions.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataValidationError, match=r"impressions.parquet: cannot be read"):
        load_impressions(corrupt)
    with pytest.raises(DataValidationError, match=r"nope.csv: file does not exist"):
        load_products(tmp_path / "nope.csv")
    weird = tmp_path / "products.xlsx"
    weird.write_text("x")
    with pytest.raises(DataValidationError, match="unknown file type"):
        load_products(weird)
    with pytest.raises(DataValidationError, match="no 'products' table found"):
        load_log(tmp_path / "empty_dir")


def test_judgements_average_repeated_pairs_and_check_catalog(tiny_tables, tmp_path):
    j = pd.DataFrame({"query": ["bed", "bed", "bed"], "product_id": [1, 1, 2],
                      "grade": [2, 1, 0]})
    path = tmp_path / "j.csv"
    j.to_csv(path, index=False)
    out = load_judgements(path)
    assert out.set_index("product_id")["grade"].to_dict() == {1: 1, 2: 0}
    j.loc[2, "product_id"] = 77
    j.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="column 'product_id'.*absent from the products"):
        load_judgements(path, tiny_tables["products"])


def test_bundled_sample_is_valid():
    log = load_log(SAMPLE)
    assert log.judgements is not None and log.judgements["query"].nunique() == 40
    assert len(log.impressions) > 100_000
    assert set(log.impressions["product_id"]) <= set(log.products["product_id"])


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000, 1_000_000_000])
def test_epoch_timestamps_in_any_unit_read_the_same(tiny_tables, tmp_path, scale):
    """Seconds, milliseconds, microseconds and nanoseconds since the epoch are told apart
    by magnitude; all give the same times (before, milliseconds became NaT silently)."""
    times = pd.to_datetime(tiny_tables["impressions"]["timestamp"])
    seconds = (times - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    tiny_tables["impressions"]["timestamp"] = seconds.astype("int64") * scale
    log = load_log(write_tables(tiny_tables, tmp_path / f"log{scale}", "parquet"))
    assert (log.impressions["timestamp"].to_numpy() == times.to_numpy()).all()


@pytest.mark.parametrize("values,problem", [
    ([1_767_261_600, 1_767_261_600_000], "another unit"),
    ([1_767_261_600, 42], "not Unix timestamps"),
])
def test_epoch_timestamps_of_mixed_or_no_unit_are_refused(tiny_tables, tmp_path, values,
                                                          problem):
    stamps = [values[0]] * len(tiny_tables["impressions"])
    stamps[-1] = values[1]
    tiny_tables["impressions"]["timestamp"] = stamps
    _expect(tiny_tables, tmp_path, "impressions", "timestamp", problem)
