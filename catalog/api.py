"""The catalog service's query API: every read, its address, and its wire form.

One table, :data:`OPS`, names every read the SDK, the CLI and the web UI make
(each is one function over a DuckDB connection, in :mod:`catalog.query`) and
the path it is served at under :data:`PREFIX`. Everything else is derived
from it: the local reader calls the function, ``catalog serve`` routes the
path to it, the remote reader builds the request, and the OpenAPI document
describes it. Adding a read is one function and one line here.

Requests are ``GET``s whose query parameters are the function's keyword
arguments, written as people type them (``since=7d``, ``labels=team=ml``,
repeated for lists; a dataclass argument such as ``ListQuery`` is spread into
its fields). Two parameters belong to every read:

- ``min_positions=P:O[,P:O...]`` — answer only once the projection has applied
  everything before these offsets (read-your-writes); the service waits,
  bounded, and answers 504 naming the position if it cannot;
- ``as_of=TIME|N|P:O,...`` — answer as the catalog stood then.

Answers are JSON; times are ISO 8601 text in UTC. The header
:data:`TIMES_HEADER` lists the field names that hold times, so a client can
turn them back into datetimes without knowing each answer's shape, and
:data:`POSITIONS_HEADER` gives the positions the answer was read at. Errors
are the one error shape, ``{"error", "message", "status"}``
(:meth:`catalog.errors.CatalogError.to_dict`).

This module imports nothing heavy: a job that only talks to the service
never loads DuckDB.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInput

#: Every path of the versioned API starts here.
PREFIX = "/api/v1"
#: Header: the positions (``P:O,...``, next offset per partition) an answer was read at.
POSITIONS_HEADER = "X-Catalog-Positions"
#: Header: names of the fields of the answer that hold times (comma-separated).
TIMES_HEADER = "X-Catalog-Times"
#: Parameters every read takes, beside its own.
COMMON = ("min_positions", "as_of")
#: Largest integer a parameter takes (DuckDB's BIGINT with room to spare).
MAX_INT = 2**62
#: What every whole-number parameter takes: from, to (read and declared from here).
WHOLE = (0, MAX_INT)
#: Positions on the wire, as :func:`format_offsets` writes them (empty: none).
OFFSETS_PATTERN = r"^([0-9]+:[0-9]+(,[0-9]+:[0-9]+)*)?$"
_OFFSETS_RE = re.compile(OFFSETS_PATTERN)


@dataclass(frozen=True)
class Op:
    """One read: its name, where it is served, the function that answers it."""

    name: str
    path: str  # under PREFIX
    target: str  # "module:function", called as function(connection, **params)
    summary: str

    @property
    def function(self) -> Callable[..., Any]:
        return _load(self.target)


OPS: tuple[Op, ...] = (
    Op("version", "/artifacts/resolve", "catalog.query:version",
       "The version a store URI names (uid, tag or latest), with its tags and sources."),
    Op("list_artifacts", "/artifacts", "catalog.query:list_artifacts",
       "Versions matching every filter given (latest of each key unless told otherwise)."),
    Op("search_artifacts", "/artifacts/search", "catalog.query:search_artifacts",
       "One page of a listing, and how many versions match in all."),
    Op("versions_of", "/artifacts/versions", "catalog.query:versions_of",
       "Every version of a key, newest first, with its tags."),
    Op("lineage", "/lineage", "catalog.query:lineage",
       "Source edges of a version, up to depth hops upstream or downstream (links apart)."),
    Op("lineage_graph", "/lineage/graph", "catalog.query:lineage_graph",
       "The lineage neighbourhood of a version both ways, bounded for display."),
    Op("links_to", "/lineage/links", "catalog.query:links_to",
       "Versions that link to a version in their extra_data."),
    Op("links", "/links", "catalog.query:links",
       "A version's links (extra_data) both ways, apart from its lineage."),
    Op("tag_history", "/tags/history", "catalog.query:tag_history",
       "Every placement of the tags of a key: which version, from when, until when, by whom."),
    Op("audit", "/events", "catalog.query:audit",
       "Applied events matching the filters, in log order (the audit trail)."),
    Op("audit_page", "/events/page", "catalog.query:audit_page",
       "Applied events matching the filters and the positions they run up to (for tailing)."),
    Op("event", "/events/one", "catalog.query:event",
       "One applied event by its id, with its position and schema version."),
    Op("recent_events", "/events/recent", "catalog.query:recent_events",
       "The newest events about one key (or one version of it), newest first."),
    Op("outcome", "/events/outcome", "catalog.query:outcome",
       "Which of the given events were refused, and why (after min_positions is applied)."),
    Op("diff", "/diff", "catalog.query:diff",
       "What changed between two moments: versions added and deleted, tags, labels."),
    Op("dead_letters", "/dead-letters", "catalog.query:dead_letters",
       "Events the projection could not decode or refused, with the reason."),
    Op("project", "/projects/one", "catalog.query:project",
       "One project's settings (artifact path, owner, description, labels)."),
    Op("project_summaries", "/projects", "catalog.query:project_summaries",
       "Every project with its live keys per category, versions, runs and last activity."),
    Op("project_names", "/projects/names", "catalog.query:project_names",
       "The names of the configured projects."),
    Op("known_projects", "/projects/known", "catalog.query:known_projects",
       "Every project the catalog knows: configured ones and those holding artifacts."),
    Op("run", "/runs/one", "catalog.query:run",
       "One run (job): parameters, inputs, results, outputs, state."),
    Op("runs_of", "/runs", "catalog.query:runs_of", "Runs of a project, newest first."),
    Op("blob_references", "/blobs", "catalog.query:blob_references",
       "Every version that names stored content (what verify and gc read)."),
    Op("references", "/maintenance/references", "catalog.maintenance:references",
       "What verify and gc read together: positions, versions naming content, projects, digest."),
    Op("lineage_records", "/lineage/records", "catalog.openlineage:lineage_records",
       "Runs, versions and source edges (of one project, or all): the OpenLineage export's input."),
    Op("positions", "/positions", "catalog.query:positions",
       "The projection's next offset per log partition."),
    Op("cut_at_time", "/positions/at", "catalog.query:cut_at_time",
       "End offsets of the catalog as it stood at a moment."),
    Op("digest", "/digest", "catalog.consumers.digest:digest",
       "The canonical digest of the projection (equal on every replica at one position)."),
)  # fmt: skip

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
BY_PATH: dict[str, Op] = {op.path: op for op in OPS}

#: Not in OPS (their answer is not JSON): read-only SQL, and an artifact's content.
SQL_PATH = "/sql"
SQL_FORMATS = {
    "arrow": "application/vnd.apache.arrow.stream",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
#: Liveness and identity of a service (which projection, which log, where it stands).
HEALTH_PATH = "/health"
#: ``POST``: the service publishes a snapshot of its projection now (write scope)
SNAPSHOT_PATH = "/snapshots"

#: Writes through a service (clients with no log of their own): events are
#: POSTed as a batch of encoded events, each framed by its length (4 bytes,
#: big-endian); the answer is their positions and, with ``wait``, their outcome.
EVENTS_PATH = "/events"
EVENTS_MEDIA = "application/octet-stream"
#: Most bytes one POST of events may carry.
MAX_EVENTS_BODY = 64 * 1024 * 1024
#: Blobs by digest, in the store ``root`` (a query parameter): PUT (upload,
#: verified before it is visible), HEAD (exists?) and GET (download).
OBJECTS_PATH = "/objects/sha256/{digest}"
#: Small blobs in one POST (``root`` a query parameter): each framed as its
#: SHA-256 (32 bytes), its length (4 bytes, big-endian) and its bytes; each
#: stored only if it hashes to its digest (else nothing of the batch is kept).
BLOBS_PATH = "/objects/sha256"
#: Most bytes one POST of blobs may carry.
MAX_BLOBS_BODY = 16 * 1024 * 1024


def frame_blobs(blobs: Sequence[tuple[str, bytes]]) -> bytes:
    """The body of a POST of small ``blobs`` (digest, bytes)."""
    return b"".join(bytes.fromhex(d) + len(b).to_bytes(4, "big") + b for d, b in blobs)


def unframe_blobs(body: bytes) -> list[tuple[str, bytes]]:
    """The (digest, bytes) of a POST of blobs; :class:`InvalidInput` if the framing is broken."""
    blobs: list[tuple[str, bytes]] = []
    at = 0
    while at < len(body):
        if at + 36 > len(body):
            raise InvalidInput(f"the blobs body ends inside a header, at byte {at}")
        digest = body[at : at + 32].hex()
        size = int.from_bytes(body[at + 32 : at + 36], "big")
        at += 36
        if at + size > len(body):
            raise InvalidInput(f"blob {len(blobs)} of the body: length {size} is past its end")
        blobs.append((digest, body[at : at + size]))
        at += size
    if not blobs:
        raise InvalidInput("the blobs body holds no blob")
    return blobs


def frame_events(values: Sequence[bytes]) -> bytes:
    """The body of a POST of ``values`` (encoded events)."""
    return b"".join(len(v).to_bytes(4, "big") + v for v in values)


def unframe_events(body: bytes) -> list[bytes]:
    """The encoded events of a POST body; :class:`InvalidInput` if the framing is broken."""
    values: list[bytes] = []
    at = 0
    while at < len(body):
        if at + 4 > len(body):
            raise InvalidInput(f"the events body ends inside a length, at byte {at}")
        size = int.from_bytes(body[at : at + 4], "big")
        at += 4
        if size == 0 or at + size > len(body):
            raise InvalidInput(f"event {len(values)} of the body: length {size} is impossible")
        values.append(body[at : at + size])
        at += size
    if not values:
        raise InvalidInput("the events body holds no event")
    return values


def op(name: str) -> Op:
    try:
        return BY_NAME[name]
    except KeyError:
        raise InvalidInput(f"no read named {name!r}") from None


@functools.cache
def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


# ------------------------------------------------------------------ offsets


def format_offsets(offsets: Mapping[int, int]) -> str:
    """``{0: 12, 1: 3}`` as ``0:12,1:3``."""
    return ",".join(f"{int(p)}:{int(o)}" for p, o in sorted(offsets.items()))


def parse_offsets(text: str, what: str = "positions") -> dict[int, int]:
    """``0:12,1:3`` (next offset per partition) as a dict; a clear error otherwise."""
    from catalog.validation import parse_whole

    if not _OFFSETS_RE.fullmatch(text):
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text):,} chars)"
        raise InvalidInput(
            f"{what} {shown!r}: expected PARTITION:OFFSET[,PARTITION:OFFSET...] "
            "with whole numbers, e.g. 0:125"
        )
    found: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        partition, _, offset = part.partition(":")
        found[parse_whole(partition, 0, MAX_INT, f"{what}: a partition")] = parse_whole(
            offset, 0, MAX_INT, f"{what}: an offset"
        )
    return found


# ------------------------------------------------------------- parameters


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Keyword arguments as query parameters (by each value's type; None left out)."""
    out: list[tuple[str, str]] = []
    for name, value in params.items():
        if _spread(type(value)):
            defaults = {f.name: f.default for f in dataclasses.fields(value)}
            fields = {k: v for k, v in vars(value).items() if v != defaults.get(k)}
            out += encode_params(fields)
        else:
            out += [(name, text) for text in _encode(value)]
    return out


def _encode(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, datetime | date):
        return [value.isoformat()]
    if isinstance(value, Mapping):
        return [format_offsets(value)]
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        out = []
        for item in items:
            if isinstance(item, tuple):  # a label filter (key, value or None)
                key, val = item
                out.append(key if val is None else f"{key}={val}")
            else:
                out += _encode(item)
        return out
    return [str(value)]


class Params(typing.Protocol):
    """What a request's query parameters offer (Starlette's ``QueryParams``)."""

    def getlist(self, key: str) -> list[str]: ...

    def keys(self) -> Iterable[str]: ...


@functools.cache
def _signature(target: str) -> dict[str, tuple[Any, Any]]:
    fn = _load(target)
    module = importlib.import_module(fn.__module__)
    names = dict(vars(module))
    params = list(inspect.signature(fn).parameters.values())[1:]
    found: dict[str, tuple[Any, Any]] = {}
    for p in params:
        hint = eval(p.annotation, names) if isinstance(p.annotation, str) else p.annotation  # noqa: S307 - our own annotations
        found[p.name] = (hint, p.default)
    return found


def returns(op: Op) -> Any:
    """The type the op's function returns (its answer, before :func:`dump`)."""
    return _returns(op.target)


@functools.cache
def _returns(target: str) -> Any:
    fn = _load(target)
    names = dict(vars(importlib.import_module(fn.__module__)))
    hint = inspect.signature(fn).return_annotation
    return eval(hint, names) if isinstance(hint, str) else hint  # noqa: S307 - our own annotations


@dataclass(frozen=True)
class _Param:
    """How one query parameter is read: its name, its kind, whether it is required,
    and (for a query object such as ``ListQuery``) the fields it is built from."""

    name: str
    kind: str  # str | int | bool | time | uri | list | labels | offsets | object
    required: bool = False
    fields: tuple[_Param, ...] = ()
    build: Any = None  # the query object's class
    doc: str = ""


@functools.cache
def _plan(target: str) -> tuple[tuple[_Param, ...], frozenset[str]]:
    """The parameters of an op's function, each with how to read it (once per op)."""
    params = []
    known = set(COMMON)
    for name, (hint, default) in _signature(target).items():
        if _spread(hint):
            hints = typing.get_type_hints(hint)
            fields = tuple(
                _Param(f.name, _kind(hints[f.name]), doc=f"{hint.__name__}.{f.name}")
                for f in dataclasses.fields(hint)
            )
            known.update(f.name for f in fields)
            params.append(_Param(name, "object", fields=fields, build=hint))
        else:
            known.add(name)
            params.append(_Param(name, _kind(hint), default is inspect.Parameter.empty, doc=name))
    return tuple(params), frozenset(known)


def _kind(hint: Any) -> str:
    from catalog.uri import StoreURI

    hint = _strip_optional(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset) or _is_abc(origin, "Sequence"):
        inner = _strip_optional(args[0]) if args else str
        return "labels" if typing.get_origin(inner) is tuple else "list"
    if origin is dict or _is_abc(origin, "Mapping"):
        return "offsets"
    kinds = {str: "str", Any: "str", bool: "bool", int: "int", datetime: "time", StoreURI: "uri"}
    if hint in kinds:
        return kinds[hint]
    raise TypeError(f"no wire form for {hint!r}")  # a programming error


def decode_params(op: Op, given: Params) -> dict[str, Any]:
    """A request's query parameters as the op's keyword arguments (typed, checked)."""
    params, known = _plan(op.target)
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.kind == "object":
            values = {}
            for field in param.fields:
                found = given.getlist(field.name)
                if found:
                    values[field.name] = _decode(field, found)
            kwargs[param.name] = param.build(**values)
            continue
        found = given.getlist(param.name)
        if found:
            kwargs[param.name] = _decode(param, found)
        elif param.required:
            raise InvalidInput(f"{PREFIX}{op.path} needs the parameter {param.name!r}")
    unknown = sorted(set(given.keys()) - known)
    if unknown:
        raise InvalidInput(
            f"{PREFIX}{op.path} takes no parameter {unknown[0]!r}; "
            f"it takes {', '.join(sorted(known))}"
        )
    return kwargs


def _spread(cls: Any) -> bool:
    """A query object (a dataclass whose every field has a default) goes on the wire
    as its fields; any other value (a StoreURI) as its text."""
    return (
        isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and all(
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            for f in dataclasses.fields(cls)
        )
    )


def _decode(param: _Param, values: list[str]) -> Any:
    try:
        return _read(param.name, param.kind, values)
    except InvalidInput as exc:
        if exc.args and not str(exc.args[0]).startswith("parameter "):
            exc.args = (f"parameter {param.name!r}: {exc.args[0]}", *exc.args[1:])
        raise


def _read(name: str, kind: str, values: list[str]) -> Any:
    from catalog.uri import StoreURI
    from catalog.validation import parse_label_filter, parse_time, parse_whole

    if kind == "list":
        return [_text(name, v) for v in values]
    if kind == "labels":  # k=v, or k for "has k"
        return tuple(parse_label_filter(values))
    text = values[-1]
    if kind == "str":
        return _text(name, text)
    if kind == "int":
        return parse_whole(text, *WHOLE, f"parameter {name!r}")
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise InvalidInput(f"parameter {name!r} is true or false, not {text!r}")
    if kind == "time":
        return parse_time(text)
    if kind == "uri":
        return StoreURI.parse(text)
    return parse_offsets(text, name)  # offsets


def _text(name: str, text: str) -> str:
    if "\x00" in text:
        raise InvalidInput(f"parameter {name!r} holds a NUL byte")
    return text


#: A text parameter: anything but a NUL byte (what :func:`_text` refuses).
TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}


def kind_schema(kind: str) -> dict[str, Any]:
    """How a parameter of ``kind`` is declared in the OpenAPI document: what
    :func:`_read` takes (the ``catalog serve`` fuzz test holds the two together)."""
    if kind == "int":
        return {"type": "integer", "minimum": WHOLE[0], "maximum": WHOLE[1]}
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "offsets":
        return {"type": "string", "pattern": OFFSETS_PATTERN}
    if kind == "list":
        return {"type": "array", "items": dict(TEXT)}
    if kind == "labels":
        return {"type": "array", "items": {"type": "string"}, "description": "k=v, or k: has k"}
    if kind == "time":
        return {
            "type": "string",
            "description": "ISO 8601 time, 'now', a duration meaning that long ago (7d, 1h30m) "
            "or epoch seconds",
        }
    if kind == "uri":
        return {"type": "string", "description": "store://<category>/<project>/<key>[:tag|^uid]"}
    return dict(TEXT)


def parameters(op: Op) -> list[_Param]:
    """The op's query parameters as they go on the wire (a query object spread into its
    fields), each with its kind and whether it is required, in signature order."""
    params, _ = _plan(op.target)
    found: list[_Param] = []
    for param in params:
        found += param.fields if param.kind == "object" else (param,)
    return found


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _is_abc(origin: Any, name: str) -> bool:
    import collections.abc

    abc_type = getattr(collections.abc, name)
    return isinstance(origin, type) and issubclass(origin, abc_type)


# ----------------------------------------------------------------- results


def dump(result: Any) -> tuple[bytes, list[str]]:
    """An answer as JSON, and the names of the fields that held times."""
    times: set[str] = set()
    body = json.dumps(_plain(result, times, None), ensure_ascii=False, separators=(",", ":"))
    return body.encode("utf-8"), sorted(times)


def _plain(value: Any, times: set[str], name: str | None) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, times, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, times, name) for v in value]
    if isinstance(value, datetime | date):
        if name is not None:
            times.add(name)
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(vars(value), times, name) if _spread(type(value)) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def load(body: bytes, times: Iterable[str] = ()) -> Any:
    """An answer from its JSON, with the fields named in ``times`` as datetimes again."""
    value = json.loads(body)
    wanted = frozenset(times)
    return _restore(value, wanted) if wanted else value


def _restore(value: Any, times: frozenset[str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in times and isinstance(v, str):
                out[k] = datetime.fromisoformat(v)
            elif k in times and isinstance(v, list):
                out[k] = [datetime.fromisoformat(x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = _restore(v, times)
        return out
    if isinstance(value, list):
        return [_restore(v, times) for v in value]
    return value


# ---------------------------------------------------------- advertisement
#
# A process that keeps a projection file open for good (``catalog serve``,
# ``catalog consume --follow``) writes where it answers beside the file, so
# the other processes of this machine read through it instead of waiting for
# the file. An advertisement whose process is gone, or whose address answers
# with another instance id, is stale and ignored.


def advert_path(db: str) -> Path:
    """``<db>.service.json``: where the holder of projection ``db`` says where it answers."""
    return Path(str(db) + ".service.json")


def write_advert(db: str, advert: Mapping[str, Any]) -> Path:
    """Publish ``advert`` (url, pid, instance, log, log_id) atomically beside ``db``."""
    path = advert_path(db)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(json.dumps(dict(advert), indent=2) + "\n")
    os.replace(temp, path)
    return path


def remove_advert(db: str, instance: str) -> None:
    """Withdraw this instance's advertisement (never another instance's)."""
    found = read_advert(db, check_pid=False)
    if found is not None and found.get("instance") == instance:
        advert_path(db).unlink(missing_ok=True)


def read_advert(db: str, *, check_pid: bool = True) -> dict[str, Any] | None:
    """The live advertisement beside ``db``, or None (none, unreadable, or its process gone)."""
    path = advert_path(db)
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("url"), str):
        return None
    if check_pid and not _alive(found.get("pid")):
        return None
    return found


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
