"""Hostile data: tables that break the contract in one way each, loaded with
:func:`ltr.data.load_log` the way every command loads them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltr.data import load_log
from tests.conftest import write_tables
from tests.robustness.harness import Case, expect_outcome, params

Tables = dict[str, pd.DataFrame]


def tables_case(id: str, what: str, edit: Callable[[Tables], Any], names: tuple[str, ...] = (),
                expect: str = "error", check: Callable[[Any], None] | None = None,
                fmt: str = "csv") -> Case:
    """A case that edits the tiny tables in memory, writes them and loads the folder."""
    def run(tables: Tables, folder: Path) -> None:
        edit(tables)
        write_tables(tables, folder, fmt)
        log = expect_outcome(case, lambda: load_log(folder))
        if check is not None and expect == "accepted":
            check(log)
    case = Case(id, "data", what, expect, names, run)
    return case


def file_case(id: str, what: str, damage: Callable[[Path], Any], names: tuple[str, ...],
              expect: str = "error", fmt: str = "csv") -> Case:
    """A case that damages the written files (bytes, names) before loading."""
    def run(tables: Tables, folder: Path) -> None:
        write_tables(tables, folder, fmt)
        damage(folder)
        expect_outcome(case, lambda: load_log(folder))
    case = Case(id, "data", what, expect, names, run)
    return case


def _set(table: str, column: str, row: int, value: Any) -> Callable[[Tables], None]:
    def edit(t: Tables) -> None:
        df = t[table]
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
    return edit


def _drop(table: str, column: str) -> Callable[[Tables], None]:
    return lambda t: t[table].drop(columns=[column], inplace=True)


def _column(table: str, column: str, values: list[Any]) -> Callable[[Tables], None]:
    def edit(t: Tables) -> None:
        t[table][column] = values
    return edit


def _timestamps(values: list[Any]) -> Callable[[Tables], None]:
    return _column("impressions", "timestamp", values)


def _times(log) -> pd.Series:
    return log.impressions["timestamp"]


def _check_2026(log) -> None:
    ts = _times(log)
    assert ts.dt.year.eq(2026).all(), list(ts)


def _write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


MS = [1767261600000] * 3 + [1767351600000] * 2  # 2026-01-01 10:00 / 2026-01-02 11:00 UTC

CASES = [
    # products
    tables_case("products-missing-product_id", "catalog without product_id",
                _drop("products", "product_id"), ("products.csv", "product_id")),
    tables_case("products-missing-title-and-price", "catalog without title and price: both "
                "listed at once", lambda t: t["products"].drop(columns=["title", "price"],
                                                               inplace=True),
                ("products.csv", "title", "price")),
    tables_case("products-duplicate-id", "two catalog rows with one product_id",
                _set("products", "product_id", 1, 1), ("products.csv", "product_id")),
    tables_case("products-price-text", "price 'abc'", _set("products", "price", 0, "abc"),
                ("products.csv", "price", "abc")),
    tables_case("products-price-inf", "price inf", _set("products", "price", 0, "inf"),
                ("products.csv", "price", "infinite")),
    tables_case("products-price-negative", "price -5", _set("products", "price", 0, -5.0),
                ("products.csv", "price", "range")),
    tables_case("products-price-zero", "price 0", _set("products", "price", 2, 0.0),
                ("products.csv", "price")),
    tables_case("products-price-missing", "price empty", _set("products", "price", 1, None),
                ("products.csv", "price", "missing")),
    tables_case("products-rating-50", "rating 50 on a 1-5 scale",
                _set("products", "rating", 0, 50.0), ("products.csv", "rating")),
    tables_case("products-review-count-fraction", "review_count 1.5",
                _set("products", "review_count", 0, 1.5), ("products.csv", "review_count",
                                                           "whole")),
    tables_case("products-review-count-negative", "review_count -1",
                _set("products", "review_count", 0, -1), ("products.csv", "review_count")),
    tables_case("products-title-empty", "an empty title", _set("products", "title", 0, ""),
                ("products.csv", "title")),
    tables_case("products-id-missing", "a product row without an id",
                _set("products", "product_id", 3, None), ("products.csv", "product_id")),
    tables_case("products-no-rows", "a catalog with a header and no rows",
                lambda t: t.update(products=t["products"].iloc[:0]),
                ("products.csv",)),
    tables_case("products-extra-columns", "an extra column the contract does not know",
                _column("products", "colour", ["red", "oak", "red", "black"]),
                expect="accepted",
                check=lambda log: log.products["colour"].tolist()[1] == "oak"),
    tables_case("products-rating-missing", "a missing rating (optional)",
                _set("products", "rating", 0, None), expect="accepted"),
    tables_case("products-parquet-wrong-type", "parquet with price stored as text",
                _column("products", "price", ["1", "2", "x", "4"]),
                ("products.parquet", "price", "x"), fmt="parquet"),
    # customers
    tables_case("customers-missing-id", "customers without customer_id",
                _drop("customers", "customer_id"), ("customers.csv", "customer_id")),
    tables_case("customers-duplicate-id", "one customer twice",
                _set("customers", "customer_id", 1, 7), ("customers.csv", "customer_id")),
    # impressions
    tables_case("impressions-missing-session_id", "log without session_id",
                _drop("impressions", "session_id"), ("impressions.csv", "session_id")),
    tables_case("impressions-missing-query", "log without query",
                _drop("impressions", "query"), ("impressions.csv", "query")),
    tables_case("impressions-missing-clicked", "log without clicked",
                _drop("impressions", "clicked"), ("impressions.csv", "clicked")),
    tables_case("impressions-empty-query", "a blank query", _set("impressions", "query", 0,
                                                                 "  "),
                ("impressions.csv", "query", "missing")),
    tables_case("impressions-position-fraction", "position 1.5",
                _set("impressions", "position", 1, 1.5), ("impressions.csv", "position")),
    tables_case("impressions-position-zero", "position 0 (positions are 1-based)",
                _set("impressions", "position", 0, 0), ("impressions.csv", "position")),
    tables_case("impressions-clicked-2", "clicked 2", _set("impressions", "clicked", 0, 2),
                ("impressions.csv", "clicked", "0 or 1")),
    tables_case("impressions-clicked-yes", "clicked 'yes'",
                _set("impressions", "clicked", 0, "yes"), ("impressions.csv", "clicked")),
    tables_case("impressions-purchased-nan", "purchased missing",
                _set("impressions", "purchased", 2, None), ("impressions.csv", "purchased")),
    tables_case("impressions-clicked-all-missing", "a required column that parses to all "
                "missing ('n/a' in every row)", _column("impressions", "clicked", ["n/a"] * 5),
                ("impressions.csv", "clicked", "missing")),
    tables_case("impressions-timestamp-all-unparseable", "a timestamp column of words only",
                _timestamps(["soon"] * 5), ("impressions.csv", "timestamp", "parseable")),
    tables_case("customers-attribute-all-missing", "an optional customer attribute empty in "
                "every row", _column("customers", "segment", [None, None]),
                expect="accepted"),
    tables_case("impressions-unknown-product", "a shown product absent from the catalog",
                _set("impressions", "product_id", 0, 99), ("impressions.csv", "product_id",
                                                           "products")),
    tables_case("impressions-unknown-customer", "a customer absent from the customer table",
                _set("impressions", "customer_id", 0, 99), ("impressions.csv",
                                                            "customer_id")),
    tables_case("impressions-duplicate-slot", "two products at one position of a session",
                _set("impressions", "position", 1, 1), ("impressions.csv", "position")),
    tables_case("impressions-no-rows", "a log with a header and no rows",
                lambda t: t.update(impressions=t["impressions"].iloc[:0]),
                ("impressions.csv",)),
    tables_case("timestamp-garbage", "timestamp 'yesterday'",
                _set("impressions", "timestamp", 0, "yesterday"),
                ("impressions.csv", "timestamp", "yesterday")),
    tables_case("timestamp-missing", "a missing timestamp",
                _set("impressions", "timestamp", 0, None),
                ("impressions.csv", "timestamp", "missing")),
    tables_case("timestamp-epoch-seconds", "Unix seconds", _timestamps([m // 1000 for m in MS]),
                expect="accepted", check=_check_2026),
    tables_case("timestamp-epoch-milliseconds", "Unix milliseconds", _timestamps(MS),
                expect="accepted", check=_check_2026),
    tables_case("timestamp-epoch-nanoseconds", "Unix nanoseconds",
                _timestamps([m * 1_000_000 for m in MS]), expect="accepted",
                check=_check_2026),
    tables_case("timestamp-epoch-mixed-units", "seconds in one row, milliseconds in others",
                _timestamps([MS[0] // 1000] + MS[1:]),
                ("impressions.csv", "timestamp", "unit")),
    tables_case("timestamp-small-numbers", "timestamps 1..5 (no Unix unit)",
                _timestamps([1, 2, 3, 4, 5]), ("impressions.csv", "timestamp", "Unix")),
    tables_case("timestamp-zoned", "ISO times with different offsets: converted to UTC",
                _timestamps(["2026-01-01T11:00:00+01:00"] * 3 + ["2026-01-02T11:00:00Z"] * 2),
                expect="accepted",
                check=lambda log: _times(log).iloc[0] == pd.Timestamp("2026-01-01 10:00")),
    tables_case("timestamp-mixed-zones", "some rows with an offset, some without",
                _timestamps(["2026-01-01T11:00:00+01:00"] * 3 + ["2026-01-02 11:00:00"] * 2),
                ("impressions.csv", "timestamp", "offset")),
    # judgements
    tables_case("judgements-negative-grade", "a grade of -1",
                lambda t: t.update(judgements=pd.DataFrame(
                    {"query": ["bed"], "product_id": [1], "grade": [-1]})),
                ("judgements.csv", "grade")),
    tables_case("judgements-unknown-product", "a judged product absent from the catalog",
                lambda t: t.update(judgements=pd.DataFrame(
                    {"query": ["bed"], "product_id": [42], "grade": [2]})),
                ("judgements.csv", "product_id")),
    tables_case("judgements-missing-grade", "judgements without grade",
                lambda t: t.update(judgements=pd.DataFrame(
                    {"query": ["bed"], "product_id": [1]})),
                ("judgements.csv", "grade")),
    # files
    file_case("file-corrupt-parquet", "products.parquet holding random bytes",
              _write_bytes("products.parquet", np.random.default_rng(0).bytes(512)),
              ("products.parquet",), fmt="parquet"),
    file_case("file-truncated-parquet", "a parquet file cut in half",
              lambda f: (f / "impressions.parquet").write_bytes(
                  (f / "impressions.parquet").read_bytes()[:200]),
              ("impressions.parquet",), fmt="parquet"),
    file_case("file-empty-csv", "a zero-byte customers.csv",
              _write_bytes("customers.csv", b""), ("customers.csv",)),
    file_case("file-not-utf8", "products.csv in a non-UTF-8 encoding",
              _write_bytes("products.csv", "product_id,title\n1,caf\xe9\n".encode("latin-1")),
              ("products.csv",)),
    file_case("file-missing-table", "a folder without the impressions table",
              lambda f: (f / "impressions.csv").unlink(), ("impressions",)),
    file_case("file-unknown-suffix", "the catalog as products.xlsx",
              lambda f: (f / "products.csv").rename(f / "products.xlsx"), ("products",)),
    file_case("file-is-a-folder", "products.csv is a folder",
              lambda f: ((f / "products.csv").unlink(), (f / "products.csv").mkdir()),
              ("products.csv",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_data(case: Case, tiny_tables: Tables, tmp_path: Path) -> None:
    case.run(tiny_tables, tmp_path / "log")
