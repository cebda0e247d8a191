"""OpenLineage live (issue 20, item 4): ``catalog consume --openlineage URL|kafka://…``.

Events go through the openlineage-python client's own transports to a small
OpenLineage HTTP endpoint run here on loopback (it only records what is
POSTed to ``/api/v1/lineage``, as Marquez takes it) and to a topic of the
Tansu broker; every event sent validates against the OpenLineage spec schema
the suite ships (tests/data/openlineage). Sending is at least once and resumes
from the feed's stored position.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition
from servers import Broker, LoopbackHTTP, QuietHandler

from catalog import Catalog, run_local
from catalog.cli import cli
from catalog.errors import LineageSendError
from catalog.execution import MLClientCtx
from catalog.lineage_feed import send

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "openlineage" / "OpenLineage.json").read_text()
)
ROOT = Path(__file__).resolve().parent.parent


def check(event: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls(SCHEMA, format_checker=cls.FORMAT_CHECKER).validate(event)


@dataclass
class Endpoint(LoopbackHTTP):
    """An OpenLineage HTTP endpoint that records the events POSTed to it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    failing: bool = False
    server: ThreadingHTTPServer | None = None

    def start(self) -> Endpoint:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if endpoint.failing or self.path != "/api/v1/lineage":
                    self.send_response(503 if endpoint.failing else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                endpoint.events.append(json.loads(body))
                endpoint.auth.append(self.headers.get("Authorization"))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.serve(Handler)
        return self


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint().start()
    yield found
    found.stop()


def train(context: MLClientCtx, data: object) -> None:
    context.log_artifact("model", body=b"weights")


def history(catalog: Catalog) -> None:
    raw = catalog.log_artifact("raw", body=b"a,b\n1,2\n", kind="dataset", format="csv", tag="v1")
    run_local(
        handler=train, inputs={"data": "store://datasets/raw:v1"}, project="proj", catalog=catalog
    )
    catalog.log_artifact("report", body=b"r", sources=[raw])


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["job"]["name"], e["eventType"]) for e in events]


def test_runs_go_to_an_http_endpoint_once_resumably(
    catalog: Catalog, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(catalog)
    assert send(catalog, endpoint.url) == 4
    for event in endpoint.events:
        check(event)
    assert kinds(endpoint.events) == [
        ("train", "START"),
        ("train", "COMPLETE"),
        ("log/report", "START"),
        ("log/report", "COMPLETE"),
    ]
    (source,) = endpoint.events[1]["inputs"]
    assert source["namespace"] == "catalog://proj" and source["name"] == "raw"
    assert endpoint.auth == [None] * 4
    # resumes from its stored position: nothing new, nothing sent
    assert send(catalog, endpoint.url) == 0
    # the target down: an error, and the position stays (at least once)
    run_local(handler=train, inputs={"data": "store://datasets/raw:v1"}, catalog=catalog)
    endpoint.failing = True
    with pytest.raises(LineageSendError, match="not taken"):
        send(catalog, endpoint.url)
    endpoint.failing = False
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "k-123")
    assert send(catalog, endpoint.url) == 2
    assert kinds(endpoint.events[4:]) == [("train", "START"), ("train", "COMPLETE")]
    assert endpoint.auth[4:] == ["Bearer k-123"] * 2


def test_the_cli_sends_and_follows(tmp_path: Path, endpoint: Endpoint) -> None:
    env = {
        **os.environ,
        "CATALOG_HOME": str(tmp_path / "home"),
        "CATALOG_PROJECT": "proj",
        "CATALOG_ARTIFACT_PATH": str(tmp_path / "art"),
    }
    result = CliRunner().invoke(cli, ["consume", "--openlineage", endpoint.url], env=env)
    assert result.exit_code == 0, result.output
    assert "sent 0 OpenLineage event(s)" in result.output
    follower = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "--db", str(tmp_path / "feed.duckdb"), "consume"]
        + ["--follow", "--openlineage", endpoint.url],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with Catalog(
            log=f"file://{tmp_path / 'home' / 'events.db'}",
            db=str(tmp_path / "writer.duckdb"),
            artifact_path=str(tmp_path / "art"),
            project="proj",
        ) as cat:
            history(cat)
        deadline = time.monotonic() + 60
        while len(endpoint.events) < 4:
            assert follower.poll() is None, follower.communicate()[0].decode()
            assert time.monotonic() < deadline, endpoint.events
            time.sleep(0.1)
    finally:
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0, out.decode()
    assert "sent 4 OpenLineage event(s)" in out.decode()
    for event in endpoint.events:
        check(event)


@pytest.mark.kafka
def test_runs_go_to_a_kafka_topic(catalog: Catalog, kafka_broker: Broker) -> None:
    topic = f"ol-{uuid.uuid4().hex[:8]}"
    history(catalog)
    assert send(catalog, f"kafka://{kafka_broker.address}/{topic}") == 4
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.address,
            "group.id": f"ol-{uuid.uuid4().hex}",  # required by librdkafka; never joined
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + 30
        while len(messages) < 4:
            assert time.monotonic() < deadline
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                messages.append(message)
    finally:
        consumer.close()
    events = [json.loads(m.value()) for m in messages]
    for event in events:
        check(event)
    keys = {m.key().decode() for m in messages}
    assert keys == {"run:proj/train", "run:proj/log/report"}
    by_key: dict[str, list[str]] = {}
    for m, e in zip(messages, events, strict=True):
        by_key.setdefault(m.key().decode(), []).append(e["eventType"])
    assert all(v == ["START", "COMPLETE"] for v in by_key.values())  # in order per run
