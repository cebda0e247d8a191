"""The floor under B2: what any projector built on this stack must spend per event.

Three stages that no set of rules can skip, each timed alone over the same log
and batches as the projection (``DEFAULT_BATCH`` records a transaction):

- **read**: ``EventLog.read_range``, batch after batch, to the end;
- **decode**: ``Codec.decode_columns`` of each batch (the C kernel into Arrow
  columns; no Python object per event), or record by record for a batch too
  small for columns, as the projection does;
- **write**: the final rows of a finished projection (every table but the
  bookkeeping ones), inserted from Arrow into a fresh projection file in one
  transaction per batch read, each with its share of every table, then
  committed. The real projection writes more than this (rows a later event
  replaces are written, then deleted), so this is a lower bound.

The floor rate, 1 / (read + decode + write) per event, bounds the projection
rate from above: the gap between the two is the rules (the fold) and the
per-event Python around them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from catalog.events import columnar
from catalog.events.codec import default_codec
from catalog.log import EventLog
from consumers.projection import DEFAULT_BATCH, Projection, connect

#: the tables a catch-up fills with the catalog's state (meta, positions and
#: dead letters are a few rows)
TABLES = ("artifacts", "events", "tags", "tag_intervals", "lineage", "projects", "runs")


@dataclass(frozen=True)
class Floor:
    events: int
    read_s: float
    decode_s: float
    write_s: float
    rows: int  # rows written by the write stage
    transactions: int  # one per batch read

    def us(self, seconds: float) -> float:
        return seconds / self.events * 1e6

    @property
    def rate(self) -> float:
        return self.events / (self.read_s + self.decode_s + self.write_s)

    def describe(self, target: float) -> str:
        """The stages per event, next to what a rate of ``target`` events/s allows."""
        return (
            f"read {self.us(self.read_s):.1f} + decode {self.us(self.decode_s):.1f} + "
            f"DuckDB writes {self.us(self.write_s):.1f} µs/event "
            f"({self.rows / self.events:.2f} rows an event, "
            f"{self.events / self.transactions:,.0f} events a transaction); "
            f"{target:,.0f}/s allows {1e6 / target:.0f} µs/event in all"
        )


def measure(log: EventLog, projected: Path, workdir: Path) -> Floor:
    """The floor over ``log`` (all of it), whose finished projection is ``projected``."""
    ends = log.end_offsets()
    batches: list[list[bytes]] = []
    started = time.perf_counter()
    positions: dict[int, int] = {}
    while True:
        records = log.read_range(positions, ends, max_records=DEFAULT_BATCH)
        if not records:
            break
        for r in records:
            positions[r.partition] = r.offset + 1
        batches.append([r.value for r in records])
    read_s = time.perf_counter() - started
    count = sum(map(len, batches))

    codec = default_codec()
    started = time.perf_counter()
    for values in batches:
        if codec.decode_columns(values) is not None:
            continue
        if len(values) >= columnar.MIN_BATCH:
            raise RuntimeError("the columnar decoder is not available here")
        for value in values:  # a short batch: one by one, as the projection decodes it
            codec.decode_json(value)
    decode_s = time.perf_counter() - started
    reads = len(batches)
    del batches

    with connect(str(projected), read_only=True) as con:
        tables = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in TABLES}
    transactions = max(1, reads)
    target = workdir / "floor.duckdb"
    for leftover in (target, Path(f"{target}.wal")):
        leftover.unlink(missing_ok=True)
    with Projection(str(target)) as fresh:  # the same schema, indexes and settings
        con = fresh.con
        started = time.perf_counter()
        for i in range(transactions):
            con.execute("BEGIN")
            for name, tbl in tables.items():
                share = _share(tbl, i, transactions)
                if share.num_rows:
                    cols = ", ".join(f'"{c}"' for c in share.column_names)
                    con.register("_rows", share)
                    con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _rows")
                    con.unregister("_rows")
            con.execute("COMMIT")
        write_s = time.perf_counter() - started
    rows = sum(t.num_rows for t in tables.values())
    return Floor(count, read_s, decode_s, write_s, rows, transactions)


def _share(tbl: pa.Table, i: int, parts: int) -> pa.Table:
    """The ``i``-th of ``parts`` consecutive slices of ``tbl``."""
    start, stop = tbl.num_rows * i // parts, tbl.num_rows * (i + 1) // parts
    return tbl.slice(start, stop - start)
