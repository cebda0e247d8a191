"""Presentation helpers: numbers and times for people, and the geometry of the SVGs.

Nothing here touches the catalog. The SVG pictures (histogram bars, the
lineage graph) are laid out here as numbers and drawn by the templates, so
every piece of user text in them goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from catalog.events.model import describe

# ------------------------------------------------------------------ numbers


def size(n: int | None) -> str:
    """``3.8 KiB``; empty for unknown."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def number(value: Any) -> str:
    """A figure from stats or metrics, rounded for reading (text passes through)."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


def when(value: datetime | str | None) -> str:
    """``2026-03-03 10:00:00 UTC``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``5 min ago``, ``3 days ago``."""
    if value is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else when(value)
    for limit, unit, div in (
        (60, "s", 1),
        (3600, "min", 60),
        (86400, "h", 3600),
        (86400 * 60, "days", 86400),
        (86400 * 730, "months", 86400 * 30),
    ):
        if seconds < limit:
            return f"{int(seconds // div)} {unit} ago"
    return f"{int(seconds // (86400 * 365))} years ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def short(uid: str | None, n: int = 12) -> str:
    return (uid or "")[:n]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def artifact_href(project: str, key: str, uid: str | None = None, iteration: int = 0) -> str:
    """The artifact page of a version (or of the latest when ``uid`` is None)."""
    url = f"/projects/{quote(project)}/artifacts/{quote(key)}"
    params = []
    if uid:
        params.append(f"uid={quote(uid)}")
    if iteration:
        params.append(f"iter={iteration}")
    return url + ("?" + "&".join(params) if params else "")


# ------------------------------------------------------------------- events


def event_summary(event: Mapping[str, Any]) -> str:
    """One line saying what an event did (for the history table)."""
    return describe(str(event.get("type")), event.get("payload") or {})


# --------------------------------------------------------------- histograms


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


def histogram(hist: Any, width: int = 140, height: int = 32) -> list[Bar]:
    """Bars of a stats histogram ``[[counts], [edges]]`` (empty if malformed)."""
    try:
        counts = [int(c) for c in hist[0]]
        edges = [float(e) for e in hist[1]]
    except (TypeError, ValueError, IndexError):
        return []
    if not counts or len(edges) != len(counts) + 1:
        return []
    top = max(counts) or 1
    step = width / len(counts)
    bars = []
    for i, count in enumerate(counts):
        h = max(1.0, (height - 2) * count / top) if count else 0.0
        title = f"{number(edges[i])} – {number(edges[i + 1])}: {count:,}"
        bars.append(Bar(round(i * step, 2), round(height - h, 2), round(step - 1, 2), h, title))
    return bars


# ------------------------------------------------------------------ lineage

NODE_W, NODE_H, COL_W, ROW_H, PAD = 200, 42, 270, 56, 16


@dataclass
class Node:
    id: str
    column: int
    label: str
    sub: str
    title: str
    href: str | None
    css: str
    x: float = 0
    y: float = 0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    truncated: bool = False


def _clip(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def lineage_graph(data: Mapping[str, Any], center: Mapping[str, Any]) -> Graph:
    """Lay out a lineage neighbourhood: upstream columns left, downstream right.

    ``data`` is :func:`catalog.query.lineage_graph`'s result, ``center`` the
    version's project, key, uid and kind. A node sits in the column of the
    first (shortest) path that reached it.
    """
    infos: Mapping[str, Mapping[str, Any]] = data.get("nodes", {})
    nodes: dict[str, Node] = {}

    def add(node_id: str, column: int, uid: str | None, uri: str | None, name: str) -> None:
        if node_id in nodes:
            return
        info = infos.get(uid or "")
        if info is not None:
            deleted = bool(info.get("deleted"))
            nodes[node_id] = Node(
                node_id,
                column,
                _clip(str(info["key"])),
                f"{info['kind']} · {short(uid, 8)}" + (" · deleted" if deleted else ""),
                f"store://{info['category']}/{info['project']}/{info['key']}^{uid}",
                artifact_href(str(info["project"]), str(info["key"]), uid, int(info["iteration"])),
                "node center" if column == 0 else ("node deleted" if deleted else "node"),
            )
        else:
            label = (uri or name or "?").rstrip("/").rsplit("/", 1)[-1]
            nodes[node_id] = Node(
                node_id, column, _clip(label), "external", uri or name, None, "node external"
            )

    add(str(center["uid"]), 0, str(center["uid"]), None, str(center["key"]))
    edges = []
    for e in data.get("edges", []):
        parent_id = e["parent_uid"] or f"url:{e['parent_uri']}"
        if e["direction"] == "upstream":
            add(parent_id, -e["depth"], e["parent_uid"], e["parent_uri"], e["name"])
        else:
            add(e["uid"], e["depth"], e["uid"], None, e["key"])
        edges.append((parent_id, e["uid"], e["relation"], e["name"]))

    columns: dict[int, list[Node]] = {}
    for node in nodes.values():
        columns.setdefault(node.column, []).append(node)
    lo, hi = min(columns), max(columns)
    rows = max(len(c) for c in columns.values())
    graph = Graph(
        width=(hi - lo) * COL_W + NODE_W + 2 * PAD,
        height=rows * ROW_H - (ROW_H - NODE_H) + 2 * PAD,
        truncated=bool(data.get("truncated")),
    )
    for column, members in sorted(columns.items()):
        members.sort(key=lambda n: (n.label, n.id))
        offset = (rows - len(members)) * ROW_H / 2
        for i, node in enumerate(members):
            node.x = PAD + (column - lo) * COL_W
            node.y = PAD + offset + i * ROW_H
            graph.nodes.append(node)
    seen = set()
    for parent_id, child_id, relation, name in edges:
        if (parent_id, child_id) in seen or parent_id not in nodes or child_id not in nodes:
            continue
        seen.add((parent_id, child_id))
        a, b = nodes[parent_id], nodes[child_id]
        x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
        x2, y2 = b.x, b.y + NODE_H / 2
        if b.x <= a.x:  # drawn right to left: leave and enter on the facing sides
            x1, x2 = a.x, b.x + NODE_W
        bend = max(30.0, abs(x2 - x1) / 2)
        direction = 1 if x2 >= x1 else -1
        graph.edges.append(
            {
                "d": f"M{x1:.1f},{y1:.1f} C{x1 + direction * bend:.1f},{y1:.1f} "
                f"{x2 - direction * bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}",
                "title": f"{relation}: {name}",
                "css": "edge" if relation == "source" else "edge link",
            }
        )
    return graph


def lineage_lists(
    data: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Upstream and downstream edges, as rows for the tables under the graph."""
    up = [e for e in data.get("edges", []) if e["direction"] == "upstream"]
    down = [e for e in data.get("edges", []) if e["direction"] == "downstream"]
    return up, down


def columns_of(rows: Sequence[Sequence[Any]], header: Sequence[str] | None) -> list[str]:
    width = max((len(r) for r in rows), default=0)
    names = list(header or [])
    return names + [f"column {i + 1}" for i in range(len(names), width)]
