"""Events written by the SDK through Kafka, read back by an independent stack.

The reader shares no code with the catalog: librdkafka (``confluent-kafka``)
consumes the topic, and the Apache Avro reference library (``avro``) decodes,
using only the ``.avsc`` files in ``schemas/`` and the Avro specification's
single-object encoding: ``C3 01``, the little-endian CRC-64-AVRO fingerprint of
the writer schema's canonical form, then the binary body. Every event of every
type must decode, and every field must be what the SDK wrote.

The fingerprint is computed here from the specification (Parsing Canonical
Form, then CRC-64-AVRO, both written out below). The ``avro`` library's own
``Schema.canonical_form`` (1.12) does not apply the spec's [PRIMITIVES] rule to
primitives carrying a ``logicalType`` (it keeps ``{"type":"string"}`` for the
``uuid`` event id where the spec, Java's SchemaNormalization and fastavro write
``"string"``), so its ``fingerprint()`` differs from every conforming
implementation's for our envelope; the test pins that this is the only difference.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avro.io
import avro.name
import avro.schema
import pytest
from confluent_kafka import Consumer, TopicPartition

from catalog import Catalog
from catalog.client import Written
from catalog.events.model import CatalogEvent, RunFinished, RunInput, RunStarted

pytestmark = pytest.mark.kafka

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

# ------------------------------------------------- the spec, independently


def _crc64_table() -> list[int]:
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    return table


CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint, written out from the spec."""
    fp = 0xC15D213AA4D7A795
    for byte in data:
        fp = (fp >> 8) ^ CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def canonical(node: Any, namespace: str = "") -> str:
    """The spec's Parsing Canonical Form of a schema given as JSON."""
    if isinstance(node, str):
        full = node if node in PRIMITIVES or "." in node else f"{namespace}.{node}".lstrip(".")
        return json.dumps(full, ensure_ascii=False)
    if isinstance(node, list):
        return "[" + ",".join(canonical(branch, namespace) for branch in node) + "]"
    kind = node["type"]
    if not isinstance(kind, str) or kind not in (
        "record",
        "error",
        "enum",
        "fixed",
        "array",
        "map",
    ):
        return canonical(kind, namespace)  # [PRIMITIVES]: {"type": "string", ...} -> "string"
    if kind == "array":
        return '{"type":"array","items":' + canonical(node["items"], namespace) + "}"
    if kind == "map":
        return '{"type":"map","values":' + canonical(node["values"], namespace) + "}"
    name = node["name"]
    if "." not in name:
        name = f"{node.get('namespace', namespace)}.{name}".lstrip(".")
    head = '{"name":' + json.dumps(name, ensure_ascii=False) + ',"type":'
    if kind == "enum":
        return head + '"enum","symbols":' + json.dumps(node["symbols"], ensure_ascii=False) + "}"
    if kind == "fixed":
        return head + f'"fixed","size":{int(node["size"])}' + "}"
    inner = name.rpartition(".")[0]
    fields = ",".join(
        '{"name":'
        + json.dumps(f["name"], ensure_ascii=False)
        + ',"type":'
        + canonical(f["type"], inner)
        + "}"
        for f in node["fields"]
    )
    return head + '"record","fields":[' + fields + "]}"


def referenced(node: Any, namespace: str) -> Iterator[str]:
    """Full names of the named types a schema node refers to."""
    if isinstance(node, str):
        if node not in PRIMITIVES:
            yield node if "." in node else f"{namespace}.{node}"
    elif isinstance(node, list):
        for branch in node:
            yield from referenced(branch, namespace)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error"):
            inner = node.get("namespace", namespace)
            for f in node["fields"]:
                yield from referenced(f["type"], inner)
        elif kind == "array":
            yield from referenced(node["items"], namespace)
        elif kind == "map":
            yield from referenced(node["values"], namespace)
        elif kind not in ("enum", "fixed"):
            yield from referenced(kind, namespace)


def load_schemas() -> dict[str, avro.schema.Schema]:
    """Parse every per-record ``.avsc`` into one Names space, dependencies first."""
    docs = {p.name[: -len(".avsc")]: json.loads(p.read_text()) for p in SCHEMAS.glob("*.avsc")}
    for name, doc in docs.items():
        assert f"{doc.get('namespace', '')}.{doc['name']}".lstrip(".") == name, name
    deps = {
        name: set(referenced(doc, doc.get("namespace", ""))) - {name} for name, doc in docs.items()
    }
    names = avro.name.Names()
    parsed: dict[str, avro.schema.Schema] = {}
    while len(parsed) < len(docs):
        ready = [n for n in sorted(docs) if n not in parsed and deps[n] <= set(parsed)]
        assert ready, f"unresolvable references: { {n: deps[n] - set(parsed) for n in docs} }"
        for name in ready:
            parsed[name] = avro.schema.make_avsc_object(docs[name], names)
    return parsed


@pytest.fixture(scope="module")
def envelope() -> avro.schema.Schema:
    schemas = load_schemas()
    current = schemas["catalog.CatalogEvent"]
    published_text = (SCHEMAS / "published" / "catalog.CatalogEvent.v2.avsc").read_text()
    published = avro.schema.parse(published_text)
    assert current.canonical_form == published.canonical_form
    assert canonical(current.to_json()) == canonical(json.loads(published_text))
    return current


# ----------------------------------------------------------------- the test


def consume_all(bootstrap: str, topic: str, count: int) -> list[Any]:
    """``count`` messages of ``topic`` through librdkafka, by manual assignment."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"interop-{uuid.uuid4().hex}",  # required by librdkafka; never joined
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + 30
        while len(messages) < count:
            assert time.monotonic() < deadline, f"got {len(messages)} of {count} messages"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
        return messages
    finally:
        consumer.close()


def plain(value: Any) -> Any:
    """SDK values as the Avro library returns them (tuples as lists, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def test_sdk_events_decode_with_the_reference_library(
    envelope: avro.schema.Schema,
    kafka_broker: Any,
    topic_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[tuple[CatalogEvent, Any]] = []
    with Catalog(
        log=topic_url,
        db=str(tmp_path / "c.duckdb"),
        artifact_path=str(tmp_path / "art"),
        project="interop",
        actor="writer",
    ) as cat:
        real = cat.append_events

        def recording(events: Any) -> Written:
            result = real(events)
            written.extend(zip(result.events, result.positions, strict=True))
            return result

        monkeypatch.setattr(cat, "append_events", recording)
        cat.configure_project("interop", description="ü ∂ 日本", labels={"team": "ml"})
        run = uuid.uuid4().hex
        cat.emit(
            "interop",
            run,
            [
                RunStarted(
                    uid=run,
                    name="train",
                    handler="main",
                    labels={"a": "b"},
                    parameters='{"lr": 0.1}',
                    inputs=(RunInput(name="data", url="s3://b/k", uid="u1", hash="h"),),
                    artifact_path="s3://b/p",
                )
            ],
        )
        first = cat.log_artifact("data", body=b"\x00\x01", labels={"k": "v"}, tag="v1")
        cat.log_artifact(
            "model", body=b"weights", kind="model", sources=[first.uri], extra_data={"x": first.uri}
        )
        cat.tag_artifact("data", "prod")
        cat.untag_artifact("data", "v1")
        cat.update_artifact("data", labels={"k": "w"}, remove_labels=["gone"], description="d")
        cat.delete_artifact("model", reason="cleanup")
        cat.emit("interop", run, [RunFinished(uid=run, state="completed", outputs={"m": "x"})])

    assert {ev.type for ev, _ in written} == {
        "ProjectConfigured",
        "RunStarted",
        "RunFinished",
        "ArtifactLogged",
        "ArtifactTagged",
        "ArtifactUntagged",
        "ArtifactUpdated",
        "ArtifactDeleted",
    }
    topic = topic_url.rsplit("/", 1)[1].split("?", 1)[0]
    messages = consume_all(kafka_broker.bootstrap, topic, len(written))
    by_position = {(m.partition(), m.offset()): m for m in messages}
    assert len(by_position) == len(written)

    form = canonical(envelope.to_json())
    fingerprint = struct.pack("<Q", crc64_avro(form.encode("utf-8")))
    # avro 1.12 keeps {"type":"string"} for primitives with a logicalType (see above).
    library = re.sub(r'\{"type":"(\w+)"\}', r'"\1"', envelope.canonical_form)
    assert library == form
    assert envelope.fingerprint("CRC-64-AVRO") != fingerprint
    reader = avro.io.DatumReader(envelope)
    for event, pos in written:
        message = by_position[(pos.partition, pos.offset)]
        value: bytes = message.value()
        assert value[:2] == b"\xc3\x01"
        assert value[2:10] == fingerprint
        decoded = reader.read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))

        assert message.key().decode() == f"{event.project}/{event.key}"
        headers = dict(message.headers())
        assert headers["type"].decode() == event.type
        assert headers["schema"] == fingerprint.hex().encode()  # as text (issue 20)
        assert str(decoded["event_id"]) == event.event_id
        assert decoded["occurred_at"] == event.occurred_at
        assert decoded["occurred_at"].utcoffset().total_seconds() == 0
        for name in ("actor", "project", "key", "run_uid"):
            assert decoded[name] == getattr(event, name), name
        assert decoded["payload"] == plain(event.payload), event.type
