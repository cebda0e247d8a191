"""Per-project access through a real `catalog serve` (issue 25, item 3).

One service over a catalog of two projects: ``alpha`` (whose model is made
from a dataset of ``beta``: lineage crossing projects) and ``beta`` (a dataset
``zebra`` with the label ``mark=betamark``, a model made from alpha's data, a
refused event). Tokens managed with ``catalog token``, limited to ``alpha``,
must get nothing of ``beta`` through any route: every op of the query API
(table-driven over :data:`catalog.api.OPS`, so a new op cannot escape), every
GET route of the app (pages, the UI's JSON API, content, YAML), SQL, blobs;
writes to ``beta`` are 403; a revoked token fails at once.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability.helpers import catalog_env, run_cli
from servers import CatalogService, start_catalog_service

from catalog import Catalog, api
from catalog.events.codec import Codec
from catalog.events.model import ArtifactTagged, CatalogEvent
from catalog.log import Message, open_log

WRITE = "w" * 20 + "-all-projects"  # an environment token: every project, as before


class Seeded:
    def __init__(self, root: Path) -> None:
        self.env = catalog_env(
            root,
            CATALOG_ACCESS_FILE=str(root / "access.json"),
            CATALOG_WRITE_TOKEN=WRITE,
            CATALOG_ARTIFACT_PATH=str(root / "artifacts" / "{{project}}"),
        )
        self.env.pop("CATALOG_DB")
        self.tokens: dict[str, str] = {}
        for name, scope, projects in [
            ("alpha-read", "read", ["alpha"]),
            ("alpha-write", "write", ["alpha"]),
            ("all-read", "read", []),
            ("doomed", "read", ["alpha"]),
        ]:
            args = [f"--project={p}" for p in projects]
            done = run_cli(self.env, "token", "create", name, "--scope", scope, *args)
            assert done.returncode == 0, done.stderr
            self.tokens[name] = done.stdout.strip()
        log, path = self.env["CATALOG_LOG"], self.env["CATALOG_ARTIFACT_PATH"]

        def catalog(project: str) -> Catalog:
            db = str(root / f"{project}.duckdb")
            return Catalog(log=log, db=db, artifact_path=path, project=project, actor="x")

        with catalog("beta") as beta, catalog("alpha") as alpha:
            zebra = beta.log_artifact(
                "zebra", body=b"zebra bytes", kind="dataset", labels={"mark": "betamark"}
            )
            raw = alpha.log_artifact("raw", body=b"alpha bytes", kind="dataset", tag="v1")
            model = alpha.log_artifact(
                "model", body=b"weights", kind="model", sources=[raw.uri, zebra.uri]
            )
            beta.log_artifact("zebra-model", body=b"beta weights", kind="model", sources=[raw.uri])
            self.zebra_hash = zebra.hash
            self.raw, self.model, self.zebra = raw, model, zebra
        # a refused event of each project (a tag of an unknown version)
        codec = Codec()
        with open_log(log) as events:
            for project, key in (("beta", "zebra"), ("alpha", "raw")):
                ev = CatalogEvent(
                    project=project, key=key, actor="x", payload=ArtifactTagged("f" * 32, "t")
                )
                events.append([Message(ev.partition_key, codec.encode(ev))])
        self.server: CatalogService = start_catalog_service(self.env, root / "served.duckdb")
        self.url = self.server.url
        #: what must never reach an alpha token
        self.markers = ["zebra", "betamark", zebra.uid or "", zebra.hash or ""]

    def leaked(self, body: bytes) -> list[str]:
        return [m for m in self.markers if m.encode() in body]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    found = Seeded(tmp_path_factory.mktemp("access"))
    try:
        yield found
    finally:
        found.server.stop()


def call(
    url: str,
    token: str | None = None,
    *,
    method: str = "GET",
    body: bytes | None = None,
    media: str = "application/json",
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", media)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


# Every op of the query API, asked about beta (and, where it takes nothing, about all).
def probes(s: Seeded) -> dict[str, list[dict[str, str]]]:
    zebra, model = s.zebra, s.model
    return {
        "version": [{"uri": "store://datasets/beta/zebra"}, {"uri": f"store://datasets/beta/zebra^{zebra.uid}"}],
        "list_artifacts": [{}, {"project": "beta"}, {"name": "zebra"}, {"labels": "mark=betamark"}],
        "search_artifacts": [{}, {"project": "beta"}, {"name": "zebra"}],
        "versions_of": [{"project": "beta", "key": "zebra"}],
        "lineage": [
            {"uid": model.uid or "", "direction": "upstream", "depth": "5"},
            {"uid": s.raw.uid or "", "direction": "downstream", "depth": "5"},
            {"uid": zebra.uid or "", "direction": "downstream"},
        ],
        "lineage_graph": [
            {"uid": model.uid or "", "depth": "5"},
            {"uid": s.raw.uid or ""},
            {"uid": zebra.uid or ""},
        ],
        "links_to": [{"uid": zebra.uid or ""}],
        "links": [{"uid": zebra.uid or ""}, {"uid": model.uid or ""}],
        "tag_history": [{"project": "beta", "key": "zebra"}],
        "audit": [{}, {"project": "beta"}, {"key": "zebra"}],
        "audit_page": [{}, {"project": "beta"}],
        "event": [{"event_id": eid} for eid in s.zebra_events],
        "recent_events": [{"project": "beta", "key": "zebra"}],
        "outcome": [{"event_ids": eid} for eid in s.zebra_events],
        "diff": [
            {"since": "1d", "until": "now"},
            {"since": "1d", "until": "now", "project": "beta"},
        ],
        "dead_letters": [{}],
        "project": [{"name": "beta"}],
        "project_summaries": [{}],
        "project_names": [{}],
        "known_projects": [{}],
        "run": [{"project": "beta", "uid": "0" * 32}],
        "runs_of": [{"project": "beta"}],
        "blob_references": [{}],
        "references": [{"blobs": "true", "digest": "true"}],
        "lineage_records": [{}, {"project": "beta"}],
        "positions": [{}],
        "cut_at_time": [{"when": "now", "ends": "0:1000"}],
        "digest": [{}],
    }  # fmt: skip


def v1(s: Seeded, op: api.Op, params: dict[str, str]) -> str:
    query = urllib.parse.urlencode(params)
    return f"{s.url}{api.PREFIX}{op.path}" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def zebra_events(seeded: Seeded) -> list[str]:
    status, body = call(f"{seeded.url}{api.PREFIX}/events?project=beta", seeded.tokens["all-read"])
    assert status == 200, body
    ids = [row["event_id"] for row in json.loads(body)]
    assert ids
    seeded.zebra_events = ids  # type: ignore[attr-defined]
    return ids


def test_every_op_of_the_query_api_hides_other_projects(
    seeded: Seeded, zebra_events: list[str]
) -> None:
    table = probes(seeded)
    assert set(table) == {op.name for op in api.OPS}, "a new op needs its probes here"
    shown_to_all = 0
    for op in api.OPS:
        for params in table[op.name]:
            url = v1(seeded, op, params)
            status, body = call(url, seeded.tokens["alpha-read"])
            assert status in (200, 404), (url, status, body)
            if status == 200:
                assert not seeded.leaked(body), (url, seeded.leaked(body), body[:400])
            everything, full = call(url, seeded.tokens["all-read"])
            assert everything == 200 or status == 404, (url, everything, full)
            shown_to_all += bool(seeded.leaked(full))
    assert shown_to_all > 25  # the probes do reach beta's data with an all-project token


def test_lineage_crossing_projects_stops_at_the_hidden_one(seeded: Seeded) -> None:
    s = seeded
    for token, sees_beta in (("alpha-read", False), ("all-read", True), (WRITE, True)):
        given = s.tokens.get(token, token)
        status, body = call(
            v1(s, api.op("lineage"), {"uid": s.model.uid or "", "direction": "upstream"}), given
        )
        assert status == 200
        edges = json.loads(body)
        parents = {e.get("parent_key") for e in edges}
        assert "raw" in parents  # the walk within alpha is whole
        assert ("zebra" in parents) is sees_beta
        assert (b"beta" in body) is sees_beta  # not even named
        status, body = call(f"{s.url}/api/projects/alpha/artifacts/model/lineage?depth=5", given)
        assert status == 200 and (b"zebra" in body) is sees_beta and (b"beta" in body) is sees_beta
        status, body = call(
            v1(s, api.op("lineage"), {"uid": s.raw.uid or "", "direction": "downstream"}), given
        )
        assert status == 200 and (b"zebra" in body) is sees_beta


def test_lists_and_projects_name_only_the_tokens_projects(seeded: Seeded) -> None:
    s = seeded
    alpha = s.tokens["alpha-read"]
    for path in ("/projects", "/projects/names", "/projects/known"):
        status, body = call(f"{s.url}{api.PREFIX}{path}", alpha)
        assert status == 200 and b"alpha" in body and b"beta" not in body, (path, body)
    status, body = call(f"{s.url}/api/projects", alpha)
    assert status == 200 and b"alpha" in body and b"beta" not in body
    status, body = call(f"{s.url}{api.PREFIX}/dead-letters", alpha)
    assert status == 200 and len(json.loads(body)) == 1  # alpha's refused tag only
    status, body = call(f"{s.url}{api.PREFIX}/dead-letters", s.tokens["all-read"])
    assert status == 200 and len(json.loads(body)) == 2
    digests = {
        name: json.loads(call(f"{s.url}{api.PREFIX}/digest", s.tokens[name])[1])["digest"]
        for name in ("alpha-read", "all-read")
    }
    assert digests["alpha-read"] != digests["all-read"]  # a digest of what it sees


def routes_of_the_app() -> list[str]:
    """Every GET path of the app (pages, the UI's JSON API, the query API)."""
    from catalog.server import Server  # noqa: F401 - the app's routes are built there
    from catalog.web import api as web_api
    from catalog.web import pages

    paths = [r.path for r in pages.routes() + web_api.routes() if "GET" in (r.methods or ())]
    return paths


def test_every_page_and_ui_route_hides_other_projects(seeded: Seeded) -> None:
    s = seeded
    fill = {
        "project": "beta",
        "key": "zebra",
        "uid": s.zebra.uid or "",
        "name": "x",
    }
    alpha = s.tokens["alpha-read"]
    checked = 0
    for path in routes_of_the_app():
        url = s.url + re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)
        for query in ("", f"?uid={s.zebra.uid}"):
            status, body = call(url + query, alpha)
            assert status in (200, 303, 400, 404), (url, status, body[:300])
            # an error page may repeat what was asked; nothing else of beta's
            leaked = [m for m in s.leaked(body) if m not in url + query]
            assert not leaked, (url, leaked)
            checked += 1
            if path.endswith(("/artifacts/{key}", "/content", "/yaml")):
                assert status == 404, (url, status)  # as if it did not exist
    for path in ("/artifacts/content", "/artifacts/yaml"):
        for uri in ("store://datasets/beta/zebra", f"store://datasets/beta/zebra^{s.zebra.uid}"):
            url = f"{s.url}{api.PREFIX}{path}?uri={urllib.parse.quote(uri)}"
            status, body = call(url, alpha)
            assert status == 404 and b"zebra bytes" not in body, (url, status)
            assert not [m for m in s.leaked(body) if m not in uri], (url, body)
            assert call(url, s.tokens["all-read"])[0] == 200
    assert checked > 20


def test_sql_is_refused_to_a_project_limited_token(seeded: Seeded) -> None:
    s = seeded
    url = f"{s.url}{api.PREFIX}/sql?q=" + urllib.parse.quote("SELECT key FROM artifacts")
    status, body = call(url, s.tokens["alpha-read"])
    assert status == 403 and json.loads(body)["error"] == "Forbidden"
    assert b"zebra" not in body
    status, body = call(url, s.tokens["all-read"])
    assert status == 200 and b"zebra" in body
    status, _ = call(url, WRITE)
    assert status == 200


def test_blobs_of_other_projects_are_refused(seeded: Seeded) -> None:
    s = seeded
    digest = s.zebra.hash or ""
    beta_root = s.env["CATALOG_ARTIFACT_PATH"].replace("{{project}}", "beta")
    alpha_root = s.env["CATALOG_ARTIFACT_PATH"].replace("{{project}}", "alpha")
    path = f"{s.url}{api.PREFIX}{api.OBJECTS_PATH.format(digest=digest)}?root="
    status, body = call(path + urllib.parse.quote(beta_root), s.tokens["alpha-read"])
    assert status == 403 and b"zebra bytes" not in body
    assert call(path + urllib.parse.quote(alpha_root), s.tokens["alpha-read"])[0] == 404
    assert call(path + urllib.parse.quote(beta_root), s.tokens["all-read"]) == (200, b"zebra bytes")


def test_writes_to_another_project_are_403(seeded: Seeded) -> None:
    s = seeded
    write = s.tokens["alpha-write"]
    codec = Codec()

    def post(project: str, key: str, uid: str, token: str) -> tuple[int, bytes]:
        ev = CatalogEvent(
            project=project, key=key, actor="x", payload=ArtifactTagged(uid, "hand"),
            event_id=str(uuid.uuid4()),
        )  # fmt: skip
        body = api.frame_events([codec.encode(ev)])
        url = f"{s.url}{api.PREFIX}{api.EVENTS_PATH}"
        return call(url, token, method="POST", body=body, media=api.EVENTS_MEDIA)

    status, body = post("beta", "zebra", s.zebra.uid or "", write)
    assert status == 403 and json.loads(body)["error"] == "Forbidden", body
    assert post("alpha", "raw", s.raw.uid or "", s.tokens["alpha-read"])[0] == 403
    status, body = post("alpha", "raw", s.raw.uid or "", write)
    assert status == 200 and json.loads(body)["refused"] == {}, body
    # the UI's JSON API: beta is not there for this token; alpha is writable
    tag = json.dumps({"uid": s.zebra.uid, "tag": "x"}).encode()
    status, _ = call(
        f"{s.url}/api/projects/beta/artifacts/zebra/tag", write, method="POST", body=tag
    )
    assert status == 403
    tag = json.dumps({"uid": s.raw.uid, "tag": "x"}).encode()
    status, _ = call(
        f"{s.url}/api/projects/alpha/artifacts/raw/tag", write, method="POST", body=tag
    )
    assert status == 200
    # a laptop with only the URL and the token (writes go through the service)
    laptop = {k: v for k, v in s.env.items() if k not in ("CATALOG_LOG", "CATALOG_ARTIFACT_PATH")}
    laptop.update(CATALOG_API=s.url, CATALOG_TOKEN=write)
    data = Path(s.env["CATALOG_HOME"]).parent / "more.txt"
    data.write_text("more")
    refused = run_cli(laptop, "log", str(data), "--key", "more", "-p", "beta")
    assert refused.returncode == 6 and "not one of this token's projects" in refused.stderr
    done = run_cli(laptop, "log", str(data), "--key", "more", "-p", "alpha")
    assert done.returncode == 0, done.stderr
    assert b"more" not in call(f"{s.url}{api.PREFIX}/artifacts?project=beta", WRITE)[1]


def test_env_tokens_still_cover_every_project(seeded: Seeded) -> None:
    s = seeded
    status, body = call(f"{s.url}{api.PREFIX}/artifacts?project=beta", WRITE)
    assert status == 200 and b"zebra" in body
    assert call(f"{s.url}{api.PREFIX}/artifacts", None)[0] == 401


def test_revoked_tokens_fail_at_once_and_list_never_shows_a_token(seeded: Seeded) -> None:
    s = seeded
    doomed = s.tokens["doomed"]
    url = f"{s.url}{api.PREFIX}/artifacts?project=alpha"
    assert call(url, doomed)[0] == 200
    # a browser logged in with it, too
    listed = run_cli(s.env, "token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["name"] for r in rows} >= {"alpha-read", "doomed", "all-read"}
    assert all(set(r) == {"id", "name", "scope", "projects", "created"} for r in rows)
    for token in s.tokens.values():
        assert token not in listed.stdout
        assert token not in Path(s.env["CATALOG_ACCESS_FILE"]).read_text()
    revoked = run_cli(s.env, "token", "revoke", "doomed")
    assert revoked.returncode == 0, revoked.stderr
    status, body = call(url, doomed)
    assert status == 401, body
    assert call(url, s.tokens["alpha-read"])[0] == 200  # the others still work
