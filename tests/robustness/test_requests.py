"""Hostile ranking requests to a loaded package (the Python API every transport uses):
each bad one is a :class:`~ltr.serving.RequestError` naming the request field
(``products[1].price``), never a crash, a NaN score or a silently defaulted value."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from ltr.serving import RankingService
from tests.robustness.harness import Case, expect_outcome, params


class Ctx:
    """The service and a few valid parts of a request to break."""

    def __init__(self, service: RankingService) -> None:
        self.service = service
        self.ids = [int(i) for i in service.catalog.columns["product_id"][:4]]
        self.customer = service.assembler.customers.columns["customer_id"][0]

    def record(self, **fields: Any) -> dict[str, Any]:
        """A new product's record: title, price and the overrides."""
        return {"product_id": "new-1", "title": "walnut side table", "price": 120.0,
                **fields}


def request_case(id: str, what: str, call: Callable[[Ctx], Any], names: tuple[str, ...] = (),
                 expect: str = "error") -> Case:
    def run(ctx: Ctx) -> None:
        ranking = expect_outcome(case, lambda: call(ctx))
        if expect == "accepted":
            rankings = ranking if isinstance(ranking, list) else [ranking]
            for r in rankings:
                assert all(math.isfinite(p.score) for p in r.products), id
    case = Case(id, "request", what, expect, names, run)
    return case


def rank(query: Any = "oak table", products: Callable[[Ctx], Any] | None = None,
         customer: Callable[[Ctx], Any] | None = None, top_k: Any = None
         ) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        return ctx.service.rank(query, products(ctx) if products else ctx.ids,
                                customer(ctx) if customer else None, top_k)
    return call


def with_record(**fields: Any) -> Callable[[Ctx], Any]:
    return rank(products=lambda c: [*c.ids[:2], c.record(**fields)])


CASES = [
    request_case("request-valid", "ids, a new product record and a known customer",
                 rank(products=lambda c: [*c.ids, c.record()], customer=lambda c: c.customer),
                 expect="accepted"),
    request_case("request-query-empty", "query ''", rank(query=""), ("query",)),
    request_case("request-query-blank", "query '   '", rank(query="   "), ("query",)),
    request_case("request-query-number", "query 42", rank(query=42), ("query",)),
    request_case("request-query-none", "query null", rank(query=None), ("query",)),
    request_case("request-query-lone-surrogate", "a lone surrogate in the query",
                 rank(query="oak \ud800 table"), ("query", "Unicode")),
    request_case("request-query-very-long", "a 20,000-character query (truncated by the "
                 "tokenizer)", rank(query="oak " * 5000), expect="accepted"),
    request_case("request-query-emoji", "a query in emoji and CJK", rank(query="🪑 椅子"),
                 expect="accepted"),
    request_case("request-products-empty", "products []", rank(products=lambda c: []),
                 ("products", "empty")),
    request_case("request-products-string", "products 'abc'",
                 rank(products=lambda c: "abc"), ("products",)),
    request_case("request-products-mapping", "products {}",
                 rank(products=lambda c: {"a": 1}), ("products",)),
    request_case("request-product-unknown-id", "a product id not in the catalog",
                 rank(products=lambda c: [c.ids[0], 987654321]), ("products[1]",
                                                                  "987654321")),
    request_case("request-product-id-as-string", "known ids sent as strings",
                 rank(products=lambda c: [str(i) for i in c.ids]), expect="accepted"),
    request_case("request-product-float-id", "a product id 1.5",
                 rank(products=lambda c: [c.ids[0], 1.5]), ("products[1]",)),
    request_case("request-product-bool-id", "a product id true",
                 rank(products=lambda c: [c.ids[0], True]), ("products[1]",)),
    request_case("request-product-nested-list", "a list inside products",
                 rank(products=lambda c: [c.ids[0], [1, 2]]), ("products[1]",)),
    request_case("request-product-duplicate", "one product twice",
                 rank(products=lambda c: [c.ids[0], c.ids[0]]), ("products[1]",
                                                                  "duplicate")),
    request_case("request-record-no-id", "a product record without product_id",
                 rank(products=lambda c: [{"title": "x", "price": 3.0}]),
                 ("products[0].product_id",)),
    request_case("request-record-id-surrogate", "a record's product_id with a lone "
                 "surrogate (ids are echoed back)",
                 rank(products=lambda c: [c.record(product_id="new \udcff")]),
                 ("products[0].product_id", "Unicode")),
    request_case("request-record-id-huge", "a record's product_id 10**400",
                 rank(products=lambda c: [c.record(product_id=10**400)]),
                 ("products[0].product_id", "64 bits")),
    request_case("request-record-no-title", "a new product record without a title",
                 rank(products=lambda c: [{"product_id": "n", "price": 3.0}]),
                 ("products[0].title",)),
    request_case("request-record-unknown-field", "a record field the model never saw",
                 with_record(colour="red"), ("products[2].colour", "unknown field")),
    request_case("request-price-negative", "price -5", with_record(price=-5),
                 ("products[2].price",)),
    request_case("request-price-zero", "price 0", with_record(price=0),
                 ("products[2].price",)),
    request_case("request-price-inf", "price inf", with_record(price=math.inf),
                 ("products[2].price", "finite")),
    request_case("request-price-nan", "price NaN from Python (pandas' missing marker: "
                 "served as missing, like null)", with_record(price=math.nan),
                 expect="accepted"),
    request_case("request-price-huge-int", "price 10**400 (no float holds it)",
                 with_record(price=10**400), ("products[2].price",)),
    request_case("request-price-text", "price 'abc'", with_record(price="abc"),
                 ("products[2].price",)),
    request_case("request-price-bool", "price true", with_record(price=True),
                 ("products[2].price",)),
    request_case("request-price-null", "price null (served as missing, as in training)",
                 with_record(price=None), expect="accepted"),
    request_case("request-rating-50", "rating 50 on a 1-5 scale", with_record(rating=50),
                 ("products[2].rating",)),
    request_case("request-review-count-negative", "review_count -3",
                 with_record(review_count=-3), ("products[2].review_count",)),
    request_case("request-title-surrogate", "a lone surrogate in a record's title",
                 with_record(title="bad \udfff title"), ("products[2].title",)),
    request_case("request-title-number", "a record title 42", with_record(title=42),
                 ("products[2].title",)),
    request_case("request-customer-unknown-id", "a customer id the package does not know "
                 "(served as a new shopper)", rank(customer=lambda c: "never-seen"),
                 expect="accepted"),
    request_case("request-customer-list", "customer [1, 2]", rank(customer=lambda c: [1, 2]),
                 ("customer",)),
    request_case("request-customer-record-unknown-field", "a customer record with a "
                 "field the model never saw", rank(customer=lambda c: {"shoe_size": 42}),
                 ("customer.shoe_size",)),
    request_case("request-top-k-zero", "top_k 0", rank(top_k=0), ("top_k",)),
    request_case("request-top-k-text", "top_k '3'", rank(top_k="3"), ("top_k",)),
    request_case("request-top-k-bool", "top_k true", rank(top_k=True), ("top_k",)),
    request_case("request-top-k-beyond", "top_k larger than the list (all returned)",
                 rank(top_k=1000), expect="accepted"),
    request_case("request-batch-one-bad", "a batch whose second request has no query",
                 lambda c: c.service.rank_batch([{"query": "oak", "products": c.ids},
                                                 {"products": c.ids}]),
                 ("requests[1].query",)),
    request_case("request-batch-unknown-key", "a batch request with 'limit'",
                 lambda c: c.service.rank_batch([{"query": "oak", "products": c.ids,
                                                  "limit": 3}]), ("limit",)),
    request_case("request-batch-not-list", "rank_batch of a mapping",
                 lambda c: c.service.rank_batch({"query": "oak"}), ("requests",)),
    request_case("request-batch-empty", "rank_batch([]) (nothing to do)",
                 lambda c: c.service.rank_batch([]), expect="accepted"),
]


@pytest.fixture(scope="module")
def ctx(packages: dict[str, Any]) -> Ctx:
    return Ctx(RankingService(packages["mmoe"][1]))


@pytest.mark.parametrize("case", params(CASES))
def test_request(case: Case, ctx: Ctx) -> None:
    case.run(ctx)
