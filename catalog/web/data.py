"""What the pages and the JSON API show: one function per view, over the public API.

Every function takes the :class:`~catalog.client.Catalog` the server owns (its
own projection file, caught up before each read) and returns plain data —
dicts, lists, :class:`~catalog.artifacts.base.Artifact` objects — that the
HTML templates render and the JSON API serialises, so the two always agree.
Writes go through the Catalog's methods, which emit the same events as the
SDK and the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from catalog import query
from catalog.artifacts.base import Artifact
from catalog.client import Catalog
from catalog.datastore import DataItem
from catalog.errors import ArtifactNotFound, InvalidInput
from catalog.execution import get_run
from catalog.store import root_of
from catalog.uri import MAX_ITERATION, StoreURI, is_store_uri
from catalog.validation import (
    parse_label_args,
    parse_label_filter,
    parse_time,
    parse_whole,
    validate_key,
    validate_project,
    validate_tag,
    validate_uid,
)

#: Artifact tabs of a project: name → (title, categories).
TABS: dict[str, tuple[str, tuple[str, ...]]] = {
    "datasets": ("Datasets", ("datasets",)),
    "models": ("Models", ("models",)),
    "files": ("Files", ("artifacts",)),
    "features": ("Feature store", ("feature-sets", "feature-vectors")),
    "all": ("All", ()),
}
SORTS = ("updated", "created", "key", "size")


# ------------------------------------------------------------------ search


@dataclass(frozen=True)
class Whole:
    """A whole-number query parameter: read here (:meth:`read`) and declared in the
    OpenAPI document from here (:meth:`schema`), so the two cannot disagree."""

    name: str
    default: int
    lo: int
    hi: int
    doc: str

    def read(self, params: Mapping[str, str]) -> int:
        """The value given (empty or absent: the default); a 400 outside the bounds."""
        text = params.get(self.name, "")
        return parse_whole(text, self.lo, self.hi, self.name) if text else self.default

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi, "default": self.default}


@dataclass(frozen=True)
class Flag:
    """A yes/no query parameter (a checkbox sends ``on``, links ``1``), read and declared
    from here like :class:`Whole`; any other spelling is a 400."""

    name: str
    doc: str

    YES = ("1", "true", "on")
    NO = ("0", "false", "off")

    def read(self, params: Mapping[str, str], default: bool = False) -> bool:
        text = params.get(self.name, "")
        if not text:
            return default
        if text in self.YES or text in self.NO:
            return text in self.YES
        raise InvalidInput(
            f"{self.name} is one of {', '.join(self.YES + self.NO)} (or left out), not {text!r}"
        )

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": [*self.YES, *self.NO]}


PAGE = Whole("page", 1, 1, 10**9, "Page number, from 1.")
PER_PAGE = Whole("per_page", 50, 1, 200, "Rows per page.")
DEPTH = Whole("depth", 3, 0, 10, "Lineage hops each way.")
LIMIT = Whole("limit", 50, 1, 1000, "At most this many events, newest first.")
ITER = Whole("iter", 0, 0, MAX_ITERATION, "Iteration (hyper-parameter child).")
DESC = Flag("desc", "Descending (the default when sorting by a time or size) or not.")
VERSIONS = Flag("versions", "Every version, not only the latest of each key.")
INLINE = Flag("inline", "Display an image or sandboxed HTML/SVG inline, not as a download.")
LINEAGE_DEPTH = DEPTH.default
HISTORY_LIMIT = LIMIT.default


@dataclass(frozen=True)
class Search:
    """The artifact-list filters, as given in the query string (pages and API alike)."""

    tab: str = "datasets"
    name: str = ""
    labels: str = ""
    tag: str = ""
    since: str = ""
    until: str = ""
    sort: str = "updated"
    desc: bool = True
    page: int = 1
    per_page: int = 50
    versions: bool = False  # every version, not only the latest of each key

    @classmethod
    def from_params(cls, params: Mapping[str, str], default_tab: str = "datasets") -> Search:
        tab = params.get("tab", "") or default_tab
        if tab not in TABS:
            raise InvalidInput(f"unknown tab {tab!r}; one of {', '.join(TABS)}")
        sort = params.get("sort", "") or "updated"
        if sort not in SORTS:
            raise InvalidInput(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        return cls(
            tab=tab,
            name=params.get("name", "").strip(),
            labels=params.get("labels", "").strip(),
            tag=params.get("tag", "").strip(),
            since=params.get("since", "").strip(),
            until=params.get("until", "").strip(),
            sort=sort,
            desc=DESC.read(params, default=sort in ("updated", "created", "size")),
            page=PAGE.read(params),
            per_page=PER_PAGE.read(params),
            versions=VERSIONS.read(params),
        )

    def query(self, project: str) -> tuple[query.ListQuery, tuple[str, ...]]:
        """The :class:`~catalog.query.ListQuery` and categories (user text validated)."""
        if self.tag and self.tag != "latest":
            validate_tag(self.tag)
        # A tag other than latest names one version per key, all versions or not.
        tag = self.tag if self.tag and self.tag != "latest" else None
        if tag is None and self.versions:
            tag = "*"
        q = query.ListQuery(
            project=validate_project(project),
            name=self.name or None,
            tag=tag,
            labels=parse_label_filter(self.labels or None),
            since=parse_time(self.since or None),
            until=parse_time(self.until or None),
            order=self.sort,
            descending=self.desc,
            limit=self.per_page,
            offset=(self.page - 1) * self.per_page,
        )
        return q, TABS[self.tab][1]

    def params(self, **changes: Any) -> str:
        """The query string of this search with ``changes`` (defaults left out)."""
        values = replace(self, **changes)
        default = Search(tab=values.tab)
        out: dict[str, str] = {"tab": values.tab}
        for name in ("name", "labels", "tag", "since", "until", "sort"):
            if getattr(values, name) != getattr(default, name):
                out[name] = getattr(values, name)
        natural_desc = values.sort in ("updated", "created", "size")
        if values.desc != natural_desc:
            out["desc"] = "1" if values.desc else "0"
        if values.per_page != default.per_page:
            out["per_page"] = str(values.per_page)
        if values.versions:
            out["versions"] = "1"
        if values.page != 1:
            out["page"] = str(values.page)
        return urlencode(out)


@dataclass
class Listing:
    """One page of artifacts and how to page on."""

    search: Search
    items: list[dict[str, Any]]
    total: int
    capped: bool
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, -(-self.total // self.search.per_page))

    @property
    def first(self) -> int:
        return (self.search.page - 1) * self.search.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def has_next(self) -> bool:
        return self.capped or self.search.page < self.pages

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "total": self.total,
            "total_is_lower_bound": self.capped,
            "page": self.search.page,
            "per_page": self.search.per_page,
            "pages": None if self.capped else self.pages,
        }


def pinned_uri(row: Mapping[str, Any]) -> str:
    return str(
        StoreURI(
            category=row["category"],
            project=row["project"],
            key=row["key"],
            iteration=int(row["iteration"] or 0),
            uid=row["uid"],
        )
    )


def summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A listing row as the pages and the API show it."""
    producer = dict(row["producer"] or {})
    return {
        "uri": pinned_uri(row),
        "project": row["project"],
        "key": row["key"],
        "iteration": int(row["iteration"] or 0),
        "uid": row["uid"],
        "kind": row["kind"],
        "category": row["category"],
        "tags": list(row.get("tags") or []),
        "labels": dict(row["labels"] or {}),
        "producer": {k: v for k, v in producer.items() if v is not None},
        "run": row["tree"] or None,
        "owner": producer.get("owner") or row["created_by"],
        "created": row["created"],
        "updated": row["updated"],
        "size": row["size"],
        "hash": row["hash"],
        "format": row["format"],
        "deleted": bool(row["deleted"]),
    }


def list_artifacts(cat: Catalog, project: str, search: Search) -> Listing:
    q, categories = search.query(project)
    page = cat.read("search_artifacts", q=q, categories=categories)
    return Listing(search, [summary(r) for r in page["rows"]], page["total"], page["capped"])


# ---------------------------------------------------------------- projects


_overview_cache: dict[str, tuple[dict[int, int], list[dict[str, Any]]]] = {}


def projects(cat: Catalog) -> list[dict[str, Any]]:
    """Every project with live keys per tab, versions, runs and last activity.

    Cached per projection position: it only changes when events are applied.
    """
    with cat.session():
        at = cat.positions()
        cached = _overview_cache.get(cat.reader.where)
        if cached is not None and cached[0] == at:
            return cached[1]
        rows = cat.read("project_summaries")
    result = []
    for r in rows:
        counts = r["counts"]
        result.append(
            {
                "name": r["name"],
                "description": r["description"],
                "owner": r["owner"],
                "labels": dict(r["labels"] or {}),
                "artifact_path": r["artifact_path"],
                "counts": {
                    tab: sum(counts.get(c, 0) for c in cats)
                    for tab, (_, cats) in TABS.items()
                    if tab != "all"
                },
                "versions": r["versions"],
                "runs": r["runs"],
                "last_activity": r["last_activity"],
            }
        )
    _overview_cache[cat.reader.where] = (at, result)
    return result


def project_names(cat: Catalog) -> list[str]:
    names: list[str] = cat.read("project_names")
    return names


# ---------------------------------------------------------------- artifact


def version_uri(
    project: str, key: str, *, uid: str | None = None, tag: str | None = None, iteration: int = 0
) -> StoreURI:
    """The URI a page address names: a version by uid, by tag, or the latest."""
    validate_project(project)
    validate_key(key)
    if uid:
        validate_uid(uid)
    if tag:
        validate_tag(tag)
    return StoreURI(
        category="artifacts", project=project, key=key, iteration=iteration, tag=tag, uid=uid
    )


def get_version(
    cat: Catalog,
    project: str,
    key: str,
    *,
    uid: str | None = None,
    tag: str | None = None,
    iteration: int = 0,
) -> Artifact:
    """The version a page names; deleted versions are found by uid only."""
    uri = version_uri(project, key, uid=uid, tag=tag, iteration=iteration)
    return cat.get_artifact(uri, include_deleted=bool(uid))


def artifact(
    cat: Catalog,
    project: str,
    key: str,
    *,
    uid: str | None = None,
    tag: str | None = None,
    iteration: int = 0,
) -> dict[str, Any]:
    """Everything the artifact page shows about one version."""
    art = get_version(cat, project, key, uid=uid, tag=tag, iteration=iteration)
    version = art.uid or ""
    with cat.session():
        versions = cat.read("versions_of", project=project, key=key, iteration=art.iter)
        graph = cat.read("lineage_graph", uid=version, depth=LINEAGE_DEPTH)
        linked_from = cat.read("links_to", uid=version)
        history = cat.read("recent_events", project=project, key=key, limit=HISTORY_LIMIT)
        names = cat.read("project_names")
    return {
        "artifact": art,
        "versions": versions["rows"],
        "versions_total": versions["total"],
        "lineage": graph,
        "linked_from": linked_from,
        "history": [_event(e) for e in history],
        "projects": names,
    }


def _event(row: Mapping[str, Any]) -> dict[str, Any]:
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    return {
        "position": f"{row['partition']}:{row['offset']}",
        "logged_at": row["logged_at"],
        "occurred_at": row["occurred_at"],
        "clock": query.skew_note(row["clock_skew_s"]),
        "actor": row["actor"],
        "type": row["type"],
        "run_uid": row["run_uid"],
        "event_id": row["event_id"],
        "payload": payload,
    }


def artifact_document(art: Artifact) -> dict[str, Any]:
    """The API's artifact: the MLRun-like document plus its pinned URI."""
    return {"uri": art.uri, **art.to_dict()}


def lineage(cat: Catalog, project: str, key: str, uid: str | None, depth: int) -> dict[str, Any]:
    art = get_version(cat, project, key, uid=uid)
    graph = cat.read("lineage_graph", uid=art.uid or "", depth=depth)
    return {"uri": art.uri, **graph}


def history(cat: Catalog, project: str, key: str, limit: int) -> list[dict[str, Any]]:
    validate_project(project)
    validate_key(key)
    events = cat.read("recent_events", project=project, key=key, limit=limit)
    return [_event(e) for e in events]


def versions(cat: Catalog, project: str, key: str) -> dict[str, Any]:
    validate_project(project)
    validate_key(key)
    page = cat.read("versions_of", project=project, key=key)
    if not page["rows"]:
        raise ArtifactNotFound(f"store://artifacts/{project}/{key}", "no versions")
    return {"items": page["rows"], "total": page["total"]}


def dataitem(cat: Catalog, project: str, key: str, uid: str | None) -> tuple[Artifact, DataItem]:
    """The version and a verified reader of its content, if the catalog stores it."""
    art = get_version(cat, project, key, uid=uid)
    if not art.hash or root_of(art.target_path) is None:
        raise InvalidInput(
            f"{art.uri} has no content in the catalog's store"
            + (f" (it refers to {art.target_path})" if art.target_path else "")
            + "; the UI serves only stored, verified content"
        )
    return art, cat.get_dataitem(art)


def attachment(cat: Catalog, project: str, key: str, uid: str | None, name: str) -> bytes:
    """An attachment of a version (a plot's HTML viewer), read and verified."""
    art = get_version(cat, project, key, uid=uid)
    found = (art.spec.attachments or {}).get(name)
    root = root_of(str(found.get("target_path") or "")) if found else None
    if not found or root is None:
        raise InvalidInput(f"{art.uri} has no attachment {name!r}")
    return cat.store_for(root).get_bytes(str(found["hash"]))


# --------------------------------------------------------------------- runs


def run(cat: Catalog, project: str, uid: str) -> dict[str, Any]:
    """A run (job) with the exact versions it read and what it logged."""
    validate_project(project)
    validate_uid(uid)
    row = get_run(uid, project=project, catalog=cat)  # RunNotFound: 404
    for item in row["inputs"]:
        item["link"] = _version_link(item.get("uri"), item.get("uid"))
    page = cat.read(
        "search_artifacts",
        q=query.ListQuery(
            project=project, producer=uid, tag="*", limit=500, order="key", descending=False
        ),
    )
    row["labels"] = dict(row["labels"] or {})
    row["outputs"] = dict(row["outputs"] or {})
    return {
        "run": row,
        "artifacts": [summary(r) for r in page["rows"]],
        "artifacts_total": page["total"],
    }


def runs(cat: Catalog, project: str, page: int, per_page: int) -> dict[str, Any]:
    validate_project(project)
    result = cat.read("runs_of", project=project, limit=per_page, offset=(page - 1) * per_page)
    for r in result["rows"]:
        r["labels"] = dict(r["labels"] or {})
    return {"items": result["rows"], "total": result["total"], "page": page, "per_page": per_page}


def _version_link(uri: str | None, uid: str | None) -> dict[str, Any] | None:
    """Where a store URI (or a uid in it) points: project, key, uid."""
    if not uri or not is_store_uri(uri):
        return None
    try:
        parsed = StoreURI.parse(uri)
    except InvalidInput:
        return None
    return {"project": parsed.project, "key": parsed.key, "uid": uid or parsed.uid}


def link_target(uri: str) -> dict[str, Any] | None:
    return _version_link(uri, None)


# ------------------------------------------------------------------ manage


def add_tag(cat: Catalog, project: str, key: str, uid: str, tag: str) -> Artifact:
    """Put ``tag`` on this version (moving it from another version of the key)."""
    return cat.tag_artifact(str(version_uri(project, key, uid=uid)), tag)


def remove_tag(cat: Catalog, project: str, key: str, uid: str, tag: str) -> None:
    cat.untag_artifact(str(version_uri(project, key, uid=uid)), tag)


def parse_labels_text(text: str) -> dict[str, str]:
    """``key=value`` per line (blank lines ignored), as the label editor sends them."""
    return parse_label_args([line.strip() for line in text.splitlines() if line.strip()])


def set_labels(
    cat: Catalog, project: str, key: str, uid: str, labels: Mapping[str, str]
) -> Artifact:
    """Make the version's labels exactly ``labels`` (one ArtifactUpdated event)."""
    art = get_version(cat, project, key, uid=uid)
    current = art.labels
    changed = {k: v for k, v in labels.items() if current.get(k) != v}
    removed = sorted(set(current) - set(labels))
    if not changed and not removed:
        return art
    return cat.update_artifact(art.uri, labels=changed, remove_labels=removed)


def delete_version(
    cat: Catalog, project: str, key: str, uid: str, reason: str | None = None
) -> list[str]:
    return cat.delete_artifact(str(version_uri(project, key, uid=uid)), reason=reason or None)
