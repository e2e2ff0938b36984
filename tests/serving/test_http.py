"""``ltr serve``: the FastAPI app under a real uvicorn server on localhost, called with a
real HTTP client."""

from __future__ import annotations

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
])
def test_bad_requests_get_422_naming_the_field(server, body, field):
    url, _ = server
    resp = httpx.post(f"{url}/rank", json=body, timeout=30)
    assert resp.status_code == 422
    assert resp.json()["field"] == field


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
