"""The rules: how one batch of events changes the catalog, in log order.

:class:`Fold` holds the slice of state a batch touches (loaded from DuckDB in
a few set-based queries by :mod:`consumers.projection`), applies the batch's
events to it in log order — validating each, and refusing invalid ones with a
reason that becomes a dead letter — and then hands back the changed rows,
which the projection writes with set-based SQL. The per-event work here is a
few dictionary operations; every database access is batched.

The rules (docs/design.md, "Versions and tags"):

- ``ArtifactLogged`` creates a version, or re-logs an existing one (same uid:
  its mutable metadata is replaced, ``created`` kept, a deleted version comes
  back); ``latest`` of its (project, key, iteration) moves to it; the event's
  ``tag``, if any, is put on it.
- ``ArtifactTagged`` points a tag at a live version of the same key, moving
  it if it named another. ``latest`` cannot be set by hand, nor a tag that
  differs only by case from one the key (at that iteration) holds, ``LATEST``
  included (tags are case-sensitive: the twin would look like the same tag).
- ``ArtifactUntagged`` removes a tag (no-op if absent, or if the writer saw
  it on another version).
- ``ArtifactUpdated`` merges labels, links and top-level spec fields into a
  live version; the uid and the tags do not change.
- ``ArtifactDeleted`` marks versions deleted, drops their tags; ``latest``
  falls back to the newest live version.
- ``RunStarted``/``RunFinished`` create and close a run; ``ProjectConfigured``
  merges project settings. Every event's project gets a ``projects`` row.

Everything derives from event fields and log positions, never from the
clock or randomness, so every replica computes the same state.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from catalog.errors import InvalidInput
from catalog.events.model import (
    _EPOCH,
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    ProjectConfigured,
    RunFinished,
    RunStarted,
)
from catalog.log import Record
from catalog.uri import KIND_CATEGORY, parent_parts
from catalog.validation import (
    case_twin,
    validate_key,
    validate_labels,
    validate_new_tag,
    validate_project,
)

from . import schema

Row = dict[str, Any]
KeyId = tuple[str, str]  # (project, key)
TagId = tuple[str, str, int, str]  # (project, key, iteration, tag)
Group = tuple[str, str, int]  # (project, key, iteration)
_MICROSECOND = timedelta(microseconds=1)
#: a tag's state: (uid, updated, updated_by, from_partition, from_offset); a stored
#: tag has only its uid (the rest None): it is written back only once it moves
TagState = tuple[str, Any, Any, Any, Any]
#: a closed interval: the columns of ``tag_intervals``, in order
Interval = tuple[str, str, int, str, str, Any, Any, str, str, int, int, int, int]
#: a log for :meth:`Fold.log_plain`: project, key, iteration, uid, actor, time
#: (microseconds), partition, offset, sources (dicts, or None)
PlainLog = tuple[str, str, int, str, str, int, int, int, Any]


class Refused(Exception):
    """An event that is valid Avro but not a valid change: dead-lettered with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stamp:
    """The envelope fields the rules read: project, key, actor and the time.

    The time (``at``) is the log's, never the writer's: when the log took the
    record (:func:`log_time`). Every time the rules write (a version's
    created/updated, a tag's validity, a run's start, a deletion) is that
    one, so a writer with a wrong clock cannot move history; what it claimed
    stays in ``events.occurred_at``.

    It is an integer: microseconds since the epoch, UTC, as Avro's
    ``timestamp-micros`` carries it. The fold never builds a datetime:
    every time it writes goes to Arrow, which takes the integers column by
    column (a datetime costs ~1.7 us to make and ~0.9 us to convert, per value).
    """

    __slots__ = ("actor", "at", "key", "project")

    def __init__(self, project: str, key: str, actor: str, at: int) -> None:
        self.project = project
        self.key = key
        self.actor = actor
        self.at = at

    @classmethod
    def of(cls, ev: CatalogEvent, record: Record) -> Stamp:
        return cls(ev.project, ev.key, ev.actor, log_time(record, micros(ev.occurred_at)))


def log_time(record: Record, claimed: Any) -> Any:
    """The log's time of ``record`` in microseconds: when the log took it.

    The embedded log stamps each append; a Kafka topic the catalog created
    stamps with the broker's clock (``LogAppendTime``). A record without a
    time (Kafka's -1, message format v0) falls back to what the writer
    ``claimed`` (microseconds), the only time there is.
    """
    ms = record.timestamp_ms
    return ms * 1000 if ms >= 0 else claimed


def micros(at: datetime) -> int:
    """``at`` (timezone-aware) as microseconds since the epoch."""
    return (at - _EPOCH) // _MICROSECOND


class RowSource(Protocol):
    """Where the column fields of a :class:`LazyRow` come from (the batch's columns)."""

    def row(self, index: int) -> Row: ...

    def extra_data(self, index: int) -> dict[str, str]: ...


class LazyRow(dict):  # type: ignore[type-arg]
    """A version row logged in this batch whose payload fields are still columns.

    It holds what the rules read (project, key, iteration, uid, deleted, times,
    actors, log position); the payload fields (kind, labels, spec...) stay in
    the batch's Arrow columns, and the projection writes the row from them
    without building it in Python. Any other read fills the row first
    (``__missing__``), so code that treats it as a plain dict stays correct.
    """

    __slots__ = ("source", "index")

    def __init__(self, source: RowSource, index: int, fields: Row) -> None:
        super().__init__(fields)
        self.source: RowSource | None = source
        self.index = index

    @property
    def lazy(self) -> bool:
        return self.source is not None

    def fill(self) -> LazyRow:
        """Fetch the payload fields (the fields already here win)."""
        if self.source is not None:
            for name, value in self.source.row(self.index).items():
                self.setdefault(name, value)
            self.source = None
        return self

    def extra_data(self) -> dict[str, str]:
        if self.source is not None:
            return self.source.extra_data(self.index)
        return dict(self["extra_data"])

    def __missing__(self, name: str) -> Any:
        if self.source is None:
            raise KeyError(name)
        return self.fill()[name]


def _cell(value: Any) -> Any:
    """A payload field as a row holds it: a map as a dict of its own, a record as a dict."""
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def check_tag(tag: str) -> None:
    """Raise :class:`Refused` unless an event may put ``tag`` on a version
    (whatever tags its key has: :meth:`Fold._check_twin` checks those)."""
    try:
        validate_new_tag(tag)
    except InvalidInput as exc:
        raise Refused(str(exc)) from exc
    if tag == "latest":
        raise Refused("the latest tag is maintained by the catalog and cannot be set")


def check_spec(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` (an ArtifactLogged's spec) is a JSON object."""
    if not isinstance(json.loads(text), dict):
        raise ValueError("spec is not a JSON object")


def _full(row: Row) -> Row:
    return row.fill() if isinstance(row, LazyRow) else row


def _links(row: Row) -> dict[str, str]:
    """A version's links (``extra_data``), without filling a lazy row."""
    return row.extra_data() if isinstance(row, LazyRow) else row["extra_data"]


@dataclass
class Needs:
    """What a batch needs loaded before it can be folded."""

    uids: set[str] = field(default_factory=set)
    tag_keys: set[KeyId] = field(default_factory=set)
    all_version_keys: set[KeyId] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    #: keys whose ``latest`` may move (logs, deletes): their live versions' log order
    order_keys: set[KeyId] = field(default_factory=set)


def needs_of(events: Iterable[CatalogEvent]) -> Needs:
    needs = Needs()
    for ev in events:
        p = ev.payload
        needs.projects.add(ev.project)
        if isinstance(p, ArtifactLogged | ArtifactDeleted):
            # the current latest is needed for its history; the log order of the
            # other versions only when a delete may make latest fall back
            needs.tag_keys.add((ev.project, ev.key))
        if isinstance(p, ArtifactDeleted):
            needs.order_keys.add((ev.project, ev.key))
        if isinstance(p, ArtifactLogged | ArtifactTagged | ArtifactUpdated):
            needs.uids.add(p.uid)
            if isinstance(p, ArtifactTagged) or (isinstance(p, ArtifactLogged) and p.tag):
                needs.tag_keys.add((ev.project, ev.key))
        elif isinstance(p, ArtifactUntagged):
            needs.tag_keys.add((ev.project, ev.key))
        elif isinstance(p, ArtifactDeleted):
            needs.uids.update(p.uids)
            needs.tag_keys.add((ev.project, ev.key))
            if p.all_versions:
                needs.all_version_keys.add((ev.project, ev.key))
        elif isinstance(p, RunStarted | RunFinished):
            needs.runs.add(p.uid)
    return needs


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Fold:
    """The touched slice of state, and the changes a batch makes to it."""

    def __init__(
        self,
        versions: Iterable[Row],
        tags: Iterable[tuple[TagId, str]],
        runs: Iterable[Row],
        projects: Iterable[Row],
        tag_keys: set[KeyId],
        all_version_keys: set[KeyId],
        live_order: Iterable[Row] = (),
        order_keys: set[KeyId] | frozenset[KeyId] = frozenset(),
    ) -> None:
        self.versions: dict[str, Row] = {r["uid"]: r for r in versions}
        self.key_versions: dict[KeyId, set[str]] = {k: set() for k in all_version_keys}
        for row in self.versions.values():
            kid = (row["project"], row["key"])
            if kid in self.key_versions:
                self.key_versions[kid].add(row["uid"])
        # a stored tag: what the rules read of it (a tag that moves gets a new row)
        self.tags: dict[TagId, TagState | None] = {
            tid: (uid, None, None, None, None) for tid, uid in tags
        }
        # the tags of each key (delete looks up a version's tags without a scan)
        self.key_tags: dict[KeyId, set[TagId]] = {}
        for tid in self.tags:
            self.key_tags.setdefault(tid[:2], set()).add(tid)
        # the tags a group holds, by their lowercase form (built when a tag is put)
        self._folded: dict[Group, dict[str, set[str]]] = {}
        self.tag_keys = tag_keys
        self.runs: dict[str, Row] = {r["uid"]: r for r in runs}
        self.projects: dict[str, Row] = {r["name"]: r for r in projects}
        # what is stored already: only those rows need deleting before a rewrite
        self.stored_versions = set(self.versions)
        self.stored_tags = {tid for tid, tag in self.tags.items() if tag is not None}
        self.stored_runs = set(self.runs)
        self.stored_projects = set(self.projects)
        # what changed
        self.changed_versions: set[str] = set()
        self.changed_tags: set[TagId] = set()
        # log order of the live versions of each group whose latest may fall back
        # (the keys with a delete in the batch, ``order_keys``; ``live_order`` has
        # their stored live versions); elsewhere a log makes its version latest
        self.order_keys = order_keys
        self.order: dict[Group, dict[str, tuple[int, int]]] = {}
        self._heaps: dict[Group, list[tuple[int, int, str]]] = {}
        for r in live_order:
            self._push(
                (r["project"], r["key"], r["iteration"]),
                r["uid"],
                (r["log_partition"], r["log_offset"]),
            )
        # tag history: the open interval of a tag is its row in ``tags``; moving it
        # closes the interval. Closed here: intervals this batch opened and closed
        # (rows of tag_intervals), and the close of each stored open interval
        # (valid_to, removed_by, to_partition, to_offset: the rest is its stored row).
        self.closed: list[Interval] = []
        self.closes: dict[TagId, tuple[Any, str, int, int]] = {}
        self.source_rows: dict[str, list[Row]] = {}
        self.link_dirty: set[str] = set()
        self.changed_runs: set[str] = set()
        self.changed_projects: set[str] = set()

    # ------------------------------------------------------------------ driver

    def apply(self, ev: CatalogEvent, record: Record) -> None:
        """Apply one event; raise :class:`Refused` (state untouched) if it is invalid."""
        try:
            validate_project(ev.project)
        except InvalidInput as exc:
            raise Refused(str(exc)) from exc
        p = ev.payload
        stamp = Stamp.of(ev, record)
        if isinstance(p, ArtifactLogged):
            self._logged(stamp, p, record)
        elif isinstance(p, ArtifactTagged):
            self._tagged(stamp, p, record)
        elif isinstance(p, ArtifactUntagged):
            self._untagged(stamp, p, record)
        elif isinstance(p, ArtifactUpdated):
            self._updated(stamp, p)
        elif isinstance(p, ArtifactDeleted):
            self._deleted(stamp, p, record)
        elif isinstance(p, RunStarted):
            self._run_started(stamp, p)
        elif isinstance(p, RunFinished):
            self._run_finished(stamp, p)
        elif isinstance(p, ProjectConfigured):
            self._project_configured(stamp, p)
        else:  # pragma: no cover - the codec only yields known payloads
            raise Refused(f"unknown payload type {type(p).__name__}")
        self._touch_project(stamp)

    # -------------------------------------------------------------- artifacts

    def _live(self, ev: Stamp, uid: str, what: str) -> Row:
        row = self.versions.get(uid)
        if row is None:
            raise Refused(f"{what} of unknown version {uid} of {ev.project}/{ev.key}")
        if (row["project"], row["key"]) != (ev.project, ev.key):
            raise Refused(
                f"{what}: version {uid} belongs to {row['project']}/{row['key']}, "
                f"not {ev.project}/{ev.key}"
            )
        if row["deleted"]:
            raise Refused(f"{what} of deleted version {uid} of {ev.project}/{ev.key}")
        return row

    def _move_tag(self, tid: TagId, uid: str | None, ev: Stamp, record: Record) -> None:
        """Point tag ``tid`` at ``uid`` (None removes it), keeping its history."""
        self._move(tid, uid, ev.at, ev.actor, record.partition, record.offset)

    def _move(
        self, tid: TagId, uid: str | None, at: int, actor: str, partition: int, offset: int
    ) -> None:
        """:meth:`_move_tag` by an event of ``actor`` at ``at``, at (``partition``, ``offset``)."""
        current = self.tags.get(tid)
        if current is not None:
            if current[0] == uid:
                return
            if tid in self.stored_tags and tid not in self.closes:  # the stored row
                self.closes[tid] = (at, actor, partition, offset)
            else:  # a row this batch wrote
                was, since, set_by, from_partition, from_offset = current
                self.closed.append(
                    (*tid, was, since, at, set_by, actor, from_partition, from_offset,
                     partition, offset)
                )  # fmt: skip
        elif uid is None:
            return
        if uid is None:
            self.tags[tid] = None
        else:
            self.key_tags.setdefault(tid[:2], set()).add(tid)
            self.tags[tid] = (uid, at, actor, partition, offset)
        self.changed_tags.add(tid)
        folded = self._folded.get(tid[:3])
        if folded is not None:  # the case index of this group, if one was built
            names = folded.setdefault(tid[3].lower(), set())
            (names.discard if uid is None else names.add)(tid[3])

    def _check_twin(self, group: Group, tag: str) -> None:
        """Raise :class:`Refused` if ``group`` (project, key, iteration) has a tag that
        differs from ``tag`` only by case."""
        folded = self._folded.get(group)
        if folded is None:  # built once per group and batch, then kept by _move
            folded = self._folded[group] = {}
            for tid in self.key_tags.get(group[:2], ()):
                if tid[2] == group[2] and self.tags.get(tid) is not None:
                    folded.setdefault(tid[3].lower(), set()).add(tid[3])
        twin = case_twin(tag, folded.get(tag.lower(), ()))
        if twin is not None:
            project, key, _ = group
            raise Refused(
                f"tag {tag!r} differs only by case from the tag {twin!r} of {project}/{key}: "
                f"tags are case-sensitive, and one key cannot have both (use {twin!r}, "
                "or untag it first)"
            )

    def _set_tag(self, ev: Stamp, record: Record, row: Row, tag: str) -> None:
        self._move_tag((row["project"], row["key"], row["iteration"], tag), row["uid"], ev, record)

    # latest: the newest live version of a group in log order, after every event

    def _push(self, group: Group, uid: str, position: tuple[int, int]) -> None:
        self.order.setdefault(group, {})[uid] = position
        heapq.heappush(self._heaps.setdefault(group, []), (-position[0], -position[1], uid))

    def _refresh_latest(self, group: Group, ev: Stamp, record: Record) -> None:
        live = self.order.get(group, {})
        heap = self._heaps.get(group, [])
        while heap and live.get(heap[0][2]) != (-heap[0][0], -heap[0][1]):
            heapq.heappop(heap)  # a deleted version, or an older position of a re-log
        newest = heap[0][2] if heap else None
        self._move_tag((*group, "latest"), newest, ev, record)

    def _logged(self, ev: Stamp, p: ArtifactLogged, record: Record) -> None:
        try:
            validate_key(ev.key)
            labels = validate_labels(p.labels)
            category = KIND_CATEGORY[p.kind]
            check_spec(p.spec)
        except (InvalidInput, KeyError, ValueError) as exc:
            reason = f"unknown kind {p.kind!r}" if isinstance(exc, KeyError) else str(exc)
            raise Refused(f"bad ArtifactLogged: {reason}") from exc
        if p.tag is not None:
            check_tag(p.tag)
        row: Row = {column: _cell(getattr(p, name)) for column, name in schema.LOGGED_FIELDS}
        row.update(
            project=ev.project,
            key=ev.key,
            category=category,
            labels=labels,
            # spec: validated above; stored as written (the digest normalises JSON)
            created=None,  # set by _log_version
            updated=ev.at,
            created_by=None,
            updated_by=ev.actor,
            deleted=False,
            log_partition=record.partition,
            log_offset=record.offset,
        )
        self._log_version(ev, record, row, p.tag, p.sources)

    def log_lazy(
        self, record: Record, ev: Stamp, row: LazyRow, tag: str | None, sources: Iterable[Any]
    ) -> None:
        """An ``ArtifactLogged`` whose fields the caller validated as :meth:`_logged` does.

        ``row`` holds project, key, iteration, uid, updated, updated_by,
        deleted (False) and the log position; the rest stays in the batch's
        columns. Raises :class:`Refused` (state untouched) if the uid names a
        version of another key.
        """
        self._log_version(ev, record, row, tag, sources)
        self._touch_project(ev)

    def log_plain(self, logs: Iterable[PlainLog]) -> None:
        """``ArtifactLogged`` events that only create a version and move ``latest``.

        The caller guarantees, of each log's key: every event of that key in
        the batch is such a log, given here; and of each log: its fields are
        valid (as for :meth:`log_lazy`); it carries no tag and links nothing;
        its uid is new (not stored, logged once in the batch, named by no
        other event of the batch); its project exists already. Then the rule
        of :meth:`_log_version` comes down to what is done here, and it does
        not depend on the batch's other events, so these logs are applied
        apart from them (before them), in log order among themselves.

        Their versions are not kept here (the projection writes them from the
        batch's columns), nor are they in ``key_versions``: sound only because
        no other event of these keys is in the batch, so no rule reads them (a
        rule that reads across keys would have to be checked against this).
        Their ``latest`` moves by :meth:`_move`, as every tag does.
        ``sources`` are the log's source records, as dicts.
        """
        for project, key, iteration, uid, actor, at, partition, offset, sources in logs:
            self._move((project, key, iteration, "latest"), uid, at, actor, partition, offset)
            if sources:
                row = {"project": project, "key": key, "uid": uid}
                self.source_rows[uid] = [
                    self._lineage_row(row, "source", s["name"], s["uri"], s["uid"], s["hash"])
                    for s in sources
                ]

    def _log_version(
        self, ev: Stamp, record: Record, row: Row, tag: str | None, sources: Iterable[Any]
    ) -> None:
        """The rule of ``ArtifactLogged`` once its fields are valid."""
        uid = row["uid"]
        old = self.versions.get(uid)
        if old is not None and (old["project"], old["key"]) != (ev.project, ev.key):
            raise Refused(f"uid {uid} already names a version of {old['project']}/{old['key']}")
        if tag:
            self._check_twin((ev.project, ev.key, row["iteration"]), tag)
        row["created"] = old["created"] if old else ev.at
        row["created_by"] = old["created_by"] if old else ev.actor
        self.versions[uid] = row
        self.changed_versions.add(uid)
        kid = (ev.project, ev.key)
        if kid in self.key_versions:
            self.key_versions[kid].add(uid)
        group = (ev.project, ev.key, row["iteration"])
        if kid in self.order_keys:
            self._push(group, uid, (record.partition, record.offset))
            self._refresh_latest(group, ev, record)
        else:  # no delete of this key in the batch: the log just made is the newest
            # (a key's events share a partition, the message key being the artifact's;
            # should a topic gain partitions, a key's later logs may land on another
            # one: latest is then the last log applied)
            self._move_tag((*group, "latest"), uid, ev, record)
        # sources and links are rewritten when they may have changed: a version
        # seen before (stored, or logged earlier in the batch) or one that has some
        rows = [self._lineage_row(row, "source", s.name, s.uri, s.uid, s.hash) for s in sources]
        if old is not None or rows:
            self.source_rows[uid] = rows
        if old is not None or _links(row):
            self.link_dirty.add(uid)
        if tag:
            self._set_tag(ev, record, row, tag)

    def _tagged(self, ev: Stamp, p: ArtifactTagged, record: Record) -> None:
        check_tag(p.tag)
        row = self._live(ev, p.uid, "tag")
        self._check_twin((row["project"], row["key"], row["iteration"]), p.tag)
        self._set_tag(ev, record, row, p.tag)

    def _untagged(self, ev: Stamp, p: ArtifactUntagged, record: Record) -> None:
        if p.tag == "latest":
            raise Refused("the latest tag is maintained by the catalog and cannot be removed")
        tid = (ev.project, ev.key, p.iteration, p.tag)
        current = self.tags.get(tid)
        if current is None or (p.uid is not None and current[0] != p.uid):
            return  # nothing to remove: the tag is gone or has moved since
        self._move_tag(tid, None, ev, record)

    def _updated(self, ev: Stamp, p: ArtifactUpdated) -> None:
        row = dict(_full(self._live(ev, p.uid, "update")))
        try:
            labels = {k: v for k, v in row["labels"].items() if k not in p.labels_removed}
            labels.update(validate_labels(p.labels_set))
            spec = json.loads(row["spec"])
            for name in p.spec_removed:
                spec.pop(name, None)
            for name, text in p.spec_set.items():
                spec[name] = json.loads(text)
        except (InvalidInput, ValueError) as exc:
            raise Refused(f"bad ArtifactUpdated: {exc}") from exc
        extra = {k: v for k, v in row["extra_data"].items() if k not in p.extra_data_removed}
        extra.update(p.extra_data_set)
        row.update(
            labels=validate_labels(labels),
            spec=_canonical_json(spec),
            extra_data=extra,
            updated=ev.at,
            updated_by=ev.actor,
        )
        if p.description is not None:
            row["description"] = p.description
        self.versions[p.uid] = row
        self.changed_versions.add(p.uid)
        if p.extra_data_set or p.extra_data_removed:
            self.link_dirty.add(p.uid)

    def _deleted(self, ev: Stamp, p: ArtifactDeleted, record: Record) -> None:
        kid = (ev.project, ev.key)
        uids = list(p.uids)
        if p.all_versions:
            uids += sorted(self.key_versions.get(kid, set()) - set(uids))
        if not uids:
            raise Refused(f"delete of {ev.project}/{ev.key}: no such versions")
        rows = []
        for uid in uids:
            row = self.versions.get(uid)
            if row is None or (row["project"], row["key"]) != kid:
                raise Refused(f"delete of unknown version {uid} of {ev.project}/{ev.key}")
            rows.append(row)
        for row in rows:
            if row["deleted"]:
                continue
            row = dict(_full(row), deleted=True, updated=ev.at, updated_by=ev.actor)
            self.versions[row["uid"]] = row
            self.changed_versions.add(row["uid"])
            group = (row["project"], row["key"], row["iteration"])
            self.order.get(group, {}).pop(row["uid"], None)
            for tid in sorted(self.key_tags.get(kid, ())):
                tag = self.tags[tid]
                if tag is not None and tag[0] == row["uid"] and tid[3] != "latest":
                    self._move_tag(tid, None, ev, record)
            self._refresh_latest(group, ev, record)

    @staticmethod
    def _lineage_row(
        row: Row,
        relation: str,
        name: str,
        uri: str,
        parent_uid: str | None,
        parent_hash: str | None,
    ) -> Row:
        parent_project = parent_key = None
        if uri.startswith("store://"):
            try:
                parent_project, parent_key, uid = parent_parts(uri, row["project"])
            except InvalidInput:
                pass
            else:
                parent_uid = parent_uid or uid
        return {
            "project": row["project"],
            "key": row["key"],
            "uid": row["uid"],
            "relation": relation,
            "name": name,
            "parent_uri": uri,
            "parent_project": parent_project,
            "parent_key": parent_key,
            "parent_uid": parent_uid,
            "parent_hash": parent_hash,
        }

    def link_rows(self, uid: str) -> list[Row]:
        """The ``extra_data`` lineage rows of a version, from its final links."""
        row = self.versions[uid]
        return [
            self._lineage_row(row, "extra_data", name, target, None, None)
            for name, target in sorted(_links(row).items())
        ]

    # ------------------------------------------------------------ runs/projects

    def _run_started(self, ev: Stamp, p: RunStarted) -> None:
        old = self.runs.get(p.uid)
        if old is not None and old["project"] != ev.project:
            raise Refused(f"run {p.uid} already exists in project {old['project']}")
        self.runs[p.uid] = {
            "project": ev.project,
            "uid": p.uid,
            "name": p.name,
            "handler": p.handler,
            "state": old["state"] if old else "running",
            "error": old["error"] if old else None,
            "owner": ev.actor,
            "labels": dict(p.labels),
            "parameters": p.parameters,
            "inputs": _canonical_json([dataclasses.asdict(i) for i in p.inputs]),
            "results": old["results"] if old else "{}",
            "outputs": old["outputs"] if old else {},
            "artifact_path": p.artifact_path,
            "started": ev.at,
            "finished": old["finished"] if old else None,
        }
        self.changed_runs.add(p.uid)

    def _run_finished(self, ev: Stamp, p: RunFinished) -> None:
        old = self.runs.get(p.uid)
        if old is None or old["project"] != ev.project:
            raise Refused(f"finish of unknown run {ev.project}/{p.uid}")
        try:
            json.loads(p.results)
        except ValueError as exc:
            raise Refused(f"bad RunFinished results: {exc}") from exc
        self.runs[p.uid] = dict(
            old,
            state=p.state,
            error=p.error,
            results=p.results,
            outputs=dict(p.outputs),
            finished=ev.at,
        )
        self.changed_runs.add(p.uid)

    def _project_configured(self, ev: Stamp, p: ProjectConfigured) -> None:
        self._touch_project(ev)
        row = dict(self.projects[ev.project])
        for name in ("artifact_path", "description", "owner"):
            value = getattr(p, name)
            if value is not None:
                row[name] = value
        row["labels"] = {**row["labels"], **p.labels}
        row["updated"] = ev.at
        self.projects[ev.project] = row
        self.changed_projects.add(ev.project)

    def _touch_project(self, ev: Stamp) -> None:
        if ev.project not in self.projects:
            self.projects[ev.project] = {
                "name": ev.project,
                "artifact_path": None,
                "description": None,
                "owner": ev.actor,
                "labels": {},
                "created": ev.at,
                "updated": ev.at,
            }
            self.changed_projects.add(ev.project)
