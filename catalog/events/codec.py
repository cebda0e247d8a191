"""Avro single-object encoding of catalog events (the only module importing fastavro).

Wire format of every event (Avro specification, "Single object encoding")::

    C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema, little-endian | Avro binary body

A Kafka log may carry the same body in a schema registry's framing instead
(Confluent's wire format, an option of the log: catalog/log/registry.py)::

    00    | 4-byte big-endian schema id, assigned by the registry              | Avro binary body

The log turns such a value back into the single-object form before it reaches
a decoder; the codec itself decodes only single-object values.

Schemas live in ``schemas/``: one ``.avsc`` per named record, named by its full
name (``catalog.ArtifactLogged.avsc``), referencing each other by name. Every
published version of the envelope is also kept fully expanded under
``schemas/published/catalog.CatalogEvent.v<N>.avsc`` — forever, so that events
written by any version still decode. The newest published version is the
writer and reader schema; a test checks it equals the expansion of the
per-record files, so changing a schema without publishing a new version fails.

Decoding looks the fingerprint up among the published versions and resolves
writer to reader schema (Avro schema resolution: added fields take their
defaults). An unknown fingerprint raises :class:`~catalog.errors.UnknownSchema`;
a body that does not decode raises :class:`~catalog.errors.UndecodableEvent`.
Nothing else escapes :meth:`Codec.decode`, whatever the bytes.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from catalog.errors import EventError, UndecodableEvent, UnknownSchema
from catalog.events import columnar
from catalog.events.model import CatalogEvent, from_avro, to_avro

MAGIC = b"\xc3\x01"
ENVELOPE = "catalog.CatalogEvent"
HEADER_SIZE = 10
#: The schema registry framing: its first byte, and the header's size (with the id).
REGISTRY_MAGIC = b"\x00"
REGISTRY_HEADER_SIZE = 5


#: an object's repr with its address (as in " from <_io.BytesIO object at 0x7f...>")
_OBJECT = re.compile(r" (?:from |in )?<[^<>]* at 0x[0-9a-fA-F]+>")


def fingerprint(schema: Any) -> bytes:
    """The 8 fingerprint bytes of a schema, as they appear in single-object encoding:
    the CRC-64-AVRO of its parsing canonical form, little-endian."""
    return bytes.fromhex(avro_fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def schema_dir() -> Path:
    """Where the ``.avsc`` files are: shipped in the wheel, or the source checkout's."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if (candidate / f"{ENVELOPE}.avsc").exists():
            return candidate
    raise FileNotFoundError(f"no {ENVELOPE}.avsc next to {here}")  # pragma: no cover


def load_named(directory: Path) -> dict[str, dict[str, Any]]:
    """Every named record of ``directory``, by full name."""
    named: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = json.loads(path.read_text("utf-8"))
        full = f"{schema['namespace']}.{schema['name']}"
        if path.stem != full:
            raise ValueError(f"{path.name} defines {full}; name the file {full}.avsc")
        named[full] = schema
    return named


def expand(name: str, named: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The self-contained schema of ``name``: referenced records inlined at first use."""
    seen: set[str] = set()

    def walk(node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            full = node if "." in node else f"{namespace}.{node}"
            if full in named:
                if full in seen:
                    return full
                seen.add(full)
                return walk(named[full], namespace)
            return node
        if isinstance(node, list):
            return [walk(n, namespace) for n in node]
        if isinstance(node, dict):
            if node.get("type") == "record":
                ns = node.get("namespace", namespace)
                full = f"{ns}.{node['name']}"
                seen.add(full)
                out = dict(node)
                out["fields"] = [{**f, "type": walk(f["type"], ns)} for f in node["fields"]]
                return out
            if node.get("type") == "array":
                return {**node, "items": walk(node["items"], namespace)}
            if node.get("type") == "map":
                return {**node, "values": walk(node["values"], namespace)}
            return node
        return node

    result: dict[str, Any] = walk(named[name], name.rsplit(".", 1)[0])
    return result


def without_logical_types(node: Any) -> Any:
    """The same schema with every ``logicalType`` removed (identical binary encoding).

    Decoding with it yields raw strings and microseconds instead of ``UUID``
    and ``datetime`` objects, which the codec converts more cheaply itself.
    """
    if isinstance(node, dict):
        return {k: without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [without_logical_types(v) for v in node]
    return node


@dataclass(frozen=True)
class SchemaVersion:
    """One published envelope schema."""

    version: int
    fingerprint: bytes
    schema: dict[str, Any]  # as written in the file
    parsed: Any  # fastavro's parsed form
    plain: Any  # parsed, without logical types: what decoding uses

    @property
    def hex(self) -> str:
        return self.fingerprint.hex()


def load_published(directory: Path) -> list[SchemaVersion]:
    versions = []
    pattern = re.compile(re.escape(ENVELOPE) + r"\.v(\d+)\.avsc$")
    for path in (directory / "published").glob("*.avsc"):
        match = pattern.match(path.name)
        if not match:
            continue
        schema = json.loads(path.read_text("utf-8"))
        versions.append(
            SchemaVersion(
                version=int(match.group(1)),
                fingerprint=fingerprint(schema),
                schema=schema,
                parsed=fastavro.parse_schema(schema),
                plain=fastavro.parse_schema(without_logical_types(schema)),
            )
        )
    return sorted(versions, key=lambda v: v.version)


def publish(directory: Path | None = None) -> Path | None:
    """Publish the envelope the per-record files now describe, if it is new: its
    expansion is written as the next ``published/catalog.CatalogEvent.v<N>.avsc``
    (``make docs`` runs this). Returns the file written, or None if the newest
    published version already is that envelope."""
    directory = directory or schema_dir()
    current = expand(ENVELOPE, load_named(directory))
    versions = load_published(directory)
    if versions and versions[-1].fingerprint == fingerprint(current):
        return None
    path = (
        directory / "published" / f"{ENVELOPE}.v{versions[-1].version + 1 if versions else 1}.avsc"
    )
    path.write_text(json.dumps(current, indent=2) + "\n", "utf-8")
    return path


class Codec:
    """Encode and decode events; thread-safe and cheap to share."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schema_dir()
        self.versions = load_published(self.directory)
        if not self.versions:
            raise FileNotFoundError(f"no published envelope schema in {self.directory}")
        self.current = self.versions[-1]
        self._by_fingerprint = {v.fingerprint: v for v in self.versions}
        self._prefix = MAGIC + self.current.fingerprint

    # ------------------------------------------------------------------ encode

    def encode(self, event: CatalogEvent) -> bytes:
        """The single-object encoding of ``event`` under the current schema."""
        buffer = io.BytesIO()
        buffer.write(self._prefix)
        fastavro.schemaless_writer(buffer, self.current.parsed, to_avro(event))
        return buffer.getvalue()

    # ------------------------------------------------------------------ decode

    def writer_of(self, data: bytes) -> SchemaVersion:
        """The published schema ``data`` was written with (raises on a bad header)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UndecodableEvent(f"expected bytes, got {type(data).__name__}")
        if len(data) < HEADER_SIZE:
            raise UndecodableEvent(f"{len(data)} bytes is shorter than the 10-byte header")
        if data[:1] == REGISTRY_MAGIC and len(data) >= REGISTRY_HEADER_SIZE:
            ident = int.from_bytes(data[1:REGISTRY_HEADER_SIZE], "big")
            raise UndecodableEvent(
                f"registry-framed (schema id {ident}), read without a schema registry "
                "(kafka://...?registry=URL, or CATALOG_SCHEMA_REGISTRY)"
            )
        if data[:2] != MAGIC:
            raise UndecodableEvent(
                f"not Avro single-object encoding (starts with {bytes(data[:2]).hex()}, "
                "expected c301)"
            )
        fp = bytes(data[2:HEADER_SIZE])
        version = self._by_fingerprint.get(fp)
        if version is None:
            raise UnknownSchema(fp)
        return version

    def decode(self, data: bytes) -> CatalogEvent:
        """The event in ``data``, resolved from its writer schema to the current one."""
        return self.decode_full(data)[0]

    def decode_many(
        self, values: Sequence[bytes]
    ) -> list[tuple[CatalogEvent, str, int] | EventError]:
        """Decode a batch: per value, (event, payload JSON text, writer version) or the error.

        The JSON text is ``json.dumps(payload, ensure_ascii=False)`` of the payload
        dict :meth:`decode_full` returns (what ``events.payload`` stores). A big
        batch goes through the compiled columnar decoder (:meth:`decode_columns`);
        what it leaves, and small batches, go through :meth:`decode_json` — same
        results either way.
        """
        batch = self.decode_columns(values)
        if batch is None:
            return [self.decode_json(value) for value in values]
        texts = batch.payload_json.to_pylist()
        version = self.current.version
        return [
            (event, text, version) if event is not None else self.decode_json(value)
            for value, event, text in zip(values, batch.events(), texts, strict=True)
        ]

    def decode_columns(self, values: Sequence[bytes]) -> columnar.Batch | None:
        """``values`` decoded to Arrow columns, or None when that does not pay here.

        None for a batch under :data:`columnar.MIN_BATCH` records, without a C
        compiler, or too big for Arrow string columns. Records the kernel leaves
        to the codec are marked in ``Batch.fallback``: decode them with
        :meth:`decode_json`.
        """
        schema, prefix = self.current.schema, self._prefix
        if not columnar.worth_it(len(values), sum(map(len, values)), schema, prefix):
            return None
        return columnar.decode_batch(list(values), schema, prefix)

    def decode_json(self, value: bytes) -> tuple[CatalogEvent, str, int] | EventError:
        """One value: (event, payload JSON text, writer version), or the error."""
        try:
            event, raw, version = self.decode_full(value)
        except EventError as exc:
            return exc
        return event, json.dumps(raw, ensure_ascii=False), version

    def decode_full(self, data: bytes) -> tuple[CatalogEvent, dict[str, Any], int]:
        """The event, its payload as the plain dict Avro read, and the writer version."""
        writer = self.writer_of(data)
        try:
            # fastavro resolves an older writer's record to the current schema
            buffer = io.BytesIO(data)
            buffer.seek(HEADER_SIZE)
            record = fastavro.schemaless_reader(
                buffer, writer.plain, self.current.plain, return_record_name=True
            )
            end = buffer.tell()
        except Exception as exc:  # garbage raises many kinds of errors
            said = _OBJECT.sub("", str(exc))  # fastavro names its buffer object
            raise UndecodableEvent(f"v{writer.version} body: {type(exc).__name__}: {said}") from exc
        if end != len(data):
            raise UndecodableEvent(
                f"{len(data) - end} trailing bytes after the v{writer.version} body"
            )
        try:
            if not isinstance(record, dict):
                raise TypeError(f"expected a record, got {type(record).__name__}")
            return from_avro(record), record["payload"][1], writer.version
        except Exception as exc:
            raise UndecodableEvent(f"bad record: {type(exc).__name__}: {exc}") from exc


@cache
def default_codec() -> Codec:
    """The process-wide codec over the shipped schemas."""
    return Codec()
