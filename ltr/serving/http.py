"""``ltr serve DIR``: a model package over HTTP (FastAPI + uvicorn; ``pip install
'ltr[serve]'``).

Endpoints (request and response schemas at ``GET /openapi.json``, models in
:mod:`ltr.serving.http_models`):

* ``GET /health`` -> ``{"status": "ok", "kind", "outputs", "catalog_products", ...}``
* ``POST /rank`` with ``{"query": str, "products": [id | record, ...], "customer": id |
  record | null, "top_k": int | null}`` -> ``{"query", "products": [{"product_id",
  "score", "outputs": {task: score}}, ...]}`` best first
* ``POST /rank_batch`` with ``{"requests": [<rank body>, ...]}`` -> ``{"rankings": [...]}``

Every error answers ``{"error": message, "field": "products[3].price" | null}``: HTTP 422
for any invalid request (malformed JSON, wrong content type, wrong shape, a value the
package refuses), 404/405 for a wrong path or method, 500 (logged, no details sent) for
an internal failure. Pydantic checks the shape; the service's own checks (the same a
Python caller gets) check the values against the package.

Handlers are plain functions, which FastAPI runs in its thread pool: several requests are
ranked at once by the same (thread-safe) :class:`~ltr.serving.RankingService`.
``--workers N`` runs N worker processes (uvicorn's supervisor replaces one that dies),
each loading the package through :func:`app_from_env`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
from typing import Any

from ltr.serving.http_models import (
    ErrorOut,
    HealthOut,
    RankBatchBody,
    RankBody,
    RankingOut,
    RankingsOut,
    field_name,
)

# the app factory's settings, passed from `ltr serve` to its worker processes
ENV_PACKAGE = "LTR_SERVE_PACKAGE"
ENV_THREADS = "LTR_SERVE_THREADS"
ENV_MAX_CONCURRENT = "LTR_SERVE_MAX_CONCURRENT"

log = logging.getLogger("ltr.serving.http")
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "invalid request; `field` names where"},
    500: {"model": ErrorOut, "description": "internal error (logged by the server)"},
}


def _fastapi():
    try:
        import fastapi
    except ImportError as exc:  # pragma: no cover - depends on the install
        from ltr.errors import ConfigError

        raise ConfigError("serve", "the HTTP service needs the 'serve' extra: "
                          "pip install 'ltr[serve]'") from exc
    return fastapi


def _body_problem(err: dict[str, Any]) -> str:
    """The message of a validation error about the body as a whole."""
    kind, value = err.get("type"), err.get("input")
    if kind == "missing":
        return "request body is missing: send a JSON object"
    if isinstance(value, bytes | bytearray):
        return "request body must be JSON sent with 'Content-Type: application/json'"
    return f"request body must be a JSON object, got {type(value).__name__}"


def validation_error(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """``(message, field)`` of the first of FastAPI's validation errors."""
    if not errors:
        return "invalid request", None
    err = errors[0]
    loc = tuple(err.get("loc") or ())
    if err.get("type") == "json_invalid":
        ctx = err.get("ctx") or {}
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"request body is not valid JSON: {ctx.get('error', 'decode error')}{at}", None
    field = field_name(loc)
    if field is None:
        return _body_problem(err), None
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"request field '{field}': {err.get('msg', 'invalid')}{more}", field


def install_error_handlers(app) -> None:
    """Every error as ``{"error", "field"}`` (see the module docstring)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def answer(status: int, message: str, field: str | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "field": field}, status_code=status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError) -> JSONResponse:
        return answer(422, *validation_error(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI: a body json.loads refused beyond JSON syntax
            cause = exc.__cause__
            why = f": {type(cause).__name__}: {cause}" if cause else ""
            return answer(422, f"request body cannot be read as JSON{why}")
        return answer(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path,
                  type(exc).__name__, exc)
        return answer(500, f"internal error ({type(exc).__name__}); see the server log")


def create_app(service):
    """The FastAPI application serving ``service``."""
    fastapi = _fastapi()
    from fastapi.responses import JSONResponse

    from ltr import __version__
    from ltr.errors import LtrError

    version = service.manifest.get("versions", {}).get("ltr") or __version__
    app = fastapi.FastAPI(title="ltr ranking service", version=str(version))
    install_error_handlers(app)

    def refused(exc: LtrError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "field": getattr(exc, "field", None)},
                            status_code=422)

    @app.get("/health", response_model=HealthOut)
    def health() -> dict[str, Any]:
        return service.health()

    # handlers return the response themselves: the models document it, and the dicts
    # are serialised once, by the JSON encoder (no second validation)
    @app.post("/rank", response_model=RankingOut, responses=ERRORS)
    def rank(body: RankBody) -> Any:
        req = body.plain()
        try:
            ranking = service.rank(req["query"], req["products"], req["customer"],
                                   req["top_k"])
        except LtrError as exc:
            return refused(exc)
        return JSONResponse(ranking.to_dict())

    @app.post("/rank_batch", response_model=RankingsOut, responses=ERRORS)
    def rank_batch(body: RankBatchBody) -> Any:
        try:
            rankings = service.rank_batch([r.plain() for r in body.requests])
        except LtrError as exc:
            return refused(exc)
        return JSONResponse({"rankings": [r.to_dict() for r in rankings]})

    return app


def service_from_env():
    """The :class:`~ltr.serving.RankingService` of ``$LTR_SERVE_PACKAGE`` (threads:
    ``$LTR_SERVE_THREADS``, default 1; ``$LTR_SERVE_MAX_CONCURRENT``)."""
    from ltr.errors import ConfigError
    from ltr.serving.service import RankingService

    folder = os.environ.get(ENV_PACKAGE)
    if not folder:
        raise ConfigError(ENV_PACKAGE, "is not set: name the model package folder to serve")
    concurrent = os.environ.get(ENV_MAX_CONCURRENT)
    return RankingService(folder, num_threads=int(os.environ.get(ENV_THREADS) or 1),
                          max_concurrent=int(concurrent) if concurrent else None)


def app_from_env():
    """The app factory each worker process of ``ltr serve --workers N`` calls. A package
    it cannot load ends the worker with uvicorn's startup-failure status, which stops the
    master instead of restarting the worker in a loop."""
    from uvicorn.config import STARTUP_FAILURE

    try:
        service = service_from_env()
    except Exception as exc:  # noqa: BLE001 - any failure to load is a failed startup
        log.error("cannot load the model package: %s: %s", type(exc).__name__, exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    return create_app(service)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", help="model package folder written by `ltr export`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes, each with its own copy of the package (a "
                             "worker that dies is replaced)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads per worker (concurrency comes from "
                             "requests)")
    parser.add_argument("--max-concurrent", type=int, default=None,
                        help="requests scored at once per worker (default: the CPU count)")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ltr.errors import ConfigError

    if args.workers < 1:
        raise ConfigError("--workers", f"must be at least 1, got {args.workers}")
    os.environ[ENV_PACKAGE] = str(args.package)
    os.environ[ENV_THREADS] = str(args.threads)
    if args.max_concurrent:
        os.environ[ENV_MAX_CONCURRENT] = str(args.max_concurrent)
    if args.workers == 1:  # in this process: a broken package fails here, by name
        uvicorn.run(create_app(service_from_env()), host=args.host, port=args.port,
                    log_level=args.log_level)
        return 0
    from uvicorn.supervisors import Multiprocess

    from ltr.serving.manifest import verify_package

    verify_package(args.package)  # refuse a broken package before starting the workers
    # uvicorn.run(..., workers=N) without its listener's TCP_NODELAY loss (see below)
    config = uvicorn.Config("ltr.serving.http:app_from_env", factory=True,
                            workers=args.workers, host=args.host, port=args.port,
                            log_level=args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[tcp_listener(config.bind_socket())]).run()
    return 0


def tcp_listener(sock: socket.socket) -> socket.socket:
    """``sock`` with its protocol set to TCP. uvicorn's ``Config.bind_socket`` (the
    listener its worker processes share) leaves it 0, and asyncio turns on TCP_NODELAY
    only for accepted sockets that say TCP: with Nagle's algorithm on, every keep-alive
    request after the first waited ~40 ms for the client's delayed ACK (1 client: 18
    requests/s with 2 workers against 70-80 with 1; uvicorn issue #3149)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        inheritable = sock.get_inheritable()
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(inheritable)
    return sock
