"""The Kafka log against a real Kafka-protocol broker (Tansu, started by the session).

The log contract on a fresh topic per test, then what only Kafka has: URL
options, several partitions, topic creation, end offsets made exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import servers
from log_contract import LogContract, MakeLog, after, read_until

from catalog.errors import LogError, LogUnavailable
from catalog.log import EventLog, Message, open_log
from catalog.log.kafka import DEFAULT_PARTITIONS, KafkaLog, parse_url

pytestmark = pytest.mark.kafka


class TestKafkaLog(LogContract):
    """The contract, each test on its own fresh topic."""

    @pytest.fixture
    def make_log(self, topic_url: str) -> Iterator[MakeLog]:
        handles: list[EventLog] = []

        def make() -> EventLog:
            handles.append(open_log(topic_url))
            return handles[-1]

        yield make
        for handle in handles:
            handle.close()

    def test_a_fresh_topic_has_the_default_partitions(self, log: EventLog) -> None:
        assert isinstance(log, KafkaLog)
        assert log.end_offsets() == {p: 0 for p in range(DEFAULT_PARTITIONS)}
        assert log.read({}) == []


# ---------------------------------------------------------------------- URLs


def test_parse_url_forms() -> None:
    s = parse_url("kafka://a:9092,b:9093/events")
    assert (s.bootstrap, s.topic, s.partitions, s.replication) == (
        ("a:9092", "b:9093"),
        "events",
        DEFAULT_PARTITIONS,
        -1,
    )
    s = parse_url("kafka://h:1/my.topic_2-x?partitions=6&replication=3&timeout=2.5&client_id=me")
    assert (s.topic, s.partitions, s.replication, s.timeout, s.timeout_ms, s.client_id) == (
        "my.topic_2-x",
        6,
        3,
        2.5,
        2500,
        "me",
    )


@pytest.mark.parametrize(
    "url",
    [
        "kafka:///topic",
        "kafka://host/topic",
        "kafka://host:port/topic",
        "kafka://h:1/",
        "kafka://h:1/a/b",
        "kafka://h:1/bad topic",
        "kafka://h:1/t?partitions=0",
        "kafka://h:1/t?partitions=x",
        "kafka://h:1/t?replication=0",
        "kafka://h:1/t?timeout=-1",
        "kafka://h:1/t?timeout=",
        "kafka://h:1/t?retention=1",
    ],
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(LogError) as info:
        open_log(url)
    assert info.value.url == url


def test_open_log_connects_on_first_use() -> None:
    url = f"kafka://127.0.0.1:{servers.free_port()}/t?timeout=0.5"
    log = open_log(url)  # nothing listens there: no error yet
    assert isinstance(log, KafkaLog) and log.url == url
    with pytest.raises(LogUnavailable) as info:
        log.end_offsets()
    assert info.value.url == url and info.value.exit_code == 5
    log.close()
    with pytest.raises(LogError, match="closed"):
        log.read({})


# ---------------------------------------------------------------- the topic


def test_topic_created_with_the_url_partitions(kafka_broker: servers.Broker) -> None:
    topic = f"t-{uuid.uuid4().hex[:12]}"
    with open_log(kafka_broker.log_url(topic, partitions=5)) as log:
        assert log.end_offsets() == {p: 0 for p in range(5)}
        positions = log.append([Message(f"p/k{i}", b"v") for i in range(40)])
        assert len({p.partition for p in positions}) > 1
        log_id = log.log_id
        assert log_id.startswith("kafka:") and f"/{topic}" in log_id
    # An existing topic keeps its partitions whatever a later URL asks for.
    with open_log(kafka_broker.log_url(topic, partitions=2)) as again:
        assert sorted(again.end_offsets()) == list(range(5))
        assert again.log_id == log_id
    with open_log(kafka_broker.log_url(f"t-{uuid.uuid4().hex[:12]}")) as other:
        assert other.log_id != log_id


def test_end_offsets_are_exact_after_a_large_batch(topic_url: str) -> None:
    """Tansu's ListOffsets answers the base offset of the last batch + 1; ours is exact."""
    with open_log(topic_url) as log, open_log(topic_url) as other:
        before = log.end_offsets()
        positions = log.append([Message("p/one-key", f"{i}".encode()) for i in range(300)])
        [partition] = {p.partition for p in positions}
        assert positions[-1].offset == before[partition] + 299
        for handle in (log, other):
            assert handle.end_offsets()[partition] == positions[-1].offset + 1
        records = read_until(other, before, after(positions))
        assert [r.value for r in records] == [f"{i}".encode() for i in range(300)]


def test_reads_are_served_in_large_batches(topic_url: str) -> None:
    with open_log(topic_url) as log:
        log.append([Message(f"p/k{i % 9}", b"x" * 200) for i in range(6000)])
        ends = log.end_offsets()
        offsets = {p: 0 for p in ends}
        pages = []
        while page := log.read_range(offsets, ends, max_records=5000):
            pages.append(len(page))
            for r in page:
                offsets[r.partition] = r.offset + 1
        assert sum(pages) == 6000 and len(pages) <= 6, pages
