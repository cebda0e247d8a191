"""B6 — dataset statistics of 10,000,000 rows × 10 numeric columns.

Ours: ``catalog.artifacts.dataset.describe_frame(df, stats=True)`` — what
``log_dataset(..., stats=True)`` records in the version's spec (length, schema,
preview, and per column count, mean, std, min, quartiles, max and a 20-bin
histogram). Baseline: pandas ``DataFrame.describe()`` plus ``numpy.histogram``
(20 bins) of every column, the same figures. Both on the same frame (float64
normal noise, seed fixed), best of 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Context, Result, bench_main, profile, say
from catalog.artifacts.dataset import describe_frame


def baseline(df: pd.DataFrame) -> dict[str, Any]:
    described = df.describe()
    hists = {c: np.histogram(df[c].to_numpy(), bins=20) for c in df.columns}
    return {"describe": described, "hist": hists}


def best(work: Callable[[], Any], tries: int = 2) -> float:
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def run(ctx: Context) -> list[Result]:
    rows = ctx.scale(10_000_000, 1_000_000)
    say(f"B6: a frame of {rows:,} rows × 10 float64 columns")
    rng = np.random.default_rng(6)
    df = pd.DataFrame(rng.standard_normal((rows, 10)), columns=[f"c{i}" for i in range(10)])
    spec = describe_frame(df, stats=True)
    assert len(spec["stats"]) == 10 and "hist" in spec["stats"]["c0"]
    ours = best(lambda: describe_frame(df, stats=True))
    say(f"describe_frame: {ours:.2f} s")
    base = best(lambda: baseline(df))
    say(f"pandas describe() + numpy.histogram: {base:.2f} s")
    target = 10 * rows / 10_000_000
    label = f"{rows:,} rows × 10 columns" + (
        " (--quick; the target is for 10,000,000 rows)" if ctx.quick else ""
    )
    result = Result(
        "B6",
        f"dataset stats, {label}",
        ours,
        "s",
        baseline=base,
        baseline_label="pandas describe + np.histogram",
        target=f"≤ {target:g} s",
        met=ours <= target,
        higher_is_better=False,
        notes="describe_frame(df, stats=True), as log_dataset(stats=True); best of 2",
    )
    if not ctx.quick and result.met is False:
        result.profile = profile(lambda: describe_frame(df, stats=True), top=10)
    return [result]


if __name__ == "__main__":
    bench_main("stats", run)
