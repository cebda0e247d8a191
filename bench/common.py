"""Shared helpers of the benchmark suite: results, timing, memory, profiles, subprocesses.

Every benchmark module exposes ``run(ctx) -> list[Result]``; the suite
(``python -m bench``) runs each one in its own interpreter
(``python -m bench.<module> --json OUT``) so that one benchmark's memory,
caches and imports never colour another's figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One row of the results table.

    ``ours`` and ``baseline`` are numbers in ``unit``; ``higher_is_better``
    says which way the ratio is taken (ratio > 1 always means ours is better).
    ``met`` is None when there is no target (a figure that is only reported).
    """

    bench: str
    figure: str
    ours: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    higher_is_better: bool = True
    notes: str = ""
    profile: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.baseline:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ratio"] = self.ratio
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Result:
        doc = {k: v for k, v in doc.items() if k != "ratio"}
        return cls(**doc)


@dataclass
class Context:
    """What a benchmark is told: quick or full, where to work, its own options."""

    quick: bool
    workdir: Path
    options: dict[str, Any] = field(default_factory=dict)

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# ------------------------------------------------------------------ printing

_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress on stdout, stamped with the seconds since this process started."""
    print(f"  [{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for humans: thousands separators, 3 significant digits below 100."""
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


# ------------------------------------------------------------------ timing


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """``(work(), seconds)``."""
    started = time.perf_counter()
    value = work()
    return value, time.perf_counter() - started


def latencies(
    call: Callable[[int], Any], count: int, *, warmup: int = 2, budget_s: float | None = None
) -> list[float]:
    """Milliseconds of ``count`` calls of ``call(i)`` (after ``warmup`` unmeasured ones).

    Stops early once ``budget_s`` seconds are spent (at least 3 calls are kept).
    """
    for i in range(warmup):
        call(-1 - i)
    times: list[float] = []
    started = time.perf_counter()
    for i in range(count):
        began = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - began) * 1000)
        if budget_s is not None and len(times) >= 3 and time.perf_counter() - started > budget_s:
            break
    return times


def p50(times: Sequence[float]) -> float:
    return float(statistics.median(times))


def p90(times: Sequence[float]) -> float:
    ordered = sorted(times)
    return float(ordered[max(0, round(len(ordered) * 0.9) - 1)])


# ------------------------------------------------------------------ memory


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB: Linux's ``VmHWM``.

    Not ``ru_maxrss``: Linux carries it over ``exec``, so a child started by a
    process that once held 1 GB reports at least 1 GB (measured: 811 MB for a
    child whose own peak was 9 MB). Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    """This process's resident set size now, in MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Samples this process's RSS in a thread (every ``interval`` s): the peak of a phase.

    ``ru_maxrss`` is a lifetime peak; a phase that uses less than an earlier one
    (imports, data generation) would be invisible in it.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start_mb = rss_mb()
        self.peak_mb = self.start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.start_mb


def io_counters() -> dict[str, int]:
    """This process's /proc/self/io counters (rchar, wchar, read_bytes, write_bytes, ...)."""
    counters = {}
    with open("/proc/self/io") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            counters[name.strip()] = int(value)
    return counters


# ------------------------------------------------------------------ profiles

_SITE = re.compile(r".*/site-packages/")


def _where(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a builtin or C function: pstats' "{method 'x' of ...}"
    path = filename
    if path.startswith(str(ROOT) + "/"):
        path = path[len(str(ROOT)) + 1 :]
    path = _SITE.sub("", path)
    return f"{path}:{line}({name})"


def profile(work: Callable[[], Any], top: int = 12) -> str:
    """Run ``work`` under cProfile: the ``top`` functions by own time, then the project's
    own functions (catalog/, consumers/) by cumulative time, as text lines."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in (
        stats.stats.items()  # type: ignore[attr-defined]
    ):
        rows.append((tottime, cumtime, calls, _where(filename, line, name)))
    rows.sort(reverse=True)
    header = f"{'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>9}  function"
    lines = [f"by own time (total {total:.2f} s profiled):", header]
    for tottime, cumtime, calls, where in rows[:top]:
        share = 100 * tottime / total if total else 0
        lines.append(f"{tottime:7.2f} {share:5.1f}% {cumtime:7.2f} {calls:9d}  {where}")
    ours = [r for r in rows if r[3].startswith(("catalog/", "consumers/"))]
    ours.sort(key=lambda r: r[1], reverse=True)
    lines += ["", "catalog/ and consumers/ functions by cumulative time:", header]
    for tottime, cumtime, calls, where in ours[:top]:
        share = 100 * tottime / total if total else 0
        lines.append(f"{tottime:7.2f} {share:5.1f}% {cumtime:7.2f} {calls:9d}  {where}")
    return "\n".join(lines)


def explain_analyze(con: Any, sql: str, params: Sequence[Any], top: int = 8) -> str:
    """DuckDB's EXPLAIN ANALYZE of ``sql``: the ``top`` operators by time, as text."""
    con.execute("PRAGMA enable_profiling = 'json'")
    try:
        rows = con.execute("EXPLAIN ANALYZE " + sql, list(params)).fetchall()
    finally:
        con.execute("PRAGMA disable_profiling")
    return _operators(rows[0][1] if rows and len(rows[0]) > 1 else "", top)


def duckdb_profile(con: Any, call: Callable[[], Any], top: int = 8) -> str:
    """DuckDB's profile of the last query ``call()`` runs on ``con``, as text."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{path}'")
    try:
        call()
    finally:
        con.execute("PRAGMA disable_profiling")
    try:
        with open(path) as fh:
            return _operators(fh.read(), top)
    finally:
        os.unlink(path)


def _operators(text: str, top: int) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:2000]
    found: list[tuple[float, str, int]] = []

    def walk(node: dict[str, Any]) -> None:
        name = node.get("name") or node.get("operator_name") or node.get("type") or "?"
        seconds = float(node.get("timing", node.get("operator_timing", 0)) or 0)
        rows = node.get("intermediate_rows", node.get("operator_cardinality", 0))
        extra = node.get("extra_info") or {}
        detail = ""
        if isinstance(extra, dict):
            for key in ("Table", "Filters", "Conditions", "Join Type", "Index"):
                if key in extra:
                    detail += f" {key}={str(extra[key])[:90]}"
        found.append((seconds, f"{str(name).strip()}{detail}", int(rows or 0)))
        for child in node.get("children", []):
            walk(child)

    roots = doc.get("operator", [doc])
    for root in roots if isinstance(roots, list) else [roots]:
        walk(root)
    found.sort(reverse=True)
    query = doc.get("query", {})
    total = float(query.get("total_time", doc.get("latency", 0)) or 0)
    scanned = query.get("total_rows_scanned")
    head = f"total {total * 1000:.1f} ms" + (f", {scanned:,} rows scanned" if scanned else "")
    for phase in ("planner", "optimizer", "physical_planner"):
        spent = (doc.get(phase) or {}).get("total_time")
        if spent:
            head += f", {phase} {float(spent) * 1000:.1f} ms"
    lines = [f"{'ms':>8} {'rows':>10}  operator (EXPLAIN ANALYZE; {head})"]
    for seconds, name, cardinality in found[:top]:
        lines.append(f"{seconds * 1000:8.2f} {cardinality:10d}  {name}")
    return "\n".join(lines)


# ------------------------------------------------------------------ processes


@contextmanager
def workdir(prefix: str = "catalog-bench-") -> Iterator[Path]:
    base = os.environ.get("CATALOG_BENCH_TMP")
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as tmp:
        yield Path(tmp)


def child_env() -> dict[str, str]:
    """The environment of a benchmark's own subprocesses: the repo importable, quiet warnings."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return env


def run_python(code_module: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m code_module *args --json OUT`` and return the JSON it wrote.

    Output streams through (progress). The child writes its figures, including
    its own peak RSS, to OUT.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    try:
        subprocess.run(
            [sys.executable, "-m", code_module, *args, "--json", out],
            check=True,
            cwd=ROOT,
            env=child_env(),
            timeout=timeout,
        )
        with open(out) as fh:
            result: dict[str, Any] = json.load(fh)
        return result
    finally:
        os.unlink(out)


def write_json(path: str, doc: Any) -> None:
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1, default=str)


def bench_main(name: str, run: Callable[[Context], list[Result]]) -> None:
    """``python -m bench.<module> [--quick] [--json OUT] [--workdir DIR] [-o key=value]``."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--quick", action="store_true", help="small scale (seconds, not minutes)")
    parser.add_argument("--json", help="write the results here (used by python -m bench)")
    parser.add_argument("--workdir", help="work directory (default: a temporary one)")
    parser.add_argument(
        "-o", dest="options", action="append", default=[], help="benchmark option key=value"
    )
    args = parser.parse_args()
    options: dict[str, Any] = {}
    for item in args.options:
        key, _, value = item.partition("=")
        options[key] = value
    if args.workdir:
        path = Path(args.workdir)
        path.mkdir(parents=True, exist_ok=True)
        results = run(Context(args.quick, path, options))
    else:
        with workdir() as tmp:
            results = run(Context(args.quick, tmp, options))
    if args.json:
        write_json(args.json, [r.to_json() for r in results])
    else:
        for r in results:
            print(f"{r.figure}: {fmt(r.ours, r.unit)} (baseline {fmt(r.baseline, r.unit)})")
