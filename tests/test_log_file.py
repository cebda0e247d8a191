"""The embedded SQLite log: the log contract, plus what only a file can promise.

Besides :class:`~tests.log_contract.LogContract`: URL forms, durability across
reopen, several processes appending at once, a writer SIGKILLed mid-append
(batches all-or-nothing, offsets dense, every record's CRC intact), and a
scribbled record detected by its CRC and dead-lettered by the projection.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from log_contract import LogContract, MakeLog

from catalog.consumers.projection import Projection
from catalog.errors import LogError
from catalog.events.codec import Codec
from catalog.events.model import ArtifactLogged, CatalogEvent, Producer
from catalog.log import EventLog, Message, Position, Record, open_log
from catalog.log.file import FileLog

ROOT = Path(__file__).resolve().parent.parent


def read_all(log: EventLog) -> list[Record]:
    """Every record of a single-partition log, from offset 0."""
    records: list[Record] = []
    while True:
        page = log.read({0: len(records)}, max_records=500)
        if not page:
            return records
        records += page


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    """A Python child running ``script`` (stdin/stdout piped, text mode)."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, and collect it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


class TestFileLog(LogContract):
    """The contract, on a fresh log file per test."""

    @pytest.fixture
    def make_log(self, tmp_path: Path) -> Iterator[MakeLog]:
        url = f"file://{tmp_path / 'contract' / 'events.db'}"
        handles: list[EventLog] = []

        def make() -> EventLog:
            handles.append(open_log(url))
            return handles[-1]

        yield make
        for handle in handles:
            handle.close()

    def test_a_fresh_log_starts_at_offset_zero(self, log: EventLog) -> None:
        assert log.end_offsets() == {0: 0}
        assert log.read({}) == []
        positions = log.append([Message("p/a", b"1"), Message("p/b", b"2")])
        assert positions == [Position(0, 0), Position(0, 1)]
        assert [r.offset for r in log.read({})] == [0, 1]  # missing partition: from 0

    def test_pages_are_full_until_the_last(self, log: EventLog) -> None:
        log.append([Message("p/k", f"{i}".encode()) for i in range(23)])
        sizes = []
        offset = 0
        while page := log.read({0: offset}, max_records=5):
            sizes.append(len(page))
            assert [r.offset for r in page] == list(range(offset, offset + len(page)))
            offset += len(page)
        assert sizes == [5, 5, 5, 5, 3]


# --------------------------------------------------------------------- URLs


def test_open_log_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a" / "events.db"
    with open_log(f"file://{path}") as first:  # file:///abs
        assert isinstance(first, FileLog)
        assert first.url == f"file://{path}"
        first.append([Message("p/k", b"v")])
        log_id = first.log_id
    with open_log(str(path)) as plain:  # a plain path
        assert isinstance(plain, FileLog)
        assert plain.log_id == log_id and plain.end_offsets() == {0: 1}
    monkeypatch.chdir(tmp_path)
    with open_log("file://a/events.db") as relative:  # relative to the working directory
        assert relative.url == f"file://{path}"
        assert relative.log_id == log_id
    with open_log("a/events.db") as relative_plain:
        assert relative_plain.log_id == log_id
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_log("file://~/a/events.db") as home:
        assert home.log_id == log_id


@pytest.mark.parametrize("url", ["s3://bucket/events", "http://host/log", "ftp://x/y", "file://"])
def test_open_log_refuses_unknown_schemes_and_empty_paths(url: str) -> None:
    with pytest.raises(LogError) as info:
        open_log(url)
    assert info.value.url == url


def test_open_log_reports_an_unusable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LogError):
        open_log(f"file://{blocker / 'events.db'}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(LogError):
        open_log(f"file://{garbage}")


# --------------------------------------------------------------- durability


def test_records_survive_close_and_reopen(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'events.db'}"
    messages = [
        Message(f"p/k{i % 4}", f"value {i}".encode(), (("n", bytes([i])),)) for i in range(50)
    ]
    with open_log(url) as log:
        log_id = log.log_id
        for start in range(0, 50, 10):
            log.append(messages[start : start + 10])
    with open_log(url) as log:
        assert log.log_id == log_id
        assert log.end_offsets() == {0: 50}
        records = read_all(log)
        assert [(r.key, r.value, r.headers) for r in records] == [
            (m.key, m.value, m.headers) for m in messages
        ]
        assert all(r.error is None for r in records)
        assert log.append([Message("p/k", b"after reopen")]) == [Position(0, 50)]
    with open_log(url) as log:
        assert read_all(log)[-1].value == b"after reopen"


# ---------------------------------------------------------- many processes

APPENDER = r"""
import json, random, sys
from catalog.log import Message, open_log

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(name)
log = open_log(url)
print("ready", flush=True)
sys.stdin.readline()  # start together
acks = []
for i in range(count):
    size = rng.choice([1, 1, 1, 2, 3])
    values = [f"{name}-{i}-{j}" for j in range(size)]
    positions = log.append([Message(f"p/{name}", v.encode()) for v in values])
    acks.append([[p.partition, p.offset, v] for p, v in zip(positions, values)])
log.close()
print(json.dumps(acks), flush=True)
"""


def test_several_processes_append_at_once(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'events.db'}"
    with open_log(url):
        pass  # create the file up front: the children race only on appends
    procs = [spawn(APPENDER, url, f"w{n}", "200") for n in range(4)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=100) for proc in procs]
    finally:
        for proc in procs:
            reap(proc)
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    batches = [batch for out, _ in outputs for batch in json.loads(out)]
    acked = {}
    for batch in batches:
        offsets = [offset for _, offset, _ in batch]
        # A batch is written in one transaction: contiguous, in order.
        assert offsets == list(range(offsets[0], offsets[0] + len(batch)))
        for partition, offset, value in batch:
            assert partition == 0
            assert offset not in acked, f"offset {offset} acknowledged twice"
            acked[offset] = value
    total = len(acked)
    assert total >= 800
    with open_log(url) as log:
        records = read_all(log)
        assert log.end_offsets() == {0: total}
    assert [r.offset for r in records] == list(range(total))  # dense, no gaps
    assert all(r.error is None for r in records)
    assert {r.offset: r.value.decode() for r in records} == acked
    assert len({r.value for r in records}) == total  # no duplicates
    # Each writer's own records are in its order.
    for n in range(4):
        mine = [r.value.decode() for r in records if r.key == f"p/w{n}"]
        order = [tuple(int(x) for x in v.split("-")[1:]) for v in mine]
        assert order == sorted(order)


# ------------------------------------------------------------ crash mid-append

CRASHER = r"""
import random, sys
from catalog.log import Message, open_log

url, trial, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
log = open_log(url)
print("ready", flush=True)
batch = 0
while True:
    size = rng.randint(1, 40)
    log.append([
        Message(
            f"p/k{rng.randrange(5)}",
            f"{trial}.{batch}:{i}/{size}|".encode() + bytes(rng.randrange(4000)),
        )
        for i in range(size)
    ])
    batch += 1
"""


def test_a_writer_killed_mid_append_leaves_whole_batches(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'events.db'}"
    master = random.randrange(2**32)
    rng = random.Random(master)
    written_before = 0
    for trial in range(5):
        seed = rng.randrange(2**32)
        delay = rng.uniform(0.05, 0.6)
        where = f"master seed {master}, trial {trial}, child seed {seed}, kill after {delay:.3f}s"
        proc = spawn(CRASHER, url, str(trial), str(seed))
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", where
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            reap(proc)
        assert proc.returncode == -signal.SIGKILL, where

        with open_log(url) as log:
            records = read_all(log)
            assert log.end_offsets() == {0: len(records)}, where
        with closing(sqlite3.connect(url[len("file://") :])) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
        assert [r.offset for r in records] == list(range(len(records))), where
        damaged = [(r.offset, r.error) for r in records if r.error is not None]
        assert damaged == [], where
        batches: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for r in records:
            label = r.value.split(b"|", 1)[0].decode()
            batch_id, _, part = label.partition(":")
            index, _, size = part.partition("/")
            batches[batch_id].append((r.offset, int(index), int(size)))
        for batch_id, rows in batches.items():
            size = rows[0][2]
            # All or nothing, contiguous and in order.
            assert [i for _, i, _ in rows] == list(range(size)), f"{where}: batch {batch_id}"
            assert [o for o, _, _ in rows] == list(range(rows[0][0], rows[0][0] + size)), where
        # Every batch of every trial so far is there: acknowledged ones are durable.
        for t in range(trial + 1):
            ids = sorted(int(b.split(".")[1]) for b in batches if b.split(".")[0] == str(t))
            assert ids == list(range(len(ids))), f"{where}: trial {t} lost a batch"
        assert len(records) >= written_before, where
        written_before = len(records)
    assert written_before > 0, f"master seed {master}: the writer never wrote anything"


# ------------------------------------------------------------ corrupt record

CODEC = Codec()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(n: int) -> Message:
    ev = CatalogEvent(
        project="p",
        key=f"k{n}",
        payload=ArtifactLogged(uid=f"u{n}", kind="artifact", producer=Producer("client", "me")),
        actor="tester",
        occurred_at=T0 + timedelta(seconds=n),
    )
    return Message(ev.partition_key, CODEC.encode(ev))


def scribble(value: bytes) -> bytes:
    middle = len(value) // 2
    return value[:middle] + bytes([value[middle] ^ 0x5A]) + value[middle + 1 :]


@pytest.mark.parametrize("damage", ["soon", 1.5], ids=["text", "real"])  # NULL: a torn page
def test_a_damaged_time_reads_as_no_time(tmp_path: Path, damage: object) -> None:
    """The checksum covers key and value, not the append time: a time that is no
    integer reads as none (-1), and the projection takes the writer's claimed time."""
    url = f"file://{tmp_path / 'events.db'}"
    with open_log(url) as log:
        log.append([event(n) for n in range(3)])
        with closing(sqlite3.connect(tmp_path / "events.db")) as raw, raw:
            raw.execute('UPDATE records SET appended_ms = ? WHERE "offset" = 1', (damage,))
        records = log.read({0: 0})
        assert [r.timestamp_ms >= 0 for r in records] == [True, False, True]
        assert all(r.error is None for r in records)
        with Projection(str(tmp_path / "p.duckdb")) as proj:
            assert proj.catch_up(log) == 3
            times = proj.con.execute(
                'SELECT logged_at = occurred_at FROM events ORDER BY "offset"'
            ).fetchall()
            assert times[1] == (True,)  # the writer's claim, the only time there is


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (scribble, "checksum mismatch"),
        (lambda value: value.hex(), "wrong column types"),  # stored as TEXT
    ],
    ids=["flipped-byte", "text-value"],
)
def test_a_damaged_record_is_reported_and_dead_lettered(
    tmp_path: Path, damage: object, expected: str
) -> None:
    url = f"file://{tmp_path / 'events.db'}"
    messages = [event(n) for n in range(5)]
    with open_log(url) as log:
        log.append(messages)
        with closing(sqlite3.connect(tmp_path / "events.db")) as raw, raw:
            (stored,) = raw.execute('SELECT value FROM records WHERE "offset" = 2').fetchone()
            raw.execute(
                'UPDATE records SET value = ? WHERE "offset" = 2',
                (damage(stored),),  # type: ignore[operator]
            )

        records = log.read({0: 0})
        assert [r.offset for r in records] == [0, 1, 2, 3, 4]
        assert expected in (records[2].error or "")
        for r, m in zip(records, messages, strict=True):
            if r.offset != 2:
                assert r.error is None
                assert (r.key, r.value) == (m.key, m.value)

        with Projection(str(tmp_path / "p.duckdb")) as proj:
            assert proj.catch_up(log) == 5
            con = proj.con
            dead = con.execute('SELECT "offset", reason FROM dead_letters').fetchall()
            assert len(dead) == 1 and dead[0][0] == 2
            assert "damaged record" in dead[0][1] and expected in dead[0][1]
            assert con.execute(
                'SELECT list("offset" ORDER BY "offset") FROM events'
            ).fetchall() == [([0, 1, 3, 4],)]
            assert proj.positions == {0: 5}

            # The log goes on: new appends work and are applied.
            assert log.append([event(5)]) == [Position(0, 5)]
            assert proj.catch_up(log) == 1
            assert con.execute("SELECT count(*) FROM events").fetchall() == [(5,)]
            assert con.execute("SELECT count(*) FROM dead_letters").fetchall() == [(1,)]
            assert proj.positions == {0: 6}
        assert log.read({0: 5})[0].error is None


def test_record_make_is_the_constructor() -> None:
    """Readers build records with Record.make: equal to the constructor's, and still frozen."""
    fields = (2, 7, "p/k", b"\x00v", 1_700_000_000_000, (("type", b"T"),), "bad crc")
    made, built = Record.make(*fields), Record(*fields)
    assert made == built and repr(made) == repr(built)
    assert Record.make(0, 1, "k", b"v", 5) == Record(0, 1, "k", b"v", 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.offset = 8  # type: ignore[misc]
