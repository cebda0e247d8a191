"""A small schema registry for the tests: the Confluent Schema Registry REST API, in part.

Why our own: no schema registry server installs from the package registries
this project can reach (Confluent's is a Java service shipped as tarballs and
images, Karapace and Apicurio are not installable here, Redpanda's is part of
its broker binary). The producer's HTTP exchange is checked against this one,
which keeps to the documented API (Confluent's "Schema Registry API
Reference") and to nothing more:

- ``POST /subjects/{subject}/versions`` with ``{"schema": "<Avro JSON>"}``:
  ``{"id": N}``. A schema the subject already has (same parsed form) answers
  its id; a schema registered under another subject keeps its global id; a new
  one must pass the subject's compatibility check, ``BACKWARD`` (the default):
  the new schema reads data written with the latest version, judged with the
  Apache ``avro`` package's reader/writer compatibility checker; refused:
  ``409`` with ``error_code`` 409. A schema that does not parse: ``422``,
  ``error_code`` 42201.
- ``GET /schemas/ids/{id}``: ``{"schema": "..."}``; unknown: ``404``,
  ``error_code`` 40403.
- ``POST /compatibility/subjects/{subject}/versions/latest``:
  ``{"is_compatible": bool}`` (40401 if the subject has no version).
- With ``credentials`` set, a request without ``Authorization`` equal to one of
  them is ``401``.

Every request is recorded (method, path, content type, body, whether it carried
credentials) for the tests to check the exchange. It serves in a thread of the
test process on a free loopback port (``port=0``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from servers import LoopbackHTTP, QuietHandler

MEDIA = "application/vnd.schemaregistry.v1+json"


@dataclass
class Exchange:
    method: str
    path: str
    content_type: str
    body: Any
    authorized: bool


@dataclass
class Registry(LoopbackHTTP):
    """The registry's state and its HTTP server."""

    credentials: tuple[str, ...] = ()  # accepted Authorization header values
    schemas: dict[int, str] = field(default_factory=dict)  # id -> schema text
    subjects: dict[str, list[int]] = field(default_factory=dict)  # subject -> ids by version
    exchanges: list[Exchange] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Registry:
        registry = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                registry._handle(self, "GET")

            def do_POST(self) -> None:
                registry._handle(self, "POST")

        self.serve(Handler)
        return self

    # ------------------------------------------------------------ the API

    def register(self, subject: str, text: str) -> tuple[int, dict[str, Any]]:
        try:
            parsed = avro.schema.parse(text)
        except Exception as exc:
            return 422, {"error_code": 42201, "message": f"Invalid schema: {exc}"}
        canonical = json.dumps(parsed.to_json(), sort_keys=True)
        with self._lock:
            ids = self.subjects.setdefault(subject, [])
            for ident in ids:
                if self._canonical(ident) == canonical:
                    return 200, {"id": ident}
            if ids and not self._compatible(parsed, self.schemas[ids[-1]]):
                return 409, {
                    "error_code": 409,
                    "message": "Schema being registered is incompatible with an earlier schema "
                    f'for subject "{subject}" (BACKWARD)',
                }
            ident = next((i for i in self.schemas if self._canonical(i) == canonical), None)
            if ident is None:
                ident = len(self.schemas) + 1
                self.schemas[ident] = text
            ids.append(ident)
            return 200, {"id": ident}

    def _canonical(self, ident: int) -> str:
        return json.dumps(avro.schema.parse(self.schemas[ident]).to_json(), sort_keys=True)

    @staticmethod
    def _compatible(reader: avro.schema.Schema, writer_text: str) -> bool:
        writer = avro.schema.parse(writer_text)
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
        return result.compatibility is SchemaCompatibilityType.compatible

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        authorized = not self.credentials or request.headers.get("Authorization") in set(
            self.credentials
        )
        self.exchanges.append(
            Exchange(
                method, request.path, request.headers.get("Content-Type", ""), body, authorized
            )
        )
        status, answer = self._route(method, request.path, body, authorized)
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", MEDIA)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _route(
        self, method: str, path: str, body: Any, authorized: bool
    ) -> tuple[int, dict[str, Any]]:
        if not authorized:
            return 401, {"error_code": 401, "message": "Unauthorized"}
        parts = path.strip("/").split("/")
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "subjects"
            and parts[2] == "versions"
        ):
            if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
                return 422, {"error_code": 42201, "message": "Invalid schema"}
            if body.get("schemaType", "AVRO") != "AVRO":
                return 422, {"error_code": 42201, "message": "only AVRO here"}
            return self.register(parts[1], body["schema"])
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            ident = int(parts[2]) if parts[2].isdigit() else -1
            if ident not in self.schemas:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"schema": self.schemas[ident]}
        if method == "POST" and parts[:2] == ["compatibility", "subjects"] and len(parts) == 5:
            ids = self.subjects.get(parts[2])
            if not ids:
                return 404, {"error_code": 40401, "message": "Subject not found"}
            try:
                parsed = avro.schema.parse(body["schema"])
            except Exception as exc:
                return 422, {"error_code": 42201, "message": f"Invalid schema: {exc}"}
            return 200, {"is_compatible": self._compatible(parsed, self.schemas[ids[-1]])}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}
