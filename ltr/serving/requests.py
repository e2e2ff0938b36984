"""Ranking requests and results, and the checks every request goes through.

A request is ``(query, products, customer=None, top_k=None)``:

* ``query``: non-empty text;
* ``products``: non-empty list; each item is a product id of the packaged catalog
  (``123`` or ``"123"``) or a full record ``{"product_id": ..., "title": ..., <product
  fields>}`` for a product the package has never seen (or to override a catalog entry);
* ``customer``: ``None`` (anonymous), a customer id of the packaged customer table (an
  id it does not know is served as an unknown customer, like a new shopper in training),
  or a record ``{<customer fields>}``;
* ``top_k``: return only the best ``top_k`` products (default: all).

Invalid requests raise :class:`RequestError` naming the field, e.g.
``products[3].price``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltr.errors import LtrError
from ltr.features.stores import plain

REQUEST_KEYS = ("query", "products", "customer", "top_k")


class RequestError(LtrError, ValueError):
    """A ranking request is invalid. ``field`` names where (``products[2].price``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"request field '{field}': {problem}")


@dataclass(frozen=True)
class RankRequest:
    query: str
    products: Sequence[Any]
    customer: Any = None
    top_k: int | None = None


@dataclass(frozen=True)
class RankedProduct:
    product_id: Any
    score: float
    outputs: dict[str, float] = field(default_factory=dict)  # per task (or model output)

    def to_dict(self) -> dict[str, Any]:
        return {"product_id": plain(self.product_id), "score": self.score,
                "outputs": dict(self.outputs)}


@dataclass(frozen=True)
class Ranking:
    """Products ordered by score (best first; ties keep request order)."""

    query: str
    products: list[RankedProduct]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "products": [p.to_dict() for p in self.products]}

    @property
    def product_ids(self) -> list[Any]:
        return [p.product_id for p in self.products]


def as_request(value: RankRequest | Mapping[str, Any], where: str = "request") -> RankRequest:
    """A :class:`RankRequest` from itself or a mapping with :data:`REQUEST_KEYS`."""
    if isinstance(value, RankRequest):
        return value
    if not isinstance(value, Mapping):
        raise RequestError(where, f"expected an object with {list(REQUEST_KEYS)}, got "
                           f"{type(value).__name__}")
    unknown = sorted(set(value) - set(REQUEST_KEYS))
    if unknown:
        raise RequestError(f"{where}.{unknown[0]}" if where != "request" else unknown[0],
                           f"unknown field; known: {list(REQUEST_KEYS)}")
    for key in ("query", "products"):
        if key not in value:
            raise RequestError(f"{where}.{key}" if where != "request" else key, "missing")
    return RankRequest(value["query"], value["products"], value.get("customer"),
                       value.get("top_k"))


def check_text(value: str, where: str) -> None:
    """Refuse a string that is not valid Unicode (a lone surrogate cannot be encoded)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(where, f"is not valid Unicode text ({exc.reason} at character "
                           f"{exc.start})") from None


def check_request(req: RankRequest, prefix: str = "") -> None:
    """Shape checks that need no package knowledge (query, products list, top_k)."""
    if not isinstance(req.query, str) or not req.query.strip():
        raise RequestError(f"{prefix}query", f"must be a non-empty string, got {req.query!r}")
    check_text(req.query, f"{prefix}query")
    if isinstance(req.products, str | bytes | Mapping) or not isinstance(req.products,
                                                                       Sequence):
        raise RequestError(f"{prefix}products", "must be a list of product ids or records, "
                           f"got {type(req.products).__name__}")
    if len(req.products) == 0:
        raise RequestError(f"{prefix}products", "is empty: nothing to rank")
    k = req.top_k
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise RequestError(f"{prefix}top_k", f"must be a positive integer or null, got {k!r}")
