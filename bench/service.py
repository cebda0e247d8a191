"""B7 — the catalog service: what a fresh job pod pays, and reads under load.

    python -m bench.service [--quick]      (or as part of python -m bench)

For each history length (10,000 / 100,000 / 1,000,000 events; --quick:
1,000 / 10,000 / 30,000) a real embedded log is written (:mod:`bench.events`),
rebuilt into the service's projection (what ``catalog replay`` runs), and
``catalog serve`` is started on it as a real process. Then, with only
``CATALOG_API`` (and the log and artifact path, where writes go) set and an
empty disk otherwise, as in a job pod:

- ``catalog log`` of a 1 KiB file, end to end (Python start included, its
  outcome checked): the p50 of 10 runs, at every history length (flat?);

at the longest history:

- ``catalog show URI`` end to end: the p50 of 10 runs;
- the SDK's first ``get_artifact("store://…:prod")`` in a fresh interpreter
  (connection set-up included): the p50 of 15 interpreters;
- the baseline: the same ``catalog show`` in local mode from an empty
  projection file (what every fresh process paid before the service: a
  catch-up of the whole log), one run;
- 8 client processes resolving random URIs over keep-alive connections for
  20 s (--quick: 5 s) while a writer appends 1,000 events/s: requests per
  second and the p50 / p99 latency, and how far behind the service ended.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import events
from bench.common import ROOT, Context, Result, bench_main, child_env, p50, say

CLIENTS = 8
ARRIVALS = 1_000  # events/s while the clients read


def _env(root: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in child_env().items() if not k.startswith("CATALOG_")}
    env.update(
        CATALOG_HOME=str(root / "pod"),  # empty: no projection file, as on a fresh pod
        CATALOG_LOG=f"file://{root / 'events.db'}",
        CATALOG_ARTIFACT_PATH=str(root / "artifacts"),
    )
    if url:
        env["CATALOG_API"] = url
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(root: Path, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """``catalog serve`` on ``root``'s log and store (``extra``: more of its environment)."""
    port = _free_port()
    env = {**_env(root, None), **extra}
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "serve", "--port", str(port), "--no-ui"]
        + ["--db", str(root / "served.duckdb")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as r:
                if json.loads(r.read())["ready"]:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("catalog serve did not start")


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "catalog.cli", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    return (time.perf_counter() - started) * 1000


def _history(ctx: Context, n: int) -> Path:
    from catalog.consumers.replay import rebuild
    from catalog.log import open_log

    root = ctx.workdir / f"history-{n}"
    root.mkdir()
    url = f"file://{root / 'events.db'}"
    started = time.perf_counter()
    events.write_log(url, n)
    with open_log(url) as log:
        rebuild(log, str(root / "served.duckdb"))
    say(f"history of {n:,} events written and projected in {time.perf_counter() - started:.0f} s")
    return root


FIRST_GET = r"""
import json, sys, time
t0 = time.perf_counter()
from catalog import Catalog
cat = Catalog()
t1 = time.perf_counter()
art = cat.get_artifact(sys.argv[1])
t2 = time.perf_counter()
again = [time.perf_counter()]
for _ in range(20):
    cat.get_artifact(sys.argv[1])
    again.append(time.perf_counter())
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000,
                  "warm_ms": sorted(b - a for a, b in zip(again, again[1:]))[10] * 1000}))
"""

CLIENT = r"""
import http.client, json, random, sys, time
host, port, seconds, keys, seed = sys.argv[1], *map(float, sys.argv[2:6])
port, keys, seed = int(port), int(keys), int(seed)
rng = random.Random(seed)
conn = http.client.HTTPConnection(host, port, timeout=30)
times, errors = [], 0
sys.stdout.write("ready\n"); sys.stdout.flush(); sys.stdin.readline()
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    key = f"key-{rng.randrange(keys):06d}"
    tag = ":prod" if rng.random() < 0.2 else ""
    t0 = time.perf_counter()
    conn.request("GET", f"/api/v1/artifacts/resolve?uri=store://datasets/bench/{key}{tag}")
    response = conn.getresponse()
    response.read()
    times.append(time.perf_counter() - t0)
    errors += response.status != 200
print(json.dumps({"times": times, "errors": errors}))
"""


def _arrivals(url: str, seconds: float, rate: int) -> subprocess.Popen[str]:
    """A writer appending ``rate`` events/s of a project of their own for ``seconds``."""
    code = r"""
import hashlib, sys, time
from catalog.events.codec import default_codec
from catalog.events.model import ArtifactLogged, Producer, new_event
from catalog.log import Message, open_log
url, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
codec = default_codec()
producer = Producer(kind="client", name="load", owner="load")
total = int(seconds * rate)
msgs = []
for i in range(total):
    uid = hashlib.sha256(f"load-{i}".encode()).hexdigest()[:32]
    ev = new_event("load", f"load-{i % 5000}", ArtifactLogged(uid=uid, kind="artifact",
                   producer=producer, labels={"i": str(i)}), "load")
    msgs.append(Message(ev.partition_key, codec.encode(ev), (("type", b"ArtifactLogged"),)))
sys.stdout.write("ready\n"); sys.stdout.flush(); sys.stdin.readline()
step = 0.05
per = max(1, int(rate * step))
with open_log(url) as log:
    start = time.perf_counter()
    for i in range(0, total, per):
        log.append(msgs[i : i + per])
        wake = start + (i // per + 1) * step
        time.sleep(max(0.0, wake - time.perf_counter()))
print(total)
"""
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(seconds), str(rate)],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(root: Path, url: str, keys: int, seconds: float, server_pid: int) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, "127.0.0.1", str(port), str(seconds), str(keys), str(n)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(CLIENTS)
    ]
    writer = _arrivals(f"file://{root / 'events.db'}", seconds, ARRIVALS)
    cpu_before = _cpu_seconds(server_pid)
    for proc in [*clients, writer]:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in [*clients, writer]:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [json.loads(p.communicate(timeout=seconds + 120)[0]) for p in clients]
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(server_pid) - cpu_before
    appended = int(writer.communicate(timeout=120)[0].strip() or 0)
    times = sorted(t for out in outputs for t in out["times"])
    with urllib.request.urlopen(url + "/api/v1/status", timeout=10) as r:
        status = json.loads(r.read())
    return {
        "requests": len(times),
        "errors": sum(out["errors"] for out in outputs),
        "rate": len(times) / elapsed,
        "p50_ms": times[len(times) // 2] * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
        "appended": appended,
        "lag_after": status["lag"],
        "server_cpu_ms": cpu / max(1, len(times)) * 1000,
    }


def run(ctx: Context) -> list[Result]:
    sizes = [ctx.scale(10_000, 1_000), ctx.scale(100_000, 10_000), ctx.scale(1_000_000, 30_000)]
    load_seconds = ctx.scale(20, 5)
    results: list[Result] = []
    (ctx.workdir / "f.txt").write_bytes(random.Random(1).randbytes(1024))
    log_p50: dict[int, float] = {}
    for n in sizes:
        root = _history(ctx, n)
        uri = _prod_uri(root)
        proc, url = _serve(root)
        try:
            env = _env(root, url)
            times = [
                _cli(env, "log", str(ctx.workdir / "f.txt"), "--key", f"pod-file-{i}")
                for i in range(10)
            ]
            log_p50[n] = p50(times)
            say(f"{n:,} events: catalog log p50 {log_p50[n]:.0f} ms")
            if n != sizes[-1]:
                continue
            show = [_cli(env, "show", uri) for _ in range(10)]
            firsts = [
                json.loads(
                    subprocess.run(
                        [sys.executable, "-c", FIRST_GET, uri],
                        cwd=ROOT,
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                for _ in range(15)
            ]
            first_ms = p50([f["first_ms"] for f in firsts])
            say(f"show p50 {p50(show):.0f} ms; first get p50 {first_ms:.1f} ms")
            load = _load(root, url, n // 10, load_seconds, proc.pid)
            say(f"load: {load}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        # the baseline: local mode, an empty projection file (a full catch-up first)
        local_env = {**_env(root, None), "CATALOG_DB": str(root / "pod" / "fresh.duckdb")}
        baseline = _cli(local_env, "show", uri, timeout=1800)
        say(f"baseline: local show from an empty projection file {baseline / 1000:.1f} s")

    scale = f"{sizes[-1]:,} events of history"
    first = p50([f["first_ms"] for f in firsts])
    flat = max(log_p50.values()) / min(log_p50.values())
    results += [
        Result(
            "B7",
            f"fresh process, empty disk: SDK get_artifact(store://…:prod) via the service, "
            f"first call — p50 ({scale})",
            first,
            "ms",
            baseline=baseline,
            baseline_label="local mode, empty projection file (catch-up of the whole log)",
            target="≤ 50 ms",
            met=first <= 50,
            higher_is_better=False,
            notes=f"15 fresh interpreters; import {p50([f['import_ms'] for f in firsts]):.0f} ms "
            f"before it; warm calls p50 {p50([f['warm_ms'] for f in firsts]):.1f} ms",
        ),
        Result(
            "B7",
            f"fresh process: `catalog show URI` end to end, Python start included — p50 ({scale})",
            p50(show),
            "ms",
            baseline=baseline,
            baseline_label="the same command in local mode from an empty projection file",
            target="≤ 600 ms",
            met=p50(show) <= 600,
            higher_is_better=False,
            notes="10 runs",
        ),
    ]
    for n in sizes:
        results.append(
            Result(
                "B7",
                f"fresh process: `catalog log` of a 1 KiB file, end to end, outcome checked "
                f"— p50 ({n:,} events of history)",
                log_p50[n],
                "ms",
                target="≤ 600 ms, flat",
                met=log_p50[n] <= 600 and flat <= 1.5,
                higher_is_better=False,
                notes=f"10 runs; largest / smallest p50 over the histories: {flat:.2f}",
            )
        )
    results += [
        Result(
            "B7",
            f"service: {CLIENTS} client processes resolving URIs while {ARRIVALS:,} events/s "
            f"arrive — requests/s ({scale})",
            load["rate"],
            "req/s",
            target="≥ 500 req/s",
            met=load["rate"] >= 500,
            notes=f"{load['requests']:,} requests in {load_seconds} s, {load['errors']} errors; "
            f"{load['appended']:,} events appended meanwhile, lag at the end "
            f"{load['lag_after']:,}; service CPU {load['server_cpu_ms']:.2f} ms a request. "
            "What bounds it: a resolve is three DuckDB point lookups (the key's tags, the "
            "version's row, its sources), ~2.3 ms of CPU at a million versions (DuckDB "
            "costs ~0.2 ms a statement even for SELECT 1, ~0.8 ms to fetch one 25-column "
            "row), on 2 cores shared with the 8 clients and the writer",
        ),
        Result(
            "B7",
            f"service: the same, latency p99 ({scale})",
            load["p99_ms"],
            "ms",
            target="≤ 50 ms",
            met=load["p99_ms"] <= 50,
            higher_is_better=False,
            notes=f"p50 {load['p50_ms']:.1f} ms; 2 cores shared by the service, "
            f"{CLIENTS} clients and the writer",
        ),
    ]
    return results


def _prod_uri(root: Path) -> str:
    """A ``:prod`` URI of the generated history (the tag the stream moves around)."""
    import duckdb

    con = duckdb.connect(str(root / "served.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT a.category, t.key FROM tags t JOIN artifacts a USING (uid) "
            "WHERE t.tag = 'prod' ORDER BY t.key LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    assert row is not None, "the generated history has no prod tag"
    return f"store://{row[0]}/{events.PROJECT}/{row[1]}:prod"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    bench_main("service", run)
