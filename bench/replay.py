"""B3 — rebuild a projection from 1,000,000 events: time and peak memory.

The log is generated first (:mod:`bench.events`: real events, encoded with the
codec, appended to the embedded log in batches of 20,000). Then
``consumers.replay.rebuild`` (what ``catalog replay`` runs) rebuilds a
projection from it in a fresh interpreter, whose peak RSS (``VmHWM``,
imports included) is the memory figure. A replay still running after the time
budget (30 minutes; --quick: 15 s) is stopped, and its rate and how far it got
are reported, with the full time extrapolated from that rate. The floor under
it (:mod:`bench.floor`, with the bulk load's settings) is measured on the same
log: reading, decoding and writing the replayed file's rows, without the rules.

Where the time goes is shown for the first 100,000 events after the first
batch and for the last 100,000 (:mod:`bench.phases`; half the run each with
--quick): the steps whose cost grows with the tables stand out. A second
replay, of the same stream's untagged logs alone (all but the first batch's
on the rules' leanest path, ``Fold.log_plain``), shows what rules as lean
for every event could reach.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import events, floor
from bench.child import run_child
from bench.common import Context, Result, bench_main, fmt, profile, say
from bench.phases import table as phases_table
from catalog.log import open_log


class OutOfTime(Exception):
    pass


#: events in each stretch of the replay whose phases are shown (the first and the last)
WINDOW = 100_000


def rebuild_child(
    log_url: str,
    db: str,
    budget_s: float,
    profile_events: int = 0,
) -> dict[str, Any]:
    """Run in a fresh interpreter (bench.child): the replay, or its profile."""
    from bench.phases import Windows, timed
    from catalog.consumers.replay import rebuild
    from catalog.log import open_log

    applied = 0
    started = time.perf_counter()
    next_report = 100_000
    windows: Windows | None = None

    def progress(n: int) -> None:
        nonlocal applied, next_report
        applied += n
        if windows is not None:
            windows.snap(applied)
        elapsed = time.perf_counter() - started
        if applied >= next_report:
            print(f"    replayed {applied:,} events in {elapsed:.0f} s", flush=True)
            next_report += 100_000
        if elapsed > budget_s:
            raise OutOfTime

    with open_log(log_url) as log:
        if profile_events:
            text = profile(
                lambda: rebuild(log, db, to_position=profile_events, progress=progress), top=15
            )
            return {"profile": text}
        finished = True
        with timed() as totals:
            windows = Windows(totals)
            try:
                rebuild(log, db, progress=progress)
            except OutOfTime:
                finished = False
    seconds = time.perf_counter() - started
    phases = windows.stretches(WINDOW)
    from catalog.consumers.database import connect, memory_limit

    con = connect(":memory:")  # the settings a projection's connection gets
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.close()
    limit = memory_limit(bulk=True)  # what a replay loads with (the indexes: memory_limit())
    return {
        "applied": applied,
        "seconds": seconds,
        "finished": finished,
        "memory_limit": limit,
        "threads": threads,
        "phases": phases,
        "plain_logs": int(totals["plain logs"]),
    }


def run(ctx: Context) -> list[Result]:
    n = ctx.scale(1_000_000, 100_000)
    budget = float(ctx.options.get("budget", ctx.scale(1800, 15)))
    url = f"file://{ctx.workdir / 'events.db'}"
    say(f"B3: generating a log of {n:,} events (encoded with the codec, appended in bulk)")
    started = time.perf_counter()
    events.write_log(
        url,
        n,
        progress=lambda done: done % 200_000 == 0 and say(f"  {done:,} events written"),
    )
    say(f"log written in {time.perf_counter() - started:.0f} s; replaying in a subprocess")
    child = run_child(
        "bench.replay:rebuild_child",
        log_url=url,
        db=str(ctx.workdir / "replayed.duckdb"),
        budget_s=budget,
    )
    out = child["result"]
    seconds, applied, rss = out["seconds"], out["applied"], child["peak_rss_mb"]
    rate = applied / seconds if seconds else 0
    scale = f"{n:,} events" + (" (--quick: the target is for 1,000,000)" if ctx.quick else "")
    if out["finished"]:
        wall = seconds
        note = f"{rate:,.0f} events/s"
    else:
        wall = n / rate if rate else float("inf")
        note = (
            f"stopped after the {budget:.0f} s budget at {applied:,} of {n:,} events "
            f"({rate:,.0f} events/s); the time shown is extrapolated"
        )
    say(f"replay: {fmt(wall, 's')} ({note}), peak RSS {rss:.0f} MB")
    growth = (
        "(phases of the replay above, wall time, µs an event: bench/phases.py; what grows "
        "from the first stretch to the last: the lookups and writes over the tables built "
        "so far, and the checkpoints inside COMMIT)\n" + phases_table(out["phases"])
    )
    say(growth)
    target_s = 30 * n / 1_000_000
    ground = None
    if out["finished"]:
        say("the floor: read, decode and DuckDB writes alone, loading as a replay does")
        with open_log(url) as log:
            ground = floor.measure(log, ctx.workdir / "replayed.duckdb", ctx.workdir, bulk=True)
        say(f"floor: {fmt(ground.seconds, 's')} ({ground.describe(n / target_s)})")
    results = [
        Result(
            "B3",
            f"replay {scale}: wall time",
            wall,
            "s",
            target=f"≤ {target_s:g} s",
            met=out["finished"] and wall <= target_s,
            higher_is_better=False,
            notes=f"consumers.replay.rebuild in a fresh process; {note}",
        ),
        Result(
            "B3",
            f"replay {scale}: peak RSS",
            rss,
            "MB",
            target="≤ 500 MB",
            met=rss <= 500,
            higher_is_better=False,
            notes="peak RSS (VmHWM) of the replaying process (Python, DuckDB and imports included)"
            + ("" if out["finished"] else "; up to where it was stopped")
            + f"; DuckDB memory_limit while loading: {out['memory_limit']}, "
            f"threads {out['threads']}",
        ),
    ]
    if ground is not None:
        results.insert(
            1,
            Result(
                "B3",
                f"floor under the replay: read + decode + DuckDB writes alone ({scale})",
                ground.seconds,
                "s",
                higher_is_better=False,
                notes=f"bench/floor.py, bulk load settings: {ground.describe(n / target_s)}; "
                f"the replay took {wall / ground.seconds:.1f}x it",
            ),
        )
    if out["finished"]:
        results.insert(2, best_case(ctx, n, wall))
    if not ctx.quick and any(r.met is False for r in results):
        sample = min(n, 50_000)
        say(f"profiling a replay of the first {sample:,} events")
        prof = run_child(
            "bench.replay:rebuild_child",
            log_url=url,
            db=str(ctx.workdir / "profiled.duckdb"),
            budget_s=budget,
            profile_events=sample,
        )
        text = (
            f"(cProfile of a replay of the first {sample:,} events)\n" + prof["result"]["profile"]
        )
        for r in results:
            if r.met is False:
                r.profile = f"{growth}\n\n{text}"
    for leftover in Path(ctx.workdir).glob("*.duckdb*"):
        leftover.unlink()
    return results


def best_case(ctx: Context, n: int, wall: float) -> Result:
    """The replay of the same stream's untagged logs alone: each a new version of a
    key that only logs, on the rules' one-pass path (``Fold.log_plain``) but in
    the first batch (which creates the project)."""
    say(f"the best case: the untagged logs of the same {n:,} events, alone")
    url = f"file://{ctx.workdir / 'logs-only.db'}"
    with open_log(url) as log:
        for chunk in events.chunked(events.logs_only(n), 20_000):
            log.append(chunk)
    child = run_child(
        "bench.replay:rebuild_child",
        log_url=url,
        db=str(ctx.workdir / "logs-only.duckdb"),
        budget_s=float(ctx.options.get("budget", ctx.scale(1800, 15))),
    )
    out = child["result"]
    seconds, applied, plain = out["seconds"], out["applied"], out["plain_logs"]
    say(f"logs alone: {applied:,} events in {fmt(seconds, 's')}")
    return Result(
        "B3",
        f"best case: the same stream's untagged logs alone ({applied:,} events): wall time",
        seconds,
        "s",
        higher_is_better=False,
        notes=f"{seconds * 1e6 / applied:.1f} µs an event against {wall * 1e6 / n:.1f} for the "
        f"full mix; {plain:,} of the logs took the rules' leanest path (Fold.log_plain); "
        f"peak RSS {child['peak_rss_mb']:.0f} MB"
        + ("" if out["finished"] else "; stopped at the time budget"),
    )


if __name__ == "__main__":
    bench_main("replay", run)
