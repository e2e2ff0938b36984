"""``ltr serve DIR``: a model package over HTTP (FastAPI + uvicorn; ``pip install
'ltr[serve]'``).

Endpoints:

* ``GET /health`` -> ``{"status": "ok", "kind", "outputs", "catalog_products", ...}``
* ``POST /rank`` with ``{"query": str, "products": [id | record, ...], "customer": id |
  record | null, "top_k": int | null}`` -> ``{"query", "products": [{"product_id",
  "score", "outputs": {task: score}}, ...]}`` best first
* ``POST /rank_batch`` with ``{"requests": [<rank body>, ...]}`` -> ``{"rankings": [...]}``

An invalid request gets HTTP 422 with ``{"error": message, "field": "products[3].price"}``.
Handlers are plain functions, which FastAPI runs in its thread pool: several requests are
ranked at once by the same (thread-safe) :class:`~ltr.serving.RankingService`.
"""

from __future__ import annotations

import argparse
from typing import Any


def create_app(service):
    """The FastAPI application serving ``service``."""
    try:
        from fastapi import Body, FastAPI
        from fastapi.responses import JSONResponse
    except ImportError as exc:  # pragma: no cover - depends on the install
        from ltr.errors import ConfigError

        raise ConfigError("serve", "the HTTP service needs the 'serve' extra: "
                          "pip install 'ltr[serve]'") from exc
    from ltr.errors import LtrError
    from ltr.serving.requests import RequestError, as_request

    app = FastAPI(title="ltr ranking service", version=str(service.manifest.get("versions", {})
                                                           .get("ltr", "")))

    def error(exc: LtrError) -> JSONResponse:
        field = getattr(exc, "field", None)
        return JSONResponse({"error": str(exc), "field": field},
                            status_code=422 if isinstance(exc, RequestError) else 400)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return service.health()

    @app.post("/rank")
    def rank(body: Any = Body(...)) -> Any:  # noqa: B008 - FastAPI's idiom
        try:
            req = as_request(body)
            return service.rank(req.query, req.products, req.customer, req.top_k).to_dict()
        except LtrError as exc:
            return error(exc)

    @app.post("/rank_batch")
    def rank_batch(body: Any = Body(...)) -> Any:  # noqa: B008
        try:
            if not isinstance(body, dict) or set(body) != {"requests"}:
                raise RequestError("requests", "send {\"requests\": [<rank request>, ...]}")
            return {"rankings": [r.to_dict() for r in service.rank_batch(body["requests"])]}
        except LtrError as exc:
            return error(exc)

    return app


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", help="model package folder written by `ltr export`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (concurrency comes from requests)")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ltr.serving.service import RankingService

    service = RankingService(args.package, num_threads=args.threads)
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level=args.log_level)
    return 0
