"""The write path: bytes into the content-addressed store, then events onto the log.

docs/design.md's order — (1) bytes, (2) the event naming them — so no event ever
points at bytes that are not stored. A write returns once its events are
durable (inside :meth:`Writer.batch`, once the batch is), with their log
positions: the token a later read passes to see it (read-your-writes).

Nothing here opens a projection: a write is never held up, or lost, because
a read model is busy. What a write must know from state, and whether its
events were applied or refused, the client asks of its reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from catalog import store
from catalog.errors import LimitExceeded
from catalog.events.codec import Codec, default_codec
from catalog.events.framing import registry_framing
from catalog.events.headers import headers_for
from catalog.events.model import CatalogEvent
from catalog.log import EventLog, Message, Position, carries_cloudevents, open_log

#: Largest encoded event accepted (Kafka's default message.max.bytes is 1 MB).
MAX_EVENT_BYTES = 900 * 1024


@dataclass(frozen=True)
class Written:
    """The result of a write: the events appended and their log positions.

    Inside a batch the positions are empty until the batch is appended.
    ``refused`` is the outcome when the write learned it on the way (through a
    catalog service): event id -> reason for each refused event; None when
    the outcome is still to be asked.
    """

    events: tuple[CatalogEvent, ...]
    positions: tuple[Position, ...]
    refused: Mapping[str, str] | None = None


def next_offsets(positions: Sequence[Position]) -> dict[int, int]:
    """The offsets a reader must have reached to have seen ``positions``."""
    ends: dict[int, int] = {}
    for p in positions:
        if p.offset + 1 > ends.get(p.partition, 0):
            ends[p.partition] = p.offset + 1
    return ends


class Writer:
    """Appends encoded events to one log; keeps the object stores it wrote to."""

    def __init__(self, log_url: str, *, codec: Codec | None = None) -> None:
        self.log_url = log_url
        self._ce = carries_cloudevents(log_url)  # the CloudEvents headers: a Kafka binding
        self.codec = codec or default_codec()
        self._log: EventLog | None = None
        self._stores: dict[str, store.ObjectStore] = {}
        self._claimed: set[str] = set()  # stores marked as this log's (owner.json)
        self._batch: list[tuple[CatalogEvent, Message]] | None = None
        #: called with every event before it is encoded (the catalog service checks
        #: there that the request may write the event's project: catalog.access.admit)
        self.admit: Callable[[CatalogEvent], None] | None = None

    @property
    def log(self) -> EventLog:
        if self._log is None:
            self._log = open_log(self.log_url, framing=registry_framing)
        return self._log

    def store_for(self, root: str) -> store.ObjectStore:
        """The object store rooted at ``root`` (cached)."""
        if root not in self._stores:
            self._stores[root] = store.ObjectStore(root)
        return self._stores[root]

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # ------------------------------------------------------------------ events

    def message(self, ev: CatalogEvent) -> Message:
        """``ev`` encoded, keyed and headed; :class:`LimitExceeded` if oversize."""
        if self.admit is not None:
            self.admit(ev)
        value = self.codec.encode(ev)
        if len(value) > MAX_EVENT_BYTES:
            raise LimitExceeded(f"the {ev.type} event of {ev.key}", len(value), MAX_EVENT_BYTES)
        fingerprint = self.codec.current.fingerprint
        return Message(ev.partition_key, value, headers_for(ev, fingerprint, cloudevents=self._ce))

    def append(self, events: Sequence[CatalogEvent]) -> Written:
        """Append ``events`` (or buffer them inside :meth:`batch`).

        Every event is encoded, and refused if oversize, before anything is appended.
        """
        messages = [self.message(ev) for ev in events]
        if self._batch is not None:
            self._batch.extend(zip(events, messages, strict=True))
            return Written(tuple(events), ())
        return self._append(tuple(events), messages)

    def _append(self, events: tuple[CatalogEvent, ...], messages: Sequence[Message]) -> Written:
        for cas in self._stores.values():  # bytes durable before the events naming them
            cas.sync()
            if cas.wrote and cas.root not in self._claimed:
                # a store this catalog created is its own: only its gc sweeps it
                cas.claim({"log_id": self.log.log_id, "log": self.log.url})
                self._claimed.add(cas.root)
        positions: list[Position] = []
        chunk = self.log.append_chunk
        for start in range(0, len(messages), chunk):
            positions += self.log.append(messages[start : start + chunk])
        return Written(events, tuple(positions))

    @property
    def batching(self) -> bool:
        return self._batch is not None

    def begin_batch(self) -> None:
        """Buffer events from now on; :meth:`flush` appends them in one durable write
        and :meth:`end_batch` stops buffering (whatever is still buffered is dropped)."""
        self._batch = []

    def end_batch(self) -> None:
        self._batch = None

    def flush(self) -> Written:
        """Append what :meth:`batch` buffered so far; the events and their positions."""
        if not self._batch:
            return Written((), ())
        pending = list(self._batch)
        self._batch.clear()
        return self._append(tuple(ev for ev, _ in pending), [m for _, m in pending])
