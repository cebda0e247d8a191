"""The OpenAPI 3 description of the JSON API, served at ``/api/openapi.json``.

Written by hand, compactly; a test checks that it names exactly the routes
the API serves, with the same methods. What the server checks is declared from
where it checks it: whole-number and yes/no parameters from their objects in
:mod:`catalog.web.data`, names from the rules of :mod:`catalog.validation`.
Each operation lists every error status it can answer (:data:`ERRORS`), and
``tests/test_api_fuzz.py`` holds the running server to all of it.
"""

from __future__ import annotations

from typing import Any

from catalog import __version__
from catalog.validation import (
    KEY_RE,
    MAX_KEY_LENGTH,
    MAX_PROJECT_LENGTH,
    MAX_TAG_LENGTH,
    MAX_UID_LENGTH,
    PROJECT_RE,
    TAG_RE,
    UID_RE,
)
from catalog.web import data

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


def _name(name: str, where: str, doc: str, pattern: Any, longest: int) -> dict[str, Any]:
    """A name the server checks with ``pattern`` and a length (catalog.validation)."""
    return _param(name, where, doc, pattern=pattern.pattern, minLength=1, maxLength=longest)


def _spec(spec: data.Whole | data.Flag) -> dict[str, Any]:
    """A query parameter read by :mod:`catalog.web.data` (declared from the same object)."""
    return {
        "name": spec.name,
        "in": "query",
        "required": False,
        "description": spec.doc,
        "schema": spec.schema(),
    }


PROJECT = _name("project", "path", "Project name.", PROJECT_RE, MAX_PROJECT_LENGTH)
KEY = _name("key", "path", "Artifact key.", KEY_RE, MAX_KEY_LENGTH)
UID = _name(
    "uid",
    "query",
    "Version uid (or a unique prefix); default: the latest version.",
    UID_RE,
    MAX_UID_LENGTH,
)
TAG = _name("tag", "query", "Version named by this tag.", TAG_RE, MAX_TAG_LENGTH)
ITER = _spec(data.ITER)

SEARCH = [
    _param(
        "tab",
        "query",
        "Category group: datasets, models, files (artifacts, plots, dirs, tables), features "
        "(feature sets and vectors) or all (the API's default).",
        enum=list(data.TABS),
    ),
    _param("name", "query", "Key contains this text (case-insensitive)."),
    _param("labels", "query", "Label filter, MLRun syntax: 'k=v,k2' (k2: has the label)."),
    _name("tag", "query", "Only versions with this tag (default: latest).", TAG_RE, MAX_TAG_LENGTH),
    _param("since", "query", "Updated at or after: ISO 8601 time or a duration such as 1h, 7d."),
    _param("until", "query", "Updated at or before: ISO 8601 time or a duration."),
    _param("sort", "query", "Order by.", enum=list(data.SORTS)),
    _spec(data.DESC),
    _spec(data.PAGE),
    _spec(data.PER_PAGE),
    _spec(data.VERSIONS),
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
    "additionalProperties": False,
}

#: Every error status the service answers, and when. Each operation lists those it can
#: answer (:func:`errors`), every one in the error shape with its own status.
ERRORS = {
    400: "Invalid input: a parameter, the body, or a Host header the server does not answer",
    401: "A token is needed (a server with read tokens; a write without the write token)",
    403: "Refused: no valid CSRF token, a foreign Origin, or a token that may only read",
    404: "Not found",
    409: "The projection refused the event (EventRefused); nothing changed",
    500: "Internal or integrity error (stored bytes that no longer match their hash)",
    502: "Storage failed: the object store, or a disk the service writes",
    503: "The log is unavailable, or too many heavy downloads at once: try again",
    504: "The projection did not apply the positions needed in time",
}
#: What any request can meet: its input refused, a read token asked for, a bug.
ANY = (400, 401, 500)
#: A read of the projection also waits for it (catching up at start, min_positions).
READ = (*ANY, 503, 504)


def errors(*codes: int) -> dict[str, Any]:
    """The error responses ``codes``, each the error shape whose status is that code."""
    return {
        str(code): {
            "description": ERRORS[code],
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/Error"},
                            {"properties": {"status": {"const": code}}},
                        ]
                    }
                }
            },
        }
        for code in sorted(set(codes))
    }


NOT_MODIFIED = {"304": {"description": "Not modified: If-None-Match named this content's ETag"}}
CONTENT = {
    "description": "The bytes, with the media type of the version's format "
    "(text/csv, image/png, application/zip for a directory, ...; "
    "application/octet-stream when unknown)",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
}
#: The document :meth:`Artifact.to_yaml` writes.
DOCUMENT = {
    "type": "object",
    "description": "The MLRun-like document: kind, metadata, spec, status.",
    "properties": {
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object"},
        "status": {"type": "object"},
    },
    "required": ["kind", "metadata", "spec"],
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


def _get(
    name: str,
    summary: str,
    params: list[dict[str, Any]],
    ok: dict[str, Any],
    codes: tuple[int, ...] = READ,
    more: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": name,
            "summary": summary,
            "parameters": params,
            "responses": {"200": ok, **(more or {}), **errors(*codes)},
        }
    }


def _post(name: str, summary: str, body: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": name,
            "summary": summary,
            "parameters": [PROJECT, KEY],
            "security": [{"csrf": []}, {"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object", **body}}},
            },
            "responses": {"200": ok, **errors(*READ, 403, 404, 409)},
        }
    }


def _body(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"required": required, "properties": props}


def _field(doc: str, pattern: Any = None, longest: int = 0, kind: str = "string") -> dict[str, Any]:
    """A field of a write's body (a name: checked with ``pattern`` and a length)."""
    if pattern is None:
        return {"type": kind, "description": doc}
    return {
        "type": kind,
        "description": doc,
        "pattern": pattern.pattern,
        "minLength": 1,
        "maxLength": longest,
    }


VERSION_UID = _field("Version uid.", UID_RE, MAX_UID_LENGTH)
THE_TAG = _field("The tag.", TAG_RE, MAX_TAG_LENGTH)


ARTIFACT = _ok("The version", {"$ref": "#/components/schemas/Artifact"})
FOUND = (*READ, 404)  # a read that looks one thing up


_FIRST = "$response.body#/items/0/"
_VERSION = {"path.project": "$request.path.project", "path.key": _FIRST + "key"}
_PINNED = {**_VERSION, "query.uid": _FIRST + "uid"}
#: Where an answer's values lead (OpenAPI links): a project to its artifacts and runs,
#: a listed version to everything about it, a listed run to the run.
LINKS: dict[str, dict[str, dict[str, str]]] = {
    "/api/projects": {
        "ui_artifacts": {"path.project": _FIRST + "name"},
        "ui_runs": {"path.project": _FIRST + "name"},
    },
    _P + "/artifacts": {
        "ui_artifact": _PINNED,
        "ui_versions": _VERSION,
        "ui_lineage": _PINNED,
        "ui_history": _VERSION,
        "ui_content": _PINNED,
        "ui_yaml": _PINNED,
    },
    _P + "/runs": {"ui_run": {"path.project": "$request.path.project", "path.uid": _FIRST + "uid"}},
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, Any] = {
        "/api/openapi.json": _get("ui_openapi", "This document", [], _ok("OpenAPI 3.1"), ANY),
        "/api/session": _get(
            "ui_session",
            "The CSRF token for writes from this session (sets the session cookie)",
            [],
            _ok("csrf_token, write_token_required, may_write"),
            ANY,
        ),
        "/api/projects": _get(
            "ui_projects",
            "Projects with live keys per tab, versions, runs and last activity",
            [],
            _ok("{items: [...]}"),
        ),
        _P + "/artifacts": _get(
            "ui_artifacts",
            "Search artifacts (a page, sorted, with the total)",
            [PROJECT, *SEARCH],
            _ok("A page", {"$ref": "#/components/schemas/Listing"}),
        ),
        _A: _get(
            "ui_artifact",
            "One version (latest, by uid or by tag)",
            [PROJECT, KEY, UID, TAG, ITER],
            ARTIFACT,
            FOUND,
        ),
        _A + "/versions": _get(
            "ui_versions",
            "Every version of the key, newest first, with tags",
            [PROJECT, KEY],
            _ok("{items, total}"),
            FOUND,
        ),
        _A + "/lineage": _get(
            "ui_lineage",
            "Upstream sources and downstream consumers, a few hops",
            [PROJECT, KEY, UID, _spec(data.DEPTH)],
            _ok("{uri, edges, nodes, truncated}"),
            FOUND,
        ),
        _A + "/history": _get(
            "ui_history",
            "The key's events, newest first (the audit trail)",
            [PROJECT, KEY, _spec(data.LIMIT)],
            _ok("{items: [...]}"),
        ),
        _A + "/content": _get(
            "ui_content",
            "The content, verified against its sha256 (directories as zip)",
            [PROJECT, KEY, UID, _spec(data.INLINE)],
            CONTENT,
            (*FOUND, 502),
            NOT_MODIFIED,
        ),
        _A + "/yaml": _get(
            "ui_yaml",
            "The version's document as YAML",
            [PROJECT, KEY, UID, TAG, ITER],
            _ok("YAML", DOCUMENT, "application/yaml"),
            FOUND,
        ),
        _P + "/runs": _get(
            "ui_runs",
            "Runs, newest first",
            [PROJECT, _spec(data.PAGE), _spec(data.PER_PAGE)],
            _ok("{items, total, page, per_page}"),
        ),
        _P + "/runs/{uid}": _get(
            "ui_run",
            "A run: parameters, inputs (exact versions read), results, and what it logged",
            [PROJECT, _name("uid", "path", "Run uid.", UID_RE, MAX_UID_LENGTH)],
            _ok("{run, artifacts, artifacts_total}"),
            FOUND,
        ),
        _A + "/tag": _post(
            "ui_tag",
            "Put a tag on a version (moving it from another version of the key)",
            _body(["uid", "tag"], uid=VERSION_UID, tag=THE_TAG),
            ARTIFACT,
        ),
        _A + "/untag": _post(
            "ui_untag",
            "Remove a tag from a version",
            _body(["uid", "tag"], uid=VERSION_UID, tag=THE_TAG),
            _ok("{removed: tag}"),
        ),
        _A + "/labels": _post(
            "ui_labels",
            "Set a version's labels to exactly these (one ArtifactUpdated event)",
            _body(
                ["uid", "labels"],
                uid=VERSION_UID,
                labels=_field("Label names to values.", kind="object"),
            ),
            ARTIFACT,
        ),
        _A + "/delete": _post(
            "ui_delete",
            "Delete a version (soft: the history stays in the log)",
            _body(["uid"], uid=VERSION_UID, reason=_field("Why (kept in the audit trail).")),
            _ok("{deleted: [uid]}"),
        ),
    }
    for path, targets in LINKS.items():
        ok = paths[path]["get"]["responses"]["200"]
        paths[path]["get"]["responses"]["200"] = {
            **ok,
            "links": {
                target: {"operationId": target, "parameters": values}
                for target, values in targets.items()
            },
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
