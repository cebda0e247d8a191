"""The artifact object: MLRun's document layout (``kind``, ``metadata``, ``spec``, ``status``).

An :class:`Artifact` is what every log call returns and every read gives
back. Its ``uri`` is pinned to the exact version (``store://…^<uid>``), so it
keeps resolving to that version after ``latest`` moves. ``to_dict`` /
``to_yaml`` give the MLRun-like document that ``catalog show --yaml`` prints
and ``catalog import`` reads back.

Subclasses (datasets, models, plots, feature-store objects) set ``kind`` and
register themselves, so rows read from the projection come back as the right
class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from catalog.errors import InvalidInput
from catalog.uri import StoreURI, category_for_kind

if TYPE_CHECKING:  # pragma: no cover
    from catalog.store import ObjectStore


class Client(Protocol):
    """What an artifact object or a DataItem asks of the client it reads through.

    A :class:`~catalog.Catalog` is one. The classes here sit below the SDK:
    they never import it; the SDK registers the process-wide client with
    :func:`set_default_client` (``catalog.context`` does, at import).
    """

    @property
    def project(self) -> str: ...

    def artifact_path(self, project: str, artifact_path: str | None = None) -> str: ...

    def get_artifact(self, uri: str) -> Artifact: ...

    def get_dataitem(self, url: str | Artifact) -> Any: ...

    def store_of(self, artifact: Artifact) -> ObjectStore: ...


_default_client: Callable[[], Client] | None = None


def set_default_client(provider: Callable[[], Client]) -> None:
    """Register the function that returns the process-wide client."""
    global _default_client
    _default_client = provider


def default_client() -> Client:
    """The process-wide client (MLRun's implicit database), as registered."""
    if _default_client is None:  # pragma: no cover - importing catalog registers it
        raise RuntimeError("no process-wide client: import catalog first")
    return _default_client()


class _Section:
    """An attribute bag: ``artifact.spec.format``, ``artifact.metadata.labels``."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None  # MLRun documents omit empty fields; reading them gives None

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self.__dict__.items() if v is not None}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Section) and self.__dict__ == other.__dict__


class Metadata(_Section):
    """key, project, uid, iter, tree, tag, tags, labels, created, updated, ..."""


class Spec(_Section):
    """target_path, hash, size, format, producer, sources, extra_data, and kind-specific fields."""


class Status(_Section):
    """state: created or deleted.

    MLRun keeps a dataset's ``stats`` and ``preview`` in ``status``; here they
    live in the spec (one place, what the projection's ``spec`` column holds),
    and ``status.stats`` / ``status.preview`` read them from there.
    """

    _MIRRORED = ("stats", "preview", "header_original_length")

    def __getattr__(self, name: str) -> Any:
        if name in Status._MIRRORED:
            spec = self.__dict__.get("_spec")
            return getattr(spec, name) if spec is not None else None
        return super().__getattr__(name)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if not k.startswith("_")}

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None and k[0] != "_"
        )
        return f"Status({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Status) and self.to_dict() == other.to_dict()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, _Section):
        return value.to_dict()
    return value


@dataclass
class Prepared:
    """What an artifact object hands to the client to be logged.

    Exactly one of ``body`` and ``local_path`` (a file or a directory) carries
    the content, or neither (metadata-only artifacts such as feature sets).
    ``spec`` is the kind-specific metadata; ``sources`` and ``extra_data`` add
    lineage and links.
    """

    body: bytes | None = None
    local_path: str | None = None
    format: str | None = None
    filename: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    sources: list[Any] = field(default_factory=list)
    extra_data: dict[str, Any] = field(default_factory=dict)
    target_path: str | None = None
    #: extra blobs stored beside the content (name -> bytes), listed in the spec
    attachments: dict[str, bytes] = field(default_factory=dict)


_CORE_SPEC = (
    "target_path",
    "hash",
    "size",
    "format",
    "filename",
    "producer",
    "sources",
    "extra_data",
)


class Artifact:
    """One artifact version (or, before logging, a description of one)."""

    kind: ClassVar[str] = "artifact"
    _classes: ClassVar[dict[str, type[Artifact]]] = {}

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Register the class for its kind (rows of that kind read back as it);
        ``register=False`` for a class that only builds versions of another's kind."""
        super().__init_subclass__(**kwargs)
        if register:
            Artifact._classes[cls.kind] = cls

    def __init__(
        self,
        key: str | None = None,
        body: bytes | str | None = None,
        local_path: str | None = None,
        format: str | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
        target_path: str | None = None,
        src_path: str | os.PathLike[str] | None = None,
        is_inline: bool = False,
        project: str | None = None,
        **spec: Any,
    ) -> None:
        if local_path is not None and src_path is not None:
            raise InvalidInput("give local_path or src_path (MLRun's name for it), not both")
        self.metadata = Metadata(key=key, labels=dict(labels or {}), description=description)
        if project:
            self.metadata.project = project
        self.spec = Spec(format=format, target_path=target_path, **spec)
        self.status = Status(state="new", _spec=self.spec)
        self.body = body
        path = local_path if local_path is not None else src_path
        self.local_path = os.fspath(path) if path is not None else None

    @property
    def src_path(self) -> str | None:
        """MLRun's name for ``local_path``: the file (or directory) to log."""
        return self.local_path

    @src_path.setter
    def src_path(self, value: str | os.PathLike[str] | None) -> None:
        self.local_path = os.fspath(value) if value is not None else None

    # --------------------------------------------------------------- identity

    @property
    def key(self) -> str:
        return str(self.metadata.key)

    @property
    def project(self) -> str | None:
        return self.metadata.project  # type: ignore[no-any-return]

    @property
    def uid(self) -> str | None:
        return self.metadata.uid  # type: ignore[no-any-return]

    @property
    def iter(self) -> int:
        return int(self.metadata.iter or 0)

    @iter.setter
    def iter(self, value: int | None) -> None:
        self.metadata.iter = value

    @property
    def tag(self) -> str | None:
        return self.metadata.tag  # type: ignore[no-any-return]

    @property
    def tree(self) -> str | None:
        return self.metadata.tree  # type: ignore[no-any-return]

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels  # type: ignore[no-any-return]

    @property
    def category(self) -> str:
        return category_for_kind(self.kind)

    @property
    def hash(self) -> str | None:
        return self.spec.hash  # type: ignore[no-any-return]

    @property
    def size(self) -> int | None:
        return self.spec.size  # type: ignore[no-any-return]

    @property
    def producer(self) -> dict[str, Any] | None:
        """Who logged the version: ``kind`` (run, project, client), ``name``, ``uri``, ``owner``."""
        return self.spec.producer  # type: ignore[no-any-return]

    @producer.setter
    def producer(self, value: Mapping[str, Any] | None) -> None:
        self.spec.producer = dict(value) if value is not None else None

    @property
    def db_key(self) -> str:
        """MLRun's database key: here always the artifact key (keys are not prefixed)."""
        return self.key

    def get_body(self) -> Any:
        """The content given to this object (``body=``), or a logged version's bytes."""
        if self.body is not None:
            return self.body
        if self.uid and self.target_path:
            return default_client().get_dataitem(self).get()
        return None

    def upload(self, artifact_path: str | os.PathLike[str] | None = None) -> None:
        """Write this unlogged object's content to its ``target_path``, as MLRun's
        ``upload()`` does, and record ``hash`` (sha256) and ``size``; no version is
        logged (``log_artifact`` does that). Without a ``target_path`` the bytes go to
        the content-addressed store under ``artifact_path`` (else the client's
        default), which becomes the ``target_path``. Nothing to upload (no body,
        frame, figure or file) does nothing."""
        import tempfile

        from catalog import store

        if self.uid:
            raise InvalidInput(
                f"artifact {self.key!r} is a logged version: its bytes are stored already "
                "and cannot change"
            )
        body: bytes | None
        source: str | None
        with tempfile.TemporaryDirectory(prefix="catalog-upload-") as tmp:
            if self.local_path is not None and os.path.isfile(self.local_path):
                body, source = None, self.local_path
            elif self.local_path is not None and os.path.isdir(self.local_path):
                raise InvalidInput(
                    f"upload: {self.local_path!r} is a directory; log it with log_artifact"
                )
            else:
                prepared = self.prepare(Path(tmp))
                body, source = prepared.body, prepared.local_path
                if source is not None and os.path.isdir(source):
                    raise InvalidInput(f"upload: artifact {self.key!r} is a directory")
            if body is None and source is None:
                return
            if self.spec.target_path:
                target = store.normalize_url(self.spec.target_path)
                if body is not None:
                    store.put_bytes_atomic(target, body)
                else:
                    assert source is not None
                    store.put_local_file(source, target)
                digest, size = store.hash_file(target)
            else:
                client = default_client()
                where = os.fspath(artifact_path) if artifact_path is not None else None
                root = client.artifact_path(self.project or client.project, where)
                objects = store.ObjectStore(root)
                if body is not None:
                    blob = objects.put_bytes(body)
                else:
                    assert source is not None
                    blob = objects.put_file(source)
                digest, size, target = blob.digest, blob.size, blob.url
        self.spec.target_path = target
        self.spec.hash = digest
        self.metadata.hash = digest
        self.spec.size = size

    @property
    def target_path(self) -> str | None:
        return self.spec.target_path  # type: ignore[no-any-return]

    def get_target_path(self) -> str | None:
        """MLRun's accessor for where the bytes are."""
        return self.target_path

    @property
    def extra_data(self) -> dict[str, str]:
        return dict(self.spec.extra_data or {})

    @property
    def deleted(self) -> bool:
        return self.status.state == "deleted"  # type: ignore[no-any-return]

    @property
    def uri(self) -> str:
        """The store URI pinned to this exact version."""
        return str(self.store_uri())

    def store_uri(self, *, pinned: bool = True) -> StoreURI:
        if not self.project or not self.uid:
            raise ValueError(f"artifact {self.key!r} has not been logged yet")
        return StoreURI(
            category=self.category,
            project=self.project,
            key=self.key,
            iteration=self.iter,
            tag=None if pinned else self.tag,
            uid=self.uid if pinned else None,
        )

    @property
    def kind_spec(self) -> dict[str, Any]:
        """The kind-specific part of the spec (what the ``spec`` JSON column holds)."""
        return {k: v for k, v in self.spec.__dict__.items() if k not in _CORE_SPEC}

    # ---------------------------------------------------------------- logging

    def prepare(self, workdir: Path) -> Prepared:
        """Turn this (unlogged) artifact into content and metadata to log.

        ``workdir`` is a private temporary directory, removed after logging.
        Subclasses serialise what they hold (a DataFrame, a figure, a model)
        there; the base class logs ``body`` or ``local_path`` as given.
        """
        body = self.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None and not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidInput(
                f"artifact {self.key!r}: body must be bytes or text, not {type(body).__name__}"
            )
        if body is None and self.local_path is None and self.spec.target_path is None:
            raise InvalidInput(
                f"artifact {self.key!r} has no content: give body=, local_path= (src_path=) "
                "or target_path="
            )
        return Prepared(
            body=body,
            local_path=self.local_path,
            format=self.spec.format,
            filename=self.spec.filename,
            spec=self.kind_spec,
            extra_data=dict(self.spec.extra_data or {}),
            target_path=self.spec.target_path,
        )

    # ------------------------------------------------------------- documents

    def to_dict(self) -> dict[str, Any]:
        """The MLRun-like document: ``kind``, ``metadata``, ``spec``, ``status``."""
        return {
            "kind": self.kind,
            "metadata": self.metadata.to_dict(),
            "spec": self.spec.to_dict(),
            "status": self.status.to_dict(),
        }

    def export(self, target_path: str | os.PathLike[str], with_extras: bool = True) -> str:
        """Write the document to ``target_path`` (a path or fsspec URL): YAML, or JSON
        when the name ends in ``.json``. Returns where it was written."""
        from catalog import store

        url = store.normalize_url(target_path)
        text = self.to_json() if url.endswith(".json") else self.to_yaml()
        store.put_bytes_atomic(url, text.encode("utf-8"))
        return url

    def __getitem__(self, name: str) -> Any:
        """The document read as a dict, as MLRun's list results are:
        ``artifact["metadata"]["key"]``."""
        return self.to_dict()[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.to_dict().get(name, default)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def to_yaml(self) -> str:
        """The document as YAML; short lists of scalars (histograms, rows) on one line."""
        import yaml

        class Dumper(yaml.SafeDumper):
            pass

        def represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
            flow = all(not isinstance(v, dict | list) for v in data)
            return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

        Dumper.add_representer(list, represent_list)
        return str(
            yaml.dump(self.to_dict(), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
        )

    def __repr__(self) -> str:
        where = self.uri if self.uid and self.project else f"(unlogged) {self.key}"
        return f"<{type(self).__name__} {where}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Artifact) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------- from rows

    @classmethod
    def class_for(cls, kind: str) -> type[Artifact]:
        return cls._classes.get(kind, Artifact)

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        tags: list[str] | None = None,
        tag: str | None = None,
        sources: list[dict[str, Any]] | None = None,
    ) -> Artifact:
        """An artifact from an ``artifacts`` row (and its tags and sources)."""
        klass = cls.class_for(row["kind"])
        art = klass.__new__(klass)
        if klass.kind != row["kind"]:  # a kind with no class of its own (file, dir, ...)
            art.__dict__["kind"] = row["kind"]
        tags = sorted(tags or [])
        art.metadata = Metadata(
            key=row["key"],
            project=row["project"],
            uid=row["uid"],
            iter=row["iteration"],
            tree=row["tree"] or None,
            tag=tag or ("latest" if "latest" in tags else (tags[0] if tags else None)),
            tags=tags,
            labels=dict(row["labels"] or {}),
            description=row["description"],
            created=row["created"],
            updated=row["updated"],
            created_by=row["created_by"],
            updated_by=row["updated_by"],
            hash=row["hash"],
        )
        raw = row["spec"]
        spec = (json.loads(raw) if raw != "{}" else {}) if isinstance(raw, str) else dict(raw)
        producer = row["producer"]
        art.spec = Spec(
            target_path=row["target_path"],
            hash=row["hash"],
            size=row["size"],
            format=row["format"],
            filename=row["filename"],
            producer={k: v for k, v in dict(producer).items() if v is not None}
            if producer
            else None,
            sources=sources or None,
            extra_data=dict(row["extra_data"] or {}) or None,
            **spec,
        )
        art.status = Status(state="deleted" if row["deleted"] else "created", _spec=art.spec)
        art.body = None
        art.local_path = None
        return art
