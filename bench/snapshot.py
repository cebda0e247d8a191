"""B8 — replicas in seconds: publishing a snapshot, and a new replica started from it.

A log of N events (:mod:`bench.events`, N = 1,000,000 by default; ``-o events=N``
to choose, 20,000 with --quick) is replayed into a projection (the setup:
what a replica without snapshots does). Then:

1. **Publishing** that projection to a local snapshot store, while a reader
   thread runs point lookups on its own cursor: the publish time, how long the
   follower was held (checkpoint + file copy), the longest read meanwhile, and
   the snapshot's size against the DuckDB file's.
2. **A new replica**: T more events are appended (10,000; 1,000 with --quick),
   and a fresh interpreter starts an empty projection from the snapshot
   (download, hashes, digest recomputed) and catches up the tail: wall time and
   peak RSS (``VmHWM``, imports included) — against the full replay of the
   same N + T events measured in step 0's setup rate.

The formats compared (DuckDB file against Parquet per table) are in
consumers/published.py's docstring with their figures; this bench measures
the chosen one.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

from bench import events
from bench.child import run_child
from bench.common import Context, Result, bench_main, say
from catalog.events.codec import default_codec


def start_replica(log_url: str, db: str, url: str) -> dict[str, Any]:
    """In a fresh interpreter (bench.child): an empty projection, from the newest
    snapshot, caught up with the log (the tail in bounded memory, as
    ``published.open_projection`` does it; here timed apart)."""
    from bench.common import peak_rss_mb
    from catalog.consumers import published
    from catalog.consumers.projection import Projection
    from catalog.log import open_log

    started = time.perf_counter()
    with open_log(log_url) as log:
        projection = published.open_projection(
            db, log, url, open=lambda: Projection(db), tail=False
        )
        restored = time.perf_counter() - started
        restored_peak = peak_rss_mb()
        events = sum(projection.positions.values())
        tail = published.catch_up_tail(projection, log, events)
        tail += projection.catch_up(log)  # what arrived meanwhile (nothing here)
        ready = time.perf_counter() - started
        projection.close()
    return {
        "restored_s": restored,
        "restored_peak_mb": restored_peak,
        "tail": tail,
        "from": projection.restored_from,
        "ready_s": ready,
        "total_s": time.perf_counter() - started,
    }


def run(ctx: Context) -> list[Result]:
    from catalog.consumers import published
    from catalog.consumers.projection import Projection
    from catalog.consumers.replay import rebuild
    from catalog.log import open_log

    n = int(ctx.options.get("events", ctx.scale(1_000_000, 20_000)))
    tail = int(ctx.options.get("tail", ctx.scale(10_000, 1_000)))
    log_url = f"file://{ctx.workdir / 'events.db'}"
    say(f"writing {n:,} events")
    events.write_log(log_url, n)
    live = str(ctx.workdir / "live.duckdb")
    say("replaying them (the setup: a replica without snapshots)")
    started = time.perf_counter()
    with open_log(log_url) as log:
        rebuild(log, live)
    replay_s = time.perf_counter() - started
    say(f"replayed in {replay_s:.1f} s")
    url = str(ctx.workdir / "snapshots")

    with open_log(log_url) as log, Projection(live) as projection:
        projection.bind(log)
        keys = [events.key_name(k) for k in range(50)]
        longest = [0.0]
        reads = [0]
        stop = threading.Event()

        def reader() -> None:
            cursor = projection.con.cursor()
            cursor.execute("USE projection")
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                cursor.execute(
                    "SELECT uid FROM artifacts WHERE key = ? ORDER BY log_offset DESC LIMIT 1",
                    [keys[i % len(keys)]],
                ).fetchall()
                longest[0] = max(longest[0], time.perf_counter() - t)
                reads[0] += 1
                i += 1
            cursor.close()

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.5)
        baseline = longest[0]
        longest[0] = 0.0
        say("publishing a snapshot while a reader runs point lookups")
        started = time.perf_counter()
        manifest = published.publish(projection, url)
        publish_s = time.perf_counter() - started
        stop.set()
        thread.join()
    file_mb = os.path.getsize(live) / 1e6
    say(
        f"published in {publish_s:.2f} s (follower held {manifest.publisher['held_s']:.3f} s); "
        f"longest read meanwhile {longest[0] * 1000:.0f} ms (before: {baseline * 1000:.0f} ms); "
        f"{manifest.size / 1e6:.1f} MB, file {file_mb:.1f} MB"
    )

    say(f"appending a tail of {tail:,} events")
    with open_log(log_url) as log:
        codec = default_codec()
        later = itertools.islice(events.events(n + tail), n, None)  # the same stream, on
        log.append([events.message(codec, ev) for ev in later])
    replica = str(ctx.workdir / "replica.duckdb")
    say("a new replica: snapshot + tail, in a fresh interpreter")
    child = run_child("bench.snapshot:start_replica", log_url=log_url, db=replica, url=url)
    found = child["result"]
    say(
        f"ready in {found['total_s']:.2f} s (restored {found['restored_s']:.2f} s, "
        f"tail {found['tail']:,}); peak RSS {child['peak_rss_mb']:.0f} MB "
        f"({found['restored_peak_mb']:.0f} MB once restored and digested)"
    )
    size = f"{n:,} events"
    return [
        Result(
            "B8",
            f"new replica ready, {size} of history: snapshot + {tail:,}-event tail",
            found["total_s"],
            "s",
            baseline=replay_s,
            baseline_label="full replay of the history",
            target="≤ 5 s" if n >= 1_000_000 else "",
            met=found["total_s"] <= 5 if n >= 1_000_000 else None,
            higher_is_better=False,
            notes=f"restore (download, hashes, digest) {found['restored_s']:.2f} s; "
            f"local file store; from {found['from']}",
        ),
        Result(
            "B8",
            "new replica: peak RSS",
            child["peak_rss_mb"],
            "MB",
            target="≤ 300 MB" if n >= 1_000_000 else "",
            met=child["peak_rss_mb"] <= 300 if n >= 1_000_000 else None,
            higher_is_better=False,
            notes="VmHWM of the fresh interpreter, imports included; "
            f"{found['restored_peak_mb']:.0f} MB once restored (download, hashes, digest)",
        ),
        Result(
            "B8",
            f"publishing a snapshot of {size}",
            publish_s,
            "s",
            target="≤ 10 s" if n >= 1_000_000 else "",
            met=publish_s <= 10 if n >= 1_000_000 else None,
            higher_is_better=False,
            notes=f"follower held {manifest.publisher['held_s'] * 1000:.0f} ms (checkpoint + "
            f"copy); longest point read meanwhile {longest[0] * 1000:.0f} ms "
            f"(before publishing {baseline * 1000:.0f} ms), {reads[0]:,} reads",
        ),
        Result(
            "B8",
            f"snapshot size, {size}",
            manifest.size / 1e6,
            "MB",
            baseline=file_mb,
            baseline_label="the DuckDB file",
            target="≤ the DuckDB file",
            met=manifest.size / 1e6 <= file_mb,
            higher_is_better=False,
            notes="zstd of the checkpointed DuckDB file",
        ),
    ]


if __name__ == "__main__":
    bench_main("snapshot", run)
