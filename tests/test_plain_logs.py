"""``Fold.log_plain`` against the event path: random streams, same tables.

The projection applies the plain logs of a batch (keys that only log, new
uids, no tag, no link; :meth:`consumers.columns.LoggedColumns.plain_logs`) in
one pass before the batch's other events. Here random streams — every event
type, refused events, run uids and untags naming version uids, projects made
mid-stream, several partitions, redelivered copies, damaged records — are
projected in the same random batches twice: event by event, and in columns
(with that pass). Digests, dead letters with their reasons, and every
table's rows must be the same. Seeded: a failure names its seed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalog.consumers.columns import LoggedColumns
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.events import columnar
from catalog.events.codec import Codec
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
    RunStarted,
    SourceRef,
)
from catalog.log import Record

CODEC = Codec()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SEEDS = 40
TABLES = (
    "artifacts",
    "tags",
    "tag_intervals",
    "lineage",
    "projects",
    "runs",
    "events",
    "positions",
)


def stream(rng: random.Random, n: int) -> list[CatalogEvent]:
    """``n`` random events over a few keys, projects and (often reused) uids."""
    keys = [f"k{i}" for i in range(rng.choice([3, 8, 15]))]
    shared = [c * 8 for c in "0123456789ab"]
    out = []
    for i in range(n):
        project = rng.choice(["p", "q", "r"]) if rng.random() < 0.3 else "p"
        key = rng.choice(keys)
        uid = rng.choice(shared) if rng.random() < 0.4 else f"{i:08x}{rng.randrange(3)}"
        roll = rng.random()
        payload: Payload
        if roll < 0.55:
            sources: tuple[SourceRef, ...] = ()
            if rng.random() < 0.3:
                parent = f"store://p/{rng.choice(keys)}@{rng.choice(shared)}"
                sources = (SourceRef("s", parent, rng.choice([None, rng.choice(shared)]), None),)
            payload = ArtifactLogged(
                uid=uid,
                kind="nope" if rng.random() < 0.03 else "artifact",
                producer=Producer("client", "x"),
                iteration=rng.choice([0, 0, 1]),
                tag=rng.choice([None] * 6 + ["prod", "latest"]),
                labels={"a": "x"} if rng.random() < 0.9 else {"bad key!": "v"},
                sources=sources,
                extra_data={"plot": f"store://p/{rng.choice(keys)}"} if rng.random() < 0.1 else {},
                spec="{}" if rng.random() < 0.95 else "[1]",
            )
        elif roll < 0.63:
            payload = ArtifactTagged(
                uid=uid, tag=rng.choice(["prod", "dev", "latest"]), iteration=rng.choice([0, 1])
            )
        elif roll < 0.70:
            payload = ArtifactUntagged(
                tag=rng.choice(["prod", "dev", "latest"]),
                uid=rng.choice([None, uid]),
                iteration=rng.choice([0, 1]),
            )
        elif roll < 0.76:
            payload = ArtifactUpdated(uid=uid, labels_set={"b": "y"})
        elif roll < 0.82:
            payload = ArtifactDeleted(uids=(uid,) if rng.random() < 0.7 else ())
        elif roll < 0.86:
            payload = ArtifactDeleted(all_versions=True)
        elif roll < 0.90:
            payload = RunStarted(uid=uid, name="run")
        elif roll < 0.93:
            payload = RunFinished(uid=uid, state="completed")
        elif roll < 0.96:
            payload = ProjectConfigured(description="d")
        else:  # refused: a bad project name
            payload = ArtifactLogged(uid=uid, kind="artifact", producer=Producer("client", "x"))
            project = "Bad_P"
        at = T0 + timedelta(seconds=i if rng.random() < 0.8 else rng.randint(-50, 50))
        out.append(
            CatalogEvent(
                project=project, key=key, payload=payload, actor=rng.choice("ab"), occurred_at=at
            )
        )
    return out


def records(rng: random.Random, events: list[CatalogEvent], partitions: int) -> list[Record]:
    """The events as records spread over ``partitions``, with redelivered copies
    (same event id) and a few damaged records."""
    offsets: dict[int, int] = {}
    values: list[bytes] = []
    out = []

    def add(value: bytes, key: str, error: str | None = None) -> None:
        partition = rng.randrange(partitions)
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        out.append(Record(partition, offset, key, value, 1_700_000_000_000, (), error))

    for ev in events:
        value = CODEC.encode(ev)
        values.append(value)
        add(value, f"{ev.project}/{ev.key}", "checksum" if rng.random() < 0.01 else None)
        if rng.random() < 0.05:
            add(rng.choice(values), "copy")
    return out


def project(recs: list[Record], cuts: list[int], in_columns: bool) -> tuple[Any, ...]:
    saved = columnar.MIN_BATCH
    columnar.MIN_BATCH = 1 if in_columns else 10**9
    try:
        with Projection() as proj:
            start, i = 0, 0
            while start < len(recs):
                proj.apply(recs[start : start + cuts[i % len(cuts)]])
                start, i = start + cuts[i % len(cuts)], i + 1
            dead = proj.con.execute(
                'SELECT "partition", "offset", reason FROM dead_letters ORDER BY ALL'
            ).fetchall()
            rows = {
                t: proj.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES
            }
            return digest(proj.con), dead, rows
    finally:
        columnar.MIN_BATCH = saved


def test_plain_logs_give_the_event_paths_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    plain: list[int] = []
    plain_logs = LoggedColumns.plain_logs

    def counted(self: LoggedColumns, *args: Any) -> Any:
        out = plain_logs(self, *args)
        plain.append(len(out))
        return out

    monkeypatch.setattr(LoggedColumns, "plain_logs", counted)
    for seed in range(SEEDS):
        rng = random.Random(seed)
        recs = records(rng, stream(rng, rng.randint(5, 120)), rng.choice([1, 1, 2, 3]))
        cuts = [rng.randint(1, 40) for _ in range(rng.randint(1, 4))]
        slow = project(recs, cuts, in_columns=False)
        fast = project(recs, cuts, in_columns=True)
        assert fast[1] == slow[1], f"seed {seed}: dead letters differ"
        for table in TABLES:
            assert fast[2][table] == slow[2][table], f"seed {seed}: {table} differs"
        assert fast[0] == slow[0], f"seed {seed}: digests differ"
    assert sum(plain) > 100  # the pass ran, on many logs
