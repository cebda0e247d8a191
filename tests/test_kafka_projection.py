"""Projections of a Kafka topic with several partitions (Tansu, started by the session).

- the projection of a 3-partition topic equals the projection of the same events
  on the embedded log, whatever the batch size;
- read-your-writes in any partition; read replicas agree (same digest);
- messages that are not ours (garbage, another producer's JSON, tombstones) are
  dead-lettered with their partition and offset, and the projection goes on;
- ``catalog consume --follow`` keeps a projection current and exits on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from catalog import Catalog
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.log import EventLog, Message, Position, Record, open_log

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parent.parent

#: Columns that name log positions: equal only between replicas of one log.
POSITION_COLUMNS = {
    "log_partition",
    "log_offset",
    "partition",
    "offset",
    "from_partition",
    "from_offset",
    "to_partition",
    "to_offset",
}


def content(con: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but positions/meta, without position columns nor the log's
    times (a copy of a log is taken later: only what the writers claimed,
    ``events.occurred_at``, travels with the events), sorted."""
    tables = ["artifacts", "tags", "tag_history", "lineage", "runs", "projects", "events"]
    out = {}
    for table in tables:
        cols = [
            r[0]
            for r in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = ? ORDER BY column_index",
                [table],
            ).fetchall()
            if r[0] not in POSITION_COLUMNS
            and (r[1] != "TIMESTAMP WITH TIME ZONE" or r[0] == "occurred_at")
        ]
        select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
        out[table] = sorted(con.execute(f"SELECT {select} FROM {table}").fetchall(), key=repr)
    return out


def every_record(log: EventLog) -> list[Record]:
    records: list[Record] = []
    ends = log.end_offsets()
    positions = {p: 0 for p in ends}
    while page := log.read_range(positions, ends, max_records=1000):
        for r in page:
            positions[r.partition] = r.offset + 1
        records += page
    return records


def make_history(cat: Catalog) -> None:
    """Versions, tags, updates, untags and deletes over many keys."""
    with cat.session():
        _make_history(cat)


def _make_history(cat: Catalog) -> None:
    for round_ in range(3):
        with cat.batch():
            for i in range(15):
                cat.log_artifact(
                    f"key-{i}",
                    body=f"round {round_} item {i}".encode(),
                    labels={"round": str(round_), "i": str(i)},
                )
        for i in (0, 4):
            cat.tag_artifact(f"key-{i}", f"r{round_}")
    cat.update_artifact("key-1", labels={"checked": "yes"}, description="looked at")
    cat.untag_artifact("key-4", "r2")
    cat.delete_artifact("key-2")
    cat.delete_artifact("key-3", all_versions=True)


def test_projection_of_partitions_equals_the_embedded_one(topic_url: str, tmp_path: Path) -> None:
    with Catalog(
        log=f"file://{tmp_path / 'events.db'}",
        db=str(tmp_path / "file.duckdb"),
        artifact_path=str(tmp_path / "art"),
        project="proj",
        actor="tester",
    ) as cat:
        make_history(cat)
        records = every_record(cat.log)
    with open_log(topic_url) as kafka:
        for start in range(0, len(records), 17):
            kafka.append([Message(r.key, r.value, r.headers) for r in records[start : start + 17]])
        ends = kafka.end_offsets()
        assert sum(ends.values()) == len(records)
        assert sum(1 for end in ends.values() if end) >= 2, ends  # spread over partitions
        with (
            open_log(f"file://{tmp_path / 'events.db'}") as file_log,
            Projection(str(tmp_path / "embedded.duckdb")) as embedded,
        ):
            assert embedded.catch_up(file_log) == len(records)
            expected = content(embedded.con)
        for batch_size in (13, 5000):
            with Projection(str(tmp_path / f"kafka-{batch_size}.duckdb")) as proj:
                assert proj.catch_up(kafka, batch_size=batch_size) == len(records)
                assert proj.positions == ends
                assert content(proj.con) == expected
                assert proj.con.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


def test_read_your_writes_in_every_partition(topic_url: str, tmp_path: Path) -> None:
    with Catalog(
        log=topic_url, db=str(tmp_path / "c.duckdb"), artifact_path=str(tmp_path / "art")
    ) as cat:
        seen_partitions = set()
        for i in range(12):
            art = cat.log_artifact(f"k{i}", body=f"v{i}".encode(), tag="t")
            assert cat.get_artifact(f"k{i}:t").uid == art.uid  # caught up to the write
        positions = [Position(p, end - 1) for p, end in cat.log.end_offsets().items() if end]
        seen_partitions = {p.partition for p in positions}
        assert len(seen_partitions) >= 2
        with Projection(str(tmp_path / "other.duckdb")) as proj:
            for pos in positions:
                proj.wait_for(cat.log, pos, timeout=10)
                assert proj.positions[pos.partition] == pos.offset + 1


def test_read_replicas_agree(topic_url: str, tmp_path: Path) -> None:
    with (
        Catalog(
            log=topic_url, db=str(tmp_path / "writer.duckdb"), artifact_path=str(tmp_path / "art")
        ) as cat,
        open_log(topic_url) as log,
    ):
        one = Projection(str(tmp_path / "replica-1.duckdb"))
        two = Projection(str(tmp_path / "replica-2.duckdb"))
        try:
            for round_ in range(3):
                with cat.batch():
                    for i in range(10):
                        cat.log_artifact(f"k{i}", body=f"{round_}/{i}".encode())
                one.catch_up(log, batch_size=3)  # replicas at different paces
            two.catch_up(log)
            assert one.catch_up(log) == 0
            assert one.positions == two.positions == log.end_offsets()
            assert digest(one.con) == digest(two.con)
        finally:
            one.close()
            two.close()
        assert cat.digest() == digest(Projection(str(tmp_path / "replica-1.duckdb")).con)


def test_messages_that_are_not_ours_are_dead_lettered(
    topic_url: str, kafka_broker: Any, tmp_path: Path
) -> None:
    with Catalog(
        log=topic_url, db=str(tmp_path / "c.duckdb"), artifact_path=str(tmp_path / "art")
    ) as cat:
        topic = topic_url.rsplit("/", 1)[1].split("?")[0]
        cat.log_artifact("before", body=b"1")
        foreign = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
        try:
            sent = [
                foreign.send(topic, key=b"before", value=b"\xc3\x01garbage that is not avro"),
                foreign.send(topic, key=b"other/app", value=json.dumps({"hello": 1}).encode()),
                foreign.send(topic, key=None, value=b"\x00\xff" * 10),
                foreign.send(topic, key=b"tombstone", value=None),
            ]
            foreign.flush(timeout=10)
            where = {(md.partition, md.offset) for md in (f.get(timeout=10) for f in sent)}
        finally:
            foreign.close(timeout=5)
        cat.log_artifact("after", body=b"2")
        assert cat.get_artifact("after").key == "after"  # the projection went on
        assert cat.get_artifact("before").key == "before"
        dead = cat.dead_letters()
        assert {(d["partition"], d["offset"]) for d in dead} == where
        assert all(d["reason"] for d in dead)
        assert cat.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 2}]
        assert cat.positions() == cat.log.end_offsets()


def spawn_follower(url: str, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "--log", url, "--db", str(db), "consume", "--follow"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )


def test_consume_follow_keeps_up_and_stops_on_sigterm(topic_url: str, tmp_path: Path) -> None:
    db = tmp_path / "follower.duckdb"
    follower = spawn_follower(topic_url, db)
    try:
        with Catalog(
            log=topic_url, db=str(tmp_path / "writer.duckdb"), artifact_path=str(tmp_path / "a")
        ) as cat:
            for round_ in range(4):
                with cat.batch():
                    for i in range(25):
                        cat.log_artifact(f"k{i}", body=f"{round_}/{i}".encode())
                time.sleep(0.2)
            ends = cat.log.end_offsets()
        time.sleep(4.0)  # the follower owns its file: give it time to apply the last batch
        assert follower.poll() is None, follower.communicate()
        started = time.monotonic()
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
        assert time.monotonic() - started < 5.0
    finally:
        if follower.poll() is None:
            follower.kill()
        with suppress(ValueError):  # pipes already closed by communicate()
            follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "applied 100 record(s)" in out
    with Projection(str(db)) as proj:
        assert proj.positions == ends
        assert proj.con.execute("SELECT count(*) FROM events").fetchone() == (100,)
        assert proj.con.execute("SELECT count(DISTINCT key) FROM artifacts").fetchone() == (25,)
