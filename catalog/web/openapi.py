"""The OpenAPI 3 description of the JSON API, served at ``/api/openapi.json``.

Written by hand, compactly; a test checks that it names exactly the routes
the API serves, with the same methods.
"""

from __future__ import annotations

from typing import Any

from catalog import __version__

_P = "/api/projects/{project}"
_A = _P + "/artifacts/{key}"


def _param(name: str, where: str, doc: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": doc,
        "schema": {"type": kind, **extra},
    }


PROJECT = _param("project", "path", "Project name.")
KEY = _param("key", "path", "Artifact key.")
UID = _param("uid", "query", "Version uid (or a unique prefix); default: the latest version.")
TAG = _param("tag", "query", "Version named by this tag.")
ITER = _param("iter", "query", "Iteration (hyper-parameter child); default 0.", "integer")

SEARCH = [
    _param(
        "tab",
        "query",
        "Category group: datasets, models, files (artifacts, plots, dirs, tables), features "
        "(feature sets and vectors) or all (the API's default).",
        enum=["datasets", "models", "files", "features", "all"],
    ),
    _param("name", "query", "Key contains this text (case-insensitive)."),
    _param("labels", "query", "Label filter, MLRun syntax: 'k=v,k2' (k2: has the label)."),
    _param("tag", "query", "Only versions with this tag (default: latest)."),
    _param("since", "query", "Updated at or after: ISO 8601 time or a duration such as 1h, 7d."),
    _param("until", "query", "Updated at or before: ISO 8601 time or a duration."),
    _param("sort", "query", "Order by.", enum=["updated", "created", "key", "size"]),
    _param("desc", "query", "1: descending (default for times and size), 0: ascending."),
    _param("page", "query", "Page number, from 1.", "integer", minimum=1),
    _param("per_page", "query", "Rows per page (at most 200).", "integer", maximum=200),
    _param("versions", "query", "1: every version, not only the latest of each key."),
]

ERROR = {
    "type": "object",
    "description": "CatalogError.to_dict(): the one error shape of the CLI and the API.",
    "properties": {
        "error": {"type": "string", "description": "Error class, e.g. ArtifactNotFound."},
        "message": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status."},
    },
    "required": ["error", "message", "status"],
}

SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "ArtifactSummary": {
        "type": "object",
        "properties": {
            name: {"type": kind}
            for name, kind in (
                ("uri", "string"),
                ("project", "string"),
                ("key", "string"),
                ("iteration", "integer"),
                ("uid", "string"),
                ("kind", "string"),
                ("category", "string"),
                ("tags", "array"),
                ("labels", "object"),
                ("producer", "object"),
                ("run", ["string", "null"]),  # the producing run's uid, if a run made it
                ("owner", ["string", "null"]),
                ("created", "string"),
                ("updated", "string"),
                ("size", ["integer", "null"]),  # a reference's size may be unknown
                ("hash", ["string", "null"]),  # references have none
                ("format", ["string", "null"]),
                ("deleted", "boolean"),
            )
        },
    },
    "Listing": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/ArtifactSummary"}},
            "total": {"type": "integer"},
            "total_is_lower_bound": {"type": "boolean"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "pages": {"type": ["integer", "null"]},
        },
    },
    "Artifact": {
        "type": "object",
        "description": "The MLRun-like document (kind, metadata, spec, status) and its pinned URI.",
        "properties": {
            "uri": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object"},
            "status": {"type": "object"},
        },
    },
}


def _ok(
    description: str, schema: dict[str, Any] | None = None, media: str = "application/json"
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": schema or {"type": "object"}}},
    }


def _errors() -> dict[str, Any]:
    shape = {"$ref": "#/components/schemas/Error"}
    return {
        str(code): _ok(text, shape)
        for code, text in (
            (400, "Invalid input"),
            (404, "Not found"),
            (500, "Integrity or internal error"),
        )
    }


def _get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {"summary": summary, "parameters": params, "responses": {"200": ok, **_errors()}}
    }


def _post(summary: str, body: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [PROJECT, KEY],
            "security": [{"csrf": []}, {"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object", **body}}},
            },
            "responses": {
                "200": ok,
                "401": _ok("Write token needed", {"$ref": "#/components/schemas/Error"}),
                "403": _ok("Missing or invalid CSRF token", {"$ref": "#/components/schemas/Error"}),
                **_errors(),
            },
        }
    }


def _body(required: list[str], **props: str) -> dict[str, Any]:
    types = {"labels": "object"}
    return {
        "required": required,
        "properties": {
            n: {"type": types.get(n, "string"), "description": d} for n, d in props.items()
        },
    }


ARTIFACT = _ok("The version", {"$ref": "#/components/schemas/Artifact"})


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, Any] = {
        "/api/openapi.json": _get("This document", [], _ok("OpenAPI 3.1")),
        "/api/session": _get(
            "The CSRF token for writes from this session (sets the session cookie)",
            [],
            _ok("csrf_token, write_token_required, may_write"),
        ),
        "/api/projects": _get(
            "Projects with live keys per tab, versions, runs and last activity",
            [],
            _ok("{items: [...]}"),
        ),
        _P + "/artifacts": _get(
            "Search artifacts (a page, sorted, with the total)",
            [PROJECT, *SEARCH],
            _ok("A page", {"$ref": "#/components/schemas/Listing"}),
        ),
        _A: _get(
            "One version (latest, by uid or by tag)", [PROJECT, KEY, UID, TAG, ITER], ARTIFACT
        ),
        _A + "/versions": _get(
            "Every version of the key, newest first, with tags",
            [PROJECT, KEY],
            _ok("{items, total}"),
        ),
        _A + "/lineage": _get(
            "Upstream sources and downstream consumers, a few hops",
            [
                PROJECT,
                KEY,
                UID,
                _param("depth", "query", "Hops (default 3).", "integer", maximum=10),
            ],
            _ok("{uri, edges, nodes, truncated}"),
        ),
        _A + "/history": _get(
            "The key's events, newest first (the audit trail)",
            [PROJECT, KEY, _param("limit", "query", "At most this many.", "integer")],
            _ok("{items: [...]}"),
        ),
        _A + "/content": _get(
            "The content, verified against its sha256 (directories as zip)",
            [PROJECT, KEY, UID, _param("inline", "query", "1: display images inline.")],
            {
                "description": "The bytes, with the media type of the version's format "
                "(text/csv, image/png, application/zip for a directory, ...; "
                "application/octet-stream when unknown)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
        ),
        _A + "/yaml": _get(
            "The version's document as YAML",
            [PROJECT, KEY, UID, TAG, ITER],
            _ok("YAML", {"type": "string"}, "application/yaml"),
        ),
        _P + "/runs": _get(
            "Runs, newest first",
            [PROJECT, _param("page", "query", "Page, from 1.", "integer")],
            _ok("{items, total, page, per_page}"),
        ),
        _P + "/runs/{uid}": _get(
            "A run: parameters, inputs (exact versions read), results, and what it logged",
            [PROJECT, _param("uid", "path", "Run uid.")],
            _ok("{run, artifacts, artifacts_total}"),
        ),
        _A + "/tag": _post(
            "Put a tag on a version (moving it from another version of the key)",
            _body(["uid", "tag"], uid="Version uid.", tag="The tag."),
            ARTIFACT,
        ),
        _A + "/untag": _post(
            "Remove a tag from a version",
            _body(["uid", "tag"], uid="Version uid.", tag="The tag."),
            _ok("{removed: tag}"),
        ),
        _A + "/labels": _post(
            "Set a version's labels to exactly these (one ArtifactUpdated event)",
            _body(["uid", "labels"], uid="Version uid.", labels="Label names to values."),
            ARTIFACT,
        ),
        _A + "/delete": _post(
            "Delete a version (soft: the history stays in the log)",
            _body(["uid"], uid="Version uid.", reason="Why (kept in the audit trail)."),
            _ok("{deleted: [uid]}"),
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "catalog web API",
            "version": __version__,
            "description": "Browse, search, inspect, download and manage artifacts. "
            "Writes need the X-CSRF-Token header (GET /api/session) or a Bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
