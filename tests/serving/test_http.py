"""``ltr serve``: the FastAPI app under a real uvicorn server on localhost, called with a
real HTTP client."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(packages):
    from ltr.serving import RankingService
    from ltr.serving.http import create_app

    service = RankingService(packages["mmoe"][1])
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", service
    srv.should_exit = True
    thread.join(timeout=10)


def test_health_and_rank_over_http(server, serving_data):
    url, service = server
    _, data = serving_data
    from ltr.serving.export import parity_requests

    (req,), _ = parity_requests(data.pools, data, 1)
    with httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["kind"] == "mmoe"
        body = {"query": req.query, "products": req.products, "top_k": 3}
        got = client.post("/rank", json=body)
        assert got.status_code == 200
        want = service.rank(req.query, req.products, top_k=3).to_dict()
        assert got.json() == want
        batch = client.post("/rank_batch", json={"requests": [body, body]})
        assert batch.status_code == 200 and batch.json()["rankings"] == [want, want]


@pytest.mark.parametrize("body,field", [
    ({"query": "bed", "products": []}, "products"),
    ({"query": "bed", "products": [-999]}, "products[0]"),
    ({"query": "bed"}, "products"),
    ({"query": "bed", "products": [{"product_id": "x", "title": "t", "price": "a"}]},
     "products[0].price"),
    ({"query": "  ", "products": [1]}, "query"),
    ({"query": "bed", "products": [1], "colour": "red"}, "colour"),
    ({"query": "bed", "products": [1], "top_k": 0}, "top_k"),
    ({"query": "bed", "products": [1], "top_k": "3"}, "top_k"),
    ({"query": "bed", "products": [1], "top_k": True}, "top_k"),
    ({"query": "bed", "products": [1.5]}, "products[0]"),
    ({"query": "bed", "products": [{"title": "t"}]}, "products[0].product_id"),
    ({"query": "bed", "products": [{"product_id": "x", "title": "t", "price": -5}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "x", "title": "t", "price": {"a": 1}}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "x", "title": "t", "size": 3}]},
     "products[0].size"),
    ({"query": 5, "products": [1]}, "query"),
    ({"query": "bed", "products": [1], "customer": [1]}, "customer"),
])
def test_bad_requests_get_422_naming_the_field(server, body, field):
    url, _ = server
    resp = httpx.post(f"{url}/rank", json=body, timeout=30)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field
    assert set(resp.json()) == {"error", "field"} and field in resp.json()["error"]


def _record(service, price: str) -> str:
    """A JSON product record with ``price`` written verbatim (numbers json.dumps cannot
    write)."""
    title = service.schema.title_column
    return f'{{"product_id": "new-1", "{title}": "grey sofa", "price": {price}}}'


@pytest.mark.parametrize("raw,field,says", [
    ('{"query": "bed", "products": [', None, "not valid JSON"),
    ('{"query": "bed" "products": [1]}', None, "not valid JSON"),
    ("[1, 2]", None, "JSON object"),
    ('"bed"', None, "JSON object"),
    ("null", None, "JSON object"),
    ('{"query": "bed", "products": [RECORD_1e400]}', "products[0].price", "finite"),
    ('{"query": "bed", "products": [RECORD_-1e400]}', "products[0].price", "finite"),
    ('{"query": "bed", "products": [RECORD_HUGE]}', "products[0].price", "64-bit"),
    ('{"query": "bed", "products": [RECORD_NAN]}', "products[0].price", "-"),
    ('{"query": "bed", "products": [1], "top_k": 1e400}', "top_k", "integer"),
    ('{"query": "bed", "products": [1], "top_k": HUGE}', None, "-"),
    ('{"query": "bed", "products": [1], "top_k": ENORMOUS}', None, "cannot be read"),
    ('{"query": "\\ud800", "products": [1]}', "query", "Unicode"),
    ('{"query": "bed", "products": ["\\udfff"]}', "products[0]", "Unicode"),
    ('{"query": "bed", "products": [RECORD_SURROGATE]}', "products[0].title", "Unicode"),
    ('{"query": "bed", "products": [RECORD_SURROGATE_ID]}', "products[0].product_id",
     "Unicode"),
    ('{"query": "bed", "products": [RECORD_HUGE_ID]}', "products[0].product_id", "64 bits"),
])
def test_raw_bodies_get_422(server, serving_data, raw, field, says):
    """Bodies a JSON encoder would not write: broken JSON, numbers beyond a float or a
    64-bit int, a lone surrogate."""
    url, service = server
    title = service.schema.title_column
    raw = (raw.replace("RECORD_SURROGATE_ID", _record(service, "10").replace(
                       '"new-1"', '"new \\ud800"'))
           .replace("RECORD_HUGE_ID", _record(service, "10").replace('"new-1"', str(10**400)))
           .replace("RECORD_SURROGATE", _record(service, "10").replace(
                       '"grey sofa"', '"sofa \\ud800"'))
           .replace("RECORD_HUGE", _record(service, str(10 ** 400)))
           .replace("RECORD_NAN", _record(service, "NaN"))
           .replace("RECORD_-1e400", _record(service, "-1e400"))
           .replace("RECORD_1e400", _record(service, "1e400"))
           .replace("ENORMOUS", "9" * 5000).replace("HUGE", str(10 ** 400))
           .replace("[1]", json.dumps([service.catalog.columns["product_id"][0]])))
    resp = httpx.post(f"{url}/rank", content=raw.encode(),
                      headers={"content-type": "application/json"}, timeout=30)
    if says == "-":  # NaN is missing (as null), a huge top_k is all products: both served
        assert resp.status_code == 200, resp.text
        return
    assert resp.status_code == 422, resp.text
    got = resp.json()
    assert got["field"] == (field.replace("title", title) if field else None)
    assert says in got["error"], got


@pytest.mark.parametrize("content,headers,says", [
    (b'{"query": "bed", "products": [1]}', {"content-type": "text/plain"}, "Content-Type"),
    (b'{"query": "bed", "products": [1]}', {}, "Content-Type"),
    (b"", {"content-type": "application/json"}, "missing"),
    (b'{"query": "\xff"}', {"content-type": "application/json"}, "cannot be read"),
    (b"\xff\xfe{}", {"content-type": "application/json"}, "JSON"),
])
def test_unreadable_bodies_get_422(server, content, headers, says):
    url, _ = server
    with httpx.Client(timeout=30) as client:
        resp = client.post(f"{url}/rank", content=content, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] is None and says in resp.json()["error"], resp.json()


def test_batch_errors_name_the_request(server):
    url, service = server
    good = {"query": "bed", "products": [service.catalog.columns["product_id"][0]]}
    title = service.schema.title_column
    cases = [
        ({"requests": [good, {"products": [1]}]}, "requests[1].query"),
        ({"requests": [good, {**good, "top_k": -1}]}, "requests[1].top_k"),
        ({"requests": [good, {**good, "query": ""}]}, "requests[1].query"),
        ({"requests": [good, good, {**good, "products": [
            {"product_id": "n", title: "t", "price": 0}]}]}, "requests[2].products[0].price"),
        ({"requests": [good, {**good, "products": [-999]}]}, "requests[1].products[0]"),
        ({"requests": [good], "extra": 1}, "extra"),
        ({"requests": good}, "requests"),
        ({}, "requests"),
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        for body, field in cases:
            resp = client.post("/rank_batch", json=body)
            assert resp.status_code == 422, (body, resp.text)
            assert resp.json()["field"] == field, (body, resp.json())
        assert client.post("/rank_batch", json={"requests": []}).json() == {"rankings": []}


def test_wrong_path_and_method_keep_the_error_shape(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as client:
        missing = client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["field"] is None
        wrong = client.get("/rank")
        assert wrong.status_code == 405 and set(wrong.json()) == {"error", "field"}


def test_openapi_publishes_the_models(server):
    url, _ = server
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    schemas = spec["components"]["schemas"]
    assert {"RankBody", "RankBatchBody", "RankingOut", "RankingsOut", "ErrorOut",
            "ProductRecord", "CustomerRecord"} <= set(schemas)
    assert schemas["RankBody"]["additionalProperties"] is False
    assert set(schemas["RankBody"]["required"]) == {"query", "products"}
    rank = spec["paths"]["/rank"]["post"]
    body = rank["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/RankBody")
    ok = rank["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/RankingOut")
    assert rank["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/ErrorOut")
    batch = spec["paths"]["/rank_batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["$ref"].endswith("/RankBatchBody")


class _BrokenService:
    manifest: dict = {}

    def health(self) -> dict:
        return {"status": "ok", "kind": "x", "outputs": [], "catalog_products": 0}

    def rank(self, *args, **kwargs):
        raise RuntimeError("secret internal detail")


def test_internal_errors_answer_500_json_and_are_logged(caplog):
    from fastapi.testclient import TestClient

    from ltr.serving.http import create_app

    client = TestClient(create_app(_BrokenService()), raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="ltr.serving.http"):
        resp = client.post("/rank", json={"query": "bed", "products": [1]})
    assert resp.status_code == 500
    assert resp.json() == {"error": "internal error (RuntimeError); see the server log",
                           "field": None}
    assert "secret internal detail" in caplog.text


def test_concurrent_http_callers(server, serving_data):
    url, service = server
    _, data = serving_data
    from ltr.serving.export import parity_requests

    reqs, _ = parity_requests(data.pools, data, 4)
    want = [service.rank(r.query, r.products).to_dict() for r in reqs]
    got: dict[int, dict] = {}

    def call(i: int) -> None:
        r = reqs[i % len(reqs)]
        got[i] = httpx.post(f"{url}/rank", json={"query": r.query, "products": r.products},
                            timeout=60).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert got[i] == want[i % len(reqs)]


def test_a_worker_that_cannot_load_the_package_fails_startup(tmp_path, monkeypatch, caplog):
    """uvicorn's supervisor restarts a worker that dies, except one that exits with its
    startup-failure status: a broken package stops `ltr serve` instead of looping."""
    from uvicorn.config import STARTUP_FAILURE

    from ltr.serving.http import ENV_PACKAGE, app_from_env

    monkeypatch.setenv(ENV_PACKAGE, str(tmp_path / "no-package"))
    with caplog.at_level("ERROR", logger="ltr.serving.http"), \
            pytest.raises(SystemExit) as exit_info:
        app_from_env()
    assert exit_info.value.code == STARTUP_FAILURE
    assert "no-package" in caplog.text
    monkeypatch.delenv(ENV_PACKAGE)
    with pytest.raises(SystemExit):
        app_from_env()


def test_the_workers_listener_says_tcp_so_connections_get_nodelay():
    """uvicorn's shared listener has proto 0, so asyncio left Nagle on for every
    connection: ~40 ms per keep-alive request with --workers 2 (uvicorn issue #3149)."""
    import asyncio
    import socket

    from ltr.serving.http import tcp_listener

    config = uvicorn.Config("ltr.serving.http:app_from_env", factory=True, workers=2,
                            host="127.0.0.1", port=_free_port())
    raw = config.bind_socket()
    assert raw.proto == 0  # uvicorn's own: if this fails, uvicorn fixed it
    sock = tcp_listener(raw)
    nodelay: list[int] = []

    async def accept_one() -> None:
        def made(transport) -> None:
            conn = transport.get_extra_info("socket")
            nodelay.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

        proto = type("P", (asyncio.Protocol,), {"connection_made": lambda self, t: made(t)})
        server = await asyncio.get_running_loop().create_server(proto, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for _ in range(100):
            if nodelay:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        asyncio.run(accept_one())
    finally:
        sock.close()
    assert nodelay and nodelay[0] != 0
