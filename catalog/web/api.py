"""The JSON API under ``/api``: the same data as the pages, for scripts and tests.

Reads are GETs. Writes are POSTs with a JSON body and, from a browser
session, the ``X-CSRF-Token`` header (``GET /api/session`` gives it), or
``Authorization: Bearer <token>`` when the server has a write token. They
call the same Catalog methods as the SDK, so they emit the same events.
Errors are ``CatalogError.to_dict()`` with its ``status``. The OpenAPI 3
description is at ``/api/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalog.errors import InvalidInput
from catalog.validation import validate_labels, validate_project
from catalog.web import data, pages
from catalog.web.context import JSON, json_object, ui_of
from catalog.web.openapi import document
from catalog.web.security import session_of


def _project(request: Request) -> str:
    return validate_project(request.path_params["project"])


async def session(request: Request) -> Response:
    """The CSRF token of this client's session (the cookie comes with the answer)."""
    guard = ui_of(request).guard
    return JSON(
        {
            "csrf_token": guard.csrf_token(session_of(request)),
            "write_token_required": guard.write_required,
            "may_write": guard.logged_in(request),
        }
    )


async def openapi(request: Request) -> Response:
    doc = document()
    extra = request.app.state.openapi_paths
    if extra is not None:
        doc["paths"].update(extra())
    return JSON(doc)


async def projects(request: Request) -> Response:
    return JSON({"items": await ui_of(request).run(data.projects)})


async def artifacts(request: Request) -> Response:
    project = _project(request)
    search = data.Search.from_params(request.query_params, default_tab="all")
    listing = await ui_of(request).run(data.list_artifacts, project, search)
    return JSON(listing.to_dict())


async def artifact(request: Request) -> Response:
    project = _project(request)
    version = pages.version_params(request)
    art = await ui_of(request).run(data.get_version, project, request.path_params["key"], **version)
    return JSON(data.artifact_document(art))


async def versions(request: Request) -> Response:
    project = _project(request)
    result = await ui_of(request).run(data.versions, project, request.path_params["key"])
    return JSON(result)


async def lineage(request: Request) -> Response:
    project = _project(request)
    depth = data.DEPTH.read(request.query_params)
    result = await ui_of(request).run(
        data.lineage,
        project,
        request.path_params["key"],
        request.query_params.get("uid") or None,
        depth,
    )
    return JSON(
        {
            "uri": result["uri"],
            "edges": result["edges"],
            "nodes": list(result["nodes"].values()),
            "truncated": result["truncated"],
        }
    )


async def history(request: Request) -> Response:
    project = _project(request)
    limit = data.LIMIT.read(request.query_params)
    items = await ui_of(request).run(data.history, project, request.path_params["key"], limit)
    return JSON({"items": items})


async def runs(request: Request) -> Response:
    project = _project(request)
    page = data.PAGE.read(request.query_params)
    per_page = data.PER_PAGE.read(request.query_params)
    return JSON(await ui_of(request).run(data.runs, project, page, per_page))


async def run(request: Request) -> Response:
    project = _project(request)
    return JSON(await ui_of(request).run(data.run, project, request.path_params["uid"]))


# ------------------------------------------------------------------ writes


async def _body(request: Request) -> dict[str, Any]:
    ui_of(request).guard.check_write(request)
    return await json_object(request)


def _text(body: Mapping[str, Any], name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidInput(f"{name!r} must be a non-empty string")
    return value


async def tag(request: Request) -> Response:
    body = await _body(request)
    art = await ui_of(request).run(
        data.add_tag,
        _project(request),
        request.path_params["key"],
        _text(body, "uid"),
        _text(body, "tag"),
    )
    return JSON(data.artifact_document(art))


async def untag(request: Request) -> Response:
    body = await _body(request)
    tag = _text(body, "tag")
    await ui_of(request).run(
        data.remove_tag, _project(request), request.path_params["key"], _text(body, "uid"), tag
    )
    return JSON({"removed": tag})


async def labels(request: Request) -> Response:
    body = await _body(request)
    given = body.get("labels")
    if not isinstance(given, dict):
        raise InvalidInput("'labels' must be an object of label names to values")
    art = await ui_of(request).run(
        data.set_labels,
        _project(request),
        request.path_params["key"],
        _text(body, "uid"),
        validate_labels(given),
    )
    return JSON(data.artifact_document(art))


async def delete(request: Request) -> Response:
    body = await _body(request)
    deleted = await ui_of(request).run(
        data.delete_version,
        _project(request),
        request.path_params["key"],
        _text(body, "uid"),
        _text(body, "reason", required=False) or None,
    )
    return JSON({"deleted": deleted})


def routes() -> list[BaseRoute]:
    p = "/api/projects/{project}"
    a = p + "/artifacts/{key}"
    get: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = [
        ("/api/openapi.json", openapi),
        ("/api/session", session),
        ("/api/projects", projects),
        (p + "/artifacts", artifacts),
        (a, artifact),
        (a + "/versions", versions),
        (a + "/lineage", lineage),
        (a + "/history", history),
        (a + "/content", pages.content),
        (a + "/yaml", pages.yaml_document),
        (p + "/runs", runs),
        (p + "/runs/{uid}", run),
    ]
    post = [
        (a + "/tag", tag),
        (a + "/untag", untag),
        (a + "/labels", labels),
        (a + "/delete", delete),
    ]
    found: list[BaseRoute] = [Route(path, fn) for path, fn in get]
    return found + [Route(path, fn, methods=["POST"]) for path, fn in post]
