"""The client: :class:`Catalog`, the one object the SDK, the CLI and the web UI use.

A Catalog has a :class:`~catalog.writer.Writer` and a
:class:`~catalog.reader.Reader`. Writes follow docs/design.md's order — (1) bytes
into the content-addressed store, (2) one Avro event appended to the log — so
no event ever points at bytes that are not stored; nothing is written when the
input is invalid (every check happens before (1)), and nothing on the way
opens a projection. A write then learns its outcome: it waits until its
events are applied by the projection it reads, and raises
:class:`~catalog.errors.EventRefused` with the projection's reason if one was
refused (``wait=False`` skips this).

Reads go to the reader: this process's own projection file, caught up with
the log first (the embedded default), or a catalog service (``api=`` /
``CATALOG_API``), asked to answer only once it has applied this client's own
writes (read-your-writes).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog import jsonutil, store
from catalog.artifacts.base import Artifact
from catalog.artifacts.lists import ArtifactList
from catalog.config import (
    Config,
    resolve_artifact_path,
    snapshot_every,
    snapshot_keep,
    snapshots_url,
)
from catalog.datastore import DataItem
from catalog.errors import (
    ArtifactNotFound,
    BlobNotFound,
    DigestMismatch,
    EventRefused,
    InvalidInput,
    InvalidURI,
    LimitExceeded,
    NotFound,
)
from catalog.events.codec import Codec, default_codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    Payload,
    Producer,
    ProjectConfigured,
    SourceRef,
    build_record,
    new_event,
)
from catalog.log import EventLog, Position
from catalog.query import AuditQuery, ListQuery
from catalog.reader import LocalReader, Reader, RemoteReader, environment_token
from catalog.remote import RemoteWriter, service_artifact_path
from catalog.uri import (
    DEFAULT_CATEGORY,
    KINDS,
    StoreURI,
    canonical_category,
    category_for_kind,
    is_store_uri,
    parse_reference,
)
from catalog.validation import (
    parse_label_filter,
    parse_time,
    validate_actor,
    validate_key,
    validate_labels,
    validate_new_tag,
    validate_project,
    validate_tag,
    validate_uid,
)
from catalog.writer import MAX_EVENT_BYTES, Writer, Written, next_offsets

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "MAX_EVENT_BYTES",
    "Catalog",
    "Written",
    "parse_as_of",
    "version_uid",
]

#: Largest description.
MAX_DESCRIPTION = 64 * 1024
#: Largest ``body=`` given inline (as MLRun); bigger content goes through ``local_path``.
MAX_INLINE_BODY = 16 * 1024 * 1024

LabelFilter = Mapping[str, str | None] | Sequence[str] | str | None


# What Path.exists() reads as "no such file" (any other error is raised).
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})

# json.dumps with options builds an encoder per call; this one is reused (same text).
_UID_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def version_uid(
    project: str,
    key: str,
    iteration: int,
    tree: str,
    digest: str | None,
    kind: str,
    format: str | None,
    identity: Mapping[str, Any],
) -> str:
    """The deterministic uid of a version (32 hex, like MLRun's uids)."""
    material = _UID_JSON.encode([project, key, iteration, tree, digest, kind, format, identity])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


class Catalog:
    """A client of one catalog: a log to write to, a reader, a default artifact path.

    Every argument defaults from the environment, the config file and the
    user's data directory (:mod:`catalog.config`). ``api`` (``CATALOG_API``)
    reads through a catalog service instead of a local projection file;
    ``wait=False`` returns from writes without learning their outcome.
    """

    def __init__(
        self,
        log: str | None = None,
        db: str | None = None,
        artifact_path: str | None = None,
        project: str | None = None,
        actor: str | None = None,
        *,
        api: str | None = None,
        wait: bool = True,
        timeout: float = 30.0,
        config: Config | None = None,
        as_of: Any = None,
        reader: Reader | None = None,
        frozen: bool = False,
        no_snapshot: bool = False,
    ) -> None:
        base = config or Config.load()
        self.config = base.with_(
            log=log, db=db, artifact_path=artifact_path, project=project, actor=actor, api=api
        )
        validate_project(self.config.project)
        validate_actor(self.config.actor)
        self.timeout = timeout
        #: wait for each write's events to be applied and raise if one was refused
        self.wait = wait
        self.codec: Codec = default_codec()
        #: read the local projection file as it is, never caught up (a replay --into
        #: file: the catalog as of a past moment); writes are refused
        self.frozen = frozen
        #: an empty projection replays the whole log instead of starting from a snapshot
        self.no_snapshot = no_snapshot
        if frozen and self.config.api:
            raise InvalidInput(
                "--frozen reads a local projection file as it is; this client reads through "
                f"the catalog service {self.config.api} (unset CATALOG_API)"
            )
        self.writer = Writer(self.config.log, codec=self.codec)
        self.reader: Reader = reader or self._make_reader()
        if (
            isinstance(self.reader, RemoteReader)
            and self.config.api
            and self.config.source("log") == "default"
        ):
            # a service and no log of its own: write through the service too
            self.writer = RemoteWriter(self.reader, codec=self.codec, wait=lambda: self.wait)
        self._service_artifact_path: str | None = None
        self._project_paths: dict[str, str | None] = {}
        self._resolved_paths: dict[tuple[str | None, ...], str] = {}
        self._producer: Producer | None = None  # see _client_producer
        #: next offsets past this client's own writes: what its reads must see
        self._written: dict[int, int] = {}
        #: set by a run context: the run uid put on every event's envelope
        self.run_uid: str | None = None
        #: a past moment every read answers for (read-only): a time or end offsets
        self.as_of: datetime | dict[int, int] | None = parse_as_of(as_of)

    def _make_reader(self) -> Reader:
        if self.config.api:
            return RemoteReader(self.config.api, token=environment_token(), timeout=self.timeout)
        return LocalReader(
            self.config.db,
            lambda: self.writer.log,
            codec=self.codec,
            timeout=self.timeout,
            token=environment_token(),
            frozen=self.frozen,
            snapshots=snapshots_url(self.config),
            start_from_snapshot=not self.no_snapshot,
            publish_every=snapshot_every(self.config),
            keep_snapshots=snapshot_keep(self.config),
        )

    def local(self) -> LocalReader:
        """This client's reader, if it is a local projection file (consume, replay, verify)."""
        if not isinstance(self.reader, LocalReader):
            raise InvalidInput(
                f"this client reads through the catalog service {self.reader.where}; "
                "projecting needs a local projection file: unset CATALOG_API (or give --db)"
            )
        return self.reader

    # ------------------------------------------------------------- resources

    @property
    def log(self) -> EventLog:
        return self.writer.log

    @property
    def project(self) -> str:
        return self.config.project

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.reader.close()
            self.writer.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.config.api:
            return f"Catalog(log={self.config.log!r}, api={self.config.api!r})"
        return f"Catalog(log={self.config.log!r}, db={self.config.db!r})"

    def store_for(self, root: str) -> store.ObjectStore:
        """The object store rooted at ``root`` (cached)."""
        return self.writer.store_for(root)

    def store_of(self, artifact: Artifact) -> store.ObjectStore:
        """The object store holding an artifact's blob."""
        target = artifact.target_path
        root = store.root_of(target)
        if root is None:
            raise InvalidInput(f"{artifact.uri} has no content in the catalog's store")
        return self.store_for(root)

    @contextmanager
    def session(self) -> Iterator[Catalog]:
        """Keep what reading needs open across calls (a local projection file is
        released at the end)."""
        with self.reader.session():
            yield self

    def read(
        self, name: str, /, *, min_positions: Mapping[int, int] | None = None, **params: Any
    ) -> Any:
        """The answer of a read of :mod:`catalog.api` (``name``, keyword arguments),
        as of :attr:`as_of`, seeing this client's own writes (and ``min_positions``)."""
        self.flush()  # buffered events first: a read sees this client's writes
        wanted = dict(self._written)
        for partition, offset in (min_positions or {}).items():
            wanted[partition] = max(offset, wanted.get(partition, 0))
        return self.reader.call(name, as_of=self.as_of, min_positions=wanted or None, **params)

    # ----------------------------------------------------------------- writes

    @contextmanager
    def batch(self) -> Iterator[Catalog]:
        """Buffer events and append them in one durable write at the end.

        Log calls inside return at once (their URIs are known: uids are
        deterministic); the events are acknowledged, and their outcome
        checked, when the block exits. If the block raises, nothing buffered
        is appended (the blobs may stay; ``gc`` reclaims them).
        """
        if self.writer.batching:  # nested: the outer batch appends
            yield self
            return
        self.writer.begin_batch()
        try:
            yield self
            written = self.writer.flush()
        finally:
            self.writer.end_batch()
        self._settle(written)

    def flush(self) -> list[Position]:
        """Append the events buffered by :meth:`batch` so far (their outcome is
        checked when the batch ends)."""
        written = self.writer.flush()
        self._note(written)
        return list(written.positions)

    def _note(self, written: Written) -> None:
        for partition, offset in next_offsets(written.positions).items():
            if offset > self._written.get(partition, 0):
                self._written[partition] = offset

    def _settle(self, written: Written) -> None:
        """Remember where this write is; unless ``wait`` is off, learn its outcome."""
        self._note(written)
        if not self.wait or not written.positions:
            return
        refused = written.refused
        if refused is None:
            refused = self.reader.call(
                "outcome",
                event_ids=[ev.event_id for ev in written.events],
                min_positions=next_offsets(written.positions),
            )
        if refused:
            ev = next(e for e in written.events if e.event_id in refused)
            raise EventRefused(ev.type, f"{ev.project}/{ev.key}", refused[ev.event_id])

    def _client_producer(self) -> Producer:
        """The producer of what this client logs outside runs (immutable: built once)."""
        actor = self.config.actor
        if self._producer is None or self._producer.name != actor:
            self._producer = Producer(kind="client", name=actor, owner=actor)
        return self._producer

    def _event(self, project: str, key: str, payload: Payload) -> CatalogEvent:
        return new_event(project, key, payload, self.config.actor, self.run_uid)

    def _message(self, ev: CatalogEvent) -> Any:
        return self.writer.message(ev)

    def append_events(self, events: Sequence[CatalogEvent]) -> Written:
        """Append events (or buffer them in a batch); returns events and positions.

        Every event is encoded, and refused if oversize, before anything is
        appended. Outside a batch, the outcome is checked (``wait``).
        """
        if self.as_of is not None:
            raise InvalidInput("this client reads the catalog as of a past moment; it cannot write")
        if self.frozen:
            raise InvalidInput(
                f"this client reads {self.config.db} frozen (as it is); it cannot write"
            )
        written = self.writer.append(events)
        self._settle(written)
        return written

    def emit(self, project: str, key: str, payloads: Sequence[Payload]) -> Written:
        """Append one event per payload, all about ``project``/``key``."""
        return self.append_events([self._event(project, key, p) for p in payloads])

    # -------------------------------------------------------- artifact paths

    def project_artifact_path(self, project: str) -> str | None:
        """The artifact path configured for ``project`` (``set_environment``)."""
        if project not in self._project_paths:
            row = self.read("project", name=project)
            self._project_paths[project] = row["artifact_path"] if row else None
        return self._project_paths[project]

    def artifact_path(
        self,
        project: str,
        artifact_path: str | None = None,
        run_path: str | None = None,
        run_uid: str | None = None,
    ) -> str:
        """Resolve the artifact path: call, run, project, client config, default."""
        artifact_path = os.fspath(artifact_path) if artifact_path is not None else None
        run_path = os.fspath(run_path) if run_path is not None else None
        memo = (project, artifact_path, run_path, run_uid)
        if memo in self._resolved_paths:
            return self._resolved_paths[memo]
        candidates: list[str | None] = [artifact_path, run_path]
        if not artifact_path or artifact_path.startswith("+/"):
            candidates.append(self.project_artifact_path(project))
        candidates.append(self._default_artifact_path())
        resolved = resolve_artifact_path(candidates, project, run_uid)
        self._resolved_paths[memo] = resolved
        return resolved

    def _default_artifact_path(self) -> str:
        """The client's artifact path; writing through a service with none set, the service's."""
        remote = isinstance(self.writer, RemoteWriter)
        if remote and self.config.source("artifact_path") == "default":
            assert isinstance(self.writer, RemoteWriter)
            if self._service_artifact_path is None:
                self._service_artifact_path = service_artifact_path(self.writer.remote)
            return self._service_artifact_path
        return self.config.artifact_path

    def configure_project(
        self,
        name: str,
        *,
        artifact_path: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Written:
        """Record project settings (a ``ProjectConfigured`` event)."""
        validate_project(name)
        written = self.emit(
            name,
            name,
            [
                ProjectConfigured(
                    artifact_path=artifact_path,
                    description=description,
                    owner=owner,
                    labels=validate_labels(labels),
                )
            ],
        )
        self._project_paths.pop(name, None)
        self._resolved_paths.clear()
        return written

    # ----------------------------------------------------------------- log

    def log_artifact(
        self,
        key: str,
        body: bytes | str | None = None,
        local_path: str | os.PathLike[str] | None = None,
        *,
        kind: str = "artifact",
        project: str | None = None,
        labels: Mapping[str, Any] | None = None,
        tag: str | None = None,
        format: str | None = None,
        sources: Sequence[Any] | Mapping[str, Any] | None = None,
        artifact_path: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        description: str | None = None,
        iteration: int = 0,
        spec: Mapping[str, Any] | None = None,
        target_path: str | None = None,
        producer: Producer | None = None,
        tree: str = "",
        run_path: str | None = None,
        filename: str | None = None,
        identity: Mapping[str, Any] | None = None,
        attachments: Mapping[str, bytes] | None = None,
        follow_symlinks: bool = False,
        stored_version: Artifact | None = None,
    ) -> Artifact:
        """Store the bytes, then append an ``ArtifactLogged`` event; the logged version.

        ``stored_version``, a logged version, gives the content as its bytes already in the
        store (hash, size, target path): nothing is read or copied.

        Give the content as ``body`` (bytes or text), ``local_path`` (a file or
        a directory), or ``target_path`` (bytes that live elsewhere, recorded
        as a reference). The returned artifact's ``uri`` is pinned to this
        version. In a directory, a symbolic link that leaves it is refused
        unless ``follow_symlinks`` (its target's bytes are then stored).
        """
        from catalog.artifacts.dataset import DatasetArtifact, is_frame

        if is_frame(body):  # a DataFrame is a dataset's content: written in its format
            if kind not in ("artifact", "dataset") or local_path is not None:
                raise InvalidInput(
                    f"a DataFrame body logs a dataset (kind {kind!r} and local_path= do not apply)"
                )
            return self.log_item(
                DatasetArtifact(key, df=body, format=format),
                project=project, labels=labels, tag=tag,
                sources=list(sources.values()) if isinstance(sources, Mapping) else sources,
                artifact_path=artifact_path, extra_data=extra_data, description=description,
                iteration=iteration, producer=producer, tree=tree, run_path=run_path,
            )  # fmt: skip
        project = validate_project(project or self.project)
        key = validate_key(key)
        if kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        labels = validate_labels(labels)
        if tag is not None:
            validate_new_tag(tag)
            if tag == "latest":
                tag = None  # latest always follows the newest version anyway
        if not isinstance(iteration, int) or iteration < 0:
            raise InvalidInput(f"iteration must be a non-negative integer, not {iteration!r}")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise LimitExceeded("description", len(description), MAX_DESCRIPTION)
        if sum(x is not None for x in (body, local_path)) > 1:
            raise InvalidInput("give either body or local_path, not both")
        inline = len(body.encode()) if isinstance(body, str) else len(body or b"")
        if inline > MAX_INLINE_BODY:  # refused before any byte is stored
            raise LimitExceeded("inline body", inline, MAX_INLINE_BODY, "pass local_path= instead")
        spec_json = jsonutil.dumps(dict(spec)) if spec else "{}"
        # a string, not a Path: building and printing a Path costs more than the stat
        path = os.fspath(local_path) if local_path is not None else None
        if path is not None:
            if not isinstance(path, str):
                raise InvalidInput(f"local_path must be a str or a path, not {type(path).__name__}")
            if not path:  # Path("") would be "." (the whole current directory)
                raise InvalidInput("local_path is empty")
            path = path.rstrip("/") or "/"  # trailing slashes, as Path drops them
        is_dir = False
        if path is not None:  # one stat; errors as Path.exists() tells them apart
            try:
                is_dir = stat.S_ISDIR(os.stat(path).st_mode)
            except OSError as exc:
                if exc.errno not in _MISSING_ERRNOS:
                    raise
                raise InvalidInput(f"local_path {path!r} does not exist") from None
            except ValueError:  # e.g. an embedded NUL byte
                raise InvalidInput(f"local_path {path!r} does not exist") from None
        refs = self.resolve_sources(sources, project)
        links = self.resolve_links(extra_data, project)

        producer = producer or self._client_producer()
        cas = None
        if body is not None or path is not None:
            cas = self.store_for(self.artifact_path(project, artifact_path, run_path, tree or None))
            if is_dir:
                kind = "dir" if kind == "artifact" else kind
                format = format or "dir"
            elif path is not None:
                filename = filename or os.path.basename(path)
        if format is None and filename and "." in filename:
            format = filename.rsplit(".", 1)[1].lower()
        content = body.encode("utf-8") if isinstance(body, str) else (path or body)
        if kind == "dataset" and spec is None and not is_dir and content is not None:
            # a dataset gets the preview, schema and stats a DataFrame's would get
            from catalog.artifacts.dataset import describe_content

            spec_json = jsonutil.dumps(describe_content(content, format))

        def make(digest: str | None, size: int | None, target: str | None) -> CatalogEvent:
            ident = (
                dict(identity)
                if identity is not None
                else ({} if digest else {"spec": spec_json, "target_path": target})
            )
            uid = version_uid(project, key, iteration, tree, digest, kind, format, ident)
            # every field given: built without the frozen dataclass's __init__ (hot path)
            payload: ArtifactLogged = build_record(
                ArtifactLogged,
                {
                    "uid": uid,
                    "kind": kind,
                    "producer": producer,
                    "iteration": iteration,
                    "tree": tree,
                    "hash": digest,
                    "size": size,
                    "target_path": target,
                    "format": format,
                    "filename": filename,
                    "labels": labels,
                    "tag": tag,
                    "sources": tuple(refs),
                    "extra_data": links,
                    "spec": spec_json,
                    "description": description,
                },
            )
            return self._event(project, key, payload)

        # Refuse an oversize event before any byte is stored (encoding a stand-in
        # costs a little, so only when the event might come near the limit).
        rough = len(spec_json) + len(description or "")
        rough += sum(len(k) + len(v) + 6 for m in (labels, links) for k, v in m.items())
        if rough > MAX_EVENT_BYTES // 4:
            placeholder = "0" * 64
            target_guess = cas.url_for(placeholder) if cas else target_path
            self._message(make(placeholder, 2**62, target_guess))

        # (1) bytes into the content-addressed store
        digest: str | None = None
        size: int | None = None
        target: str | None = target_path
        if attachments:
            if cas is None:
                cas = self.store_for(
                    self.artifact_path(project, artifact_path, run_path, tree or None)
                )
            stored = {}
            for name, content in sorted(attachments.items()):
                validate_key(name)
                att = cas.put_bytes(bytes(content))
                stored[name] = {"hash": att.digest, "size": att.size, "target_path": att.url}
            spec_json = jsonutil.dumps({**json.loads(spec_json), "attachments": stored})
        if cas is not None and (body is not None or path is not None):
            if body is not None:
                data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                blob = cas.put_bytes(data)
            elif is_dir:
                assert path is not None
                blob, manifest = cas.put_dir(path, follow_symlinks=follow_symlinks)
                blob = store.Blob(blob.digest, manifest.size, blob.url)
            else:
                assert path is not None
                blob = cas.put_file(path)
            digest, size, target = blob.digest, blob.size, blob.url

        if stored_version is not None:  # a logged version's bytes, named again
            if body is not None or path is not None or not stored_version.uid:
                raise InvalidInput(
                    "stored_version= is a logged version, given without body/local_path"
                )
            digest, size = stored_version.hash, stored_version.size
            target = stored_version.target_path

        # (2) the event
        written = self.append_events([make(digest, size, target)])
        return self._artifact_from_event(written)

    def log_item(
        self,
        item: Artifact,
        *,
        project: str | None = None,
        tag: str | None = None,
        labels: Mapping[str, Any] | None = None,
        artifact_path: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        sources: Sequence[Any] | None = None,
        description: str | None = None,
        iteration: int = 0,
        producer: Producer | None = None,
        tree: str = "",
        run_path: str | None = None,
    ) -> Artifact:
        """Log an artifact object (``PlotArtifact(...)``, ``DatasetArtifact(...)``, ...).

        The object serialises its content (:meth:`Artifact.prepare`) into a
        temporary directory; arguments given here override its own labels,
        links and sources. Returns the logged version.
        """
        if not isinstance(item, Artifact):
            raise InvalidInput(f"expected an artifact object, got {type(item).__name__}")
        with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
            prepared = item.prepare(Path(tmp))
            return self.log_artifact(
                item.key,
                body=prepared.body,
                local_path=prepared.local_path,
                kind=item.kind,
                project=project or item.project,
                labels={**item.labels, **(labels or {})},
                tag=tag,
                format=prepared.format,
                sources=[*(sources or []), *prepared.sources],
                artifact_path=artifact_path,
                extra_data={**prepared.extra_data, **(extra_data or {})},
                description=description or item.metadata.description,
                iteration=iteration,
                spec=prepared.spec,
                target_path=prepared.target_path,
                producer=producer,
                tree=tree,
                run_path=run_path,
                filename=prepared.filename,
                attachments=prepared.attachments,
            )

    def import_artifact(
        self,
        document: Mapping[str, Any],
        *,
        body_path: str | os.PathLike[str] | None = None,
        project: str | None = None,
        artifact_path: str | None = None,
    ) -> Artifact:
        """Re-register a version from its document (``to_dict`` / ``catalog export``).

        The version keeps its uid. Its bytes must exist: either at the
        document's ``spec.target_path`` (they are re-hashed and must match
        ``spec.hash``), or given as ``body_path`` (stored under the artifact
        path; their hash must match too).
        """
        try:
            kind = str(document["kind"])
            meta = dict(document["metadata"])
            spec = dict(document.get("spec") or {})
            key = validate_key(meta["key"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not an artifact document: missing {exc}") from exc
        if kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r} in the document")
        project = validate_project(project or meta.get("project") or self.project)
        uid = validate_uid(meta.get("uid") or "")
        digest = spec.pop("hash", None)
        target = spec.pop("target_path", None)
        size = spec.pop("size", None)
        if digest is not None:
            if body_path is not None:
                actual, _ = store.hash_file(os.fspath(body_path))
                if actual != digest:  # checked before anything is stored
                    raise DigestMismatch(digest, actual, str(body_path))
                cas = self.store_for(self.artifact_path(project, artifact_path))
                blob = cas.put_file(body_path)
                target, size = blob.url, blob.size
            else:
                root = store.root_of(str(target) if target else None)
                if root is None:
                    raise InvalidInput(f"{key}: the document names no stored bytes; give the body")
                cas = self.store_for(root)
                if not cas.exists(digest):
                    raise BlobNotFound(digest, str(target))
                with cas.open(digest) as fh:  # re-hash: raises DigestMismatch
                    while fh.read(store.CHUNK_SIZE):
                        pass
        producer_doc = spec.pop("producer", None) or {}
        producer = Producer(
            kind=str(producer_doc.get("kind", "client")),
            name=str(producer_doc.get("name", self.config.actor)),
            uri=producer_doc.get("uri"),
            owner=producer_doc.get("owner"),
        )
        sources = [
            SourceRef(
                name=str(s.get("name", "")),
                uri=str(s.get("uri", "")),
                uid=s.get("uid"),
                hash=s.get("hash"),
            )
            for s in spec.pop("sources", None) or []
        ]
        payload = ArtifactLogged(
            uid=uid,
            kind=kind,
            producer=producer,
            iteration=int(meta.get("iter") or 0),
            tree=str(meta.get("tree") or ""),
            hash=digest,
            size=size,
            target_path=target,
            format=spec.pop("format", None),
            filename=spec.pop("filename", None),
            labels=validate_labels(meta.get("labels")),
            sources=tuple(sources),
            extra_data={str(k): str(v) for k, v in (spec.pop("extra_data", None) or {}).items()},
            spec=jsonutil.dumps(spec),
            description=meta.get("description"),
        )
        written = self.append_events([self._event(project, key, payload)])
        return self._artifact_from_event(written)

    def _artifact_from_event(self, written: Written) -> Artifact:
        """The version a write made, as the projection will show it: its times
        are the log's (when the append said it; in a batch, the writer's until then)."""
        ev = written.events[0]
        p = ev.payload
        at = ev.occurred_at
        if written.positions and written.positions[0].time_ms >= 0:
            at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
                milliseconds=written.positions[0].time_ms
            )
        assert isinstance(p, ArtifactLogged)
        row = {
            "project": ev.project,
            "key": ev.key,
            "iteration": p.iteration,
            "uid": p.uid,
            "kind": p.kind,
            "tree": p.tree,
            "hash": p.hash,
            "size": p.size,
            "target_path": p.target_path,
            "format": p.format,
            "filename": p.filename,
            "labels": dict(p.labels),
            "producer": {
                "kind": p.producer.kind,
                "name": p.producer.name,
                "uri": p.producer.uri,
                "owner": p.producer.owner,
            },
            "extra_data": dict(p.extra_data),
            "spec": p.spec,
            "description": p.description,
            "created": at,
            "updated": at,
            "created_by": ev.actor,
            "updated_by": ev.actor,
            "deleted": False,
        }
        tags = ["latest"] + ([p.tag] if p.tag else [])
        sources = (
            [{k: v for k, v in vars(s).items() if v is not None} for s in p.sources]
            if p.sources
            else None
        )
        return Artifact.from_row(row, tags=tags, tag=p.tag or "latest", sources=sources)

    def resolve_sources(
        self, sources: Sequence[Any] | Mapping[str, Any] | None, project: str
    ) -> list[SourceRef]:
        """Lineage sources pinned to exact versions: artifacts, store URIs, URLs, paths."""
        if not sources:
            return []
        items = (
            list(sources.items()) if isinstance(sources, Mapping) else [(None, s) for s in sources]
        )
        refs = []
        for name, source in items:
            if isinstance(source, SourceRef):
                refs.append(source)
                continue
            ref = self.pin(source, project)
            refs.append(SourceRef(name=name or ref.name, uri=ref.uri, uid=ref.uid, hash=ref.hash))
        unique: list[SourceRef] = []
        for ref in refs:  # one edge per parent: the first way it was named wins
            if not any((ref.uid or ref.uri) == (u.uid or u.uri) for u in unique):
                unique.append(ref)
        return unique

    def pin(self, source: Any, project: str | None = None) -> SourceRef:
        """What ``source`` names right now: for catalog artifacts, the exact version."""
        project = project or self.project
        if isinstance(source, Artifact):
            return SourceRef(name=source.key, uri=source.uri, uid=source.uid, hash=source.hash)
        text = os.fspath(source) if isinstance(source, os.PathLike) else source
        if not isinstance(text, str) or not text:
            raise InvalidInput(f"a source must be an artifact, a URI or a path, not {source!r}")
        if not is_store_uri(text) and "://" not in text and not os.path.exists(text):
            # no such file: a key as typed where a URI is expected (customers:v2)
            try:
                text = str(parse_reference(text, default_project=project))
            except InvalidURI:
                raise InvalidInput(
                    f"source {text!r} does not exist (no such file, and not an artifact key)"
                ) from None
        if is_store_uri(text):
            art = self.get_artifact(text, project=project)
            return SourceRef(name=art.key, uri=text, uid=art.uid, hash=art.hash)
        url = store.normalize_url(text)
        digest = None
        if store.is_local(url):
            if not Path(url).exists():
                raise InvalidInput(f"source {text!r} does not exist")
            if Path(url).is_file():
                digest, _ = store.hash_file(url)
        name = url.rstrip("/").rsplit("/", 1)[-1] or url
        return SourceRef(name=name, uri=url, uid=None, hash=digest)

    def resolve_links(self, extra_data: Mapping[str, Any] | None, project: str) -> dict[str, str]:
        """``extra_data`` values as pinned store URIs (artifacts, URIs) or URLs."""
        links: dict[str, str] = {}
        for name, value in (extra_data or {}).items():
            validate_key(name)
            if isinstance(value, Artifact):
                links[name] = value.uri
                continue
            meta = getattr(value, "meta", None)  # a DataItem of an artifact
            if isinstance(meta, Artifact):
                links[name] = meta.uri
                continue
            if hasattr(value, "artifact_url") and hasattr(value, "url"):  # a plain DataItem
                value = value.url
            text = os.fspath(value) if isinstance(value, os.PathLike) else value
            if not isinstance(text, str):
                raise InvalidInput(
                    f"extra_data[{name!r}] must be an artifact, a URI or a path, not "
                    f"{type(value).__name__}"
                )
            if is_store_uri(text):
                links[name] = self.get_artifact(text, project=project).uri
            else:
                links[name] = store.normalize_url(text)
        return links

    # --------------------------------------------------------- tag / update

    def _parse(self, uri: str | Artifact, project: str | None = None) -> StoreURI:
        if isinstance(uri, Artifact):
            return uri.store_uri()
        # A bare key is accepted where a URI is expected: "iris" → latest of iris.
        return parse_reference(uri, default_project=project or self.project)

    def tag_artifact(self, uri: str | Artifact, tag: str, project: str | None = None) -> Artifact:
        """Put ``tag`` on the version ``uri`` names (moving it from any other version).

        Tags are case-sensitive; a tag that differs only by case from one the
        key has (``PROD`` beside ``prod``, ``LATEST``) is refused.
        """
        validate_new_tag(tag)
        if tag == "latest":
            raise InvalidInput("latest always names the newest version; it cannot be set")
        art = self.get_artifact(uri, project=project)
        self.emit(
            art.project or "",
            art.key,
            [ArtifactTagged(uid=art.uid or "", tag=tag, iteration=art.iter)],
        )
        return self.get_artifact(art.uri)

    def untag_artifact(self, uri: str | Artifact, tag: str, project: str | None = None) -> None:
        """Remove ``tag`` from the key ``uri`` names (only if it names that version)."""
        validate_tag(tag)
        if tag == "latest":
            raise InvalidInput("latest always names the newest version; it cannot be removed")
        parsed = self._parse(uri, project)
        row = self.read("version", uri=parsed.replace(tag=tag, uid=None, tree=None))
        if row is None:
            raise ArtifactNotFound(
                str(parsed.replace(tag=tag, uid=None, tree=None)), f"no tag {tag!r}"
            )
        if parsed.uid and not row["uid"].startswith(parsed.uid):
            raise ArtifactNotFound(str(parsed), f"tag {tag!r} names another version")
        self.emit(
            row["project"],
            row["key"],
            [ArtifactUntagged(tag=tag, iteration=row["iteration"], uid=row["uid"])],
        )

    def update_artifact(
        self,
        uri: str | Artifact,
        *,
        labels: Mapping[str, Any] | None = None,
        remove_labels: Sequence[str] = (),
        extra_data: Mapping[str, Any] | None = None,
        remove_extra_data: Sequence[str] = (),
        spec: Mapping[str, Any] | None = None,
        remove_spec: Sequence[str] = (),
        description: str | None = None,
        project: str | None = None,
    ) -> Artifact:
        """Change mutable metadata of one version in place (same uid, no tag moves).

        ``labels``, ``extra_data`` and ``spec`` merge key by key; the
        ``remove_*`` arguments drop keys.
        """
        art = self.get_artifact(uri, project=project)
        spec_set = {name: jsonutil.dumps(value) for name, value in (spec or {}).items()}
        payload = ArtifactUpdated(
            uid=art.uid or "",
            labels_set=validate_labels(labels),
            labels_removed=tuple(remove_labels),
            extra_data_set=self.resolve_links(extra_data, art.project or self.project),
            extra_data_removed=tuple(remove_extra_data),
            spec_set=spec_set,
            spec_removed=tuple(remove_spec),
            description=description,
        )
        self.emit(art.project or "", art.key, [payload])
        return self.get_artifact(art.uri)

    def delete_artifact(
        self,
        uri: str | Artifact,
        *,
        all_versions: bool = False,
        reason: str | None = None,
        project: str | None = None,
    ) -> list[str]:
        """Delete the version ``uri`` names (by uid, tag or latest), or every version.

        Returns the uids deleted. Soft delete: history stays in the log; the
        bytes are reclaimed only by ``catalog gc``.
        """
        parsed = self._parse(uri, project)
        if all_versions:
            rows = self.read("versions_of", project=parsed.project, key=parsed.key, limit=10**6)
            uids = sorted(r["uid"] for r in rows["rows"] if not r["deleted"])
            if not uids:
                raise ArtifactNotFound(str(parsed.unpinned()), "no live versions")
            self.emit(
                parsed.project,
                parsed.key,
                [ArtifactDeleted(uids=(), all_versions=True, reason=reason)],
            )
            return uids
        art = self.get_artifact(parsed)
        self.emit(
            art.project or "", art.key, [ArtifactDeleted(uids=(art.uid or "",), reason=reason)]
        )
        return [art.uid or ""]

    # ------------------------------------------------------------------ read

    def get_artifact(
        self,
        uri: str | Artifact | StoreURI,
        *,
        project: str | None = None,
        include_deleted: bool = False,
    ) -> Artifact:
        """The version ``uri`` names: by uid (``^uid``), tag (``:tag``) or else latest."""
        parsed = uri if isinstance(uri, StoreURI) else self._parse(uri, project)
        row = self.read("version", uri=parsed)
        if row is None:
            raise self._not_found(parsed)
        if row["deleted"] and not include_deleted:
            raise ArtifactNotFound(str(parsed), "deleted")
        if row["category"] != parsed.category and parsed.category != "artifacts":
            raise ArtifactNotFound(str(parsed), f"it is in category {row['category']}")
        tags, sources = row.pop("tags"), row.pop("sources")
        return Artifact.from_row(
            row,
            tags=tags,
            tag=parsed.tag,
            sources=[{k: v for k, v in s.items() if v is not None} for s in sources] or None,
        )

    def _not_found(self, parsed: StoreURI) -> ArtifactNotFound:
        """What to say when ``parsed`` names no version: if its key has a live one,
        the URI in the key's real category, and which part (tag, uid, tree) missed."""
        if parsed.unpinned() == parsed:
            return ArtifactNotFound(str(parsed))
        latest = self.read("version", uri=parsed.unpinned())
        if latest is None or latest["deleted"]:
            return ArtifactNotFound(str(parsed))
        if parsed.category not in (DEFAULT_CATEGORY, latest["category"]):
            return ArtifactNotFound(str(parsed), f"it is in category {latest['category']}")
        parsed = parsed.replace(category=latest["category"])  # a key alone: its real one
        if parsed.uid is not None:
            reason = f"no version {parsed.uid} of this key"
        elif parsed.tag is not None:
            reason = f"no tag {parsed.tag!r}"
        else:
            reason = f"no version produced by {parsed.tree}"
        return ArtifactNotFound(str(parsed), reason)

    def list_artifacts(
        self,
        project: str | None = None,
        name: str | None = None,
        kind: str | None = None,
        category: str | None = None,
        tag: str | None = None,
        labels: LabelFilter = None,
        since: Any = None,
        until: Any = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        all_versions: bool = False,
        include_deleted: bool = False,
        producer: str | None = None,
        order: str = "updated",
        all_projects: bool = False,
    ) -> ArtifactList:
        """Artifacts matching every filter given (latest versions unless told otherwise).

        ``labels`` uses MLRun's syntax: a dict, ``["k=v", "k"]`` or
        ``"k1=v1,k2"``; a bare ``k`` means the label exists. ``since`` and
        ``until`` filter on ``updated``, inclusive; they accept datetimes, ISO
        8601 text or durations such as ``"1h"`` (an hour ago).
        """
        if category is not None:
            category = canonical_category(category)  # MLRun's "model", "dataset" too
            if category not in {category_for_kind(k) for k in KINDS}:
                raise InvalidInput(f"unknown category {category!r}")
        if name is not None and name.startswith("~"):
            name = name[1:]  # MLRun's like-query; a name here always matches as a substring
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        if tag is not None and tag != "*":
            validate_tag(tag)
        if project is not None:
            validate_project(project)
        q = ListQuery(
            project=None if all_projects else (project or self.project),
            name=name,
            kind=kind,
            category=category,
            tag="*" if all_versions else tag,
            labels=parse_label_filter(labels),
            since=parse_time(since),
            until=parse_time(until),
            producer=producer,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
            order=order,
        )
        rows = self.read("list_artifacts", q=q)
        return ArtifactList(Artifact.from_row(r, tags=list(r.pop("tags"))) for r in rows)

    def lineage(
        self,
        uri: str | Artifact,
        direction: str = "upstream",
        depth: int = 5,
        project: str | None = None,
    ) -> list[dict[str, Any]]:
        """Lineage edges of a version, up to ``depth`` hops upstream or downstream.

        Lineage is what a version was made from (its ``source`` edges) and,
        downstream, what was made from it. Links (``extra_data``) are not
        lineage: read them with :meth:`links`.
        """
        art = self.get_artifact(uri, project=project)
        edges: list[dict[str, Any]] = self.read(
            "lineage", uid=art.uid or "", direction=direction, depth=depth
        )
        return edges

    def links(self, uri: str | Artifact, project: str | None = None) -> dict[str, Any]:
        """A version's links (``extra_data``), both ways: ``links`` (what it links to)
        and ``linked_from`` (the versions that link to it), as lineage-like edges."""
        art = self.get_artifact(uri, project=project)
        found: dict[str, Any] = self.read("links", uid=art.uid or "")
        return found

    def audit(
        self,
        project: str | None = None,
        key: str | None = None,
        actor: str | None = None,
        type: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int | None = None,
        after: Mapping[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Who did what, when: the events that match, in log order."""
        q = AuditQuery(
            project, key, actor, type, parse_time(since), parse_time(until), limit, after
        )
        rows: list[dict[str, Any]] = self.read("audit", q=q)
        return rows

    def audit_page(
        self, after: Mapping[int, int] | None = None, **filters: Any
    ) -> tuple[list[dict[str, Any]], dict[int, int]]:
        """Events after ``after`` and the positions they run up to, read consistently.

        For tailing: pass the returned positions back as ``after`` next time;
        no event is skipped or repeated.
        """
        q = AuditQuery(
            filters.get("project"),
            filters.get("key"),
            filters.get("actor"),
            filters.get("type"),
            parse_time(filters.get("since")),
            parse_time(filters.get("until")),
            filters.get("limit"),
            after,
        )
        page = self.read("audit_page", q=q)
        return page["rows"], {int(p): int(o) for p, o in page["positions"].items()}

    def audit_event(self, event_id: str) -> dict[str, Any]:
        """One applied event: position, schema version, envelope and decoded payload."""
        row: dict[str, Any] | None = self.read("event", event_id=event_id)
        if row is None:
            raise NotFound(f"no applied event {event_id!r}")
        row["payload"] = json.loads(row["payload"])
        return row

    def diff(self, since: Any, until: Any = None, project: str | None = None) -> dict[str, Any]:
        """What changed between two moments: versions added and deleted, tags moved,
        labels changed — each with actor and time."""
        start = parse_time(since)
        end = parse_time(until) if until is not None else parse_time("now")
        if start is None or end is None:
            raise InvalidInput("diff needs a start time")
        if end < start:
            raise InvalidInput(f"diff: --to {end.isoformat()} is before --from {start.isoformat()}")
        changes = self.read("diff", since=start, until=end, project=project)
        return {"from": start, "to": end, **changes}

    def dead_letters(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.read("dead_letters", limit=limit)
        return rows

    def tag_history(
        self, uri: str | Artifact, tag: str | None = None, project: str | None = None
    ) -> list[dict[str, Any]]:
        """Where the tags of a key stood over time: one row per (tag, version) interval,
        with ``valid_from``, ``valid_to`` (None while current), ``set_by``, ``removed_by``."""
        parsed = self._parse(uri, project)
        if tag is not None:
            validate_tag(tag)
        rows: list[dict[str, Any]] = self.read(
            "tag_history", project=parsed.project, key=parsed.key, tag=tag
        )
        return rows

    def sql(self, statement: str) -> pa.Table:
        """Run a read-only SQL query over the projection's tables (as of ``as_of``)."""
        self.flush()
        return self.reader.sql(statement, as_of=self.as_of, min_positions=self._written or None)

    def get_dataitem(self, url: str | Artifact) -> DataItem:
        """A :class:`~catalog.datastore.DataItem` for a store URI, artifact, URL or path."""
        return DataItem.of(url, self)

    # -------------------------------------------------------------- consume

    def consume(
        self,
        *,
        follow: bool = False,
        stop: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None,
        poll: float = 0.5,
        batch_size: int | None = None,
    ) -> int:
        """Catch the local projection up with the log; with ``follow``, keep following it."""
        self.flush()
        return self.local().consume(
            follow=follow, stop=stop, progress=progress, poll=poll, batch_size=batch_size
        )

    def positions(self) -> dict[int, int]:
        """Where the projection reads stand: next offset per partition (live or as-of)."""
        found = self.read("positions")
        return {int(p): int(o) for p, o in sorted(found.items(), key=lambda i: int(i[0]))}

    def consumer_status(self) -> list[dict[str, Any]]:
        """Per partition of the log: the projection's ``position`` (next offset to
        apply), the log's ``end``, the ``lag`` between them, and ``committed``: the
        offset last committed to the log's consumer group (Kafka's ``?group=``;
        None without one, or before a first commit). The projection's position is
        the truth; the committed offset is what lag tools outside see."""
        self.flush()
        reader = self.reader
        positions = reader.applied() if isinstance(reader, LocalReader) else self.positions()
        ends = self.log.end_offsets()
        committed = self.log.group_offsets()
        return [
            {
                "partition": p,
                "position": positions.get(p, 0),
                "end": end,
                "lag": max(0, end - positions.get(p, 0)),
                "committed": None if committed is None else committed.get(p),
            }
            for p, end in sorted(ends.items())
        ]

    def digest(self) -> dict[str, str]:
        """The canonical digest of the projection (equal on every replica at one position)."""
        found: dict[str, str] = self.read("digest")
        return found

    def replay(
        self,
        *,
        until: Any = None,
        to_position: int | None = None,
        into: str | None = None,
        progress: Callable[[int], None] | None = None,
        from_snapshot: bool = False,
    ) -> str:
        """Rebuild a projection from the log into a new file, then swap it in atomically.

        ``until`` (a time) or ``to_position`` (an offset of partition 0, exclusive)
        stop the replay early. With ``into`` the new projection is written there
        and the live one is left alone. ``from_snapshot`` starts from the newest
        usable published snapshot (not with ``until``) and replays only the tail.
        Returns the path written.
        """
        if from_snapshot and until is not None:
            raise InvalidInput(
                "--from-snapshot takes --to-position, not --until: a snapshot is cut at "
                "positions, not at a time"
            )
        if into is not None and (not into or "\x00" in into or os.path.isdir(into)):
            raise InvalidInput(f"into {into!r} is not a file path (a new projection file)")
        self.flush()
        return self.local().replay(
            until=parse_time(until),
            to_position=to_position,
            into=into,
            progress=progress,
            from_snapshot=from_snapshot,
        )

    def publish_snapshot(self) -> dict[str, Any]:
        """Publish a snapshot of the local projection now (through the service that
        holds the file, if one does): its name, positions, digest and sizes."""
        self.flush()
        return self.local().publish_snapshot()

    def snapshots(self) -> list[dict[str, Any]]:
        """The snapshots published for this catalog's log, newest first."""
        return self.local().list_snapshots()

    def log_end(self) -> dict[int, int]:
        return self.log.end_offsets()


def parse_as_of(value: Any) -> datetime | dict[int, int] | None:
    """An as-of moment: a time (datetime, ISO 8601 with dashes, ``3d``) or a log position.

    Positions: an integer N (the first N records of the embedded log, i.e.
    offsets below N) or ``P:O[,P:O...]`` (end offsets per partition, exclusive).
    """
    if value is None or isinstance(value, datetime):
        return parse_time(value) if value is not None else None
    if isinstance(value, Mapping):
        return {int(p): int(o) for p, o in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidInput(f"as-of position must be >= 0, not {value}")
        return {0: value}
    text = str(value).strip()
    if text.isascii() and text.isdigit():  # ASCII digits only: int("²") fails
        return {0: int(text)}
    if (
        ":" in text
        and text.isascii()
        and all(part.strip().replace(":", "").isdigit() for part in text.split(","))
    ):
        ends: dict[int, int] = {}
        for part in text.split(","):
            partition, offset = part.split(":", 1)
            ends[int(partition)] = int(offset)
        return ends
    return parse_time(text)
