"""Torn and corrupt log tail (embedded log): the log opens, reports, and goes on.

Two kinds of damage, each over many random trials:

* **The write-ahead log, after a kill.** A writer appending batches of events
  is SIGKILLed; the ``-wal`` file is then truncated mid-frame or scribbled on
  near its end (what a torn write leaves). SQLite's WAL recovery drops every
  frame after the first bad checksum, so the log must open with whole batches
  only, dense offsets, every record intact, and accept new appends.
* **The database file.** With the log checkpointed into it, the file is
  truncated mid-record or its last page is scribbled on. Whatever SQLite makes
  of that, the log either works or raises a clear :class:`LogError` /
  :class:`LogCorruption` naming the file — never another exception — and never
  returns a damaged record as data (the per-record CRC). When it cannot go on,
  the documented recovery (:func:`catalog.maintenance.salvage_log`) keeps the
  intact records at their offsets, and new appends work again.

The scribbled-value case (CRC mismatch, dead-lettered) is in tests/test_log_file.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.consumers.projection import Projection
from catalog.errors import CatalogError, LogCorruption, LogError
from catalog.events.codec import Codec
from catalog.events.model import ArtifactLogged, CatalogEvent, Producer
from catalog.log import EventLog, Message, Record, open_log
from catalog.maintenance import salvage_log
from reliability.helpers import ROOT, record

CODEC = Codec()
T0 = datetime(2026, 1, 1, tzinfo=UTC)

WRITER = r"""
import random, sys
from datetime import UTC, datetime, timedelta
from catalog.events.codec import Codec
from catalog.events.model import ArtifactLogged, CatalogEvent, Producer
from catalog.log import Message, open_log

url, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
codec = Codec()
log = open_log(url)
print("ready", flush=True)
batch = 0
while True:
    size = rng.randint(1, 30)
    messages = []
    for i in range(size):
        ev = CatalogEvent(
            project="p",
            key=f"k{rng.randrange(20)}",
            payload=ArtifactLogged(
                uid=f"{seed:x}{batch:06x}{i:03x}",
                kind="artifact",
                producer=Producer("client", "w"),
                description=f"{seed}.{batch}:{i}/{size}|" + "x" * rng.randrange(3000),
            ),
            actor="writer",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=batch),
        )
        messages.append(Message(ev.partition_key, codec.encode(ev)))
    log.append(messages)
    batch += 1
"""


def event(n: int) -> Message:
    ev = CatalogEvent(
        project="p",
        key=f"k{n % 7}",
        payload=ArtifactLogged(
            uid=f"{n:032x}",
            kind="artifact",
            producer=Producer("client", "me"),
            description="d" * (n * 37 % 2500),
        ),
        actor="tester",
        occurred_at=T0 + timedelta(seconds=n),
    )
    return Message(ev.partition_key, CODEC.encode(ev))


def read_all(log: EventLog) -> list[Record]:
    records: list[Record] = []
    while page := log.read({0: records[-1].offset + 1 if records else 0}, max_records=200):
        assert all(r.offset > (records[-1].offset if records else -1) for r in page)
        records += page
    return records


def copy_log(source: Path, dest: Path) -> None:
    """A copy of the log as a crash left it: the database and its WAL (no -shm)."""
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{dest}{suffix}")


def damage_tail(path: Path, rng: random.Random, how: str) -> str:
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    if how == "truncate":
        cut = rng.randrange(max(0, size - 8192), size)
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        return f"truncated {path.name} from {size} to {cut} bytes"
    at = rng.randrange(max(0, size - 4096), size)
    n = rng.randint(1, 64)
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(rng.randbytes(n))
    return f"scribbled {n} bytes at {at} of {path.name} ({size} bytes)"


# ------------------------------------------------------------- torn WAL


def torn_wal_trials(tmp_path: Path, trials: int) -> None:
    master = random.randrange(2**32)
    rng = random.Random(master)
    lost_batches = 0
    for trial in range(trials):
        # A log goes through five kills (each writer recovers the last one's WAL),
        # then a fresh one starts: the copies below stay small.
        original = tmp_path / f"killed-{trial // 5}.db"
        seed = rng.randrange(2**16)
        delay = rng.uniform(0.3, 1.2)
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, f"file://{original}", str(seed)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
        pristine = tmp_path / f"t{trial}-pristine.db"
        copy_log(original, pristine)  # before anything opens (and checkpoints) it
        copies = {}
        for how in ("truncate", "scribble"):
            copies[how] = tmp_path / f"t{trial}-{how}.db"
            copy_log(original, copies[how])
        with open_log(f"file://{pristine}") as intact:
            before = {r.offset: r.value for r in read_all(intact)}
        assert before, "the writer was killed before it wrote anything"
        for how, copy in copies.items():
            where = f"master seed {master}, trial {trial + 1}, writer seed {seed}"
            wal = Path(f"{copy}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                where += ": " + damage_tail(wal, rng, how)
            with open_log(f"file://{copy}") as log:
                records = read_all(log)
                assert [r.offset for r in records] == list(range(len(records))), where
                assert all(r.error is None for r in records), where
                assert all(before.get(r.offset) == r.value for r in records), where
                end = log.end_offsets()[0]
                assert log.append([event(1)])[0].offset == end, where
            batches: dict[str, tuple[int, list[int]]] = {}
            for r in records:
                label = CODEC.decode(r.value).payload.description or ""  # type: ignore[union-attr]
                batch, _, part = label.split("|", 1)[0].partition(":")
                index, _, size = part.partition("/")
                batches.setdefault(batch, (int(size), []))[1].append(int(index))
            for batch, (size, indexes) in batches.items():
                assert indexes == list(range(size)), f"{where}: batch {batch} is partial"
            lost_batches += len(before) > len(records)
        for path in tmp_path.glob(f"t{trial}-*"):
            path.unlink()
    record(
        "torn WAL after kill -9 (truncated / scribbled)",
        trials=trials * 2,
        trials_that_lost_a_tail=lost_batches,
    )


# ---------------------------------------------------- damaged database file


def exercise(url: str, originals: dict[int, bytes]) -> tuple[str, list[Record]]:
    """Open, read everything, append: the outcome, and the records read.

    Raises AssertionError for anything but the log's own errors.
    """
    try:
        log = open_log(url)
    except (LogError, LogCorruption) as exc:
        assert url.removeprefix("file://") in str(exc), f"error does not name the file: {exc}"
        return f"open refused: {type(exc).__name__}", []
    try:
        try:
            records = read_all(log)
        except LogCorruption as exc:
            assert url.removeprefix("file://") in str(exc), f"error does not name the file: {exc}"
            return "read refused: LogCorruption", []
        for r in records:
            if r.error is None:
                assert r.value == originals.get(r.offset), f"offset {r.offset}: wrong data"
        try:
            log.end_offsets()
            log.append([event(10_000)])
        except (LogError, LogCorruption) as exc:
            assert url.removeprefix("file://") in str(exc), f"error does not name the file: {exc}"
            return f"append refused: {type(exc).__name__}", records
        damaged = sum(r.error is not None for r in records)
        return f"works ({damaged} damaged record(s) reported)", records
    finally:
        log.close()


DAMAGE: dict[str, Callable[[Path, random.Random], str]] = {
    "truncate": lambda p, rng: damage_tail(p, rng, "truncate"),
    "scribble": lambda p, rng: damage_tail(p, rng, "scribble"),
}


def damaged_file_trials(tmp_path: Path, how: str, trials: int) -> None:
    master = random.randrange(2**32)
    rng = random.Random(master)
    outcomes: dict[str, int] = {}
    for trial in range(trials):
        path = tmp_path / f"{trial}.db"
        url = f"file://{path}"
        count = rng.randint(50, 300)
        messages = [event(n) for n in range(count)]
        with open_log(url) as log:
            for start in range(0, count, 25):
                log.append(messages[start : start + 25])
        originals = {n: m.value for n, m in enumerate(messages)}
        where = f"master seed {master}, trial {trial + 1}: " + DAMAGE[how](path, rng)
        try:
            outcome, records = exercise(url, originals)
        except CatalogError as exc:  # pragma: no cover - the assertion explains
            raise AssertionError(f"{where}: unexpected {exc!r}") from exc
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{where}: unhandled {type(exc).__name__}: {exc}") from exc
        outcomes[outcome.split(" (")[0]] = outcomes.get(outcome.split(" (")[0], 0) + 1
        if not outcome.startswith("works"):
            # The documented recovery: salvage the intact records, then go on.
            report = salvage_log(path)
            assert report.damaged and Path(report.damaged).exists(), where
            assert report.log_id_kept, where
            outcome, records = exercise(url, originals)
            assert outcome.startswith("works"), f"{where}: after salvage: {outcome}"
            assert all(r.error is None for r in records), where
            assert len(records) == report.kept, where
            outcomes["recovered by salvage_log"] = outcomes.get("recovered by salvage_log", 0) + 1
        with open_log(url) as log, Projection(str(tmp_path / f"{trial}.duckdb")) as projection:
            projection.catch_up(log)  # the projection goes on: damage is dead-lettered
            assert projection.positions == log.end_offsets(), where
            dead = projection.con.execute("SELECT count(*) FROM dead_letters").fetchall()
            assert dead == [(sum(r.error is not None for r in records),)], where
    record(f"damaged database file ({how} the last page)", trials=trials, **outcomes)


def test_a_torn_wal_after_a_kill_loses_only_whole_batches(tmp_path: Path) -> None:
    torn_wal_trials(tmp_path, 5)


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_database_file_is_reported_and_recoverable(tmp_path: Path, how: str) -> None:
    damaged_file_trials(tmp_path, how, 8)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_torn_wal_soak(tmp_path: Path) -> None:
    torn_wal_trials(tmp_path, 100)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_database_file_soak(tmp_path: Path, how: str) -> None:
    damaged_file_trials(tmp_path, how, 200)


def test_a_log_that_is_not_sqlite_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(LogError) as info:
        open_log(f"file://{path}")
    assert str(path) in str(info.value)
