"""The web UI over HTTP: every page and API route, escaping, paging, writes, security.

A small but realistic catalog is built once per module with the SDK (runs,
a dataset with preview and stats, a model, a plot, feature-store objects, a
label full of HTML); the app serves it from its own projection file through
Starlette's TestClient. Tests that write get a fresh catalog of their own.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from starlette.routing import Route
from starlette.testclient import TestClient

from catalog import Catalog, run_local
from catalog.artifacts import FeatureSetArtifact, FeatureVectorArtifact, PlotArtifact
from catalog.errors import DigestMismatch, InvalidInput
from catalog.server import check_bind
from catalog.web import api as web_api
from catalog.web import create_app
from catalog.web.openapi import document
from catalog.web.security import Guard

BASE = "http://127.0.0.1"
EVIL = '<script>alert("x")</script>'


def tiny_png(width: int = 8, height: int = 8) -> bytes:
    """A valid PNG (red square), made without any imaging library."""
    raw = b"".join(b"\x00" + bytes([200, 60, 60] * width) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class Demo:
    """A catalog built with the SDK, and what the tests need to know about it."""

    root: Path
    writer: Catalog
    uris: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    between: datetime | None = None  # after old-report, before everything else

    @property
    def log(self) -> str:
        return self.writer.config.log

    def ui_catalog(self, name: str = "ui.duckdb") -> Catalog:
        return Catalog(log=self.log, db=str(self.root / name), project="demo", actor="web")


FRAME = pd.DataFrame(
    {
        "customer_id": range(1, 41),
        "age": [20 + (i * 7) % 50 for i in range(40)],
        "spend": [round(10.5 * ((i * 13) % 17), 2) for i in range(40)],
        "segment": [["gold", "silver", "bronze"][i % 3] for i in range(40)],
    }
)


def build_demo(root: Path) -> Demo:
    writer = Catalog(
        log=f"file://{root / 'events.db'}",
        db=str(root / "sdk.duckdb"),
        artifact_path=str(root / "artifacts"),
        project="demo",
        actor="alice",
    )
    demo = Demo(root, writer)
    writer.configure_project("demo", description="Churn models", owner="alice")
    old = writer.log_artifact("old-report", body=b"old report\n", labels={"team": "ops"})
    demo.uris["old-report"] = old.uri
    time.sleep(0.05)
    demo.between = datetime.now(UTC)
    time.sleep(0.05)
    notes_body = b"<script>alert(1)</script> plain notes\n"
    notes = writer.log_artifact(
        "notes",
        body=notes_body,
        labels={"note": EVIL, "team": "ml"},
        filename="notes.txt",
        description="<b>not bold</b>",
    )
    demo.uris["notes"], demo.bodies["notes"] = notes.uri, notes_body

    def ingest(context: Any, rows: int = 40) -> None:
        context.log_dataset("sales", df=FRAME.head(rows), labels={"team": "ml", "stage": "raw"})
        context.log_result("rows", rows)

    first = run_local(handler=ingest, name="ingest", params={"rows": 40}, catalog=writer)
    dataset = first.artifact("sales").meta
    demo.runs["ingest"], demo.uris["sales-v1"] = first.uid, dataset.uri
    demo.bodies["sales-v1"] = writer.get_dataitem(dataset.uri).get()
    writer.tag_artifact(dataset.uri, "train")

    def train(context: Any, data: Any, epochs: int = 1) -> None:
        context.log_model(
            "churn-model",
            body=b"model-bytes",
            format="pkl",
            framework="sklearn",
            algorithm="LogisticRegression",
            metrics={"accuracy": 0.91, "auc": 0.875},
            parameters={"C": 1.0, "max_iter": 100},
            labels={"team": "ml"},
        )
        context.log_artifact(PlotArtifact("confusion", body=tiny_png()))
        context.log_result("accuracy", 0.91)

    second = run_local(
        handler=train,
        name="train",
        inputs={"data": "store://datasets/demo/sales:train"},
        params={"epochs": 3},
        catalog=writer,
    )
    demo.runs["train"] = second.uid
    demo.uris["churn-model"] = second.outputs["churn-model"]
    demo.uris["confusion"] = second.outputs["confusion"]
    demo.bodies["confusion"] = tiny_png()
    v2_body = FRAME.to_csv(index=False).encode()
    v2 = writer.log_artifact(
        "sales",
        body=v2_body,
        kind="dataset",
        format="csv",
        filename="sales.csv",
        labels={"team": "ml", "stage": "clean"},
        sources=[dataset.uri],
    )
    demo.uris["sales-v2"], demo.bodies["sales-v2"] = v2.uri, v2_body
    writer.log_item(
        FeatureSetArtifact(
            "customers",
            entities=["customer_id"],
            features=[{"name": "age", "value_type": "int"}, "segment"],
            timestamp_key="ts",
        )
    )
    writer.log_item(
        FeatureVectorArtifact("churn-features", features=["customers.age", "customers.segment"])
    )
    writer.log_artifact("external", target_path="s3://somewhere/else.csv", format="csv")
    writer.configure_project("vision", description="Image models", owner="bob")
    writer.log_artifact(
        "street-scenes", body=b"a,b\n1,2\n", kind="dataset", format="csv", project="vision"
    )
    return demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as mp:  # module scope: keep the real home out too
        mp.setenv("CATALOG_HOME", str(root / "home"))
        mp.setenv("XDG_CONFIG_HOME", str(root / "config"))
        built = build_demo(root)
        yield built
        built.writer.close()


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    with TestClient(create_app(demo.ui_catalog()), base_url=BASE) as c:
        yield c


def copy_demo(demo: Demo, root: Path) -> Demo:
    """The same catalog under ``root`` (its log copied; new bytes go under ``root``)."""
    source = sqlite3.connect(demo.log.removeprefix("file://"))
    target = sqlite3.connect(root / "events.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    writer = Catalog(
        log=f"file://{root / 'events.db'}",
        db=str(root / "sdk.duckdb"),
        artifact_path=str(root / "artifacts"),
        project="demo",
        actor="alice",
    )
    return Demo(root, writer, dict(demo.uris), dict(demo.runs), dict(demo.bodies), demo.between)


@pytest.fixture
def fresh(demo: Demo, tmp_path: Path) -> Iterator[tuple[Demo, TestClient]]:
    """A copy of the catalog and a client of their own, for tests that write."""
    copy = copy_demo(demo, tmp_path)
    with TestClient(create_app(copy.ui_catalog()), base_url=BASE) as c:
        yield copy, c
    copy.writer.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def uid_of(uri: str) -> str:
    return uri.rsplit("^", 1)[1]


def keys_in(html: str) -> list[str]:
    return re.findall(r'<a class="key" href="[^"]+">([^<]+)</a>', html)


# ---------------------------------------------------------------- projects


def test_projects_page_counts_each_tab(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert "demo" in r.text and "Churn models" in r.text
    api = client.get("/api/projects").json()["items"]
    (project,) = [p for p in api if p["name"] == "demo"]
    assert project["counts"] == {"datasets": 1, "models": 1, "files": 4, "features": 2}
    assert project["runs"] == 2 and project["versions"] == 9
    for tab, n in project["counts"].items():
        assert f'href="/projects/demo/artifacts?tab={tab}"><b>{n}</b>' in r.text


def test_project_switcher_and_redirects(client: TestClient) -> None:
    r = client.get("/switch?project=demo", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/demo/artifacts"
    r = client.get("/projects/demo", follow_redirects=False)
    assert r.headers["location"] == "/projects/demo/artifacts"
    page = client.get("/projects/demo/artifacts").text
    assert '<option value="demo" selected>demo</option>' in page
    assert client.get("/switch?project=Not%20A%20Project").status_code == 400


# ------------------------------------------------------------ artifact list


@pytest.mark.parametrize(
    ("tab", "keys"),
    [
        ("datasets", ["sales"]),
        ("models", ["churn-model"]),
        ("files", ["confusion", "external", "notes", "old-report"]),
        ("features", ["churn-features", "customers"]),
    ],
)
def test_tabs_list_their_categories(client: TestClient, tab: str, keys: list[str]) -> None:
    r = client.get(f"/projects/demo/artifacts?tab={tab}&sort=key")
    assert r.status_code == 200
    assert keys_in(r.text) == keys
    api = client.get(f"/api/projects/demo/artifacts?tab={tab}&sort=key").json()
    assert [i["key"] for i in api["items"]] == keys  # the API agrees with the page


def test_list_columns(client: TestClient, demo: Demo) -> None:
    text = client.get("/projects/demo/artifacts?tab=datasets").text
    row = text[text.index('<a class="key"') :]
    row = row[: row.index("</tr>")]
    assert uid_of(demo.uris["sales-v2"])[:12] in row  # the latest version
    assert '<span class="chip tag">latest</span>' in row
    assert "<b>stage</b>=clean" in row and "<b>team</b>=ml" in row
    assert "alice" in row  # owner
    assert "<time datetime=" in row
    item = client.get("/api/projects/demo/artifacts?tab=datasets").json()["items"][0]
    assert item["uri"] == demo.uris["sales-v2"]
    assert item["size"] == len(demo.bodies["sales-v2"])
    producer_link = f"/projects/demo/runs/{demo.runs['train']}"
    models = client.get("/projects/demo/artifacts?tab=models").text
    assert producer_link in models  # the producer links to its run


def test_search_by_name_labels_tag_and_versions(client: TestClient) -> None:
    def keys(query: str) -> list[str]:
        r = client.get(f"/projects/demo/artifacts?tab=all&sort=key&{query}")
        assert r.status_code == 200, r.text
        api = client.get(f"/api/projects/demo/artifacts?sort=key&{query}").json()
        assert [i["key"] for i in api["items"]] == keys_in(r.text)
        return keys_in(r.text)

    assert keys("name=CHURN") == ["churn-features", "churn-model"]
    assert keys("labels=team%3Dml") == ["churn-model", "notes", "sales"]
    assert keys("labels=team%3Dml,stage") == ["sales"]
    assert keys("labels=stage%3Draw") == []  # latest sales is stage=clean
    assert keys("labels=stage%3Draw&versions=1") == ["sales"]
    assert keys("tag=train") == ["sales"]
    assert keys("versions=1&name=sales") == ["sales", "sales"]


def test_search_by_time_range(client: TestClient, demo: Demo) -> None:
    assert demo.between is not None
    cut = demo.between.isoformat().replace("+00:00", "Z")
    old = client.get(f"/projects/demo/artifacts?tab=all&until={cut}")
    assert keys_in(old.text) == ["old-report"]
    new = client.get(f"/projects/demo/artifacts?tab=all&since={cut}&sort=key")
    assert "old-report" not in keys_in(new.text) and "notes" in keys_in(new.text)
    recent = client.get("/projects/demo/artifacts?tab=all&since=1h")
    assert len(keys_in(recent.text)) == 8
    assert keys_in(client.get("/projects/demo/artifacts?tab=all&until=1h").text) == []
    quick = client.get("/projects/demo/artifacts?tab=all").text
    for value in ("1h", "1d", "7d"):
        assert f"since={value}" in quick  # the quick picks


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("since=yesterday-ish", "InvalidTime"),
        ("labels=bad%20key%3Dx", "InvalidLabel"),
        ("tab=nope", "InvalidInput"),
        ("sort=color", "InvalidInput"),
        ("page=0", "InvalidInput"),
        ("per_page=5000", "InvalidInput"),
        ("tag=no%20spaces", "InvalidTag"),
    ],
)
def test_bad_search_is_400_with_the_error_shape(client: TestClient, query: str, error: str) -> None:
    r = client.get(f"/projects/demo/artifacts?{query}")
    assert r.status_code == 400 and error in r.text
    api = client.get(f"/api/projects/demo/artifacts?{query}")
    assert api.status_code == 400
    body = api.json()
    assert set(body) == {"error", "message", "status"}
    assert body["error"] == error and body["status"] == 400


def test_pagination_and_sorting(tmp_path: Path) -> None:
    writer = Catalog(
        log=f"file://{tmp_path / 'events.db'}",
        db=str(tmp_path / "sdk.duckdb"),
        artifact_path=str(tmp_path / "a"),
        project="many",
    )
    with writer.batch():
        for i in range(120):
            writer.log_artifact(f"item-{i:03d}", body=b"x" * (i + 1), labels={"n": str(i % 2)})
    writer.close()
    ui = Catalog(log=writer.config.log, db=str(tmp_path / "ui.duckdb"), project="many")
    with TestClient(create_app(ui), base_url=BASE) as c:
        first = c.get("/projects/many/artifacts?tab=files&sort=key&desc=0")
        assert keys_in(first.text) == [f"item-{i:03d}" for i in range(50)]
        assert "1–50 of 120" in first.text and 'rel="next"' in first.text
        third = c.get("/projects/many/artifacts?tab=files&sort=key&desc=0&page=3")
        assert keys_in(third.text) == [f"item-{i:03d}" for i in range(100, 120)]
        assert "101–120 of 120" in third.text and 'rel="next"' not in third.text
        beyond = c.get("/projects/many/artifacts?tab=files&page=9")
        assert keys_in(beyond.text) == [] and "No artifacts match" in beyond.text
        by_size = c.get("/projects/many/artifacts?tab=files&sort=size&per_page=25")
        assert keys_in(by_size.text)[:2] == ["item-119", "item-118"]
        api = c.get("/api/projects/many/artifacts?labels=n%3D1&per_page=20&page=2").json()
        assert api["total"] == 60 and api["pages"] == 3 and len(api["items"]) == 20
        assert not api["total_is_lower_bound"]
        # The next-page link keeps the filters.
        page = c.get("/projects/many/artifacts?tab=files&labels=n%3D1").text
        assert "labels=n%3D1" in page[page.index('rel="next"') - 200 :]


# ----------------------------------------------------------------- artifact


def test_dataset_page(client: TestClient, demo: Demo) -> None:
    uri = demo.uris["sales-v1"]
    r = client.get(f"/projects/demo/artifacts/sales?uid={uid_of(uri)}")
    assert r.status_code == 200
    text = r.text
    assert f'<code id="pinned-uri">{uri}</code>' in text
    assert f'data-copy="{uri}"' in text
    assert "/artifacts/objects/sha256/" in text  # target path
    assert f"/projects/demo/runs/{demo.runs['ingest']}" in text  # producer
    # preview, schema, stats with inline SVG histograms
    assert 'id="preview"' in text and "<th>segment</th>" in text and "<td>gold</td>" in text
    assert 'id="schema"' in text and "<td>spend</td>" in text
    stats = text[text.index('id="stats"') :]
    assert '<svg class="hist"' in stats and "<rect" in stats
    assert "3 / gold" in stats  # unique / top of a text column
    # versions with tags; the shown one is marked
    versions = text[
        text.index('id="versions"') : text.index("</table>", text.index('id="versions"'))
    ]
    assert versions.count("<tr class=") == 2
    assert '<span class="chip tag">train</span>' in versions
    # lineage: upstream nothing catalogued, downstream the model (the train run read it) and v2
    lineage = text[text.index('id="lineage"') :]
    assert '<svg class="lineage"' in lineage and "churn-model" in lineage and "confusion" in lineage
    # history
    history = text[text.index('id="history"') :]
    assert "ArtifactLogged" in history and "ArtifactTagged" in history and "tag train" in history


def test_model_and_plot_pages(client: TestClient, demo: Demo) -> None:
    model = client.get("/projects/demo/artifacts/churn-model").text
    assert 'id="metrics"' in model and "accuracy" in model and "0.91" in model
    assert 'id="parameters"' in model and "max_iter" in model
    assert "LogisticRegression" in model
    lineage = model[model.index('id="upstream"') :]
    assert f"uid={uid_of(demo.uris['sales-v1'])}" in lineage  # the exact version read
    plot = client.get("/projects/demo/artifacts/confusion").text
    match = re.search(r'<img class="plot" src="([^"]+)"', plot)
    assert match
    img = client.get(match.group(1).replace("&amp;", "&"))
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.headers["content-disposition"].startswith("inline")
    assert img.content == demo.bodies["confusion"]
    viewer = client.get(
        f"/projects/demo/artifacts/confusion/attachments/viewer.html?uid={uid_of(demo.uris['confusion'])}"
    )
    assert viewer.status_code == 200 and "sandbox" in viewer.headers["content-security-policy"]


def test_feature_store_pages(client: TestClient) -> None:
    fs = client.get("/projects/demo/artifacts/customers").text
    assert 'id="feature-set"' in fs and "customer_id" in fs and "<td>int</td>" in fs
    fv = client.get("/projects/demo/artifacts/churn-features").text
    assert 'id="feature-vector"' in fv and "customers.segment" in fv


def test_download_is_verified_and_exact(client: TestClient, demo: Demo) -> None:
    for name in ("notes", "sales-v1", "sales-v2"):
        uri = demo.uris[name]
        key = uri.split("/")[-1].split("^")[0]
        r = client.get(f"/projects/demo/artifacts/{key}/content?uid={uid_of(uri)}")
        assert r.status_code == 200
        assert r.content == demo.bodies[name]
        assert r.headers["content-disposition"].startswith("attachment")
        etag = r.headers["etag"]
        again = client.get(
            f"/projects/demo/artifacts/{key}/content?uid={uid_of(uri)}",
            headers={"if-none-match": etag},
        )
        assert again.status_code == 304
    # the API route serves the same bytes; latest by default
    api = client.get("/api/projects/demo/artifacts/sales/content")
    assert api.content == demo.bodies["sales-v2"]
    # text/HTML is never served inline from our origin
    notes = client.get("/projects/demo/artifacts/notes/content?inline=1")
    assert notes.headers["content-disposition"].startswith("attachment")


def test_directory_content_downloads_as_zip(client: TestClient) -> None:
    import io
    import zipfile

    r = client.get("/projects/demo/artifacts/churn-model/content")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "churn-model.pkl" in names


def test_directory_zips_stream_verified_and_are_limited(tmp_path: Path) -> None:
    """A directory's zip streams file by file (constant memory) with each file verified;
    at most ZIP_STREAMS run at once, the next is told to retry (503)."""
    import io
    import zipfile

    from catalog.web import pages

    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha" * 1000, "sub/b.bin": bytes(range(256)) * 600, "c": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
    cat = Catalog(
        log=f"file://{tmp_path / 'e.db'}", db=str(tmp_path / "c.duckdb"),
        artifact_path=str(tmp_path / "art"), project="demo",
    )  # fmt: skip
    art = cat.log_artifact("tree", local_path=src)
    with TestClient(create_app(cat), base_url=BASE) as c:
        r = c.get("/projects/demo/artifacts/tree/content")
        assert r.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        assert {n: archive.read(n) for n in archive.namelist()} == files
        taken = [pages.ZIP_SLOTS.acquire(blocking=False) for _ in range(pages.ZIP_STREAMS)]
        try:
            assert all(taken)
            busy = c.get("/api/projects/demo/artifacts/tree/content")
            assert busy.status_code == 503 and busy.json()["error"] == "Busy"
        finally:
            for _ in taken:
                pages.ZIP_SLOTS.release()
        # a changed file is never served as if it were the stored one
        manifest = cat.store_of(art).read_manifest(art.hash or "")
        blob = next(e for e in manifest.entries if e.path == "a.txt")
        path = tmp_path / "art" / "objects" / "sha256" / blob.digest[:2] / blob.digest[2:]
        path.write_bytes(b"tampered" * 600)
        # the stream is cut short (the server aborts the response; Starlette's test
        # client reports it as "response already started"), never a valid zip
        with pytest.raises((DigestMismatch, RuntimeError)):
            c.get("/projects/demo/artifacts/tree/content")
    cat.close()


def test_reference_content_is_not_served(client: TestClient) -> None:
    page = client.get("/projects/demo/artifacts/external").text
    assert "s3://somewhere/else.csv" in page and 'id="download"' not in page
    r = client.get("/api/projects/demo/artifacts/external/content")
    assert r.status_code == 400 and "serves only stored, verified content" in r.json()["message"]


def test_corrupt_content_is_refused(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    art = demo.writer.log_artifact("fragile", body=b"original bytes")
    Path(str(art.target_path)).write_bytes(b"tampered")
    r = c.get("/api/projects/demo/artifacts/fragile/content")
    assert r.status_code == 500
    assert r.json()["error"] == "DigestMismatch" and b"tampered" not in r.content
    assert c.get("/projects/demo/artifacts/fragile/content").status_code == 500


def test_yaml_download(client: TestClient, demo: Demo) -> None:
    uid = uid_of(demo.uris["sales-v1"])
    r = client.get(f"/projects/demo/artifacts/sales/yaml?uid={uid}")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    doc = yaml.safe_load(r.text)
    assert doc["kind"] == "dataset" and doc["metadata"]["uid"] == uid
    assert doc["spec"]["stats"]["age"]["count"] == 40
    assert client.get(f"/api/projects/demo/artifacts/sales/yaml?uid={uid}").text == r.text


def test_api_artifact_versions_lineage_history(client: TestClient, demo: Demo) -> None:
    uid = uid_of(demo.uris["sales-v1"])
    art = client.get(f"/api/projects/demo/artifacts/sales?uid={uid}").json()
    assert art["uri"] == demo.uris["sales-v1"] and art["metadata"]["tags"] == ["train"]
    assert client.get("/api/projects/demo/artifacts/sales?tag=train").json()["uri"] == art["uri"]
    versions = client.get("/api/projects/demo/artifacts/sales/versions").json()
    assert [v["uid"] for v in versions["items"]] == [
        uid_of(demo.uris["sales-v2"]),
        uid,
    ]
    lineage = client.get(f"/api/projects/demo/artifacts/sales/lineage?uid={uid}&depth=2").json()
    downstream = {e["key"] for e in lineage["edges"] if e["direction"] == "downstream"}
    assert downstream == {"churn-model", "confusion", "sales"}
    assert {n["key"] for n in lineage["nodes"]} >= {"sales", "churn-model"}
    history = client.get("/api/projects/demo/artifacts/sales/history").json()["items"]
    assert history[0]["type"] == "ArtifactLogged"  # newest first: v2
    assert {h["type"] for h in history} == {"ArtifactLogged", "ArtifactTagged"}


def test_not_found(client: TestClient) -> None:
    r = client.get("/projects/demo/artifacts/nope")
    assert r.status_code == 404 and "ArtifactNotFound" in r.text
    assert client.get("/api/projects/demo/artifacts/nope").json() == {
        "error": "ArtifactNotFound",
        "message": "artifact not found: store://artifacts/demo/nope",
        "status": 404,
    }
    assert client.get("/api/projects/demo/runs/" + "0" * 32).json()["error"] == "RunNotFound"
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/api/nothing").json()["error"] == "NotFound"
    r = client.delete("/api/projects")
    assert r.status_code == 405 and r.json()["status"] == 405
    assert client.get("/projects/Bad_Name/artifacts").status_code == 400


# --------------------------------------------------------------------- runs


def test_run_page_and_artifacts_tab(client: TestClient, demo: Demo) -> None:
    uid = demo.runs["train"]
    r = client.get(f"/projects/demo/runs/{uid}")
    assert r.status_code == 200
    text = r.text
    assert "train" in text and uid in text and "completed" in text
    assert 'id="params"' in text and "epochs" in text
    assert 'id="results"' in text and "accuracy" in text
    inputs = text[text.index('id="inputs"') :]
    assert "store://datasets/demo/sales:train" in inputs  # as asked
    assert f"uid={uid_of(demo.uris['sales-v1'])}" in inputs  # the exact version read
    tab = client.get(f"/projects/demo/runs/{uid}?tab=artifacts").text
    assert sorted(keys_in(tab)) == ["churn-model", "confusion"]
    api = client.get(f"/api/projects/demo/runs/{uid}").json()
    assert api["run"]["parameters"] == {"epochs": 3}
    assert sorted(a["key"] for a in api["artifacts"]) == ["churn-model", "confusion"]
    runs = client.get("/projects/demo/runs").text
    assert f"/projects/demo/runs/{demo.runs['ingest']}" in runs
    assert client.get("/api/projects/demo/runs").json()["total"] == 2


# ----------------------------------------------------------------- escaping


def test_user_text_is_escaped(client: TestClient) -> None:
    listing = client.get("/projects/demo/artifacts?tab=all").text
    page = client.get("/projects/demo/artifacts/notes").text
    for text in (listing, page):
        assert EVIL not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    searched = client.get("/projects/demo/artifacts?labels=%22%3E%3Cscript%3E").text
    assert '"><script>' not in searched
    assert (
        client.get("/api/projects/demo/artifacts/notes").json()["metadata"]["labels"]["note"]
        == EVIL
    )


def test_security_headers(client: TestClient) -> None:
    with TestClient(client.app, base_url=BASE) as first_visit:
        r = first_visit.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "catalog_session=" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


# ------------------------------------------------------------------- manage


def test_move_a_tag_and_see_it_moved(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    v1, v2 = uid_of(demo.uris["sales-v1"]), uid_of(demo.uris["sales-v2"])
    page = c.get(f"/projects/demo/artifacts/sales?uid={v2}").text
    r = c.post(
        "/projects/demo/artifacts/sales/tag",
        data={"uid": v2, "tag": "train", "csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    shown = c.get(r.headers["location"]).text  # read-your-writes
    assert "Tag train now names this version." in shown
    assert '<span class="chip tag">train</span>' in shown[: shown.index('id="versions"')]
    versions = c.get("/api/projects/demo/artifacts/sales/versions").json()["items"]
    assert {v["uid"]: v["tags"] for v in versions} == {v2: ["latest", "train"], v1: []}
    # the same event the SDK emits, by the UI's actor
    events = demo.writer.audit(project="demo", key="sales", type="ArtifactTagged")
    assert events[-1]["actor"] == "web"
    assert json.loads(events[-1]["payload"])["uid"] == v2
    # and remove it
    r = c.post(
        "/projects/demo/artifacts/sales/untag",
        data={"uid": v2, "tag": "train", "csrf_token": csrf_of(shown)},
    )
    assert r.status_code == 200 and "Removed tag train." in r.text
    assert demo.writer.get_artifact(demo.uris["sales-v2"]).metadata.tags == ["latest"]


def test_edit_labels(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    uid = uid_of(demo.uris["sales-v2"])
    page = c.get(f"/projects/demo/artifacts/sales?uid={uid}").text
    assert "stage=clean\nteam=ml" in page  # the editor holds the labels
    r = c.post(
        "/projects/demo/artifacts/sales/labels",
        data={"uid": uid, "labels": "team=ml\nreviewed=yes\n\n", "csrf_token": csrf_of(page)},
    )
    assert r.status_code == 200 and "Labels saved." in r.text
    assert demo.writer.get_artifact(demo.uris["sales-v2"]).labels == {
        "team": "ml",
        "reviewed": "yes",
    }
    bad = c.post(
        "/projects/demo/artifacts/sales/labels",
        data={"uid": uid, "labels": "no equals sign", "csrf_token": csrf_of(page)},
    )
    assert bad.status_code == 400 and "missing" in bad.text and 'id="labels-form"' in bad.text


def test_delete_a_version_with_confirmation(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    v1, v2 = uid_of(demo.uris["sales-v1"]), uid_of(demo.uris["sales-v2"])
    confirm = c.get(f"/projects/demo/artifacts/sales/delete?uid={v2}")
    assert confirm.status_code == 200 and "Delete this version?" in confirm.text
    token = csrf_of(confirm.text)
    refused = c.post("/projects/demo/artifacts/sales/delete", data={"uid": v2, "csrf_token": token})
    assert refused.status_code == 400  # no confirm=yes
    r = c.post(
        "/projects/demo/artifacts/sales/delete",
        data={"uid": v2, "confirm": "yes", "reason": "bad rows", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert f"Deleted version {v2[:12]}." in page
    assert f'<code id="pinned-uri">{demo.uris["sales-v1"]}</code>' in page  # latest moved back
    deleted = c.get(f"/projects/demo/artifacts/sales?uid={v2}").text
    assert '<span class="chip deleted">deleted</span>' in deleted
    assert c.get("/api/projects/demo/artifacts/sales").json()["metadata"]["uid"] == v1
    history = c.get("/api/projects/demo/artifacts/sales/history").json()["items"]
    assert history[0]["type"] == "ArtifactDeleted" and history[0]["payload"]["reason"] == "bad rows"


def test_writes_need_a_csrf_token(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    uid = uid_of(demo.uris["sales-v2"])
    page = c.get("/projects/demo/artifacts/sales").text
    form = {"uid": uid, "tag": "x"}
    assert c.post("/projects/demo/artifacts/sales/tag", data=form).status_code == 403
    wrong = {**form, "csrf_token": "0" * 64}
    assert c.post("/projects/demo/artifacts/sales/tag", data=wrong).status_code == 403
    good = {**form, "csrf_token": csrf_of(page)}
    foreign = c.post(
        "/projects/demo/artifacts/sales/tag", data=good, headers={"origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    # another browser (no session cookie) cannot reuse the token
    with TestClient(c.app, base_url=BASE) as other:
        assert other.post("/projects/demo/artifacts/sales/tag", data=good).status_code == 403
    assert demo.writer.get_artifact(demo.uris["sales-v2"]).metadata.tags == ["latest"]
    # GET never writes
    assert c.get("/projects/demo/artifacts/sales/tag").status_code == 405


def test_api_writes(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    v1 = uid_of(demo.uris["sales-v1"])
    body = {"uid": v1, "tag": "gold"}
    refused = c.post("/api/projects/demo/artifacts/sales/tag", json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    token = c.get("/api/session").json()["csrf_token"]
    h = {"x-csrf-token": token}
    tagged = c.post("/api/projects/demo/artifacts/sales/tag", json=body, headers=h).json()
    assert tagged["metadata"]["tags"] == ["gold", "train"]
    labels = {"uid": v1, "labels": {"a": "1"}}
    got = c.post("/api/projects/demo/artifacts/sales/labels", json=labels, headers=h).json()
    assert got["metadata"]["labels"] == {"a": "1"}
    assert c.post("/api/projects/demo/artifacts/sales/untag", json=body, headers=h).json() == {
        "removed": "gold"
    }
    gone = c.post("/api/projects/demo/artifacts/sales/delete", json={"uid": v1}, headers=h)
    assert gone.json() == {"deleted": [v1]}
    bad = c.post("/api/projects/demo/artifacts/sales/tag", content=b"[1]", headers=h)
    assert bad.status_code == 400 and bad.json()["status"] == 400
    latest = c.post(
        "/api/projects/demo/artifacts/sales/tag", json={"uid": v1, "tag": "latest"}, headers=h
    )
    assert latest.status_code in (400, 404)


def test_write_token(demo: Demo, tmp_path: Path) -> None:
    demo = copy_demo(demo, tmp_path)
    app = create_app(demo.ui_catalog(), token="s3cret")
    uid = uid_of(demo.uris["sales-v2"])
    with TestClient(app, base_url=BASE) as c:
        page = c.get("/projects/demo/artifacts/sales").text
        assert "Log in to write" in page  # reads stay open
        form = {"uid": uid, "tag": "x", "csrf_token": csrf_of(page)}
        assert c.post("/projects/demo/artifacts/sales/tag", data=form).status_code == 401
        assert c.get("/api/session").json()["write_token_required"] is True
        bearer = {"authorization": "Bearer s3cret"}
        ok = c.post(
            "/api/projects/demo/artifacts/sales/tag",
            json={"uid": uid, "tag": "x"},
            headers=bearer,
        )
        assert ok.status_code == 200
        wrong = c.post(
            "/login", data={"token": "nope", "csrf_token": csrf_of(c.get("/login").text)}
        )
        assert wrong.status_code == 401
        r = c.post(
            "/login?next=/projects/demo/artifacts/sales",
            data={"token": "s3cret", "csrf_token": csrf_of(c.get("/login").text)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/projects/demo/artifacts/sales"
        page = c.get("/projects/demo/artifacts/sales").text
        assert "can write" in page
        form = {"uid": uid, "tag": "y", "csrf_token": csrf_of(page)}
        assert c.post("/projects/demo/artifacts/sales/tag", data=form).status_code == 200
    demo.writer.close()


# ------------------------------------------------------------------ serving


def test_new_events_appear_without_restart(fresh: tuple[Demo, TestClient]) -> None:
    demo, c = fresh
    assert "late-arrival" not in c.get("/projects/demo/artifacts?tab=all").text
    demo.writer.log_artifact("late-arrival", body=b"hi", labels={"team": "ml"})
    assert "late-arrival" in keys_in(c.get("/projects/demo/artifacts?tab=all").text)


def test_binding_beyond_loopback_needs_read_and_write_tokens() -> None:
    check_bind("127.0.0.1", Guard())
    check_bind("::1", Guard())
    check_bind("localhost", Guard())
    with pytest.raises(InvalidInput, match="read and write token"):
        check_bind("0.0.0.0", Guard())
    with pytest.raises(InvalidInput, match="read token"):
        check_bind("0.0.0.0", Guard(write_tokens=("w" * 16,)))
    check_bind("0.0.0.0", Guard(read_tokens=("r" * 16,), write_tokens=("w" * 16,)))


def test_cli_serve_and_ui_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.cli import cli

    for name in ("CATALOG_UI_TOKEN", "CATALOG_READ_TOKEN", "CATALOG_WRITE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for command in ("serve", "ui"):
        result = CliRunner().invoke(cli, [command, "--host", "0.0.0.0"])
        assert result.exit_code == 2, result.output
        assert "CATALOG_READ_TOKEN" in result.output
        # a token on the command line is refused: ps shows it to every user
        result = CliRunner().invoke(cli, [command, "--token", "s3cret-s3cret-s3cret"])
        assert result.exit_code == 2 and "visible" not in result.output
        assert "not taken on the command line" in result.output


# --------------------------------------------------------------------- API


def test_openapi_describes_every_api_route(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.") and doc == json.loads(json.dumps(document()))
    served = {
        (route.path, method.lower())
        for route in web_api.routes()
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["summary"] and "200" in op["responses"]
            for param in op.get("parameters", []):
                assert "{" + param["name"] + "}" in path or param["in"] == "query"
    assert set(doc["components"]["schemas"]["Error"]["required"]) == {"error", "message", "status"}


def test_every_api_read_answers_json(client: TestClient, demo: Demo) -> None:
    uid = uid_of(demo.uris["sales-v1"])
    values = {"project": "demo", "key": "sales", "uid": demo.runs["train"]}
    doc = document()
    for path, ops in doc["paths"].items():
        if "get" not in ops:
            continue
        url = path.format(**values)
        if "/artifacts/{key}" in path:
            url += f"?uid={uid}"
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:200])
        if r.headers["content-type"].startswith("application/json"):
            assert isinstance(r.json(), dict)


def test_declared_bounds_are_the_enforced_ones(client: TestClient, demo: Demo) -> None:
    """Every whole-number and yes/no parameter the document declares is taken at its
    edges and refused (400, the error shape) just past them, or spelled otherwise."""
    values = {"project": "demo", "key": "sales", "uid": demo.runs["train"]}
    uid = uid_of(demo.uris["sales-v1"])
    checked = 0
    for path, ops in document()["paths"].items():
        for param in ops.get("get", {}).get("parameters", []):
            schema = param["schema"]
            url = path.format(**values)
            pinned = {"uid": uid} if "/artifacts/{key}" in path else {}
            name = param["name"]
            if schema.get("type") == "integer":
                taken = [schema["minimum"], schema["maximum"], f"0{schema['minimum']}"]
                refused = [schema["maximum"] + 1, "-1", "+1", " 1", "1_0", "\u0661", "9" * 5000]
                if schema["minimum"] > 0:
                    refused.append(schema["minimum"] - 1)
            elif "enum" in schema and name not in ("tab", "sort"):
                taken, refused = list(schema["enum"]), ["maybe", "2"]
            else:
                continue
            for value in taken:
                r = client.get(url, params={**pinned, name: value})
                assert r.status_code in (200, 404), (url, name, value, r.text[:300])
            for value in refused:
                r = client.get(url, params={**pinned, name: value})
                assert r.status_code == 400, (url, name, value, r.text[:300])
                assert r.json()["status"] == 400 and name in r.json()["message"]
            checked += 1
    assert checked >= 10  # page, per_page, depth, limit, iter, desc, versions, inline, ...


def test_a_refused_host_is_the_error_shape_on_the_api(client: TestClient) -> None:
    r = client.get("/api/projects", headers={"host": "evil.example"})
    assert r.status_code == 400 and r.json() == {
        "error": "InvalidInput",
        "message": "this server does not answer to the Host 'evil.example'",
        "status": 400,
    }
    assert client.get("/", headers={"host": "evil.example"}).text == "Invalid host header"
    assert client.get("/api/projects", headers={"host": "localhost:8765"}).status_code == 200


def test_a_405_names_the_allowed_methods_and_an_unknown_key_is_a_404(
    client: TestClient,
) -> None:
    r = client.put("/api/projects/demo/artifacts")
    assert r.status_code == 405 and "GET" in r.headers.get("allow", "")
    assert r.json()["status"] == 405
    missing = client.get("/api/projects/demo/artifacts/no-such-key/versions")
    assert missing.status_code == 404 and missing.json()["error"] == "ArtifactNotFound"


def test_a_link_is_drawn_apart_from_the_lineage(catalog: Catalog) -> None:
    """The demo's shape: the dataset links to a plot made from it. The plot is
    downstream of the dataset (made from it) and in its links, never upstream."""
    data = catalog.log_artifact("iris", body=b"a,b\n1,2\n", kind="dataset", format="csv")
    plot = catalog.log_artifact("matrix", body=b"<svg/>", kind="plot", sources=[data])
    catalog.update_artifact(data.uri, extra_data={"confusion_matrix": plot})
    with TestClient(create_app(catalog), base_url=BASE) as client:
        page = client.get(f"/projects/proj/artifacts/iris?uid={data.uid}").text
        upstream = page[page.index('id="upstream"') : page.index('id="downstream"')]
        assert "matrix" not in upstream and "none recorded" in upstream
        downstream = page[page.index('id="downstream"') : page.index('id="manage"')]
        assert "matrix" in downstream
        graph = page[page.index('<svg class="lineage"') : page.index("</svg>")]
        assert "extra_data" not in graph and 'class="edge link"' not in graph
        links = page[page.index('id="links"') : page.index('id="lineage"')]
        assert "confusion_matrix" in links and plot.uid in links
        api = client.get(f"/api/projects/proj/artifacts/iris/lineage?uid={data.uid}").json()
        assert {(e["direction"], e["relation"], e["key"]) for e in api["edges"]} == {
            ("downstream", "source", "matrix")
        }
        plot_page = client.get(f"/projects/proj/artifacts/matrix?uid={plot.uid}").text
        plot_down = plot_page[plot_page.index('id="downstream"') : plot_page.index('id="manage"')]
        assert "iris" not in plot_down  # linking to it is not being made from it
