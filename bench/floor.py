"""The floor under B2 and B3: what any projector built on this stack must spend per event.

Three stages that no set of rules can skip, each timed alone over the same log
and batches as the projection (``DEFAULT_BATCH`` records a transaction; a bulk
load's settings and ``BULK_BATCH`` for the floor under a replay):

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

from catalog.consumers.database import connect
from catalog.consumers.projection import BULK_BATCH, DEFAULT_BATCH, Projection
from catalog.events import columnar
from catalog.events.codec import default_codec
from catalog.log import EventLog

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
    def seconds(self) -> float:
        return self.read_s + self.decode_s + self.write_s

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def describe(self, target: float) -> str:
        """The stages per event, next to what a rate of ``target`` events/s allows."""
        return (
            f"read {self.us(self.read_s):.1f} + decode {self.us(self.decode_s):.1f} + "
            f"DuckDB writes {self.us(self.write_s):.1f} µs/event "
            f"({self.rows / self.events:.2f} rows an event, "
            f"{self.events / self.transactions:,.0f} events a transaction); "
            f"{target:,.0f}/s allows {1e6 / target:.0f} µs/event in all"
        )


def measure(log: EventLog, projected: Path, workdir: Path, *, bulk: bool = False) -> Floor:
    """The floor over ``log`` (all of it), whose finished projection is ``projected``.

    ``bulk``: as a replay loads (:meth:`Projection.drop_indexes`: no indexes, the
    bulk buffer pool, BULK_BATCH records a batch). Streams: one batch of records,
    or one transaction's rows, in memory at a time; only the stages are timed.
    """
    size = BULK_BATCH if bulk else DEFAULT_BATCH
    ends = log.end_offsets()
    codec = default_codec()
    positions: dict[int, int] = {}
    read_s = decode_s = 0.0
    count = reads = 0
    while True:
        started = time.perf_counter()
        records = log.read_range(positions, ends, max_records=size)
        read_s += time.perf_counter() - started
        if not records:
            break
        for r in records:
            positions[r.partition] = r.offset + 1
        values = [r.value for r in records]
        count, reads = count + len(values), reads + 1
        started = time.perf_counter()
        if codec.decode_columns(values) is None:
            if len(values) >= columnar.MIN_BATCH:
                raise RuntimeError("the columnar decoder is not available here")
            for value in values:  # a short batch: one by one, as the projection decodes it
                codec.decode_json(value)
        decode_s += time.perf_counter() - started

    transactions = max(1, reads)
    target = workdir / "floor.duckdb"
    for leftover in (target, Path(f"{target}.wal")):
        leftover.unlink(missing_ok=True)
    rows = 0
    write_s = 0.0
    with (
        connect(str(projected), read_only=True) as source,
        Projection(str(target)) as fresh,  # the same schema, indexes and settings
    ):
        if bulk:
            fresh.drop_indexes()
        spans = {
            name: source.sql(f"SELECT coalesce(max(rowid) + 1, 0) FROM {name}").fetchall()[0][0]
            for name in TABLES
        }
        con = fresh.con
        for i in range(transactions):
            shares = {}
            for name, span in spans.items():  # this transaction's rows, read untimed
                low, high = span * i // transactions, span * (i + 1) // transactions
                shares[name] = source.sql(
                    f"SELECT * FROM {name} WHERE rowid >= {low} AND rowid < {high}"
                ).to_arrow_table()
            started = time.perf_counter()
            con.execute("BEGIN")
            for name, share in shares.items():
                if share.num_rows:
                    cols = ", ".join(f'"{c}"' for c in share.column_names)
                    con.register("_rows", share)
                    con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _rows")
                    con.unregister("_rows")
                    rows += share.num_rows
            con.execute("COMMIT")
            write_s += time.perf_counter() - started
    return Floor(count, read_s, decode_s, write_s, rows, transactions)
