"""The embedded log: one SQLite file in WAL mode, one row per record.

Why SQLite and not hand-rolled segment files: it already gives what the log
contract needs, proven by decades of power-loss testing —

- **durable before acknowledged**: ``synchronous=FULL`` in WAL mode fsyncs the
  write-ahead log at every commit, and :meth:`FileLog.append` returns only after
  the commit;
- **atomic batches**: a crash mid-append leaves the whole batch or none of it;
  a torn WAL frame fails its checksum and is discarded at recovery, never
  returned half-written;
- **several processes at once**: ``BEGIN IMMEDIATE`` serialises writers across
  processes (with a busy timeout), WAL lets readers read while one writes;
- **stable positions**: offsets are assigned in the writer's transaction as
  ``max(offset) + 1`` and never change.

Each row also carries a CRC-32 of its key and value, checked on every read, so
damage the file system did not report (a scribbled page) is detected and the
record handed to consumers as damaged (dead-lettered), never as data.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catalog.errors import InvalidLogURL, LogCorruption, LogError
from catalog.log.base import EventLog, Message, Offsets, Position, Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    "offset"     INTEGER PRIMARY KEY,  -- 0, 1, 2, ... in append order
    key          TEXT NOT NULL,        -- <project>/<artifact key>
    value        BLOB NOT NULL,        -- the single-object-encoded event
    headers      TEXT,                 -- JSON [[name, hex value], ...] or NULL
    crc          INTEGER NOT NULL,     -- zlib.crc32(key || 0x00 || value)
    appended_ms  INTEGER NOT NULL      -- the log's time: the appender's clock at append, ms
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

BUSY_TIMEOUT_S = 60.0


def path_from_url(url: str) -> Path:
    """``file:///abs/events.db``, ``file://~/events.db``, ``file://rel.db`` or a plain path."""
    raw = url[len("file://") :] if url.startswith("file://") else url
    if not raw:
        raise InvalidLogURL(url, "no path in the file:// URL")
    return Path(os.path.expanduser(raw)).absolute()


def _headers_json(headers: Sequence[tuple[str, bytes]]) -> str:
    """The stored form of a message's headers (a few distinct sets: cached)."""
    try:
        return _cached_headers_json(headers)
    except TypeError:  # unhashable (lists): the same, uncached
        return str(_cached_headers_json.__wrapped__(headers))


@functools.lru_cache(maxsize=64)
def _cached_headers_json(headers: tuple[tuple[str, bytes], ...]) -> str:
    return json.dumps([[k, v.hex()] for k, v in headers])


@functools.lru_cache(maxsize=64)
def _parse_headers(stored: str) -> tuple[tuple[str, bytes], ...]:
    """Headers from their stored form (a few distinct sets: cached); raises if unreadable."""
    return tuple((k, bytes.fromhex(v)) for k, v in json.loads(stored))


def _crc(key: str, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(key.encode("utf-8") + b"\x00"))


class FileLog(EventLog):
    """The embedded, single-partition log (``file://`` URLs)."""

    # One SQLite transaction (one fsync) per append: a batch goes in one piece.
    append_chunk = 100_000

    def __init__(self, url: str) -> None:
        self.path = path_from_url(url)
        self.url = f"file://{self.path}"
        self._lock = threading.Lock()
        #: why the log could only be opened read-only ("" if it can be appended to)
        self.read_only = ""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # explicit transactions only
                check_same_thread=False,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", (str(uuid.uuid4()),)
            )
            row = self._db.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()
        except sqlite3.DatabaseError as exc:
            row = self._open_read_only(exc)
        except OSError as exc:
            raise LogError(self.url, f"cannot create the embedded log: {exc}") from exc
        self._log_id: str = row[0]

    def _open_read_only(self, cause: sqlite3.DatabaseError) -> Any:
        """The log on a file system that refuses writes (a read-only mount, a
        snapshot): opened read-only, so it can still be read; appends are refused."""
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self._db.close()
        if not self.path.is_file():
            raise LogError(self.url, f"cannot open the embedded log: {cause}") from cause
        problem = str(cause)
        for mode in ("mode=ro", "immutable=1"):  # immutable: no -shm can be made there
            try:
                self._db = sqlite3.connect(
                    f"file:{self.path}?{mode}",
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                row = self._db.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()
            except sqlite3.DatabaseError as exc:
                problem = str(exc)
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                continue
            if row is None:
                raise LogError(self.url, "the embedded log has no log id (not a catalog log?)")
            self.read_only = f"opened read-only ({cause})"
            return row
        raise LogError(self.url, f"cannot open the embedded log: {problem}") from cause

    @property
    def log_id(self) -> str:
        return self._log_id

    # ------------------------------------------------------------------ write

    def append(self, messages: Sequence[Message]) -> list[Position]:
        if not messages:
            return []
        if self.read_only:
            raise LogError(self.url, f"cannot append: the log was {self.read_only}")
        now = int(time.time() * 1000)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    (start,) = self._db.execute(
                        'SELECT COALESCE(MAX("offset") + 1, 0) FROM records'
                    ).fetchone()
                    self._db.executemany(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            (
                                start + i,
                                m.key,
                                m.value,
                                _headers_json(m.headers) if m.headers else None,
                                _crc(m.key, m.value),
                                now,
                            )
                            for i, m in enumerate(messages)
                        ],
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT (disk full) may have ended the transaction already:
                    # the ROLLBACK's own error must not hide the cause.
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise LogError(self.url, f"append failed, nothing written: {exc}") from exc
        return [Position(0, start + i, now) for i in range(len(messages))]

    # ------------------------------------------------------------------- read

    def read(self, offsets: Offsets, max_records: int = 1000) -> list[Record]:
        start = offsets.get(0, 0)
        with self._lock:
            try:
                rows = self._db.execute(
                    'SELECT "offset", key, value, headers, crc, appended_ms FROM records '
                    'WHERE "offset" >= ? ORDER BY "offset" LIMIT ?',
                    (start, max_records),
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise LogCorruption(Position(0, start), f"{self.path}: {exc}") from exc
        records = []
        last = start - 1
        for offset, key, value, headers, crc, ms in rows:
            if not isinstance(offset, int) or offset <= last:  # a damaged b-tree
                raise LogCorruption(Position(0, last + 1), f"{self.path}: records out of order")
            last = offset
            error = None
            if not isinstance(ms, int):  # a damaged time (the checksum covers key and value)
                ms = -1  # no time: readers take the writer's
            if not isinstance(value, bytes) or not isinstance(key, str):
                error = "record has the wrong column types"
                key, value = str(key), b""
            elif _crc(key, value) != crc:
                error = f"checksum mismatch (stored {crc:#010x})"
            parsed: tuple[tuple[str, bytes], ...] = ()
            if headers and error is None:
                try:
                    parsed = _parse_headers(headers)
                except (ValueError, TypeError):
                    error = "unreadable headers"
            records.append(Record.make(0, offset, key, value, ms, parsed, error))
        return records

    def end_offsets(self) -> dict[int, int]:
        with self._lock:
            try:
                (end,) = self._db.execute(
                    'SELECT COALESCE(MAX("offset") + 1, 0) FROM records'
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                raise LogCorruption("the end of partition 0", f"{self.path}: {exc}") from exc
        return {0: end}

    def wait(self, offsets: Offsets, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self.end_offsets()[0] > offsets.get(0, 0):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.2)

    def close(self) -> None:
        with self._lock:
            self._db.close()
