"""The benchmark suite: ``python -m bench [NAME ...] [--quick] [--out DIR]`` (``make bench``).

Runs each benchmark in its own interpreter, in order, then writes
``benchmarks.md`` and ``benchmarks.json`` to ``docs/`` (a full run) or to a
temporary directory (``--quick``, unless ``--out`` is given). A benchmark that
misses its target, or even fails, is reported, never fatal: the exit status is
0 unless the suite itself breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import ROOT, Result, child_env

#: module, what it measures — in the order they run and appear
BENCHMARKS = {
    "log_rate": "B1: SDK logging rate vs MLflow",
    "projection": "B2: projection rate (embedded, Kafka) vs a naive projector",
    "replay": "B3: rebuild a projection from 1,000,000 events: time, peak RSS",
    "queries": "B4: queries at 1,000,000 versions vs MLflow search_runs",
    "store": "B5: content store put of 1 GiB vs sha256sum; dedup",
    "stats": "B6: dataset stats of 10,000,000 rows vs pandas",
    "web_pages": "web UI page p50s at 1,000,000 versions",
    "kafka_vs_embedded": "Kafka vs embedded log: SDK log, read, projection",
    "service": "B7: the catalog service: fresh job pods, reads under load",
    "snapshot": "B8: replicas in seconds: publish a snapshot, start a replica from it",
    "service_writes": "B9: writes and bytes through the catalog service (a team without Kafka)",
}


def run_one(name: str, quick: bool) -> tuple[list[Result], dict[str, object]]:
    """Run ``python -m bench.NAME`` and collect its rows (one FAILED row if it fails)."""
    started = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    try:
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else []), "--json", out],
            cwd=ROOT,
            env=child_env(),
        )
        seconds = time.monotonic() - started
        if proc.returncode == 0:
            with open(out) as fh:
                results = [Result.from_json(doc) for doc in json.load(fh)]
            status = "ok"
        else:
            results = [
                Result(
                    name,
                    BENCHMARKS[name],
                    None,
                    "",
                    notes=f"FAILED (exit {proc.returncode}): see the output of `python -m "
                    f"bench {name}`",
                )
            ]
            status = f"failed ({proc.returncode})"
    finally:
        os.unlink(out)
    for r in results:
        r.extra["module"] = name
    info = {
        "quick": quick,
        "seconds": seconds,
        "when": when,
        "status": status,
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }
    return results, info


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default all): {list(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="small data, about 2 minutes")
    parser.add_argument(
        "--out", help="directory for benchmarks.md/.json (default docs/; quick: a temp dir)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        for name, what in BENCHMARKS.items():
            print(f"{name:20} {what}")
        return
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; one of {list(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.gettempdir()) / "catalog-bench-quick"
    else:
        out = ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "benchmarks.json", out / "benchmarks.md"

    started = time.monotonic()
    all_results: list[Result] = []
    ran: dict[str, dict[str, object]] = {}
    for name in names:
        print(f"\n== {name}: {BENCHMARKS[name]}{' (quick)' if args.quick else ''}", flush=True)
        results, info = run_one(name, args.quick)
        all_results += results
        ran[name] = info
        for r in results:
            met = {True: "met", False: "NOT MET", None: ""}[r.met]
            ratio = f"  ratio {r.ratio:.2f}×" if r.ratio else ""
            ours = "—" if r.ours is None else f"{r.ours:,.3g} {r.unit}"
            print(f"   {r.figure}: {ours}{ratio}  {r.target} {met}", flush=True)

    doc = report.load(json_path)
    if any(run.get("quick") != args.quick for run in doc.get("runs", {}).values()):
        doc = {"runs": {}, "results": []}  # never mix quick and full figures on one page
    report.merge(doc, ran, all_results)
    doc["environment"] = report.environment()
    doc["quick"] = args.quick
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md_path.write_text(report.markdown(doc, list(BENCHMARKS), args.quick))
    print(f"\nwrote {md_path} and {json_path} in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
