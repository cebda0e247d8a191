"""The projection's columnar path for ``ArtifactLogged``: most of a log, no Python rows.

A big batch is decoded to Arrow columns (:mod:`catalog.events.columnar`).
Most of its events log versions; for those, :class:`LoggedColumns`:

- validates the batch's fields column by column, each distinct value once
  (keys, projects, kinds, label pairs, specs, tags) with the checks
  :meth:`consumers.fold.Fold._logged` applies (the same functions); a row
  that fails any of them takes the event path, where the fold refuses it
  with its exact reason;
- gives the fold a :class:`~consumers.fold.LazyRow` per version: what the
  rules read (identity, times, position), the payload fields left in columns;
- picks the logs :meth:`~consumers.fold.Fold.log_plain` applies in one pass
  (new versions of keys that only log in the batch, about two in three
  logs of a catch-up), with no row per version at all;
- writes the versions still lazy at the end of the batch, those plain logs'
  versions, and their ``events`` rows, as Arrow tables taken from the
  batch's columns.

The fold, the tags, the history and everything else are unchanged: the
rules stay in one place (:mod:`consumers.fold`). The model test replays
logs through this path and through the event path and requires equal
digests.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.errors import InvalidInput
from catalog.events.columnar import Batch
from catalog.events.model import SourceRef
from catalog.log import Record
from catalog.uri import KIND_CATEGORY
from catalog.validation import (
    MAX_LABELS,
    validate_key,
    validate_label_key,
    validate_label_value,
    validate_project,
)

from . import schema
from .fold import (
    LazyRow,
    Needs,
    PlainLog,
    Refused,
    Row,
    Stamp,
    check_spec,
    check_tag,
)

LOGGED = "catalog.ArtifactLogged"
TS = pa.timestamp("us", tz="UTC")

#: (column, field) of what a lazy row leaves in the batch's columns: what a log
#: writes as it carries it (consumers.schema), but the identity the rules read
PAYLOAD_FIELDS = tuple((c, f) for c, f in schema.LOGGED_FIELDS if c not in ("uid", "iteration"))
#: the map fields of ArtifactLogged that are columns (a row holds each as a dict of its own)
MAPS = tuple(c.name for c in schema.ARTIFACTS.columns if c.type == schema.MAP and c.logged)

#: per check of short names, values it accepted in earlier batches (they repeat)
_ACCEPTED: dict[str, set[Any]] = {name: set() for name in ("project", "key", "kind", "tag")}
_ACCEPTED_MAX = 50_000  # per check; names are at most 250 characters


def _valid(name: str, check: Any, values: Any) -> dict[Any, bool]:
    """Each distinct value of ``values``: whether ``check`` (named ``name``) accepts it."""
    known = _ACCEPTED.get(name, set())
    result = {}
    for value in set(values):
        if value in known:
            result[value] = True
            continue
        try:
            check(value)
        except (InvalidInput, Refused, KeyError, ValueError, TypeError):
            result[value] = False
            continue
        result[value] = True
        if name in _ACCEPTED and len(known) < _ACCEPTED_MAX:
            known.add(value)
    return result


def _label_ok(pair: tuple[str, str]) -> None:
    validate_label_value(validate_label_key(pair[0]), pair[1])


def _value_ok(value: str) -> None:
    validate_label_value("", value)


def _kind_ok(kind: str) -> None:
    KIND_CATEGORY[kind]


def _tag_ok(tag: str | None) -> None:
    if tag is not None:
        check_tag(tag)


class LoggedColumns:
    """The ``ArtifactLogged`` events of one decoded batch, as columns."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        rows, struct = batch.payloads.get(LOGGED, (np.zeros(0, np.int64), None))
        self.rows = rows  # batch indices of the ArtifactLogged events
        self.struct = struct
        self.position = np.full(batch.size, -1, np.int64)  # batch index -> struct row
        self.position[rows] = np.arange(len(rows))
        self._lists: dict[str, list[Any]] = {}
        self._fold_lists: tuple[list[Any], ...] | None = None
        self._filled: dict[int, Row] = {}  # struct row -> payload fields (prefetch)
        self._position_list: list[int] | None = None
        self.fast = np.zeros(batch.size, bool)
        self._no_links = struct is None or len(struct.field("extra_data").keys) == 0
        if struct is not None:
            self.fast[rows] = self._validate()

    def _positions(self) -> list[int]:
        """``position`` as a list (made once)."""
        if self._position_list is None:
            self._position_list = self.position.tolist()
        return self._position_list

    def column(self, name: str) -> list[Any]:
        """A payload field as a Python list (made once per batch, when first needed)."""
        if name not in self._lists:
            if self.struct is None:  # a batch without ArtifactLogged
                return []
            values = self.struct.field(name).to_pylist()
            if name in MAPS:
                values = [dict(v) for v in values]
            self._lists[name] = values
        return self._lists[name]

    def _validate(self) -> Any:
        """Per ArtifactLogged row: whether every check of the rule passes."""
        env = self.batch.envelope
        take = pa.array(self.rows)
        projects = env["project"].take(take).to_pylist()
        keys = env["key"].take(take).to_pylist()
        ok = np.ones(len(self.rows), bool)
        for name, values, check in (
            ("project", projects, validate_project),
            ("key", keys, validate_key),
            ("kind", self.column("kind"), _kind_ok),
            ("spec", self.column("spec"), check_spec),
            ("tag", self.column("tag"), _tag_ok),
        ):
            good = _valid(name, check, values)
            if not all(good.values()):
                ok &= np.array([good[v] for v in values], bool)
        labels = self.struct.field("labels")
        counts = np.diff(labels.offsets.to_numpy())
        ok &= counts <= MAX_LABELS
        # A label's value is checked apart from its key (which only names it in
        # the error): the distinct keys and the distinct values, from Arrow.
        label_keys = pc.unique(labels.keys).to_pylist()
        label_values = pc.unique(labels.items).to_pylist()
        if all(_valid("label key", validate_label_key, label_keys).values()) and all(
            _valid("label value", _value_ok, label_values).values()
        ):
            return ok
        names = labels.keys.to_pylist()
        values = labels.items.to_pylist()
        pairs = list(zip(names, values, strict=True))
        good = _valid("label", _label_ok, pairs)
        if not all(good.values()):
            row_of = np.repeat(np.arange(len(counts)), counts)
            bad = np.array([not good[p] for p in pairs], bool)
            ok[np.unique(row_of[bad])] = False
        return ok

    # --------------------------------------------------------- the fold's view

    def prefetch(self, uids: set[str]) -> None:
        """Convert, in one take, the rows logging ``uids`` (those the batch updates
        or deletes): :meth:`row` fills them without converting whole columns."""
        if self.struct is None or not uids:
            return
        take = pc.indices_nonzero(
            pc.is_in(self.struct.field("uid"), value_set=pa.array(sorted(uids), pa.string()))
        )
        if len(take):
            payload = self.struct.take(take)
            columns = [payload.field(name).to_pylist() for _, name in PAYLOAD_FIELDS]
            names = [column for column, _ in PAYLOAD_FIELDS]
            for i, values in zip(take.to_pylist(), zip(*columns, strict=True), strict=True):
                self._filled[i] = dict(zip(names, values, strict=True))

    def row(self, index: int) -> Row:
        """The payload fields of batch row ``index`` as the event path writes them."""
        i = int(self.position[index])
        row = self._filled.pop(i, None)
        if row is None:  # not prefetched: this row's values alone (whole columns cost ~50 ms)
            row = {c: self.struct.field(name)[i].as_py() for c, name in PAYLOAD_FIELDS}
        for name in MAPS:
            row[name] = dict(row[name])  # its own
        row["category"] = KIND_CATEGORY[row["kind"]]
        return row

    def extra_data(self, index: int) -> dict[str, str]:
        if self._no_links:  # the usual batch: no version links anything
            return {}
        return dict(self.column("extra_data")[int(self.position[index])])

    def add_needs(self, needs: Needs, indices: Sequence[int]) -> None:
        """What folding the logs at batch rows ``indices`` needs loaded."""
        env = self.batch.envelope_lists()
        projects, keys, uids = env["project"], env["key"], self.column("uid")
        for j in indices:
            needs.projects.add(projects[j])
            needs.tag_keys.add((projects[j], keys[j]))
            needs.uids.add(uids[self.position[j]])

    def fold_args(
        self, index: int, record: Record
    ) -> tuple[Stamp, LazyRow, str | None, list[SourceRef]]:
        """The fold's arguments for the log at batch row ``index``: stamp, row, tag, sources."""
        if self._fold_lists is None:
            env = self.batch.envelope_lists()
            self._fold_lists = (
                env["project"],
                env["key"],
                env["actor"],
                env["logged_at"],
                self._positions(),
                self.column("uid"),
                self.column("iteration"),
                self.column("tag"),
                self.column("sources"),
            )
        projects, keys, actors, times, position, uids, iterations, tags, sources = self._fold_lists
        project, key, actor, at = projects[index], keys[index], actors[index], times[index]
        i = position[index]
        row = LazyRow(
            self,
            index,
            {
                "project": project,
                "key": key,
                "iteration": iterations[i],
                "uid": uids[i],
                "created": None,
                "updated": at,
                "created_by": None,
                "updated_by": actor,
                "deleted": False,
                "log_partition": record.partition,
                "log_offset": record.offset,
            },
        )
        listed = sources[i]
        return (
            Stamp(project, key, actor, at),
            row,
            tags[i],
            [SourceRef(**s) for s in listed] if listed else [],
        )

    def plain_logs(
        self,
        logs: Sequence[tuple[int, Record]],
        other_keys: set[tuple[str, str]],
        named: set[str],
        stored_versions: Container[str],
        projects: set[str],
    ) -> list[tuple[int, Record]]:
        """Of ``logs`` (batch row, record: the batch's logs left in columns, in log
        order), those :meth:`consumers.fold.Fold.log_plain` may apply.

        A key qualifies when none of its events is in ``other_keys`` (the keys
        of the batch's other events) and each of its logs carries no tag and
        no link, logs a uid that is not stored (``stored_versions``), not
        logged twice in the batch and not ``named`` by another event, in a
        project that exists (``projects``).
        """
        if not logs:
            return []
        env = self.batch.envelope_lists()
        projects_of, keys_of = env["project"], env["key"]
        position = self._positions()
        uids, tags = self.column("uid"), self.column("tag")
        links = None if self._no_links else self.column("extra_data")
        seen: set[str] = set()
        twice: set[str] = set()
        for j, _ in logs:
            uid = uids[position[j]]
            if uid in seen:
                twice.add(uid)
            seen.add(uid)
        bad = set(other_keys)
        for j, _ in logs:
            i = position[j]
            uid = uids[i]
            if (
                tags[i] is not None
                or (links is not None and links[i])
                or uid in twice
                or uid in named
                or uid in stored_versions
                or projects_of[j] not in projects
            ):
                bad.add((projects_of[j], keys_of[j]))
        return [(j, r) for j, r in logs if (projects_of[j], keys_of[j]) not in bad]

    def plain_args(self, logs: Sequence[tuple[int, Record]]) -> list[PlainLog]:
        """The arguments of :meth:`consumers.fold.Fold.log_plain` for ``logs``."""
        env = self.batch.envelope_lists()
        projects, keys, actors, times = env["project"], env["key"], env["actor"], env["logged_at"]
        position = self._positions()
        uids, iterations = self.column("uid"), self.column("iteration")
        sources = self.column("sources")
        out: list[PlainLog] = []
        for j, r in logs:
            i = position[j]
            out.append(
                (projects[j], keys[j], iterations[i], uids[i], actors[j], times[j],
                 r.partition, r.offset, sources[i])
            )  # fmt: skip
        return out

    # ----------------------------------------------------------------- writing

    def versions_table(
        self,
        rows: Sequence[LazyRow],
        arrow_schema: pa.Schema,
        plain: Sequence[tuple[int, Record]] = (),
    ) -> pa.Table:
        """The artifacts rows of versions still lazy, and of the ``plain`` logs
        (batch row, record: created when logged), typed as ``arrow_schema``.

        Map entries are sorted by key, as the event path writes them: both
        paths store identical rows.
        """
        indices = pa.array([r.index for r in rows] + [j for j, _ in plain], pa.int64())
        take = pa.array(self.position[indices.to_numpy()])
        env = self.batch.envelope
        columns: dict[str, Any] = {
            # a still-lazy row is as the log made it (an update or delete fills it)
            "project": env["project"].take(indices),
            "key": env["key"].take(indices),
            "updated": env["logged_at"].take(indices),
            "updated_by": env["actor"].take(indices),
            "deleted": pa.array([False] * len(indices)),
        }
        for name in ("created", "created_by", "log_partition", "log_offset"):
            columns[name] = [r[name] for r in rows]
        if plain:
            env_lists = self.batch.envelope_lists()
            times, actors = env_lists["logged_at"], env_lists["actor"]
            columns["created"] += [times[j] for j, _ in plain]
            columns["created_by"] += [actors[j] for j, _ in plain]
            columns["log_partition"] += [r.partition for _, r in plain]
            columns["log_offset"] += [r.offset for _, r in plain]
        for column, name in schema.LOGGED_FIELDS:
            columns[column] = self.struct.field(name).take(take)
        for name in MAPS:
            columns[name] = sorted_map(columns[name])
        columns["category"] = [KIND_CATEGORY[k] for k in columns["kind"].to_pylist()]
        return pa.table(
            {
                f.name: pa.array(columns[f.name], f.type)
                if isinstance(columns[f.name], list)
                else columns[f.name].cast(f.type)
                for f in arrow_schema
            }
        )

    def events_table(
        self,
        indices: Sequence[int],
        types: Sequence[str],
        records: Sequence[Record],
        version: int,
        arrow_schema: pa.Schema,
    ) -> pa.Table:
        """The ``events`` rows of the applied events at batch rows ``indices`` (of ``types``),
        all decoded in columns (written with schema ``version``)."""
        env = self.batch.envelope
        take = pa.array(indices, pa.int64())
        columns = {
            "partition": pa.array([records[i].partition for i in indices], pa.int32()),
            "offset": pa.array([records[i].offset for i in indices], pa.int64()),
            "event_id": env["event_id"].take(take),
            "type": pa.array(types, pa.string()),
            "actor": env["actor"].take(take),
            "occurred_at": env["occurred_at"].take(take).cast(TS),
            "logged_at": env["logged_at"].take(take).cast(TS),
            "project": env["project"].take(take),
            "key": env["key"].take(take),
            "run_uid": env["run_uid"].take(take),
            "schema_version": pa.array([version] * len(indices), pa.int32()),
            "payload": self.batch.payload_json.take(take),
        }
        return pa.table({f.name: columns[f.name].cast(f.type) for f in arrow_schema})


def sorted_map(maps: pa.MapArray) -> pa.MapArray:
    """``maps`` with each map's entries sorted by key (Python's order for str: code points).

    One sort of all entries by (row, key); Arrow compares strings as UTF-8
    bytes, which orders them as code points do.
    """
    offsets = maps.offsets.to_numpy()
    first, count = int(offsets[0]), int(offsets[-1] - offsets[0])
    if count < 2:
        return maps
    keys, items = maps.keys.slice(first, count), maps.items.slice(first, count)
    rows = np.repeat(np.arange(len(maps)), np.diff(offsets))
    order = pc.sort_indices(
        pa.table({"row": rows, "key": keys}), sort_keys=[("row", "ascending"), ("key", "ascending")]
    )
    return pa.MapArray.from_arrays(
        pa.array(offsets - first, pa.int32()),
        keys.take(order),
        items.take(order),
        type=maps.type,
        mask=maps.is_null() if maps.null_count else None,
    )
