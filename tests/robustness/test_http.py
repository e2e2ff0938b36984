"""Hostile HTTP bodies to ``ltr serve``: every bad request is answered 422 with
``{"error": ..., "field": ...}`` naming the field, never 500 or an HTML page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.robustness.harness import Case, check_message, params

IDS: list[int] = []  # filled from the package by the fixture


def http_case(id: str, what: str, send: Callable[[Any], Any], names: tuple[str, ...] = (),
              expect: str = "error") -> Case:
    """``send(client)`` returns the response; a bad body must get 422 whose error and
    field together name ``names``."""
    def run(client: Any) -> None:
        response = send(client)
        if expect == "accepted":
            assert response.status_code == 200, response.text
            return
        assert response.status_code == 422, f"{id}: {response.status_code} {response.text}"
        body = response.json()
        assert set(body) == {"error", "field"}, body
        check_message(case, f"{body['field']} {body['error']}")
    case = Case(id, "request", f"HTTP: {what}", expect, names, run)
    return case


def post(path: str, body: Callable[[], Any]) -> Callable[[Any], Any]:
    return lambda client: client.post(path, json=body())


def raw(path: str, content: bytes | str, ctype: str = "application/json"
        ) -> Callable[[Any], Any]:
    return lambda client: client.post(path, content=content, headers={"content-type": ctype})


def ok(**over: Any) -> dict[str, Any]:
    return {"query": "oak table", "products": IDS[:3], **over}


def record(**fields: Any) -> dict[str, Any]:
    return {"product_id": "new-1", "title": "walnut side table", "price": 120.0, **fields}


def with_price(literal: str) -> bytes:
    """A body whose third product is a record with ``price`` written as ``literal``
    (JSON text that Python's json module turns into inf or a 401-digit int)."""
    ids = ", ".join(str(i) for i in IDS[:2])
    return ('{"query": "oak", "products": [' + ids + ', {"product_id": "n", "title": "t", '
            '"price": ' + literal + '}]}').encode()


CASES = [
    http_case("http-valid", "a valid /rank body", post("/rank", ok), expect="accepted"),
    http_case("http-health", "GET /health", lambda c: c.get("/health"), expect="accepted"),
    http_case("http-openapi", "GET /openapi.json publishes the request models",
              lambda c: c.get("/openapi.json"), expect="accepted"),
    http_case("http-malformed-json", "a body that is not JSON",
              raw("/rank", b'{"query": "oak", "products": [1,'), ("JSON",)),
    http_case("http-body-list", "a JSON list instead of an object",
              post("/rank", lambda: [1, 2]), ("object",)),
    http_case("http-body-empty", "an empty body", raw("/rank", b""), ("body",)),
    http_case("http-text-plain", "a text/plain body",
              raw("/rank", '{"query": "oak"}', "text/plain"), ("body",)),
    http_case("http-missing-query", "no query", post("/rank", lambda: {"products": IDS[:2]}),
              ("query",)),
    http_case("http-unknown-key", "an unknown key 'limit'", post("/rank", lambda: ok(limit=3)),
              ("limit",)),
    http_case("http-products-empty", "products []", post("/rank", lambda: ok(products=[])),
              ("products",)),
    http_case("http-product-bad-item", "a product item 1.5",
              post("/rank", lambda: ok(products=[IDS[0], 1.5])), ("products[1]",)),
    http_case("http-price-text", "price 'abc' in a record",
              post("/rank", lambda: ok(products=[IDS[0], record(price="abc")])),
              ("products[1].price",)),
    http_case("http-price-1e400", "price 1e400 (overflows to infinity)",
              lambda c: c.post("/rank", content=with_price("1e400"),
                               headers={"content-type": "application/json"}),
              ("products[2].price",)),
    http_case("http-price-huge-int", "price 10**400 as a JSON integer",
              lambda c: c.post("/rank", content=with_price("1" + "0" * 400),
                               headers={"content-type": "application/json"}),
              ("products[2].price",)),
    http_case("http-price-negative", "price -5",
              post("/rank", lambda: ok(products=[IDS[0], record(price=-5)])),
              ("products[1].price",)),
    http_case("http-lone-surrogate", "a lone surrogate escaped in the query",
              raw("/rank", b'{"query": "oak \\ud800", "products": [1]}'), ("query",)),
    http_case("http-top-k-negative", "top_k -1", post("/rank", lambda: ok(top_k=-1)),
              ("top_k",)),
    http_case("http-unknown-product", "a product id the package does not know",
              post("/rank", lambda: ok(products=[IDS[0], 987654321])), ("products[1]",)),
    http_case("http-batch-bad-item", "/rank_batch whose second request has no query",
              post("/rank_batch", lambda: {"requests": [ok(), {"products": IDS[:2]}]}),
              ("requests[1]", "query")),
    http_case("http-batch-not-list", "/rank_batch with requests: {}",
              post("/rank_batch", lambda: {"requests": {}}), ("requests",)),
]


@pytest.fixture(scope="module")
def client(packages: dict[str, Any]) -> Any:
    from fastapi.testclient import TestClient

    from ltr.serving import RankingService
    from ltr.serving.http import create_app

    service = RankingService(packages["mmoe"][1])
    IDS[:] = [int(i) for i in service.catalog.columns["product_id"][:4]]
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("case", params(CASES))
def test_http(case: Case, client: Any) -> None:
    case.run(client)
