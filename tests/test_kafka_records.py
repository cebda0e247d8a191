"""Kafka record batches split by the compiled kernel, against kafka-python's reader.

``catalog.log.kafka._split`` must give, for every batch, the records
kafka-python's own reader gives (turned into log records the same way), or
None where it does not accept the batch so that kafka-python decides. The
batches are built by kafka-python's ``DefaultRecordBatchBuilder``, the code its
producer uses. The last tests read through a real broker.
"""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import pytest
import servers
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from catalog.events import columnar
from catalog.log import Message, open_log
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
    """Recompute a batch's CRC-32C after editing it (covers attributes onwards)."""
    from kafka.record.util import calc_crc32c

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


def test_gzip_is_what_the_builder_used() -> None:
    """Guards the compressed test above: attribute bits 0-2 = 1 is gzip's framing."""
    raw = build([(b"k", b"v" * 100, [])], compression=1)
    assert gzip.decompress(raw[61:])  # a gzip stream follows the header


# ------------------------------------------------------------ through a broker


@pytest.mark.kafka
def test_the_kafka_log_reads_through_the_kernel(kafka_broker: servers.Broker) -> None:
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
    monkeypatch.setattr(columnar, "available", lambda: False)
    url = kafka_broker.log_url(f"t-{uuid.uuid4().hex[:12]}", timeout=10)
    with open_log(url) as log:
        assert isinstance(log, KafkaLog)
        log.append([Message("p/k", b"v", (("type", b"T"),))])
        records = log.read_range({}, log.end_offsets())
        fetcher: Any = log._consumer._fetcher  # type: ignore[union-attr]
        assert fetcher.PartitionRecords is not _SplitRecords
        assert not split_batches(log._consumer)  # type: ignore[arg-type]
    assert [(r.key, r.value, r.headers) for r in records] == [("p/k", b"v", (("type", b"T"),))]
