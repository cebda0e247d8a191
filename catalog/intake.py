"""The catalog service's door for writes: events and bytes from remote clients.

A client with no log of its own (:mod:`catalog.remote`) sends its bytes,
then its events, here. The service:

- stores an upload only into a root it serves (with tokens: its own artifact
  path, or a project's configured one; an open loopback server takes the
  paths its machine's clients name), and only once the bytes hash to the
  digest they are uploaded under: a partial or wrong upload is never visible;
- takes a batch of encoded events only if every one decodes, is within the
  limits a local writer enforces, and names blobs that are stored; then
  appends them to its own log, as a local writer would (bytes durable
  first);
- appends an event id once: a retried POST (the answer was lost) gets the
  positions of the first, from the ids this process appended lately or,
  failing that, from the projection;
- answers with the positions, and with ``wait`` the outcome (applied, or
  refused with the projection's reason), in one round trip.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from catalog import access, api
from catalog.config import expand_template
from catalog.errors import BlobNotFound, DigestMismatch, EventError, Forbidden, InvalidInput
from catalog.events.model import ArtifactLogged, CatalogEvent
from catalog.log import Position
from catalog.store import CHUNK_SIZE, Blob, ObjectStore, normalize_url, root_of, validate_digest
from catalog.writer import next_offsets

if TYPE_CHECKING:  # pragma: no cover
    from catalog.client import Catalog
    from catalog.service import Service

#: Event ids this process appended, remembered to answer retries without a query.
RECENT_IDS = 100_000
#: How long projects' artifact paths are remembered for checking uploads (seconds).
ROOTS_TTL = 2.0
#: An upload is spooled in memory up to this size, then on disk.
SPOOL_IN_MEMORY = 8 * 1024 * 1024

_TEMPLATE = re.compile(r"\{\{.*")


class Intake:
    """Writes through the service, onto ``catalog``'s log and stores (the served catalog)."""

    def __init__(self, service: Service, catalog: Catalog, *, confined: bool = True) -> None:
        self.service = service
        self.catalog = catalog
        #: uploads only into :meth:`roots` (else wherever the client says)
        self.confined = confined
        self._lock = threading.Lock()  # one append at a time: ids checked, then appended
        self._recent: OrderedDict[str, Position] = OrderedDict()
        self._paths: tuple[float, list[tuple[str, str]]] | None = None

    # ------------------------------------------------------------------ roots

    def _configured(self) -> list[tuple[str, str]]:
        """Projects' configured artifact paths, asked of the projection at most every
        ROOTS_TTL seconds (a project configured since is seen that much later)."""
        now = time.monotonic()
        if self._paths is None or now - self._paths[0] >= ROOTS_TTL:
            with self.service.reading() as con:
                rows = con.execute(
                    "SELECT name, artifact_path FROM projects WHERE artifact_path IS NOT NULL"
                ).fetchall()
            self._paths = (now, [(str(n), str(p)) for n, p in rows])
        return self._paths[1]

    def roots(self, grant: access.Grant | None = None) -> list[str]:
        """The store roots uploads may go to: the static part (before any template) of
        the service's artifact path and of every project's configured one. For a
        project-limited grant, those paths expanded for its projects only."""
        grant = grant or access.current()
        configured = self._configured()
        own = self.catalog.config.artifact_path
        if grant.projects is not None:
            paths = [expand_template(own, p) for p in sorted(grant.projects)]
            paths += [expand_template(path, name) for name, path in configured
                      if grant.may_see(name)]  # fmt: skip
        else:
            paths = [own] + [path for _, path in configured]
        out = []
        for path in paths:
            static = _TEMPLATE.sub("", path).rstrip("/")
            if static:
                out.append(normalize_url(static).rstrip("/"))
        return out

    def store(self, root: str | None) -> ObjectStore:
        """The store at ``root``, if the service serves it; else Forbidden naming it."""
        if not root:
            raise InvalidInput("parameter 'root' (the store's URL) is required")
        wanted = normalize_url(root).rstrip("/")
        grant = access.current()
        if grant.limited and not any(
            wanted == r or wanted.startswith(r + "/") for r in self.roots(grant)
        ):
            raise Forbidden(
                f"the store {root!r} is not one of this token's projects "
                f"({', '.join(sorted(grant.projects or ())) or 'none'})"
            )
        if self.confined and not any(
            wanted == r or wanted.startswith(r + "/") for r in self.roots(grant)
        ):
            raise Forbidden(
                f"the store {root!r} is not one this service writes to (its artifact path "
                "or a project's): configure the project's artifact_path, or log there directly"
            )
        return self.catalog.store_for(wanted)

    # ------------------------------------------------------------------ bytes

    async def upload(self, store: ObjectStore, digest: str, body: AsyncIterator[bytes]) -> Any:
        """Store the bytes of ``body`` as blob ``digest``, checked before they are visible."""
        validate_digest(digest)
        hasher = hashlib.sha256()
        size = 0
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            async for chunk in body:
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            actual = hasher.hexdigest()
            if actual != digest:
                wrong = DigestMismatch(digest, actual, "the upload")
                wrong.status = 400  # the client's bytes, not the store's
                raise wrong
            spool.seek(0)
            from starlette.concurrency import run_in_threadpool

            def write() -> Any:
                if store.exists(digest):  # stored already (a client that did not ask first)
                    store.sync()  # durable, should another request have stored it just now
                    return Blob(digest, size, store.url_for(digest))
                blob = store.put_stream(spool, expected=digest)  # type: ignore[arg-type]
                store.sync()  # durable before the answer (the event comes after)
                return blob

            return await run_in_threadpool(write)
        finally:
            spool.close()

    def store_small(self, store: ObjectStore, blobs: Sequence[tuple[str, bytes]]) -> int:
        """Store small ``blobs`` (digest, bytes), each checked first: one wrong, none kept."""
        for digest, data in blobs:
            actual = hashlib.sha256(data).hexdigest()
            if actual != validate_digest(digest):
                wrong = DigestMismatch(digest, actual, "the upload")
                wrong.status = 400  # the client's bytes, not the store's
                raise wrong
        for _, data in blobs:
            store.put_bytes(data)
        store.sync()  # durable before the answer (the events come after)
        return len(blobs)

    # ----------------------------------------------------------------- events

    def accept(self, values: Sequence[bytes], *, wait: bool) -> dict[str, Any]:
        """Append the encoded events ``values``; their positions and, with ``wait``,
        the reasons of those refused (event id -> reason)."""
        writer = self.catalog.writer
        events: list[CatalogEvent] = []
        for i, value in enumerate(values):
            try:
                events.append(writer.codec.decode(value))
            except EventError as exc:
                raise InvalidInput(f"event {i} of the batch does not decode: {exc}") from None
        for ev in events:
            self._check_blobs(ev)
        with self._lock:
            known = self._known([ev.event_id for ev in events])
            fresh = list({ev.event_id: ev for ev in events if ev.event_id not in known}.values())
            if fresh:
                # the local writer's own append: every event encoded and held to its
                # limits (LimitExceeded) before any is appended
                written = writer.append(fresh)
                for ev, pos in zip(fresh, written.positions, strict=True):
                    known[ev.event_id] = pos
                    self._recent[ev.event_id] = pos
                while len(self._recent) > RECENT_IDS:
                    self._recent.popitem(last=False)
        positions = [known[ev.event_id] for ev in events]
        refused: dict[str, str] | None = None
        if wait:
            refused = self.service.read(
                api.op("outcome"),
                {"event_ids": [ev.event_id for ev in events]},
                min_positions=next_offsets(positions),
            )[0]
        return {
            "positions": [[p.partition, p.offset, p.time_ms] for p in positions],
            "refused": refused,
        }

    def _known(self, ids: Sequence[str]) -> dict[str, Position]:
        """Which of ``ids`` the log has already, and where."""
        found = {i: self._recent[i] for i in ids if i in self._recent}
        rest = [i for i in ids if i not in found]
        if rest:
            with self.service.reading() as con:
                rows = con.execute(
                    'SELECT event_id, "partition", "offset", epoch_ms(logged_at) FROM events '
                    "WHERE event_id IN (SELECT unnest(?::VARCHAR[])) UNION ALL "
                    'SELECT event_id, "partition", "offset", epoch_ms(log_time) FROM dead_letters '
                    "WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                    [rest, rest],
                ).fetchall()
            for event_id, partition, offset, ms in rows:
                found[event_id] = Position(int(partition), int(offset), -1 if ms is None else ms)
        return found

    def _check_blobs(self, ev: CatalogEvent) -> None:
        """A logged version whose bytes are in a store must find them there."""
        p = ev.payload
        if not isinstance(p, ArtifactLogged) or not p.hash:
            return
        root = root_of(p.target_path)
        if root is None:
            return
        if not self.catalog.store_for(root).exists(p.hash):
            raise BlobNotFound(p.hash, f"{root} (named by {ev.project}/{ev.key}: upload it first)")


def stored(blob: Any) -> Mapping[str, Any]:
    return {"digest": blob.digest, "size": blob.size, "url": blob.url}


__all__ = ["CHUNK_SIZE", "Intake", "stored"]
