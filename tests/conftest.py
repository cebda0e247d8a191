"""Shared fixtures: every test gets its own catalog home, log, projection and store."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from reliability.helpers import COUNTS, record

from catalog import Catalog

ENV = (
    "CATALOG_LOG",
    "CATALOG_DB",
    "CATALOG_ARTIFACT_PATH",
    "CATALOG_PROJECT",
    "CATALOG_ACTOR",
    "CATALOG_CONFIG",
    "CATALOG_API",
    "CATALOG_TOKEN",
    "CATALOG_TOKEN_FILE",
    "CATALOG_READ_TOKEN",
    "CATALOG_WRITE_TOKEN",
    "CATALOG_UI_TOKEN",
    "CATALOG_TOKENS_FILE",
    "CATALOG_SNAPSHOTS",
    "CATALOG_SNAPSHOT_EVERY",
    "CATALOG_SNAPSHOT_KEEP",
    "CATALOG_SCHEMA_REGISTRY",
    "CATALOG_SCHEMA_REGISTRY_TOKEN",
    "CATALOG_SCHEMA_REGISTRY_USER_INFO",
    "OPENLINEAGE_API_KEY",
)


# ------------------------------------------- reliability counts across xdist workers


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker (``make test`` runs two) hands its counts to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["catalog_counts"] = json.dumps(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller adds up what its workers ran (tests/reliability/conftest.py prints it)."""
    found = getattr(node, "workeroutput", {}).get("catalog_counts")
    for name, counts in json.loads(found or "{}").items():
        record(name, **counts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    terminalreporter.section("reliability counts")
    for name, counts in sorted(COUNTS.items()):
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        terminalreporter.write_line(f"{name}: {shown}")


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Nothing a test does reaches the real user's data or config directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CATALOG_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def _kafka_threads() -> set[threading.Thread]:
    """The IO threads of kafka-python clients (consumers, admins, producers)."""
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("kafka-io-") or t.name.endswith("-network-thread")
    }


@pytest.fixture(autouse=True, scope="module")
def no_kafka_client_left() -> Iterator[None]:
    """Every Kafka client a test module starts is closed by the module's end.

    A client left open keeps an IO thread that, once its broker is gone,
    retries with random backoff for the rest of the session: it moves the
    global ``random`` state under the hypothesis tests of later modules, which
    then fail as flaky far from the cause.
    """
    before = _kafka_threads()
    yield
    deadline = time.monotonic() + 5
    while (left := _kafka_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"Kafka clients left open by this module: {sorted(t.name for t in left)}"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """A client on a fresh embedded log, projection file and artifact directory."""
    cat = Catalog(
        log=f"file://{tmp_path / 'events.db'}",
        db=str(tmp_path / "catalog.duckdb"),
        artifact_path=str(tmp_path / "artifacts"),
        project="proj",
        actor="tester",
    )
    yield cat
    cat.close()


# ------------------------------------------------- real servers (tests/servers.py)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[servers.Broker]:
    """A Tansu Kafka-protocol broker on a free loopback port, for the whole session."""
    broker = servers.start_tansu()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[servers.S3Server]:
    """moto's S3 API server on a free loopback port, for the whole session."""
    server = servers.start_moto()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: servers.S3Server, monkeypatch: pytest.MonkeyPatch) -> servers.S3Server:
    """Point every S3 client (botocore, s3fs) of this test at the moto server."""
    for name, value in s3_server.env_vars().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def bucket(s3_env: servers.S3Server) -> str:
    """A fresh, empty bucket on the moto server."""
    import s3fs

    name = f"t-{uuid.uuid4().hex[:16]}"
    s3fs.S3FileSystem(endpoint_url=s3_env.endpoint).mkdir(name)
    return name


@pytest.fixture
def topic_url(kafka_broker: servers.Broker) -> str:
    """A ``kafka://`` URL naming a topic no other test uses (created on first use)."""
    return kafka_broker.log_url(f"t-{uuid.uuid4().hex[:12]}", timeout=10)
