"""The projection's rules, redelivery, dead letters and positions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.consumers import schema
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
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
    RunFinished,
    RunStarted,
)
from catalog.log import Message, open_log
from catalog.log.base import EventLog, Record

CODEC = Codec()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCER = Producer("client", "me")


class Writer:
    """Appends hand-made events to a real embedded log."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.n = 0

    def event(self, key: str, payload: Payload, project: str = "p") -> CatalogEvent:
        self.n += 1
        return CatalogEvent(
            project=project,
            key=key,
            payload=payload,
            actor=f"a{self.n % 3}",
            occurred_at=T0 + timedelta(seconds=self.n),
        )

    def append(self, *events: CatalogEvent) -> None:
        self.log.append([Message(e.partition_key, CODEC.encode(e)) for e in events])

    def emit(self, key: str, payload: Payload, project: str = "p") -> CatalogEvent:
        ev = self.event(key, payload, project)
        self.append(ev)
        return ev


def logged(uid: str, tag: str | None = None, **kw: object) -> ArtifactLogged:
    return ArtifactLogged(uid=uid, kind="artifact", producer=PRODUCER, tag=tag, **kw)  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path) -> EventLog:
    with open_log(f"file://{tmp_path / 'log.db'}") as lg:
        yield lg


@pytest.fixture
def w(log: EventLog) -> Writer:
    return Writer(log)


@pytest.fixture
def proj(tmp_path: Path, log: EventLog) -> Projection:
    with Projection(str(tmp_path / "p.duckdb")) as p:
        yield p


def tags(proj: Projection) -> dict[tuple[str, str], str]:
    rows = proj.con.execute("SELECT key, tag, uid FROM tags").fetchall()
    return {(k, t): u for k, t, u in rows}


def dead(proj: Projection) -> list[str]:
    return [
        r[0]
        for r in proj.con.execute('SELECT reason FROM dead_letters ORDER BY "offset"').fetchall()
    ]


def test_latest_follows_log_order_and_tags_move(w: Writer, log: EventLog, proj: Projection) -> None:
    w.emit("k", logged("a1", tag="v1"))
    w.emit("k", logged("a2"))
    proj.catch_up(log)
    assert tags(proj) == {("k", "latest"): "a2", ("k", "v1"): "a1"}
    w.emit("k", ArtifactTagged(uid="a2", tag="v1"))
    w.emit("k", logged("a1"))  # re-logging a version makes it latest again, same uid
    proj.catch_up(log)
    assert tags(proj) == {("k", "latest"): "a1", ("k", "v1"): "a2"}
    assert proj.con.execute("SELECT count(*) FROM artifacts").fetchall() == [(2,)]
    created = proj.con.execute("SELECT created, updated FROM artifacts WHERE uid='a1'").fetchall()
    assert created[0][0] < created[0][1]  # created kept, updated moved


def test_untag_only_if_the_writer_saw_that_version(
    w: Writer, log: EventLog, proj: Projection
) -> None:
    w.emit("k", logged("a1", tag="prod"))
    w.emit("k", logged("a2"))
    w.emit("k", ArtifactUntagged(tag="prod", uid="a2"))  # stale: prod is on a1
    proj.catch_up(log)
    assert ("k", "prod") in tags(proj)
    w.emit("k", ArtifactUntagged(tag="prod", uid="a1"))
    w.emit("k", ArtifactUntagged(tag="never"))  # absent: no-op, not an error
    proj.catch_up(log)
    assert ("k", "prod") not in tags(proj)
    assert dead(proj) == []


def test_update_merges_labels_links_and_spec(w: Writer, log: EventLog, proj: Projection) -> None:
    w.emit("k", logged("a1", labels={"a": "1", "b": "2"}, spec='{"x": 1, "y": 2}'))
    w.emit("k", ArtifactUpdated(uid="a1", labels_set={"c": "3"}, labels_removed=("a",)))
    w.emit(
        "k",
        ArtifactUpdated(
            uid="a1",
            spec_set={"y": "[1,2]"},
            spec_removed=("x",),
            extra_data_set={"plot": "store://artifacts/p/plot^b1"},
        ),
    )
    proj.catch_up(log)
    labels, spec, extra = proj.con.execute(
        "SELECT labels, spec, extra_data FROM artifacts"
    ).fetchall()[0]
    assert labels == {"b": "2", "c": "3"}
    assert json.loads(spec) == {"y": [1, 2]}
    assert extra == {"plot": "store://artifacts/p/plot^b1"}
    edges = proj.con.execute(
        "SELECT relation, name, parent_key, parent_uid FROM lineage"
    ).fetchall()
    assert edges == [("extra_data", "plot", "plot", "b1")]
    assert tags(proj) == {("k", "latest"): "a1"}  # no tag moved


def test_delete_drops_tags_and_latest_falls_back(
    w: Writer, log: EventLog, proj: Projection
) -> None:
    w.emit("k", logged("a1", tag="v1"))
    w.emit("k", logged("a2", tag="v2"))
    w.emit("k", ArtifactDeleted(uids=("a2",)))
    proj.catch_up(log)
    assert tags(proj) == {("k", "latest"): "a1", ("k", "v1"): "a1"}
    w.emit("k", ArtifactDeleted(all_versions=True))
    proj.catch_up(log)
    assert tags(proj) == {}
    assert proj.con.execute("SELECT bool_and(deleted) FROM artifacts").fetchall() == [(True,)]
    w.emit("k", logged("a2"))  # logging a deleted version again brings it back
    proj.catch_up(log)
    assert tags(proj) == {("k", "latest"): "a2"}


@pytest.mark.parametrize(
    ("payloads", "reason"),
    [
        ([ArtifactTagged(uid="zz", tag="x")], "unknown version"),
        (
            [logged("a1"), ArtifactDeleted(uids=("a1",)), ArtifactTagged(uid="a1", tag="x")],
            "deleted version",
        ),
        (
            [logged("a1"), ArtifactDeleted(uids=("a1",)), ArtifactUpdated(uid="a1")],
            "deleted version",
        ),
        ([logged("a1"), ArtifactTagged(uid="a1", tag="latest")], "latest"),
        ([logged("a1"), ArtifactTagged(uid="a1", tag="bad tag")], "tag"),
        ([ArtifactLogged(uid="a1", kind="nope", producer=PRODUCER)], "unknown kind"),
        ([logged("a1", spec="[1]")], "JSON object"),
        ([ArtifactDeleted(uids=("a9",))], "unknown version"),
        ([RunFinished(uid="r9", state="completed")], "unknown run"),
    ],
)
def test_invalid_events_are_dead_lettered_and_projection_continues(
    w: Writer, log: EventLog, proj: Projection, payloads: list[Payload], reason: str
) -> None:
    for p in payloads:
        w.emit("k", p)
    w.emit("other", logged("ok1"))
    proj.catch_up(log)
    assert len(dead(proj)) == 1 and reason in dead(proj)[0]
    assert tags(proj)[("other", "latest")] == "ok1"


def test_tag_of_a_version_of_another_key_is_refused(
    w: Writer, log: EventLog, proj: Projection
) -> None:
    w.emit("k1", logged("a1"))
    w.emit("k2", ArtifactTagged(uid="a1", tag="x"))
    proj.catch_up(log)
    assert "belongs to p/k1" in dead(proj)[0]


def test_a_tag_differing_only_by_case_from_one_the_key_has_is_refused(
    w: Writer, log: EventLog, proj: Projection
) -> None:
    w.emit("k", logged("a1", tag="prod"))
    w.emit("k", logged("a2"))
    w.emit("k", ArtifactTagged(uid="a2", tag="PROD"))  # beside prod: refused
    w.emit("k", logged("a3", tag="Prod"))  # a log carrying it: refused whole
    w.emit("k", ArtifactTagged(uid="a2", tag="LATEST"))  # beside latest, on every key
    w.emit("k", ArtifactTagged(uid="a2", tag="prod"))  # the same tag moves, as ever
    w.emit("other", logged("o1", tag="PROD"))  # another key's tags are its own
    w.emit("k", ArtifactUntagged(tag="prod", uid="a2"))
    w.emit("k", ArtifactTagged(uid="a2", tag="Prod"))  # prod is gone: Prod may be set
    proj.catch_up(log)
    assert tags(proj) == {
        ("k", "latest"): "a2",
        ("k", "Prod"): "a2",
        ("other", "latest"): "o1",
        ("other", "PROD"): "o1",
    }
    reasons = dead(proj)
    assert len(reasons) == 3
    assert "'PROD' differs only by case from the tag 'prod' of p/k" in reasons[0]
    assert "'Prod' differs only by case" in reasons[1]
    assert "'LATEST'" in reasons[2] and "latest" in reasons[2]
    assert proj.con.execute("SELECT count(*) FROM artifacts WHERE uid = 'a3'").fetchall() == [(0,)]


def test_garbage_records_are_dead_lettered(w: Writer, log: EventLog, proj: Projection) -> None:
    log.append([Message("p/x", b"not avro at all"), Message("p/x", b"\xc3\x01" + b"\x00" * 8)])
    w.emit("k", logged("a1"))
    proj.catch_up(log)
    reasons = dead(proj)
    assert "single-object" in reasons[0] and "unknown writer schema" in reasons[1]
    assert tags(proj) == {("k", "latest"): "a1"}
    blobs = proj.con.execute('SELECT value FROM dead_letters ORDER BY "offset"').fetchall()
    assert blobs[0][0] == b"not avro at all"  # the raw bytes are kept, never lost


def test_redelivery_changes_nothing(w: Writer, log: EventLog, tmp_path: Path) -> None:
    events = [w.event("k", logged(f"a{i}", tag=f"t{i % 3}")) for i in range(10)]
    events += [w.event("k", ArtifactUpdated(uid="a3", labels_set={"x": "y"}))]
    w.append(*events)
    w.append(*events[3:7])  # the same events again (same event_ids) at new positions
    with Projection() as once:
        once.catch_up(log)
        clean = tags(once)
        assert once.con.execute("SELECT count(*) FROM events").fetchall() == [(11,)]
    records = log.read({0: 0}, 1000)
    with Projection() as twice:
        # out of batch alignment, and whole batches delivered twice
        twice.apply(records[:5])
        twice.apply(records[2:9])
        twice.apply(records[:12])
        twice.apply(records)
        twice.apply(records)
        assert tags(twice) == clean
        assert twice.con.execute("SELECT count(*) FROM events").fetchall() == [(11,)]
        assert twice.positions == {0: len(records)}
        assert twice.con.execute("SELECT count(*) FROM dead_letters").fetchall() == [(0,)]


def test_a_refused_event_redelivered_later_changes_nothing(w: Writer, log: EventLog) -> None:
    """An event id counts once, applied or refused: a copy of a refused event that
    arrives after the log that would make it valid is dropped, whether the two
    copies share a batch or not (the state never depends on where batches end)."""
    early = w.event("k", ArtifactTagged(uid="a1", tag="prod"))  # a1 is not logged yet
    w.append(early, w.event("k", logged("a1")), early)
    records = log.read({0: 0}, 10)
    results = []
    for sizes in ([3], [1, 1, 1], [1, 2], [2, 1]):
        with Projection() as p:
            start = 0
            for size in sizes:
                p.apply(records[start : start + size])
                start += size
            results.append(
                (
                    tags(p),
                    p.con.execute("SELECT count(*) FROM dead_letters").fetchall(),
                    p.con.execute("SELECT count(*) FROM events").fetchall(),
                    digest(p.con),
                )
            )
    assert all(r == results[0] for r in results)
    assert ("k", "prod") not in results[0][0]
    assert results[0][1:3] == ([(1,)], [(1,)])


def test_positions_are_committed_with_the_state(w: Writer, log: EventLog, tmp_path: Path) -> None:
    for i in range(7):
        w.emit("k", logged(f"a{i}"))
    path = str(tmp_path / "resume.duckdb")
    with Projection(path) as p:
        p.catch_up(log, batch_size=3)
        first = digest(p.con)
    with Projection(path) as p:
        assert p.positions == {0: 7}
        assert p.catch_up(log) == 0
        w.emit("k", logged("b"))
        assert p.catch_up(log) == 1
        assert digest(p.con) != first


def test_a_failed_commit_raises_its_own_error_and_applies_nothing(
    w: Writer, log: EventLog, proj: Projection
) -> None:
    """A COMMIT that fails (disk full, I/O error) ends the transaction: the batch
    raises that error, not the ROLLBACK's "no transaction is active"."""
    import duckdb

    w.emit("k", logged("a"))
    proj.bind(log)  # its own COMMIT goes through
    real = proj.con

    class FailingCommit:  # the connection, with a COMMIT that fails after rolling back
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                real.execute("ROLLBACK")
                raise duckdb.IOException("IO Error: could not write the WAL (no space left)")
            return real.execute(sql, *args)

    proj.con = FailingCommit()  # type: ignore[assignment]
    with pytest.raises(duckdb.IOException, match="no space left"):
        proj.catch_up(log)
    proj.con = real
    assert proj.positions == {}
    assert proj.con.execute("SELECT count(*) FROM artifacts").fetchall() == [(0,)]
    assert proj.catch_up(log) == 1  # and the next try applies it


def test_runs(w: Writer, log: EventLog, proj: Projection) -> None:
    w.emit("r1", RunStarted(uid="r1", name="train", parameters='{"lr": 0.1}'))
    w.emit(
        "r1",
        RunFinished(
            uid="r1",
            state="completed",
            results='{"acc": 0.9}',
            outputs={"model": "store://models/p/m^u"},
        ),
    )
    proj.catch_up(log)
    row = proj.con.execute(
        "SELECT name, state, results, outputs, finished >= started FROM runs"
    ).fetchall()[0]
    assert row == ("train", "completed", '{"acc": 0.9}', {"model": "store://models/p/m^u"}, True)


def test_schema_version_mismatch_rebuilds(w: Writer, log: EventLog, tmp_path: Path) -> None:
    w.emit("k", logged("a1"))
    path = str(tmp_path / "old.duckdb")
    with Projection(path) as p:
        p.catch_up(log)
        p.con.execute("UPDATE meta SET value = '0' WHERE name = 'schema_version'")
    with Projection(path) as p:
        assert p.positions == {}  # derived data: dropped, to be rebuilt from the log
        p.catch_up(log)
        assert tags(p) == {("k", "latest"): "a1"}


def test_a_file_of_the_previous_schema_is_rebuilt(w: Writer, log: EventLog, tmp_path: Path) -> None:
    """Schema 4 had tag_history as a table (now a view) and no tag_intervals."""
    w.emit("k", logged("a1"))
    path = str(tmp_path / "v4.duckdb")
    with Projection(path) as p:
        p.catch_up(log)
        p.con.execute("DROP VIEW tag_history")
        p.con.execute("DROP TABLE tag_intervals")
        p.con.execute("CREATE TABLE tag_history (project VARCHAR, valid_to TIMESTAMPTZ)")
        p.con.execute("CREATE VIEW old_view AS SELECT * FROM tag_history")
        p.con.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")
    with Projection(path) as p:
        assert p.positions == {}
        p.catch_up(log)
        kinds = dict(
            p.con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_catalog = current_database()"
            ).fetchall()
        )
        assert kinds["tag_history"] == "VIEW" and kinds["tag_intervals"] == "BASE TABLE"
        assert "old_view" not in kinds
        assert tags(p) == {("k", "latest"): "a1"}


def test_writers_of_one_file_in_one_process_share_it(
    w: Writer, log: EventLog, tmp_path: Path
) -> None:
    """Two writable connections to one file in a process (two Catalogs, a session and
    a one-shot call) share DuckDB's instance, as opening the file by path does; the
    file is free for other processes once both close."""
    w.emit("k", logged("a1"))
    path = str(tmp_path / "shared.duckdb")
    with Projection(path) as first, Projection(path) as second:
        first.catch_up(log)
        assert tags(second) == {("k", "latest"): "a1"}
    code = (
        "import duckdb, sys; "
        "print(duckdb.connect(sys.argv[1]).execute('SELECT count(*) FROM tags').fetchall())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[(1,)]"


def _indexes(path: str) -> set[str]:
    with Projection(path) as p:
        return {r[0] for r in p.con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}


def test_a_replay_builds_its_indexes_at_the_end(w: Writer, log: EventLog, tmp_path: Path) -> None:
    from catalog.consumers.replay import rebuild

    w.emit("k", logged("a1"))
    w.emit("k", logged("a2", tag="prod"))
    path = str(tmp_path / "replayed.duckdb")
    rebuild(log, path)
    wanted = {schema.index_name(s) for s in schema.INDEXES}
    assert _indexes(path) == wanted
    with Projection(path) as p:  # and a file that lost them (a killed bulk load) gets them back
        p.drop_indexes()
        assert tags(p) == {("k", "latest"): "a2", ("k", "prod"): "a2"}
    assert _indexes(path) == wanted


def test_projection_of_another_log_is_reset(w: Writer, log: EventLog, tmp_path: Path) -> None:
    w.emit("k", logged("a1"))
    path = str(tmp_path / "p.duckdb")
    with Projection(path) as p:
        p.catch_up(log)
    with open_log(f"file://{tmp_path / 'other.db'}") as other, Projection(path) as p:
        Writer(other).emit("z", logged("z1"))
        p.catch_up(other)
        assert tags(p) == {("z", "latest"): "z1"}


def test_damaged_record_is_dead_lettered() -> None:
    with Projection() as p:
        p.apply([Record(0, 0, "p/k", b"xx", 0, error="checksum mismatch")])
        assert "damaged record" in dead(p)[0]
        assert p.positions == {0: 1}


def test_docs_sql_is_current() -> None:
    page = (Path(__file__).parent.parent / "docs" / "sql.md").read_text()
    begin, end = "<!-- tables:begin -->\n", "<!-- tables:end -->"
    assert begin in page and end in page
    generated = page.split(begin, 1)[1].split(end, 1)[0]
    assert generated == schema.docs_markdown(), (
        "docs/sql.md is stale: run python -m catalog.consumers.schema"
    )


def test_files_are_written_in_small_row_groups(tmp_path: Path) -> None:
    """Row groups of ROW_GROUP_SIZE rows (full ones are written as a batch fills them),
    in a directory whose name needs quoting in SQL."""
    from bench import events as bench_events
    from catalog.consumers.database import ROW_GROUP_SIZE

    n = 2 * ROW_GROUP_SIZE + 100
    url = f"file://{tmp_path / 'log.db'}"
    bench_events.write_log(url, n)
    path = tmp_path / "it's a dir" / "p.duckdb"
    with open_log(url) as lg, Projection(str(path)) as p:
        assert p.catch_up(lg, batch_size=n) == n
        groups = p.con.execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info('events') GROUP BY ALL"
        ).fetchall()
        assert len(groups) == 3 and max(c for _, c in groups) == ROW_GROUP_SIZE
    with Projection(str(path)) as p:  # reopened: the same file, the same positions
        assert p.positions == {0: n}


def test_the_bench_floor_writes_every_row_of_the_projection(tmp_path: Path) -> None:
    """bench/floor.py times what no projector can skip: it reads and decodes every
    record and writes exactly the rows the projection holds, into an equal file. The
    last batch read is too short to decode in columns: decoded one by one."""
    from bench import events as bench_events
    from bench import floor
    from catalog.consumers.projection import DEFAULT_BATCH

    n = DEFAULT_BATCH + 100
    url = f"file://{tmp_path / 'log.db'}"
    bench_events.write_log(url, n)
    with open_log(url) as lg, Projection(str(tmp_path / "p.duckdb")) as p:
        assert p.catch_up(lg) == n
        held = {t: p.con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in floor.TABLES}
    with open_log(url) as lg:
        ground = floor.measure(lg, tmp_path / "p.duckdb", tmp_path)
    assert ground.events == n and ground.rows == sum(held.values())
    assert ground.transactions == 2
    assert min(ground.read_s, ground.decode_s, ground.write_s) > 0
    with Projection(str(tmp_path / "floor.duckdb")) as copy:
        for table, count in held.items():
            assert copy.con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] == count
    assert "50,000/s allows 20 µs/event" in ground.describe(50_000)


def test_a_bulk_load_reads_bigger_batches(tmp_path: Path) -> None:
    """Between drop_indexes and create_indexes (a replay, a snapshot) a catch-up reads
    BULK_BATCH records a transaction; otherwise DEFAULT_BATCH, or what it is given."""
    from bench import events as bench_events
    from catalog.consumers.projection import BULK_BATCH, DEFAULT_BATCH

    url = f"file://{tmp_path / 'log.db'}"
    bench_events.write_log(url, 30)
    asked: list[int] = []
    with open_log(url) as lg, Projection(str(tmp_path / "p.duckdb")) as p:
        read_range = lg.read_range

        def spy(offsets: dict, ends: dict, max_records: int = 1000) -> list:
            asked.append(max_records)
            return read_range(offsets, ends, max_records)

        lg.read_range = spy  # type: ignore[method-assign]
        p.catch_up(lg, until={0: 10})
        p.drop_indexes()
        assert p.batch_size == BULK_BATCH
        p.catch_up(lg, until={0: 20})
        p.create_indexes(bulk=True)
        p.catch_up(lg, until={0: 25}, batch_size=7)
        p.catch_up(lg)
        assert p.positions == {0: 30}
    assert asked == [DEFAULT_BATCH, BULK_BATCH, 7, DEFAULT_BATCH]
