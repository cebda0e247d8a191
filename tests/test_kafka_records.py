"""Kafka record batches split by the compiled kernel, against kafka-python's reader.

``catalog.log.kafka._split`` must give, for every batch, the records
kafka-python's own reader gives (turned into log records the same way), or
None where it does not accept the batch so that kafka-python decides. The
batches are built by kafka-python's ``DefaultRecordBatchBuilder``, the code its
producer uses. The last tests read through a real broker.
"""

from __future__ import annotations

import gzip
import random
import uuid
from typing import Any

import pytest
import servers
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c

from catalog import native
from catalog.events import columnar
from catalog.log import Message, open_log
from catalog.log import kafka as kafka_log
from catalog.log.base import Record
from catalog.log.kafka import KafkaLog, _record, _split, _SplitRecords, split_batches

pytestmark = pytest.mark.skipif(not columnar.available(), reason="no C compiler here")

Item = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def build(
    items: list[Item], *, base_offset: int = 0, compression: int = 0, log_append: bool = False
) -> bytes:
    """A format-v2 batch of ``items`` (key, value, headers), as kafka-python's producer
    builds it."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for i, (key, value, headers) in enumerate(items):
        time = 1_700_000_000_000 + 7 * i
        builder.append(i, timestamp=time, key=key, value=value, headers=headers)
    raw = bytearray(builder.build())
    raw[:8] = base_offset.to_bytes(8, "big")  # as the broker sets it
    if log_append:  # attribute bit 3: the broker's append time, for every record
        raw[22] |= 0x08
        _reseal(raw)
    return bytes(raw)


def _reseal(raw: bytearray) -> None:
    """Recompute a batch's length and CRC-32C after editing it (CRC: attributes onwards)."""
    raw[8:12] = (len(raw) - 12).to_bytes(4, "big")
    raw[17:21] = calc_crc32c(memoryview(raw)[21:]).to_bytes(4, "big")


def theirs(raw: bytes, partition: int = 0) -> list[Record]:
    return [_record(partition, r) for r in DefaultRecordBatch(raw)]


def ours(raw: bytes, partition: int = 0) -> list[Record] | None:
    return _split(partition, DefaultRecordBatch(raw))


def test_a_batch_of_events_splits_as_kafka_python_reads_it() -> None:
    items: list[Item] = [
        (b"proj/key-1", b"\xc3\x01value", [("type", b"ArtifactLogged"), ("schema", b"\x01" * 8)]),
        (b"proj/key-2", b"", [("type", b"ArtifactTagged"), ("schema", b"\x01" * 8)]),
        (None, None, []),  # another producer's message: no key, no value, no headers
        ("pröj/ключ".encode(), b"x" * 5000, [("h", None), ("", b"")]),
        (b"proj/key-1", b"\xc3\x01value", [("type", b"ArtifactLogged"), ("schema", b"\x01" * 8)]),
    ]
    raw = build(items, base_offset=41)
    split = ours(raw, partition=2)
    assert split == theirs(raw, partition=2)
    assert [r.offset for r in split or []] == [41, 42, 43, 44, 45]
    assert split is not None and split[2] == Record(2, 43, "", b"", 1_700_000_000_014, ())
    assert split[3].headers == (("h", b""), ("", b""))
    assert all(type(r) is Record for r in split)


def test_many_headers_and_broker_append_time() -> None:
    headers: list[tuple[str, bytes | None]] = [(f"h{i}", bytes([i]) * i) for i in range(40)]
    raw = build([(b"k", b"v", headers), (b"k", b"w", headers[:3])], log_append=True)
    split = ours(raw)
    assert split == theirs(raw)
    assert split is not None and len(split[0].headers) == 40
    assert {r.timestamp_ms for r in split} == {DefaultRecordBatch(raw).max_timestamp}


def test_a_compressed_batch_is_split_after_kafka_python_decompresses_it() -> None:
    items: list[Item] = [(b"k%d" % i, b"v" * i, [("type", b"T")]) for i in range(50)]
    raw = build(items, compression=1)  # gzip
    assert DefaultRecordBatch(raw).compression_type == 1
    assert ours(raw) == theirs(raw) == theirs(build(items))


def test_an_empty_batch_splits_into_nothing() -> None:
    assert ours(build([])) == [] == theirs(build([]))


@pytest.mark.parametrize(
    "damage",
    [
        "count one more record than the batch holds",
        "count one record fewer",
        "a value longer than its record",
    ],
)
def test_malformed_records_are_left_to_kafka_python(damage: str) -> None:
    raw = bytearray(build([(b"key", b"value", [("type", b"T")]), (b"k2", b"v2", [])]))
    if damage.startswith("count"):
        count = int.from_bytes(raw[57:61], "big") + (1 if "more" in damage else -1)
        raw[57:61] = count.to_bytes(4, "big")
    else:
        at = raw.index(b"value") - 1  # the value's length, a zig-zag varint
        raw[at] = 2 * 100
    _reseal(raw)
    assert ours(bytes(raw)) is None
    with pytest.raises(CorruptRecordError):
        theirs(bytes(raw))


_text = st.text(max_size=12)
_bytes = st.binary(max_size=300)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | _bytes,
            st.none() | _bytes,
            st.lists(st.tuples(_text, st.none() | _bytes), max_size=6),
        ),
        max_size=40,
    ),
    st.integers(0, 1 << 40),
    st.integers(0, 63),
)
def test_any_batch_splits_as_kafka_python_reads_it(items: list[Item], base: int, p: int) -> None:
    raw = build(items, base_offset=base)
    assert ours(raw, p) == theirs(raw, p)


def test_damaged_batches_are_read_alike_or_left_to_kafka_python() -> None:
    """Random damage to the records of sealed (valid CRC) batches: kafka-python reads
    them and the kernel gives the same records or declines, or kafka-python refuses
    them and the kernel declines too. Attributes bytes >= 0x80 (a varint to
    kafka-python), header keys that are not UTF-8 and absurd record counts included."""
    rng = random.Random(11)
    outcomes: dict[str, int] = {}

    def some_bytes(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    for _ in range(3000):
        items: list[Item] = [
            (
                None if rng.random() < 0.2 else some_bytes(rng.randrange(12)),
                None if rng.random() < 0.2 else some_bytes(rng.randrange(40)),
                [
                    (rng.choice(["type", "", "ü"]), None if rng.random() < 0.2 else some_bytes(3))
                    for _ in range(rng.randrange(5))
                ],
            )
            for _ in range(rng.randrange(6))
        ]
        raw = bytearray(build(items))
        for _ in range(rng.choice([1, 1, 2, 3])):
            at = rng.randrange(61, len(raw)) if len(raw) > 61 else 61
            change = rng.random()
            if change < 0.5:
                raw[at : at + 1] = bytes([rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.getrandbits(8)])])
            elif change < 0.7:
                del raw[at : at + rng.randrange(1, 4)]
            elif change < 0.85:
                raw[at:at] = rng.choice([b"\x80\x00", b"\xff\xff\xff\xff\x0f", some_bytes(2)])
            else:
                raw[57:61] = rng.choice([0, 1, 2**31 - 1, 2**32 - 1]).to_bytes(4, "big")
        _reseal(raw)
        try:
            expected: list[Record] | None = theirs(bytes(raw))
        except CorruptRecordError:
            expected = None
        got = ours(bytes(raw))
        outcome = (
            "both refuse"
            if expected is None and got is None
            else "same records"
            if got == expected
            else "left to kafka-python"
            if got is None
            else "DIFFERENT"
        )
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert outcome != "DIFFERENT", bytes(raw).hex()
    assert outcomes["both refuse"] > 500 and outcomes["same records"] > 200, outcomes


# ---------------------------------------------------- the fetcher's iteration

TP = TopicPartition("t", 4)


def v2(
    deltas: list[int],
    base: int = 0,
    *,
    compression: int = 0,
    last_delta: int | None = None,
    control: bool = False,
) -> bytes:
    """A batch holding records at ``base`` + ``deltas`` (gaps: compacted away)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=control,
        producer_id=5 if control else -1,
        producer_epoch=0 if control else -1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for d in deltas:
        if control:  # a commit marker
            builder.append(d, timestamp=1000 + d, key=b"\0\0\0\1", value=b"\0" * 6, headers=[])
        else:
            builder.append(d, timestamp=1000 + d, key=b"k%d" % d, value=b"v%d" % d, headers=[])
    raw = bytearray(builder.build())
    raw[:8] = base.to_bytes(8, "big")
    raw[12:16] = (7).to_bytes(4, "big")  # leader epoch
    if control:
        raw[22] |= 0x20
    if last_delta is not None:
        raw[23:27] = last_delta.to_bytes(4, "big")
    _reseal(raw)
    return bytes(raw)


def legacy(magic: int, n: int, *, damage_one: bool = False) -> bytes:
    """A message set of format v0 or v1 (gzip-wrapped when a record is damaged)."""
    builder = LegacyRecordBatchBuilder(magic, 0, 1 << 30)
    for i in range(n):
        builder.append(i, timestamp=2000 + i if magic else None, key=b"L%d" % i, value=b"x%d" % i)
    if not damage_one:
        return bytes(builder.build())
    inner = bytearray(builder._buffer)
    inner[inner.index(b"x1") + 1] ^= 0x01  # the record's own CRC no longer matches
    wrapper = LegacyRecordBatchBuilder(magic, 1, 1 << 30)
    wrapper._buffer = inner
    wrapper._maybe_compress()
    raw = bytearray(wrapper._buffer)
    raw[:8] = (n - 1).to_bytes(8, "big")
    return bytes(raw)


def damaged_crc(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


FETCHES = {
    "two batches": (v2([0, 1, 2]) + v2([0, 1], 3), 0),
    "a fetch from the middle of a batch": (v2([0, 1, 2, 3, 4]) + v2([0, 1], 5), 3),
    "compacted: gaps, and the last record gone": (v2([0, 2, 5], last_delta=9), 0),
    "compacted: a fetch from inside a gap": (v2([0, 2, 5], last_delta=9) + v2([0], 10), 3),
    "a control batch between data": (v2([0, 1]) + v2([0], 2, control=True) + v2([0], 3), 0),
    "a control batch last": (v2([0, 1]) + v2([0], 2, control=True), 0),
    "gzip": (v2(list(range(6)), compression=1) + v2([0], 6), 2),
    "an empty batch": (v2([], last_delta=4) + v2([0], 5), 0),
    "a CRC failure in the second batch": (v2([0, 1, 2]) + damaged_crc(v2([0, 1], 3)), 0),
    "format v1": (legacy(1, 3), 0),
    "format v0 (no timestamps)": (legacy(0, 3), 1),
    "format v1, a damaged record in a gzip wrapper": (legacy(1, 3, damage_one=True), 0),
    "format v2, then v1": (v2([0, 1]) + legacy(1, 2), 0),
}


def drain(kind: Any, data: bytes, fetch_offset: int, sizes: list[int | None]) -> list[Any]:
    """What a fetcher's PartitionRecords of ``kind`` hands out, take after take."""
    part = kind(fetch_offset, TP, MemoryRecords(data))
    steps: list[Any] = []
    for size in sizes:
        try:
            taken = [r if type(r) is Record else _record(TP.partition, r) for r in part.take(size)]
            result: Any = taken
        except CorruptRecordError as exc:
            result = f"CorruptRecordError: {str(exc)[:60]}"
        steps.append((result, part.next_fetch_offset, part.leader_epoch, part.records_read))
        if not part:
            break
    return steps


@pytest.mark.parametrize("sizes", [[None, None], [1] * 9, [2] * 5], ids=["all", "1", "2"])
@pytest.mark.parametrize("case", list(FETCHES))
def test_the_fetcher_hands_out_what_kafka_pythons_does(case: str, sizes: list[int | None]) -> None:
    data, fetch_offset = FETCHES[case]
    expected = drain(Fetcher.PartitionRecords, data, fetch_offset, sizes)
    assert drain(_SplitRecords, data, fetch_offset, sizes) == expected


@pytest.fixture
def split_counts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per batch split from now on, its records (-1: left to kafka-python)."""
    counts: list[int] = []

    def counting(partition: int, batch: Any) -> list[Record] | None:
        records = _split(partition, batch)
        counts.append(-1 if records is None else len(records))
        return records

    monkeypatch.setattr(kafka_log, "_split", counting)
    return counts


def test_the_fetcher_splits_v2_batches_with_the_kernel(split_counts: list[int]) -> None:
    """Guards the comparison above: the v2 batches did go through the kernel."""
    data, _ = FETCHES["two batches"]
    assert len(drain(_SplitRecords, data, 0, [None])[0][0]) == 5
    assert split_counts == [3, 2]


def test_gzip_is_what_the_builder_used() -> None:
    """Guards the compressed test above: attribute bits 0-2 = 1 is gzip's framing."""
    raw = build([(b"k", b"v" * 100, [])], compression=1)
    assert gzip.decompress(raw[61:])  # a gzip stream follows the header


# ------------------------------------------------------------ through a broker


@pytest.mark.kafka
def test_the_kafka_log_reads_through_the_kernel(
    kafka_broker: servers.Broker, split_counts: list[int]
) -> None:
    url = kafka_broker.log_url(f"t-{uuid.uuid4().hex[:12]}", timeout=10)
    messages = [
        Message(f"p/k{i % 7}", b"v%d" % i, (("type", b"T"), ("schema", b"s"))) for i in range(500)
    ]
    with open_log(url) as log:
        assert isinstance(log, KafkaLog)
        written = log.append(messages)
        records = log.read_range({}, log.end_offsets(), max_records=10_000)
        fetcher: Any = log._consumer._fetcher  # type: ignore[union-attr]
        assert fetcher.PartitionRecords is _SplitRecords
    assert len(records) == 500
    assert sum(split_counts) == 500 and min(split_counts) > 0  # every batch: by the kernel
    by_position = {(r.partition, r.offset): r for r in records}
    for message, position in zip(messages, written, strict=True):
        record = by_position[(position.partition, position.offset)]
        assert (record.key, record.value, record.headers) == (
            message.key,
            message.value,
            message.headers,
        )


@pytest.mark.kafka
def test_without_the_kernel_kafka_python_reads(
    kafka_broker: servers.Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "available", lambda: False)
    url = kafka_broker.log_url(f"t-{uuid.uuid4().hex[:12]}", timeout=10)
    with open_log(url) as log:
        assert isinstance(log, KafkaLog)
        log.append([Message("p/k", b"v", (("type", b"T"),))])
        records = log.read_range({}, log.end_offsets())
        fetcher: Any = log._consumer._fetcher  # type: ignore[union-attr]
        assert fetcher.PartitionRecords is not _SplitRecords
        assert not split_batches(log._consumer)  # type: ignore[arg-type]
    assert [(r.key, r.value, r.headers) for r in records] == [("p/k", b"v", (("type", b"T"),))]
