"""Published snapshots (issue 22): snapshot + tail equals a full replay, table by table
and by digest; damaged, foreign and other-version snapshots are never used; a
publisher killed at any moment leaves the old or the new snapshot, never a broken
one visible. On the local file store and on the S3 server the session starts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.helpers import catalog_env, run_cli
from servers import start_catalog_service

from catalog import Catalog
from catalog import store as object_store
from catalog.consumers import published
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.log import EventLog, open_log

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------- helpers


def history(cat: Catalog, steps: list[tuple[str, int]]) -> None:
    """Apply random steps: log (new version), tag (moves), untag, update, delete."""
    uris: dict[str, list[str]] = {}
    for op, n in steps:
        key = f"k{n % 3}"
        versions = uris.setdefault(key, [])
        if op == "log" or not versions:
            versions.append(cat.log_artifact(key, body=f"{key}-{len(versions)}-{n}".encode()).uri)
        elif op == "tag":
            cat.tag_artifact(versions[n % len(versions)], f"t{n % 2}")
        elif op == "untag":
            with contextlib.suppress(Exception):  # untagging a tag that is not there
                cat.untag_artifact(versions[-1], f"t{n % 2}")
        elif op == "update":
            cat.update_artifact(versions[n % len(versions)], labels={"n": str(n)})
        elif op == "delete":
            cat.delete_artifact(versions.pop(n % len(versions)))


def full_replay(log: EventLog, path: Path) -> dict[str, str]:
    with Projection(str(path)) as p:
        p.catch_up(log)
        return digest(p.con)


def tables(path: Path) -> dict[str, list[Any]]:
    """Every digested table's rows, sorted (a table-by-table comparison)."""
    import duckdb

    from catalog.consumers.digest import DIGESTED

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            t.name: sorted(map(repr, con.execute(f"SELECT * FROM {t.name}").fetchall()))
            for t in DIGESTED
        }


def catalog_at(root: Path, **kwargs: Any) -> Catalog:
    return Catalog(
        log=f"file://{root / 'events.db'}",
        db=str(root / "writer.duckdb"),
        artifact_path=str(root / "artifacts"),
        project="p",
        actor="tester",
        wait=False,
        **kwargs,
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def snapshot_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "snapshots")
    bucket = request.getfixturevalue("bucket")
    return f"s3://{bucket}/catalog/_snapshots"


STEPS = st.lists(
    st.tuples(st.sampled_from(["log", "tag", "untag", "update", "delete"]), st.integers(0, 50)),
    min_size=2,
    max_size=25,
)


def snapshot_plus_tail_equals_replay(root: Path, url: str, steps: list[Any], cut: int) -> None:
    root.mkdir(parents=True)
    with catalog_at(root) as cat:
        history(cat, steps)
    with open_log(f"file://{root / 'events.db'}") as log:
        end = log.end_offsets().get(0, 0)
        at = min(cut, end)
        live = root / "live.duckdb"
        with Projection(str(live)) as p:
            p.catch_up(log, until={0: at})
            manifest = published.publish(p, url)
        assert manifest.positions == ({0: at} if at else {})
        fresh = root / "fresh.duckdb"
        restored = published.restore(str(fresh), log, url)
        assert restored is not None and restored.name == manifest.name
        with Projection(str(fresh)) as p:
            assert p.positions == manifest.positions
            p.catch_up(log)
            from_snapshot = digest(p.con)
        reference = full_replay(log, root / "replay.duckdb")
    assert from_snapshot == reference  # every table's digest and the overall one
    assert tables(fresh) == tables(root / "replay.duckdb")


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS, cut=st.integers(0, 30))
def test_snapshot_plus_tail_equals_a_full_replay(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Any], cut: int
) -> None:
    root = tmp_path_factory.mktemp("h") / uuid.uuid4().hex[:8]
    snapshot_plus_tail_equals_replay(root, str(root.parent / "snapshots" / root.name), steps, cut)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS, cut=st.integers(0, 30))
def test_snapshot_plus_tail_equals_a_full_replay_many(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Any], cut: int
) -> None:
    root = tmp_path_factory.mktemp("h") / uuid.uuid4().hex[:8]
    snapshot_plus_tail_equals_replay(root, str(root.parent / "snapshots" / root.name), steps, cut)


def test_mid_tag_moves_and_after_deletes_on_each_store(tmp_path: Path, snapshot_url: str) -> None:
    """Snapshots cut mid-way through a tag's moves and right after deletes (every cut
    of a fixed history), on the local store and on S3."""
    steps = [("log", 0), ("log", 3), ("tag", 0), ("log", 6), ("tag", 1), ("tag", 2)]
    steps += [("delete", 0), ("untag", 1), ("update", 3), ("tag", 4), ("delete", 1)]
    root = tmp_path / "h"
    root.mkdir()
    with catalog_at(root) as cat:
        history(cat, steps)
    with open_log(f"file://{root / 'events.db'}") as log:
        end = log.end_offsets()[0]
        reference = full_replay(log, root / "replay.duckdb")
        for cut in range(1, end + 1):
            with Projection(str(root / f"live{cut}.duckdb")) as p:
                p.catch_up(log, until={0: cut})
                published.publish(p, snapshot_url, keep=2)
            fresh = root / f"fresh{cut}.duckdb"
            assert published.restore(str(fresh), log, snapshot_url) is not None
            with Projection(str(fresh)) as p:
                assert p.positions == {0: cut}
                p.catch_up(log)
                assert digest(p.con) == reference, cut
        listed = published.list_snapshots(snapshot_url, log.log_id)
        assert [s.manifest.positions for s in listed if s.manifest] == [{0: end}, {0: end - 1}]


def test_the_tail_is_caught_up_in_bounded_memory_then_the_usual_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """open_projection catches a restored file's tail up within the tail's buffer pool;
    a tail that does not fit (DuckDB's out-of-memory, the batch rolled back) goes on
    with the usual limit; either way the usual limit applies afterwards, and the
    result equals a full replay."""
    import duckdb

    monkeypatch.delenv("CATALOG_DUCKDB_MEMORY", raising=False)
    root = tmp_path / "h"
    root.mkdir()
    with catalog_at(root) as cat:
        history(cat, [("log", 0), ("tag", 0), ("log", 1), ("update", 1), ("delete", 0)])
    url = str(tmp_path / "snapshots")

    def limit(p: Projection) -> str:
        return str(p.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    def checkpoints(p: Projection) -> str:
        query = "SELECT current_setting('checkpoint_threshold')"
        return str(p.con.execute(query).fetchall()[0][0])

    with open_log(f"file://{root / 'events.db'}") as log:
        with Projection(str(root / "live.duckdb")) as p:
            p.catch_up(log, until={0: 2})
            published.publish(p, url)
            usual, usual_checkpoints = limit(p), checkpoints(p)
        reference = full_replay(log, root / "replay.duckdb")
        seen: list[str] = []
        real = Projection.catch_up

        def catch_up(self: Projection, log: EventLog, **kwargs: Any) -> int:
            seen.append(limit(self))
            if len(seen) == 1 and fail:
                raise duckdb.OutOfMemoryException("Out of Memory Error: (a test)")
            return real(self, log, **kwargs)

        monkeypatch.setattr(Projection, "catch_up", catch_up)
        for fail in (False, True):
            seen.clear()
            fresh = root / f"fresh-{fail}.duckdb"
            with caplog.at_level(logging.WARNING, "catalog.snapshots"):
                p = published.open_projection(
                    str(fresh), log, url, open=functools.partial(Projection, str(fresh))
                )
            try:
                assert p.restored_from is not None
                assert p.positions == log.end_offsets()
                assert seen[0] != usual  # the tail's own, smaller pool
                assert seen[1:] == ([usual] if fail else [])
                assert limit(p) == usual and checkpoints(p) == usual_checkpoints
                assert digest(p.con) == reference
            finally:
                p.close()
        assert any("did not fit" in w for w in warnings_of(caplog))


# ------------------------------------------------------------ what is refused


@pytest.fixture
def two_snapshots(tmp_path: Path) -> Iterator[tuple[EventLog, str, list[published.Listed]]]:
    root = tmp_path / "h"
    root.mkdir()
    with catalog_at(root) as cat:
        history(cat, [("log", 0), ("tag", 0), ("log", 1), ("update", 1), ("delete", 0)])
    url = str(tmp_path / "snapshots")
    with open_log(f"file://{root / 'events.db'}") as log:
        with Projection(str(root / "live.duckdb")) as p:
            p.catch_up(log, until={0: 2})
            published.publish(p, url)
            p.catch_up(log)
            published.publish(p, url)
        yield log, url, published.list_snapshots(url, log.log_id)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_damaged_snapshot_is_skipped_naming_it(
    two_snapshots: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, url, listed = two_snapshots
    newest, older = listed
    data = Path(published.log_root(url, log.log_id)) / newest.name / published.DATA
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    data.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, "catalog.snapshots"):
        found = published.restore(str(tmp_path / "a.duckdb"), log, url)
    assert found is not None and found.name == older.name
    (line,) = warnings_of(caplog)
    assert line.startswith(f"snapshot {newest.name} skipped:") and "\n" not in line


def test_a_snapshot_whose_digest_does_not_recompute_is_skipped(
    two_snapshots: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, url, listed = two_snapshots
    newest, older = listed
    doc = json.loads(Path(newest.url).read_bytes())
    doc["digest"] = "0" * 64
    Path(newest.url).write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, "catalog.snapshots"):
        found = published.restore(str(tmp_path / "a.duckdb"), log, url)
    assert found is not None and found.name == older.name
    assert any("digest" in w and newest.name in w for w in warnings_of(caplog))


def test_another_schema_version_is_never_used(
    two_snapshots: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a manifest naming another version, nor a file holding one behind a
    manifest that claims this version (a forged or buggy publisher)."""
    log, url, listed = two_snapshots
    newest, older = listed
    doc = json.loads(Path(newest.url).read_bytes())
    doc["schema_version"] += 1
    Path(newest.url).write_text(json.dumps(doc))
    # the older one's file holds another version (its hashes rewritten to match)
    import duckdb
    import pyarrow as pa

    folder = Path(published.log_root(url, log.log_id)) / older.name
    raw = tmp_path / "raw.duckdb"
    with (
        pa.CompressedInputStream(pa.OSFile(str(folder / published.DATA)), "zstd") as src,
        open(raw, "wb") as out,
    ):
        out.write(src.read())
    with duckdb.connect(str(raw)) as con:
        con.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    entry = published._upload_compressed(raw, str(folder / published.DATA))
    doc = json.loads(Path(older.url).read_bytes())
    doc["files"][published.DATA] = entry
    Path(older.url).write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, "catalog.snapshots"):
        assert published.restore(str(tmp_path / "a.duckdb"), log, url) is None
    said = warnings_of(caplog)
    assert len(said) == 2 and all("schema version" in w for w in said), said
    assert not (tmp_path / "a.duckdb").exists()


def test_keep_k_retires_the_oldest_manifest_first(tmp_path: Path) -> None:
    root = tmp_path / "h"
    root.mkdir()
    with catalog_at(root) as cat:
        history(cat, [("log", i) for i in range(6)])
    url = str(tmp_path / "snapshots")
    with open_log(f"file://{root / 'events.db'}") as log, Projection(str(root / "l.duckdb")) as p:
        for cut in range(1, 7):
            p.catch_up(log, until={0: cut})
            published.publish(p, url, keep=2)
        listed = published.list_snapshots(url, log.log_id)
        assert [s.manifest.events for s in listed if s.manifest] == [6, 5]
        folder = Path(published.log_root(url, log.log_id))
        assert sorted(x.name for x in folder.iterdir()) == sorted(
            [s.name for s in listed] + [s.name + ".json" for s in listed]
        )
        # a data folder without a manifest (a publisher killed) is swept once old
        orphan = folder / "orphan"
        orphan.mkdir()
        (orphan / published.DATA).write_bytes(b"partial")
        published.prune(url, log.log_id, 2)
        assert orphan.exists()
        published.prune(url, log.log_id, 2, clock=lambda: time.time() + 2 * published.SWEEP_AFTER)
        assert not orphan.exists()


# ------------------------------------------------------------- kill -9


PUBLISHER = """
import sys
from catalog.log import open_log
from catalog.consumers import published
from catalog.consumers.projection import Projection
log = open_log(sys.argv[1])
p = Projection(sys.argv[2])
n = 0
while True:
    n += 1
    p.catch_up(log, until={0: 1 + n % int(sys.argv[4])})
    published.publish(p, sys.argv[3], keep=2)
    print("published", flush=True)
"""


def test_kill_9_while_publishing_leaves_old_or_new_never_broken(
    tmp_path: Path, snapshot_url: str
) -> None:
    root = tmp_path / "h"
    root.mkdir()
    with catalog_at(root) as cat:
        history(cat, [("log", i) for i in range(8)] + [("tag", 1), ("delete", 2)])
    log_url = f"file://{root / 'events.db'}"
    rng = random.Random(22)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open_log(log_url) as log:
        end = log.end_offsets()[0]
        reference = full_replay(log, root / "replay.duckdb")
        for round_ in range(4):
            proc = subprocess.Popen(
                [sys.executable, "-c", PUBLISHER, log_url, str(root / f"pub{round_}.duckdb"),
                 snapshot_url, str(end)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert proc.stdout is not None
            proc.stdout.readline()  # at least one published
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            listed = published.list_snapshots(snapshot_url, log.log_id)
            assert listed and all(s.manifest is not None and s.problem is None for s in listed)
            for item in listed:  # every visible snapshot is whole and verifies
                target = root / f"check-{round_}-{item.name}.duckdb"
                assert item.manifest is not None
                published._fetch(snapshot_url, log.log_id, item.manifest, str(target))
                with Projection(str(target)) as p:
                    p.catch_up(log)
                    assert digest(p.con) == reference


# ---------------------------------------------------------------- the CLI


def test_cli_publish_ls_bootstrap_and_no_snapshot(tmp_path: Path) -> None:
    env = catalog_env(tmp_path, CATALOG_SNAPSHOTS=str(tmp_path / "snaps"))
    with catalog_at(tmp_path) as cat:
        history(cat, [("log", 0), ("tag", 0), ("log", 1)])
    done = run_cli(env, "snapshot")
    assert done.returncode == 0 and done.stdout.startswith("published "), done.stderr
    listed = run_cli(env, "snapshot", "ls", "--json")
    (item,) = json.loads(listed.stdout)
    assert item["usable"] and item["positions"] == {"0": 3}
    assert item["size"] <= item["raw_size"]
    with catalog_at(tmp_path) as cat:
        history(cat, [("log", 4), ("delete", 0)])
    # a new projection file starts from the snapshot, then catches up the tail
    fresh = tmp_path / "fresh.duckdb"
    via = run_cli(env, "--db", str(fresh), "digest", "--json")
    assert via.returncode == 0, via.stderr
    full = run_cli(env, "--no-snapshot", "--db", str(tmp_path / "full.duckdb"), "digest", "--json")
    assert json.loads(via.stdout) == json.loads(full.stdout)
    # replay --from-snapshot gives the same
    into = tmp_path / "replayed.duckdb"
    done = run_cli(env, "replay", "--from-snapshot", "--into", str(into))
    assert done.returncode == 0, done.stderr
    again = run_cli(env, "--db", str(into), "--frozen", "digest", "--json")
    assert json.loads(again.stdout) == json.loads(full.stdout)
    bad = run_cli(env, "replay", "--from-snapshot", "--until", "1d", "--into", str(into))
    assert bad.returncode == 2 and "--to-position" in bad.stderr


def test_serve_publishes_on_schedule_and_a_new_replica_starts_from_it(tmp_path: Path) -> None:
    env = catalog_env(
        tmp_path, CATALOG_SNAPSHOTS=str(tmp_path / "snaps"), CATALOG_SNAPSHOT_EVERY="5"
    )
    with catalog_at(tmp_path) as cat:
        history(cat, [("log", i) for i in range(6)] + [("tag", 1)])
    first = start_catalog_service(env, tmp_path / "one.duckdb")
    try:
        deadline = time.monotonic() + 30
        while True:
            with open_log(env["CATALOG_LOG"]) as log:
                listed = published.list_snapshots(str(tmp_path / "snaps"), log.log_id)
            if listed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert listed and listed[0].manifest and listed[0].manifest.events == 7
        with catalog_at(tmp_path) as cat:
            history(cat, [("log", 7), ("delete", 1)])
        # catalog snapshot through the service that holds the file: a POST
        done = run_cli(env, "--db", str(tmp_path / "one.duckdb"), "snapshot", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["events"] == 9
    finally:
        first.stop()
    second = start_catalog_service(env, tmp_path / "two.duckdb")
    try:
        import urllib.request

        with urllib.request.urlopen(second.url + "/api/v1/status") as r:
            status = json.loads(r.read())
        assert status["started_from_snapshot"] == json.loads(done.stdout)["name"]
        remote = Catalog(log=env["CATALOG_LOG"], api=second.url, project="p")
        theirs = remote.digest()
        remote.close()
    finally:
        second.stop()
    with open_log(env["CATALOG_LOG"]) as log:
        assert theirs == full_replay(log, tmp_path / "ref.duckdb")


def test_snapshot_settings_are_checked(tmp_path: Path) -> None:
    env = catalog_env(tmp_path, CATALOG_SNAPSHOT_EVERY="often")
    done = run_cli(env, "ls")
    assert done.returncode == 2 and "CATALOG_SNAPSHOT_EVERY" in done.stderr
    env = catalog_env(tmp_path, CATALOG_SNAPSHOTS="off")
    done = run_cli(env, "snapshot")
    assert done.returncode == 2 and "off" in done.stderr
    shown = run_cli(catalog_env(tmp_path), "config", "--json")
    settings_ = json.loads(shown.stdout)
    assert settings_["snapshots"] == str(tmp_path / "artifacts" / "_snapshots")
    assert settings_["snapshot_every"] == "off" and settings_["snapshot_keep"] == "3"


def test_object_store_helpers_on_urls(tmp_path: Path) -> None:
    target = str(tmp_path / "a" / "m.json")
    object_store.put_bytes_atomic(target, b"{}")
    assert [Path(u).name for u, _ in object_store.list_url_times(str(tmp_path / "a"))] == ["m.json"]
    object_store.remove_url(str(tmp_path / "a"), recursive=True)
    assert object_store.list_url_times(str(tmp_path / "a")) == []
