"""When the broker fails: bounded, loud, and nothing lost or applied twice.

Each test runs its own Tansu broker. Tansu keeps its data in an S3 bucket on
the session's moto server here (``--storage-engine s3://bucket/``), so a broker
stopped and started again on the same port finds its topics and records: the
restart is real, not simulated. A frozen broker (SIGSTOP) is the other failure
mode: connections stay open and nothing answers.

- an append to a stopped or frozen broker raises LogUnavailable within the
  URL's ``timeout`` (plus a bounded margin); the event claims no position, and
  the client appends again once the broker is back;
- a CLI write against no broker exits 5 with a one-line error;
- ``catalog consume --follow`` survives a broker restart: it logs a warning,
  retries with backoff, resumes from its stored positions, and applies every
  event exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import s3fs
import servers
from click.testing import CliRunner

from catalog import Catalog
from catalog.consumers.projection import Projection
from catalog.errors import LogUnavailable
from catalog.log import open_log

pytestmark = [pytest.mark.kafka, pytest.mark.s3]

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 2.0  # seconds, the ?timeout= of every log URL here


@pytest.fixture
def durable_broker(s3_env: servers.S3Server, tmp_path: Path) -> Iterator[servers.Broker]:
    """A Tansu broker of its own whose storage (an S3 bucket) survives restarts."""
    bucket = f"tansu-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=s3_env.endpoint).mkdir(bucket)
    broker = servers.start_tansu(
        storage=f"s3://{bucket}/", s3=s3_env, output=tmp_path / "tansu.log"
    )
    yield broker
    broker.stop()


def restart(broker: servers.Broker) -> None:
    broker.stop()
    broker.start()


def catalog_on(url: str, tmp_path: Path, name: str = "writer") -> Catalog:
    return Catalog(
        log=url,
        db=str(tmp_path / f"{name}.duckdb"),
        artifact_path=str(tmp_path / "artifacts"),
        project="proj",
    )


def test_append_to_a_stopped_broker_fails_then_recovers(
    durable_broker: servers.Broker, tmp_path: Path
) -> None:
    url = durable_broker.log_url("events", timeout=TIMEOUT)
    before = set(threading.enumerate())
    with catalog_on(url, tmp_path) as cat:
        first = cat.log_artifact("first", body=b"1")
        durable_broker.stop()
        started = time.monotonic()
        with pytest.raises(LogUnavailable) as info:
            cat.log_artifact("lost", body=b"2")
        elapsed = time.monotonic() - started
        assert elapsed < TIMEOUT + 5, f"append gave up after {elapsed:.1f}s"
        assert info.value.exit_code == 5 and info.value.url == url
        assert "not acknowledged" in str(info.value)

        durable_broker.start()
        again = cat.log_artifact("again", body=b"3")  # a new producer, same client
        keys = [a.key for a in cat.list_artifacts()]
        assert sorted(keys) == ["again", "first"]  # the failed event claimed nothing
        assert cat.get_artifact("first").uid == first.uid
        assert cat.get_artifact("again").uid == again.uid
        assert sum(cat.log.end_offsets().values()) == 2
    # The abandoned producer's IO thread is stopped too: kafka-python 3's close
    # left it retrying the stopped broker for the rest of the process.
    assert _new_threads(before) == []


def test_append_to_a_frozen_broker_fails_within_the_timeout(
    durable_broker: servers.Broker, tmp_path: Path
) -> None:
    url = durable_broker.log_url("events", timeout=TIMEOUT)
    before = set(threading.enumerate())
    with catalog_on(url, tmp_path) as cat:
        cat.log_artifact("first", body=b"1")
        durable_broker.pause()
        try:
            started = time.monotonic()
            with pytest.raises(LogUnavailable):
                cat.log_artifact("frozen", body=b"2")
            elapsed = time.monotonic() - started
        finally:
            durable_broker.resume()
        assert elapsed < TIMEOUT + 5, f"append gave up after {elapsed:.1f}s"
        cat.log_artifact("thawed", body=b"3")
        keys = {a.key for a in cat.list_artifacts()}
        # The frozen append was never acknowledged; whether the broker wrote it
        # after thawing is not promised (a retry is harmless: same event id).
        assert {"first", "thawed"} <= keys <= {"first", "frozen", "thawed"}
    assert _new_threads(before) == []


def test_cli_write_without_a_broker_exits_5(tmp_path: Path) -> None:
    url = f"kafka://127.0.0.1:{servers.free_port()}/events?timeout=1"
    (tmp_path / "data.txt").write_text("x")
    from catalog.cli import cli

    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        [
            "--log",
            url,
            "--db",
            str(tmp_path / "c.duckdb"),
            "--artifact-path",
            str(tmp_path / "a"),
            "log",
            str(tmp_path / "data.txt"),
        ],
    )
    assert result.exit_code == 5, result.output
    assert time.monotonic() - started < 10
    assert "event log kafka://" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_failed_connection_leaves_no_client_thread_behind() -> None:
    """kafka-python 3 leaves an admin client's IO thread retrying forever when its
    bootstrap fails; the log stops it, so a process that retries while the broker
    is down does not gather threads."""
    url = f"kafka://127.0.0.1:{servers.free_port()}/events?timeout=1"
    before = set(threading.enumerate())
    for _ in range(2):
        with open_log(url) as log, pytest.raises(LogUnavailable):
            log.end_offsets()
    assert _new_threads(before) == []


def _new_threads(before: set[threading.Thread], wait: float = 2.0) -> list[str]:
    """Names of the threads alive now that were not in ``before``, once those
    that are ending have had ``wait`` seconds to end."""
    deadline = time.monotonic() + wait
    while True:
        new = sorted(t.name for t in set(threading.enumerate()) - before if t.is_alive())
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.05)


class Lines:
    """Collects a child's stderr lines in a thread; :meth:`wait_for` a line containing text."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(text in line for line in self.lines), timeout=timeout
            )
        assert found, f"no {text!r} in {timeout}s; stderr so far:\n{self.text()}"

    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def join(self) -> str:
        self._thread.join(10)
        return self.text()


def _follower(url: str, db: Path, *options: str) -> tuple[subprocess.Popen[str], Lines]:
    """``catalog consume --follow`` on ``url`` into ``db``, and its stderr's lines."""
    follower = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "--log", url, "--db", str(db)]
        + ["consume", "--follow", *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )
    assert follower.stderr is not None
    return follower, Lines(follower.stderr)


@pytest.mark.parametrize("serve", ["--serve", "--no-serve"])
def test_a_follower_started_while_its_broker_is_down_waits_for_it(
    durable_broker: servers.Broker, tmp_path: Path, serve: str
) -> None:
    """``consume --follow`` started with its broker down does not exit: it says it
    waits, and follows once the broker is back."""
    url = durable_broker.log_url("events", timeout=TIMEOUT)
    with open_log(url) as log:
        log.end_offsets()  # the topic exists
    durable_broker.stop()
    db = tmp_path / "follower.duckdb"
    follower, stderr = _follower(url, db, serve)
    try:
        stderr.wait_for("event log unavailable", timeout=10 * TIMEOUT)
        assert follower.poll() is None, stderr.text()
        durable_broker.start()
        stderr.wait_for("is back", timeout=60)
        with catalog_on(url, tmp_path) as cat, cat.batch():
            for i in range(5):
                cat.log_artifact(f"k{i}", body=f"b{i}".encode())
        time.sleep(3.0)  # a poll, and the catch-up
        assert follower.poll() is None, stderr.text()
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=30)
        assert follower.stdout is not None
        with follower.stdout:
            out = follower.stdout.read()
    assert follower.returncode == 0, stderr.join()
    assert "applied 5 record(s)" in out, out


def test_a_follower_stopped_while_its_broker_is_down_exits_cleanly(
    durable_broker: servers.Broker, tmp_path: Path
) -> None:
    url = durable_broker.log_url("events", timeout=TIMEOUT)
    with open_log(url) as log:
        log.end_offsets()  # the topic exists
    durable_broker.stop()
    try:
        follower, stderr = _follower(url, tmp_path / "follower.duckdb", "--no-serve")
        stderr.wait_for("event log unavailable", timeout=10 * TIMEOUT)
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=60)
    finally:
        durable_broker.start()
    assert follower.stdout is not None
    with follower.stdout:
        out = follower.stdout.read()
    assert follower.returncode == 0, stderr.join()
    assert "applied 0 record(s)" in out


def test_follow_survives_a_broker_restart(durable_broker: servers.Broker, tmp_path: Path) -> None:
    url = durable_broker.log_url("events", timeout=TIMEOUT)
    db = tmp_path / "follower.duckdb"
    with open_log(url) as log:
        log.end_offsets()  # create the topic before the follower starts
    follower, stderr = _follower(url, db)
    try:
        with catalog_on(url, tmp_path) as cat:
            with cat.batch():
                for i in range(20):
                    cat.log_artifact(f"before-{i}", body=f"b{i}".encode())
            time.sleep(1.0)  # the follower (starting up meanwhile) applies some or all
            durable_broker.stop()
            stderr.wait_for("event log unavailable", timeout=10 * TIMEOUT)
            durable_broker.start()
            with cat.batch():
                for i in range(20):
                    cat.log_artifact(f"after-{i}", body=f"a{i}".encode())
            ends = cat.log.end_offsets()
        stderr.wait_for("is back", timeout=30)
        time.sleep(3.0)  # a long poll and one more catch-up at most
        assert follower.poll() is None, stderr.text()
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=30)
        assert follower.stdout is not None
        with follower.stdout:
            out = follower.stdout.read()
    err = stderr.join()
    assert follower.returncode == 0, err
    assert "retrying in" in err
    assert "applied 40 record(s)" in out
    with Projection(str(db)) as proj:
        assert proj.positions == ends
        con = proj.con
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (
            40,
            40,
        )
        assert con.execute(
            'SELECT count(*) FROM (SELECT DISTINCT "partition", "offset" FROM events)'
        ).fetchone() == (40,)
        assert con.execute("SELECT count(*) FROM artifacts").fetchone() == (40,)
