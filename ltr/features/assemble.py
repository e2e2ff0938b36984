"""Rows -> feature columns: the one join path of training and serving.

Training rows (sessions, candidate pools, judged pools) and a ranking service's requests
are both *key rows*: a query, a product and a customer per row, and a list key. Turning
them into the columns a model reads is the same for both, and is done here only:

1. product columns from the catalog, customer columns from the customer table, and
   (query, product) and product history columns, each a key lookup in a
   :class:`~ltr.features.stores.ColumnStore` (absent key: missing);
2. ``lex_coverage`` (:mod:`ltr.features.text_match`) from the catalog's analysed text
   (:class:`ltr.text.lexical.TokenIndex`), one sparse lookup per distinct query;
3. the neighbour label-transfer columns (:mod:`ltr.features.neighbours`) per distinct
   query;
4. the derived features (:func:`ltr.features.derived.derived_columns`), grouped by list.

A service may also send products and customers as records instead of ids; their own
values take the place of the looked-up ones (``records``, ``customer_records``).

:class:`Schema` says which columns come from which table (``features.json`` in a model
package); :func:`row_schema` derives it from a feature spec and the tables, the same way
for training and export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ltr.errors import ConfigError
from ltr.features.derived import DERIVED, derived_columns
from ltr.features.neighbours import NEIGHBOUR_COLUMNS
from ltr.features.spec import FeatureSpec
from ltr.features.stores import ColumnStore
from ltr.features.text_match import COVERAGE_COLUMN, coverage_column, row_texts

History = tuple[pd.DataFrame, pd.DataFrame]  # (pair features, product features)
TITLE = "title"


@dataclass(frozen=True)
class Schema:
    """Where each input column of a model comes from (``features.json``)."""

    tasks: list[str]
    product_columns: list[str]  # from the catalog (or a product record)
    customer_columns: list[str]  # from the customer table (or a customer record)
    pair_history_columns: list[str]  # by (query, product_id)
    product_history_columns: list[str]  # by product_id
    numeric_columns: list[str]  # held as numbers; every other column as values/text
    text_fields: list[str]  # title + product fields encoded as the product text
    text_separator: str = " | "
    title_column: str = TITLE
    lexical_fields: list[str] = field(default_factory=list)  # lex_coverage reads these

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Schema:
        return cls(**state)


def row_schema(spec: FeatureSpec, tasks: list[str], products: pd.DataFrame,
               customers: pd.DataFrame, history: History, lexical_fields: list[str],
               text_fields: list[str] | None = None, separator: str = " | ",
               row_columns: set[str] | frozenset[str] = frozenset()) -> Schema:
    """The :class:`Schema` of ``spec`` over these tables: every column the features,
    the lexical match and the derived features read, assigned to the catalog, the
    customer table or the history. ``row_columns``: columns the rows carry themselves
    (training rows: impression columns); any other column no table has is refused."""
    lexical = list(lexical_fields) if COVERAGE_COLUMN in spec.numeric_inputs else []
    generated = {COVERAGE_COLUMN, *NEIGHBOUR_COLUMNS}  # computed per row
    needed = [c for c in dict.fromkeys([*spec.numeric, *spec.categorical, *lexical,
                                        *(c for d in spec.derived for c in DERIVED[d].needs)])
              if c not in generated]
    pair_cols = [c for c in history[0].columns if c not in ("query", "product_id")]
    prod_hist_cols = [c for c in history[1].columns if c != "product_id"]
    product_cols, customer_cols = [], []
    for col in needed:
        if col in products.columns:
            product_cols.append(col)
        elif col in customers.columns:
            customer_cols.append(col)
        elif col not in pair_cols and col not in prod_hist_cols and col not in row_columns:
            raise ConfigError("data.features", f"feature column '{col}' is neither a product, "
                              "customer nor history column (impression-level features cannot "
                              "be served yet)")
    numeric = [c for c in needed if c in spec.numeric or c == "price"]
    numeric += [c for c in [*pair_cols, *prod_hist_cols] if c not in numeric]
    for frame, cols in ((products, product_cols), (customers, customer_cols)):
        for col in cols:
            if col not in numeric and pd.api.types.is_float_dtype(frame[col]) \
                    and col not in spec.categorical:
                numeric.append(col)
    return Schema(tasks=list(tasks), product_columns=["product_id", *product_cols],
                  customer_columns=["customer_id", *customer_cols],
                  pair_history_columns=pair_cols, product_history_columns=prod_hist_cols,
                  numeric_columns=numeric, text_fields=list(text_fields or [TITLE]),
                  text_separator=separator, title_column=TITLE, lexical_fields=lexical)


def _cell(value: Any, dtype: np.dtype) -> Any:
    """A record value for a column array: NaN for a missing number."""
    if dtype.kind == "f":
        return np.nan if value is None else float(value)
    return value


def _lookup(store: ColumnStore | None, col: str, rows: np.ndarray,
            records: Mapping[int, Mapping[str, Any]], number: bool) -> np.ndarray:
    """Column ``col`` at ``rows`` of a table (missing at -1, or everywhere when the
    table or column is absent), with the records' own values at their positions."""
    if store is not None and col in store.columns:
        values = store.gather(col, rows)
    else:
        values = np.full(len(rows), np.nan) if number else np.full(len(rows), None, object)
    for n, record in records.items():
        values[n] = _cell(record.get(col), values.dtype)
    return values


@dataclass
class KeyRows:
    """Rows to join, as keys: ``query_codes[n]`` indexes ``queries`` (distinct query
    texts), ``catalog_rows`` / ``product_keys`` name each row's product,
    ``customer_rows[customer_of_row[n]]`` its customer (``customer_of_row`` -1:
    anonymous), ``group`` its list key."""

    queries: list[str]
    query_codes: np.ndarray  # [N] int
    catalog_rows: np.ndarray  # [N] int, -1: not in the catalog (a record)
    product_keys: np.ndarray  # [N] object, text keys
    customer_rows: np.ndarray  # [C] int, -1: unknown
    customer_of_row: np.ndarray  # [N] int into customer_rows, -1: anonymous
    group: np.ndarray  # [N] list key
    query_embeddings: np.ndarray | None = None  # [len(queries), d], for the neighbours
    records: dict[int, dict[str, Any]] = field(default_factory=dict)  # row -> product record
    customer_records: dict[int, dict[str, Any]] = field(default_factory=dict)  # c -> record


class RowJoiner:
    """The tables rows are joined against (see the module docstring)."""

    def __init__(self, schema: Schema, spec: FeatureSpec, catalog: ColumnStore,
                 customers: ColumnStore | None, pair_history: ColumnStore,
                 product_history: ColumnStore, neighbours: Any = None,
                 catalog_tokens: Any = None) -> None:
        self.schema = schema
        self.spec = spec
        self.catalog = catalog
        self.customers = customers
        self.pair_history = pair_history
        self.product_history = product_history
        self.neighbours = neighbours  # ltr.features.neighbours.QueryNeighbours or None
        needed = set(spec.numeric_inputs)
        self.needs_coverage = COVERAGE_COLUMN in needed
        self.needs_neighbours = bool(needed & set(NEIGHBOUR_COLUMNS))
        self.catalog_tokens = catalog_tokens  # the catalog's lexical text, analysed once
        if self.needs_coverage and catalog_tokens is None:
            from ltr.text.lexical import TokenIndex

            self.catalog_tokens = TokenIndex(row_texts(catalog.columns,
                                                       schema.lexical_fields))
        numeric = set(schema.numeric_columns)
        self.product_numeric = {c for c in [*schema.product_columns, *schema.text_fields]
                                if c in numeric}
        self.customer_numeric = {c for c in schema.customer_columns if c in numeric}

    @classmethod
    def from_tables(cls, schema: Schema, spec: FeatureSpec, products: pd.DataFrame,
                    customers: pd.DataFrame | None, history: History,
                    neighbours: Any = None) -> RowJoiner:
        """A joiner over in-memory tables (training: the log folder's catalog and
        customers, one history window)."""
        numeric = schema.numeric_columns
        catalog_cols = list(dict.fromkeys([*schema.product_columns, *schema.lexical_fields]))
        catalog = ColumnStore(products[[c for c in catalog_cols if c in products]],
                              "product_id", numeric, "products")
        cust = None if customers is None else ColumnStore(
            customers[[c for c in schema.customer_columns if c in customers]], "customer_id",
            numeric, "customers")
        pairs, prods = cls._history_stores(history, numeric)
        return cls(schema, spec, catalog, cust, pairs, prods, neighbours)

    @staticmethod
    def _history_stores(history: History, numeric: list[str]
                        ) -> tuple[ColumnStore, ColumnStore]:
        return (ColumnStore(history[0], ["query", "product_id"], numeric, "pair history"),
                ColumnStore(history[1], "product_id", numeric, "product history"))

    def with_history(self, history: History, neighbours: Any = None) -> RowJoiner:
        """This joiner with another history window (and neighbour table); the catalog,
        customers and analysed catalog text are shared."""
        out = object.__new__(RowJoiner)
        out.__dict__.update(self.__dict__)
        out.pair_history, out.product_history = self._history_stores(
            history, self.schema.numeric_columns)
        out.neighbours = neighbours
        return out

    # ------------------------------------------------------------------ joining
    def columns(self, rows: KeyRows, source: str = "rows") -> dict[str, np.ndarray]:
        """Every column of :attr:`schema` (products, customers, history), the coverage,
        neighbour and derived columns, and ``query``, for ``rows``."""
        s = self.schema
        n = len(rows.query_codes)
        table: dict[str, np.ndarray] = {}
        for col in s.product_columns:
            table[col] = _lookup(self.catalog, col, rows.catalog_rows, rows.records,
                                 col in self.product_numeric)
        cust_of_row = np.asarray(rows.customer_of_row, dtype=np.int64)
        cust_rows = np.asarray(rows.customer_rows, dtype=np.int64)
        for col in s.customer_columns:
            if col == "customer_id":
                continue
            per_customer = _lookup(self.customers, col, cust_rows, rows.customer_records,
                                   col in self.customer_numeric)
            values = per_customer[np.maximum(cust_of_row, 0)] if len(per_customer) else \
                np.full(n, np.nan if per_customer.dtype.kind == "f" else None,
                        dtype=per_customer.dtype)
            values[cust_of_row < 0] = np.nan if values.dtype.kind == "f" else None
            table[col] = values
        queries = np.asarray(rows.queries, dtype=object)
        q_of_row = queries[rows.query_codes] if n else np.zeros(0, dtype=object)
        pair_rows = self.pair_history.lookup(q_of_row, rows.product_keys)
        for col in s.pair_history_columns:
            table[col] = self.pair_history.gather(col, pair_rows)
        prod_rows = self.product_history.lookup(rows.product_keys)
        for col in s.product_history_columns:
            table[col] = self.product_history.gather(col, prod_rows)
        table["query"] = q_of_row
        if self.needs_coverage:
            table[COVERAGE_COLUMN] = self._coverage(rows, table)
        if self.needs_neighbours:
            if self.neighbours is None or rows.query_embeddings is None:
                raise RuntimeError("the model reads neighbour features: they need the "
                                   "neighbour tables and the query embeddings")
            table.update(self.neighbours.columns(list(rows.queries), rows.query_embeddings,
                                                 rows.product_keys, rows.query_codes))
        table.update(derived_columns(table, self.spec.derived, rows.group, source=source))
        return table

    def _coverage(self, rows: KeyRows, table: dict[str, np.ndarray]) -> np.ndarray:
        """``lex_coverage`` per row: catalog products from the analysed catalog (one
        sparse lookup per distinct query), records from their own fields
        (:func:`ltr.features.text_match.coverage_column`); 0 for a product in neither."""
        n = len(rows.query_codes)
        out = np.zeros(n)
        codes = np.asarray(rows.query_codes, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(rows.queries) + 1))
        cat = np.asarray(rows.catalog_rows, dtype=np.int64)
        for q, query in enumerate(rows.queries):
            at = order[bounds[q]:bounds[q + 1]]
            at = at[cat[at] >= 0]
            if len(at):
                out[at] = self.catalog_tokens.coverage(str(query), cat[at])
        if rows.records:
            at = np.fromiter(rows.records, dtype=np.int64, count=len(rows.records))
            sub = {c: table[c][at] for c in (*self.schema.lexical_fields, "query")
                   if c in table}
            out[at] = coverage_column(sub, self.schema.lexical_fields, "request")
        return out
