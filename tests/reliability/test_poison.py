"""Poison events: whatever lands on the log, the projection records it and goes on.

Random bytes, truncated bodies, unknown schema fingerprints, damaged records,
and valid Avro with invalid content (a tag of an unknown version, an update of
a deleted one, a hostile key) each become a ``dead_letters`` row with a
reason; the events after them are applied; ``catalog audit --dead-letters``
lists them. The rules' refusals one by one are in tests/test_projection.py.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import Catalog
from catalog.consumers.projection import Projection
from catalog.events.codec import MAGIC, Codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUpdated,
    CatalogEvent,
    Payload,
    Producer,
)
from catalog.log import Message, Record, open_log
from reliability.helpers import catalog_env, invoke, record

CODEC = Codec()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def message(key: str, payload: Payload, n: int = 0) -> Message:
    ev = CatalogEvent(
        project="default", key=key, payload=payload, actor="hand", occurred_at=T0 + timedelta(n)
    )
    return Message(ev.partition_key, CODEC.encode(ev))


def test_every_kind_of_poison_is_listed_by_audit_dead_letters(tmp_path: Path) -> None:
    env = catalog_env(tmp_path)
    with Catalog(
        log=env["CATALOG_LOG"],
        db=str(tmp_path / "w.duckdb"),
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="default",
    ) as cat:
        good = cat.log_artifact("good", body=b"ok")
        gone = cat.log_artifact("gone", body=b"bye")
        cat.delete_artifact(gone.uri)
    valid = CODEC.encode(
        CatalogEvent(
            project="default",
            key="x",
            actor="a",
            payload=ArtifactTagged(uid=good.uid or "", tag="t"),
        )
    )
    poison = [
        ("random bytes", Message("default/x", random.randbytes(64)), "single-object"),
        ("truncated body", Message("default/x", valid[: len(valid) // 2]), "undecodable"),
        ("empty", Message("default/x", b""), "shorter than the 10-byte header"),
        (
            "unknown fingerprint",
            Message("default/x", MAGIC + b"\x01" * 8 + valid[10:]),
            "unknown writer schema",
        ),
        ("trailing bytes", Message("default/x", valid + b"\x00"), "trailing"),
        (
            "tag of an unknown uid",
            message("good", ArtifactTagged(uid="f" * 32, tag="t")),
            "unknown version",
        ),
        (
            "update of a deleted version",
            message("gone", ArtifactUpdated(uid=gone.uid or "")),
            "deleted version",
        ),
        (
            "delete of an unknown version",
            message("good", ArtifactDeleted(uids=("e" * 32,))),
            "unknown version",
        ),
        (
            "hostile key",
            message(
                "../../etc",
                ArtifactLogged(uid="d" * 32, kind="artifact", producer=Producer("client", "x")),
            ),
            "invalid key",
        ),
        (
            "bad label",
            message("good", ArtifactUpdated(uid=good.uid or "", labels_set={"a b": "1"})),
            "label",
        ),
    ]
    with open_log(env["CATALOG_LOG"]) as log:
        start = log.end_offsets()[0]
        log.append([m for _, m, _ in poison])
        log.append([message("good", ArtifactTagged(uid=good.uid or "", tag="after"))])
    # a record damaged on disk, too (CRC mismatch)
    with sqlite3.connect(tmp_path / "events.db") as raw:
        raw.execute('UPDATE records SET crc = crc + 1 WHERE "offset" = ?', [start])

    result = invoke(tmp_path, "audit", "--dead-letters", "--json")
    assert result.exit_code == 0, result.output
    dead = json.loads(result.stdout)
    assert [d["offset"] for d in dead] == list(range(start, start + len(poison)))
    for (what, _, reason), row in zip(poison, dead, strict=True):
        expected = "checksum mismatch" if row["offset"] == start else reason
        assert expected in row["reason"], f"{what}: {row['reason']}"
    table = invoke(tmp_path, "audit", "--dead-letters").stdout.splitlines()
    assert table[0].split()[:3] == ["PARTITION", "OFFSET", "TYPE"] and len(table) == len(poison) + 1
    # ... and the projection went on past them.
    shown = invoke(tmp_path, "show", "good:after", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["metadata"]["uid"] == good.uid
    record("poison events (CLI)", kinds=len(poison) + 1)


def poison_strategy() -> st.SearchStrategy[bytes]:
    valid = CODEC.encode(
        CatalogEvent(project="p", key="k", actor="a", payload=ArtifactTagged(uid="u", tag="t"))
    )
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.binary(min_size=8, max_size=8).map(lambda fp: MAGIC + fp + valid[10:]),
        st.binary(min_size=1, max_size=20).map(lambda extra: valid + extra),
    )


PLAN = st.lists(st.one_of(st.integers(0, 5), poison_strategy()), min_size=1, max_size=30)
POISON_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=20, **POISON_SETTINGS)  # type: ignore[arg-type]
@given(plan=PLAN)
def test_poison_interleaved_with_events_changes_nothing_else(plan: list[int | bytes]) -> None:
    check_interleaved(plan)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(max_examples=500, **POISON_SETTINGS)  # type: ignore[arg-type]
@given(plan=PLAN)
def test_poison_interleaved_soak(plan: list[int | bytes]) -> None:
    check_interleaved(plan)


def check_interleaved(plan: list[int | bytes]) -> None:
    """With poison mixed in, the state is what the valid events alone make."""
    valid: list[bytes] = []
    mixed: list[bytes] = []
    poison = 0
    for n, item in enumerate(plan):
        if isinstance(item, int):
            ev = CatalogEvent(
                project="p",
                key=f"k{item % 2}",
                actor="a",
                occurred_at=T0 + timedelta(seconds=n),
                payload=ArtifactLogged(
                    uid=f"{item:032x}",
                    kind="artifact",
                    producer=Producer("client", "a"),
                    tag="v" if item else None,
                ),
            )
            value = CODEC.encode(ev)
            valid.append(value)
            mixed.append(value)
        else:
            mixed.append(item)
            poison += 1
    state = []
    for values in (valid, mixed):
        with Projection() as projection:
            result = projection.apply([Record(0, i, "p/k", v, 0) for i, v in enumerate(values)])
            assert result.applied + result.dead == len(values)
            state.append(
                (
                    projection.con.execute(
                        "SELECT key, tag, uid FROM tags ORDER BY ALL"
                    ).fetchall(),
                    projection.con.execute(
                        "SELECT uid, labels, deleted FROM artifacts ORDER BY uid"
                    ).fetchall(),
                    result.dead,
                )
            )
    assert state[0][:2] == state[1][:2]
    assert state[1][2] - state[0][2] == poison
    record("poison interleaved (hypothesis)", cases=1, poison_records=poison)


def test_a_damaged_record_with_an_impossible_log_time_is_dead_lettered(tmp_path: Path) -> None:
    """Found by the damaged-file soak: a scribble hit a record's value and its log time."""
    url = f"file://{tmp_path / 'events.db'}"
    with open_log(url) as log:
        log.append([message("k", ArtifactTagged(uid="u", tag="t"), n) for n in range(3)])
    with sqlite3.connect(tmp_path / "events.db") as raw:
        raw.execute(
            'UPDATE records SET crc = crc + 1, appended_ms = -89405649512647 WHERE "offset" = 1'
        )
    with open_log(url) as log, Projection(str(tmp_path / "p.duckdb")) as projection:
        projection.catch_up(log)
        dead = projection.con.execute('SELECT "offset", reason, log_time FROM dead_letters')
        rows = dead.fetchall()
        damaged = [(offset, when) for offset, reason, when in rows if "checksum" in reason]
        assert damaged == [(1, None)]
        assert projection.positions == {0: 3}
