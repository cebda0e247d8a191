"""The core SDK: log, get, list, tag, untag, update, delete, lineage, DataItem, batch."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from catalog import Artifact, ArtifactNotFound, Catalog, DigestMismatch, InvalidInput
from catalog.errors import (
    EventRefused,
    InvalidKey,
    InvalidLabel,
    InvalidTag,
    InvalidURI,
    LimitExceeded,
)


def blob_files(root: Path) -> list[Path]:
    objects = root / "objects" / "sha256"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


def test_log_returns_a_pinned_uri_that_survives_latest_moving(catalog: Catalog) -> None:
    v1 = catalog.log_artifact("model", body=b"weights-1", labels={"team": "ml"})
    assert v1.uri == f"store://artifacts/proj/model^{v1.uid}"
    assert v1.tag == "latest" and v1.hash and v1.size == 9
    v2 = catalog.log_artifact("model", body=b"weights-2")
    assert v2.uid != v1.uid
    assert catalog.get_artifact(v1.uri).uid == v1.uid
    assert catalog.get_artifact("store://model").uid == v2.uid
    assert catalog.get_artifact("model").uid == v2.uid  # a bare key means latest
    assert catalog.get_artifact(f"store://model^{v1.uid[:10]}").uid == v1.uid  # uid prefix


def test_same_content_same_producer_is_the_same_version(catalog: Catalog) -> None:
    a = catalog.log_artifact("k", body=b"same")
    b = catalog.log_artifact("k", body=b"same", labels={"x": "1"})
    assert a.uid == b.uid
    assert len(catalog.list_artifacts(all_versions=True)) == 1
    assert catalog.get_artifact("k").labels == {"x": "1"}  # a re-log replaces metadata
    c = catalog.log_artifact("k", body=b"same", tree="run-1")  # another producer: new version
    assert c.uid != a.uid


def test_bytes_are_stored_once_and_read_back_verified(catalog: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(100_000))
    a = catalog.log_artifact("blob", local_path=src)
    copy = catalog.log_artifact("blob-copy", local_path=str(src))  # a str path as well
    assert copy.spec.filename == "data.bin" and copy.spec.format == "bin"
    slashed = catalog.log_artifact("blob-slash", local_path=f"{src}/")  # as pathlib reads it
    assert slashed.spec.filename == "data.bin" and slashed.spec.hash == copy.spec.hash
    assert len(blob_files(tmp_path / "artifacts")) == 1  # dedup by content
    item = catalog.get_dataitem(a.uri)
    assert item.get() == src.read_bytes()
    assert Path(item.local()).read_bytes() == src.read_bytes()
    assert item.meta.spec.filename == "data.bin" and item.suffix == ".bin"
    # tamper with the blob: every read notices
    (blob,) = blob_files(tmp_path / "artifacts")
    blob.chmod(0o644)
    blob.write_bytes(b"evil" + src.read_bytes()[4:])
    fresh = catalog.get_dataitem(a.uri)
    with pytest.raises(DigestMismatch):
        fresh.get()
    with pytest.raises(DigestMismatch):
        fresh.download(tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_directory_artifacts(catalog: Catalog, tmp_path: Path) -> None:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    art = catalog.log_artifact("m", local_path=d)
    assert art.kind == "dir" and art.spec.format == "dir" and art.size == 2
    item = catalog.get_dataitem(art.uri)
    assert item.listdir() == ["a.txt", "sub/b.txt"]
    out = Path(item.download(tmp_path / "copy"))
    assert (out / "sub" / "b.txt").read_text() == "b"


def test_dataitem_as_df(catalog: Catalog, tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    art = catalog.log_artifact("d", local_path=csv, kind="dataset")
    assert art.kind == "dataset" and art.category == "datasets"
    assert art.uri.startswith("store://datasets/proj/d^")
    pd.testing.assert_frame_equal(catalog.get_dataitem(art.uri).as_df(), df)
    pq = tmp_path / "d.parquet"
    df.to_parquet(pq)
    art2 = catalog.log_artifact("d", local_path=pq, kind="dataset")
    pd.testing.assert_frame_equal(catalog.get_dataitem(art2).as_df(columns=["x"]), df[["x"]])
    # a plain path works too, with no catalog metadata
    plain = catalog.get_dataitem(str(csv))
    assert plain.meta is None and plain.kind == "file"
    pd.testing.assert_frame_equal(plain.as_df(), df)


def test_list_filters(catalog: Catalog) -> None:
    catalog.log_artifact("a", body=b"1", labels={"team": "ml", "stage": "raw"})
    catalog.log_artifact("b", body=b"2", labels={"team": "ml"}, kind="dataset")
    catalog.log_artifact("c", body=b"3", labels={"team": "bi"}, kind="model", tag="prod")
    catalog.log_artifact("a-old", body=b"4", project="other")
    keys = lambda arts: sorted(a.key for a in arts)  # noqa: E731
    assert keys(catalog.list_artifacts()) == ["a", "b", "c"]
    assert keys(catalog.list_artifacts(labels={"team": "ml"})) == ["a", "b"]
    assert keys(catalog.list_artifacts(labels=["team=ml", "stage"])) == ["a"]
    assert keys(catalog.list_artifacts(labels="team=ml,stage=raw")) == ["a"]
    assert keys(catalog.list_artifacts(labels="stage")) == ["a"]
    assert keys(catalog.list_artifacts(labels={"team": "' OR 1=1 --"})) == []
    assert keys(catalog.list_artifacts(kind="dataset")) == ["b"]
    assert keys(catalog.list_artifacts(category="models")) == ["c"]
    assert keys(catalog.list_artifacts(tag="prod")) == ["c"]
    assert keys(catalog.list_artifacts(name="A")) == ["a"]
    assert keys(catalog.list_artifacts(project="other")) == ["a-old"]
    assert keys(catalog.list_artifacts(all_projects=True, name="a")) == ["a", "a-old"]
    now = datetime.now(UTC)
    assert keys(catalog.list_artifacts(since=now - timedelta(hours=1))) == ["a", "b", "c"]
    assert keys(catalog.list_artifacts(since="1h")) == ["a", "b", "c"]
    assert catalog.list_artifacts(until=now - timedelta(hours=1)) == []
    assert catalog.list_artifacts(since=now + timedelta(seconds=5)) == []
    assert [a.key for a in catalog.list_artifacts(limit=2, order="key", offset=1)] == ["b", "a"]


def test_since_and_until_are_inclusive(catalog: Catalog) -> None:
    art = catalog.log_artifact("a", body=b"1")
    t = art.metadata.updated
    assert len(catalog.list_artifacts(since=t, until=t)) == 1


def test_tag_untag_update_delete(catalog: Catalog) -> None:
    v1 = catalog.log_artifact("k", body=b"1")
    v2 = catalog.log_artifact("k", body=b"2")
    tagged = catalog.tag_artifact(v1.uri, "prod")
    assert tagged.uid == v1.uid and "prod" in tagged.metadata.tags
    assert catalog.get_artifact("k:prod").uid == v1.uid
    catalog.tag_artifact("k", "prod")  # moves it to latest = v2
    assert catalog.get_artifact("k:prod").uid == v2.uid
    catalog.untag_artifact("k", "prod")
    with pytest.raises(ArtifactNotFound):
        catalog.get_artifact("k:prod")
    updated = catalog.update_artifact(
        v1.uri,
        labels={"a": "1"},
        spec={"note": [1, 2]},
        extra_data={"other": v2},
        description="first",
    )
    assert updated.uid == v1.uid
    assert updated.labels == {"a": "1"} and updated.spec.note == [1, 2]
    assert updated.extra_data == {"other": v2.uri}
    assert updated.metadata.description == "first"
    assert catalog.update_artifact(v1.uri, remove_labels=["a"]).labels == {}
    assert catalog.get_artifact("k").uid == v2.uid  # update moved no tag
    assert catalog.delete_artifact("k") == [v2.uid]  # latest
    assert catalog.get_artifact("k").uid == v1.uid  # latest falls back
    with pytest.raises(ArtifactNotFound, match="deleted"):
        catalog.get_artifact(v2.uri)
    assert catalog.get_artifact(v2.uri, include_deleted=True).deleted
    catalog.tag_artifact(v1.uri, "keep")
    assert catalog.delete_artifact("k:keep") == [v1.uid]  # by tag
    assert catalog.list_artifacts() == []
    v3 = catalog.log_artifact("k", body=b"3")
    assert catalog.delete_artifact("k", all_versions=True) == [v3.uid]
    with pytest.raises(ArtifactNotFound):
        catalog.get_artifact("k")


def test_lineage_pins_the_exact_version_asked_for(catalog: Catalog, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("x\n1\n")
    d1 = catalog.log_artifact("data", local_path=raw, kind="dataset", tag="train")
    model = catalog.log_artifact(
        "model", body=b"m", sources=["store://datasets/data:train", str(raw)]
    )
    catalog.log_artifact("data", body=b"x\n2\n", kind="dataset", tag="train")  # tag moves
    report = catalog.log_artifact("report", body=b"r", sources=[model])
    up = catalog.lineage(report.uri, depth=5)
    assert [(e["depth"], e["key"], e["parent_key"] or e["parent_uri"]) for e in up] == [
        (1, "report", "model"),
        (2, "model", "data"),
        (2, "model", str(raw)),
    ]
    data_edge = up[1]
    assert data_edge["parent_uid"] == d1.uid  # the version read then, not the current one
    assert data_edge["parent_uri"] == "store://datasets/data:train"
    assert data_edge["parent_hash"] == d1.hash
    assert up[2]["parent_hash"] == d1.hash  # local files are hashed too
    down = catalog.lineage(d1.uri, direction="downstream")
    assert [(e["depth"], e["key"]) for e in down] == [(1, "model"), (2, "report")]
    assert len(catalog.lineage(report.uri, depth=1)) == 1


def test_batch_mode_appends_once_at_the_end(catalog: Catalog) -> None:
    with catalog.batch():
        arts = [catalog.log_artifact(f"k{i}", body=str(i)) for i in range(50)]
        assert catalog.log.end_offsets() == {0: 0}  # nothing appended yet
    assert catalog.log.end_offsets() == {0: 50}
    assert catalog.get_artifact(arts[7].uri).key == "k7"


def test_batch_that_raises_appends_nothing(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.batch():
        catalog.log_artifact("k", body=b"x")
        raise RuntimeError("job failed")
    assert catalog.log.end_offsets() == {0: 0}


def test_read_your_writes_across_clients(tmp_path: Path, catalog: Catalog) -> None:
    other = Catalog(
        log=catalog.config.log,
        db=str(tmp_path / "replica.duckdb"),
        artifact_path=catalog.config.artifact_path,
        project="proj",
    )
    art = catalog.log_artifact("k", body=b"1")
    assert other.get_artifact(art.uri).uid == art.uid  # a second projection catches up
    other.close()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.log_artifact("bad key", body=b"x"), InvalidKey),
        (lambda c: c.log_artifact("../x", body=b"x"), InvalidKey),
        (lambda c: c.log_artifact("k", body=b"x", tag="bad tag"), InvalidTag),
        (lambda c: c.log_artifact("k", body=b"x", labels={"bad key": "v"}), InvalidLabel),
        (lambda c: c.log_artifact("k", body=b"x", project="Bad_Project"), InvalidKey),
        (lambda c: c.log_artifact("k", local_path="/no/such/file"), InvalidInput),
        (lambda c: c.log_artifact("k", local_path=b"/etc/hostname"), InvalidInput),
        (lambda c: c.log_artifact("k", local_path=""), InvalidInput),
        (lambda c: c.log_artifact("k", body=b"x", kind="nope"), InvalidInput),
        (lambda c: c.log_artifact("k", body=b"x", sources=["store://missing"]), ArtifactNotFound),
        (lambda c: c.log_artifact("k", body=b"x", sources=["/no/such/source"]), InvalidInput),
        (lambda c: c.log_artifact("k", body=b"x", spec={"big": "x" * 2_000_000}), LimitExceeded),
        (lambda c: c.get_artifact("store://a/b/c/d"), InvalidURI),
        (lambda c: c.tag_artifact("missing", "t"), ArtifactNotFound),
        (lambda c: c.tag_artifact("k0", "latest"), InvalidInput),
        (lambda c: c.update_artifact("missing", labels={"a": "b"}), ArtifactNotFound),
        (lambda c: c.delete_artifact("missing"), ArtifactNotFound),
    ],
)
def test_bad_input_changes_nothing(
    catalog: Catalog, tmp_path: Path, call: object, error: type[Exception]
) -> None:
    catalog.log_artifact("k0", body=b"existing")
    end = catalog.log.end_offsets()
    blobs = blob_files(tmp_path / "artifacts")
    with pytest.raises(error):
        call(catalog)  # type: ignore[operator]
    assert catalog.log.end_offsets() == end
    assert blob_files(tmp_path / "artifacts") == blobs


def test_artifact_document(catalog: Catalog) -> None:
    art = catalog.log_artifact(
        "k", body=b"x", labels={"a": "b"}, spec={"extra": 1}, description="d"
    )
    doc = catalog.get_artifact(art.uri).to_dict()
    assert doc["kind"] == "artifact"
    assert set(doc) == {"kind", "metadata", "spec", "status"}
    assert doc["metadata"]["key"] == "k" and doc["metadata"]["uid"] == art.uid
    assert doc["metadata"]["labels"] == {"a": "b"}
    assert doc["spec"]["hash"] == art.hash and doc["spec"]["extra"] == 1
    assert doc["status"] == {"state": "created"}
    assert "kind: artifact" in art.to_yaml()
    assert isinstance(art, Artifact)


def test_artifact_path_templates(catalog: Catalog, tmp_path: Path) -> None:
    art = catalog.log_artifact("k", body=b"x", artifact_path=str(tmp_path / "p" / "{{project}}"))
    assert art.target_path.startswith(str(tmp_path / "p" / "proj" / "objects"))
    mem = catalog.log_artifact("m", body=b"y", artifact_path="memory://bucket/{{project}}")
    assert mem.target_path.startswith("memory://bucket/proj/objects/sha256/")
    assert catalog.get_dataitem(mem.uri).get() == b"y"


def test_audit(catalog: Catalog) -> None:
    art = catalog.log_artifact("k", body=b"x")
    catalog.tag_artifact(art.uri, "prod")
    events = catalog.audit()
    assert [e["type"] for e in events] == ["ArtifactLogged", "ArtifactTagged"]
    assert all(e["actor"] == "tester" for e in events)
    assert [e["type"] for e in catalog.audit(type="ArtifactTagged")] == ["ArtifactTagged"]
    assert catalog.audit(actor="nobody") == []


def test_hot_path_events_equal_their_constructors(catalog: Catalog) -> None:
    """log_artifact builds its event without the dataclass __init__: same event."""
    import dataclasses

    from catalog.events.model import ArtifactLogged, CatalogEvent

    cat = catalog
    built: list[CatalogEvent] = []
    append = cat.append_events

    def spy(events: Any) -> Any:
        built.extend(events)
        return append(events)

    cat.append_events = spy  # type: ignore[method-assign]
    cat.log_artifact("k", body=b"x", labels={"a": 1}, tag="v1")
    (event,) = built
    payload = event.payload
    assert isinstance(payload, ArtifactLogged)
    names = {f.name for f in dataclasses.fields(ArtifactLogged)}
    assert set(vars(payload)) == names
    assert ArtifactLogged(**{n: getattr(payload, n) for n in names}) == payload
    envelope = {f.name for f in dataclasses.fields(CatalogEvent)}
    assert CatalogEvent(**{n: getattr(event, n) for n in envelope}) == event


def test_tags_are_case_sensitive_and_case_twins_are_refused(catalog: Catalog) -> None:
    v1 = catalog.log_artifact("model", body=b"weights-1", tag="v1")
    v2 = catalog.log_artifact("model", body=b"weights-2")
    end = catalog.positions()
    for twin in ("LATEST", "Latest"):  # refused before anything is appended
        with pytest.raises(InvalidTag, match="differs from latest only by case"):
            catalog.tag_artifact(v2.uri, twin)
        with pytest.raises(InvalidTag, match="differs from latest only by case"):
            catalog.log_artifact("model", body=b"weights-3", tag=twin)
    assert catalog.positions() == end
    with pytest.raises(EventRefused, match="'V1' differs only by case from the tag 'v1'"):
        catalog.tag_artifact(v2.uri, "V1")
    assert catalog.get_artifact("model:v1").uid == v1.uid
    with pytest.raises(ArtifactNotFound, match="no tag 'V1'"):  # case-sensitive, as in MLRun
        catalog.get_artifact("model:V1")
    assert catalog.tag_artifact(v2.uri, "Prod").metadata.tags == ["Prod", "latest"]
    catalog.tag_artifact(v1.uri, "v1")  # moving the same tag is no twin of itself


def test_links_are_not_lineage(catalog: Catalog) -> None:
    """The demo's shape: a plot and a model made from a dataset, the dataset and the
    model linking to the plot. Lineage follows sources only (no cycle through
    the links); links are read apart, both ways."""
    data = catalog.log_artifact("data", body=b"x\n1\n", kind="dataset", format="csv")
    plot = catalog.log_artifact("plot", body=b"<svg/>", kind="plot", sources=[data])
    model = catalog.log_artifact(
        "model", body=b"m", kind="model", sources=[data], extra_data={"matrix": plot}
    )
    catalog.update_artifact(data.uri, extra_data={"confusion_matrix": plot})
    up = catalog.lineage(model.uri, depth=5)
    assert [(e["depth"], e["key"], e["relation"], e["parent_key"]) for e in up] == [
        (1, "model", "source", "data")
    ]
    assert catalog.lineage(plot.uri, direction="downstream") == []
    assert [
        (e["key"], e["relation"]) for e in catalog.lineage(data.uri, direction="downstream")
    ] == [
        ("model", "source"),
        ("plot", "source"),
    ]
    links = catalog.links(data.uri)
    assert [(e["name"], e["parent_key"], e["parent_uid"]) for e in links["links"]] == [
        ("confusion_matrix", "plot", plot.uid)
    ]
    assert links["linked_from"] == []
    linked = catalog.links(plot.uri)
    assert linked["links"] == []
    assert [(e["key"], e["name"]) for e in linked["linked_from"]] == [
        ("data", "confusion_matrix"),
        ("model", "matrix"),
    ]
    # the UI's graph: links of the version itself at most, never followed
    graph = catalog.read("lineage_graph", uid=model.uid, relations=["source", "extra_data"])
    assert {(e["depth"], e["relation"], e["key"], e["parent_key"]) for e in graph["edges"]} == {
        (1, "source", "model", "data"),
        (1, "extra_data", "model", "plot"),
    }
