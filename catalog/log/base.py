"""The event log seam: one interface, one implementation per URL scheme.

A log is a set of partitions (the embedded log has exactly one, partition 0),
each an append-only sequence of records numbered from offset 0. A *position*
is the offset of one record in one partition; a reader's progress is a mapping
partition -> next offset to read (:data:`Offsets`).

Contract (tests/log_contract.py runs it against every backend):

- :meth:`EventLog.append` writes a batch and returns one :class:`Position` per
  message, in order, only once the batch is durable; it raises
  :class:`~catalog.errors.LogError` otherwise and nothing is acknowledged.
- Messages with the same key keep their relative order (same partition).
- :meth:`EventLog.read` returns records from the given offsets, in offset order
  within each partition, at most ``max_records`` of them; reading never changes
  the log.
- :meth:`EventLog.read_range` is :meth:`~EventLog.read` bounded by end offsets:
  only records before ``ends``, only from the partitions named there. A reader
  catching up to a snapshot of the ends uses it, so a partition that already
  reached its end (and keeps growing) never crowds out one that is behind.
- :meth:`EventLog.wait` blocks until a record exists beyond the given offsets
  or the timeout passes (used to follow the tail without busy polling).
- Positions are stable: a record keeps its partition and offset forever.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: A reader's progress: partition -> next offset to read.
Offsets = Mapping[int, int]


@dataclass(frozen=True, order=True)
class Position:
    """Where one record is: ``(partition, offset)``. The token for read-your-writes.

    An append also says when the log took the record (``time_ms``, its
    :attr:`Record.timestamp_ms`; -1 when unknown); it is not part of the
    position (not compared, not hashed, not shown).
    """

    partition: int
    offset: int
    time_ms: int = field(default=-1, compare=False)

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Message:
    """What a writer appends: the ordering key, the encoded event and optional headers."""

    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Record:
    """A record read back from the log.

    ``error`` is set (and ``value`` must not be trusted) when the backend
    detected damage, e.g. a checksum mismatch; consumers dead-letter it.

    ``timestamp_ms`` is the log's time of the record, when the log took it:
    the embedded log's append time; on Kafka, the broker's clock on a topic
    with ``message.timestamp.type=LogAppendTime`` (as the catalog creates
    them), else the producer's clock (CreateTime); -1 when there is none.
    """

    partition: int
    offset: int
    key: str
    value: bytes
    timestamp_ms: int
    headers: Sequence[tuple[str, bytes]] = field(default=())
    error: str | None = None

    @property
    def position(self) -> Position:
        return Position(self.partition, self.offset)

    @classmethod
    def make(
        cls,
        partition: int,
        offset: int,
        key: str,
        value: bytes,
        timestamp_ms: int,
        headers: Sequence[tuple[str, bytes]] = (),
        error: str | None = None,
    ) -> Record:
        """The same as the constructor, for readers' loops: without the frozen
        dataclass's ``object.__setattr__`` per field, half the cost."""
        record = object.__new__(cls)
        record.__dict__.update(
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            timestamp_ms=timestamp_ms,
            headers=headers,
            error=error,
        )
        return record


class Framing(Protocol):
    """How values are framed on a log for a reader outside the catalog (a schema
    registry's wire format, ``kafka://…?registry=URL``): given to the log by whoever
    opens it (:func:`catalog.log.open_log`), since only the events know their schemas."""

    def frame(self, messages: Sequence[Message]) -> Sequence[Message]:
        """``messages`` as they are to be appended (raises: nothing is appended)."""
        ...

    def unframe(self, records: list[Record]) -> list[Record]:
        """``records`` as readers take them (one that cannot be: marked with the reason)."""
        ...


#: makes a log's :class:`Framing`: (log URL, topic, registry URL, timeout in seconds)
FramingFactory = Callable[[str, str, str, float], Framing]


class EventLog(abc.ABC):
    """An append-only, partitioned log of encoded events."""

    url: str

    #: Messages a writer hands to one :meth:`append` at most (a batch is split).
    append_chunk: int = 1000

    @property
    @abc.abstractmethod
    def log_id(self) -> str:
        """A stable identifier of this log (a projection of another log must not resume)."""

    @abc.abstractmethod
    def append(self, messages: Sequence[Message]) -> list[Position]:
        """Durably append ``messages``; one position per message, in order."""

    @abc.abstractmethod
    def read(self, offsets: Offsets, max_records: int = 1000) -> list[Record]:
        """Records at or after ``offsets`` (missing partitions read from 0)."""

    def read_range(
        self, offsets: Offsets, ends: Mapping[int, int], max_records: int = 1000
    ) -> list[Record]:
        """Records at or after ``offsets`` and before ``ends``, from the partitions in ``ends``.

        Empty only when no partition of ``ends`` has a record left in range. This
        default filters :meth:`read`, which is exact for a single-partition log;
        a multi-partition backend overrides it to fetch only the partitions
        still short of their end.
        """
        wanted = {p: offsets.get(p, 0) for p, end in ends.items() if offsets.get(p, 0) < end}
        if not wanted:
            return []
        return [r for r in self.read(offsets, max_records) if r.offset < ends.get(r.partition, 0)]

    @abc.abstractmethod
    def end_offsets(self) -> dict[int, int]:
        """For every partition, the offset the next appended record will get."""

    @abc.abstractmethod
    def wait(self, offsets: Offsets, timeout: float) -> bool:
        """Block until a record exists beyond ``offsets``; False on timeout."""

    def acknowledge(self, offsets: Offsets) -> None:  # noqa: B027 - optional hook
        """Report a reader's progress (next offsets) where outside tools see it.

        Informational only (the Kafka log commits to its consumer group, if it
        names one): the reader's own stored positions stay the truth, and this
        never raises. By default: nowhere.
        """

    def group_offsets(self) -> dict[int, int] | None:
        """The offsets last acknowledged to the log's consumer group; None without one."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the log object is unusable afterwards."""

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_behind(offsets: Offsets, ends: Mapping[int, int]) -> bool:
    """True when ``offsets`` has not reached ``ends`` in some partition."""
    return any(offsets.get(p, 0) < end for p, end in ends.items())
