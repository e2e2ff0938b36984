"""The data contract: which columns each input table has, and their kinds.

Three inputs, each CSV/TSV or Parquet:

``products``
    product_id, title, category (a path such as ``Furniture / Beds``), brand, price,
    rating, review_count; optional description and any other numeric or categorical
    attribute columns.
``customers``
    customer_id plus numeric/categorical attributes (segment, tenure_days,
    price_sensitivity, ...).
``impressions`` (the search log)
    one row per product shown: session_id, timestamp, customer_id, query, product_id,
    position (1-based), clicked, added_to_cart, purchased (0/1); optional extra columns.

Kinds: ``id`` (int or str, no missing), ``text`` (str, no missing), ``int``, ``float``
(finite), ``binary`` (0/1 or bool), ``datetime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | text | int | float | binary | datetime | category
    required: bool = True
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def required(self) -> list[Column]:
        return [c for c in self.columns if c.required]

    @property
    def optional(self) -> list[Column]:
        return [c for c in self.columns if not c.required]


PRODUCTS = TableSchema(
    name="products",
    key=("product_id",),
    columns=(
        Column("product_id", "id", doc="unique product identifier"),
        Column("title", "text", doc="product name shown in search"),
        Column("category", "text", nullable=True, doc="category path, ' / '-separated"),
        Column("brand", "category", nullable=True),
        Column("price", "float", doc="price in shop currency, > 0"),
        Column("rating", "float", nullable=True, doc="mean review rating, 1..5"),
        Column("review_count", "int", doc="number of reviews, >= 0"),
        Column("description", "text", required=False, nullable=True),
    ),
)

CUSTOMERS = TableSchema(
    name="customers",
    key=("customer_id",),
    columns=(Column("customer_id", "id"),),
)

IMPRESSIONS = TableSchema(
    name="impressions",
    key=("session_id", "position"),
    columns=(
        Column("session_id", "id"),
        Column("timestamp", "datetime"),
        Column("customer_id", "id"),
        Column("query", "text"),
        Column("product_id", "id"),
        Column("position", "int", doc="1-based rank at which the product was shown"),
        Column("clicked", "binary"),
        Column("added_to_cart", "binary"),
        Column("purchased", "binary"),
    ),
)

JUDGEMENTS = TableSchema(
    name="judgements",
    key=("query", "product_id"),
    columns=(
        Column("query", "text"),
        Column("product_id", "id"),
        Column("grade", "int", doc="graded human relevance, 0 = irrelevant"),
    ),
)

BINARY_OUTCOMES = ("clicked", "added_to_cart", "purchased")
