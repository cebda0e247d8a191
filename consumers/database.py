"""A projection's DuckDB file: opening it (one writer per file, bounded memory,
small row groups), what its disk said when it refused a write, and the Arrow
types of its columns (consumers.schema) with the conversions of rows to and from
them. The projection (consumers.projection) applies batches through these."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalog.errors import InvalidInput, ProjectionBusy, ProjectionStorageError

from . import schema
from .fold import Row

STR = pa.string()
TS = pa.timestamp("us", tz="UTC")
MAP = pa.map_(pa.string(), pa.string())
PRODUCER = pa.struct([("kind", STR), ("name", STR), ("uri", STR), ("owner", STR)])

ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": STR,
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": TS,
    "JSON": STR,
    "BLOB": pa.binary(),
    schema.MAP: MAP,
    schema.PRODUCER: PRODUCER,
}

CHECKPOINT_THRESHOLD = "256MB"
BULK_CHECKPOINT_THRESHOLD = "16MB"  # DuckDB's default: a bulk load's RSS stays in budget
#: rows per row group in the files the projection writes (DuckDB's default: 122,880).
#: Groups this small fill within a batch or two, and DuckDB writes a full group
#: to the file as it fills ("optimistic writes"); a checkpoint then rewrites only
#: the last, partial group of a table. With the default, every checkpoint
#: recompressed the growing last group of every table, again and again.
#: Measured on a 1,000,000-event replay: commits and checkpoints 103 -> 27 s, the
#: replay 282 -> 194 s, same peak RSS. Smaller groups waste space: at 2,048 the
#: file doubled and a replay ran out of its buffer pool. A multiple of 2,048.
ROW_GROUP_SIZE = 8192


def arrow_schema(table: schema.Table) -> pa.Schema:
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in table.columns])


def to_arrow(table: schema.Table, rows: Sequence[Row]) -> pa.Table:
    """Rows (dicts) as an Arrow table typed like ``table``; maps from dicts."""
    columns = {}
    for c in table.columns:
        values = [r[c.name] for r in rows]
        if c.type == schema.MAP:
            values = [sorted(v.items()) if v is not None else None for v in values]
        columns[c.name] = pa.array(values, type=ARROW_TYPES[c.type])
    return pa.table(columns)


def tuples_to_arrow(table: schema.Table, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Rows as tuples in ``table``'s column order (no map columns) as an Arrow table."""
    columns = zip(*rows, strict=True) if rows else ((),) * len(table.columns)
    return pa.table(
        {
            c.name: pa.array(values, type=ARROW_TYPES[c.type])
            for c, values in zip(table.columns, columns, strict=True)
        }
    )


def from_arrow(tbl: pa.Table, maps: Iterable[str] = ()) -> list[Row]:
    """Rows as dicts for the fold: maps as dicts, times as integer microseconds
    (the fold's time, :class:`consumers.fold.Stamp`)."""
    for i, f in enumerate(tbl.schema):
        if pa.types.is_timestamp(f.type):
            tbl = tbl.set_column(i, f.name, tbl.column(i).cast(pa.int64()))
    rows: list[Row] = tbl.to_pylist()
    for name in maps:
        for r in rows:
            if r[name] is not None:
                r[name] = dict(r[name])
    return rows


def map_columns(table: schema.Table) -> list[str]:
    return [c.name for c in table.columns if c.type == schema.MAP]


def memory_limit(bulk: bool = False) -> str:
    """DuckDB's memory limit: ``CATALOG_DUCKDB_MEMORY``, else 512MB (100MB for a bulk load).

    A replay only appends and rewrites small slices, so a small buffer pool
    costs it nothing (measured: same speed, 463 MB peak RSS instead of 655 MB
    at 400,000 events), while queries (sorts, joins) use the larger one.
    """
    return os.environ.get("CATALOG_DUCKDB_MEMORY") or ("100MB" if bulk else "512MB")


def connect(
    path: str,
    *,
    read_only: bool = False,
    timeout: float = 30.0,
    config: dict[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, waiting up to ``timeout`` s while another process holds it."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            # Bounded memory: DuckDB spills to disk past this (CATALOG_DUCKDB_MEMORY).
            # As a connect option, a bad value is refused before any file is created.
            settings = {"memory_limit": memory_limit(), **(config or {})}
            if not read_only:
                # Checkpoint (fold the WAL into the file) every 256 MB of WAL, not 16:
                # a catch-up's commits cost a third as much (measured at 100,000
                # events: 53 -> 15 µs per event), for the same peak RSS; a clean
                # close checkpoints anyway, and a crash replays the WAL on open.
                settings.setdefault("checkpoint_threshold", CHECKPOINT_THRESHOLD)
            if read_only or path == ":memory:":
                con = duckdb.connect(path, read_only=read_only, config=settings)
            else:
                con = duckdb.connect(_instance(path), config=settings)
                _attach(con, path)
            con.execute("SET TimeZone = 'UTC'")
            return con
        except duckdb.ParserException as exc:
            raise InvalidInput(
                f"CATALOG_DUCKDB_MEMORY={memory_limit()!r} is not a memory size "
                f"(e.g. 512MB, 2GB): {str(exc).splitlines()[0]}"
            ) from exc
        except (duckdb.IOException, duckdb.ResourceInUseException) as exc:
            # ResourceInUse: this process has the file open otherwise (another path
            # to it, or a read-only connection)
            if isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower():
                raise ProjectionStorageError(path, f"cannot open it: {exc}") from exc
            if time.monotonic() >= deadline:
                raise ProjectionBusy(path, str(exc).splitlines()[0]) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


#: What DuckDB says when the disk under a projection refuses a write.
_DISK_PROBLEMS = ("no space left on device", "disk full", "read-only file system")


def disk_problem(exc: BaseException) -> str:
    """ "" unless ``exc`` (or what it was raised while handling: a failing write leaves
    the transaction aborted, and the next statement says only that) says the
    projection's disk refused a write; then what it said."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        text = str(seen)
        if any(p in text.lower() for p in _DISK_PROBLEMS):
            first = text.splitlines()[0]
            return first + " (the batch was not applied; free space, then catch up)"
        seen = seen.__cause__ or seen.__context__
    return ""


def _instance(path: str) -> str:
    """The in-memory DuckDB database a writable ``path`` is attached to, named after it.

    DuckDB shares a named in-memory database between the connections of a
    process, as it shares a file opened by path: every writer of one file in
    this process goes through the same instance, and the file is released
    when the last of them closes.
    """
    name = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24]
    return f":memory:projection_{name}"


def _attach(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Open ``path`` for writing in ``con`` with :data:`ROW_GROUP_SIZE`; it becomes the default.

    The row group size is a setting of the attachment, not of the file, so
    every writer attaches this way (readers need not). Once per instance.
    """
    quoted = path.replace("'", "''")
    try:
        con.execute(
            f"ATTACH IF NOT EXISTS '{quoted}' AS projection (ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
        )
        con.execute("USE projection")
    except BaseException:
        con.close()
        raise
