"""As-of snapshots: the catalog exactly as it stood at a past log position.

A snapshot is a projection replayed from the log up to given end offsets
(one per partition, exclusive). Because the log is immutable and the
projection deterministic, a snapshot is a pure function of (log, ends): it is
built once into ``<dir>/<log id>-<ends>.duckdb`` and reused. A time is turned
into ends with the live projection's ``events`` table: the first applied
event of each partition that occurred after the time (see
:func:`catalog.query.cut_at_time`).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from catalog.events.codec import Codec
from catalog.log import EventLog

from . import schema
from .projection import Projection

KEEP = 8  # snapshots kept in the directory (least recently used go first)


def snapshot_path(directory: Path, log: EventLog, ends: Mapping[int, int]) -> Path:
    """Where the snapshot of ``log`` at ``ends`` is cached, for this schema version
    (one built by another version of the tables is never reused)."""
    key = ",".join(f"{p}:{o}" for p, o in sorted(ends.items()))
    identity = f"{log.log_id}|{key}|schema {schema.SCHEMA_VERSION}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return directory / f"asof-{digest}.duckdb"


def snapshot(
    log: EventLog,
    directory: Path,
    ends: Mapping[int, int],
    *,
    codec: Codec | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """The path of a projection of ``log`` up to ``ends``, built if not cached."""
    directory.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(directory, log, ends)
    if path.exists():
        os.utime(path)
        return path
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with Projection(str(temp), codec=codec) as projection:
            projection.drop_indexes()  # private until the rename: built once at the end
            projection.catch_up(log, until=dict(ends), progress=progress)
            projection.create_indexes(bulk=True)
        os.replace(temp, path)
    finally:
        for leftover in (temp, Path(str(temp) + ".wal")):
            if leftover.exists():
                leftover.unlink()
    _evict(directory)
    return path


def _evict(directory: Path) -> None:
    files = sorted(directory.glob("asof-*.duckdb"), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP]:
        old.unlink(missing_ok=True)
