"""Phase timers: where a projection's time goes, at no measurable cost.

:func:`timed` wraps the steps of :meth:`consumers.projection.Projection._apply`,
each of which runs once a batch (decode, drop duplicates, load, rules, write
the changed rows, write the ``events`` rows), and adds up their wall time;
the rest of a batch's time is its COMMIT and bookkeeping, and what is left of
the caller's time is reading the log. :class:`Windows` snapshots the totals as
the events go by, so a table can show the first and the last stretch of a long
run side by side: the steps whose cost grows with the tables stand out.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from catalog.consumers import schema
from catalog.consumers.columns import LoggedColumns
from catalog.consumers.fold import Fold
from catalog.consumers.projection import Projection

#: (method of Projection, phase name), in the order a batch runs them
STEPS = (
    ("_decode", "decode"),
    ("_drop_duplicates", "drop duplicates"),
    ("_load", "load stored state"),
    ("_fold", "rules"),
    ("_flush", "write changed rows"),
)
ORDER = (
    "read the log",
    *(name for _, name in STEPS),
    "write events rows",
    "COMMIT and the rest",
)


@contextmanager
def timed() -> Iterator[Counter[str]]:
    """While inside, every Projection's steps add their seconds to the counter yielded
    (``apply``: the whole of each batch; ``plain logs``: a count, not seconds)."""
    totals: Counter[str] = Counter()
    saved = {name: getattr(Projection, name) for name in ("_apply", "_insert", "_insert_table")}
    saved.update({method: getattr(Projection, method) for method, _ in STEPS})
    events_table, log_plain = LoggedColumns.events_table, Fold.log_plain

    def wrap(method: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed_step(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - started

        return timed_step

    # The events rows: those of events applied in columns are built by
    # events_table and written by _insert_table, the others go through _insert
    # (rows to Arrow, then _insert_table). Other tables: the changed rows (in
    # _flush), dead letters, positions.
    inside: list[bool] = []

    def insert(self: Projection, table: schema.Table, rows: Any) -> None:
        if table is not schema.EVENTS:
            return saved["_insert"](self, table, rows)
        inside.append(True)
        try:
            return events_rows(saved["_insert"])(self, table, rows)  # type: ignore[no-any-return]
        finally:
            inside.pop()

    def insert_table(self: Projection, table: schema.Table, rows: Any) -> None:
        if table is not schema.EVENTS or inside:  # not events rows, or timed by insert
            return saved["_insert_table"](self, table, rows)
        return events_rows(saved["_insert_table"])(self, table, rows)  # type: ignore[no-any-return]

    def plain(self: Fold, logs: Any) -> None:
        logs = list(logs)
        totals["plain logs"] += len(logs)
        log_plain(self, logs)

    events_rows = functools.partial(wrap, name="write events rows")
    Projection._apply = wrap(saved["_apply"], "apply")  # type: ignore[method-assign]
    Projection._insert = insert  # type: ignore[method-assign]
    Projection._insert_table = insert_table  # type: ignore[method-assign]
    LoggedColumns.events_table = events_rows(events_table)  # type: ignore[method-assign]
    Fold.log_plain = plain  # type: ignore[method-assign]
    for method, name in STEPS:
        setattr(Projection, method, wrap(saved[method], name))
    try:
        yield totals
    finally:
        for name, method in saved.items():
            setattr(Projection, name, method)
        LoggedColumns.events_table = events_table  # type: ignore[method-assign]
        Fold.log_plain = log_plain  # type: ignore[method-assign]


class Windows:
    """Snapshots of (events, wall seconds, phase totals) as a run goes."""

    def __init__(self, totals: Counter[str]) -> None:
        self.totals = totals
        self.started = time.perf_counter()
        self.snaps: list[tuple[int, float, Counter[str]]] = [(0, 0.0, Counter())]

    def snap(self, events: int) -> None:
        self.snaps.append((events, time.perf_counter() - self.started, Counter(self.totals)))

    def stretches(self, size: int) -> list[dict[str, Any]]:
        """:meth:`window` over the first ``size`` events after the first batch (its
        one-off costs, imports and setup, left out) and over the last ``size``."""
        start = self.snaps[1][0] if len(self.snaps) > 2 else 0
        end = self.snaps[-1][0]
        size = min(size, (end - start) // 2)
        return [self.window(start, start + size), self.window(end - size, end)]

    def window(self, first: int, last: int) -> dict[str, Any]:
        """µs an event per phase between the snapshots nearest events ``first`` and ``last``."""
        a = min(self.snaps, key=lambda s: abs(s[0] - first))
        b = min(self.snaps, key=lambda s: abs(s[0] - last))
        events = b[0] - a[0]
        if events <= 0:
            return {"from": a[0], "to": b[0], "us": {}}
        spent = b[2] - a[2]
        apply = spent.pop("apply", 0.0)
        spent.pop("plain logs", None)
        us = {name: spent.get(name, 0.0) * 1e6 / events for name in ORDER}
        us["read the log"] = max(0.0, (b[1] - a[1]) - apply) * 1e6 / events
        us["COMMIT and the rest"] = max(0.0, apply - sum(spent.values())) * 1e6 / events
        return {"from": a[0], "to": b[0], "us": us}


def table(windows: list[dict[str, Any]]) -> str:
    """The windows side by side, µs an event per phase, as text."""
    heads = [f"events {w['from']:,}-{w['to']:,}" for w in windows]
    width = max(len(name) for name in (*ORDER, "all"))
    lines = [f"{'µs an event':<{width}}  " + "  ".join(f"{h:>22}" for h in heads)]
    for name in (*ORDER, "all"):
        cells = [
            sum(w["us"].values()) if name == "all" else w["us"].get(name, 0.0) for w in windows
        ]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>22.1f}" for c in cells))
    return "\n".join(lines)
