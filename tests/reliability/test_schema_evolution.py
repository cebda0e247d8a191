"""Schema evolution: events written by every earlier envelope version project identically.

For each published envelope version that is not the current one, a varied set
of events is re-encoded with that version's schema (fastavro, the writer an old
client would have been), and compared with the same information written by the
current version: both logs decode, and their projections have the same
canonical digest (the ``events.schema_version`` column aside, which records the
writer version on purpose). tests/test_codec.py pins version 1 with fixtures
encoded by the real version-1 writer; this test covers every version, present
and future, without new fixtures.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.events.codec import MAGIC, Codec, SchemaVersion
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    Payload,
    Producer,
    ProjectConfigured,
    RunFinished,
    RunInput,
    RunStarted,
    SourceRef,
    to_avro,
)
from catalog.log import Record
from reliability.helpers import record

CODEC = Codec()
OLD = [v for v in CODEC.versions if v is not CODEC.current]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def events() -> list[CatalogEvent]:
    """Every payload type, with nested records, maps, arrays, unions and refusals."""
    producer = Producer("run", "train", "p/r1", "me")
    payloads: list[tuple[str, Payload, str | None]] = [
        ("p", ProjectConfigured(artifact_path="/data/{{project}}", labels={"team": "ml"}), None),
        (
            "r1",
            RunStarted(
                uid="r1",
                name="train",
                parameters='{"lr": 0.1}',
                inputs=(RunInput("data", "store://raw:v1", "raw", "a" * 32, "h"),),
            ),
            None,
        ),
        (
            "raw",
            ArtifactLogged(
                uid="a" * 32,
                kind="dataset",
                producer=producer,
                labels={"team": "ml", "stage": "raw"},
                tag="v1",
                hash="ab" * 32,
                size=10,
                target_path="/data/p/objects/sha256/ab/" + "ab" * 31,
                format="csv",
                filename="raw.csv",
                spec='{"schema": {"x": "int"}}',
                description="raw data",
            ),
            "r1",
        ),
        (
            "model",
            ArtifactLogged(
                uid="b" * 32,
                kind="model",
                producer=producer,
                sources=(SourceRef("raw", "store://datasets/p/raw:v1", "a" * 32, "ab" * 32),),
                extra_data={"plot": "store://artifacts/p/plot"},
                spec='{"metrics": {"acc": 0.9}}',
                iteration=2,
                tree="r1",
            ),
            "r1",
        ),
        ("raw", ArtifactTagged(uid="a" * 32, tag="prod"), None),
        (
            "raw",
            ArtifactUpdated(
                uid="a" * 32,
                labels_set={"checked": "yes"},
                labels_removed=("stage",),
                spec_set={"stats": "{}"},
                extra_data_set={"model": "store://models/p/model"},
                description="checked",
            ),
            None,
        ),
        ("raw", ArtifactLogged(uid="c" * 32, kind="dataset", producer=producer), None),
        ("raw", ArtifactUntagged(tag="v1", uid="a" * 32), None),
        ("raw", ArtifactDeleted(uids=("c" * 32,), reason="bad"), None),
        ("raw", ArtifactTagged(uid="c" * 32, tag="x"), None),  # refused: deleted version
        ("gone", ArtifactDeleted(all_versions=True), None),  # refused: no versions
        (
            "r1",
            RunFinished(uid="r1", state="completed", results='{"acc": 0.9}', outputs={"m": "u"}),
            None,
        ),
    ]
    return [
        CatalogEvent(
            project="p",
            key=key,
            payload=payload,
            actor=f"user{i % 3}",
            occurred_at=T0 + timedelta(seconds=i),
            run_uid=run_uid,
        )
        for i, (key, payload, run_uid) in enumerate(payloads)
    ]


def restrict(value: Any, schema: Any, named: dict[str, Any]) -> Any:
    """``value`` (as :func:`to_avro` builds it) cut down to what ``schema`` has."""
    if isinstance(schema, str):
        return restrict(value, named[schema], named) if schema in named else value
    if isinstance(schema, list):  # a union: the branch that fits
        if isinstance(value, tuple):
            name, body = value
            for branch in schema:
                full = branch.get("name") if isinstance(branch, dict) else branch
                if isinstance(branch, dict) and "namespace" in branch:
                    full = f"{branch['namespace']}.{branch['name']}"
                if full == name:
                    return (name, restrict(body, branch, named))
            raise AssertionError(f"{name} is not a branch of the old union")
        for branch in schema:
            if isinstance(branch, dict) and branch.get("type") == "record":
                if isinstance(value, dict):
                    return restrict(value, branch, named)
            elif isinstance(branch, str) and branch in named and isinstance(value, dict):
                return restrict(value, branch, named)
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if kind == "record":
        full = (
            schema["name"]
            if "." in schema["name"]
            else (f"{schema.get('namespace', 'catalog')}.{schema['name']}")
        )
        named.setdefault(full, schema)
        return {
            f["name"]: restrict(value.get(f["name"]), f["type"], named)
            for f in schema["fields"]
            if f["name"] in value
        }
    if kind == "array" and isinstance(value, list | tuple):
        return [restrict(v, schema["items"], named) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: restrict(v, schema["values"], named) for k, v in value.items()}
    return value


def encode_with(version: SchemaVersion, event: CatalogEvent) -> bytes:
    buffer = io.BytesIO()
    buffer.write(MAGIC + version.fingerprint)
    data = restrict(to_avro(event), version.schema, {})
    fastavro.schemaless_writer(buffer, version.parsed, data)
    return buffer.getvalue()


def project(values: list[bytes]) -> tuple[dict[str, str], set[int]]:
    with Projection() as projection:
        result = projection.apply(
            [Record(0, i, "p/k", value, 1_767_225_600_000) for i, value in enumerate(values)]
        )
        assert result.applied + result.dead == len(values)
        versions = {
            r[0] for r in projection.con.execute("SELECT schema_version FROM events").fetchall()
        }
        # What records the writer, on purpose: its version, and a dead letter's raw bytes.
        projection.con.execute("UPDATE events SET schema_version = 0")
        projection.con.execute("UPDATE dead_letters SET value = ''::BLOB")
        return digest(projection.con), versions


def test_there_is_an_older_version_to_test() -> None:
    assert OLD, "only one published envelope version"
    assert [v.version for v in CODEC.versions] == list(range(1, len(CODEC.versions) + 1))


@pytest.mark.parametrize("version", OLD, ids=lambda v: f"v{v.version}")
def test_events_of_an_older_version_project_like_the_current_ones(version: SchemaVersion) -> None:
    originals = events()
    old_values = [encode_with(version, ev) for ev in originals]
    assert {CODEC.writer_of(v).version for v in old_values} == {version.version}
    # The same information as the current writer writes it: what the old bytes say.
    downgraded = [CODEC.decode(v) for v in old_values]
    current_values = [CODEC.encode(ev) for ev in downgraded]
    old_digest, old_versions = project(old_values)
    current_digest, current_versions = project(current_values)
    assert old_versions == {version.version}
    assert current_versions == {CODEC.current.version}
    differing = sorted(k for k in old_digest if old_digest[k] != current_digest[k])
    assert old_digest == current_digest, f"v{version.version} projects differently: {differing}"
    # Nothing but what the old version cannot express was lost on the way.
    for original, old in zip(originals, downgraded, strict=True):
        assert old.payload == original.payload and old.event_id == original.event_id
    with Projection() as check:
        dead = check.apply([Record(0, i, "p/k", v, 0) for i, v in enumerate(old_values)]).dead
    assert dead == 2  # the two refusals, refused under every version
    record("schema evolution (every older envelope version)", versions=1, events=len(old_values))
