"""The event stream as a citizen of the Kafka stack (issue 20), on the Tansu broker.

- **Schema registry framing** (``?registry=URL``): one catalog writes
  registry-framed events and another single-object ones to one topic, and a
  projection applies both; confluent-kafka's own ``AvroDeserializer`` decodes
  every registry-framed event. It looks the ids up in confluent-kafka's
  ``MockSchemaRegistryClient``, loaded with the schemas our producer
  registered: no schema registry server is installable from the package
  registries here. The producer's HTTP exchange is checked against the small
  registry of ``tests/schema_registry.py`` (the documented Confluent REST API,
  run on loopback by this module, for the same reason).
- **CloudEvents**: the ``cloudevents`` SDK's Kafka binding reads every record's
  headers (binary content mode).
- **Consumer-group lag** (``?group=NAME``): the offsets read back with
  kafka-python's admin client equal the projection's positions;
  ``catalog consume --status`` shows position, end and lag.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import (
    MockSchemaRegistryClient,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaConnectionError
from schema_registry import Registry
from servers import Broker, free_port

from catalog import Catalog
from catalog.cli import cli
from catalog.config import Config
from catalog.consumers.projection import Projection
from catalog.errors import InvalidLogURL, LogError, LogUnavailable
from catalog.events.codec import default_codec
from catalog.events.framing import registry_framing
from catalog.log import Message, open_log, with_registry
from catalog.log.kafka import KafkaLog, parse_url
from catalog.log.registry import ENV_TOKEN, ENV_USER_INFO, MEDIA_TYPE, SchemaRegistry

pytestmark = pytest.mark.kafka

FOREIGN = {
    "type": "record",
    "name": "Other",
    "namespace": "x",
    "fields": [{"name": "n", "type": "long"}],
}


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """The test registry, shared by the module (ids grow across tests)."""
    reg = Registry().start()
    yield reg
    reg.stop()


def topic_of(url: str) -> str:
    return parse_url(url).topic


def with_options(url: str, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return url + ("&" if "?" in url else "?") + query


def raw_messages(broker: Broker, topic: str, count: int) -> list[Any]:
    """``count`` messages of ``topic`` as librdkafka reads them (manual assignment)."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.address,
            "group.id": f"raw-{uuid.uuid4().hex}",  # required by librdkafka; never joined
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Any] = []
        deadline = time.monotonic() + 30
        while len(out) < count:
            assert time.monotonic() < deadline, f"got {len(out)} of {count} messages"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            out.append(message)
        return out
    finally:
        consumer.close()


def make_catalog(tmp_path: Path, url: str, name: str, **kw: Any) -> Catalog:
    return Catalog(
        log=url,
        db=str(tmp_path / f"{name}.duckdb"),
        artifact_path=str(tmp_path / "art"),
        project="proj",
        actor="tester",
        **kw,
    )


# ------------------------------------------------------------------ framing


def test_both_framings_on_one_topic_one_projection(
    kafka_broker: Broker, topic_url: str, registry: Registry, tmp_path: Path
) -> None:
    framed_url = with_options(topic_url, registry=registry.url)
    with make_catalog(tmp_path, framed_url, "a") as a:
        for i in range(3):
            a.log_artifact(f"framed-{i}", body=f"framed {i}".encode(), tag="v1")
    with make_catalog(tmp_path, topic_url, "b", wait=False) as b:
        for i in range(2):
            b.log_artifact(f"plain-{i}", body=f"plain {i}".encode())
    with open_log(topic_url) as log:
        total = sum(log.end_offsets().values())
    messages = raw_messages(kafka_broker, topic_of(topic_url), total)
    framed = sum(m.value()[0] == 0 for m in messages)
    assert total - framed == 2 and framed >= 3
    assert {m.value()[0] for m in messages} == {0x00, 0xC3}

    with (
        open_log(framed_url, framing=registry_framing) as log,
        Projection(str(tmp_path / "both.duckdb")) as proj,
    ):
        assert proj.catch_up(log) == total
        assert proj.con.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        keys = proj.con.execute("SELECT key FROM artifacts ORDER BY key").fetchall()
        assert [k for (k,) in keys] == [*(f"framed-{i}" for i in range(3)), "plain-0", "plain-1"]
        # a reader gets back exactly what the writer appended: single-object values
        codec = default_codec()
        ends = log.end_offsets()
        records = log.read_range({}, ends, max_records=100)
        assert all(r.value[:2] == b"\xc3\x01" and r.error is None for r in records)
        assert {codec.decode(r.value).key for r in records} >= {"framed-0", "plain-1"}

    # Without a registry the registry-framed events are dead letters saying so.
    with open_log(topic_url) as log, Projection(str(tmp_path / "plain.duckdb")) as proj:
        assert proj.catch_up(log) == total
        reasons = [r for (r,) in proj.con.execute("SELECT reason FROM dead_letters").fetchall()]
        assert len(reasons) == framed
        assert all("registry-framed" in r and "registry=URL" in r for r in reasons)


def test_confluent_avro_deserializer_reads_registry_framed_events(
    kafka_broker: Broker, topic_url: str, registry: Registry, tmp_path: Path
) -> None:
    """confluent-kafka's AvroDeserializer, ids from its MockSchemaRegistryClient (no
    registry server installs from PyPI here) loaded with what our producer registered."""
    framed_url = with_options(topic_url, registry=registry.url)
    with make_catalog(tmp_path, framed_url, "a", wait=False) as cat:
        written = [cat.log_artifact(f"k{i}", body=b"x", labels={"i": str(i)}) for i in range(4)]
        cat.tag_artifact(written[0].uri, "prod")
    mock = MockSchemaRegistryClient({"url": "mock://catalog"})
    for ident, text in sorted(registry.schemas.items()):  # the mock numbers from 1, in order
        assert mock.register_schema(f"s{ident}", Schema(text, "AVRO")) == ident
    deserialize = AvroDeserializer(mock)
    messages = raw_messages(kafka_broker, topic_of(topic_url), 5)
    codec = default_codec()
    decoded = {}
    for m in messages:
        value = m.value()
        assert value[0] == 0
        record = deserialize(value, SerializationContext(m.topic(), MessageField.VALUE))
        assert str(record["event_id"]) == dict(m.headers())["ce_id"].decode()
        decoded[str(record["event_id"])] = record
    ours = {}
    with open_log(framed_url, framing=registry_framing) as log:
        for r in log.read_range({}, log.end_offsets(), max_records=100):
            event = codec.decode(r.value)
            ours[event.event_id] = event
    assert decoded.keys() == ours.keys()
    for event_id, record in decoded.items():
        event = ours[event_id]
        assert (record["project"], record["key"], record["actor"]) == (
            event.project,
            event.key,
            event.actor,
        )
        assert record["occurred_at"] == event.occurred_at
    labels = sorted(
        r["payload"]["labels"]["i"] for r in decoded.values() if "labels" in r["payload"]
    )
    assert labels == ["0", "1", "2", "3"]


def test_the_producer_speaks_the_confluent_rest_api(topic_url: str, tmp_path: Path) -> None:
    reg = Registry().start()
    try:
        url = with_options(topic_url, registry=reg.url)
        codec = default_codec()
        with make_catalog(tmp_path, url, "a", wait=False) as cat:
            cat.log_artifact("one", body=b"1")
            cat.log_artifact("two", body=b"2")
        subject = f"{topic_of(topic_url)}-value"
        [post] = reg.exchanges  # registered once per process, then cached
        assert (post.method, post.path) == ("POST", f"/subjects/{subject}/versions")
        assert post.content_type == MEDIA_TYPE
        assert set(post.body) == {"schema"}
        assert json.loads(post.body["schema"]) == codec.current.schema
        assert reg.subjects == {subject: [1]}
        # A fresh reader looks the id up once, however many records carry it.
        with (
            open_log(url, framing=registry_framing) as log,
            Projection(str(tmp_path / "r.duckdb")) as proj,
        ):
            assert proj.catch_up(log, batch_size=1) == 2
            log.read({}, max_records=10)
        gets = [(e.method, e.path) for e in reg.exchanges[1:]]
        assert gets == [("GET", "/schemas/ids/1")]
    finally:
        reg.stop()


def test_published_versions_pass_the_compatibility_check_in_order(registry: Registry) -> None:
    client = SchemaRegistry(registry.url, log_url="kafka://test/t", timeout=10)
    subject = f"order-{uuid.uuid4().hex[:8]}-value"
    ids = [client.register(subject, json.dumps(v.schema)) for v in default_codec().versions]
    assert len(set(ids)) == len(ids) == len(default_codec().versions)
    assert registry.subjects[subject] == ids
    # the check is real: a schema that cannot read the envelope is refused (409)
    with pytest.raises(LogError, match="409"):
        client.register(subject, json.dumps(FOREIGN))


def test_registry_down_at_write_time_appends_nothing(topic_url: str, tmp_path: Path) -> None:
    url = with_options(topic_url, registry=f"http://127.0.0.1:{free_port()}")
    with make_catalog(tmp_path, url, "a", wait=False) as cat:
        before = cat.log.end_offsets()
        with pytest.raises(LogUnavailable, match="schema registry"):
            cat.log_artifact("never", body=b"x")
        assert cat.log.end_offsets() == before


def test_a_schema_we_do_not_ship_is_dead_lettered_with_the_reason(
    topic_url: str, registry: Registry, tmp_path: Path
) -> None:
    url = with_options(topic_url, registry=registry.url)
    foreign = SchemaRegistry(registry.url, log_url=url, timeout=10).register(
        f"foreign-{uuid.uuid4().hex[:8]}-value", json.dumps(FOREIGN)
    )
    with open_log(url, framing=registry_framing) as log:
        log.append(
            [
                Message("proj/a", b"\x00" + foreign.to_bytes(4, "big") + b"\x02"),
                Message("proj/b", b"\x00" + (999_999).to_bytes(4, "big") + b"\x02"),
            ]
        )
        with make_catalog(tmp_path, url, "a") as cat:
            cat.log_artifact("after", body=b"x")  # the projection goes on
            reasons = sorted(d["reason"] for d in cat.dead_letters())
    assert len(reasons) == 2
    assert "not an envelope schema this catalog ships" in reasons[0]
    assert "no such Avro schema" in reasons[1]


def test_registry_credentials_come_from_the_environment_only(
    topic_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    basic = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()
    reg = Registry(credentials=(basic, f"Bearer {secret}")).start()
    caplog.set_level(logging.DEBUG)
    try:
        url = with_options(topic_url, registry=reg.url)
        with make_catalog(tmp_path, url, "a", wait=False) as cat:
            with pytest.raises(LogError, match="401") as refused:
                cat.log_artifact("x", body=b"x")
            monkeypatch.setenv(ENV_USER_INFO, f"svc:{secret}")
            cat.log_artifact("basic", body=b"x")
        monkeypatch.delenv(ENV_USER_INFO)
        monkeypatch.setenv(ENV_TOKEN, secret)
        with (
            open_log(url, framing=registry_framing) as log,
            Projection(str(tmp_path / "r.duckdb")) as proj,
        ):
            assert proj.catch_up(log) == 1
            assert proj.con.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        assert [e.authorized for e in reg.exchanges] == [False, True, True]
        assert secret not in str(refused.value) and secret not in caplog.text
        with pytest.raises(InvalidLogURL, match="credentials do not go in the URL") as bad:
            parse_url(with_options(topic_url, registry=f"http://svc:{secret}@127.0.0.1:1"))
        assert secret not in str(bad.value) and "http://***@127.0.0.1:1" in str(bad.value)
    finally:
        reg.stop()


def test_the_log_frames_for_a_registry_only_with_the_events_framing() -> None:
    """The log knows no schema: a registry URL opened without the catalog's framing
    is refused (rather than appending values the registry's readers cannot read)."""
    url = "kafka://127.0.0.1:9/t?registry=http://127.0.0.1:8081"
    with pytest.raises(InvalidLogURL, match="open this log through the catalog"):
        open_log(url)
    open_log(url, framing=registry_framing).close()  # connects on first use only


def test_a_service_on_a_framed_log_reads_and_waits(
    topic_url: str, registry: Registry, tmp_path: Path
) -> None:
    """catalog serve on a registry-framed log: its own handles on the log (the
    follower's and the probe that asks for the log's end, used by reads with
    min_positions, status and snapshots) frame and unframe alike."""
    from catalog.service import Service

    framed_url = with_options(topic_url, registry=registry.url)
    with make_catalog(tmp_path, framed_url, "w", wait=False) as cat:
        cat.log_artifact("k", body=b"x")
        end = cat.log.end_offsets()
    service = Service(framed_url, str(tmp_path / "served.duckdb")).start()
    try:
        assert service.end_offsets() == end
        service.wait_for(end, timeout=30)  # applied: a read with min_positions would wait so
        assert service.positions == {p: o for p, o in end.items() if o}
    finally:
        service.stop()


def test_the_registry_setting_frames_a_kafka_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_LOG", "kafka://127.0.0.1:9/t?timeout=5")
    monkeypatch.setenv("CATALOG_SCHEMA_REGISTRY", "http://127.0.0.1:8081")
    config = Config.load()
    assert parse_url(config.log).registry == "http://127.0.0.1:8081"
    assert with_registry("kafka://h:1/t?registry=http://o:1", "http://x:2").endswith("o:1")
    assert with_registry("file:///tmp/e.db", "http://x:2") == "file:///tmp/e.db"
    with pytest.raises(InvalidLogURL, match="http"):
        parse_url("kafka://h:1/t?registry=ftp://x")


# -------------------------------------------------------------- CloudEvents


def test_every_record_carries_cloudevents_binary_headers(
    kafka_broker: Broker, topic_url: str, tmp_path: Path
) -> None:
    with make_catalog(tmp_path, topic_url, "a", wait=False) as cat:
        written = cat.log_artifact("model-a", body=b"m", kind="model")
        cat.tag_artifact(written.uri, "prod")
    messages = raw_messages(kafka_broker, topic_of(topic_url), 2)
    codec = default_codec()
    types = []
    for m in messages:
        headers = dict(m.headers())
        event = codec.decode(m.value())
        ce = from_binary(KafkaMessage(headers, m.key(), m.value()), JSONFormat())
        assert ce.get_specversion() == "1.0"
        assert ce.get_id() == event.event_id
        assert ce.get_source() == "/catalog/proj"
        assert ce.get_type() == f"catalog.{event.type}"
        assert ce.get_subject() == "proj/model-a" == m.key().decode()
        assert ce.get_time() == event.occurred_at
        assert ce.get_datacontenttype() == "application/avro"
        assert headers["type"] == event.type.encode()
        assert headers["schema"] == codec.current.hex.encode()
        types.append(ce.get_type())
    assert sorted(types) == ["catalog.ArtifactLogged", "catalog.ArtifactTagged"]


def test_the_embedded_log_keeps_its_two_headers(catalog: Catalog) -> None:
    catalog.log_artifact("a", body=b"a")
    [record] = catalog.log.read({})
    assert [name for name, _ in record.headers] == ["type", "schema"]


# ----------------------------------------------------------- consumer group


def group_offsets(broker: Broker, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    try:
        found = admin.list_group_offsets({group: None}).get(group) or {}
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == topic}


def test_group_offsets_follow_the_projection_and_status_shows_lag(
    kafka_broker: Broker, topic_url: str, tmp_path: Path
) -> None:
    group = f"catalog-{uuid.uuid4().hex[:8]}"
    url = with_options(topic_url, group=group)
    topic = topic_of(topic_url)
    db = str(tmp_path / "g.duckdb")
    with make_catalog(tmp_path, url, "g") as cat:
        for i in range(12):
            cat.log_artifact(f"k{i}", body=str(i).encode())
        positions = cat.positions()
        assert sum(positions.values()) == 12
        committed = group_offsets(kafka_broker, group, topic)
        assert committed == positions
    # more events from a writer with no projection of its own: the projection lags
    with make_catalog(tmp_path, topic_url, "w", wait=False) as writer:
        for i in range(5):
            writer.log_artifact(f"late{i}", body=str(i).encode())
    runner = CliRunner()
    base = ["--log", url, "--db", db, "--artifact-path", str(tmp_path / "art")]
    result = runner.invoke(cli, [*base, "consume", "--status", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sum(r["lag"] for r in rows) == 5
    assert all(r["end"] - r["position"] == r["lag"] for r in rows)
    assert all(r["committed"] in (None, r["position"]) for r in rows)
    result = runner.invoke(cli, [*base, "consume"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*base, "consume", "--status"])
    assert result.exit_code == 0, result.output
    assert "PARTITION" in result.output and "lag: 0 record(s)" in result.output
    with Projection(db) as proj:
        assert group_offsets(kafka_broker, group, topic) == proj.positions
        assert sum(proj.positions.values()) == 17


def test_a_failed_commit_never_fails_the_batch(
    topic_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    url = with_options(topic_url, group=f"g-{uuid.uuid4().hex[:8]}")

    def refuse(self: KafkaLog) -> Any:
        raise KafkaConnectionError("no coordinator (injected)")

    monkeypatch.setattr(KafkaLog, "_group_admin", refuse)
    with (
        open_log(url, framing=registry_framing) as log,
        Projection(str(tmp_path / "p.duckdb")) as proj,
    ):
        with make_catalog(tmp_path, topic_url, "w", wait=False) as writer:
            for i in range(3):
                writer.log_artifact(f"k{i}", body=b"x")
        assert proj.catch_up(log, batch_size=1) == 3
        assert sum(proj.positions.values()) == 3
    warnings = [r for r in caplog.records if "consumer group" in r.getMessage()]
    assert len(warnings) == 1  # once per failing streak, not per batch
    assert "injected" in warnings[0].getMessage()
