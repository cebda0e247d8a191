"""B1 — SDK logging rate: small labelled file artifacts on the embedded log.

10,000 distinct 1 KiB files (random bytes) are logged with
``Catalog.log_artifact(key, local_path=…, labels=…)``:

- in batch mode (``with catalog.batch():`` — bytes stored and synced, one
  durable append of the events at the end), artifacts/s including that flush;
- one synchronous call at a time (bytes stored and fsynced, the event appended
  and fsynced, then — the default — the event applied to this process's
  projection and its outcome read, before it returns): p50 latency; and the
  same with ``wait=False`` (durable only, the outcome not learned).

Baseline in the same process and run: MLflow's ``log_artifact`` + ``set_tag``
per file on its local SQLite backend (:mod:`bench.mlflow_baseline`), on fewer
files (its rate does not depend on the count; it takes ~30 ms a file here).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import mlflow_baseline
from bench.common import Context, Result, bench_main, latencies, p50, p90, profile, say
from catalog import Catalog


def make_files(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = directory / f"file-{i:05d}.bin"
        path.write_bytes(os.urandom(1024))
        files.append(path)
    return files


def labels_of(i: int) -> dict[str, str]:
    return {"team": f"t{i % 10}", "split": "train" if i % 5 else "test"}


def run(ctx: Context) -> list[Result]:
    n = ctx.scale(10_000, 1_000)
    n_sync = ctx.scale(300, 30)
    n_mlflow = ctx.scale(1_000, 30)
    half = n + n_sync + 20  # the second half: the same calls with wait=False, new bytes
    say(f"B1: writing {2 * half:,} files of 1 KiB")
    files = make_files(ctx.workdir / "files", 2 * half)
    os.sync()  # the setup's own dirty pages are not the SDK's to write back
    cat = Catalog(
        log=f"file://{ctx.workdir / 'events.db'}",
        db=str(ctx.workdir / "projection.duckdb"),
        artifact_path=str(ctx.workdir / "artifacts"),
        project="bench",
        actor="bench",
    )
    cat.log_artifact("warm-up", body=b"resolves the artifact path once")

    def log_batch(first: int, count: int, prefix: str) -> None:  # files[first:first + count]
        with cat.batch():
            for i in range(first, first + count):
                cat.log_artifact(f"{prefix}-{i:05d}", local_path=files[i], labels=labels_of(i))

    say(f"logging {n:,} artifacts in batch mode, the outcome learned at the end")
    started = time.perf_counter()
    log_batch(0, n, "file")
    seconds = time.perf_counter() - started
    rate = n / seconds
    say(f"batch: {rate:,.0f} artifacts/s")
    cat.wait = False  # durable only: the write path alone, without the projection's work
    started = time.perf_counter()
    log_batch(half, n, "durable")
    rate_durable = n / (time.perf_counter() - started)
    say(f"batch, wait=False: {rate_durable:,.0f} artifacts/s")

    def sync_logs(prefix: str, first: int) -> list[float]:
        return latencies(
            lambda i: cat.log_artifact(
                f"{prefix}-{i + 2:05d}", local_path=files[first + i], labels=labels_of(i)
            ),
            n_sync,
            warmup=2,
        )

    say(f"logging {n_sync} artifacts one synchronous call at a time")
    cat.wait = True
    sync = sync_logs("sync", n + 2)
    cat.wait = False
    sync_durable = sync_logs("sync-durable", half + n + 2)
    cat.wait = True
    say(f"sync: p50 {p50(sync):.2f} ms; wait=False {p50(sync_durable):.2f} ms")

    mlflow_ms: list[float] = []
    mlflow_rate = None
    missing = mlflow_baseline.available()
    if missing is None:
        say(f"MLflow: log_artifact + set_tag of {n_mlflow:,} files (SQLite backend)")
        mlflow_ms, mlflow_s = mlflow_baseline.log_files(
            ctx.workdir / "mlflow", files[:n_mlflow], [labels_of(i) for i in range(n_mlflow)]
        )
        mlflow_rate = n_mlflow / mlflow_s
        say(f"MLflow: {mlflow_rate:,.0f} artifacts/s, p50 {p50(mlflow_ms):.1f} ms")
    note_mlflow = (
        f"MLflow: {n_mlflow:,} files, one run, log_artifact + set_tag each"
        if missing is None
        else f"no MLflow baseline: {missing}"
    )
    results = [
        Result(
            "B1",
            f"SDK log, batch mode ({n:,} × 1 KiB files with labels)",
            rate,
            "artifacts/s",
            target="≥ 3,000/s",
            met=rate >= 3_000,
            notes="catalog.batch(): put_file each, one sync and one append at the end",
        ),
        Result(
            "B1",
            "SDK log, batch mode vs MLflow log_artifact + set_tag",
            rate,
            "artifacts/s",
            baseline=mlflow_rate,
            baseline_label="MLflow",
            target="≥ 10×",
            met=None if mlflow_rate is None else rate >= 10 * mlflow_rate,
            notes=note_mlflow,
        ),
        Result(
            "B1",
            "SDK log, batch mode, wait=False (durable; the outcome not learned)",
            rate_durable,
            "artifacts/s",
            baseline=mlflow_rate,
            baseline_label="MLflow",
            notes="the write path alone: what the batch above pays before its outcome check",
        ),
        Result(
            "B1",
            "SDK log_artifact, one synchronous call, outcome learned (the default) — p50",
            p50(sync),
            "ms",
            baseline=p50(mlflow_ms) if mlflow_ms else None,
            baseline_label="MLflow",
            higher_is_better=False,
            notes=(
                f"bytes and event fsynced, then the event applied to this process's "
                f"projection and its outcome read; p90 {p90(sync):.1f} ms; {n_sync} calls"
                + (f"; MLflow p90 {p90(mlflow_ms):.1f} ms" if mlflow_ms else "")
            ),
        ),
        Result(
            "B1",
            "SDK log_artifact, one synchronous call, wait=False — p50",
            p50(sync_durable),
            "ms",
            baseline=p50(mlflow_ms) if mlflow_ms else None,
            baseline_label="MLflow",
            higher_is_better=False,
            notes=f"bytes and event fsynced before it returns; p90 {p90(sync_durable):.1f} ms",
        ),
    ]
    if not ctx.quick and any(r.met is False for r in results):
        sample = min(n, 2_000)
        files += make_files(ctx.workdir / "more", sample)
        text = profile(lambda: log_batch(len(files) - sample, sample, "prof"), top=15)
        for r in results:
            if r.met is False:
                r.profile = f"(cProfile of batch-logging {sample:,} more files)\n{text}"
    cat.close()
    return results


if __name__ == "__main__":
    bench_main("log_rate", run)
