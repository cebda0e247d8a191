"""A canonical digest of a projection's content.

Two projections of the same log at the same positions have the same digest,
whatever batch sizes built them, whichever process built them, and whether
they were built incrementally or by a full replay. Each table is read in a
total order (every column), encoded canonically (JSON with sorted keys;
timestamps as ISO 8601 UTC; maps as sorted pairs; JSON columns re-serialised
with sorted keys) and hashed; the digest hashes the table digests in a fixed
order. ``meta`` is left out: it describes the file, not the catalog.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import duckdb

from consumers import schema

DIGESTED = [t for t in schema.TABLES if t.name != "meta"]


def _canonical(value: Any, json_column: bool = False) -> Any:
    if value is None:
        return None
    if json_column and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def table_digest(con: duckdb.DuckDBPyConnection, table: schema.Table) -> str:
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    order = ", ".join(
        f'CAST("{c.name}" AS VARCHAR)' if c.type not in ("INTEGER", "BIGINT") else f'"{c.name}"'
        for c in table.columns
    )
    h = hashlib.sha256()
    json_cols = {c.name for c in table.columns if c.type == "JSON"}
    reader = con.sql(f"SELECT {cols} FROM {table.name} ORDER BY {order}").to_arrow_reader(10_000)
    for batch in reader:
        for row in batch.to_pylist():
            canonical = {k: _canonical(v, k in json_cols) for k, v in row.items()}
            line = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            h.update(line.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()


def digest(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per-table digests and the overall ``digest``."""
    tables = {t.name: table_digest(con, t) for t in DIGESTED}
    overall = hashlib.sha256(
        json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return {"digest": overall, **tables}
