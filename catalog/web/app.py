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

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from catalog.client import Catalog
from catalog.errors import CatalogError, InvalidInput, LimitExceeded, NotFound
from catalog.web import render
from catalog.web.data import TABS
from catalog.web.security import (
    LOOPBACK_NAMES,
    Guard,
    HostMiddleware,
    ReadAccessMiddleware,
    SecurityMiddleware,
    session_of,
)

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
_logger = logging.getLogger("catalog.web")


class MethodNotAllowed(CatalogError):
    status = 405


class UI:
    """The server's state: one Catalog, and a guard.

    Over a Catalog with a projection file of its own, one caller at a time
    (a DuckDB connection is not for concurrent use); inside the catalog
    service (``serialize=False``), callers run concurrently, each read on a
    cursor of its own.
    """

    def __init__(self, catalog: Catalog, guard: Guard, *, serialize: bool = True) -> None:
        self.catalog = catalog
        self.guard = guard
        self._lock: threading.Lock | None = threading.Lock() if serialize else None
        self._session: ExitStack | None = None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(catalog, *args)`` (holding the lock, with the projection open)."""
        if self._lock is None:
            return fn(self.catalog, *args, **kwargs)
        with self._lock:
            if self._session is None:
                stack = ExitStack()
                stack.enter_context(self.catalog.session())
                self._session = stack
            return fn(self.catalog, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`call` in a worker thread (never blocks the event loop)."""
        return await run_in_threadpool(self.call, fn, *args, **kwargs)

    def close(self) -> None:
        with self._lock or threading.Lock():
            if self._session is not None:
                self._session.close()
                self._session = None
            self.catalog.close()


def ui_of(request: Request) -> UI:
    ui: UI = request.app.state.ui
    return ui


# ----------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


class JSON(JSONResponse):
    """JSON with datetimes as ISO 8601 text."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=jsonable, ensure_ascii=False).encode("utf-8")


#: Largest JSON body a request may send (the writes' bodies are a few hundred bytes).
MAX_JSON_BODY = 1024 * 1024


async def json_object(request: Request) -> dict[str, Any]:
    """A request's body as a JSON object (an empty body is ``{}``); a clear 400 otherwise."""
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        raise LimitExceeded("the request body", len(raw), MAX_JSON_BODY)
    try:
        body = json.loads(raw or b"{}")
    except RecursionError:
        raise InvalidInput("the request body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


# ------------------------------------------------------------ templates


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "svg", "xml"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=render.size,
        number=render.number,
        when=render.when,
        iso=render.iso,
        ago=render.ago,
        short=render.short,
        pretty_json=render.pretty_json,
        event_summary=render.event_summary,
    )
    env.globals.update(
        TABS=TABS,
        artifact_href=render.artifact_href,
        histogram=render.histogram,
        duration=render.duration,
    )
    return Jinja2Templates(env=env)


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page with what every page needs (projects, CSRF token, login state)."""
    ui = ui_of(request)
    base = {
        "projects": context.pop("projects", None) or [],
        "project": context.get("project"),
        "csrf_token": ui.guard.csrf_token(session_of(request)),
        "token_required": ui.guard.write_required,
        "logged_in": ui.guard.write_required and ui.guard.logged_in(request),
    }
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status, headers=headers
    )


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
