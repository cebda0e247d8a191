"""Tampering, ``catalog verify`` and ``catalog gc``: tools for operators.

* Changed bytes are detected on every read path and by ``catalog verify``
  (content, files of a directory, attachments); a missing blob too.
* A projection edited by hand is detected by ``catalog verify --projection``,
  which names the table, and ``catalog replay`` repairs it.
* ``catalog gc`` frees only blobs that no live or recently deleted version
  references and that are older than the grace period; it never frees bytes
  a write in flight (a batch not yet appended, a dedup'd re-log) is about to
  name, never touches files that are not blobs, and refuses to work from a
  projection behind the log.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog import Catalog, DigestMismatch
from catalog.consumers.database import connect
from catalog.errors import LogError
from catalog.events.model import ArtifactDeleted, CatalogEvent
from catalog.maintenance import gc, verify
from reliability.helpers import catalog_env, invoke, record

OLD = time.time() - 3 * 86400


def blob_path(root: Path, digest: str) -> Path:
    return root / "objects" / "sha256" / digest[:2] / digest[2:]


def age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when))


def all_blobs(root: Path) -> set[str]:
    base = root / "objects" / "sha256"
    return (
        {p.parent.name + p.name for p in base.rglob("*") if p.is_file()} if base.exists() else set()
    )


def log_took_at(cat: Catalog, offset: int, when: datetime) -> None:
    """Make the embedded log say it took the record at ``offset`` at ``when``
    (the log's time is not covered by the record's checksum)."""
    path = cat.log.url.removeprefix("file://")
    with sqlite3.connect(path) as db:
        db.execute(
            'UPDATE records SET appended_ms = ? WHERE "offset" = ?',
            [int(when.timestamp() * 1000), offset],
        )


def populate(cat: Catalog, tmp_path: Path) -> dict[str, object]:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 100)
    (folder / "sub" / "config.json").write_bytes(b'{"a": 1}')
    return {
        "file": cat.log_artifact("data", body=b"x,y\n1,2\n", format="csv"),
        "dir": cat.log_artifact("model", local_path=folder),
        "attached": cat.log_artifact("plot", body=b"<svg/>", attachments={"v.html": b"<p>v</p>"}),
    }


# ---------------------------------------------------------------- tampering


def test_changed_bytes_are_detected_on_every_read_and_by_verify(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arts = populate(cat, tmp_path)
    root = tmp_path / "artifacts"
    data = arts["file"]
    assert verify(cat).ok
    blob_path(root, data.hash).write_bytes(b"x,y\n9,9\n")  # type: ignore[attr-defined]
    monkeypatch.setenv("CATALOG_HOME", str(tmp_path / "fresh-home"))  # an empty cache
    reads = {
        "get": lambda item: item.get(),
        "open": lambda item: item.open().read(),
        "as_df": lambda item: item.as_df(),
        "local": lambda item: item.local(),
        "download": lambda item: item.download(tmp_path / "copy.csv"),
    }
    for name, read in reads.items():
        with pytest.raises(DigestMismatch):
            read(cat.get_dataitem(data.uri))  # type: ignore[attr-defined]
        assert not (tmp_path / "copy.csv").exists(), name
    result = invoke(tmp_path, "get", data.uri, tmp_path / "out.csv")  # type: ignore[attr-defined]
    assert result.exit_code == 4 and not (tmp_path / "out.csv").exists()

    # A file of the directory and an attachment, changed too; a blob removed.
    manifest = cat.store_for(str(root)).read_manifest(arts["dir"].hash)  # type: ignore[attr-defined]
    weights = next(e for e in manifest.entries if e.path == "weights.bin")
    blob_path(root, weights.digest).write_bytes(b"W" * 100)
    spec = cat.get_artifact(arts["attached"].uri).spec.attachments  # type: ignore[attr-defined]
    blob_path(root, spec["v.html"]["hash"]).unlink()
    result = invoke(tmp_path, "verify", "--blobs", "--json")
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    problems = {(p["kind"], p["digest"]): p for p in report["problems"]}
    assert set(problems) == {
        ("changed", data.hash),  # type: ignore[attr-defined]
        ("changed", weights.digest),
        ("missing", spec["v.html"]["hash"]),
    }
    assert problems[("changed", weights.digest)]["referenced_by"] == [
        f"{arts['dir'].uri} (file weights.bin)"  # type: ignore[attr-defined]
    ]
    text = invoke(tmp_path, "verify", "--blobs")
    assert text.exit_code == 4 and "3 problem(s)" in text.stdout
    assert data.hash in text.stdout  # type: ignore[attr-defined]
    record("tampering: blob reads and verify", read_paths=len(reads) + 1, problems=3)


def test_a_projection_edited_by_hand_is_detected_and_replay_repairs_it(
    cat: Catalog, tmp_path: Path
) -> None:
    populate(cat, tmp_path)
    cat.tag_artifact("data", "prod")
    cat.close()
    assert invoke(tmp_path, "verify").exit_code == 0
    edits = {
        "artifacts": "UPDATE artifacts SET labels = MAP {'owner': 'mallory'} WHERE key = 'data'",
        "tags": "DELETE FROM tags WHERE tag = 'prod'",
        "events": "UPDATE events SET actor = 'someone else'",
    }
    for table, statement in edits.items():
        con = connect(cat.config.db)
        con.execute(statement)
        con.close()
        result = invoke(tmp_path, "verify", "--projection", "--json")
        assert result.exit_code == 4, table
        report = json.loads(result.stdout)
        assert [t for t, same in report["tables"].items() if not same] == [table]
        assert table in report["problems"][0]["detail"]
        assert invoke(tmp_path, "verify", "--blobs").exit_code == 0  # the bytes are fine
        assert invoke(tmp_path, "replay").exit_code == 0
        assert invoke(tmp_path, "verify").exit_code == 0
    record("tampering: projection edited by hand", edits=len(edits))


# ----------------------------------------------------------------------- gc


def test_gc_frees_only_old_unreferenced_blobs(cat: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    arts = populate(cat, tmp_path)
    kept_live = all_blobs(root)
    old_version = cat.log_artifact("data", body=b"old content")  # then deleted long ago
    recent = cat.log_artifact("data", body=b"recently deleted content")
    cat.delete_artifact(recent.uri)
    cat.wait = False  # (not applied before its time is set below)
    written = cat.append_events(  # a deletion the log took three days ago
        [
            CatalogEvent(
                project="default",
                key="data",
                actor="ops",
                occurred_at=datetime.now(UTC) - timedelta(days=3),
                payload=ArtifactDeleted(uids=(old_version.uid or "",)),
            )
        ]
    )
    log_took_at(cat, written.positions[0].offset, datetime.now(UTC) - timedelta(days=3))
    cat.wait = True
    orphan = cat.store_for(str(root)).put_bytes(b"written, never logged")
    young_orphan = cat.store_for(str(root)).put_bytes(b"written a moment ago")
    elsewhere = tmp_path / "elsewhere"
    other = cat.log_artifact("far", body=b"far away", artifact_path=str(elsewhere))
    far_orphan = cat.store_for(str(elsewhere)).put_bytes(b"orphan far away")
    (root / "objects" / "tmp").mkdir(parents=True, exist_ok=True)
    (root / "objects" / "tmp" / "abandoned").write_bytes(b"half a blob")
    (root / "objects" / "tmp" / "in-progress").write_bytes(b"being written")
    stray = root / "objects" / "sha256" / "zz" / "not-a-blob"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"keep me")
    (root / "README").write_text("not ours")
    for path in [*root.rglob("*"), *elsewhere.rglob("*")]:
        if path.is_file() and path.name not in ("in-progress",):
            age(path)
    age(blob_path(root, young_orphan.digest), time.time())
    before = all_blobs(root) | all_blobs(elsewhere)

    dry = gc(cat, grace="1d", dry_run=True)
    assert all_blobs(root) | all_blobs(elsewhere) == before  # a dry run deletes nothing
    report = gc(cat, grace="1d")
    freed = {d for r in report.roots for d in r.candidates}
    assert freed == {d for r in dry.roots for d in r.candidates}
    assert freed == {old_version.hash, orphan.digest, far_orphan.digest}
    assert report.freed == 3 and report.freed_bytes == sum(
        len(b) for b in (b"old content", b"written, never logged", b"orphan far away")
    ) + len(b"half a blob")
    remaining = all_blobs(root) | all_blobs(elsewhere)
    assert kept_live <= remaining
    assert {recent.hash, young_orphan.digest, other.hash} <= remaining
    assert not (root / "objects" / "tmp" / "abandoned").exists()
    assert (root / "objects" / "tmp" / "in-progress").exists()  # too young
    assert stray.read_bytes() == b"keep me" and (root / "README").exists()
    assert {str(root), str(elsewhere)} <= {r.root for r in report.roots}
    assert verify(cat).ok
    assert arts  # every live version still reads
    for art in cat.list_artifacts(all_projects=True):
        if art.spec.format != "dir":
            cat.get_dataitem(art.uri).get()
    again = gc(cat, grace="1d")
    assert again.freed == 0
    record("gc: what is freed and what is kept", cases=1, freed=report.freed)


def test_gc_never_frees_what_a_write_in_flight_will_name(cat: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    first = cat.log_artifact("k", body=b"shared bytes")  # deleted three days ago:
    cat.append_events(
        [
            CatalogEvent(
                project="default",
                key="k",
                actor="ops",
                occurred_at=datetime.now(UTC) - timedelta(days=3),
                payload=ArtifactDeleted(uids=(first.uid or "",)),
            )
        ]
    )
    age(blob_path(root, first.hash or ""))
    env = catalog_env(tmp_path)
    with Catalog(log=env["CATALOG_LOG"], db=str(tmp_path / "ops.duckdb"), project="default") as ops:
        with cat.batch():  # a job logs the same bytes again (dedup) and new bytes
            again = cat.log_artifact("k", body=b"shared bytes", tree="run-2")
            fresh = cat.log_artifact("k2", body=b"brand new bytes")
            # ... and gc runs before the batch's events are appended
            report = gc(ops, grace="1h")
            assert report.freed == 0, report
        assert verify(ops).ok
        assert ops.get_dataitem(again.uri).get() == b"shared bytes"
        assert ops.get_dataitem(fresh.uri).get() == b"brand new bytes"
    record("gc: writes in flight survive", cases=1)


def test_gc_refuses_a_projection_behind_the_log(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat.log_artifact("k", body=b"x")
    real = cat.log.end_offsets
    # The log claims more records than the projection can reach (a partition
    # it cannot read, say): gc must not compute references from it.
    monkeypatch.setattr(cat.log, "end_offsets", lambda: {p: o + 5 for p, o in real().items()})
    with pytest.raises(LogError, match="behind"):
        gc(cat, grace="0s")


def test_gc_and_verify_on_the_command_line(cat: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    art = cat.log_artifact("k", body=b"v1")
    cat.delete_artifact(art.uri)
    cat.close()
    age(blob_path(root, art.hash or ""))
    dry = invoke(tmp_path, "gc", "--dry-run", "--grace", "0s", "--json")
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert doc["dry_run"] and doc["freed"] == 1 and blob_path(root, art.hash or "").exists()
    text = invoke(tmp_path, "gc", "--grace", "0s")
    assert text.exit_code == 0 and "freed 1 blob(s)" in text.stdout
    assert not blob_path(root, art.hash or "").exists()
    bad = invoke(tmp_path, "gc", "--grace", "soon")
    assert bad.exit_code == 2 and "soon" in bad.stderr
    ok = invoke(tmp_path, "verify")
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("ok")
    assert hashlib.sha256(b"v1").hexdigest() == art.hash


def test_gc_never_sweeps_another_catalogs_store(tmp_path: Path) -> None:
    """Catalog A refers to a blob inside catalog B's store: A's gc leaves B's store alone."""
    a_env, b_env = catalog_env(tmp_path / "a"), catalog_env(tmp_path / "b")
    b_root = Path(b_env["CATALOG_ARTIFACT_PATH"])
    with Catalog(
        log=b_env["CATALOG_LOG"], db=b_env["CATALOG_DB"], artifact_path=str(b_root), project="b"
    ) as b:
        first = b.log_artifact("one", body=b"B's first blob")
        b.log_artifact("two", body=b"B's second blob")
        for path in b_root.rglob("*"):
            if path.is_file():
                age(path)
        before = all_blobs(b_root)
    a_root = Path(a_env["CATALOG_ARTIFACT_PATH"])
    with Catalog(
        log=a_env["CATALOG_LOG"], db=a_env["CATALOG_DB"], artifact_path=str(a_root), project="a"
    ) as a:
        a.log_artifact("pointer", target_path=first.target_path)  # a reference into B's store
        gone = a.log_artifact("gone", body=b"A's own, deleted")
        a.delete_artifact(gone.uri)
        age(blob_path(a_root, gone.hash or ""))
        report = gc(a, grace="0s")
        swept = {r.root: r for r in report.roots}
        assert "skipped" in (swept[str(b_root)].error or "")
        assert "another catalog" in (swept[str(b_root)].error or "")
        assert gone.hash in swept[str(a_root)].candidates  # A's own store is still swept
    assert all_blobs(b_root) == before  # nothing of B's was touched
    with Catalog(log=b_env["CATALOG_LOG"], db=b_env["CATALOG_DB"], project="b") as b:
        assert verify(b, projection=False).ok
        assert b.get_dataitem(first.uri).get() == b"B's first blob"
    record("gc: another catalog's store is never swept", cases=1)


def test_gc_keeps_a_blob_named_only_by_its_path(cat: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    data = cat.log_artifact("data", body=b"named by hash, then deleted")
    pointer = cat.log_artifact("pointer", target_path=data.target_path)  # by path, no hash
    assert pointer.hash is None
    cat.delete_artifact(data.uri)
    age(blob_path(root, data.hash or ""))
    report = gc(cat, grace="0s")
    assert report.freed == 0 and data.hash in all_blobs(root)


def test_a_store_without_owner_marker_is_swept_only_if_it_is_this_catalogs(
    cat: Catalog, tmp_path: Path
) -> None:
    """Stores made before owner markers existed: claimed by the catalog whose artifact path
    they are, and swept; never by a catalog that only refers into them."""
    root = tmp_path / "artifacts"
    gone = cat.log_artifact("gone", body=b"deleted long ago")
    cat.delete_artifact(gone.uri)
    marker = root / "objects" / "owner.json"
    assert json.loads(marker.read_text())["log_id"] == cat.log.log_id
    marker.unlink()  # as a store written before markers existed
    age(blob_path(root, gone.hash or ""))
    dry = gc(cat, grace="0s", dry_run=True)
    assert gone.hash in dry.roots[0].candidates and not marker.exists()  # a dry run writes nothing
    report = gc(cat, grace="0s")
    assert report.freed == 1 and json.loads(marker.read_text())["log_id"] == cat.log.log_id
