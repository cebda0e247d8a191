"""The events: frozen dataclasses, one per Avro record in ``schemas/``.

Every change to the catalog is one :class:`CatalogEvent` envelope whose
``payload`` is one of the eight payload records below. The docstrings here are
the reference documentation of the events (``docs/events.md`` is generated from
them) and match the ``doc`` of the ``.avsc`` files; a test checks that every
schema and its class have the same fields, both ways.

Events are plain data: they know how to turn themselves into the dictionaries
fastavro writes (:func:`to_avro`) and back (:func:`from_avro`); encoding to
bytes lives in :mod:`catalog.events.codec`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

R = TypeVar("R")


def _now() -> datetime:
    # Avro timestamp-micros: drop sub-microsecond precision up front so that an
    # event equals its own round trip.
    return datetime.now(UTC)


def _uuid() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` but 3x cheaper."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


# --------------------------------------------------------------------- nested


@dataclass(frozen=True)
class RunInput:
    """One input of a run, as asked for and as resolved when the run started."""

    name: str
    url: str
    uri: str | None = None
    uid: str | None = None
    hash: str | None = None


@dataclass(frozen=True)
class Producer:
    """What produced an artifact version: a run, a user at the CLI or SDK, or a service."""

    kind: str
    name: str
    uri: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class SourceRef:
    """One lineage source of a version: what it was made from, pinned to the exact version."""

    name: str
    uri: str
    uid: str | None = None
    hash: str | None = None


# -------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class ProjectConfigured:
    """A project was created or its settings changed (``set_environment``, ``new_project``).

    Fields left ``None`` keep their previous value; labels merge.
    """

    type_name: ClassVar[str] = "ProjectConfigured"
    artifact_path: str | None = None
    description: str | None = None
    owner: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunStarted:
    """A run (a job, a handler executed by ``run_local``) started. Envelope key: the run uid."""

    type_name: ClassVar[str] = "RunStarted"
    uid: str
    name: str
    handler: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    parameters: str = "{}"
    inputs: tuple[RunInput, ...] = ()
    artifact_path: str | None = None


@dataclass(frozen=True)
class RunFinished:
    """A run ended: ``state`` is ``completed``, ``error`` or ``aborted``. Envelope key: run uid."""

    type_name: ClassVar[str] = "RunFinished"
    uid: str
    state: str
    error: str | None = None
    results: str = "{}"
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactLogged:
    """A version of an artifact was logged. Envelope key: the artifact key.

    The version is immutable; its ``uid`` is derived from (project, key,
    iteration, tree, hash, kind, format, identity spec), so logging the same
    thing again names the same version. ``latest`` moves to it; ``tag``, when
    given, is put on it too.
    """

    type_name: ClassVar[str] = "ArtifactLogged"
    uid: str
    kind: str
    producer: Producer
    iteration: int = 0
    tree: str = ""
    hash: str | None = None
    size: int | None = None
    target_path: str | None = None
    format: str | None = None
    filename: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None
    sources: tuple[SourceRef, ...] = ()
    extra_data: Mapping[str, str] = field(default_factory=dict)
    spec: str = "{}"
    description: str | None = None


@dataclass(frozen=True)
class ArtifactTagged:
    """A tag was put on a version; a tag names exactly one version of its key and moves."""

    type_name: ClassVar[str] = "ArtifactTagged"
    uid: str
    tag: str
    iteration: int = 0


@dataclass(frozen=True)
class ArtifactUntagged:
    """A tag was removed from a key. If ``uid`` is given and the tag has moved since, no-op."""

    type_name: ClassVar[str] = "ArtifactUntagged"
    tag: str
    iteration: int = 0
    uid: str | None = None


@dataclass(frozen=True)
class ArtifactUpdated:
    """Mutable metadata of one version changed; the version keeps its uid and no tag moves.

    Changes merge field by field (labels, links, top-level spec fields), so
    concurrent updates of different fields all survive. ``spec_set`` values
    are JSON texts.
    """

    type_name: ClassVar[str] = "ArtifactUpdated"
    uid: str
    labels_set: Mapping[str, str] = field(default_factory=dict)
    labels_removed: tuple[str, ...] = ()
    extra_data_set: Mapping[str, str] = field(default_factory=dict)
    extra_data_removed: tuple[str, ...] = ()
    spec_set: Mapping[str, str] = field(default_factory=dict)
    spec_removed: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class ArtifactDeleted:
    """Versions were deleted (soft delete; bytes are reclaimed only by ``gc``).

    Tags on deleted versions go away and ``latest`` moves to the newest
    remaining version. With ``all_versions`` every version of the key that
    exists at this point of the log is deleted.
    """

    type_name: ClassVar[str] = "ArtifactDeleted"
    uids: tuple[str, ...] = ()
    all_versions: bool = False
    reason: str | None = None


Payload = (
    ProjectConfigured
    | RunStarted
    | RunFinished
    | ArtifactLogged
    | ArtifactTagged
    | ArtifactUntagged
    | ArtifactUpdated
    | ArtifactDeleted
)

#: The registry of payload types, in the order of the envelope's union.
PAYLOAD_TYPES: dict[str, type[Any]] = {
    cls.type_name: cls
    for cls in (
        ProjectConfigured,
        RunStarted,
        RunFinished,
        ArtifactLogged,
        ArtifactTagged,
        ArtifactUntagged,
        ArtifactUpdated,
        ArtifactDeleted,
    )
}

#: Nested record types by field, used to rebuild dataclasses from Avro dicts.
_NESTED: dict[tuple[str, str], type[Any]] = {
    ("RunStarted", "inputs"): RunInput,
    ("ArtifactLogged", "producer"): Producer,
    ("ArtifactLogged", "sources"): SourceRef,
}


@dataclass(frozen=True)
class CatalogEvent:
    """The envelope of every event on the log.

    ``key`` is the artifact key (artifact events), the run uid (run events) or
    the project name (project events); the log is totally ordered per
    (project, key). ``event_id`` is the idempotency key. ``run_uid`` (envelope
    version 2) names the run during which the change was made.
    """

    project: str
    key: str
    payload: Payload
    actor: str
    event_id: str = field(default_factory=_uuid)
    occurred_at: datetime = field(default_factory=_now)
    run_uid: str | None = None

    @property
    def type(self) -> str:
        return self.payload.type_name

    @property
    def partition_key(self) -> str:
        """The log's ordering key: ``<project>/<key>``."""
        return f"{self.project}/{self.key}"


# ------------------------------------------------------------ avro conversion


_SCALARS = (str, int, float, bool, type(None), bytes)
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, mappings to dicts (fast: hot path)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {n: _plain(getattr(value, n)) for n in names}
    if kind is tuple or kind is list:
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


def to_avro(event: CatalogEvent) -> dict[str, Any]:
    """The dict fastavro writes for ``event`` (the union branch named explicitly)."""
    return {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "project": event.project,
        "key": event.key,
        "payload": ("catalog." + event.payload.type_name, _plain(event.payload)),
        "run_uid": event.run_uid,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """An instance of a frozen dataclass from complete field data, without ``__init__``.

    The codec hands over records that have every field (Avro resolution fills
    defaults), so the generated ``__init__`` with its per-field
    ``object.__setattr__`` is skipped: this is the projection's hot path.
    """
    obj = object.__new__(cls)
    obj.__dict__.update(data)
    return obj


def build_record(cls: type[R], fields: dict[str, Any]) -> R:
    """``cls(**fields)`` for a frozen event dataclass, 6x cheaper.

    For the SDK's hot paths; a test checks the result equals the constructor's.
    Fields left out take their defaults, as with the constructor (a field added
    to an event later need not be passed by every caller); a required one left
    out is a ``TypeError``.
    """
    defaults, factories, names = _defaults(cls)
    data = {**defaults, **fields}
    for name, factory in factories:
        if name not in fields:
            data[name] = factory()
    if data.keys() != names:
        missing = sorted(names - data.keys())
        unknown = sorted(data.keys() - names)
        raise TypeError(f"{cls.__name__}: missing fields {missing}, unknown fields {unknown}")
    result: R = _build(cls, data)
    return result


_Defaults = tuple[dict[str, Any], list[tuple[str, Any]], frozenset[str]]
_DEFAULTS: dict[type[Any], _Defaults] = {}


def _defaults(cls: type[Any]) -> _Defaults:
    """A dataclass's default values, its default factories and its field names (cached)."""
    known = _DEFAULTS.get(cls)
    if known is None:
        fields = dataclasses.fields(cls)
        known = _DEFAULTS[cls] = (
            {f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
            [
                (f.name, f.default_factory)
                for f in fields
                if f.default_factory is not dataclasses.MISSING
            ],
            frozenset(f.name for f in fields),
        )
    return known


def new_event(
    project: str, key: str, payload: Payload, actor: str, run_uid: str | None = None
) -> CatalogEvent:
    """A new envelope (fresh ``event_id``, ``occurred_at`` now), as ``CatalogEvent(...)``."""
    return build_record(
        CatalogEvent,
        {
            "project": project,
            "key": key,
            "payload": payload,
            "actor": actor,
            "event_id": _uuid(),
            "occurred_at": _now(),
            "run_uid": run_uid,
        },
    )


#: per payload type: fields holding arrays (made tuples) and nested records
_ARRAYS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple"))
    for name, cls in PAYLOAD_TYPES.items()
}


def payload_from_avro(type_name: str, data: Mapping[str, Any]) -> Payload:
    cls = PAYLOAD_TYPES[type_name]
    fields = dict(data)
    for name in _ARRAYS[type_name]:
        nested = _NESTED.get((type_name, name))
        value = fields[name]
        fields[name] = tuple(_build(nested, v) for v in value) if nested else tuple(value)
    producer = fields.get("producer")
    if type_name == "ArtifactLogged" and isinstance(producer, Mapping):
        fields["producer"] = _build(Producer, producer)
    result: Payload = _build(cls, fields)
    return result


def from_avro(record: Mapping[str, Any]) -> CatalogEvent:
    """Rebuild an event from what fastavro read (with ``return_record_name=True``)."""
    name, body = record["payload"]
    occurred = record["occurred_at"]
    if isinstance(occurred, int):  # read without the logical type: microseconds
        occurred = _EPOCH + timedelta(microseconds=occurred)
    event: CatalogEvent = _build(
        CatalogEvent,
        {
            "project": record["project"],
            "key": record["key"],
            "payload": payload_from_avro(name.rsplit(".", 1)[-1], body),
            "actor": record["actor"],
            "event_id": str(record["event_id"]),
            "occurred_at": occurred,
            "run_uid": record.get("run_uid"),
        },
    )
    return event


def describe(type_name: str, payload: Mapping[str, Any]) -> str:
    """One line saying what an event did, from its type and its payload as JSON: the
    ``what`` of the CLI's audit and of the web UI's history."""
    p = payload
    uid = str(p.get("uid") or "")[:12]
    if type_name == "ArtifactLogged":
        text = f"logged {p.get('kind', 'artifact')} version {uid}"
        return text + (f" with tag {p['tag']}" if p.get("tag") else "")
    if type_name == "ArtifactTagged":
        return f"tag {p.get('tag')} -> {uid}"
    if type_name == "ArtifactUntagged":
        return f"removed tag {p.get('tag')}" + (f" from {uid}" if uid else "")
    if type_name == "ArtifactUpdated":
        parts = []
        for name, what in (("labels_set", "labels"), ("extra_data_set", "links")):
            if p.get(name):
                parts.append(f"set {what} " + ", ".join(f"{k}={v}" for k, v in p[name].items()))
        for name, what in (("labels_removed", "labels"), ("extra_data_removed", "links")):
            if p.get(name):
                parts.append(f"removed {what} " + ", ".join(p[name]))
        if p.get("spec_set") or p.get("spec_removed"):
            parts.append("changed the spec")
        if p.get("description") is not None:
            parts.append("changed the description")
        return f"updated {uid}: " + ("; ".join(parts) or "no change")
    if type_name == "ArtifactDeleted":
        what = (
            "deleted every version"
            if p.get("all_versions")
            else "deleted " + ", ".join(str(u)[:12] for u in p.get("uids") or [])
        )
        return what + (f" ({p['reason']})" if p.get("reason") else "")
    if type_name == "RunStarted":
        return f"started run {p.get('name')} ({uid})"
    if type_name == "RunFinished":
        return f"run {uid} {p.get('state')}" + (f": {p['error']}" if p.get("error") else "")
    if type_name == "ProjectConfigured":
        names = [k for k in ("artifact_path", "description", "owner", "labels") if p.get(k)]
        return "set " + ", ".join(names) if names else "configured the project"
    return type_name


def payload_to_json(payload: Payload) -> dict[str, Any]:
    """A payload as a JSON-ready dict (the ``events.payload`` column)."""
    result: dict[str, Any] = _plain(payload)
    return result
