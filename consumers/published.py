"""Published snapshots: a projection in object storage, so new ones start in seconds.

A serving projection (``catalog serve``, ``consume --follow``) publishes a
snapshot of itself every N events or T minutes, and on ``catalog snapshot``;
an empty projection starts from the newest compatible one and catches up
only the tail of the log. The log stays the truth: a snapshot is checked
before use (hashes, then its digest recomputed), and a full replay
(``--no-snapshot``) must give the same tables (tests/test_snapshots.py).

Layout, under the snapshot URL (``CATALOG_SNAPSHOTS``; by default
``_snapshots`` under the artifact path's root), one folder per log::

    <url>/<log key>/<name>/catalog.duckdb.zst     the projection file, zstd-compressed
    <url>/<log key>/<name>.json                    its manifest, written last

A snapshot exists for readers only once its manifest does (written in one
atomic step, after the data): a publisher killed at any moment leaves the
previous snapshots as they were and, at worst, a data folder without a
manifest, which nobody reads and a later publisher sweeps after
:data:`SWEEP_AFTER`. Retiring a snapshot deletes its manifest first.

**Why a DuckDB file, not Parquet per table** (bench/snapshot.py, measured
at 100,000 events while tests ran: docs/benchmarks.md): copying the
checkpointed file took 0.6 s and zstd 0.4 s, where exporting the tables
through Arrow to Parquet took 4.3 s (to a new DuckDB file 8.5 s, ``COPY FROM
DATABASE`` 9 s); starting from the file costs a download and a digest (0.8
s), from Parquet a load and an index build (8.2 s). The file also carries the
lookup indexes. The price: a snapshot is read only by the same DuckDB major
version (the digest's row hash is DuckDB's too), which the manifest names.

**Publishing does not stop reads.** The file is checkpointed and copied
while the follower is held between two batches (reads go on, on their own
transactions: DuckDB only reads the file meanwhile); the copy is then
digested, compressed and uploaded with nothing held.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalog import store
from catalog.errors import (
    CatalogError,
    IntegrityError,
    InvalidInput,
    LogUnavailable,
    StorageError,
)
from catalog.log import EventLog

from . import schema
from .database import CHECKPOINT_THRESHOLD, connect, memory_limit
from .digest import digest
from .projection import Projection

_logger = logging.getLogger("catalog.snapshots")

FORMAT = "catalog-projection-snapshot"
FORMAT_VERSION = 1
DATA = "catalog.duckdb.zst"
MANIFEST_SUFFIX = ".json"
#: a data folder with no manifest (a publisher killed, a snapshot retired) is
#: deleted once older than this: a publisher still uploading is never swept
SWEEP_AFTER = 3600.0
CHUNK = 8 << 20
#: DuckDB's buffer pool while a snapshot's digest is recomputed (one scan of each
#: table: nothing it caches is read again). With the usual 512MB the scanned
#: blocks stayed cached: at 1,000,000 events the check alone peaked at 497 MB RSS
#: (324 MB of cached table blocks); with 64MB, 221 MB, in the same time.
DIGEST_MEMORY = "64MB"
#: records a transaction while the tail after a restore is caught up. Each batch's
#: rows (events decoded, state loaded) are alive in Python until it commits:
#: measured at 1,000,000 events with a 10,000-event tail, 5,000 a batch peaked
#: ~35-40 MB lower than 10,000, in the same time; a 60,000-event tail peaked at
#: 444-460 against 467-475 MB, but took ~20 % longer (medians of three alternated
#: runs, 8.8 against 7.0 s, on a loaded machine). Smaller batches stop filling whole
#: row groups (database.ROW_GROUP_SIZE), so their rows stay in memory until a
#: checkpoint: 2,500 ran out of a 128MB buffer pool.
TAIL_BATCH = 5_000
#: the tail's buffer pool: room for a batch's scans and rows (TAIL_WORKING) and the
#: lookup indexes, whose buffers the tail's inserts load as they touch them (versions
#: and tags of keys all over: most of each index): 61 MB at 1,000,000 events
#: (duckdb_memory()'s ART_INDEX), so ~64 bytes an event applied (TAIL_INDEX_BYTES).
#: At 1,000,000 events with 64 MB of working room the second 5,000-event batch ran
#: out of it (the first batch's rows are still in memory); 96 MB did not.
TAIL_WORKING = 96 << 20
TAIL_INDEX_BYTES = 64
#: DuckDB's checkpoint_threshold during the tail. The rows of batches too small to
#: fill a row group, and the indexes' new nodes, stay in memory until a checkpoint;
#: with the usual 256MB of WAL a 160,000-event tail ran out of the tail's pool
#: after 70,000 (and, under the usual limit then, peaked at 746 MB). With 64MB:
#: 437-447 MB, the tail ~35 % longer than under the usual settings (740 MB);
#: with 16MB, twice as long.
TAIL_CHECKPOINT = "64MB"


class SnapshotRejected(IntegrityError):
    """A published snapshot that cannot be used (another version, damaged, unverifiable)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"snapshot {name} skipped: {reason}")
        self.name = name
        self.reason = reason


def duckdb_major() -> str:
    return duckdb.__version__.lstrip("v").split(".", 1)[0]


def log_key(log_id: str) -> str:
    """The folder of one log's snapshots (log ids hold ``/`` and ``:``)."""
    return hashlib.sha256(log_id.encode()).hexdigest()[:16]


def log_root(url: str, log_id: str) -> str:
    return store.join_url(url, log_key(log_id))


@dataclass(frozen=True)
class Manifest:
    """What a published snapshot is: the readers' only door to it."""

    name: str
    created: str
    log_id: str
    positions: dict[int, int]
    schema_version: int
    duckdb_version: str
    digest: str
    tables: dict[str, str]
    #: file name -> {"sha256", "size" (as stored), "raw_sha256", "raw_size" (the DuckDB file)}
    files: dict[str, dict[str, Any]]
    publisher: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def events(self) -> int:
        """Records applied (the sum of next offsets): orders snapshots of one log."""
        return sum(self.positions.values())

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())

    @property
    def raw_size(self) -> int:
        return sum(int(f["raw_size"]) for f in self.files.values())

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["positions"] = {str(p): o for p, o in sorted(self.positions.items())}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, name: str, data: bytes) -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise SnapshotRejected(
                    name, f"not a catalog snapshot manifest ({doc.get('format')})"
                )
            if doc.get("format_version") != FORMAT_VERSION:
                raise SnapshotRejected(
                    name, f"manifest format {doc.get('format_version')}, not {FORMAT_VERSION}"
                )
            doc["positions"] = {int(p): int(o) for p, o in doc["positions"].items()}
            manifest = cls(**doc)
        except SnapshotRejected:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SnapshotRejected(name, f"unreadable manifest ({exc})") from None
        if manifest.name != name:
            raise SnapshotRejected(name, f"its manifest names {manifest.name!r}")
        return manifest

    def problem(self, log_id: str) -> str | None:
        """Why this snapshot cannot start a projection of ``log_id`` here, or None."""
        if self.log_id != log_id:
            return f"of another log ({self.log_id})"
        if self.schema_version != schema.SCHEMA_VERSION:
            return f"projection schema version {self.schema_version}, not {schema.SCHEMA_VERSION}"
        major = self.duckdb_version.lstrip("v").split(".", 1)[0]
        if major != duckdb_major():
            return f"written by DuckDB {self.duckdb_version}, this is {duckdb.__version__}"
        if list(self.files) != [DATA]:
            return f"unknown files {sorted(self.files)}"
        return None


@dataclass(frozen=True)
class Listed:
    """One entry of :func:`list_snapshots`: a manifest, or why it could not be read."""

    name: str
    url: str
    manifest: Manifest | None
    problem: str | None


def list_snapshots(url: str, log_id: str) -> list[Listed]:
    """The published snapshots of ``log_id`` under ``url``, newest first (most events)."""
    root = log_root(url, log_id)
    found: list[Listed] = []
    for entry, _ in store.list_url_times(root):
        base = entry.rstrip("/").rsplit("/", 1)[-1]
        if not base.endswith(MANIFEST_SUFFIX) or base.startswith("."):
            continue
        name = base[: -len(MANIFEST_SUFFIX)]
        manifest_url = store.join_url(root, base)
        try:
            with store.open_url(manifest_url, "rb") as fh:
                data = fh.read(1 << 20)
            manifest = Manifest.from_json(name, data)
            found.append(Listed(name, manifest_url, manifest, manifest.problem(log_id)))
        except SnapshotRejected as exc:
            found.append(Listed(name, manifest_url, None, exc.reason))
        except CatalogError as exc:  # gone meanwhile (retired), unreadable
            found.append(Listed(name, manifest_url, None, str(exc)))

    def order(item: Listed) -> tuple[int, str]:
        m = item.manifest
        return (m.events if m else -1, m.created if m else item.name)

    return sorted(found, key=order, reverse=True)


# ------------------------------------------------------------------ publish


def _new_name(positions: Mapping[int, int]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{sum(positions.values()):012d}-{uuid.uuid4().hex[:8]}"


def _copy_checkpointed(
    projection: Projection, lock: Any, temp: Path
) -> tuple[str | None, dict[int, int], float]:
    """Copy the projection's file, checkpointed, while its follower is held; the log it
    follows and its positions.

    Reads go on meanwhile: they have transactions of their own and DuckDB only
    reads the file. The follower waits for the copy (its next batch then applies).
    """
    cursor = projection.con.cursor()
    try:
        with lock:
            held = time.perf_counter()
            database = projection.database
            rows = cursor.execute(
                f"SELECT value FROM \"{database}\".meta WHERE name = 'log_id'"
            ).fetchall()
            cursor.execute(f'CHECKPOINT "{database}"')
            wal = Path(projection.path + ".wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StorageError(projection.path, "the checkpoint left a WAL behind: not copied")
            positions = dict(projection.positions)
            shutil.copyfile(projection.path, temp)
            held = time.perf_counter() - held
    finally:
        cursor.close()
    return (str(rows[0][0]) if rows else None), positions, held


def _check_file(
    path: Path, name: str, log_id: str, positions: Mapping[int, int] | None
) -> dict[str, str]:
    """The digests of a snapshot's DuckDB file, once it is shown to be a projection of
    ``log_id`` of this schema version, at ``positions`` (when given)."""
    try:
        con = connect(str(path), read_only=True, timeout=5, config=_digest_config())
    except CatalogError as exc:
        raise SnapshotRejected(
            name, f"not a DuckDB file DuckDB {duckdb.__version__} opens ({exc})"
        ) from None
    try:
        meta = dict(con.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("schema_version") != str(schema.SCHEMA_VERSION):
            raise SnapshotRejected(
                name, f"its file holds schema version {meta.get('schema_version')}"
            )
        if meta.get("log_id") != log_id:
            raise SnapshotRejected(name, f"its file is a projection of {meta.get('log_id')}")
        stored = dict(con.execute("SELECT partition, next_offset FROM positions").fetchall())
        if positions is not None and stored != dict(positions):
            raise SnapshotRejected(
                name, f"its file is at {stored}, its manifest says {dict(positions)}"
            )
        return digest(con)
    except duckdb.Error as exc:
        raise SnapshotRejected(
            name, f"its file cannot be read ({str(exc).splitlines()[0]})"
        ) from None
    finally:
        con.close()


def _digest_config() -> dict[str, str]:
    if os.environ.get("CATALOG_DUCKDB_MEMORY"):
        return {}  # the user's limit, as everywhere
    return {"memory_limit": DIGEST_MEMORY}


def publish(
    projection: Projection,
    url: str,
    *,
    lock: Any = None,
    keep: int = 3,
    clock: Callable[[], float] = time.time,
) -> Manifest:
    """Publish a snapshot of ``projection`` under ``url``; then keep the newest ``keep``."""
    path = Path(projection.path)
    temp = path.with_name(f".{path.name}.publish-{uuid.uuid4().hex[:8]}")
    try:
        log_id, positions, held = _copy_checkpointed(projection, lock or projection.lock, temp)
        if log_id is None:
            raise InvalidInput(f"{projection.path} follows no log yet: nothing to snapshot")
        name = _new_name(positions)
        digests = _check_file(temp, name, log_id, positions)
        root = log_root(url, log_id)
        data_url = store.join_url(root, name, DATA)
        files = {DATA: _upload_compressed(temp, data_url)}
        manifest = Manifest(
            name=name,
            created=datetime.now(UTC).isoformat(),
            log_id=log_id,
            positions=positions,
            schema_version=schema.SCHEMA_VERSION,
            duckdb_version=duckdb.__version__,
            digest=digests["digest"],
            tables={k: v for k, v in digests.items() if k != "digest"},
            files=files,
            # held_s: how long the follower waited (checkpoint and copy); reads never wait
            publisher={"host": socket.gethostname(), "pid": os.getpid(), "held_s": round(held, 4)},
        )
        # Last: the snapshot exists for readers from here on.
        store.put_bytes_atomic(store.join_url(root, name + MANIFEST_SUFFIX), manifest.to_json())
    finally:
        temp.unlink(missing_ok=True)
        Path(str(temp) + ".wal").unlink(missing_ok=True)
    prune(url, log_id, keep, clock=clock)
    return manifest


class _HashingWriter:
    """A binary file that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        view = bytes(data)
        self.hash.update(view)
        self.size += len(view)
        self.inner.write(view)
        return len(view)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True  # the caller closes ``inner``


class _HashingReader:
    """A binary file that hashes and counts what is read from ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = bytes(self.inner.read(n if n and n > 0 else CHUNK))
        self.hash.update(data)
        self.size += len(data)
        return data

    def close(self) -> None:
        self.closed = True


def _upload_compressed(local: Path, url: str) -> dict[str, Any]:
    """Compress ``local`` with zstd into ``url`` (streamed); sizes and hashes of both."""
    raw = hashlib.sha256()
    raw_size = 0
    with store.open_url(url, "wb") as out:
        packed = _HashingWriter(out)
        sink = pa.PythonFile(packed, mode="w")
        with open(local, "rb") as src, pa.CompressedOutputStream(sink, "zstd") as compressed:
            while chunk := src.read(CHUNK):
                raw.update(chunk)
                raw_size += len(chunk)
                compressed.write(chunk)
    return {
        "sha256": packed.hash.hexdigest(),
        "size": packed.size,
        "raw_sha256": raw.hexdigest(),
        "raw_size": raw_size,
    }


def prune(url: str, log_id: str, keep: int, *, clock: Callable[[], float] = time.time) -> list[str]:
    """Retire all but the newest ``keep`` snapshots (manifest first, then data); sweep
    data folders without a manifest older than :data:`SWEEP_AFTER`. Names retired."""
    listed = [s for s in list_snapshots(url, log_id) if s.manifest is not None]
    retired = []
    for old in listed[keep:]:
        store.remove_url(old.url)  # readers no longer see it...
        store.remove_url(store.join_url(log_root(url, log_id), old.name), recursive=True)
        retired.append(old.name)
    published = {s.name for s in list_snapshots(url, log_id)}
    now = clock()
    for entry, mtime in store.list_url_times(log_root(url, log_id)):
        base = entry.rstrip("/").rsplit("/", 1)[-1]
        if base.endswith(MANIFEST_SUFFIX) or base in published:
            continue
        folder_time = mtime or _newest_inside(entry)
        if folder_time and now - folder_time > SWEEP_AFTER:
            store.remove_url(entry, recursive=True)
    return retired


def _newest_inside(url: str) -> float:
    times = [t for _, t in store.list_url_times(url)]
    return max(times, default=0.0)


# ------------------------------------------------------------------ restore


def restore(
    db: str,
    log: EventLog,
    url: str,
    *,
    warn: Callable[[str], None] | None = None,
    until: Mapping[int, int] | None = None,
) -> Manifest | None:
    """Put the newest usable snapshot of ``log`` at ``db`` (replacing it); None if none.

    Each candidate is checked: manifest (log, schema version, DuckDB major), the
    hashes of the bytes as they arrive and of the file, then the file itself
    (its meta and positions) and its digest, recomputed. One that fails is
    skipped with a one-line warning naming it, and the next older one is tried.
    ``until``: only snapshots at or before these offsets (a replay's stop).
    """
    say = warn or _logger.warning
    try:
        listed = list_snapshots(url, log.log_id)
    except CatalogError as exc:
        say(f"snapshots at {url} cannot be listed ({exc}); replaying the log")
        return None
    for item in listed:
        if item.manifest is None or item.problem is not None:
            say(f"snapshot {item.name} skipped: {item.problem}")
            continue
        manifest = item.manifest
        if until is not None and any(o > until.get(p, 0) for p, o in manifest.positions.items()):
            continue
        try:
            _fetch(url, log.log_id, manifest, db)
        except SnapshotRejected as exc:
            say(str(exc))
            continue
        except CatalogError as exc:
            say(f"snapshot {manifest.name} skipped: {exc}")
            continue
        return manifest
    return None


def _fetch(url: str, log_id: str, manifest: Manifest, db: str) -> None:
    target = Path(db).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.snapshot-{uuid.uuid4().hex[:8]}")
    data_url = store.join_url(log_root(url, log_id), manifest.name, DATA)
    expected = manifest.files[DATA]
    try:
        raw = hashlib.sha256()
        raw_size = 0
        with store.open_url(data_url, "rb") as src, open(temp, "wb") as out:
            packed = _HashingReader(src)
            try:
                stream = pa.PythonFile(packed, mode="r")
                with pa.CompressedInputStream(stream, "zstd") as unpacked:
                    while chunk := unpacked.read(CHUNK):
                        raw.update(chunk)
                        raw_size += len(chunk)
                        out.write(chunk)
            except (OSError, ValueError, pa.ArrowException) as exc:
                if isinstance(exc, CatalogError):
                    raise
                raise SnapshotRejected(
                    manifest.name, f"its data does not decompress ({exc})"
                ) from None
        packed_size = packed.size
        if (packed.hash.hexdigest(), packed_size) != (expected["sha256"], expected["size"]):
            raise SnapshotRejected(manifest.name, f"{DATA} does not hash to its manifest's sha256")
        if (raw.hexdigest(), raw_size) != (expected["raw_sha256"], expected["raw_size"]):
            raise SnapshotRejected(manifest.name, "its DuckDB file does not hash to its manifest's")
        digests = _check_file(temp, manifest.name, log_id, manifest.positions)
        if digests["digest"] != manifest.digest:
            raise SnapshotRejected(
                manifest.name,
                f"its tables digest to {digests['digest'][:12]}…, not {manifest.digest[:12]}…",
            )
        if target.exists():
            connect(str(target)).close()  # nobody else holds the file
        wal = Path(str(target) + ".wal")
        wal.unlink(missing_ok=True)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
        Path(str(temp) + ".wal").unlink(missing_ok=True)


# ------------------------------------------------------------------ schedule


class Publisher:
    """Publishes a projection's snapshots on a schedule, from a thread of its own.

    Due every ``events`` records applied or every ``seconds`` (if anything was
    applied since), whichever comes first; :meth:`publish_now` on demand.
    A failed publish is logged and tried again at the next due time.
    """

    def __init__(
        self,
        projection: Projection,
        url: str,
        *,
        lock: Any,
        events: int | None,
        seconds: float | None,
        keep: int,
        poll: float = 1.0,
    ) -> None:
        self.projection = projection
        self.url = url
        self.lock = lock
        self.events = events
        self.seconds = seconds
        self.keep = keep
        self.poll = poll
        self.last: Manifest | None = None
        self.error: str | None = None
        self._last_events = sum(projection.positions.values())
        self._last_time = time.monotonic()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def scheduled(self) -> bool:
        return self.events is not None or self.seconds is not None

    def start(self) -> Publisher:
        if self.scheduled:
            self._thread = threading.Thread(target=self._run, name="catalog-publisher", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def due(self) -> bool:
        applied = sum(self.projection.positions.values()) - self._last_events
        if applied <= 0:
            return False
        if self.events is not None and applied >= self.events:
            return True
        return self.seconds is not None and time.monotonic() - self._last_time >= self.seconds

    def publish_now(self) -> Manifest:
        with self._busy:
            manifest = publish(self.projection, self.url, lock=self.lock, keep=self.keep)
            self.last = manifest
            self._last_events = manifest.events
            self._last_time = time.monotonic()
            self.error = None
            _logger.info("published snapshot %s at %s", manifest.name, manifest.positions)
            return manifest

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            if not self.due():
                continue
            try:
                self.publish_now()
            except Exception as exc:  # noqa: BLE001 - keep serving; say so, retry later
                self.error = f"{type(exc).__name__}: {exc}"
                self._last_time = time.monotonic()
                _logger.warning("publishing a snapshot to %s failed: %s", self.url, self.error)


def manifest_summary(item: Listed) -> dict[str, Any]:
    """What ``catalog snapshot ls`` shows of one snapshot."""
    m = item.manifest
    if m is None:
        return {"name": item.name, "usable": False, "problem": item.problem}
    return {
        "name": m.name,
        "created": m.created,
        "positions": {str(p): o for p, o in sorted(m.positions.items())},
        "events": m.events,
        "schema_version": m.schema_version,
        "duckdb": m.duckdb_version,
        "digest": m.digest,
        "size": m.size,
        "raw_size": m.raw_size,
        "usable": item.problem is None,
        "problem": item.problem,
        "url": item.url,
    }


def _any_published(url: str, log_id: str) -> bool:
    """Whether anything is published for ``log_id`` (one listing; errors say yes, so
    that :func:`restore` reports them)."""
    try:
        entries = store.list_url_times(log_root(url, log_id))
    except CatalogError:
        return True
    return any(e.rstrip("/").endswith(MANIFEST_SUFFIX) for e, _ in entries)


def tail_memory(events: int) -> str:
    """The buffer pool for catching up the tail after a snapshot of ``events`` events:
    ``CATALOG_DUCKDB_MEMORY`` if set, else room for the indexes and a batch (never
    more than the usual limit)."""
    usual = memory_limit()
    if os.environ.get("CATALOG_DUCKDB_MEMORY"):
        return usual
    wanted = (TAIL_WORKING + TAIL_INDEX_BYTES * events) >> 20
    if usual.endswith("MB") and usual[:-2].isdigit():
        wanted = min(wanted, int(usual[:-2]))
    return f"{wanted}MB"


def catch_up_tail(
    projection: Projection,
    log: EventLog,
    events: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Catch a just-restored projection of ``events`` events up with ``log`` in a
    bounded buffer pool (:func:`tail_memory`), in batches of :data:`TAIL_BATCH`,
    checkpointing every :data:`TAIL_CHECKPOINT` of WAL; then the usual settings
    again. Records applied.

    The usual 512MB let the tail's lookups (each a scan of a column of a whole
    table) keep what they read cached: at 1,000,000 events a new replica
    peaked at 531 MB RSS here, 213 MB of it DuckDB's. Should the pool prove too
    small (DuckDB says so; the batch is rolled back), the tail goes on with the
    usual limit from the last batch committed. An unreachable log is left to
    the caller's follower.
    """
    try:
        with tail_settings(projection, events):
            try:
                return projection.catch_up(log, batch_size=TAIL_BATCH, progress=progress)
            except duckdb.OutOfMemoryException as exc:
                _logger.warning(
                    "%s: the tail did not fit in %s (%s); catching up with the usual limit",
                    projection.path,
                    tail_memory(events),
                    str(exc).splitlines()[0],
                )
                projection.con.execute("SET memory_limit = ?", [memory_limit()])
                return projection.catch_up(log, batch_size=TAIL_BATCH, progress=progress)
    except LogUnavailable as exc:
        _logger.warning("%s: the tail is caught up later: %s", projection.path, exc)
        return 0


@contextlib.contextmanager
def tail_settings(projection: Projection, events: int) -> Iterator[None]:
    """Inside: the bounded buffer pool and checkpoints of a just-restored projection
    of ``events`` events catching up its tail (:func:`catch_up_tail`, ``catalog
    replay --from-snapshot``); then the usual settings again."""
    con = projection.con
    try:
        con.execute("SET memory_limit = ?", [tail_memory(events)])
        con.execute("SET checkpoint_threshold = ?", [TAIL_CHECKPOINT])
        yield
    finally:
        usual = (("memory_limit", memory_limit()), ("checkpoint_threshold", CHECKPOINT_THRESHOLD))
        for setting, value in usual:
            with contextlib.suppress(duckdb.Error):  # never hides what went wrong
                con.execute(f"SET {setting} = ?", [value])


def open_projection(
    db: str,
    log: EventLog,
    url: str | None,
    *,
    open: Callable[[], Projection],
    warn: Callable[[str], None] | None = None,
    tail: bool = True,
) -> Projection:
    """The projection at ``db`` (``open()`` opens it); when it is empty and ``url`` is
    given, first started from the newest usable snapshot there, and (``tail``) caught
    up with the log's tail within bounded memory (:func:`catch_up_tail`)."""
    projection = open()
    if url is None or projection.frozen:
        return projection
    try:
        projection.bind(log)
        if projection.positions or not _any_published(url, log.log_id):
            return projection  # nothing to start from: no reopening
        projection.close()
    except BaseException:
        projection.close()
        raise
    manifest = restore(db, log, url, warn=warn)
    projection = open()
    projection.restored_from = manifest.name if manifest is not None else None
    if manifest is not None:
        _logger.info(
            "%s started from snapshot %s at %s; catching up the tail",
            db,
            manifest.name,
            manifest.positions,
        )
        if tail:
            try:
                catch_up_tail(projection, log, manifest.events)
            except BaseException:
                projection.close()
                raise
    return projection
