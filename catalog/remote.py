"""Writes through a catalog service: for clients with no log and no bucket of their own.

With ``CATALOG_API`` set and no log configured, a client writes as it reads,
over HTTP (:mod:`catalog.api`'s ``EVENTS_PATH`` and ``OBJECTS_PATH``):

- :class:`RemoteStore` is the object store of a root *on the service's side*:
  bytes are hashed here, uploaded once (a ``HEAD`` finds those already
  there), verified by the service before they become visible, and
  downloaded verified again here. Files stream from and to disk: memory stays
  constant whatever their size.
- :class:`RemoteWriter` POSTs a batch of encoded events; the service checks
  them as a local writer would (and that every blob they name is stored),
  appends them to its log, and answers their positions and, unless the
  client does not wait, their outcome, in the same round trip. A retried
  POST never appends twice: the service knows the event ids it has.

The order of docs/design.md holds across the wire: the bytes are stored
(and durable) before the event naming them is sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from catalog import api
from catalog.errors import BlobNotFound, InvalidInput, ServiceError, StorageError
from catalog.events.codec import Codec
from catalog.events.model import CatalogEvent
from catalog.log import EventLog, Message, Position
from catalog.reader import CHUNK, RemoteReader
from catalog.store import Blob, ObjectStore, _VerifyingReader, hash_file, join_url, validate_digest
from catalog.writer import Writer, Written

#: Blobs larger than this are uploaded only after a HEAD finds them missing.
ASK_FIRST = 256 * 1024


class RemoteStore(ObjectStore):
    """The content-addressed store at ``root`` on a catalog service's side."""

    def __init__(self, root: str, remote: RemoteReader) -> None:  # no fsspec here
        self.root = root
        self.protocol = "catalog-service"
        self.remote = remote
        self.wrote = False
        self._blobs_url = join_url(self.root, "objects", "sha256")
        #: small blobs not sent yet: they go in one POST before the events naming them
        self._pending: dict[str, bytes] = {}
        self._pending_bytes = 0

    def __repr__(self) -> str:
        return f"RemoteStore({self.root!r} via {self.remote.url})"

    def _path(self, digest: str) -> str:
        return api.OBJECTS_PATH.format(digest=validate_digest(digest))

    def _params(self) -> list[tuple[str, str]]:
        return [("root", self.root)]

    # -- ownership: the service's store, its own gc

    def owner(self) -> dict[str, Any] | None:
        return None

    def claim(self, owner: dict[str, Any]) -> dict[str, Any]:
        return owner

    def sync(self) -> None:
        """Send the small blobs still pending, in one request (the writer calls this
        before it sends the events naming them); the service answers once they are
        stored and durable."""
        if not self._pending:
            return
        pending = list(self._pending.items())
        self.remote.request(
            "POST",
            api.BLOBS_PATH,
            self._params(),
            body=api.frame_blobs(pending),
            headers={"Content-Type": "application/octet-stream"},
        )
        self._pending.clear()
        self._pending_bytes = 0
        self.wrote = True

    # -- writing

    def put_bytes(self, data: bytes) -> Blob:
        digest = hashlib.sha256(data).hexdigest()
        if len(data) <= ASK_FIRST:  # small: sent with the others before the events
            self._hold(digest, data)
        elif not self.exists(digest):  # large: only if the service lacks it
            self._upload(digest, len(data), data)
        return Blob(digest, len(data), self.url_for(digest))

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        local = os.fspath(path)
        try:
            with open(local, "rb") as fh:
                data = fh.read(ASK_FIRST + 1)
        except OSError as exc:
            raise StorageError(local, str(exc.strerror or exc)) from exc
        if len(data) <= ASK_FIRST:  # small: read once, sent with the others
            return self.put_bytes(data)
        digest, size = hash_file(local)
        if not self.exists(digest):
            self._upload(digest, size, lambda: open(local, "rb"))  # noqa: SIM115 - http.client reads it
        return Blob(digest, size, self.url_for(digest))

    def _hold(self, digest: str, data: bytes) -> None:
        if digest in self._pending:
            return
        if self._pending_bytes + len(data) > api.MAX_BLOBS_BODY // 2:
            self.sync()
        self._pending[digest] = data
        self._pending_bytes += len(data)

    def put_stream(self, fileobj: BinaryIO, expected: str | None = None) -> Blob:
        """Spooled to a temporary file first (the digest names the upload)."""
        with tempfile.TemporaryDirectory(prefix="catalog-upload-") as folder:
            spool = os.path.join(folder, "blob")
            with open(spool, "wb") as out:
                while chunk := fileobj.read(CHUNK):
                    out.write(chunk)
            return self.put_file(spool)

    def _upload(self, digest: str, size: int, body: bytes | Callable[[], Any]) -> None:
        """PUT the bytes (``body``: bytes, or a function opening the file for each try)."""
        self.remote.request(
            "PUT",
            self._path(digest),
            self._params(),
            body=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        self.wrote = True

    # -- reading

    def _head(self, digest: str) -> int | None:
        """The blob's size, or None if the service does not have it (a ``GET …?stat=1``:
        unlike a HEAD, its refusals carry their reason)."""
        path, params = self._path(digest), [*self._params(), ("stat", "1")]
        body, response = self.remote.request("GET", path, params, answers=(404,))
        if response.status == 404:
            return None
        try:
            return int(json.loads(body)["size"])
        except (ValueError, KeyError, TypeError):
            raise ServiceError(self.remote.url, "answered a blob's size with bad JSON") from None

    def exists(self, digest: str) -> bool:
        return digest in self._pending or self._head(digest) is not None

    def size(self, digest: str) -> int:
        if digest in self._pending:
            return len(self._pending[digest])
        found = self._head(digest)
        if found is None:
            raise BlobNotFound(digest, self.url_for(digest))
        return found

    def open(self, digest: str) -> BinaryIO:
        """A download that re-hashes here; DigestMismatch at its end if the bytes are wrong."""
        self.sync()  # a blob of this client's own, not sent yet
        response = self.remote.stream(self._path(digest), self._params())
        return io.BufferedReader(_VerifyingReader(response, digest, self.url_for(digest)), CHUNK)

    def delete(self, digest: str) -> None:
        raise InvalidInput(f"{self.root} is the catalog service's store: run gc on the service")

    def iter_blobs(self) -> Iterator[Blob]:
        raise InvalidInput(f"{self.root} is the catalog service's store: run gc on the service")


class RemoteWriter(Writer):
    """Appends events through a catalog service; stores bytes in its stores."""

    def __init__(
        self, remote: RemoteReader, *, codec: Codec | None = None, wait: Callable[[], bool]
    ) -> None:
        super().__init__(remote.url, codec=codec)
        self.remote = remote
        self._wait = wait
        self._remote_stores: dict[str, RemoteStore] = {}

    @property
    def log(self) -> EventLog:
        raise InvalidInput(
            f"this client writes through the catalog service {self.remote.url} and has no "
            "log of its own: set CATALOG_LOG (or --log) for commands that read the log itself"
        )

    def store_for(self, root: str) -> RemoteStore:
        if root not in self._remote_stores:
            self._remote_stores[root] = RemoteStore(root, self.remote)
        return self._remote_stores[root]

    def close(self) -> None:
        """The connection is the reader's (closed with it)."""

    def _append(self, events: tuple[CatalogEvent, ...], messages: Sequence[Message]) -> Written:
        for cas in self._remote_stores.values():  # bytes before the events naming them
            cas.sync()
        wait = self._wait()
        body, _ = self.remote.request(
            "POST",
            api.EVENTS_PATH,
            [("wait", "1" if wait else "0")],
            body=api.frame_events([m.value for m in messages]),
            headers={"Content-Type": api.EVENTS_MEDIA},
        )
        try:
            answer = json.loads(body)
            positions = tuple(Position(int(p), int(o), int(t)) for p, o, t in answer["positions"])
            refused = answer.get("refused")
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(self.remote.url, f"answered a write with bad JSON ({exc})") from None
        if len(positions) != len(events):
            raise ServiceError(self.remote.url, "answered a write with too few or many positions")
        return Written(events, positions, dict(refused) if wait and refused is not None else None)


def service_artifact_path(remote: RemoteReader) -> str:
    """The default artifact path of the service (its ``status``), for clients without one."""
    body, _ = remote.get("/status", [])
    try:
        found = json.loads(body)["artifact_path"]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(remote.url, "does not say its artifact path (older?)") from None
    if not isinstance(found, str) or not found:
        raise ServiceError(remote.url, "does not say its artifact path")
    return found


__all__ = ["RemoteStore", "RemoteWriter", "service_artifact_path"]
