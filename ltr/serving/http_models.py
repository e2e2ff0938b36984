"""The JSON bodies of ``ltr serve`` as pydantic models (published at ``/openapi.json``).

The models check the *shape* of a request only: which keys an object has, that
``products`` is a non-empty list of ids or records, that ``top_k`` is a positive integer.
Everything that needs the package (unknown ids, record fields and their types and
ranges, non-finite numbers, invalid Unicode, duplicates) stays with the service's own
checks (:mod:`ltr.serving.requests`, :mod:`ltr.serving.features`), which Python callers
go through too; a record's values are therefore typed here only for the schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    Tag,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

# A record value: the service checks each against the package's fields.
Scalar = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"},
                                                  {"type": "boolean"}, {"type": "null"}]})]
# Union tags: they appear in pydantic's error locations and are dropped from field names.
UNION_TAGS = frozenset({"id", "record"})


def _id(value: Any) -> int | str:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("id_type", "must be an id: a string or an integer")


Id = Annotated[int | str, PlainValidator(_id),
               WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]})]


class ProductRecord(BaseModel):
    """A product the catalog does not have (or an override of a catalog entry): its
    ``product_id`` and the product fields of the package's ``features.json``."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Scalar]
    product_id: Id


class CustomerRecord(BaseModel):
    """A customer's fields (those of the package's customer table)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Scalar]


def _kind(value: Any) -> str | None:
    """The union member a JSON value is validated as (None: no member fits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return "id"
    if isinstance(value, dict | BaseModel):
        return "record"
    return None


def _item(record: type[BaseModel], what: str) -> Any:
    return Annotated[
        Annotated[Id, Tag("id")] | Annotated[record, Tag("record")],
        Discriminator(_kind, custom_error_type=f"{what}_item",
                      custom_error_message=f"must be a {what} id (string or integer) or a "
                                           f"{what} record (object)")]


ProductItem = _item(ProductRecord, "product")
CustomerItem = _item(CustomerRecord, "customer")


class RankBody(BaseModel):
    """``POST /rank``: rank ``products`` for ``query`` (and ``customer``), best first."""

    model_config = ConfigDict(extra="forbid")
    query: StrictStr = Field(description="the search query (non-empty)")
    products: list[ProductItem] = Field(min_length=1, description="catalog product ids "
                                        "and/or full product records")
    customer: CustomerItem | None = Field(None, description="a customer id, a customer "
                                          "record, or null (anonymous)")
    top_k: Annotated[StrictInt, Field(gt=0)] | None = Field(
        None, description="return only the best top_k products (default: all)")

    def plain(self) -> dict[str, Any]:
        """The request as the service takes it (records as plain dicts)."""
        return {"query": self.query, "products": [_plain(p) for p in self.products],
                "customer": _plain(self.customer), "top_k": self.top_k}


class RankBatchBody(BaseModel):
    """``POST /rank_batch``: several requests scored in one model call."""

    model_config = ConfigDict(extra="forbid")
    requests: list[RankBody]


def _plain(value: Any) -> Any:
    if isinstance(value, ProductRecord):
        return {"product_id": value.product_id, **(value.model_extra or {})}
    if isinstance(value, CustomerRecord):
        return dict(value.model_extra or {})
    return value


class RankedProductOut(BaseModel):
    product_id: int | str
    score: float
    outputs: dict[str, float] = Field(description="the score of each task (model output)")


class RankingOut(BaseModel):
    """Products best first (ties keep request order)."""

    query: str
    products: list[RankedProductOut]


class RankingsOut(BaseModel):
    rankings: list[RankingOut]


class ErrorOut(BaseModel):
    """Every error: what is wrong, and where (``products[3].price``; null when the body as
    a whole is wrong)."""

    error: str
    field: str | None


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    kind: str
    outputs: list[str]
    catalog_products: int


def field_name(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """``("body", "products", 3, "record", "price")`` -> ``"products[3].price"``: the
    request field of a validation error's location (None: the body as a whole)."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    prev: Any = None
    prev2: Any = None
    for part in parts:
        # a union tag follows products[i] or customer
        is_tag = part in UNION_TAGS and (prev == "customer" or (
            isinstance(prev, int) and prev2 == "products"))
        if not is_tag:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        prev2, prev = prev, part
    return out or None
