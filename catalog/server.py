"""``catalog serve``: the catalog service over HTTP, with the web UI.

The versioned query API is derived from :data:`catalog.api.OPS`: one ``GET``
route per read under ``/api/v1``, plus ``/api/v1/sql`` (read-only SQL as an
Arrow IPC stream, JSON or CSV), ``/api/v1/health`` (liveness, open to all),
``/api/v1/status`` (where the service stands), ``/api/v1/artifacts/content``
and ``/api/v1/artifacts/yaml`` (a version's bytes, verified, and its
document). The web UI and its own JSON API are served beside it, over a
Catalog that reads the same projection. ``/api/openapi.json`` describes all.

Binding anything but loopback needs read and write tokens
(:func:`catalog.web.security.load_tokens`); TLS is a reverse proxy's job
(docs/operations.md shows one).
"""

from __future__ import annotations

import asyncio
import collections.abc as abc
import contextvars
import functools
import json
import logging
import os
import signal
import socket
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import uvicorn
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from catalog import api
from catalog.access import TokenTable, default_path
from catalog.config import Config, snapshot_every, snapshot_keep, snapshots_url
from catalog.errors import CatalogError, InvalidInput, LimitExceeded
from catalog.intake import CHUNK_SIZE, Intake, stored
from catalog.service import Service, parse_common, served_catalog
from catalog.store import validate_digest
from catalog.uri import StoreURI
from catalog.web.app import create_app
from catalog.web.context import json_object, ui_of
from catalog.web.data import Flag
from catalog.web.openapi import ANY, CONTENT, DOCUMENT, NOT_MODIFIED, READ, errors
from catalog.web.security import LOOPBACK_NAMES, Guard, is_loopback, load_tokens

_logger = logging.getLogger("catalog.server")
T = TypeVar("T")

DEFAULT_PORT = 8765


# ------------------------------------------------------------------ routes


class Readers:
    """The threads reads run on (each keeps its DuckDB cursor): a plain pool, which
    costs a request less than Starlette's general one."""

    def __init__(self, threads: int | None = None) -> None:
        # About one per core: more threads only contend (measured on 2 cores with
        # 8 clients: 2 threads 482-507 resolves/s, 8 threads 391-408)
        threads = threads or max(2, os.cpu_count() or 2)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="catalog-read")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the request's grant (catalog.access) goes too
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.pool, call)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _endpoint(service: Service, readers: Readers, op: api.Op) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        params = api.decode_params(op, request.query_params)
        wanted, as_of = parse_common(request.query_params)
        result, at = await readers.run(service.read, op, params, min_positions=wanted, as_of=as_of)
        body, times = api.dump(result)
        headers = {api.TIMES_HEADER: ",".join(times), api.POSITIONS_HEADER: api.format_offsets(at)}
        return Response(body, media_type="application/json", headers=headers)

    endpoint.__name__ = op.name
    endpoint.__doc__ = op.summary
    return endpoint


def v1_routes(service: Service, readers: Readers | None = None) -> list[BaseRoute]:
    """The query API: every op of :data:`catalog.api.OPS`, and the routes beside them."""
    pool = readers or Readers()

    async def health(request: Request) -> Response:
        body, _ = api.dump(service.health())
        return Response(body, media_type="application/json")

    async def status(request: Request) -> Response:
        found = await run_in_threadpool(service.status)
        # where uploads from clients without a store of their own go (catalog.remote)
        found["artifact_path"] = ui_of(request).catalog.config.artifact_path
        body, _ = api.dump(found)
        return Response(body, media_type="application/json")

    async def sql(request: Request) -> Response:
        if request.method == "POST":
            form = await json_object(request)
            statement, fmt = str(form.get("q", "")), str(form.get("format", "json"))
        else:
            statement = request.query_params.get("q", "")
            fmt = request.query_params.get("format", "json")
        if fmt not in api.SQL_FORMATS:
            raise InvalidInput(f"format {fmt!r}: one of {', '.join(api.SQL_FORMATS)}")
        wanted, as_of = parse_common(request.query_params)
        table = await run_in_threadpool(service.sql, statement, min_positions=wanted, as_of=as_of)
        return Response(_encode_table(table, fmt), media_type=api.SQL_FORMATS[fmt])

    async def content(request: Request) -> Response:
        from catalog.web import data, pages

        uri = _uri(request)
        art = await ui_of(request).run(lambda cat: cat.get_artifact(uri))
        art, item = await ui_of(request).run(data.dataitem, art.project or "", art.key, art.uid)
        return await pages.send_content(request, art, item, pinned=bool(uri.uid))

    async def snapshot(request: Request) -> Response:
        guard = ui_of(request).guard
        if not guard.logged_in(request):
            guard.check_write(request)  # raises: publishing needs the write scope
        body, _ = api.dump(await run_in_threadpool(service.publish_snapshot))
        return Response(body, media_type="application/json")

    async def yaml_document(request: Request) -> Response:
        from catalog.web import pages

        uri = _uri(request)
        art = await ui_of(request).run(lambda cat: cat.get_artifact(uri))
        return pages.send_yaml(art)

    intakes: list[Intake] = []

    def intake(request: Request) -> Intake:
        if not intakes:
            ui = ui_of(request)
            # an open loopback server writes where its machine's clients say; one with
            # tokens (a team's) only under its artifact path and its projects'
            intakes.append(Intake(service, ui.catalog, confined=not ui.guard.writes_open))
        return intakes[0]

    async def events(request: Request) -> Response:
        ui_of(request).guard.check_api_write(request)
        media = request.headers.get("content-type", "").split(";")[0].strip()
        if media != api.EVENTS_MEDIA:
            raise InvalidInput(f"a batch of events is sent as {api.EVENTS_MEDIA}, not {media!r}")
        values = api.unframe_events(await _capped_body(request, "events", api.MAX_EVENTS_BODY))
        wait = WAIT.read(request.query_params, default=True)
        answer = await pool.run(intake(request).accept, values, wait=wait)
        return Response(json.dumps(answer), media_type="application/json")

    async def small_objects(request: Request) -> Response:
        ui_of(request).guard.check_api_write(request)
        blobs = api.unframe_blobs(await _capped_body(request, "blobs", api.MAX_BLOBS_BODY))
        cas = await run_in_threadpool(intake(request).store, request.query_params.get("root"))
        stored_count = await pool.run(intake(request).store_small, cas, blobs)
        return Response(json.dumps({"stored": stored_count}), media_type="application/json")

    async def objects(request: Request) -> Response:
        digest = request.path_params["digest"]
        root = request.query_params.get("root")
        if request.method == "PUT":
            ui_of(request).guard.check_api_write(request)
            cas = await run_in_threadpool(intake(request).store, root)
            try:
                blob = await intake(request).upload(cas, digest, request.stream())
            except ClientDisconnect:  # the client went away mid-upload: nothing was stored
                _logger.info("upload of %s abandoned by the client", digest)
                return Response(status_code=400)
            return Response(json.dumps(stored(blob)), media_type="application/json")
        cas = await run_in_threadpool(intake(request).store, root)
        size = await run_in_threadpool(cas.size, validate_digest(digest))
        if request.method == "HEAD":
            return Response(b"", headers={"Content-Length": str(size)})
        if request.query_params.get("stat"):
            return Response(json.dumps({"size": size}), media_type="application/json")
        reader = await run_in_threadpool(cas.open, digest)

        def chunks() -> Iterator[bytes]:
            with reader:
                while chunk := reader.read(CHUNK_SIZE):
                    yield chunk

        return StreamingResponse(
            iterate_in_threadpool(chunks()),
            media_type="application/octet-stream",
            headers={"Content-Length": str(size)},
        )

    p = api.PREFIX
    routes: list[BaseRoute] = [Route(p + op.path, _endpoint(service, pool, op)) for op in api.OPS]
    routes += [
        Route(p + api.EVENTS_PATH, events, methods=["POST"]),
        Route(p + api.OBJECTS_PATH, objects, methods=["GET", "HEAD", "PUT"]),
        Route(p + api.BLOBS_PATH, small_objects, methods=["POST"]),
    ]
    return routes + [
        Route(p + api.HEALTH_PATH, health),
        Route(p + "/status", status),
        Route(p + api.SNAPSHOT_PATH, snapshot, methods=["POST"]),
        Route(p + api.SQL_PATH, sql, methods=["GET", "POST"]),
        Route(p + "/artifacts/content", content),
        Route(p + "/artifacts/yaml", yaml_document),
    ]


#: Whether a POST of events waits for their outcome (the default) or only their positions.
WAIT = Flag("wait", "Answer the outcome too, once the service has applied the events "
            "(the default); off: positions only.")  # fmt: skip


async def _capped_body(request: Request, what: str, limit: int) -> bytes:
    """A write's whole body, refused past ``limit`` bytes (before reading it all)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise LimitExceeded(f"a batch of {what}", len(body), limit)
    return bytes(body)


def _uri(request: Request) -> StoreURI:
    text = request.query_params.get("uri", "")
    if not text:
        raise InvalidInput("give the version as uri=store://<category>/<project>/<key>[:tag|^uid]")
    return StoreURI.parse(text)


def _encode_table(table: Any, fmt: str) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.csv

    if fmt == "arrow":
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())
    if fmt == "csv":
        out = io.BytesIO()
        pyarrow.csv.write_csv(table, out)
        return out.getvalue()
    body, _ = api.dump({"columns": table.column_names, "rows": table.to_pylist()})
    return body


# ----------------------------------------------------------------- OpenAPI


def v1_openapi() -> dict[str, Any]:
    """The OpenAPI description of the query API, derived from the ops: each parameter
    declared by :func:`catalog.api.kind_schema` (what the server reads), each answer's
    schema from the function's return type, every error status it can answer."""
    paths: dict[str, Any] = {}
    common = [
        _param("min_positions", api.kind_schema("offsets"), "Answer only once these positions "
               "are applied (read-your-writes): PARTITION:NEXT_OFFSET[,...]."),
        _param("as_of", {"type": "string"}, "Answer as the catalog stood then: a time "
               "(ISO 8601, or 3d) or a log position (N, or P:O,...)."),
    ]  # fmt: skip
    for op in api.OPS:
        params = [
            _param(p.name, api.kind_schema(p.kind), p.doc, required=p.required)
            for p in api.parameters(op)
        ]
        ok = {
            "description": f"JSON; times as ISO 8601 (their fields listed in {api.TIMES_HEADER})",
            "headers": _V1_HEADERS,
            "content": {"application/json": {"schema": _json_schema(api.returns(op))}},
        }
        paths[api.PREFIX + op.path] = {
            "get": {
                "summary": op.summary,
                "operationId": f"v1_{op.name}",
                "parameters": params + common,
                "responses": {"200": ok, **errors(*_SNAPSHOT)},
            }
        }
    sql_formats = {
        media.split(";")[0]: {"schema": {"type": "object"} if fmt == "json" else _BYTES}
        for fmt, media in api.SQL_FORMATS.items()
    }
    sql_ok = {
        "description": "Arrow IPC stream, JSON {columns, rows} or CSV",
        "content": sql_formats,
    }
    statement = _param("q", {"type": "string"}, "The statement.", required=True)
    form = _param("format", {"type": "string", "enum": list(api.SQL_FORMATS)}, "Answer format.")
    sql_summary = "A read-only SQL query (one SELECT or EXPLAIN) over the projection's tables."
    paths[api.PREFIX + api.SQL_PATH] = {
        "get": {
            "summary": sql_summary,
            "operationId": "v1_sql",
            "parameters": [statement, form, *common],
            "responses": {"200": sql_ok, **errors(*_SNAPSHOT)},
        },
        "post": {
            "summary": sql_summary + " The statement in a JSON body (no length limit of a URL).",
            "operationId": "v1_sql_post",
            "parameters": common,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "q": {"type": "string", "description": "The statement."},
                                "format": form["schema"],
                            },
                            "required": ["q"],
                        }
                    }
                },
            },
            "responses": {"200": sql_ok, **errors(*_SNAPSHOT)},
        },
    }
    paths[api.PREFIX + api.HEALTH_PATH] = {
        "get": {
            "summary": "Liveness: status, ready (caught up since start), instance id, version.",
            "operationId": "v1_health",
            "security": [],
            "responses": {"200": _json_ok("JSON"), **errors(400, 500)},
        }
    }
    paths[api.PREFIX + "/status"] = {
        "get": {
            "summary": "Where the service stands: positions, log end, lag, log, file, errors.",
            "operationId": "v1_status",
            "responses": {"200": _json_ok("JSON"), **errors(*ANY)},
        }
    }
    paths[api.PREFIX + api.SNAPSHOT_PATH] = {
        "post": {
            "summary": "Publish a snapshot of the projection now (needs the write scope).",
            "operationId": "v1_snapshot",
            "responses": {
                "200": _json_ok("JSON: the snapshot's name, positions, digest, sizes"),
                **errors(*READ, 403, 502),
            },
        }
    }
    _write_paths(paths)
    uri = _param("uri", api.kind_schema("uri"), "The version: a store URI.", required=True)
    paths[api.PREFIX + "/artifacts/content"] = {
        "get": {
            "summary": "A version's stored content, verified against its hash.",
            "operationId": "v1_content",
            "parameters": [uri],
            "responses": {"200": CONTENT, **NOT_MODIFIED, **errors(*READ, 404, 502)},
        }
    }
    paths[api.PREFIX + "/artifacts/yaml"] = {
        "get": {
            "summary": "A version's document as YAML.",
            "operationId": "v1_yaml",
            "parameters": [uri],
            "responses": {
                "200": {
                    "description": "YAML",
                    "content": {"application/yaml": {"schema": DOCUMENT}},
                },
                **errors(*READ, 404),
            },
        }
    }
    return paths


def _write_paths(paths: dict[str, Any]) -> None:
    """Writes through the service (:mod:`catalog.intake`): events, and blobs by digest."""
    wait = _param(WAIT.name, WAIT.schema(), WAIT.doc)
    positions = {
        "type": "object",
        "properties": {
            "positions": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer"}},
                "description": "[partition, offset, log time in ms] of each event, in order",
            },
            "refused": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": "event id -> the projection's reason, for each refused event "
                "(null when not waited for)",
            },
        },
        "required": ["positions", "refused"],
    }
    paths.setdefault(api.PREFIX + api.EVENTS_PATH, {})["post"] = {
        "summary": "Append a batch of encoded events (each framed by its 4-byte big-endian "
        "length) to the service's log: checked as a local writer would, every blob they name "
        "stored, an event id appended once.",
        "operationId": "v1_append_events",
        "parameters": [wait],
        "requestBody": {
            "required": True,
            "content": {api.EVENTS_MEDIA: {"schema": _BYTES}},
        },
        "responses": {
            "200": {"description": "JSON", "content": {"application/json": {"schema": positions}}},
            **errors(*READ, 403, 404, 502),
        },
    }
    digest = {
        "name": "digest",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "description": "The blob's SHA-256, hex.",
    }
    root = _param(
        "root",
        {"type": "string", "minLength": 1},
        "The store's URL (an artifact path the service writes to).",
        required=True,
    )
    stat = _param(
        "stat", {"type": "string", "enum": ["1"]}, "Answer the size as JSON, not the bytes."
    )
    size = {"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]}
    blob = {
        "type": "object",
        "properties": {
            "digest": {"type": "string"},
            "size": {"type": "integer"},
            "url": {"type": "string"},
        },
        "required": ["digest", "size", "url"],
    }
    paths[api.PREFIX + api.BLOBS_PATH] = {
        "post": {
            "summary": "Upload small blobs in one request: each framed as its SHA-256 (32 "
            "bytes), its length (4 bytes, big-endian) and its bytes; all checked before "
            "any is stored.",
            "operationId": "v1_post_objects",
            "parameters": [root],
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": _BYTES}},
            },
            "responses": {
                "200": {
                    "description": "JSON",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"stored": {"type": "integer"}},
                                "required": ["stored"],
                            }
                        }
                    },
                },
                **errors(*ANY, 403, 502),
            },
        }
    }
    paths[api.PREFIX + api.OBJECTS_PATH] = {
        "get": {
            "summary": "A blob's bytes (verified while they stream), or with stat=1 its size.",
            "operationId": "v1_get_object",
            "parameters": [digest, root, stat],
            "responses": {
                "200": {
                    "description": "The bytes, or JSON {size}",
                    "content": {
                        "application/octet-stream": {"schema": _BYTES},
                        "application/json": {"schema": size},
                    },
                },
                **errors(*ANY, 403, 404, 502),
            },
        },
        "head": {
            "summary": "Whether the blob is stored (its size as Content-Length).",
            "operationId": "v1_head_object",
            "parameters": [digest, root],
            "responses": {"200": {"description": "Stored"}, **errors(*ANY, 403, 404, 502)},
        },
        "put": {
            "summary": "Upload a blob: stored only once the bytes hash to the digest "
            "(else DigestMismatch, 400, and nothing is visible).",
            "operationId": "v1_put_object",
            "parameters": [digest, root],
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": _BYTES}},
            },
            "responses": {
                "200": {"description": "JSON", "content": {"application/json": {"schema": blob}}},
                **errors(*ANY, 403, 502),
            },
        },
    }


#: A read that may take ``as_of`` builds a snapshot from the log, on the service's disk.
_SNAPSHOT = (*READ, 502)
_BYTES = {"type": "string", "format": "binary"}
_V1_HEADERS = {
    api.POSITIONS_HEADER: {
        "description": "The positions the answer was read at (P:O,...; next offset each).",
        "required": True,
        "schema": {"type": "string", "pattern": api.OFFSETS_PATTERN},
    },
    api.TIMES_HEADER: {
        "description": "The names of the answer's fields that hold times (comma-separated).",
        "required": True,
        "schema": {"type": "string"},
    },
}


def _json_ok(what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": {"type": "object"}}}}


def _param(name: str, schema: dict[str, Any], doc: str, required: bool = False) -> dict[str, Any]:
    array = schema.get("type") == "array"
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": doc,
        "schema": schema,
        **({"style": "form", "explode": True} if array else {}),
    }


def _json_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of what :func:`catalog.api.dump` makes of a value of type ``hint``."""
    if hint is None or hint is type(None):
        return {"type": "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_json_schema(a) for a in args]}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", datetime: "string"}
    if hint in simple:
        return {"type": simple[hint]}
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        return {
            "type": "object",
            "properties": {name: _json_schema(h) for name, h in fields.items()},
            "required": sorted(hint.__required_keys__),
        }
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": _json_schema(args[0]) if args else {}}
    if origin is dict or (isinstance(origin, type) and issubclass(origin, abc.Mapping)):
        return {"type": "object", "additionalProperties": _json_schema(args[1]) if args else {}}
    return {}  # Any: whatever JSON


# ------------------------------------------------------------------ serving


def allowed_hosts(host: str) -> list[str]:
    """Host header names accepted: loopback names on loopback (no DNS rebinding), else any."""
    return [*LOOPBACK_NAMES, host] if is_loopback(host) else ["*"]


def check_bind(host: str, guard: Guard) -> None:
    """Refuse to listen beyond loopback without read and write tokens (the server's
    own, or managed ones: ``catalog token create``)."""
    if is_loopback(host):
        return
    guard.closed = True  # never open, even once every managed token is revoked
    if guard.managed:
        return
    missing = [
        scope
        for scope, tokens in (("read", guard.read_tokens), ("write", guard.write_tokens))
        if not tokens
    ]
    if missing:
        raise InvalidInput(
            f"binding to {host} lets other machines reach the catalog: give "
            f"{' and '.join(missing)} token(s) in CATALOG_READ_TOKEN / CATALOG_WRITE_TOKEN or "
            "a --tokens-file (never on the command line, where ps shows them), or create "
            "tokens with catalog token create; "
            "put TLS in front with a reverse proxy (docs/operations.md)"
        )


def _check_port(host: str, port: int) -> None:
    """Refuse, before anything starts, a port another process listens on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another catalog serve? choose another with --port)"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Server:
    """A catalog service listening on HTTP in a background thread.

    ``start()`` returns once it listens (reads wait until the projection has
    caught up with the log as it stood at start); ``stop()`` withdraws the
    advertisement, stops listening and releases the projection file.
    """

    def __init__(
        self,
        config: Config,
        *,
        db: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        guard: Guard | None = None,
        ui: bool = True,
        advertise: bool = True,
        wait_timeout: float | None = None,
        batch_size: int | None = None,
        apply_interval: float | None = None,
        read_threads: int | None = None,
        frozen: bool = False,
        start_from_snapshot: bool = True,
    ) -> None:
        self.guard = guard or make_guard()
        check_bind(host, self.guard)
        self.host = host
        self.port = port or free_port(host)
        _check_port(host, self.port)
        self.config = config
        self.db = db or config.db
        _refuse_if_served(self.db)
        kwargs: dict[str, Any] = {}
        if wait_timeout is not None:
            kwargs["wait_timeout"] = wait_timeout
        if batch_size is not None:
            kwargs["batch_size"] = batch_size
        if apply_interval is not None:
            kwargs["apply_interval"] = apply_interval
        self.service = Service(
            config.log,
            self.db,
            frozen=frozen,
            snapshots=snapshots_url(config),
            start_from_snapshot=start_from_snapshot,
            publish_every=snapshot_every(config),
            keep_snapshots=snapshot_keep(config),
            **kwargs,
        )
        self.service.url = self.url
        self.advertise = advertise
        catalog = served_catalog(self.service, config)
        self.readers = Readers(read_threads)
        app = create_app(
            catalog,
            guard=self.guard,
            allowed_hosts=allowed_hosts(host),
            routes=v1_routes(self.service, self.readers),
            serialize=False,
            openapi_paths=v1_openapi,
        )
        if not ui:
            app.router.routes = [
                r for r in app.router.routes if getattr(r, "path", "").startswith("/api/v1")
            ]
        uv_config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.service.start()
        self._thread = threading.Thread(target=self._server.run, name="catalog-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.service.stop()
                raise CatalogError(f"the catalog service did not start on {self.url}")
            time.sleep(0.02)
        if self.advertise:
            api.write_advert(self.db, self.service.advert())
        return self

    def stop(self) -> None:
        if self.advertise:
            api.remove_advert(self.db, self.service.instance)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.readers.close()
        self.service.stop()

    def wait(self, stop: Callable[[], bool], poll: float = 0.2) -> None:
        """Block until ``stop()`` is true (or the server thread ends)."""
        while not stop() and self._thread is not None and self._thread.is_alive():
            time.sleep(poll)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _refuse_if_served(db: str) -> None:
    """A clear error, not a 30 s wait for the file, when another service holds ``db``."""
    from catalog.reader import RemoteReader

    found = api.read_advert(db)
    if found is None:
        return
    remote = RemoteReader(found["url"], timeout=5)
    try:
        same = remote.health().get("instance") == found.get("instance")
    except CatalogError:
        same = False
    finally:
        remote.close()
    if same:
        raise InvalidInput(
            f"{db} is already served by pid {found.get('pid')} at {found['url']}: "
            "read through it (CATALOG_API), or give this service its own --db"
        )


def _tokens_kwargs(tokens: tuple[tuple[str, ...], tuple[str, ...]]) -> dict[str, Any]:
    read, write = tokens
    return {"read_tokens": read, "write_tokens": write}


def make_guard(tokens_file: str | None = None, access_file: str | None = None) -> Guard:
    """The guard of a server from the environment, ``tokens_file`` and the managed
    tokens of ``access_file`` (default :func:`catalog.access.default_path`)."""
    table = TokenTable(access_file or default_path())
    return Guard(**_tokens_kwargs(load_tokens(tokens_file)), table=table)


def serve_forever(
    server: Server, *, echo: Callable[[str], None] = print, signals: Sequence[int] = ()
) -> None:
    """Run ``server`` until SIGTERM/SIGINT (the CLI), telling where it stands."""
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    for sig in signals or (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    server.start()
    echo(
        f"serving {server.db} "
        + (
            f"frozen at {api.format_offsets(server.service.positions) or 'the start'}"
            if server.service.frozen
            else f"(following {server.config.log})"
        )
        + f" on {server.url}/ "
        f"(query API under {api.PREFIX}, web UI at /)"
    )
    try:
        reported = False
        while not stopping.is_set() and server._thread is not None and server._thread.is_alive():
            if not reported and server.service.ready():
                echo(f"caught up: {server.service.applied_events:,} event(s) applied since start")
                reported = True
            stopping.wait(0.2)
    finally:
        server.stop()
