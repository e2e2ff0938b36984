"""Requests -> the padded lists every ranker scores (the training data contract).

A batch of requests is validated here (ids, records, customers) and turned into key rows;
the columns are built by the one join path of training and serving
(:class:`ltr.features.assemble.RowJoiner`: product, customer and history lookups,
coverage, neighbour and derived features), then the *same* fitted preprocessing
(:meth:`ltr.features.Preprocessor.transform`) runs and the rows are laid out with
:func:`ltr.data.pad_groups`.

Defaults for what a request leaves out, identical to training:

* product fields absent from a record, customer fields absent from a customer record,
  an anonymous or unknown customer, a (query, product) pair or product without history:
  *missing*. The preprocessor turns a missing numeric value into the training mean
  (0 after standardisation) plus its missing-indicator column where training had
  missing values, and a missing category into the *missing* embedding; derived match
  features are 0.
* a category value never seen in training: the *unknown* embedding.

A request is *warm* when one of its rows has (query, product) history, as a training list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.groups import pad_groups
from ltr.data.loaders import PRODUCT_RANGES
from ltr.features.assemble import KeyRows, RowJoiner, Schema
from ltr.features.preprocess import Preprocessor
from ltr.features.stores import ColumnStore, key_of, object_array
from ltr.serving.requests import RankRequest, RequestError, check_request, check_text
from ltr.training.lists import WARM_COLUMN, ListData


@dataclass
class AssembledBatch:
    lists: ListData  # one list per request, slots in request order
    queries: list[str]  # [R]
    product_ids: np.ndarray  # [N] object, row order (request after request)
    catalog_rows: np.ndarray  # [N] row in the packaged catalog, -1 for records
    records: dict[int, dict[str, Any]]  # row -> validated product record
    offsets: np.ndarray  # [R + 1]: request r holds rows offsets[r]:offsets[r + 1]
    query_embeddings: np.ndarray | None = None  # [R, d] frozen, when an embedder was given


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int | np.integer) and not isinstance(value, bool)


INT64 = (-(2**63), 2**63 - 1)


def check_id(value: Any, where: str) -> None:
    """A product or customer id sent in a request: a string of valid Unicode, or an
    integer that fits 64 bits (ids are echoed back in the response)."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise RequestError(where, "is an integer beyond 64 bits; send large ids as strings")


class RequestAssembler:
    """Builds :class:`AssembledBatch` for requests against one package's tables."""

    def __init__(self, schema: Schema, preprocessor: Preprocessor, catalog: ColumnStore,
                 customers: ColumnStore | None, pair_history: ColumnStore,
                 product_history: ColumnStore, needs_title: bool,
                 neighbours: Any = None) -> None:
        self.schema = schema
        self.pre = preprocessor
        self.joiner = RowJoiner(schema, preprocessor.spec, catalog, customers, pair_history,
                                product_history, neighbours)
        self.catalog = catalog
        self.customers = customers
        self.needs_title = needs_title
        numeric = set(schema.numeric_columns)
        product_fields = dict.fromkeys([*schema.product_columns, *schema.text_fields])
        self.product_fields = {c: ("number" if c in numeric else "value")
                               for c in product_fields if c != "product_id"}
        self.customer_fields = {c: ("number" if c in numeric else "value")
                                for c in schema.customer_columns if c != "customer_id"}

    # ------------------------------------------------------------------ records
    @staticmethod
    def _record(item: Mapping[str, Any], fields: dict[str, str], where: str,
                id_field: str | None, ranges: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
        """A validated record: known fields only; numbers finite, within a 64-bit float
        and within the catalog's ranges (``ranges``, as :func:`ltr.data.check_products`
        checks the catalog); text valid Unicode."""
        known = set(fields) | ({id_field} if id_field else set())
        for name, value in item.items():
            if name not in known:
                raise RequestError(f"{where}.{name}", f"unknown field; known: {sorted(known)}")
            if name == id_field:
                continue
            if value is None:
                continue
            if isinstance(value, str):
                check_text(value, f"{where}.{name}")
            if fields[name] == "number":
                if isinstance(value, str | bool) or not isinstance(value, int | float |
                                                                   np.number):
                    raise RequestError(f"{where}.{name}", f"expected a number or null, got "
                                       f"{value!r}")
                try:
                    number = float(value)
                except OverflowError:
                    raise RequestError(f"{where}.{name}", "is too large for a 64-bit "
                                       "float") from None
                if math.isnan(number):  # missing, as null
                    continue
                if math.isinf(number):
                    raise RequestError(f"{where}.{name}", f"must be finite, got {value!r}")
                rule = (ranges or {}).get(name)
                if rule is not None and not rule.ok(number):
                    raise RequestError(f"{where}.{name}", f"must be {rule.describe()} (as in "
                                       f"the catalog), got {value!r}")
            elif not isinstance(value, str | int | float | bool | np.number):
                raise RequestError(f"{where}.{name}", f"expected a string, number or null, "
                                   f"got {type(value).__name__}")
        return dict(item)

    def _product(self, item: Any, where: str) -> tuple[str, int, dict[str, Any] | None]:
        """``(key, catalog row or -1, record or None)`` of one ``products`` item."""
        if isinstance(item, Mapping):
            if "product_id" not in item or not _is_id(item["product_id"]):
                raise RequestError(f"{where}.product_id", "a product record needs a "
                                   "product_id (string or integer)")
            check_id(item["product_id"], f"{where}.product_id")
            record = self._record(item, self.product_fields, where, "product_id",
                                  PRODUCT_RANGES)
            title = record.get(self.schema.title_column)
            if self.needs_title and not (isinstance(title, str) and title.strip()):
                raise RequestError(f"{where}.{self.schema.title_column}", "missing: the model "
                                   "needs the product's text to encode it")
            return key_of(item["product_id"]), -1, record
        if not _is_id(item):
            raise RequestError(where, f"must be a product id (string or integer) or a record, "
                               f"got {type(item).__name__}")
        check_id(item, where)
        key = key_of(item)
        row = self.catalog.index.get(key, -1)
        if row < 0:
            raise RequestError(where, f"unknown product id {item!r}: not in the packaged "
                               f"catalog ({len(self.catalog):,} products); send the full "
                               "product record instead")
        return key, row, None

    def _customer(self, customer: Any, where: str) -> tuple[int, dict[str, Any] | None]:
        if customer is None:
            return -1, None
        if isinstance(customer, Mapping):
            return -1, self._record(customer, self.customer_fields, where, "customer_id")
        if not _is_id(customer):
            raise RequestError(where, "must be null, a customer id (string or integer) or a "
                               f"record, got {type(customer).__name__}")
        if self.customers is None:
            raise RequestError(where, "this package was exported without its customer table: "
                               "send the customer's record instead of an id")
        return self.customers.index.get(key_of(customer), -1), None

    # ------------------------------------------------------------------ assembly
    def assemble(self, requests: list[RankRequest], prefix: str = "",
                 embed: Callable[[list[str]], np.ndarray] | None = None) -> AssembledBatch:
        """Validate ``requests`` and lay them out as lists. ``embed`` (query texts -> the
        frozen encoder's ``[R, d]`` embeddings) is called once the requests are valid; the
        neighbour features need it."""
        keys: list[str] = []
        cat_rows: list[int] = []
        records: dict[int, dict[str, Any]] = {}
        counts = np.zeros(len(requests), dtype=np.int64)
        cust_rows = np.full(len(requests), -1, dtype=np.int64)
        cust_records: dict[int, dict[str, Any]] = {}
        queries: list[str] = []
        for r, req in enumerate(requests):
            where = f"{prefix}[{r}]." if prefix else ""
            check_request(req, where)
            seen: dict[str, int] = {}
            for i, item in enumerate(req.products):
                key, row, record = self._product(item, f"{where}products[{i}]")
                if key in seen:
                    raise RequestError(f"{where}products[{i}]", f"duplicate product id {key!r} "
                                       f"(also products[{seen[key]}])")
                seen[key] = i
                if record is not None:
                    records[len(keys)] = record
                keys.append(key)
                cat_rows.append(row)
            counts[r] = len(req.products)
            cust_rows[r], record = self._customer(req.customer, f"{where}customer")
            if record is not None:
                cust_records[r] = record
            queries.append(req.query)
        rows = np.asarray(cat_rows, dtype=np.int64)
        group = np.repeat(np.arange(len(requests)), counts)
        q_emb = embed(queries) if embed is not None else None
        codes, distinct = pd.factorize(np.asarray(queries, dtype=object))
        first = np.unique(codes, return_index=True)[1]
        key_rows = KeyRows(
            queries=[str(q) for q in distinct], query_codes=codes[group],
            catalog_rows=rows, product_keys=np.asarray(keys, dtype=object),
            customer_rows=cust_rows, customer_of_row=group, group=group,
            query_embeddings=None if q_emb is None else q_emb[first],
            records=records, customer_records=cust_records)
        table = self.joiner.columns(key_rows, "request")
        warm = np.zeros(len(requests), dtype=bool)
        if WARM_COLUMN in table:  # a request with (query, product) history is warm
            np.logical_or.at(warm, group, ~pd.isna(table[WARM_COLUMN]))
        numeric, categorical = self.pre.transform(table, "request")
        layout = pad_groups(group)
        product_ids = object_array(self.catalog.columns["product_id"][np.maximum(rows, 0)]
                                   if len(self.catalog) else [None] * len(rows))
        for n, record in records.items():
            product_ids[n] = record["product_id"]
        lists = ListData(
            keys=np.arange(len(requests)),
            numeric=layout.gather(numeric, fill=0.0),
            categorical=layout.gather(categorical, fill=0),
            query_text=np.arange(len(requests), dtype=np.int64),
            product_text=layout.gather(np.arange(len(rows), dtype=np.int64), fill=0),
            position=np.zeros(layout.shape, dtype=np.int64),
            mask=layout.mask,
            product_id=layout.gather(product_ids, fill=None),
            labels={},
            warm=warm,
        )
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return AssembledBatch(lists, queries, product_ids, rows, records, offsets, q_emb)

    def record_texts(self, records: dict[int, dict[str, Any]]) -> dict[int, str]:
        """The product text of each record (:func:`ltr.text.product_text`, as in training)."""
        from ltr.text import product_text

        if not records:
            return {}
        fields = self.schema.text_fields
        frame = pd.DataFrame([{c: rec.get(c) for c in fields} for rec in records.values()],
                             columns=fields)
        texts = product_text(frame, fields[1:], title_column=self.schema.title_column,
                             separator=self.schema.text_separator)
        return dict(zip(records, texts.astype(str).tolist(), strict=True))
