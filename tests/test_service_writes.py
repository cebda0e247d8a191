"""Writes and bytes through a real `catalog serve` (issue 25, items 1 and 2).

The clients here have only ``CATALOG_API`` (and a token): no log, no store
of their own. Everything they log goes over HTTP: bytes first (verified by
the service before they are visible), then the events (checked, appended to
the service's log, answered with positions and outcome in one round trip).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from reliability.helpers import catalog_env, run_cli
from servers import CatalogService, start_catalog_service

from catalog import Catalog
from catalog.api import frame_events
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.errors import (
    AccessDenied,
    BlobNotFound,
    EventRefused,
    Forbidden,
    InvalidInput,
)
from catalog.events.codec import default_codec
from catalog.events.model import ArtifactLogged, ArtifactTagged, Producer, new_event
from catalog.remote import RemoteWriter

WRITE = "w" * 20 + "-write-token"
READ = "r" * 20 + "-read-token"


def laptop_env(server: CatalogService, token: str | None = None) -> dict[str, str]:
    """A client machine's environment: the service's URL (and a token), nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["CATALOG_API"] = server.url
    env["CATALOG_HOME"] = str(Path(server.db).parent / "laptop-home")
    env["XDG_CONFIG_HOME"] = str(Path(server.db).parent / "laptop-config")
    if token:
        env["CATALOG_TOKEN"] = token
    return env


def laptop(
    server: CatalogService, monkeypatch: pytest.MonkeyPatch, token: str | None = None
) -> Catalog:
    for name in list(os.environ):
        if name.startswith("CATALOG_"):
            monkeypatch.delenv(name)
    for name, value in laptop_env(server, token).items():
        if name.startswith("CATALOG_") or name == "XDG_CONFIG_HOME":
            monkeypatch.setenv(name, value)
    return Catalog(project="team", actor="laptop")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CatalogService]:
    env = catalog_env(tmp_path, CATALOG_WRITE_TOKEN=WRITE, CATALOG_READ_TOKEN=READ)
    env.pop("CATALOG_DB")
    service = start_catalog_service(env, tmp_path / "served.duckdb")
    try:
        yield service
    finally:
        err = service.stop()
        assert "Traceback" not in err, err


def test_a_client_with_only_the_url_logs_and_reads_back(
    server: CatalogService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = laptop(server, monkeypatch, WRITE)
    assert isinstance(cat.writer, RemoteWriter)
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(os.urandom(3000))
    (folder / "sub" / "conf.json").write_text('{"lr": 0.1}')
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    with cat:
        body = cat.log_artifact("notes", body=b"hello", tag="v1")
        ds = cat.log_artifact("data", local_path=str(data), kind="dataset")
        model = cat.log_artifact("model", local_path=str(folder), kind="model", sources=[ds.uri])
        # the bytes are on the service's side, under its artifact path
        served_root = tmp_path / "artifacts"
        assert (body.target_path or "").startswith(str(served_root))
        assert cat.get_artifact("notes:v1").uid == body.uid
        assert cat.get_dataitem(ds.uri).get() == data.read_bytes()
        out = tmp_path / "out"
        cat.get_dataitem(model.uri).download(str(out))
        assert (out / "sub" / "conf.json").read_text() == '{"lr": 0.1}'
        assert (out / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()
        assert [e["parent_key"] for e in cat.lineage(model.uri)] == ["data"]
        # a batch: one POST for its events
        with cat.batch():
            for i in range(20):
                cat.log_artifact(f"k{i}", body=f"v{i}".encode())
        assert len(cat.list_artifacts(name="k")) == 20
        # a refusal comes back with the write, as a local one would
        with pytest.raises(EventRefused, match="unknown"):
            cat.append_events([new_event("team", "nope", ArtifactTagged("f" * 32, "x"), "t")])


def test_the_cli_logs_through_the_service(server: CatalogService, tmp_path: Path) -> None:
    env = laptop_env(server, WRITE)
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n")
    logged = run_cli(env, "log", str(data), "--project", "team", "--kind", "dataset")
    assert logged.returncode == 0, logged.stderr
    shown = run_cli(env, "ls", "-p", "team", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [a["metadata"]["key"] for a in json.loads(shown.stdout)] == ["d.csv"]
    out = tmp_path / "back.csv"
    got = run_cli(env, "get", "store://datasets/team/d.csv", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_text() == "x\n1\n"


def test_tokens_decide_who_writes(server: CatalogService, monkeypatch: pytest.MonkeyPatch) -> None:
    with laptop(server, monkeypatch) as anonymous, pytest.raises(AccessDenied):
        anonymous.log_artifact("x", body=b"x")
    with laptop(server, monkeypatch, READ) as reader, pytest.raises(Forbidden):
        reader.log_artifact("x", body=b"x")
    # nothing was stored or appended
    with laptop(server, monkeypatch, WRITE) as writer:
        assert writer.list_artifacts(all_projects=True) == []
        assert not writer.store_for(writer.artifact_path("team")).exists(
            hashlib.sha256(b"x").hexdigest()
        )


def raw(
    server: CatalogService,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        sent = {"Authorization": f"Bearer {WRITE}", **(headers or {})}
        conn.request(method, "/api/v1" + path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def test_uploads_are_verified_and_confined(server: CatalogService, tmp_path: Path) -> None:
    root = str(tmp_path / "artifacts" / "team")
    good = b"the right bytes"
    name = hashlib.sha256(good).hexdigest()
    status, answer = raw(server, "PUT", f"/objects/sha256/{name}?root={root}", b"wrong bytes!!")
    assert status == 400 and answer["error"] == "DigestMismatch", answer
    assert not list((tmp_path / "artifacts").rglob(name[2:]))  # nothing visible
    status, answer = raw(server, "PUT", f"/objects/sha256/{name}?root={root}", good)
    assert status == 200 and answer["size"] == len(good)
    assert raw(server, "HEAD", f"/objects/sha256/{name}?root={root}")[0] == 200
    # a root the service does not serve is refused, whatever the path says
    status, answer = raw(server, "PUT", f"/objects/sha256/{name}?root=/etc", good)
    assert status == 403 and "not one this service writes to" in answer["message"]
    outside = f"{tmp_path}/artifacts/../elsewhere"
    assert raw(server, "PUT", f"/objects/sha256/{name}?root={outside}", good)[0] == 403
    # a page of another site cannot write, even on an open server
    status, _ = raw(
        server,
        "PUT",
        f"/objects/sha256/{name}?root={root}",
        good,
        {"Origin": "http://evil.example"},
    )
    assert status == 403


def test_events_are_checked_and_appended_once(
    server: CatalogService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = default_codec()
    root = str(tmp_path / "artifacts" / "team")
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    event = new_event(
        "team",
        "ghost",
        ArtifactLogged(
            uid="0" * 32,
            kind="artifact",
            producer=Producer(kind="client", name="t", owner="t"),
            hash=missing,
            size=14,
            target_path=f"{root}/objects/sha256/{missing[:2]}/{missing[2:]}",
        ),
        "tester",
        None,
    )
    headers = {"Content-Type": "application/octet-stream"}
    status, answer = raw(server, "POST", "/events", frame_events([codec.encode(event)]), headers)
    assert status == 404 and answer["error"] == "BlobNotFound", answer
    status, answer = raw(server, "POST", "/events", b"\x00\x00\x00\x05junk!", headers)
    assert status == 400 and "does not decode" in answer["message"]
    status, answer = raw(server, "POST", "/events", b"\x00\x00\x01", headers)
    assert status == 400
    status, _ = raw(server, "POST", "/events", frame_events([b"x"]), {"Content-Type": "text/plain"})
    assert status == 400  # a body a page could send without asking: refused
    # the same event twice (a retry after a lost answer): one append, same position
    with laptop(server, monkeypatch, WRITE) as cat:
        cat.log_artifact("once", body=b"once")
    client = Producer(kind="client", name="t", owner="t")
    again = new_event("team", "once", ArtifactLogged("1" * 32, "artifact", client), "t", None)
    body = frame_events([codec.encode(again)])
    first = raw(server, "POST", "/events", body, headers)
    second = raw(server, "POST", "/events", body, headers)
    assert first[0] == second[0] == 200
    assert first[1]["positions"] == second[1]["positions"]
    with laptop(server, monkeypatch, WRITE) as cat:
        events = cat.audit(key="once")
        assert len(events) == 2  # the SDK's log and one copy of the raw event


def test_writers_through_the_service_and_direct_writers_make_one_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = catalog_env(tmp_path)
    env.pop("CATALOG_DB")
    service = start_catalog_service(env, tmp_path / "served.duckdb")
    try:
        errors: list[BaseException] = []

        def remote(n: int) -> None:
            try:
                cat = Catalog(api=service.url, project="team", actor=f"r{n}")
                assert isinstance(cat.writer, RemoteWriter)
                with cat:
                    for i in range(15):
                        cat.log_artifact(f"shared{i % 3}", body=f"r{n}-{i}".encode())
            except BaseException as exc:  # reported below
                errors.append(exc)

        def direct(n: int) -> None:
            try:
                with Catalog(
                    log=env["CATALOG_LOG"],
                    db=str(tmp_path / f"direct{n}.duckdb"),
                    artifact_path=env["CATALOG_ARTIFACT_PATH"],
                    project="team",
                    actor=f"d{n}",
                ) as cat:
                    for i in range(15):
                        cat.log_artifact(f"shared{i % 3}", body=f"d{n}-{i}".encode())
            except BaseException as exc:
                errors.append(exc)

        for name in [n for n in os.environ if n.startswith("CATALOG_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("CATALOG_HOME", str(tmp_path / "laptop"))
        threads = [threading.Thread(target=remote, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=direct, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with Catalog(api=service.url, project="team") as cat:
            assert len(cat.list_artifacts(all_versions=True)) == 75
            served = cat.sql("SELECT count(*) AS n FROM events").column(0).to_pylist()
        assert served == [75]
    finally:
        service.stop()
    with Projection(str(tmp_path / "replay.duckdb")) as replay:
        from catalog.log import open_log

        with open_log(env["CATALOG_LOG"]) as log:
            replay.catch_up(log)
        expected = digest(replay.con)
    with Projection(str(tmp_path / "served.duckdb")) as served_projection:
        assert digest(served_projection.con) == expected


def test_bad_input_changes_nothing(server: CatalogService, monkeypatch: pytest.MonkeyPatch) -> None:
    with laptop(server, monkeypatch, WRITE) as cat:
        with pytest.raises(InvalidInput):
            cat.log_artifact("bad key!", body=b"x")
        with pytest.raises(BlobNotFound):
            cat.store_for(cat.artifact_path("team")).open("ab" * 32).read()
        assert cat.list_artifacts(all_projects=True) == []


def test_kill_9_of_a_client_mid_upload_leaves_nothing_visible(
    server: CatalogService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1024 * 1024))
    name = hashlib.sha256(big.read_bytes()).hexdigest()
    env = laptop_env(server, WRITE)
    child = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "log", str(big), "--project", "team"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if read_by(child.pid) > (64 + 8) * 1024 * 1024:
            break  # hashed the file, and now 8 MiB into sending it
        time.sleep(0.002)
    assert child.poll() is None, "the upload ended before it could be interrupted"
    child.kill()
    child.wait()
    time.sleep(0.5)
    artifacts = tmp_path / "artifacts"
    assert not list(artifacts.rglob(name[2:])), "a partial upload became visible"
    with laptop(server, monkeypatch, WRITE) as cat:
        assert cat.list_artifacts(all_projects=True) == []  # no event without its bytes
    # the retry (a new run of the same command) stores it whole, once
    again = run_cli(env, "log", str(big), "--project", "team")
    assert again.returncode == 0, again.stderr
    (stored,) = list(artifacts.rglob(name[2:]))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == name


def read_by(pid: int) -> int:
    """Bytes process ``pid`` has read so far."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))
    except (OSError, StopIteration):
        return 0


def test_a_retry_after_the_server_was_killed_appends_nothing_twice(tmp_path: Path) -> None:
    env = catalog_env(tmp_path)
    env.pop("CATALOG_DB")
    db = tmp_path / "served.duckdb"
    service = start_catalog_service(env, db)
    client = Producer(kind="client", name="t", owner="t")
    event = new_event("team", "once", ArtifactLogged("2" * 32, "artifact", client), "t", None)
    body = frame_events([default_codec().encode(event)])
    headers = {"Content-Type": "application/octet-stream"}
    try:
        first = raw(service, "POST", "/events", body, headers)
        assert first[0] == 200
    finally:
        service.stop(signal.SIGKILL)  # the answer may have been lost: the client retries
    service = start_catalog_service(env, db)
    try:
        second = raw(service, "POST", "/events", body, headers)
        assert second[0] == 200 and second[1]["positions"] == first[1]["positions"]
    finally:
        service.stop()
    from catalog.log import open_log

    with open_log(env["CATALOG_LOG"]) as log:
        assert log.end_offsets() == {0: 1}  # one record


def test_small_blobs_go_in_one_request_all_checked_first(
    server: CatalogService, tmp_path: Path
) -> None:
    from catalog.api import frame_blobs

    root = str(tmp_path / "artifacts" / "team")
    good = [(hashlib.sha256(b).hexdigest(), b) for b in (b"one", b"two")]
    wrong = (hashlib.sha256(b"three").hexdigest(), b"not three")
    status, answer = raw(
        server, "POST", f"/objects/sha256?root={root}", frame_blobs([*good, wrong])
    )
    assert status == 400 and answer["error"] == "DigestMismatch", answer
    assert not list((tmp_path / "artifacts").rglob(good[0][0][2:]))  # none of the batch kept
    status, answer = raw(server, "POST", f"/objects/sha256?root={root}", frame_blobs(good))
    assert status == 200 and answer == {"stored": 2}
    for name, _ in good:
        assert raw(server, "GET", f"/objects/sha256/{name}?root={root}&stat=1")[1]["size"] == 3
    assert raw(server, "POST", f"/objects/sha256?root={root}", b"\x00" * 10)[0] == 400
