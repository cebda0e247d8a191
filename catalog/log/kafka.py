"""The Kafka log: one topic, several partitions, through kafka-python.

This is the only module that imports ``kafka``. URL::

    kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?partitions=3&replication=-1&timeout=30
                                           &registry=URL&group=NAME]

``partitions`` and ``replication`` are used only when the topic does not exist
yet and is created on first use (default 3 partitions, the broker's default
replication factor); ``timeout`` (seconds, default 30) bounds every broker
interaction: connecting, an append's acknowledgement, a read that knows records
exist. ``client_id`` names the client in broker logs. ``registry`` frames values
for a schema registry, by the :class:`~catalog.log.Framing` the opener gives
(catalog/events/framing.py: the log knows no schema); ``group`` names the consumer
group a projection reports its progress to (below).

How the contract (catalog/log/base.py) maps onto Kafka:

- **Topic.** Created with ``retention.ms=-1`` and ``retention.bytes=-1``: the log
  is the source of truth, nothing may ever expire from it.
- **Append.** One message per event: key ``<project>/<artifact key>`` (so all
  events of one artifact share a partition and keep their order), value the
  single-object-encoded event (or registry-framed, with ``registry``), headers
  ``type``, ``schema`` and the CloudEvents ones (catalog/events/headers.py). The producer is
  idempotent with ``acks=all`` (every in-sync replica has the record before it is
  acknowledged) and bounded retries within ``timeout``; :meth:`KafkaLog.append`
  flushes and waits for every acknowledgement and returns the ``(partition,
  offset)`` of each message. Any failure raises :class:`LogUnavailable` (broker
  unreachable, timed out) or :class:`LogError`: no position is returned, so no
  event claims success. Kafka has no multi-partition atomic append without
  transactions, so some messages of a failed batch may still have been written;
  their event ids make the caller's retry harmless (projections drop
  redelivered events).
- **Read.** By *manual assignment* of every partition of the topic and seeking to
  the requested offsets: no consumer group, no committed offsets (a projection
  stores its own positions, in its own DuckDB transaction). Registry-framed
  values are turned back into single-object ones on the way out. One consumer is kept
  per handle and fetches in large batches; records fetched ahead are held and
  served to the next read when it continues where the last one stopped.
- **Record batches** are split into records by the compiled kernel
  (``catalog/_kernel.c``, loaded by :mod:`catalog.native`) rather than
  kafka-python's pure-Python reader, which took ~40 µs a record; see
  :class:`_SplitRecords`. Without a C compiler, or for a batch the kernel does
  not accept, kafka-python's reader does it.
- **End offsets.** ListOffsets, then one fetch of the last record of every
  non-empty partition, whose high watermark is the answer. The fetch makes the
  answer exact on brokers whose ListOffsets lags by a batch (Tansu 0.6 returns
  the base offset of the last batch + 1).
- **Wait.** A long-polling fetch from the given offsets: the broker answers when
  a record arrives; the fetched records are held for the next read.
- **Consumer group.** With ``group=NAME``, :meth:`KafkaLog.acknowledge` commits
  a reader's offsets to that group through the admin client (an OffsetCommit
  outside any group membership), so lag tools (``kafka-consumer-groups
  --describe``, Burrow, kafka-ui, exporters) see how far a projection is.
  Informational only: the projection's own positions stay the truth, and a
  failed commit is a warning, never an error.
- **log_id.** ``kafka:<cluster id>/<topic>/<topic id>``: the cluster id and the
  topic's UUID (Kafka >= 2.8). A topic deleted and re-created under the same name
  is a different log, so projections bound to the old one rebuild.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import Fetcher, IsolationLevel
from kafka.errors import (
    CorruptRecordError,
    KafkaError,
    KafkaTimeoutError,
    OffsetOutOfRangeError,
    TopicAlreadyExistsError,
)
from kafka.structs import OffsetAndMetadata

from catalog.errors import InvalidLogURL, LogError, LogUnavailable
from catalog.log.base import (
    EventLog,
    Framing,
    FramingFactory,
    Message,
    Offsets,
    Position,
    Record,
)
from catalog.log.registry import check_registry_url, redacted

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_TIMEOUT",
    "TOPIC_CONFIG",
    "KafkaLog",
    "KafkaSettings",
    "parse_url",
]

_logger = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3
DEFAULT_REPLICATION = -1  # the broker's default.replication.factor
DEFAULT_TIMEOUT = 30.0

#: Configuration of a topic the log creates: nothing ever expires.
#: A topic the catalog creates keeps every event forever, and the broker stamps
#: each record with its own clock (LogAppendTime): the catalog's times (as-of,
#: --since, tag validity, gc grace) then never come from a writer's clock.
TOPIC_CONFIG = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "message.timestamp.type": "LogAppendTime",
}

#: Records fetched per partition per request, and per request in all.
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
FETCH_BYTES = 64 * 1024 * 1024
#: How long the broker may hold a fetch while waiting for new records (ms):
#: the long-poll period of :meth:`KafkaLog.wait`.
FETCH_WAIT_MS = 100

#: Headers a record is expected to carry at most, for the kernel's header table:
#: ours carry 9 (catalog/events/headers.py). A batch with more is split again
#: with a table as large as the batch allows.
HEADERS_PER_RECORD = 12

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION
_NO_TOPIC_ID = {None, "", "00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA"}


@dataclass(frozen=True)
class KafkaSettings:
    """What a ``kafka://`` URL says."""

    bootstrap: tuple[str, ...]
    topic: str
    partitions: int = DEFAULT_PARTITIONS
    replication: int = DEFAULT_REPLICATION
    timeout: float = DEFAULT_TIMEOUT
    client_id: str = "catalog"
    #: a schema registry to frame appended values for (None: single-object)
    registry: str | None = None
    #: the consumer group :meth:`KafkaLog.acknowledge` commits to (None: none)
    group: str | None = None

    @property
    def timeout_ms(self) -> int:
        return max(1, int(self.timeout * 1000))


class RegistryURLRefused(Exception):
    """Inside :func:`parse_url`: a registry URL refused (not a ValueError: said as is)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason


def parse_url(url: str) -> KafkaSettings:
    """Parse ``kafka://HOST:PORT[,HOST:PORT]/TOPIC[?k=v...]``; LogError if malformed."""
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise InvalidLogURL(url, "not a kafka:// URL")
    hosts = tuple(h.strip() for h in parts.netloc.split(",") if h.strip())
    if not hosts:
        raise InvalidLogURL(url, "no broker address (kafka://HOST:PORT/TOPIC)")
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not (port.isascii() and port.isdigit()):
            raise InvalidLogURL(url, f"broker address {host!r} is not HOST:PORT")
    topic = parts.path.strip("/")
    if not _TOPIC.fullmatch(topic) or topic in {".", ".."}:
        raise InvalidLogURL(url, f"invalid topic name {topic!r} (letters, digits, '.', '_', '-')")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        try:
            if name == "partitions":
                options[name] = int(value)
                if options[name] < 1:
                    raise ValueError
            elif name == "replication":
                options[name] = int(value)
                if options[name] == 0 or options[name] < -1:
                    raise ValueError
            elif name == "timeout":
                options[name] = float(value)
                if not options[name] > 0:
                    raise ValueError
            elif name in ("client_id", "group"):
                if not value:
                    raise ValueError
                options[name] = value
            elif name == "registry":
                try:
                    options[name] = check_registry_url(value)
                except ValueError as exc:  # the URL said without what it must not hold
                    raise RegistryURLRefused(redacted(url), f"registry: {exc}") from None
            else:
                raise InvalidLogURL(
                    url,
                    f"unknown option {name!r}; known: partitions, replication, timeout, "
                    "client_id, registry, group",
                )
        except RegistryURLRefused as exc:
            raise InvalidLogURL(exc.url, exc.reason) from None
        except ValueError:
            raise InvalidLogURL(url, f"invalid value {value!r} for {name}") from None
    return KafkaSettings(hosts, topic, **options)


class _AsTheyAre:
    """The framing of a log that names no registry: values as they are."""

    def frame(self, messages: Sequence[Message]) -> Sequence[Message]:
        return messages

    def unframe(self, records: list[Record]) -> list[Record]:
        return records


_AS_THEY_ARE = _AsTheyAre()


class KafkaLog(EventLog):
    """The event log on a Kafka topic (``kafka://`` URLs); connects on first use."""

    def __init__(self, url: str, *, framing: FramingFactory | None = None) -> None:
        self.settings = parse_url(url)
        self.url = url
        self._lock = threading.RLock()
        self._closed = False
        self._log_id: str | None = None
        self._partitions: list[int] = []
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._probe: KafkaConsumer | None = None
        # Fetch state of the reading consumer, per partition: records pulled from
        # the consumer but not yet passed over, which are every record of the log
        # in [covered, fetch_pos); the consumer continues at fetch_pos.
        self._held: dict[int, deque[Record]] = {}
        self._covered: dict[int, int] = {}
        self._fetch_pos: dict[int, int] = {}
        self._paused: set[int] = set()
        #: A lower bound of each partition's end, from appends, end_offsets and fetches.
        self._known_end: dict[int, int] = {}
        s = self.settings
        self._framing: Framing = _AS_THEY_ARE
        if s.registry is not None:
            if framing is None:
                raise InvalidLogURL(
                    redacted(url),
                    "registry= frames the catalog's events for a schema registry: open this "
                    "log through the catalog (its SDK, catalog serve, catalog consume), which "
                    "knows their schemas",
                )
            self._framing = framing(url, s.topic, s.registry, s.timeout)
        self._admin: KafkaAdminClient | None = None  # commits to the consumer group
        self._commit_failing = False

    def __repr__(self) -> str:
        return f"KafkaLog({self.url!r})"

    # ------------------------------------------------------------ plumbing

    def _common(self) -> dict[str, Any]:
        s = self.settings
        return {
            "bootstrap_servers": list(s.bootstrap),
            "client_id": s.client_id,
            "request_timeout_ms": s.timeout_ms,
            "bootstrap_timeout_ms": s.timeout_ms,
            "reconnect_backoff_max_ms": 1000,
        }

    def _error(self, what: str, exc: BaseException) -> LogError:
        """The catalog error for a kafka-python (or socket) failure during ``what``."""
        if isinstance(exc, LogError):
            return exc
        # a timeout (no broker answered: "Unable to bootstrap") is the cluster being
        # out of reach, as a refused connection is: kafka-python does not mark it retriable
        transient = isinstance(exc, OSError | KafkaTimeoutError) or (
            isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))
        )
        kind = LogUnavailable if transient else LogError
        return kind(self.url, f"{what}: {exc}" if str(exc) else f"{what}: {type(exc).__name__}")

    @contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except LogError:
            raise
        except (KafkaError, OSError) as exc:
            raise self._error(what, exc) from exc

    def _connect(self) -> None:
        """Create the topic if missing; learn the log id and the partitions."""
        if self._closed:
            raise LogError(self.url, "the log is closed")
        if self._log_id is not None:
            return
        with self._failures("cannot reach the Kafka cluster"):
            admin = _admin_client(self._common())
            try:
                cluster_id = admin.describe_cluster().get("cluster_id") or "unknown-cluster"
                topic_id, partitions = self._ensure_topic(admin)
            finally:
                admin.close()
        suffix = f"/{topic_id}" if topic_id not in _NO_TOPIC_ID else ""
        self._partitions = partitions
        self._log_id = f"kafka:{cluster_id}/{self.settings.topic}{suffix}"

    def _ensure_topic(self, admin: KafkaAdminClient) -> tuple[str | None, list[int]]:
        s = self.settings
        deadline = time.monotonic() + s.timeout
        created = False
        while True:
            [info] = admin.describe_topics([s.topic])
            code = info.get("error_code", 0)
            partitions = info.get("partitions") or []
            if code == 0 and partitions and all(p.get("leader_id", -1) >= 0 for p in partitions):
                return info.get("topic_id"), sorted(p["partition_index"] for p in partitions)
            if code == _UNKNOWN_TOPIC and not created:
                with suppress(TopicAlreadyExistsError):  # another process created it first
                    admin.create_topics(
                        [NewTopic(s.topic, s.partitions, s.replication, topic_configs=TOPIC_CONFIG)]
                    )
                created = True
            elif code not in (0, _UNKNOWN_TOPIC):
                raise LogError(self.url, f"cannot describe topic {s.topic!r}: error code {code}")
            if time.monotonic() > deadline:
                raise LogUnavailable(
                    self.url, f"topic {s.topic!r} has no leader after {s.timeout}s"
                )
            time.sleep(0.05)

    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.settings.topic, partition)

    def _reader(self) -> KafkaConsumer:
        """The reading consumer: every partition assigned, positioned, paused until asked."""
        if self._consumer is None:
            with self._failures("cannot start the Kafka consumer"):
                consumer = KafkaConsumer(
                    **self._common(),
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="none",
                    allow_auto_create_topics=False,
                    fetch_max_wait_ms=FETCH_WAIT_MS,
                    fetch_max_bytes=FETCH_BYTES,
                    max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
                    max_poll_records=10_000,
                )
            self._consumer = consumer
            split_batches(consumer)
            self._assign(consumer)
            for p in self._partitions:
                self._reset(p, 0)
        return self._consumer

    def _assign(self, consumer: KafkaConsumer) -> None:
        tps = [self._tp(p) for p in self._partitions]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        consumer.pause(*tps)
        if consumer is self._consumer:
            self._paused = set(self._partitions)

    def _reset(self, partition: int, offset: int) -> None:
        self._held[partition] = deque()
        self._covered[partition] = offset
        self._fetch_pos[partition] = offset

    def _refresh_partitions(self) -> None:
        """Pick up partitions added to the topic since we connected."""
        consumer = self._reader()
        found = consumer.partitions_for_topic(self.settings.topic) or set()
        if not found or found <= set(self._partitions):
            return
        new = sorted(found - set(self._partitions))
        self._partitions = sorted(found)
        self._assign(consumer)
        for p in self._partitions:
            if p in new:
                self._reset(p, 0)
            else:  # re-assignment forgot positions: seek back to where we were
                consumer.seek(self._tp(p), self._fetch_pos[p])
        if self._probe is not None:
            self._assign(self._probe)

    # --------------------------------------------------------------- identity

    @property
    def log_id(self) -> str:
        with self._lock:
            self._connect()
            assert self._log_id is not None
            return self._log_id

    @property
    def partitions(self) -> list[int]:
        """The topic's partition numbers."""
        with self._lock:
            self._connect()
            return list(self._partitions)

    # ------------------------------------------------------------------ write

    def _writer(self) -> KafkaProducer:
        if self._producer is None:
            s = self.settings
            linger_ms = 5
            with self._failures("cannot start the Kafka producer"):
                self._producer = KafkaProducer(
                    **{**self._common(), "request_timeout_ms": max(1000, s.timeout_ms - linger_ms)},
                    acks="all",
                    enable_idempotence=True,
                    retries=10,
                    retry_backoff_ms=100,
                    delivery_timeout_ms=s.timeout_ms + linger_ms,
                    max_block_ms=s.timeout_ms,
                    linger_ms=linger_ms,
                    batch_size=512 * 1024,
                    max_request_size=2 * 1024 * 1024,
                    allow_auto_create_topics=False,
                )
        return self._producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            _stop_producer(producer, timeout=0)  # abandon what is not sent yet

    def append(self, messages: Sequence[Message]) -> list[Position]:
        if not messages:
            return []
        messages = self._framing.frame(messages)  # registry down: nothing is sent
        with self._lock:
            self._connect()
            producer = self._writer()
            topic, timeout = self.settings.topic, self.settings.timeout
            try:
                futures = [
                    producer.send(
                        topic,
                        key=m.key.encode("utf-8"),
                        value=m.value,
                        headers=[(k, bytes(v)) for k, v in m.headers],
                    )
                    for m in messages
                ]
                producer.flush(timeout=timeout)
                acks = [f.get(timeout=timeout) for f in futures]
            except Exception as exc:
                self._drop_producer()
                raise self._error(
                    f"append of {len(messages)} message(s) not acknowledged, nothing is "
                    "acknowledged (a retry is safe: event ids make redelivery harmless)",
                    exc,
                ) from exc
            positions = [Position(md.partition, md.offset, md.timestamp) for md in acks]
            for pos in positions:
                if pos.offset + 1 > self._known_end.get(pos.partition, 0):
                    self._known_end[pos.partition] = pos.offset + 1
            return positions

    # ------------------------------------------------------------------- read

    def read(self, offsets: Offsets, max_records: int = 1000) -> list[Record]:
        with self._lock:
            self._connect()
            wanted = {p: offsets.get(p, 0) for p in self._partitions}
            return self._framing.unframe(self._read(wanted, {}, max_records, expect=False))

    def read_range(
        self, offsets: Offsets, ends: Mapping[int, int], max_records: int = 1000
    ) -> list[Record]:
        with self._lock:
            self._connect()
            wanted = {
                p: offsets.get(p, 0)
                for p, end in ends.items()
                if p in self._partitions and offsets.get(p, 0) < end
            }
            if not wanted:
                return []
            return self._framing.unframe(self._read(wanted, ends, max_records, expect=True))

    def _read(
        self, wanted: dict[int, int], ends: Mapping[int, int], max_records: int, *, expect: bool
    ) -> list[Record]:
        """Records from ``wanted`` offsets (and before ``ends``).

        ``expect``: the caller knows records exist there (they are below an end
        offset), so an empty answer means the broker is not delivering: wait for
        them up to the timeout, then raise LogUnavailable.
        """
        if max_records < 1:
            raise ValueError("max_records must be positive")
        self._align(wanted)
        deadline = time.monotonic() + self.settings.timeout
        tried = False
        while True:
            out = self._take(wanted, ends, max_records)
            if out:
                return out
            limit = {p: ends.get(p, 1 << 62) for p in wanted}
            pending = [p for p in wanted if self._fetch_pos[p] < limit[p]]
            if not pending:
                return []  # everything in range was passed over (offset gaps)
            behind = expect or any(self._fetch_pos[p] < self._known_end.get(p, 0) for p in pending)
            if tried and not behind:
                return []
            remaining = deadline - time.monotonic()
            if tried and remaining <= 0:
                raise LogUnavailable(
                    self.url,
                    f"records exist beyond {dict(wanted)} but none arrived in "
                    f"{self.settings.timeout}s",
                )
            self._pull(0 if not tried else int(min(remaining, 1.0) * 1000), max_records)
            tried = True

    def _align(self, wanted: Mapping[int, int]) -> None:
        """Serve every partition of ``wanted`` from its offset; pause the others."""
        consumer = self._reader()
        pause, resume = [], []
        for p in self._partitions:
            tp = self._tp(p)
            if p not in wanted:
                if p not in self._paused:
                    pause.append(tp)
                    self._paused.add(p)
                continue
            want = wanted[p]
            held = self._held[p]
            if self._covered[p] <= want <= self._fetch_pos[p]:
                while held and held[0].offset < want:
                    held.popleft()
                self._covered[p] = want
            else:
                consumer.seek(tp, want)
                self._reset(p, want)
            if p in self._paused:
                resume.append(tp)
                self._paused.discard(p)
        if pause:
            consumer.pause(*pause)
        if resume:
            consumer.resume(*resume)

    def _take(
        self, wanted: Mapping[int, int], ends: Mapping[int, int], max_records: int
    ) -> list[Record]:
        out: list[Record] = []
        for p in wanted:
            end = ends.get(p)
            for r in self._held[p]:
                if len(out) >= max_records or (end is not None and r.offset >= end):
                    break
                out.append(r)
        return out

    def _pull(self, timeout_ms: int, max_records: int) -> int:
        """Poll the consumer once; hold what it returns. Records pulled."""
        consumer = self._reader()
        try:
            polled = consumer.poll(timeout_ms=timeout_ms, max_records=max(max_records, 1000))
        except OffsetOutOfRangeError as exc:
            raise LogError(
                self.url,
                f"offsets beyond the end of the topic ({exc}): is this the log the reader "
                "was following? (a re-created topic is another log)",
            ) from exc
        except (KafkaError, OSError) as exc:
            raise self._error("fetch failed", exc) from exc
        count = 0
        for tp, batch in polled.items():
            p = tp.partition
            if p not in self._held:
                continue
            held, pos = self._held[p], self._fetch_pos[p]
            for cr in batch:
                if cr.offset < pos:
                    continue
                held.append(cr if type(cr) is Record else _record(p, cr))
                pos = cr.offset + 1
                count += 1
            self._fetch_pos[p] = pos
            if pos > self._known_end.get(p, 0):
                self._known_end[p] = pos
        for p in self._partitions:
            if p in self._paused:
                continue
            high = consumer.highwater(self._tp(p))
            if high is not None and high > self._known_end.get(p, 0):
                self._known_end[p] = high
        return count

    # ------------------------------------------------------------ end, wait

    def end_offsets(self) -> dict[int, int]:
        with self._lock:
            self._connect()
            with self._failures("cannot list the end offsets"):
                self._refresh_partitions()
                consumer = self._reader()
                tps = [self._tp(p) for p in self._partitions]
                found = consumer.end_offsets(tps, timeout_ms=self.settings.timeout_ms)
                listed = {tp.partition: int(o) for tp, o in found.items()}
                ends = self._exact_ends(listed)
            for p, end in ends.items():
                if end > self._known_end.get(p, 0):
                    self._known_end[p] = end
            return ends

    def _exact_ends(self, listed: dict[int, int]) -> dict[int, int]:
        """Fetch the last listed record of each partition; its high watermark is exact."""
        targets = {p: o - 1 for p, o in listed.items() if o > 0}
        if not targets:
            return listed
        if self._probe is None:
            self._probe = KafkaConsumer(
                **self._common(),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="none",
                allow_auto_create_topics=False,
                fetch_max_wait_ms=FETCH_WAIT_MS,
                max_partition_fetch_bytes=1,  # the broker still sends one whole batch
            )
            self._assign(self._probe)
        probe = self._probe
        tps = {p: self._tp(p) for p in targets}
        for p, offset in targets.items():
            probe.seek(tps[p], offset)
        probe.resume(*tps.values())
        seen: set[int] = set()
        deadline = time.monotonic() + self.settings.timeout
        try:
            while seen != set(targets):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LogUnavailable(
                        self.url, f"no answer to a fetch in {self.settings.timeout}s"
                    )
                polled = probe.poll(timeout_ms=int(min(remaining, 1.0) * 1000), max_records=1000)
                seen.update(tp.partition for tp, batch in polled.items() if batch)
        finally:
            probe.pause(*tps.values())
        ends = dict(listed)
        for p, tp in tps.items():
            high = probe.highwater(tp)
            if high is not None and high > ends[p]:
                ends[p] = int(high)
        return ends

    def wait(self, offsets: Offsets, timeout: float) -> bool:
        with self._lock:
            self._connect()
            wanted = {p: offsets.get(p, 0) for p in self._partitions}
            self._align(wanted)
            deadline = time.monotonic() + timeout
            while True:
                for p, want in wanted.items():
                    if self._held[p] or self._known_end.get(p, 0) > want:
                        return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._pull(max(1, int(remaining * 1000)), 10_000)

    # --------------------------------------------------------- consumer group

    def _group_admin(self) -> KafkaAdminClient:
        self._connect()
        if self._admin is None:
            self._admin = _admin_client(self._common())
        return self._admin

    def acknowledge(self, offsets: Offsets) -> None:
        group = self.settings.group
        if group is None or not offsets:
            return
        try:
            with self._lock:
                answer = self._group_admin().alter_group_offsets(
                    group,
                    {self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
                )
            refused = {tp.partition: e for tp, e in answer.items() if getattr(e, "errno", 0)}
            if refused:
                raise LogError(self.url, f"the broker refused the commit: {refused}")
        except Exception as exc:  # informational: a failed commit never fails the reader
            if not self._commit_failing:
                _logger.warning(
                    "committing offsets to consumer group %r failed (the projection goes on; "
                    "its own positions are the truth): %s",
                    group,
                    exc,
                )
            self._commit_failing = True
            if isinstance(exc, KafkaError | OSError):
                with self._lock:  # a fresh admin client next time
                    admin, self._admin = self._admin, None
                    if admin is not None:
                        with suppress(Exception):
                            admin.close()
            return
        if self._commit_failing:
            _logger.warning("committing offsets to consumer group %r works again", group)
            self._commit_failing = False

    def group_offsets(self) -> dict[int, int] | None:
        group = self.settings.group
        if group is None:
            return None
        with self._lock, self._failures(f"cannot list the offsets of consumer group {group!r}"):
            admin = self._group_admin()
            tps = [self._tp(p) for p in self._partitions]
            found = admin.list_group_offsets({group: tps}).get(group) or {}
        return {
            tp.partition: int(meta.offset)
            for tp, meta in found.items()
            if tp.topic == self.settings.topic and meta is not None and meta.offset >= 0
        }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            producer, self._producer = self._producer, None
            if producer is not None:
                _stop_producer(producer, timeout=self.settings.timeout)
            for consumer in (self._consumer, self._probe):
                if consumer is not None:
                    with suppress(Exception):  # best effort
                        consumer.close(autocommit=False, timeout_ms=1000)
            self._consumer = self._probe = None
            admin, self._admin = self._admin, None
            if admin is not None:
                with suppress(Exception):  # best effort
                    admin.close()
            self._held.clear()


def _stop_producer(producer: KafkaProducer, timeout: float) -> None:
    """Close a producer; what it has not sent within ``timeout`` seconds is abandoned.

    kafka-python 3's ``close`` flushes first and raises when records are still
    pending (broker down), before it stops the sender's IO thread: a thread that
    then retries the cluster for the rest of the process. Here it is stopped.
    """
    with suppress(Exception):
        producer.close(timeout=timeout)
        return
    sender: Any = getattr(producer, "_sender", None)
    with suppress(Exception):  # best effort: the producer is abandoned either way
        sender.force_close()  # fails what is pending, then closes its connections
        sender.join(1.0)
    with suppress(Exception):
        producer.close(timeout=0)  # nothing pending now: releases the rest


def _admin_client(config: dict[str, Any]) -> KafkaAdminClient:
    """A bootstrapped admin client.

    kafka-python 3 starts the client's IO thread before bootstrapping and leaves
    it running when bootstrapping fails (broker down): a thread that retries
    the cluster's metadata for the rest of the process. Here it is stopped.
    """
    admin = KafkaAdminClient.__new__(KafkaAdminClient)
    try:
        admin.__init__(**config)
    except BaseException:
        for part, stop in (("_client", "close"), ("_net", "stop")):
            with suppress(Exception):  # best effort: the error raised is what matters
                getattr(getattr(admin, part), stop)()
        raise
    return admin


def _record(partition: int, cr: Any) -> Record:
    """A log record from a kafka-python ConsumerRecord (foreign messages included)."""
    key = cr.key.decode("utf-8", "replace") if cr.key is not None else ""
    value = cr.value
    if type(value) is not bytes:
        value = bytes(value) if value is not None else b""
    headers: tuple[tuple[str, bytes], ...] = tuple(cr.headers) if cr.headers else ()
    if headers and not all(type(v) is bytes for _, v in headers):
        headers = tuple((str(k), bytes(v) if v is not None else b"") for k, v in headers)
    timestamp = int(cr.timestamp) if cr.timestamp is not None else -1  # v0: none (Kafka's -1)
    return Record.make(partition, cr.offset, key, value, timestamp, headers)


# ------------------------------------------------------------- record batches


def split_batches(consumer: KafkaConsumer) -> bool:
    """Have ``consumer`` split record batches with the kernel; whether it will.

    kafka-python builds a ``Fetcher.PartitionRecords`` per partition of a fetch
    response and iterates its records in Python. The consumer's fetcher gets
    :class:`_SplitRecords` instead, whose records are already log
    :class:`Record`s. False (and kafka-python's reader stays) without the
    kernel, or if this kafka-python's fetcher is not laid out as expected.
    """
    from catalog import native

    fetcher = getattr(consumer, "_fetcher", None)
    if (
        not isinstance(fetcher, Fetcher)
        or getattr(fetcher, "PartitionRecords", None) is not Fetcher.PartitionRecords
        or not hasattr(Fetcher.PartitionRecords, "_unpack_records")
        or not native.available()
    ):
        return False
    fetcher.PartitionRecords = _SplitRecords
    return True


class _SplitRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's records of one partition, split by the kernel.

    The same steps as kafka-python's ``_unpack_records`` for this consumer
    (read-uncommitted, no deserializers): check each batch's CRC, skip
    control batches, yield the records and advance ``next_fetch_offset``. A
    batch's records are split by :func:`_split` when it can, else by
    kafka-python (which also raises on malformed bytes).
    """

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[Any]:
        if self.isolation_level != IsolationLevel.READ_UNCOMMITTED:  # not ours: as kafka-python
            yield from super()._unpack_records(tp, records, key_deserializer, value_deserializer)
            return
        partition = tp.partition
        last = None
        batch = records.next_batch()
        while batch is not None:
            last = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {tp} at offset {batch.base_offset} "
                    "failed crc check"
                )
            split = None
            if batch.magic == 2:
                self.leader_epoch = batch.leader_epoch
                if batch.is_control_batch:  # transaction markers: not records
                    self.next_fetch_offset = batch.next_offset
                    batch = records.next_batch()
                    continue
                split = _split(partition, batch)
            if split is not None:
                for record in split:
                    self.records_read += 1
                    self.next_fetch_offset = record.offset + 1
                    yield record
            else:
                for read in batch:
                    if self.check_crcs and not read.validate_crc():  # legacy records have one
                        raise CorruptRecordError(
                            f"Record for partition {tp} at offset {read.offset} failed crc check"
                        )
                    self.records_read += 1
                    self.next_fetch_offset = read.offset + 1
                    yield _record(partition, read)
            self.bytes_read += batch.size_in_bytes
            batch = records.next_batch()
        if last is not None and last.magic == 2:
            self.next_fetch_offset = last.next_offset  # past records compacted away
        self.drain()


class _Headers(Sequence[tuple[str, bytes]]):
    """A record's headers as the kernel found them in its batch, decoded when first read.

    Readers of the catalog's own records never read them (the projection
    reads values and positions), and the CloudEvents headers (``ce_id``,
    ``ce_time``) differ on every record: decoding them all cost a Kafka
    reader 10 -> 28 us a record (measured on 30,000 records).
    """

    __slots__ = ("_raw", "_rows", "_first", "_count", "_items")

    def __init__(self, raw: bytes, rows: list[list[int]], first: int, count: int) -> None:
        self._raw: bytes | None = raw
        self._rows = rows
        self._first = first
        self._count = count
        self._items: tuple[tuple[str, bytes], ...] | None = None

    def items(self) -> tuple[tuple[str, bytes], ...]:
        if self._items is None:
            raw = self._raw
            assert raw is not None
            self._items = tuple(
                (raw[a : a + an].decode(), raw[b : b + bn] if bn > 0 else b"")  # UTF-8: checked
                for a, an, b, bn in self._rows[self._first : self._first + self._count]
            )
            self._raw = None  # the batch's bytes are no longer held
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self.items()[index]

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self.items() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.items())

    def __repr__(self) -> str:
        return repr(self.items())


def _split(partition: int, batch: Any) -> list[Record] | None:
    """The records of a format-v2 batch, split by the kernel; None if it cannot.

    ``iter(batch)`` decompresses the batch: then its buffer from ``_pos`` holds
    the records. None where the kernel declines: bytes it finds malformed, or
    that kafka-python would read otherwise or refuse (see the kernel's
    ``catalog_kafka_records``); kafka-python's reader then decides.
    """
    import numpy as np

    from catalog import native

    iter(batch)
    buf, start = getattr(batch, "_buffer", None), getattr(batch, "_pos", None)
    if not isinstance(buf, bytes | bytearray) or not isinstance(start, int):
        return None
    count = batch.records_count
    if not 0 <= count <= (len(buf) - start) // 7:  # a record takes 7 bytes or more
        return None
    kernel = native.kernel()
    data = np.frombuffer(buf, np.uint8)
    rec = np.empty(10 * count, np.int64)
    hdr = np.empty(4 * HEADERS_PER_RECORD * count, np.int64)
    found = kernel.kafka_records(data, start, count, rec, hdr)
    if found == -2:  # every header takes 2 bytes or more
        hdr = np.empty(4 * ((len(buf) - start) // 2 + 1), np.int64)
        found = kernel.kafka_records(data, start, count, rec, hdr)
    if found != count:
        return None
    raw = bytes(buf)
    base_offset, base_time = batch.base_offset, batch.first_timestamp
    append_time = batch.max_timestamp if batch.timestamp_type == 1 else None
    header_rows = hdr[: 4 * int(rec[7::10].sum())].reshape(-1, 4).tolist()
    make = Record.make
    out = []
    for offset, delta, ks, kn, vs, vn, h, hn, _, _ in rec.reshape(count, 10).tolist():
        headers = _Headers(raw, header_rows, h, hn) if hn else ()
        out.append(
            make(
                partition,
                base_offset + offset,
                raw[ks : ks + kn].decode("utf-8", "replace") if kn > 0 else "",
                raw[vs : vs + vn] if vn > 0 else b"",
                base_time + delta if append_time is None else append_time,
                headers,
            )
        )
    return out
