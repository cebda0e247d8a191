"""JSON for metadata: canonical, strict (no NaN), numpy- and datetime-aware.

Kind-specific metadata (dataset stats, model metrics) often holds numpy
scalars, NaN and timestamps. Events carry it as JSON text, and DuckDB's JSON
type rejects ``NaN``, so every such document goes through :func:`dumps`:
numpy scalars become Python numbers, NaN and infinities become ``null``,
dates become ISO 8601 text, keys are sorted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as plain JSON-ready Python data."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return plain(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return plain(tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def dumps(value: Any) -> str:
    """Canonical, strict JSON text of ``value``."""
    return json.dumps(
        plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
