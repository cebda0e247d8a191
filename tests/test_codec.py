"""Schemas, event classes and the single-object encoding."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.consumers.projection import Projection
from catalog.errors import EventError, UndecodableEvent, UnknownSchema
from catalog.events.codec import (
    ENVELOPE,
    MAGIC,
    Codec,
    expand,
    fingerprint,
    load_named,
    schema_dir,
)
from catalog.events.model import (
    PAYLOAD_TYPES,
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    Producer,
    ProjectConfigured,
    RunFinished,
    RunInput,
    RunStarted,
    SourceRef,
    build_record,
)
from catalog.log import Record

SCHEMAS = schema_dir()
NAMED = load_named(SCHEMAS)
NESTED = {
    "catalog.RunInput": RunInput,
    "catalog.Producer": Producer,
    "catalog.SourceRef": SourceRef,
}


def test_one_file_per_named_record_with_docs() -> None:
    assert set(NAMED) == {f"catalog.{n}" for n in PAYLOAD_TYPES} | set(NESTED) | {ENVELOPE}
    for name, schema in NAMED.items():
        assert schema.get("doc"), f"{name} has no doc"
        for field in schema["fields"]:
            assert field.get("doc"), f"{name}.{field['name']} has no doc"


@pytest.mark.parametrize("name", sorted(set(NAMED) - {ENVELOPE}))
def test_schema_and_class_have_the_same_fields(name: str) -> None:
    cls = PAYLOAD_TYPES.get(name.split(".", 1)[1]) or NESTED[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields == {f["name"] for f in NAMED[name]["fields"]}


def test_sql_over_event_payloads_names_real_fields() -> None:
    """Queries that read ``events.payload`` as JSON (diff, audit, the lineage feed) name
    fields by their path; each must be a field of some payload class, so renaming a
    field in the events fails here rather than silently reading NULL."""
    import re

    fields = {f.name for cls in PAYLOAD_TYPES.values() for f in dataclasses.fields(cls)}
    path = re.compile(r"payload\s*->>?\s*'(?:\$\.)?([A-Za-z_][A-Za-z0-9_]*)'")
    named = {
        (source.name, name)
        for source in (SCHEMAS.parent / "catalog").rglob("*.py")
        for name in path.findall(source.read_text("utf-8"))
    }
    assert named, "no payload paths found: the pattern is out of date"
    assert {(file, name) for file, name in named if name not in fields} == set()


def test_envelope_fields_match_class() -> None:
    fields = {f.name for f in dataclasses.fields(CatalogEvent)}
    assert fields == {f["name"] for f in NAMED[ENVELOPE]["fields"]}


def test_union_lists_every_payload_in_registry_order() -> None:
    (payload,) = [f for f in NAMED[ENVELOPE]["fields"] if f["name"] == "payload"]
    assert payload["type"] == [f"catalog.{n}" for n in PAYLOAD_TYPES]


def test_current_published_schema_is_the_expansion_of_the_files() -> None:
    published = sorted((SCHEMAS / "published").glob("*.avsc"))
    assert published, "no published envelope"
    latest = json.loads(published[-1].read_text())
    assert fingerprint(latest) == fingerprint(expand(ENVELOPE, NAMED)), (
        "schemas/*.avsc changed: publish a new envelope version (make docs)"
    )


def test_fingerprint_matches_the_avro_spec_reference_values() -> None:
    # From the Avro specification's test vectors: fingerprint64 of "null" and of "int".
    assert fingerprint("null") == (0x63DD24E7CC258F8A).to_bytes(8, "little")
    assert fingerprint("int") == (0x7275D51A3F395C8F).to_bytes(8, "little")


def _event(payload: object, **kw: object) -> CatalogEvent:
    return CatalogEvent(project="p", key="k", payload=payload, actor="me", **kw)  # type: ignore[arg-type]


ALL_PAYLOADS = [
    ProjectConfigured(artifact_path="s3://b/{{project}}", labels={"a": "b"}),
    RunStarted(uid="r1", name="train", inputs=(RunInput("x", "store://d:v1", "u", "u1", "h"),)),
    RunFinished(uid="r1", state="error", error="boom", results='{"acc": 0.9}', outputs={"m": "u"}),
    ArtifactLogged(
        uid="u1",
        kind="model",
        producer=Producer("run", "train", "p/r1", "me"),
        sources=(SourceRef("d", "store://d", "u0", "h0"),),
        labels={"x": "y"},
        extra_data={"plot": "store://p"},
        spec='{"metrics":{"a":1}}',
        tag="v2",
        hash="ab" * 32,
        size=5,
        iteration=3,
        tree="r1",
        description="d",
    ),
    ArtifactTagged(uid="u1", tag="prod"),
    ArtifactUntagged(tag="prod", uid="u1"),
    ArtifactUpdated(
        uid="u1",
        labels_set={"a": "1"},
        labels_removed=("b",),
        spec_set={"stats": "{}"},
        description="x",
    ),
    ArtifactDeleted(uids=("u1", "u2"), reason="gdpr"),
]


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: type(p).__name__)
def test_build_record_equals_the_constructor(payload: object) -> None:
    """Given every field, or only those that differ from their defaults (as a caller
    written before a field was added passes them), as the constructor builds it."""
    cls = type(payload)
    every = {f.name: getattr(payload, f.name) for f in dataclasses.fields(payload)}  # type: ignore[arg-type]
    assert build_record(cls, every) == payload
    required = {
        f.name: every[f.name]
        for f in dataclasses.fields(payload)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    changed = {
        name: value
        for name, value in every.items()
        if name in required or value != getattr(cls(**required), name)
    }
    built = build_record(cls, changed)
    assert built == payload
    assert built == cls(**changed)


def test_build_record_refuses_missing_and_unknown_fields() -> None:
    with pytest.raises(TypeError, match=r"missing fields \['tag'\]"):
        build_record(ArtifactTagged, {"uid": "u"})
    with pytest.raises(TypeError, match=r"unknown fields \['colour'\]"):
        build_record(ArtifactTagged, {"uid": "u", "tag": "t", "colour": "red"})


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: type(p).__name__)
def test_round_trip_every_payload(payload: object) -> None:
    codec = _codec()
    event = _event(payload, run_uid="r1")
    data = codec.encode(event)
    assert data[:2] == MAGIC
    assert data[2:10] == codec.current.fingerprint
    assert codec.decode(data) == event


# One codec per session for the property tests: building one compiles the decoder
# (about 20 ms), and a codec holds no state between calls.
_codec = functools.cache(Codec)

_text = st.text(max_size=20)
_maps = st.dictionaries(st.text(max_size=8), _text, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    key=_text,
    actor=_text,
    labels=_maps,
    tag=st.none() | _text,
    size=st.none() | st.integers(min_value=0, max_value=2**62),
    micros=st.integers(min_value=0, max_value=4_000_000_000_000_000),
    sources=st.lists(st.builds(SourceRef, _text, _text, st.none() | _text), max_size=3),
)
def test_round_trip_property(
    key: str,
    actor: str,
    labels: dict[str, str],
    tag: str | None,
    size: int | None,
    micros: int,
    sources: list[SourceRef],
) -> None:
    codec = _codec()
    when = datetime.fromtimestamp(0, UTC) + (
        datetime.fromtimestamp(micros / 1e6, UTC) - datetime.fromtimestamp(0, UTC)
    )
    event = CatalogEvent(
        project="p",
        key=key,
        actor=actor,
        occurred_at=when,
        payload=ArtifactLogged(
            uid="u",
            kind="artifact",
            producer=Producer("client", actor),
            labels=labels,
            tag=tag,
            size=size,
            sources=tuple(sources),
        ),
    )
    assert codec.decode(codec.encode(event)) == event


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_event_errors(data: bytes) -> None:
    codec = _codec()
    with contextlib.suppress(EventError):
        codec.decode(data)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_corrupted_valid_events_raise_only_event_errors(data: st.DataObject) -> None:
    codec = _codec()
    raw = bytearray(codec.encode(_event(data.draw(st.sampled_from(ALL_PAYLOADS)))))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    flips = data.draw(st.lists(st.integers(min_value=10, max_value=len(raw) - 1), max_size=3))
    for i in flips:
        raw[i] ^= 0xFF
    with contextlib.suppress(EventError):
        codec.decode(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


def test_unknown_fingerprint_and_bad_magic() -> None:
    codec = _codec()
    good = codec.encode(_event(ALL_PAYLOADS[4]))
    with pytest.raises(UnknownSchema):
        codec.decode(MAGIC + b"\x00" * 8 + good[10:])
    with pytest.raises(UndecodableEvent, match="single-object"):
        codec.decode(b"{}" + good[2:])
    with pytest.raises(UndecodableEvent, match="trailing"):
        codec.decode(good + b"\x00")


FIXTURE = Path(__file__).parent / "fixtures" / "events-v1.json"


def _v1_records() -> list[Record]:
    data = json.loads(FIXTURE.read_text())
    return [
        Record(0, i, r["key"], bytes.fromhex(r["value"]), 0) for i, r in enumerate(data["records"])
    ]


def test_version_1_events_decode_under_the_current_reader() -> None:
    codec = _codec()
    records = _v1_records()
    assert {codec.writer_of(r.value).version for r in records} == {1}
    events = [codec.decode(r.value) for r in records]
    assert [e.type for e in events] == [
        "ProjectConfigured",
        "ArtifactLogged",
        "ArtifactLogged",
        "ArtifactTagged",
        "ArtifactUpdated",
    ]
    assert all(e.run_uid is None for e in events)  # the field added in v2 takes its default
    assert events[1].payload.labels == {"team": "ml"}  # type: ignore[union-attr]


def test_version_1_events_project() -> None:
    with Projection() as proj:
        result = proj.apply(_v1_records())
        assert (result.applied, result.dead) == (5, 0)
        tags = dict(proj.con.execute("SELECT tag || '@' || key, uid FROM tags").fetchall())
        assert tags == {
            "v1@raw": "a" * 32,
            "latest@raw": "a" * 32,
            "latest@clean": "b" * 32,
            "prod@clean": "b" * 32,
        }
        labels = proj.con.execute("SELECT labels FROM artifacts WHERE key = 'raw'").fetchall()
        assert labels == [({"checked": "yes", "team": "ml"},)]
        versions = proj.con.execute("SELECT DISTINCT schema_version FROM events").fetchall()
        assert versions == [(1,)]
        lineage = proj.con.execute("SELECT parent_key, parent_uid FROM lineage").fetchall()
        assert lineage == [("raw", "a" * 32)]


def _fastavro_bytes(codec: Codec, event: CatalogEvent) -> bytes:
    import io

    import fastavro

    from catalog.events.model import to_avro

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, codec.current.parsed, to_avro(event))
    return codec.current.fingerprint.join([MAGIC, buffer.getvalue()])


def test_encode_takes_what_avro_takes_and_refuses_the_rest() -> None:
    """Values the schema allows encode as fastavro writes them; others are refused."""
    import uuid

    codec = _codec()
    odd_id = _event(ArtifactTagged(uid="u", tag="t"), event_id=uuid.UUID(int=7))
    assert codec.decode(codec.encode(odd_id)).event_id == str(uuid.UUID(int=7))
    event = _event(ArtifactTagged(uid="u", tag="t"))
    assert codec.encode(event) == _fastavro_bytes(codec, event)
    bad_uid = _event(ArtifactTagged(uid=7, tag="t"))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - fastavro's error
        codec.encode(bad_uid)


def test_event_ids_are_random_version_4_uuids() -> None:
    import uuid

    from catalog.events.model import _uuid

    ids = [_uuid() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
