"""The B2 baseline: a straightforward projector that applies events one at a time.

What a competent engineer writes first: read a batch of records from the log,
decode each with the same codec, and for each event run the equivalent
SELECT / INSERT / UPDATE / DELETE statements one by one against DuckDB tables
with the same schema (``consumers.schema.ddl()``: same columns, same indexes),
with the same rules (latest follows the newest live version in log order, tags
move, tag history intervals open and close, lineage rows, idempotency by
event id, positions stored in the same transaction). One transaction per
batch of records, parameters bound, ``executemany`` where one event writes
several rows. No Arrow, no set-based folding: that is the difference measured.

:func:`check_same` compares its result with the real projector's (the
``consumers.digest`` of both files), so the baseline is known to do the
same work.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from catalog.consumers import schema
from catalog.consumers.fold import log_time, micros
from catalog.errors import EventError
from catalog.events.codec import Codec, default_codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    ProjectConfigured,
    RunFinished,
    RunStarted,
    payload_to_json,
)
from catalog.log import EventLog, Record, is_behind
from catalog.uri import KIND_CATEGORY, StoreURI

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: a parameter of each artifacts column, by its type (a map: its keys and values)
_MARK = {
    schema.MAP: "MAP(?::VARCHAR[], ?::VARCHAR[])",
    schema.PRODUCER: "{'kind': ?, 'name': ?, 'uri': ?, 'owner': ?}",
}
ARTIFACT_INSERT = "INSERT INTO artifacts VALUES ({})".format(
    ", ".join(_MARK.get(c.type, "?") for c in schema.ARTIFACTS.columns)
)


def _params(column: schema.Column, value: Any) -> list[Any]:
    """The parameters of ``value`` for ``column`` in :data:`ARTIFACT_INSERT`."""
    if column.type == schema.MAP:
        return _map(dict(value))
    if column.type == schema.PRODUCER:
        return [value.kind, value.name, value.uri, value.owner]
    return [value]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _map(d: dict[str, str]) -> list[list[str]]:
    items = sorted(d.items())
    return [[k for k, _ in items], [v for _, v in items]]


class NaiveProjector:
    """Row-by-row projection into a DuckDB file with the catalog's schema."""

    def __init__(self, path: str, codec: Codec | None = None) -> None:
        self.codec = codec or default_codec()
        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")
        for statement in schema.ddl():
            self.con.execute(statement)
        self.positions: dict[int, int] = dict(
            self.con.execute("SELECT partition, next_offset FROM positions").fetchall()
        )

    def close(self) -> None:
        self.con.close()

    def catch_up(self, log: EventLog, until: dict[int, int] | None = None) -> int:
        target = until or log.end_offsets()
        total = 0
        while is_behind(self.positions, target):
            records = log.read_range(self.positions, target, max_records=5000)
            if not records:
                break
            self.apply(records)
            total += len(records)
        return total

    # ------------------------------------------------------------------ batch

    def apply(self, records: list[Record]) -> None:
        x = self.con.execute
        x("BEGIN")
        try:
            for r in records:
                if r.offset < self.positions.get(r.partition, 0):
                    continue
                self._record(r)
                self.positions[r.partition] = r.offset + 1
            for partition, offset in self.positions.items():
                x('DELETE FROM positions WHERE "partition" = ?', [partition])
                x("INSERT INTO positions VALUES (?, ?)", [partition, offset])
            x("COMMIT")
        except BaseException:
            x("ROLLBACK")
            raise

    def _record(self, r: Record) -> None:
        try:
            ev = self.codec.decode(r.value)
            version = self.codec.writer_of(r.value).version
        except EventError as exc:
            self._dead(r, str(exc), None)
            return
        if self.con.execute("SELECT 1 FROM events WHERE event_id = ?", [ev.event_id]).fetchall():
            return  # redelivered
        # every state time is the log's; the writer's own stays in events.occurred_at
        claimed = ev.occurred_at
        ev = replace(ev, occurred_at=EPOCH + timedelta(microseconds=log_time(r, micros(claimed))))
        try:
            self._event(ev, r)
        except ValueError as exc:
            self._dead(r, str(exc), ev)
            return
        self.con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                r.partition,
                r.offset,
                ev.event_id,
                ev.type,
                ev.actor,
                claimed,
                ev.occurred_at,
                ev.project,
                ev.key,
                ev.run_uid,
                version,
                json.dumps(payload_to_json(ev.payload), ensure_ascii=False),
            ],
        )

    def _dead(self, r: Record, reason: str, ev: CatalogEvent | None) -> None:
        self.con.execute(
            "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(? * 1000))",
            [
                r.partition,
                r.offset,
                reason,
                ev.event_id if ev else None,
                ev.type if ev else None,
                json.dumps(payload_to_json(ev.payload), sort_keys=True) if ev else None,
                bytes(r.value),
                r.timestamp_ms,
            ],
        )

    # ------------------------------------------------------------------ events

    def _event(self, ev: CatalogEvent, r: Record) -> None:
        p = ev.payload
        if isinstance(p, ArtifactLogged):
            self._logged(ev, p, r)
        elif isinstance(p, ArtifactTagged):
            row = self._live(ev, p.uid)
            self._move_tag(ev.project, ev.key, row[2], p.tag, p.uid, ev, r)
        elif isinstance(p, ArtifactUntagged):
            found = self.con.execute(
                "SELECT uid FROM tags WHERE project = ? AND key = ? AND iteration = ? AND tag = ?",
                [ev.project, ev.key, p.iteration, p.tag],
            ).fetchall()
            if found and (p.uid is None or found[0][0] == p.uid):
                self._move_tag(ev.project, ev.key, p.iteration, p.tag, None, ev, r)
        elif isinstance(p, ArtifactUpdated):
            self._updated(ev, p)
        elif isinstance(p, ArtifactDeleted):
            self._deleted(ev, p, r)
        elif isinstance(p, ProjectConfigured):
            self._touch_project(ev)
            self.con.execute(
                "UPDATE projects SET artifact_path = COALESCE(?, artifact_path), "
                "description = COALESCE(?, description), owner = COALESCE(?, owner), "
                "labels = map_concat(labels, MAP(?::VARCHAR[], ?::VARCHAR[])), updated = ? "
                "WHERE name = ?",
                [
                    p.artifact_path,
                    p.description,
                    p.owner,
                    *_map(dict(p.labels)),
                    ev.occurred_at,
                    ev.project,
                ],
            )
        elif isinstance(p, RunStarted | RunFinished):
            self._run(ev, p)
        self._touch_project(ev)

    def _touch_project(self, ev: CatalogEvent) -> None:
        if not self.con.execute("SELECT 1 FROM projects WHERE name = ?", [ev.project]).fetchall():
            self.con.execute(
                "INSERT INTO projects VALUES (?, NULL, NULL, ?, MAP {}, ?, ?)",
                [ev.project, ev.actor, ev.occurred_at, ev.occurred_at],
            )

    def _live(self, ev: CatalogEvent, uid: str) -> tuple[Any, ...]:
        rows = self.con.execute(
            "SELECT project, key, iteration, deleted FROM artifacts WHERE uid = ?", [uid]
        ).fetchall()
        if not rows or rows[0][:2] != (ev.project, ev.key) or rows[0][3]:
            raise ValueError(f"{ev.type} of unknown or deleted version {uid}")
        return tuple(rows[0])

    def _move_tag(
        self,
        project: str,
        key: str,
        iteration: int,
        tag: str,
        uid: str | None,
        ev: CatalogEvent,
        r: Record,
    ) -> None:
        x = self.con.execute
        where = "project = ? AND key = ? AND iteration = ? AND tag = ?"
        ident = [project, key, iteration, tag]
        found = x(f"SELECT uid FROM tags WHERE {where}", ident).fetchall()
        old = found[0][0] if found else None
        if old == uid:
            return
        if old is not None:
            x(
                "INSERT INTO tag_intervals SELECT project, key, iteration, tag, uid, updated, ?, "
                f"updated_by, ?, from_partition, from_offset, ?, ? FROM tags WHERE {where}",
                [ev.occurred_at, ev.actor, r.partition, r.offset, *ident],
            )
            x(f"DELETE FROM tags WHERE {where}", ident)
        if uid is not None:
            x(
                "INSERT INTO tags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*ident, uid, ev.occurred_at, ev.actor, r.partition, r.offset],
            )

    def _refresh_latest(
        self, project: str, key: str, iteration: int, ev: CatalogEvent, r: Record
    ) -> None:
        newest = self.con.execute(
            "SELECT uid FROM artifacts WHERE project = ? AND key = ? AND iteration = ? "
            "AND NOT deleted ORDER BY log_partition DESC, log_offset DESC LIMIT 1",
            [project, key, iteration],
        ).fetchall()
        self._move_tag(project, key, iteration, "latest", newest[0][0] if newest else None, ev, r)

    def _logged(self, ev: CatalogEvent, p: ArtifactLogged, r: Record) -> None:
        x = self.con.execute
        spec = json.loads(p.spec)
        category = KIND_CATEGORY.get(p.kind)
        if category is None or not isinstance(spec, dict):
            raise ValueError(f"bad ArtifactLogged {p.uid}")
        old = x("SELECT created, created_by FROM artifacts WHERE uid = ?", [p.uid]).fetchall()
        created, created_by = old[0] if old else (ev.occurred_at, ev.actor)
        x("DELETE FROM artifacts WHERE uid = ?", [p.uid])
        row = {column: getattr(p, name) for column, name in schema.LOGGED_FIELDS}
        row.update(
            project=ev.project,
            key=ev.key,
            category=category,
            spec=_canonical(spec),
            created=created,
            updated=ev.occurred_at,
            created_by=created_by,
            updated_by=ev.actor,
            deleted=False,
            log_partition=r.partition,
            log_offset=r.offset,
        )
        x(ARTIFACT_INSERT, [v for c in schema.ARTIFACTS.columns for v in _params(c, row[c.name])])
        self._refresh_latest(ev.project, ev.key, p.iteration, ev, r)
        x("DELETE FROM lineage WHERE uid = ? AND relation = 'source'", [p.uid])
        rows = [self._edge(ev, p.uid, "source", s.name, s.uri, s.uid, s.hash) for s in p.sources]
        if rows:
            self.con.executemany("INSERT INTO lineage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._links(ev, p.uid, dict(p.extra_data))
        if p.tag:
            self._move_tag(ev.project, ev.key, p.iteration, p.tag, p.uid, ev, r)

    def _links(self, ev: CatalogEvent, uid: str, links: dict[str, str]) -> None:
        self.con.execute("DELETE FROM lineage WHERE uid = ? AND relation = 'extra_data'", [uid])
        rows = [
            self._edge(ev, uid, "extra_data", name, target, None, None)
            for name, target in sorted(links.items())
        ]
        if rows:
            self.con.executemany("INSERT INTO lineage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    @staticmethod
    def _edge(
        ev: CatalogEvent,
        uid: str,
        relation: str,
        name: str,
        uri: str,
        parent_uid: str | None,
        parent_hash: str | None,
    ) -> list[Any]:
        parent_project = parent_key = None
        if uri.startswith("store://"):
            try:
                parsed = StoreURI.parse(uri, default_project=ev.project)
            except ValueError:
                pass
            else:
                parent_project, parent_key = parsed.project, parsed.key
                parent_uid = parent_uid or parsed.uid
        return [
            ev.project,
            ev.key,
            uid,
            relation,
            name,
            uri,
            parent_project,
            parent_key,
            parent_uid,
            parent_hash,
        ]

    def _updated(self, ev: CatalogEvent, p: ArtifactUpdated) -> None:
        self._live(ev, p.uid)
        labels, spec_text, extra = self.con.execute(
            "SELECT labels, spec, extra_data FROM artifacts WHERE uid = ?", [p.uid]
        ).fetchall()[0]
        labels = {k: v for k, v in dict(labels).items() if k not in p.labels_removed}
        labels.update(p.labels_set)
        spec = json.loads(spec_text)
        for name in p.spec_removed:
            spec.pop(name, None)
        for name, text in p.spec_set.items():
            spec[name] = json.loads(text)
        extra = {k: v for k, v in dict(extra).items() if k not in p.extra_data_removed}
        extra.update(p.extra_data_set)
        self.con.execute(
            "UPDATE artifacts SET labels = MAP(?::VARCHAR[], ?::VARCHAR[]), spec = ?, "
            "extra_data = MAP(?::VARCHAR[], ?::VARCHAR[]), updated = ?, updated_by = ?, "
            "description = COALESCE(?, description) WHERE uid = ?",
            [
                *_map(labels),
                _canonical(spec),
                *_map(extra),
                ev.occurred_at,
                ev.actor,
                p.description,
                p.uid,
            ],
        )
        if p.extra_data_set or p.extra_data_removed:
            self._links(ev, p.uid, extra)

    def _deleted(self, ev: CatalogEvent, p: ArtifactDeleted, r: Record) -> None:
        x = self.con.execute
        uids = list(p.uids)
        if p.all_versions:
            uids += [
                u
                for (u,) in x(
                    "SELECT uid FROM artifacts WHERE project = ? AND key = ? ORDER BY uid",
                    [ev.project, ev.key],
                ).fetchall()
                if u not in uids
            ]
        if not uids:
            raise ValueError(f"delete of {ev.project}/{ev.key}: no such versions")
        rows = []
        for uid in uids:
            found = x(
                "SELECT project, key, iteration, deleted FROM artifacts WHERE uid = ?", [uid]
            ).fetchall()
            if not found or found[0][:2] != (ev.project, ev.key):
                raise ValueError(f"delete of unknown version {uid}")
            rows.append((uid, *found[0][2:]))
        for uid, iteration, deleted in rows:
            if deleted:
                continue
            x(
                "UPDATE artifacts SET deleted = true, updated = ?, updated_by = ? WHERE uid = ?",
                [ev.occurred_at, ev.actor, uid],
            )
            for tag, tag_iteration in x(
                "SELECT tag, iteration FROM tags WHERE uid = ? AND tag <> 'latest' ORDER BY tag",
                [uid],
            ).fetchall():
                self._move_tag(ev.project, ev.key, tag_iteration, tag, None, ev, r)
            self._refresh_latest(ev.project, ev.key, iteration, ev, r)

    def _run(self, ev: CatalogEvent, p: RunStarted | RunFinished) -> None:
        x = self.con.execute
        if isinstance(p, RunStarted):
            x("DELETE FROM runs WHERE uid = ?", [p.uid])
            x(
                "INSERT INTO runs VALUES (?, ?, ?, ?, 'running', NULL, ?, "
                "MAP(?::VARCHAR[], ?::VARCHAR[]), ?, ?, '{}', MAP {}, ?, ?, NULL)",
                [
                    ev.project,
                    p.uid,
                    p.name,
                    p.handler,
                    ev.actor,
                    *_map(dict(p.labels)),
                    p.parameters,
                    _canonical([vars(i) for i in p.inputs]),
                    p.artifact_path,
                    ev.occurred_at,
                ],
            )
        else:
            x(
                "UPDATE runs SET state = ?, error = ?, results = ?, "
                "outputs = MAP(?::VARCHAR[], ?::VARCHAR[]), finished = ? WHERE uid = ?",
                [p.state, p.error, p.results, *_map(dict(p.outputs)), ev.occurred_at, p.uid],
            )


def _rows(con: Any, table: schema.Table) -> list[tuple[Any, ...]]:
    """Every row, JSON columns parsed (key order and spacing are not content)."""
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    json_at = [i for i, c in enumerate(table.columns) if c.type == "JSON"]
    rows = []
    for row in con.execute(f"SELECT {cols} FROM {table.name}").fetchall():
        values = list(row)
        for i in json_at:
            if values[i] is not None:
                values[i] = json.dumps(json.loads(values[i]), sort_keys=True)
        rows.append(tuple(values))
    return sorted(rows, key=repr)


def check_same(ours: Any, naive: Any) -> list[str]:
    """Tables whose content differs between two projections.

    ``consumers.digest`` first; a table whose digest differs is compared row by
    row with its JSON columns parsed, so a different spelling of the same JSON
    document is not a difference.
    """
    from catalog.consumers.digest import table_digest

    differ = []
    for t in schema.TABLES:
        if t.name == "meta" or table_digest(ours, t) == table_digest(naive, t):
            continue
        if _rows(ours, t) != _rows(naive, t):
            differ.append(t.name)
    return differ
