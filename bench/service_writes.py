"""B9 — writes through the catalog service: a team without Kafka.

    python -m bench.service_writes [--quick]      (or as part of python -m bench)

``catalog serve`` runs as a real process on an embedded log and a local
artifact store; the client has only ``CATALOG_API`` and a write token (no
log, no store of its own), so every byte and event crosses loopback HTTP:

- the SDK logging 1 KiB files in batches of 100 (``Catalog.batch``),
  artifacts/s, against MLflow's client logging the same files (``log_artifact``
  + ``set_tag``) to its own tracking server with ``--serve-artifacts`` — the
  full ``mlflow`` package, installed by this bench in a venv of its own
  (its pins clash with ours) under ``~/.cache/catalog-bench``;
- one synchronous ``log_artifact`` of a 1 KiB file (its outcome learned),
  p50 of 200;
- the upload of a 1 GiB file (--quick: 128 MiB) through the service, MB/s,
  against the local ``ObjectStore.put_file`` rate of the same file on the
  same disk (the floor), and the client's and the server's memory growth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import Context, Result, bench_main, p50, say
from bench.log_rate import make_files
from bench.service import _free_port, _serve

TOKEN = "bench-write-token-0123456789"
MLFLOW_VENV = Path.home() / ".cache" / "catalog-bench" / "mlflow-server"


def _wait_http(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Peak:
    """The peak RSS of a process, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = _rss_mb(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> float:
        return self.peak - self.start


def _catalog(url: str) -> Any:
    from catalog import Catalog

    for name in [n for n in os.environ if n.startswith("CATALOG_")]:
        del os.environ[name]
    os.environ["CATALOG_TOKEN"] = TOKEN
    return Catalog(api=url, project="bench", actor="bench")


def _mlflow_rate(root: Path, files: list[Path]) -> tuple[float | None, str]:
    """MLflow's client logging ``files`` to ``mlflow server --serve-artifacts``: files/s."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        say(f"installing the full mlflow package into {MLFLOW_VENV} (once)")
        MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow"], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            return None, f"could not install mlflow: {exc}"
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    server = subprocess.Popen(
        [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--host", "127.0.0.1"]
        + ["--port", str(port), "--workers", "1", "--serve-artifacts"]
        + ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
        + ["--artifacts-destination", str(root / "mlflow-artifacts")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", server, "mlflow server", timeout=180)
        client = textwrap.dedent(
            """
            import json, sys, time
            from mlflow.tracking import MlflowClient
            c = MlflowClient(tracking_uri=sys.argv[1])
            eid = c.create_experiment(f"bench-{time.time_ns()}")
            run = c.create_run(eid).info.run_id
            files = sys.argv[2:]
            started = time.perf_counter()
            for i, path in enumerate(files):
                c.log_artifact(run, path, artifact_path=f"file-{i:05d}")
                c.set_tag(run, f"file-{i:05d}", "team=ml")
            print(json.dumps({"seconds": time.perf_counter() - started}))
            """
        )
        done = subprocess.run(
            [str(python), "-c", client, f"http://127.0.0.1:{port}", *map(str, files)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
        seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        return len(files) / seconds, ""
    except (RuntimeError, subprocess.CalledProcessError, ValueError) as exc:
        return None, f"mlflow baseline failed: {exc}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(ctx: Context) -> list[Result]:
    from catalog.store import ObjectStore

    root = ctx.workdir
    n_batch = ctx.scale(2_000, 300)
    n_mlflow = ctx.scale(500, 100)
    n_sync = ctx.scale(200, 50)
    big_mb = ctx.scale(1024, 128)
    files = make_files(root / "files", max(n_batch, n_mlflow))
    proc, url = _serve(root, CATALOG_WRITE_TOKEN=TOKEN)
    try:
        cat = _catalog(url)
        say(f"SDK through the service: {n_batch:,} files of 1 KiB in batches of 100")
        started = time.perf_counter()
        for start in range(0, n_batch, 100):
            with cat.batch():
                for i in range(start, min(start + 100, n_batch)):
                    cat.log_artifact(f"batch{i:05d}", local_path=str(files[i]))
        batch_rate = n_batch / (time.perf_counter() - started)
        say(f"  {batch_rate:,.0f} artifacts/s")

        say(f"one synchronous log_artifact, {n_sync} times")
        times = []
        for i in range(n_sync):
            began = time.perf_counter()
            cat.log_artifact(f"sync{i:04d}", local_path=str(files[i]))
            times.append((time.perf_counter() - began) * 1000)
        sync_p50 = p50(times)
        say(f"  p50 {sync_p50:.1f} ms")

        say(f"upload of {big_mb} MiB: local put_file, then through the service")
        big = root / "big.bin"
        with open(big, "wb") as fh:
            for _ in range(big_mb):
                fh.write(os.urandom(1024 * 1024))
        local = ObjectStore(str(root / "local-store"))
        began = time.perf_counter()
        local.put_file(big)
        local.sync()
        local_rate = big_mb / (time.perf_counter() - began)
        remote = cat.store_for(cat.artifact_path("bench"))
        with _Peak(os.getpid()) as client_mem, _Peak(proc.pid) as server_mem:
            began = time.perf_counter()
            remote.put_file(big)
            remote_rate = big_mb / (time.perf_counter() - began)
        say(
            f"  local {local_rate:,.0f} MB/s, service {remote_rate:,.0f} MB/s; RSS growth "
            f"client {client_mem.growth:.0f} MB, server {server_mem.growth:.0f} MB"
        )
        cat.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    say(f"MLflow: log_artifact + set_tag of {n_mlflow:,} files through mlflow server")
    mlflow_rate, why = _mlflow_rate(root, files[:n_mlflow])
    if mlflow_rate:
        say(f"  {mlflow_rate:,.1f} files/s")
    scale = f"{big_mb} MiB"
    return [
        Result(
            "B9",
            "through the service: SDK batch log of 1 KiB files",
            batch_rate,
            "artifacts/s",
            baseline=mlflow_rate,
            baseline_label="MLflow client to mlflow server --serve-artifacts",
            target="≥ 1,000/s and ≥ 2× MLflow",
            met=batch_rate >= 1000 and (mlflow_rate is None or batch_rate >= 2 * mlflow_rate),
            notes=why or f"{n_batch:,} files, batches of 100; MLflow {n_mlflow:,} files",
        ),
        Result(
            "B9",
            "through the service: one synchronous log_artifact, p50",
            sync_p50,
            "ms",
            target="≤ 10 ms",
            met=sync_p50 <= 10,
            higher_is_better=False,
            notes="a HEAD and a PUT for the bytes, a POST for the event that waits for the "
            "service to apply it and answers its outcome",
        ),
        Result(
            "B9",
            f"through the service: upload of {scale}",
            remote_rate,
            "MB/s",
            baseline=local_rate,
            baseline_label="local ObjectStore.put_file (floor)",
            target="≥ 0.5× local; client and server RSS +≤ 100 MB",
            met=remote_rate >= 0.5 * local_rate
            and client_mem.growth <= 100
            and server_mem.growth <= 100,
            notes=f"RSS growth: client {client_mem.growth:.0f} MB, "
            f"server {server_mem.growth:.0f} MB",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    bench_main("service_writes", run)
