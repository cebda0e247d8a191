"""The DuckDB projection: events in, tables out, positions in the same transaction.

One :class:`Projection` owns one DuckDB file (DuckDB allows one read-write
process per file). :meth:`Projection.apply` takes a batch of log records and,
in one transaction:

1. decodes them (undecodable or damaged records become ``dead_letters``);
2. drops events already seen (same ``event_id``: redelivery), whether the first
   copy was applied or refused;
3. loads the slice of state the batch touches with a handful of set-based
   queries, folds the events over it in log order (:mod:`consumers.fold`);
4. writes the changed rows back as Arrow tables (delete by key + insert
   select), appends ``events`` and ``dead_letters``, recomputes ``latest``
   for the touched keys in SQL, and stores the next offset of every partition.

A crash at any instant leaves the file at a batch boundary; a restart resumes
from the stored positions, so nothing is lost or applied twice.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from catalog.errors import (
    EventError,
    InvalidInput,
    LogError,
    LogUnavailable,
    ProjectionStorageError,
)
from catalog.events import columnar
from catalog.events.codec import Codec, default_codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactUpdated,
    CatalogEvent,
    payload_to_json,
)
from catalog.log import EventLog, Offsets, Position, Record, is_behind

from . import schema
from .columns import LoggedColumns
from .database import (
    BULK_CHECKPOINT_THRESHOLD,
    CHECKPOINT_THRESHOLD,
    STR,
    TS,
    arrow_schema,
    connect,
    disk_problem,
    from_arrow,
    map_columns,
    memory_limit,
    to_arrow,
    tuples_to_arrow,
)
from .fold import Fold, LazyRow, Needs, Refused, Row, log_time, micros, needs_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: records per batch (one transaction). Each batch's lookups scan the tables built
#: so far, and a table that gets a whole row group (ROW_GROUP_SIZE) in one
#: transaction has it written compressed to the file instead of to the WAL.
#: 10,000 against 5,000, measured: a 100,000-event catch-up +6-10%, a
#: 1,000,000-event replay 194 -> 175 s; peak RSS within a few MB.
DEFAULT_BATCH = 10_000
#: records per batch of a bulk load (a replay, an as-of snapshot: between
#: drop_indexes and create_indexes), which loads with a smaller buffer pool
#: (memory_limit(bulk=True)). Fewer, bigger batches scan the growing tables
#: fewer times, but hold more in memory. Measured on the 1,000,000-event replay
#: (peak RSS, VmHWM, of the replaying process): 12,000 a batch 49-50 s, 424 MB;
#: 16,000 43-47 s, 448-456 MB; 20,000 44 s, 478 MB. In a full make bench on a
#: fresh clone the same replay peaks 20-50 MB higher (12,000: 466-484 MB over
#: runs; 16,000: 495 MB, too close to the 500 MB budget), part of it the
#: libraries' pages a fresh venv has resident (+19 MB measured).
BULK_BATCH = 12_000
#: lookups of up to this many values name them in the statement (Projection._among)
SMALL_LOOKUP = 256
#: inserts of up to this many rows pass them as the statement's parameters
SMALL_INSERT = 16

#: a decoded record: the record, its event, the writer schema version, the payload JSON,
#: its index in the batch. The event is None for an ArtifactLogged left in columns; the
#: JSON is None for every event decoded in columns (the batch's column has it)
Decoded = tuple[Record, CatalogEvent | None, int, str | None, int]

_logger = logging.getLogger("catalog.consumers")


@dataclass(frozen=True)
class BatchResult:
    """What one :meth:`Projection.apply` did."""

    applied: int
    dead: int
    duplicates: int
    skipped: int  # records before the stored position (already applied)


class Projection:
    """A DuckDB projection of one log."""

    def __init__(
        self,
        path: str = ":memory:",
        *,
        codec: Codec | None = None,
        timeout: float = 30.0,
        frozen: bool = False,
    ) -> None:
        self.path = str(path)
        self.codec = codec or default_codec()
        self._bound: str | None = None  # the log this connection has checked it is tied to
        self.bulk = False  # between drop_indexes and create_indexes
        self._stored_tags: pa.Table | None = None  # of the batch being applied (_load)
        #: read as it is: opened read-only, never caught up, never rebuilt
        self.frozen = frozen
        #: held while a batch is applied: a snapshot's publisher takes it to copy the
        #: file between two batches (consumers.published)
        self.lock = threading.RLock()
        #: the published snapshot this file was started from, when it was (just now)
        self.restored_from: str | None = None
        if frozen and not Path(self.path).is_file():
            raise InvalidInput(
                f"--frozen reads an existing projection file; there is none at {self.path} "
                "(make one with `catalog replay --until TIME --into FILE`)"
            )
        self.con = connect(self.path, timeout=timeout, read_only=frozen)
        try:
            if frozen:
                self._check_frozen()
            else:
                self._ensure_schema()
            self.positions: dict[int, int] = dict(
                self.con.execute("SELECT partition, next_offset FROM positions").fetchall()
            )
        except BaseException:
            self.con.close()
            raise

    @property
    def batch_size(self) -> int:
        """Records a transaction by default: :data:`BULK_BATCH` in a bulk load, else
        :data:`DEFAULT_BATCH`."""
        return BULK_BATCH if self.bulk else DEFAULT_BATCH

    # ----------------------------------------------------------------- setup

    def _meta(self, name: str) -> str | None:
        rows = self.con.execute("SELECT value FROM meta WHERE name = ?", [name]).fetchall()
        row = rows[0] if rows else None
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self.con.execute("DELETE FROM meta WHERE name = ?", [name])
        self.con.execute("INSERT INTO meta VALUES (?, ?)", [name, value])

    def _check_frozen(self) -> None:
        """A frozen file is read as it is: it must be a projection of these tables."""
        try:
            version = self._meta("schema_version")
        except duckdb.Error:
            version = None
        if version != str(schema.SCHEMA_VERSION):
            found = (
                "is not a catalog projection"
                if version is None
                else (f"holds tables of schema version {version}, not {schema.SCHEMA_VERSION}")
            )
            raise InvalidInput(
                f"{self.path} {found}: it cannot be read frozen (replay it again with "
                "this version: `catalog replay --until TIME --into FILE`)"
            )

    @property
    def database(self) -> str:
        """The name the file is attached under on :attr:`con`."""
        return (
            "projection"
            if not self.frozen
            else str(self.con.execute("SELECT current_database()").fetchall()[0][0])
        )

    def _ensure_schema(self) -> None:
        tables = {
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        }
        if "meta" in tables:
            version = self._meta("schema_version")
            if version == str(schema.SCHEMA_VERSION):
                self.create_indexes()  # a bulk load interrupted before its index build
                return
            # Derived data: drop and rebuild from the log instead of migrating.
            self._drop_all()
        self.con.execute("BEGIN")
        for statement in schema.ddl():
            self.con.execute(statement)
        self._set_meta("schema_version", str(schema.SCHEMA_VERSION))
        self.con.execute("COMMIT")

    def drop_indexes(self) -> None:
        """Start a bulk load: drop the lookup indexes and shrink the buffer pool.

        :meth:`create_indexes` ends it. Only for a file nobody else reads
        meanwhile (a replay or a snapshot being built).
        """
        for statement in schema.INDEXES:
            self.con.execute(f"DROP INDEX IF EXISTS {schema.index_name(statement)}")
        self.con.execute("SET memory_limit = ?", [memory_limit(bulk=True)])
        self.con.execute("SET checkpoint_threshold = ?", [BULK_CHECKPOINT_THRESHOLD])
        self.bulk = True

    def create_indexes(self, *, bulk: bool = False) -> None:
        """Create any missing lookup index; then the usual memory limit applies.

        ``bulk`` builds them within the bulk load's smaller buffer pool (pages
        cached by the load are evicted to make room): the end of a replay then
        peaks no higher than the load did (measured at 1,000,000 events: the
        index build under the usual limit raised the peak RSS by ~30 MB).
        """
        if bulk:
            self.con.execute("SET memory_limit = ?", [memory_limit(bulk=True)])
        for statement in schema.INDEXES:
            self.con.execute(statement)
        self.con.execute("SET memory_limit = ?", [memory_limit()])
        self.con.execute("SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
        self.bulk = False

    def _drop_all(self) -> None:
        """Drop every view, then every table, this file holds (``meta`` last).

        What the file holds, not what this version declares: a file of another
        schema version may have other tables and views (v4's tag_history table).
        """
        here = "database_name = current_database() AND NOT internal"
        views = self.con.execute(f"SELECT view_name FROM duckdb_views() WHERE {here}").fetchall()
        tables = self.con.execute(f"SELECT table_name FROM duckdb_tables() WHERE {here}").fetchall()
        for (view,) in views:
            self.con.execute(f'DROP VIEW IF EXISTS "{view}"')
        for (table,) in sorted(tables, key=lambda t: t[0] == "meta"):
            self.con.execute(f'DROP TABLE IF EXISTS "{table}"')

    def reset(self) -> None:
        """Empty every table (the next catch-up replays the whole log)."""
        self._drop_all()
        self._ensure_schema()
        self.positions = {}
        self._bound = None

    def bind(self, log: EventLog) -> None:
        """Tie this projection to ``log``; a projection of another log is reset."""
        if self.frozen:
            raise InvalidInput(f"{self.path} is read frozen: it applies nothing from the log")
        if self._bound == log.log_id:  # checked already on this connection (it holds the file)
            return
        log_id = self._meta("log_id")
        if log_id == log.log_id:
            self._bound = log_id
            return
        if log_id is not None:
            self.reset()
        self.con.execute("BEGIN")
        self._set_meta("log_id", log.log_id)
        self._set_meta("log_url", log.url)
        self.con.execute("COMMIT")
        self._bound = log.log_id

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Projection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ apply

    def apply(self, records: Sequence[Record]) -> BatchResult:
        """Apply one batch of records in one transaction (see the module doc).

        The projection's disk full (or read-only) is a :class:`StorageError`
        naming the file: the batch is not applied, and a later catch-up, once
        there is room, resumes from the last batch committed.
        """
        try:
            with self.lock:
                if len(records) < columnar.MIN_BATCH:  # a small batch makes little garbage
                    return self._apply(records)
                with gc_paused():
                    return self._apply(records)
        except duckdb.Error as exc:
            problem = disk_problem(exc)
            if problem:
                raise ProjectionStorageError(self.path, problem) from exc
            raise

    def _apply(self, records: Sequence[Record]) -> BatchResult:
        dead: list[Row] = []
        new_positions = dict(self.positions)
        skipped = 0
        todo: list[Record] = []
        for r in records:
            if r.offset < new_positions.get(r.partition, 0):
                skipped += 1
                continue
            new_positions[r.partition] = r.offset + 1
            if r.error is not None:
                dead.append(_dead(r, f"damaged record: {r.error}"))
                continue
            todo.append(r)
        if new_positions == self.positions:
            return BatchResult(0, 0, 0, skipped)
        decoded, ids, logged = self._decode(todo, dead)
        # One transaction: what the rules read is what they write over.
        self.con.execute("BEGIN")
        try:
            fresh, duplicates = self._drop_duplicates(decoded, ids)
            needs = needs_of(item[1] for item in fresh if item[1] is not None)
            if logged is not None:
                logged.add_needs(needs, [item[4] for item in fresh if item[1] is None])
            fold = self._load(needs)
            applied, in_columns, types, plain = self._fold(fold, fresh, logged, dead)
            self._flush(fold, logged, plain)
            self._insert(schema.EVENTS, applied)
            if in_columns:
                assert logged is not None
                self._insert_table(
                    schema.EVENTS,
                    logged.events_table(
                        in_columns,
                        types,
                        todo,
                        self.codec.current.version,
                        arrow_schema(schema.EVENTS),
                    ),
                )
            self._insert(schema.DEAD_LETTERS, dead)
            self._store_positions(new_positions)
            self.con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a failed COMMIT has ended the transaction already
                self.con.execute("ROLLBACK")
            raise
        finally:
            self._stored_tags = None
        self.positions = new_positions
        return BatchResult(len(applied) + len(in_columns), len(dead), duplicates, skipped)

    def _fold(
        self, fold: Fold, fresh: list[Decoded], logged: LoggedColumns | None, dead: list[Row]
    ) -> tuple[list[Row], list[int], list[str], list[tuple[int, Record]]]:
        """Apply the rules to ``fresh`` in log order; refused events go to ``dead``.

        The plain logs (:meth:`LoggedColumns.plain_logs`) are applied first,
        in one pass: nothing else in the batch touches their keys or versions,
        so applying them first gives what log order gives.

        Returns the ``events`` rows of the events applied outside columns, the
        batch rows (with their types) of those whose ``events`` rows come from
        the batch's columns, and the plain logs (batch row, record) whose
        versions the batch's columns give whole (:meth:`Fold.log_plain`).
        """
        applied: list[Row] = []
        in_columns: list[int] = []
        types: list[str] = []
        plain: list[tuple[int, Record]] = []
        if logged is not None:
            rewritten: set[str] = set()  # the logs whose rows the rules will rewrite
            # every uid named by an event that is not a log left in columns
            # (run uids too: harmless, such logs just take the event path)
            named: set[str] = set()
            keys: set[tuple[str, str]] = set()  # and those events' keys
            for _, ev, _, _, _ in fresh:
                if ev is not None:
                    keys.add((ev.project, ev.key))
                    rewritten.update(_rewritten(ev.payload))
                    named.update(_named(ev.payload))
            logged.prefetch(rewritten)
            # Logs that only make a new version of keys that only log: applied
            # apart, in one pass (the same rule, without a row per version).
            plain = logged.plain_logs(
                [(j, r) for r, ev, _, _, j in fresh if ev is None],
                keys,
                named,
                fold.versions,
                fold.stored_projects,
            )
            fold.log_plain(logged.plain_args(plain))
        skip = {j for j, _ in plain}
        for r, ev, version, text, j in fresh:
            if ev is None:  # an ArtifactLogged left in columns
                assert logged is not None
                if j in skip:  # applied by log_plain above
                    in_columns.append(j)
                    types.append("ArtifactLogged")
                    continue
                try:
                    fold.log_lazy(r, *logged.fold_args(j, r))
                except Refused as exc:
                    dead.append(_dead(r, exc.reason, self.codec.decode(r.value)))
                    continue
                in_columns.append(j)
                types.append("ArtifactLogged")
                continue
            try:
                fold.apply(ev, r)
            except Refused as exc:
                dead.append(_dead(r, exc.reason, ev))
                continue
            if text is None:  # decoded in columns: its JSON is there
                in_columns.append(j)
                types.append(ev.type)
            else:
                applied.append(_event_row(r, ev, version, text))
        return applied, in_columns, types, plain

    @contextmanager
    def _among(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """A filter keeping the rows whose ``column`` is one of ``values`` (not empty),
        and its parameters.

        A few values are named in the statement (``column IN (?, ...)``), which
        the column's index serves; more are joined from an Arrow table, as one
        scan of the column. Measured at 1,000,000 versions, fetching whole rows:
        1 value 1.4 ms, 100 2.7 ms, 1,000 17.8 ms named, against 4.6, 12.7 and
        21.8 ms for the join; 10,000 values 175 ms named, 31 ms joined.
        """
        if len(values) <= SMALL_LOOKUP:
            yield f'"{column}" IN ({", ".join("?" * len(values))})', list(values)
            return
        name = f"_among_{column}"
        self.con.register(name, pa.table({column: pa.array(values)}))
        try:
            yield f'"{column}" IN (SELECT "{column}" FROM {name})', []
        finally:
            self.con.unregister(name)

    def _where(self, sql: str, column: str, values: Sequence[Any]) -> pa.Table:
        """The result of ``sql`` (a SELECT ending before its WHERE) on the rows whose
        ``column`` is one of ``values``."""
        with self._among(column, values) as (where, params):
            return self.con.sql(f"{sql} WHERE {where}", params=params).to_arrow_table()

    def _of_keys(self, sql: str, keys: set[tuple[str, str]]) -> pa.Table:
        """The result of ``sql`` (a SELECT from one table, ending before its WHERE) on
        the rows of the (project, key) pairs ``keys``: a few found by key (the key
        index), then kept by pair; many by a join on both."""
        if len(keys) > SMALL_LOOKUP:
            ordered = sorted(keys)
            return self._query(
                f"{sql} SEMI JOIN _keys USING (project, key)",
                _keys=pa.table(
                    {
                        "project": pa.array([k[0] for k in ordered], STR),
                        "key": pa.array([k[1] for k in ordered], STR),
                    }
                ),
            )
        found = self._where(sql, "key", sorted({k for _, k in keys}))
        if found.num_rows == 0:
            return found
        pairs = zip(found["project"].to_pylist(), found["key"].to_pylist(), strict=True)
        return found.filter(pa.array([pair in keys for pair in pairs], pa.bool_()))

    def _decode(
        self, todo: list[Record], dead: list[Row]
    ) -> tuple[list[Decoded], list[str], LoggedColumns | None]:
        """Decode ``todo``: per record (record, event, version, payload JSON, index).

        A big batch is decoded to columns; its valid ``ArtifactLogged`` events
        stay there (event None: :class:`consumers.columns.LoggedColumns` has
        them), and the payload JSON of every event decoded there stays in the
        batch's column (JSON None). Undecodable records go to ``dead``. Also
        returns the event ids.
        """
        decoded: list[Decoded] = []
        ids: list[str] = []
        codec = self.codec
        values = [r.value for r in todo]
        batch = codec.decode_columns(values)
        if batch is not None:
            claimed = batch.envelope_lists()["occurred_at"]
            batch.envelope["logged_at"] = pa.array(
                [log_time(r, c) for r, c in zip(todo, claimed, strict=True)], pa.int64()
            )
            batch.forget_lists()
            logged = LoggedColumns(batch)
            events = batch.events(skip=logged.fast)
            event_ids = batch.envelope_lists()["event_id"]
            version = codec.current.version
            fast = logged.fast.tolist()
            for j, r in enumerate(todo):
                if fast[j]:
                    decoded.append((r, None, version, None, j))
                    ids.append(event_ids[j])
                    continue
                ev = events[j]
                if ev is not None:  # its payload JSON stays in the batch's column
                    decoded.append((r, ev, version, None, j))
                    ids.append(ev.event_id)
                    continue
                result = codec.decode_json(r.value)
                if isinstance(result, EventError):
                    dead.append(_dead(r, str(result)))
                else:
                    decoded.append((r, result[0], result[2], result[1], j))
                    ids.append(result[0].event_id)
            return decoded, ids, logged
        for j, (r, result) in enumerate(zip(todo, map(codec.decode_json, values), strict=True)):
            if isinstance(result, EventError):
                dead.append(_dead(r, str(result)))
            else:
                event, text, version = result
                decoded.append((r, event, version, text, j))
                ids.append(event.event_id)
        return decoded, ids, None

    def _drop_duplicates(self, decoded: list[Decoded], ids: list[str]) -> tuple[list[Decoded], int]:
        if not decoded:
            return [], 0
        # An event id counts once, whatever became of its first copy: applied
        # (events) or refused (dead_letters). So a redelivered copy of a refused
        # event is dropped whether the two copies share a batch or not.
        distinct = sorted(set(ids))
        with self._among("event_id", distinct) as (where, params):
            seen = {
                r[0]
                for r in self.con.execute(
                    f"SELECT event_id FROM events WHERE {where} UNION ALL "
                    f"SELECT event_id FROM dead_letters WHERE {where}",
                    params * 2,
                ).fetchall()
            }
        fresh = []
        for item, event_id in zip(decoded, ids, strict=True):
            if event_id in seen:
                continue
            seen.add(event_id)
            fresh.append(item)
        return fresh, len(decoded) - len(fresh)

    def _query(self, sql: str, **temps: pa.Table) -> pa.Table:
        """The result of ``sql`` over the Arrow tables ``temps`` (registered meanwhile)."""
        for name, tbl in temps.items():
            self.con.register(name, tbl)
        try:
            return self.con.sql(sql).to_arrow_table()
        finally:
            for name in temps:
                self.con.unregister(name)

    def _load(self, needs: Needs) -> Fold:
        versions = (
            from_arrow(self._versions(sorted(needs.uids)), map_columns(schema.ARTIFACTS))
            if needs.uids
            else []
        )
        if needs.all_version_keys:  # every version of keys deleted whole
            known = {v["uid"] for v in versions}
            versions += [
                v
                for v in from_arrow(
                    self._of_keys("SELECT * FROM artifacts", needs.all_version_keys),
                    map_columns(schema.ARTIFACTS),
                )
                if v["uid"] not in known
            ]
        # The stored tags of the keys touched, kept in Arrow with their row ids:
        # the rules read their uids (a tag that moves gets a new row, one that
        # does not is never written back), and those the batch moves or removes
        # are closed from these rows (_close_stored_tags), not by a join with
        # the whole table.
        self._stored_tags = (
            self._of_keys("SELECT rowid AS row, * FROM tags", needs.tag_keys)
            if needs.tag_keys
            else None
        )
        tags = (
            {
                name: self._stored_tags.column(name).to_pylist()
                for name in ("project", "key", "iteration", "tag", "uid")
            }
            if self._stored_tags is not None
            else None
        )
        runs = (
            from_arrow(
                self._where("SELECT * FROM runs", "uid", sorted(needs.runs)),
                map_columns(schema.RUNS),
            )
            if needs.runs
            else []
        )
        projects = (
            from_arrow(
                self._where("SELECT * FROM projects", "name", sorted(needs.projects)),
                map_columns(schema.PROJECTS),
            )
            if needs.projects
            else []
        )
        live_order = (
            from_arrow(
                self._of_keys(
                    "SELECT project, key, iteration, uid, log_partition, log_offset, deleted "
                    "FROM artifacts",
                    needs.order_keys,
                ).filter(~pc.field("deleted"))
            )
            if needs.order_keys
            else []
        )
        stored_tags = (
            zip(
                zip(tags["project"], tags["key"], tags["iteration"], tags["tag"], strict=True),
                tags["uid"],
                strict=True,
            )
            if tags is not None
            else ()
        )
        return Fold(
            versions,
            stored_tags,
            runs,
            projects,
            needs.tag_keys,
            needs.all_version_keys,
            live_order,
            needs.order_keys,
        )

    def _versions(self, uids: Sequence[str]) -> pa.Table:
        """The stored ``artifacts`` rows of ``uids``.

        Many are found in two steps: their row ids, scanning only the uid
        column, then their rows by row id. One all-column semi-join on uid
        decompressed every column of the table (the versions named are spread
        all over it): 25 against 15 µs an event at 900,000 versions. A few are
        found through the uid index (:meth:`_among`).
        """
        if len(uids) <= SMALL_LOOKUP:
            return self._where("SELECT * FROM artifacts", "uid", uids)
        rows = self._where("SELECT rowid AS row FROM artifacts", "uid", uids)
        return self._query(
            "SELECT a.* FROM artifacts a SEMI JOIN _rows r ON a.rowid = r.row", _rows=rows
        )

    def _insert(self, table: schema.Table, rows: Sequence[Row]) -> None:
        if rows:
            self._insert_table(table, to_arrow(table, rows))

    def _insert_table(self, table: schema.Table, rows: pa.Table) -> None:
        """Insert ``rows`` (typed as ``table``). A few rows go in as the statement's
        parameters: measured, 0.5 ms a statement against 1.2 ms for registering an
        Arrow table and selecting from it (what a one-event batch does four times)."""
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        if rows.num_rows <= SMALL_INSERT:
            maps = {c.name for c in table.columns if c.type == schema.MAP}
            params = [
                dict(value) if name in maps and value is not None else value
                for row in rows.select(table.column_names).to_pylist()
                for name, value in row.items()
            ]
            marks = "(" + ", ".join("?" for _ in table.columns) + ")"
            values = ", ".join(marks for _ in range(rows.num_rows))
            self.con.execute(f"INSERT INTO {table.name} ({cols}) VALUES {values}", params)
            return
        self.con.register("_rows", rows)
        try:
            self.con.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _rows")
        finally:
            self.con.unregister("_rows")

    def _delete(self, table: schema.Table, column: str, values: Sequence[Any]) -> None:
        """Delete the rows of ``table`` whose ``column`` is one of ``values``."""
        if values:
            with self._among(column, values) as (where, params):
                self.con.execute(f"DELETE FROM {table.name} WHERE {where}", params)

    def _store_positions(self, positions: dict[int, int]) -> None:
        """Store the next offset of each partition that moved: an update of each
        partition stored, one insert of the others."""
        moved = sorted((p, o) for p, o in positions.items() if self.positions.get(p) != o)
        stored = [(p, o) for p, o in moved if p in self.positions]
        new = [(p, o) for p, o in moved if p not in self.positions]
        for partition, offset in stored:  # one partition, or a few
            self.con.execute(
                'UPDATE positions SET next_offset = ? WHERE "partition" = ?', [offset, partition]
            )
        if new:
            self.con.execute(
                "INSERT INTO positions VALUES " + ", ".join("(?, ?)" for _ in new),
                [x for pair in new for x in pair],
            )

    def _flush(
        self,
        fold: Fold,
        logged: LoggedColumns | None = None,
        plain: Sequence[tuple[int, Record]] = (),
    ) -> None:
        # Rows that existed before the batch are deleted then rewritten; new rows
        # (most of a replay) are only inserted: no scan of the table for them.
        changed_versions = sorted(fold.changed_versions)
        self._delete(
            schema.ARTIFACTS, "uid", [u for u in changed_versions if u in fold.stored_versions]
        )
        rows: list[Row] = []
        lazy: list[LazyRow] = []
        for u in changed_versions:
            row = fold.versions[u]
            if isinstance(row, LazyRow) and row.lazy:
                lazy.append(row)
            else:
                rows.append(row)
        if lazy or plain:
            assert logged is not None
            self._insert_table(
                schema.ARTIFACTS,
                logged.versions_table(lazy, arrow_schema(schema.ARTIFACTS), plain),
            )
        self._insert(schema.ARTIFACTS, rows)

        # Tags: a stored tag that moved closes its interval (its row, with the close,
        # becomes a tag_intervals row) and is deleted; the tags that exist now and
        # changed are inserted, with the intervals this batch opened and closed.
        intervals = [self._close_stored_tags(fold)]
        changed = sorted(fold.changed_tags)
        live = [(*t, *state) for t in changed if (state := fold.tags[t]) is not None]
        if live:
            self._insert_table(schema.TAGS, tuples_to_arrow(schema.TAGS, live))
        if fold.closed:
            intervals.append(tuples_to_arrow(schema.TAG_INTERVALS, fold.closed))
        closed = [t for t in intervals if t is not None and t.num_rows]
        if closed:
            self._insert_table(schema.TAG_INTERVALS, pa.concat_tables(closed))

        # Lineage: sources replaced on (re)log, links recomputed when they changed.
        sources = sorted(fold.source_rows)
        if sources:
            self._delete_lineage([u for u in sources if u in fold.stored_versions], "source")
            self._insert(schema.LINEAGE, [r for u in sources for r in fold.source_rows[u]])
        links = sorted(fold.link_dirty)
        if links:
            self._delete_lineage([u for u in links if u in fold.stored_versions], "extra_data")
            self._insert(schema.LINEAGE, [r for u in links for r in fold.link_rows(u)])

        runs = sorted(fold.changed_runs)
        self._delete(schema.RUNS, "uid", [u for u in runs if u in fold.stored_runs])
        self._insert(schema.RUNS, [fold.runs[u] for u in runs])
        projects = sorted(fold.changed_projects)
        self._delete(schema.PROJECTS, "name", [n for n in projects if n in fold.stored_projects])
        self._insert(schema.PROJECTS, [fold.projects[n] for n in projects])

    def _delete_lineage(self, uids: list[str], relation: str) -> None:
        if uids:
            with self._among("uid", uids) as (where, params):
                self.con.execute(
                    f"DELETE FROM lineage WHERE {where} AND relation = ?", [*params, relation]
                )

    def _close_stored_tags(self, fold: Fold) -> pa.Table | None:
        """Delete from ``tags`` the stored tags the batch moved or removed; their
        closed intervals (``tag_intervals`` rows), or None if there are none.

        ``fold.closes`` holds exactly the stored tags that changed, with how each
        interval ended; the rest of the interval is the stored row.
        """
        if not fold.closes:
            return None
        stored = self._stored_tags
        assert stored is not None  # the stored tags closed were loaded
        tids = zip(
            *(stored[c].to_pylist() for c in ("project", "key", "iteration", "tag")), strict=True
        )
        ends = [fold.closes.get(tid) for tid in tids]
        closed = stored.filter(pa.array([e is not None for e in ends], pa.bool_()))
        done = [e for e in ends if e is not None]
        self._delete(schema.TAGS, "rowid", closed["row"].to_pylist())
        return pa.table(
            {
                "project": closed["project"],
                "key": closed["key"],
                "iteration": closed["iteration"],
                "tag": closed["tag"],
                "uid": closed["uid"],
                "valid_from": closed["updated"],
                "valid_to": pa.array([e[0] for e in done], TS),
                "set_by": closed["updated_by"],
                "removed_by": pa.array([e[1] for e in done], STR),
                "from_partition": closed["from_partition"],
                "from_offset": closed["from_offset"],
                "to_partition": pa.array([e[2] for e in done], pa.int32()),
                "to_offset": pa.array([e[3] for e in done], pa.int64()),
            }
        ).cast(arrow_schema(schema.TAG_INTERVALS))

    # -------------------------------------------------------------- catch up

    def catch_up(
        self,
        log: EventLog,
        *,
        until: Offsets | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Apply everything up to ``until`` (default: the log's end); records applied.

        ``batch_size`` records a transaction; default :attr:`batch_size`.
        """
        self.bind(log)
        target = dict(until) if until is not None else log.end_offsets()
        size = batch_size or self.batch_size
        total = 0
        while is_behind(self.positions, target):
            # Only the partitions still short of the target are read, and nothing
            # past it: a busy partition never crowds out a lagging one.
            with gc_paused():
                records = log.read_range(self.positions, target, max_records=size)
                if not records:
                    break
                self.apply(records)
            log.acknowledge(self.positions)  # lag tools see it (Kafka's ?group=); never raises
            total += len(records)
            if progress is not None:
                progress(len(records))
        return total

    def wait_for(self, log: EventLog, position: Position, timeout: float = 30.0) -> None:
        """Catch up until the record at ``position`` is applied (read-your-writes)."""
        deadline = time.monotonic() + timeout
        while self.positions.get(position.partition, 0) <= position.offset:
            self.catch_up(log, until={position.partition: position.offset + 1})
            if self.positions.get(position.partition, 0) > position.offset:
                return
            if time.monotonic() > deadline:
                raise LogError(log.url, f"position {position} not reached in {timeout} s")
            log.wait(self.positions, min(0.5, max(0.0, deadline - time.monotonic())))

    def follow(
        self,
        log: EventLog,
        *,
        stop: Callable[[], bool],
        poll: float = 0.5,
        batch_size: int = DEFAULT_BATCH,
        progress: Callable[[int], None] | None = None,
        max_backoff: float = 10.0,
    ) -> int:
        """Keep the projection current until ``stop()`` is true; records applied.

        Waits on the log for new records (no busy polling), applies them batch
        by batch. While the log is unreachable (:class:`LogUnavailable`: broker
        down, network cut) it logs a warning and retries with exponential
        backoff up to ``max_backoff`` seconds, then resumes from the stored
        positions: nothing is lost or applied twice. Any other error propagates.
        """
        total = 0
        delay = 0.0
        started = False  # the first catch-up happens even if stop() is already true
        while not (started and stop()):
            try:
                if started:
                    log.wait(self.positions, poll)
                total += self.catch_up(log, batch_size=batch_size, progress=progress)
                started = True
                if delay:
                    _logger.warning("event log %s is back; following again", log.url)
                    delay = 0.0
            except LogUnavailable as exc:
                if stop():
                    break
                delay = min(max_backoff, delay * 2 if delay else 0.2)
                _logger.warning("event log unavailable (%s); retrying in %.1fs", exc, delay)
                _sleep_unless(stop, delay)
        return total


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for reading and applying a big batch.

    A batch makes ~20 objects per event, all alive until it ends and none in a
    reference cycle, so the collector would rescan them again and again for
    nothing (measured: 5-10% of a 50,000-event catch-up).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds``, waking early (every 0.1 s) once ``stop()`` is true."""
    deadline = time.monotonic() + seconds
    while not stop():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(0.1, remaining))


def _rewritten(payload: Any) -> tuple[str, ...]:
    """The uids whose whole rows an event's rule rewrites (an update's, a delete's)."""
    if isinstance(payload, ArtifactUpdated):
        return (payload.uid,)
    if isinstance(payload, ArtifactDeleted):
        return payload.uids
    return ()


def _named(payload: Any) -> tuple[str, ...]:
    """Every uid an event names."""
    if isinstance(payload, ArtifactDeleted):
        return payload.uids
    uid = getattr(payload, "uid", None)
    return (uid,) if isinstance(uid, str) else ()


def _event_row(r: Record, ev: CatalogEvent, version: int, payload_json: str) -> Row:
    return {
        "partition": r.partition,
        "offset": r.offset,
        "event_id": ev.event_id,
        "type": ev.type,
        "actor": ev.actor,
        "occurred_at": ev.occurred_at,
        "logged_at": _EPOCH + timedelta(microseconds=log_time(r, micros(ev.occurred_at))),
        "project": ev.project,
        "key": ev.key,
        "run_uid": ev.run_uid,
        "schema_version": version,
        "payload": payload_json,
    }


def _dead(r: Record, reason: str, ev: CatalogEvent | None = None) -> Row:
    return {
        "partition": r.partition,
        "offset": r.offset,
        "reason": reason,
        "event_id": ev.event_id if ev else None,
        "type": ev.type if ev else None,
        "payload": json.dumps(payload_to_json(ev.payload), sort_keys=True) if ev else None,
        "value": bytes(r.value),
        "log_time": _log_time(r.timestamp_ms),
        "project": ev.project if ev else None,
    }


def _log_time(ms: int) -> datetime | None:
    """When the log took the record; None if a damaged record's time is impossible."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def replace_file(source: str, target: str) -> None:
    """Atomically put the projection file ``source`` at ``target`` (with its WAL)."""
    wal = source + ".wal"
    if os.path.exists(wal):  # pragma: no cover - closed connections checkpoint
        os.remove(wal)
    os.replace(source, target)
