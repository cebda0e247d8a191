"""OpenLineage export: the catalog's runs and lineage as OpenLineage RunEvents.

Each recorded run becomes a ``START`` event (its inputs, pinned to the exact
versions read) and a ``COMPLETE`` or ``FAIL`` event (its outputs: the
versions it logged). Artifacts logged outside runs with lineage sources (by
the CLI or the SDK) become a small synthetic run each (job ``log/<key>``), so
no edge is lost. Datasets are named ``<key>`` in namespace
``catalog://<project>``; plain files and URLs keep their URL. Every catalog
dataset carries:

- the standard ``version`` facet (``datasetVersion`` = our version uid);
- a ``catalog`` facet: uid, sha256 content hash, the URI the consumer asked
  for (a tag, or ``latest``), kind — so "consumed latest → uid → sha256" is
  visible in Marquez or DataHub;
- a ``schema`` facet for datasets whose schema we know.

The output is JSON Lines (one event per line), deterministic for a given
catalog state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from catalog import __version__ as VERSION
from catalog import about

if TYPE_CHECKING:  # pragma: no cover
    from catalog.client import Catalog

#: This catalog, at this version: the project's own URL (pyproject.toml's
#: ``[project.urls]``, through :mod:`catalog.about`).
PRODUCER = f"{about.repository().rstrip('/')}/{VERSION}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets/1-0-1"
CATALOG_FACET_URL = f"{PRODUCER}#/facets/CatalogDatasetFacet"

_TYPES = {
    "integer": "int",
    "number": "double",
    "string": "string",
    "boolean": "boolean",
    "datetime": "timestamp",
}


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **fields}


def run_id_of(text: str) -> str:
    """The OpenLineage ``runId`` of a run uid (32 hex: that UUID) or any other stable text."""
    try:
        return str(uuid.UUID(hex=text))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catalog:{text}"))


def synthetic_run_id(project: str, uid: str) -> str:
    """The ``runId`` of the synthetic run of version ``uid``, logged outside runs."""
    return run_id_of(f"log/{project}/{uid}")


def _dataset(row: dict[str, Any], asked: str | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "version": _facet(
            f"{FACETS}/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
            datasetVersion=row["uid"],
        ),
        "catalog": _facet(
            CATALOG_FACET_URL,
            uid=row["uid"],
            sha256=row.get("hash"),
            kind=row.get("kind"),
            askedFor=asked,
            uri=f"store://{row['category']}/{row['project']}/{row['key']}^{row['uid']}",
        ),
    }
    spec = json.loads(row["spec"]) if isinstance(row.get("spec"), str) else {}
    fields = (spec.get("schema") or {}).get("fields") if isinstance(spec, dict) else None
    if fields:
        facets["schema"] = _facet(
            f"{FACETS}/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
            fields=[
                {"name": str(f.get("name")), "type": _TYPES.get(str(f.get("type")), "string")}
                for f in fields
                if isinstance(f, dict)
            ],
        )
    return {"namespace": f"catalog://{row['project']}", "name": row["key"], "facets": facets}


def _external(url: str, digest: str | None) -> dict[str, Any]:
    scheme, _, rest = url.partition("://")
    namespace, name = (
        (f"{scheme}://{rest.split('/', 1)[0]}", "/" + rest.split("/", 1)[-1])
        if rest
        else ("file", url)
    )
    facets = {"catalog": _facet(CATALOG_FACET_URL, sha256=digest, askedFor=url)} if digest else {}
    return {"namespace": namespace, "name": name, "facets": facets}


def _event(
    kind: str,
    when: Any,
    run_id: str,
    namespace: str,
    job: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    run_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": when.isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
    }


def lineage_records(con: Any, project: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """What the export is made of: runs and versions (of ``project``, or all), and
    every ``source`` edge. A read of the catalog service (``catalog.api``)."""
    where = "" if project is None else " WHERE project = ?"
    params = [] if project is None else [project]
    runs = con.sql(f"SELECT * FROM runs{where} ORDER BY started, uid", params=params)
    versions = con.sql(f"SELECT * FROM artifacts{where} ORDER BY uid", params=params)
    edges = con.sql(
        "SELECT uid, name, parent_uri, parent_uid, parent_hash FROM lineage "
        "WHERE relation = 'source' ORDER BY uid, name, parent_uri"
    )
    return {
        "runs": runs.to_arrow_table().to_pylist(),
        "versions": versions.to_arrow_table().to_pylist(),
        "edges": edges.to_arrow_table().to_pylist(),
    }


def run_events(catalog: Catalog, project: str | None = None) -> Iterator[dict[str, Any]]:
    """Every run (and every lineage-bearing log outside runs) as OpenLineage events."""
    records = catalog.read("lineage_records", project=project)
    runs, edges = records["runs"], records["edges"]
    versions = {r["uid"]: r for r in records["versions"]}
    by_tree: dict[str, list[dict[str, Any]]] = {}
    for row in versions.values():
        if row["tree"]:
            by_tree.setdefault(row["tree"], []).append(row)
    for run in runs:
        run_id = run_id_of(run["uid"])
        inputs = []
        for item in json.loads(run["inputs"] or "[]"):
            parent = versions.get(item.get("uid") or "")
            inputs.append(
                _dataset(parent, item.get("url"))
                if parent
                else _external(item["url"], item.get("hash"))
            )
        outputs = [
            _dataset(v)
            for v in sorted(by_tree.get(run["uid"], []), key=lambda v: (v["key"], v["uid"]))
        ]
        facets = {}
        yield _event("START", run["started"], run_id, run["project"], run["name"], inputs, [])
        if run["finished"] is None:
            continue
        kind = (
            "COMPLETE"
            if run["state"] == "completed"
            else ("ABORT" if run["state"] == "aborted" else "FAIL")
        )
        if run["error"]:
            facets["errorMessage"] = _facet(
                f"{FACETS}/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                message=run["error"],
                programmingLanguage="python",
            )
        yield _event(
            kind, run["finished"], run_id, run["project"], run["name"], inputs, outputs, facets
        )
    # versions logged outside runs that have sources: one synthetic run each
    sources: dict[str, list[dict[str, Any]]] = {}
    for edge in edges:
        sources.setdefault(edge["uid"], []).append(edge)
    for uid in sorted(sources):
        row = versions.get(uid)
        if row is None or row["tree"]:
            continue
        inputs = [
            _dataset(versions[e["parent_uid"]], e["parent_uri"])
            if e["parent_uid"] in versions
            else _external(e["parent_uri"], e["parent_hash"])
            for e in sources[uid]
        ]
        run_id = synthetic_run_id(row["project"], uid)
        job = f"log/{row['key']}"
        yield _event("START", row["created"], run_id, row["project"], job, inputs, [])
        yield _event(
            "COMPLETE", row["created"], run_id, row["project"], job, inputs, [_dataset(row)]
        )


def export_lines(catalog: Catalog, project: str | None = None) -> Iterator[str]:
    """The events as JSON Lines."""
    for event in run_events(catalog, project):
        yield json.dumps(event, sort_keys=True, default=str, ensure_ascii=False)
