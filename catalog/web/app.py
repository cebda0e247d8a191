"""The web application: one :class:`UI` (a Catalog and a lock), pages, a JSON API.

The server owns its own projection file (docs/design.md, "One writer per DuckDB
file") and keeps it open. DuckDB connections are not for concurrent use, so
every catalog call runs in a worker thread under one lock; each read catches
the projection up with the log first, so events appended by anyone appear
without a restart, and a write made here is visible on the next page
(read-your-writes).

Errors map at the boundary by attribute (STYLE.md rule 11): a
:class:`~catalog.errors.CatalogError`'s ``status`` is the HTTP status; the API
answers with its ``to_dict()`` shape, pages with an error page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from catalog.client import Catalog
from catalog.errors import CatalogError, NotFound
from catalog.web.context import JSON, UI, make_templates, page
from catalog.web.security import (
    LOOPBACK_NAMES,
    Guard,
    HostMiddleware,
    ReadAccessMiddleware,
    SecurityMiddleware,
)

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
_logger = logging.getLogger("catalog.web")


class MethodNotAllowed(CatalogError):
    status = 405


# --------------------------------------------------------------- errors


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _catalog_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CatalogError)
    if _wants_json(request):
        return JSON(exc.to_dict(), status_code=exc.status)
    return page(
        request,
        "error.html",
        {"error": exc.to_dict(), "title": type(exc).__name__},
        status=exc.status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: CatalogError
    if exc.status_code == 404:
        error = NotFound(f"no such page: {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = CatalogError(str(exc.detail))
        error.status = exc.status_code
    response = await _catalog_error(request, error)
    for name, value in (exc.headers or {}).items():  # a 405's Allow, above all
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    _logger.exception("unexpected error on %s %s", request.method, request.url.path)
    error = CatalogError(f"internal error: {type(exc).__name__}")
    if _wants_json(request):
        return JSON(error.to_dict(), status_code=500)
    return Response("internal error", status_code=500, media_type="text/plain")


# ------------------------------------------------------------------ app


def create_app(
    catalog: Catalog | None = None,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    guard: Guard | None = None,
    routes: Sequence[BaseRoute] = (),
    serialize: bool = True,
    openapi_paths: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    """The web application over ``catalog`` (by default one from the environment).

    Give the catalog its own projection file (``Catalog(db=...)``): the app
    keeps it open while it runs. ``token``, when given, is needed for every
    write (``guard`` sets read and write tokens instead). ``allowed_hosts``
    are the Host names accepted (default: loopback names only, which stops
    DNS-rebinding pages from reaching a local server; ``["*"]`` accepts any).
    ``routes`` are served beside the pages (the catalog service's query API),
    and ``openapi_paths`` adds their description to ``/api/openapi.json``.
    """
    from catalog.web import api, pages

    ui = UI(catalog or Catalog(), guard or Guard(token), serialize=serialize)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(ui.close)

    served: list[BaseRoute] = [
        *routes,
        *pages.routes(),
        *api.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=served,
        middleware=[
            Middleware(HostMiddleware, allowed_hosts=list(allowed_hosts or LOOPBACK_NAMES)),
            Middleware(SecurityMiddleware),
            Middleware(ReadAccessMiddleware, guard=ui.guard),
        ],
        exception_handlers={
            CatalogError: _catalog_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.ui = ui
    app.state.templates = make_templates()
    app.state.openapi_paths = openapi_paths
    return app
