"""A canonical digest of a projection's content.

Two projections of the same log at the same positions have the same digest,
whatever batch sizes built them, whichever process built them, and whether
they were built incrementally or by a full replay: everything in the tables
derives from the events (no clock, no randomness), maps are written with
their entries sorted, and JSON is stored exactly as the events carry it.

The digest is computed inside DuckDB, vectorised, with no Python per row:
each row's typed columns go through DuckDB's 64-bit ``hash(...)``; a table's
digest is the SHA-256 of its row count, the sum and the XOR of those row
hashes — a multiset hash, so rows need no sorting and a million versions
digest in about a second. The catalog's digest hashes the table digests in a
fixed order. ``meta`` is left out: it describes the file, not the catalog.

The row hash is DuckDB's: digests are comparable between projections built
by the same DuckDB major version (the project pins it). It detects
accidental divergence and hand edits (``catalog verify``); it is not meant to
resist a forger — the log and its replay are the proof.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from . import schema

DIGESTED = [t for t in schema.TABLES if t.name != "meta"]


def table_digest(con: duckdb.DuckDBPyConnection, table: schema.Table) -> str:
    """SHA-256 of the row count and a multiset hash of the table's rows."""
    columns = ", ".join(f'"{c}"' for c in table.column_names)
    count, total, mixed = con.sql(
        "SELECT count(*), coalesce(sum(h::HUGEINT), 0)::VARCHAR, coalesce(bit_xor(h), 0) "
        f"FROM (SELECT hash({columns}) AS h FROM {table.name})"
    ).fetchall()[0]
    return hashlib.sha256(f"{table.name}:{count}:{total}:{mixed}".encode()).hexdigest()


def digest(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per-table digests and the overall ``digest``."""
    tables = {t.name: table_digest(con, t) for t in DIGESTED}
    overall = hashlib.sha256(
        json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return {"digest": overall, **tables}
