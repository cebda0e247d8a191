"""What the web UI's pages and its JSON API share: the server's state (:class:`UI`),
JSON responses and bodies, and the page templates."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from catalog.client import Catalog
from catalog.errors import InvalidInput, LimitExceeded
from catalog.web import render
from catalog.web.data import TABS
from catalog.web.security import Guard, session_of

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


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
