"""Read queries over a projection: resolve URIs, list, lineage, audit, read-only SQL.

Every filter is a bound parameter — user text never becomes SQL. Functions
take an open DuckDB connection and return plain data (rows as dicts, lists,
numbers, times), the same whether the caller is this process or a client of
``catalog serve``: :mod:`catalog.api` names the ones served, and the reader
(:mod:`catalog.reader`) decides which connection they run on.

DuckDB and Arrow are imported where a function needs them, so a process that
reads through the service never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from catalog.errors import InvalidQuery
from catalog.uri import StoreURI

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

    Con = duckdb.DuckDBPyConnection
else:
    Con = Any

Row = dict[str, Any]


def _rows(con: Con, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
    # execute + fetchall: a point lookup pays ~1.5 ms less than through a relation and Arrow
    cursor = con.execute(sql, list(params or []))
    names = [d[0] for d in cursor.description]
    # (DuckDB 2 returns MAP columns as dicts already)
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


# ---------------------------------------------------------------- artifacts


def resolve(con: Con, uri: StoreURI) -> Row | None:
    """The ``artifacts`` row a URI names (deleted versions only by uid), or None.

    Each query filters on one indexed column only (``uid`` or ``key``) and the
    rest is checked here: DuckDB's ART indexes serve a scan only when its sole
    pushed-down filter is on the indexed column, and a point lookup through
    the index is what keeps this fast at a million versions (docs/sql.md).
    """
    if uri.uid:
        rows = _rows(con, "SELECT * FROM artifacts WHERE uid = ?", [uri.uid])
        exact = [r for r in rows if _names(r, uri)]
        if exact:
            return exact[0]
        prefixed = sorted(
            (r for r in _key_rows(con, uri.key) if _names(r, uri) and r["uid"].startswith(uri.uid)),
            key=lambda r: r["uid"],
        )
        if len(prefixed) > 1:
            return None  # ambiguous uid prefix
        return prefixed[0] if prefixed else None
    if uri.tree:
        live = [
            r
            for r in _key_rows(con, uri.key)
            if _names(r, uri) and r["tree"] == uri.tree and not r["deleted"]
        ]
        live.sort(key=lambda r: (r["log_partition"], r["log_offset"]), reverse=True)
        rows = live[:1]
        if uri.tag:
            rows = [r for r in rows if uri.tag in tags_of(con, [r["uid"]]).get(r["uid"], [])]
        return rows[0] if rows else None
    return _by_tag(con, uri)[0]


def version(con: Con, uri: StoreURI) -> Row | None:
    """The version ``uri`` names with its ``tags`` and ``sources`` (what ``get`` shows).

    ``sources`` are its ``source`` lineage edges (name, uri, uid, hash).
    """
    row, tags = resolve_with_tags(con, uri)
    if row is None:
        return None
    row["tags"] = tags
    row["sources"] = sources_of(con, row["uid"])
    return row


def resolve_with_tags(con: Con, uri: StoreURI) -> tuple[Row | None, list[str]]:
    """:func:`resolve`, and the tags of the version found."""
    if not uri.uid and not uri.tree:
        return _by_tag(con, uri)  # one lookup of the key's tags answers both
    row = resolve(con, uri)
    return row, ([] if row is None else tags_of(con, [row["uid"]]).get(row["uid"], []))


def _by_tag(con: Con, uri: StoreURI) -> tuple[Row | None, list[str]]:
    """The version a tag (default ``latest``) names, and every tag of that version."""
    tag = uri.tag or "latest"
    of_key = con.execute(
        "SELECT project, iteration, tag, uid FROM tags WHERE key = ?", [uri.key]
    ).fetchall()
    tagged = [
        uid
        for project, iteration, name, uid in of_key
        if (project, iteration, name) == (uri.project, uri.iteration, tag)
    ]
    if not tagged:
        return None, []
    rows = _rows(con, "SELECT * FROM artifacts WHERE uid = ?", tagged[:1])
    row = next((r for r in rows if _names(r, uri)), None)
    return row, sorted(name for _, _, name, uid in of_key if uid == tagged[0])


def _names(row: Row, uri: StoreURI) -> bool:
    """Whether ``row`` is a version of the key (and iteration) ``uri`` names."""
    return (row["project"], row["key"], row["iteration"]) == (uri.project, uri.key, uri.iteration)


def _key_rows(con: Con, key: str) -> list[Row]:
    """Every version of every key named ``key`` (any project), through the key index."""
    return _rows(con, "SELECT * FROM artifacts WHERE key = ?", [key])


def tags_of(con: Con, uids: Sequence[str]) -> dict[str, list[str]]:
    """Tags per version uid."""
    if not uids:
        return {}
    if len(uids) <= 50:  # a point lookup per uid through the index
        found: dict[str, list[str]] = {}
        for uid, tag in con.execute(
            f"SELECT uid, tag FROM tags WHERE uid IN {_marks(uids)}", list(uids)
        ).fetchall():
            found.setdefault(uid, []).append(tag)
        return {uid: sorted(tags) for uid, tags in found.items()}
    import pyarrow as pa

    con.register("_tag_uids", pa.table({"uid": list(uids)}))
    try:
        result = con.sql(
            "SELECT uid, list(tag ORDER BY tag) AS tags FROM tags "
            "WHERE uid IN (SELECT uid FROM _tag_uids) GROUP BY uid"
        ).fetchall()
    finally:
        con.unregister("_tag_uids")
    return {uid: list(tags) for uid, tags in result}


def sources_of(con: Con, uid: str) -> list[Row]:
    """The inputs version ``uid`` was made from (its ``source`` edges)."""
    rows = _rows(
        con,
        "SELECT relation, name, parent_uri AS uri, parent_uid AS uid, parent_hash AS hash "
        "FROM lineage WHERE uid = ?",  # one filter: the uid index serves it
        [uid],
    )
    sources = [r for r in rows if r.pop("relation") == "source"]
    return sorted(sources, key=lambda r: (r["name"], r["uri"]))


@dataclass(frozen=True)
class ListQuery:
    """Filters of :func:`list_artifacts`; every one optional, all ANDed."""

    project: str | None = None
    name: str | None = None  # substring of the key (``~name`` in MLRun)
    kind: str | None = None
    category: str | None = None
    tag: str | None = None  # None: latest versions; "*": every version; else that tag
    labels: Sequence[tuple[str, str | None]] = ()
    since: datetime | None = None
    until: datetime | None = None
    producer: str | None = None  # producer run uid (tree)
    include_deleted: bool = False
    limit: int | None = None
    offset: int = 0
    order: str = "updated"  # updated | key | created | size
    descending: bool = True


_ORDER = {"updated": "a.updated", "key": "a.key", "created": "a.created", "size": "a.size"}


def list_artifacts(con: Con, q: ListQuery) -> list[Row]:
    """Versions matching ``q``, each row with a ``tags`` list."""
    source, params, where = _search_filters(q, ())
    if q.since is not None:
        where.append("a.updated >= ?")
        params.append(q.since)
    if q.until is not None:
        where.append("a.updated <= ?")
        params.append(q.until)
    direction = "DESC" if q.descending else "ASC"
    sql = (
        f"SELECT a.*, COALESCE((SELECT list(x.tag ORDER BY x.tag) FROM tags x "
        f"WHERE x.uid = a.uid), []) AS tags FROM {source}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {_ORDER[q.order]} {direction}, a.key, a.uid"
    )
    if q.limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params.extend([int(q.limit), int(q.offset)])
    return _rows(con, sql, params)


# ------------------------------------------------------------------ lineage


def lineage(con: Con, uid: str, direction: str = "upstream", depth: int = 5) -> list[Row]:
    """Source edges reachable from version ``uid``, breadth first, up to ``depth`` hops.

    ``upstream`` follows child → parent (what it was made from), ``downstream``
    parent → child (what was made from it). Each edge: depth, child (project,
    key, uid), relation (``source``), name, parent (uri, project, key, uid,
    hash). Links (``extra_data``) are not lineage — a version may link to
    what was made from it, which would read as a cycle — see :func:`links`.
    """
    if direction not in ("upstream", "downstream"):
        raise InvalidQuery(direction, "direction is upstream or downstream")
    near, far = ("uid", "parent_uid") if direction == "upstream" else ("parent_uid", "uid")
    # Breadth first, one query per hop: `near IN (frontier)` is an index scan
    # (lineage_child / lineage_parent), where a recursive CTE hash-joins the
    # whole edge table at every hop.
    edges: dict[tuple[Any, ...], Row] = {}
    seen, frontier = {uid}, [uid]
    for hop in range(1, int(depth) + 1):
        if not frontier:
            break
        reached: list[str] = []
        for chunk in range(0, len(frontier), 500):
            part = frontier[chunk : chunk + 500]
            for row in _rows(
                con, f"SELECT {_EDGE_COLUMNS} FROM lineage WHERE {near} IN {_marks(part)}", part
            ):
                if row["relation"] != "source":  # filtered here: the IN keeps the index
                    continue
                edge = (row["uid"], row["relation"], row["name"], row["parent_uri"])
                if edge in edges:
                    continue
                edges[edge] = {"depth": hop, **row}
                node = row[far]
                if node is not None and node not in seen:
                    seen.add(node)
                    reached.append(node)
        frontier = reached
    return sorted(
        edges.values(),
        key=lambda r: (
            r["depth"],
            r["key"],
            r["uid"],
            r["relation"],
            r["name"],
            r["parent_uri"],
        ),
    )


# -------------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditQuery:
    project: str | None = None
    key: str | None = None
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    #: only events at or after these positions (partition -> offset), for ``--follow``
    after: Mapping[int, int] | None = None


#: A writer whose clock differs from the log's by more than this is flagged.
CLOCK_SKEW_S = 300

#: What the audit trail shows of an event: its position, the log's time, what
#: the writer's clock said and the difference when it is past CLOCK_SKEW_S
#: (seconds, positive when the writer's clock is ahead), and the event.
EVENT_COLUMNS = (
    '"partition", "offset", logged_at, occurred_at, '
    "CASE WHEN abs(epoch(occurred_at) - epoch(logged_at)) > "
    f"{CLOCK_SKEW_S} THEN round(epoch(occurred_at) - epoch(logged_at)) END AS clock_skew_s, "
    "actor, type, project, key, run_uid, event_id, payload"
)


def skew_note(seconds: float | None) -> str:
    """``writer's clock 365 days ahead`` for an event's ``clock_skew_s`` ("" if none)."""
    if seconds is None:
        return ""
    size = abs(seconds)
    unit, div = next(
        (u, d)
        for limit, u, d in ((3600, "min", 60), (172800, "h", 3600), (None, "days", 86400))
        if limit is None or size < limit
    )
    return f"writer's clock {size / div:.0f} {unit} {'ahead' if seconds > 0 else 'behind'}"


def audit(con: Con, q: AuditQuery) -> list[Row]:
    """Events matching ``q`` in log order."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("project", q.project),
        ("key", q.key),
        ("actor", q.actor),
        ("type", q.type),
    ):
        if value is not None:
            where.append(f'"{column}" = ?')
            params.append(value)
    if q.since is not None:
        where.append("logged_at >= ?")
        params.append(q.since)
    if q.until is not None:
        where.append("logged_at <= ?")
        params.append(q.until)
    if q.after:
        known = []
        for partition, offset in sorted(q.after.items()):
            known.append('("partition" = ? AND "offset" >= ?)')
            params.extend([int(partition), int(offset)])
        placeholders = ", ".join("?" for _ in q.after)
        known.append(f'"partition" NOT IN ({placeholders})')
        params.extend(int(p) for p in sorted(q.after))
        where.append("(" + " OR ".join(known) + ")")
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM events"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + ' ORDER BY "partition", "offset"'
    )
    if q.limit is not None:
        sql += " LIMIT ?"
        params.append(int(q.limit))
    return _rows(con, sql, params)


def audit_page(con: Con, q: AuditQuery) -> Row:
    """:func:`audit`'s ``rows`` and the ``positions`` they run up to, read together
    (for tailing: pass the positions back as ``after``; nothing skipped or repeated)."""
    return {"rows": audit(con, q), "positions": positions(con)}


def dead_letters(con: Con, limit: int | None = None) -> list[Row]:
    sql = (
        'SELECT "partition", "offset", reason, event_id, type, log_time, payload '
        'FROM dead_letters ORDER BY "partition", "offset"'
    )
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return _rows(con, sql, params)


def outcome(con: Con, event_ids: Sequence[str]) -> dict[str, str]:
    """Of ``event_ids``, those the projection refused: event id -> the reason.

    Asked by a writer once its events are applied (``min_positions``): an id
    absent from the answer was applied (or was a redelivered duplicate).
    """
    if not event_ids:
        return {}
    found: dict[str, str] = {}
    for chunk in range(0, len(event_ids), 500):
        part = list(event_ids[chunk : chunk + 500])
        for event_id, reason in con.execute(
            f"SELECT event_id, reason FROM dead_letters WHERE event_id IN {_marks(part)} "
            'ORDER BY "partition", "offset"',
            part,
        ).fetchall():
            found.setdefault(event_id, reason)
    return found


def tag_history(con: Con, project: str, key: str, tag: str | None = None) -> list[Row]:
    """Where each tag of a key stood over time (``latest`` included), oldest first.

    One row per interval: the version (``uid``) the tag named from
    ``valid_from`` until ``valid_to`` (None while it still does), who set it
    and who moved or removed it.
    """
    sql = (
        "SELECT project, key, iteration, tag, uid, valid_from, valid_to, set_by, removed_by "
        "FROM tag_history WHERE key = ? AND project = ?"
    )
    params: list[Any] = [key, project]
    if tag is not None:
        sql += " AND tag = ?"
        params.append(tag)
    return _rows(con, sql + " ORDER BY tag, from_partition, from_offset", params)


def run(con: Con, project: str, uid: str) -> Row | None:
    rows = _rows(con, "SELECT * FROM runs WHERE project = ? AND uid = ?", [project, uid])
    return rows[0] if rows else None


def project(con: Con, name: str) -> Row | None:
    rows = _rows(con, "SELECT * FROM projects WHERE name = ?", [name])
    return rows[0] if rows else None


# ---------------------------------------------------------------------- SQL

_WRITES = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|ATTACH|DETACH|INSTALL|LOAD|EXPORT|"
    r"IMPORT|PRAGMA|SET|RESET|CHECKPOINT|VACUUM|BEGIN|COMMIT|ROLLBACK|USE|TRUNCATE)\b",
    re.IGNORECASE,
)
#: Statement kinds ``catalog sql`` runs: queries, and EXPLAIN of them.
_READS = ("SELECT", "EXPLAIN")


def check_read_only(query: str) -> str:
    """``query`` if it is one statement that only reads; else :class:`InvalidQuery`."""
    import duckdb

    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery(query, "empty query")
    match = _WRITES.match(query)
    if match:
        raise InvalidQuery(query, f"{match.group(1).upper()} is refused: catalog sql is read-only")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidQuery(query, str(exc).splitlines()[0]) from exc
    if len(statements) != 1:
        raise InvalidQuery(query, f"give one statement, not {len(statements)}")
    kind = statements[0].type.name
    if kind not in _READS:
        raise InvalidQuery(query, f"{kind} is refused: catalog sql is read-only")
    return query


def read_only_sql(path: str, query: str) -> pa.Table:
    """Run ``query`` on a read-only connection that cannot touch anything else.

    The connection is opened read-only (no DDL or DML) with external access
    disabled (no files, no ATTACH, no extensions) and its configuration locked;
    statements that would write are refused up front with a clear message.
    """
    import duckdb

    check_read_only(query)
    try:
        con = duckdb.connect(path, read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        raise InvalidQuery(query, f"cannot open the projection read-only: {exc}") from exc
    try:
        return run_sql(con, query)
    finally:
        con.close()


def run_sql(con: Con, query: str) -> pa.Table:
    """Run a checked read-only ``query`` (:func:`check_read_only`) on ``con``, as Arrow.

    The caller makes ``con`` unable to write or reach files: a read-only
    connection, or a read-only transaction of an instance whose external
    access is off (the catalog service).
    """
    import duckdb
    import pyarrow as pa

    try:
        relation = con.sql(query)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if any(w in message.lower() for w in ("read-only", "external access", "disabled by")):
            message = f"refused: catalog sql is read-only ({message})"
        raise InvalidQuery(query, message) from exc


# ------------------------------------------------------------------ as-of


def cut_at_time(con: Con, when: datetime, ends: dict[int, int]) -> dict[int, int]:
    """End offsets (exclusive) of the catalog as it stood at ``when``.

    Per partition, the offset of the first applied event the log took after
    ``when`` (the log's time, never a writer's clock); partitions with none
    keep their end in ``ends``.
    """
    rows = con.sql(
        'SELECT "partition", min("offset") FROM events WHERE logged_at > ? GROUP BY 1',
        params=[when],
    ).fetchall()
    cut = dict(ends)
    for partition, offset in rows:
        cut[int(partition)] = min(int(offset), cut.get(int(partition), int(offset)))
    return cut


# ------------------------------------------------------------ browsing (web UI)
#
# Paginated, bounded reads for interactive use: each returns at most a page, and
# counts stop at a cap, so a page costs about the same on a catalog of a hundred
# versions and of a million.

#: Columns of a listing row: every ``artifacts`` column but the (possibly large)
#: spec and the log position (a new column is listed without an edit here).
LIST_COLUMNS = "a.* EXCLUDE (spec, log_partition, log_offset)"


class Page(TypedDict):
    """One page of a listing: its rows and how many match in all.

    ``total`` is exact unless ``capped``, in which case more than ``total`` match.
    """

    rows: list[Row]
    total: int
    capped: bool


def _search_filters(q: ListQuery, categories: Sequence[str]) -> tuple[str, list[Any], list[str]]:
    """``list_artifacts``' filters: the FROM clause, its parameters, the WHERE terms."""
    params: list[Any] = []
    where: list[str] = []
    if q.tag is None:
        source = "artifacts a JOIN tags t ON t.uid = a.uid AND t.tag = 'latest'"
        if q.project is not None:  # shrinks the join's build side
            source += " AND t.project = ?"
            params.append(q.project)
    elif q.tag == "*":
        source = "artifacts a"
    else:
        source = "artifacts a JOIN tags t ON t.uid = a.uid AND t.tag = ?"
        params.append(q.tag)
    if not q.include_deleted:
        where.append("NOT a.deleted")
    for column, value in (
        ("project", q.project),
        ("kind", q.kind),
        ("category", q.category),
        ("tree", q.producer),
    ):
        if value is not None:
            where.append(f"a.{column} = ?")
            params.append(value)
    if categories:
        where.append(f"a.category IN ({', '.join('?' for _ in categories)})")
        params.extend(categories)
    if q.name:
        where.append("contains(lower(a.key), lower(?))")
        params.append(q.name)
    for key, value in q.labels:
        if value is None:
            where.append("map_contains(a.labels, ?)")
            params.append(key)
        else:
            where.append("a.labels[?] = ?")
            params.extend([key, value])
    if q.order not in _ORDER:
        raise InvalidQuery(q.order, f"order by one of {', '.join(_ORDER)}")
    return source, params, where


def search_artifacts(
    con: Con,
    q: ListQuery,
    *,
    categories: Sequence[str] = (),
    count_cap: int = 10_000,
) -> Page:
    """A page of :func:`list_artifacts` (same filters), and the number of matches.

    ``categories`` keeps versions of any of those categories. Rows carry
    :data:`LIST_COLUMNS` and ``tags``. The page is chosen on the few columns
    that filter and sort, then only its rows are read in full (by uid).
    Listings of tagged versions (latest by default) count exactly in the same
    pass; listings of every version count up to ``count_cap`` in a second one.
    """
    source, params, where = _search_filters(q, categories)
    if q.since is not None:
        where.append("a.updated >= ?")
        params.append(q.since)
    if q.until is not None:
        where.append("a.updated <= ?")
        params.append(q.until)
    body = f"FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
    joined = q.tag != "*"
    limit = int(q.limit) if q.limit is not None else None
    offset = max(int(q.offset), 0)
    direction = "DESC" if q.descending else "ASC"
    sql = (
        f"SELECT a.uid{', count(*) OVER ()' if joined else ''} {body} "
        f"ORDER BY {_ORDER[q.order]} {direction}, a.key, a.uid"
    )
    page_params = list(params)
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        page_params += [limit, offset]
    found = con.execute(sql, page_params).fetchall()
    if limit is None:
        total, capped = len(found), False
    elif joined and found:
        total, capped = int(found[0][1]), False
    elif 0 < len(found) < limit or (not found and offset == 0):
        total, capped = offset + len(found), False  # the last page
    else:
        result = con.execute(
            f"SELECT count(*) FROM (SELECT 1 {body} LIMIT ?)", [*params, count_cap + 1]
        ).fetchall()
        total = int(result[0][0]) if result else 0
        total, capped = min(total, count_cap), total > count_cap
    uids = [r[0] for r in found]
    by_uid = {r["uid"]: r for r in _with_tags(con, uids)}
    return Page(rows=[by_uid[u] for u in uids if u in by_uid], total=total, capped=capped)


def _with_tags(con: Con, uids: Sequence[str]) -> list[Row]:
    """:data:`LIST_COLUMNS` and ``tags`` of the versions ``uids`` (one query)."""
    if not uids:
        return []
    return _rows(
        con,
        f"SELECT {LIST_COLUMNS}, COALESCE(t.tags, []) AS tags FROM artifacts a LEFT JOIN "
        f"(SELECT uid, list(tag ORDER BY tag) AS tags FROM tags WHERE uid IN {_marks(uids)} "
        f"GROUP BY uid) t USING (uid) WHERE a.uid IN {_marks(uids)}",
        [*uids, *uids],
    )


def _marks(values: Sequence[Any]) -> str:
    """``(?, ?, ?)``: explicit parameters, so DuckDB can use an index on the column."""
    return "(" + ", ".join("?" for _ in values) + ")" if values else "(NULL)"


def versions_of(
    con: Con, project: str, key: str, *, iteration: int | None = None, limit: int = 200
) -> Page:
    """Versions of a key, newest first (deleted ones too), each with its ``tags``."""
    where = "a.project = ? AND a.key = ?"
    params: list[Any] = [project, key]
    if iteration is not None:
        where += " AND a.iteration = ?"
        params.append(iteration)
    rows = _rows(
        con,
        "SELECT a.uid, a.iteration, a.kind, a.tree, a.hash, a.size, a.created, a.updated, "
        "a.updated_by, a.deleted, COALESCE(t.tags, []) AS tags, count(*) OVER () AS total "
        "FROM artifacts a LEFT JOIN (SELECT uid, list(tag ORDER BY tag) AS tags FROM tags "
        "WHERE project = ? AND key = ? GROUP BY uid) t USING (uid) "
        f"WHERE {where} ORDER BY a.log_partition DESC, a.log_offset DESC, a.uid LIMIT ?",
        [project, key, *params, limit],
    )
    total = int(rows[0].pop("total")) if rows else 0
    for r in rows[1:]:
        r.pop("total")
    return Page(rows=rows, total=total, capped=False)


_EDGE_COLUMNS = (
    "project, key, uid, relation, name, parent_uri, parent_project, parent_key, "
    "parent_uid, parent_hash"
)


def lineage_graph(
    con: Con,
    uid: str,
    *,
    depth: int = 3,
    relations: Sequence[str] = ("source",),
    fanout: int = 25,
) -> Row:
    """The lineage neighbourhood of a version, hop by hop, bounded for display.

    Returns ``edges`` (as :func:`lineage` rows, plus ``direction`` and
    ``depth``), ``nodes`` (uid → project, key, iteration, kind, category,
    deleted, for every catalog version named) and ``truncated`` (True when a
    node had more than ``fanout`` edges one way). Each hop is one query over
    the edges of the nodes reached so far, both directions at once, so
    popular parents do not blow up the walk. Only ``source`` edges are
    followed: other ``relations`` (links) are taken from the version itself,
    one hop, so a link never leads the walk round a cycle.
    """
    if depth < 0:
        raise InvalidQuery(depth, "depth must be a non-negative integer")
    kinds = list(relations)
    edges: list[Row] = []
    truncated = False
    up, down = [uid], [uid]
    seen = {"upstream": {uid}, "downstream": {uid}}
    for hop in range(1, depth + 1):
        parts, params = [], []
        for direction, near, frontier in (
            ("upstream", "uid", up),
            ("downstream", "parent_uid", down),
        ):
            if frontier:
                parts.append(
                    f"SELECT {_EDGE_COLUMNS}, '{direction}' AS direction, row_number() OVER "
                    f"(PARTITION BY {near} ORDER BY key, name, parent_uri, uid) AS n "
                    f"FROM lineage WHERE {near} IN {_marks(frontier)} "
                    f"AND relation IN {_marks(kinds)}"
                )
                params += [*frontier, *kinds]
        if not parts:
            break
        rows = _rows(
            con,
            "SELECT * FROM (" + " UNION ALL ".join(parts) + ") WHERE n <= ? "
            "ORDER BY direction DESC, key, uid, name, parent_uri",
            [*params, fanout + 1],
        )
        up, down = [], []
        for r in rows:
            if r.pop("n") > fanout:
                truncated = True
                continue
            direction = r["direction"]
            if r["relation"] != "source" and hop > 1:
                continue  # a link of a version reached: not this version's, not lineage
            edges.append({**r, "depth": hop})
            node = r["parent_uid"] if direction == "upstream" else r["uid"]
            if r["relation"] == "source" and node is not None and node not in seen[direction]:
                seen[direction].add(node)
                (up if direction == "upstream" else down).append(node)
    uids = sorted({uid} | {e[k] for e in edges for k in ("uid", "parent_uid") if e[k]})
    nodes = {
        r["uid"]: r
        for r in _rows(
            con,
            "SELECT uid, project, key, iteration, kind, category, deleted FROM artifacts "
            f"WHERE uid IN {_marks(uids)}",
            uids,
        )
    }
    return {"edges": edges, "nodes": nodes, "truncated": truncated}


def links(con: Con, uid: str, *, limit: int = 50) -> Row:
    """A version's links (``extra_data``), both ways, apart from its lineage.

    ``links``: what version ``uid`` links to (name → target, resolved to a
    version where the target is one); ``linked_from``: the versions that
    link to it (:func:`links_to`). Rows as :func:`lineage`'s edges, without
    depth; at most ``limit`` each way.
    """
    own = _rows(
        con,
        f"SELECT {_EDGE_COLUMNS} FROM lineage WHERE uid = ?",  # one filter: the uid index
        [uid],
    )
    out = sorted(
        (r for r in own if r["relation"] == "extra_data"),
        key=lambda r: (r["name"], r["parent_uri"]),
    )
    return {"links": out[:limit], "linked_from": links_to(con, uid, limit=limit)}


def links_to(con: Con, uid: str, *, limit: int = 50) -> list[Row]:
    """Versions that link to version ``uid`` in their ``extra_data``."""
    return _rows(
        con,
        f"SELECT {_EDGE_COLUMNS} FROM lineage WHERE parent_uid = ? AND relation = 'extra_data' "
        "ORDER BY key, name, uid LIMIT ?",
        [uid, limit],
    )


def recent_events(
    con: Con, project: str, key: str, *, limit: int = 100, uid: str | None = None
) -> list[Row]:
    """The newest events about one key (or one version of it), newest first."""
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE project = ? AND key = ?"
    params: list[Any] = [project, key]
    if uid is not None:
        sql += " AND (json_extract_string(payload, '$.uid') = ? OR type = 'ArtifactDeleted')"
        params.append(uid)
    sql += ' ORDER BY "partition" DESC, "offset" DESC LIMIT ?'
    params.append(int(limit))
    return _rows(con, sql, params)


def project_summaries(con: Con) -> list[Row]:
    """Every project with live keys per category, versions, runs and last activity."""
    projects = _rows(con, "SELECT * FROM projects ORDER BY name")
    counts: dict[str, dict[str, int]] = {}
    for name, category, n in con.execute(
        "SELECT a.project, a.category, count(*) FROM artifacts a "
        "JOIN tags t ON t.uid = a.uid AND t.tag = 'latest' GROUP BY ALL"
    ).fetchall():
        counts.setdefault(name, {})[category] = int(n)
    versions = dict(
        con.execute(
            "SELECT project, count(*) FROM artifacts WHERE NOT deleted GROUP BY ALL"
        ).fetchall()
    )
    runs = dict(con.execute("SELECT project, count(*) FROM runs GROUP BY ALL").fetchall())
    activity = dict(
        con.execute("SELECT project, max(logged_at) FROM events GROUP BY ALL").fetchall()
    )
    for p in projects:
        name = p["name"]
        p["counts"] = counts.get(name, {})
        p["versions"] = int(versions.get(name, 0))
        p["runs"] = int(runs.get(name, 0))
        p["last_activity"] = activity.get(name) or p["updated"] or p["created"]
    return projects


def project_names(con: Con) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM projects ORDER BY name").fetchall()]


def runs_of(con: Con, project: str, *, limit: int = 50, offset: int = 0) -> Page:
    """Runs of a project, newest first."""
    rows = _rows(
        con,
        "SELECT project, uid, name, handler, state, error, owner, labels, started, finished "
        "FROM runs WHERE project = ? ORDER BY started DESC NULLS LAST, uid LIMIT ? OFFSET ?",
        [project, int(limit), int(offset)],
    )
    result = con.execute("SELECT count(*) FROM runs WHERE project = ?", [project]).fetchall()
    return Page(rows=rows, total=int(result[0][0]) if result else len(rows), capped=False)


def positions(con: Con) -> dict[int, int]:
    """The projection's next offset per log partition (changes whenever it applies events)."""
    return {int(p): int(o) for p, o in con.execute("SELECT * FROM positions").fetchall()}


# --------------------------------------------------------------- history


def event(con: Con, event_id: str) -> Row | None:
    """One applied event with its position and schema version (``audit --event``)."""
    rows = _rows(con, "SELECT * FROM events WHERE event_id = ?", [event_id])
    return rows[0] if rows else None


def diff(
    con: Con, since: datetime, until: datetime, project: str | None = None
) -> dict[str, list[Row]]:
    """What changed in (since, until]: versions added and deleted, tags moved, labels changed."""
    scope = "" if project is None else " AND project = ?"
    extra: list[Any] = [] if project is None else [project]
    added = _rows(
        con,
        "SELECT project, key, uid, kind, created AS time, created_by AS actor FROM artifacts "
        f"WHERE created > ? AND created <= ?{scope} ORDER BY created, project, key, uid",
        [since, until, *extra],
    )
    deleted = _rows(
        con,
        "SELECT project, key, logged_at AS time, actor, "
        "CAST(payload->'$.uids' AS VARCHAR[]) AS uids, "
        "CAST(payload->>'$.all_versions' AS BOOLEAN) AS all_versions, "
        "payload->>'$.reason' AS reason FROM events "
        f"WHERE type = 'ArtifactDeleted' AND logged_at > ? AND logged_at <= ?{scope} "
        'ORDER BY "partition", "offset"',
        [since, until, *extra],
    )
    tags = _rows(
        con,
        f"""
        SELECT h.project, h.key, h.tag, p.uid AS from_uid, h.uid AS to_uid,
               h.valid_from AS time, h.set_by AS actor
        FROM tag_history h
        LEFT JOIN tag_history p ON p.project = h.project AND p.key = h.key
             AND p.iteration = h.iteration AND p.tag = h.tag
             AND p.to_partition = h.from_partition AND p.to_offset = h.from_offset
        WHERE h.tag <> 'latest' AND h.valid_from > ? AND h.valid_from <= ?
              {scope.replace("project", "h.project")}
        UNION ALL
        SELECT h.project, h.key, h.tag, h.uid AS from_uid, NULL AS to_uid,
               h.valid_to AS time, h.removed_by AS actor
        FROM tag_history h
        WHERE h.tag <> 'latest' AND h.valid_to > ? AND h.valid_to <= ?
              {scope.replace("project", "h.project")}
          AND NOT EXISTS (
              SELECT 1 FROM tag_history n WHERE n.project = h.project AND n.key = h.key
                AND n.iteration = h.iteration AND n.tag = h.tag
                AND n.from_partition = h.to_partition AND n.from_offset = h.to_offset)
        ORDER BY time, project, key, tag
        """,
        [since, until, *extra, since, until, *extra],
    )
    labels = _rows(
        con,
        "SELECT project, key, payload->>'$.uid' AS uid, logged_at AS time, actor, "
        "CAST(payload->'$.labels_set' AS MAP(VARCHAR, VARCHAR)) AS labels_set, "
        "CAST(payload->'$.labels_removed' AS VARCHAR[]) AS labels_removed FROM events "
        f"WHERE type = 'ArtifactUpdated' AND logged_at > ? AND logged_at <= ?{scope} "
        "AND (json_array_length((payload->'$.labels_removed')) > 0 "
        "     OR (payload->'$.labels_set') <> '{}'::JSON) "
        'ORDER BY "partition", "offset"',
        [since, until, *extra],
    )
    for row in labels:
        row["labels_set"] = dict(row["labels_set"] or {})
    return {"added": added, "deleted": deleted, "tags": tags, "labels": labels}


# -------------------------------------------------------------- maintenance


def blob_references(con: Con) -> list[Row]:
    """Every version that names content: its uri parts, hash, target path, spec, deletion.

    Deleted versions are included (``deleted``, ``updated`` = when): ``catalog gc``
    keeps the blobs of recently deleted ones; ``catalog verify`` skips them.
    """
    return _rows(
        con,
        "SELECT project, key, iteration, uid, category, kind, format, hash, size, target_path, "
        "spec, deleted, updated FROM artifacts "
        "WHERE target_path IS NOT NULL OR hash IS NOT NULL OR spec LIKE '%attachments%' "
        "ORDER BY project, key, iteration, uid",
    )


def known_projects(con: Con) -> list[str]:
    """Every project the catalog knows: configured ones and those holding artifacts."""
    return [
        r[0]
        for r in con.execute(
            "SELECT name FROM projects UNION SELECT DISTINCT project FROM artifacts ORDER BY 1"
        ).fetchall()
    ]
