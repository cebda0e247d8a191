"""The catalog service as a real process: `catalog serve`, remote reads, writes' outcomes.

Every test starts its own `catalog serve` (or `catalog consume --follow`)
subprocess on a free loopback port, talks to it over real HTTP from the SDK,
the CLI (subprocesses too) and a plain HTTP client, and stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import catalog_env, run_cli
from servers import CatalogService as Serving
from servers import free_port, start_catalog_service

from catalog import Catalog
from catalog.api import advert_path
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.errors import EventRefused, InvalidInput, NotYetApplied, ServiceUnavailable
from catalog.log import open_log
from catalog.service import Service

ROOT = Path(__file__).resolve().parents[1]
READ = "r" * 20 + "-read-token"
WRITE = "w" * 20 + "-write-token"


def environment(root: Path, **extra: str) -> dict[str, str]:
    """A catalog under ``root`` for child processes; the projection file is left to the
    default (``<home>/catalog.duckdb``) or to each command's ``--db``."""
    env = catalog_env(root, CATALOG_ACTOR="tester", **extra)
    env.pop("CATALOG_DB")
    return env


cli = run_cli


def start_serve(env: dict[str, str], db: Path, *args: str, port: int | None = None) -> Serving:
    return start_catalog_service(env, db, *args, port=port)


def get(url: str, token: str | None = None, **headers: str) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            body = r.read()
            return r.status, _body(body, r.headers), dict(r.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read()
            return exc.code, _body(body, exc.headers), dict(exc.headers)


def _body(body: bytes, headers: Any) -> Any:
    if "json" in headers.get("content-type", ""):
        return json.loads(body)
    return body


def build(env: dict[str, str]) -> Catalog:
    """A small catalog: a dataset with two versions, tags, labels, lineage, a deletion."""
    cat = Catalog(
        log=env["CATALOG_LOG"],
        db=str(Path(env["CATALOG_HOME"]) / "writer.duckdb"),
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="team",
        actor="alice",
    )
    v1 = cat.log_artifact("iris", body=b"a,b\n1,2\n", kind="dataset", labels={"t": "ml"}, tag="v1")
    cat.log_artifact("iris", body=b"a,b\n1,3\n", kind="dataset", labels={"t": "ml"})
    model = cat.log_artifact("model", body=b"weights", kind="model", sources=[v1.uri])
    cat.tag_artifact(model.uri, "prod")
    cat.update_artifact(v1.uri, labels={"reviewed": "yes"})
    gone = cat.log_artifact("scratch", body=b"x")
    cat.delete_artifact(gone.uri)
    return cat


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], Serving, Catalog]]:
    env = environment(tmp_path)
    writer = build(env)
    server = start_serve(env, tmp_path / "served.duckdb")
    try:
        yield env, server, writer
    finally:
        writer.close()
        server.stop()


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# ------------------------------------------------------------------ reads


def test_every_read_through_the_service_equals_the_local_read(served: Any) -> None:
    env, server, local = served
    remote = Catalog(log=env["CATALOG_LOG"], api=server.url, project="team")
    try:
        assert remote.positions() == local.positions()
        for uri in ("iris", "iris:v1", "store://models/team/model:prod", "iris#0"):
            assert same(remote.get_artifact(uri).to_dict(), local.get_artifact(uri).to_dict())
        for filters in ({}, {"labels": "t=ml"}, {"all_versions": True}, {"since": "1h"}):
            got = [a.to_dict() for a in remote.list_artifacts(**filters)]
            assert same(got, [a.to_dict() for a in local.list_artifacts(**filters)]), filters
        assert same(remote.lineage("model"), local.lineage("model"))
        assert remote.lineage("iris:v1", direction="downstream")
        assert same(remote.links("model"), local.links("model"))
        assert same(remote.audit(key="iris"), local.audit(key="iris"))
        assert same(remote.audit_page(key="model"), local.audit_page(key="model"))
        start = local.audit(key="iris")[0]["occurred_at"] - timedelta(seconds=1)
        end = datetime.now(UTC)
        assert same(remote.diff(start, end), local.diff(start, end))
        assert local.diff(start, end)["tags"]
        assert same(remote.dead_letters(), local.dead_letters())
        assert same(remote.tag_history("iris"), local.tag_history("iris"))
        assert remote.digest() == local.digest()
        sql = "SELECT key, count(*) AS n FROM artifacts GROUP BY key ORDER BY key"
        assert remote.sql(sql).equals(local.sql(sql))
        event_id = local.audit(key="model", type="ArtifactTagged")[0]["event_id"]
        assert same(remote.audit_event(event_id), local.audit_event(event_id))
        # times come back as times
        assert isinstance(remote.audit(key="iris")[0]["occurred_at"], datetime)
        # as of a past position: after the first version only
        past = Catalog(log=env["CATALOG_LOG"], api=server.url, project="team", as_of=1)
        assert [a.uid for a in past.list_artifacts()] == [local.get_artifact("iris:v1").uid]
        assert past.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 1}]
        past.close()
        assert remote.get_dataitem("store://datasets/team/iris:v1").get() == b"a,b\n1,2\n"
    finally:
        remote.close()
    assert not (server.db.parent / "home" / "catalog.duckdb").exists()  # no local file made


def test_writes_go_to_the_log_and_are_read_back_at_once(served: Any) -> None:
    env, server, _ = served
    cat = Catalog(log=env["CATALOG_LOG"], api=server.url, project="team", actor="bob")
    try:
        for i in range(20):  # read-your-writes: each read waits for the write before it
            art = cat.log_artifact(f"k{i}", body=f"{i}".encode(), tag="t")
            assert cat.get_artifact(f"k{i}:t").uid == art.uid
            cat.update_artifact(art.uri, labels={"i": str(i)})
            assert cat.get_artifact(art.uri).labels == {"i": str(i)}
        # a refused write is reported, with the projection's reason
        with pytest.raises(EventRefused, match="already names a version"):
            doc = cat.get_artifact("k0").to_dict()
            cat.import_artifact(doc, project="elsewhere")
    finally:
        cat.close()


def test_cli_through_the_service(served: Any, tmp_path: Path) -> None:
    env, server, _ = served
    env = {**env, "CATALOG_API": server.url, "CATALOG_PROJECT": "team"}
    assert cli(env, "ls").stdout.count("\n") >= 3
    shown = cli(env, "show", "iris:v1", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["metadata"]["tag"] == "v1"
    (tmp_path / "f.txt").write_text("hello")
    logged = cli(env, "log", str(tmp_path / "f.txt"), "--key", "f", "--tag", "v1")
    assert logged.returncode == 0, logged.stderr
    assert "f" in cli(env, "sql", "SELECT key FROM artifacts").stdout
    got = cli(env, "get", "f:v1", str(tmp_path / "out.txt"))
    assert got.returncode == 0 and (tmp_path / "out.txt").read_text() == "hello"
    assert cli(env, "digest").returncode == 0
    assert not (Path(env["CATALOG_HOME"]) / "catalog.duckdb").exists()


def test_concurrent_clients_while_events_arrive(served: Any) -> None:
    env, server, writer = served
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def write() -> None:
        n = 0
        while not stop.is_set():
            writer.log_artifact(f"stream-{n % 50}", body=str(n).encode(), labels={"n": str(n)})
            n += 1

    def read() -> None:
        cat = Catalog(log=env["CATALOG_LOG"], api=server.url, project="team")
        try:
            while not stop.is_set():
                assert cat.get_artifact("model:prod").key == "model"
                assert cat.list_artifacts(labels="t=ml")
                reads[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        cli_env = {**env, "CATALOG_API": server.url, "CATALOG_PROJECT": "team"}
        for args in (("ls",), ("show", "iris"), ("sql", "SELECT count(*) FROM events")):
            result = cli(cli_env, *args)
            assert result.returncode == 0, result.stderr
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors and reads[0] > 0
    # the service's state at its position equals a replay of the log to that position
    remote = Catalog(log=env["CATALOG_LOG"], api=server.url)
    at, served_digest = remote.positions(), remote.digest()
    remote.close()
    with open_log(env["CATALOG_LOG"]) as log, Projection(str(server.db.parent / "r.duckdb")) as p:
        p.catch_up(log, until=at)
        assert digest(p.con) == served_digest


def test_four_writer_processes_read_their_own_writes(served: Any) -> None:
    env, server, _ = served
    script = r"""
import sys
from catalog import Catalog
cat = Catalog(api=sys.argv[1], project="team", actor=sys.argv[2])
for i in range(15):
    art = cat.log_artifact(f"{sys.argv[2]}-{i}", body=f"{sys.argv[2]} {i}".encode())
    assert cat.get_artifact(art.uri).uid == art.uid
    cat.tag_artifact(art.uri, "mine")
    assert cat.get_artifact(f"{sys.argv[2]}-{i}:mine").uid == art.uid
cat.close()
print("ok")
"""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, server.url, f"w{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "ok", err


# ------------------------------------------------------------- failures


def test_a_service_that_is_down_is_one_clear_line(tmp_path: Path) -> None:
    env = environment(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    result = cli({**env, "CATALOG_API": url}, "ls")
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and url in result.stderr, result.stderr
    assert "connection refused" in result.stderr
    with pytest.raises(ServiceUnavailable, match="127.0.0.1"), Catalog(api=url) as cat:
        cat.get_artifact("anything")


def test_kill_9_mid_request_then_restart_resumes(tmp_path: Path) -> None:
    env = environment(tmp_path)
    writer = build(env)
    server = start_serve(env, tmp_path / "served.duckdb")
    failures: list[BaseException] = []

    def slow_read() -> None:  # a query that runs for a long while
        cat = Catalog(api=server.url)
        try:
            cat.sql("SELECT sum(i) AS s FROM range(100000000000) t(i)")
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)
        finally:
            cat.close()

    reader = threading.Thread(target=slow_read)
    reader.start()
    time.sleep(1.0)
    server.stop(signal.SIGKILL)
    reader.join(30)
    assert failures and isinstance(failures[0], ServiceUnavailable), failures
    assert server.url in str(failures[0])
    # the log takes writes while the service is down (a write needs no service)
    writer.wait = False
    late = writer.log_artifact("late", body=b"late")
    restarted = start_serve(env, server.db, port=int(server.url.rsplit(":", 1)[1]))
    try:
        with Catalog(api=restarted.url, project="team") as cat:
            assert cat.get_artifact("late").uid == late.uid
            at, served_digest = cat.positions(), cat.digest()
        assert at == writer.log.end_offsets()
        with Projection(str(tmp_path / "replay.duckdb")) as p:
            p.catch_up(writer.log)
            assert digest(p.con) == served_digest
    finally:
        writer.close()
        restarted.stop()


def test_read_your_writes_waits_are_bounded(tmp_path: Path) -> None:
    env = environment(tmp_path)
    build(env).close()
    # a position past the end of the log: no write made it, refused at once
    server = start_serve(env, tmp_path / "s.duckdb")
    try:
        with (
            pytest.raises(InvalidInput, match="past the end of the log"),
            Catalog(api=server.url) as cat,
        ):
            cat.reader.call("positions", min_positions={0: 10**6})
    finally:
        server.stop()
    # a position in the log that the projection has not applied in time: 504, named
    service = Service(env["CATALOG_LOG"], str(tmp_path / "unstarted.duckdb"), wait_timeout=0.2)
    try:  # never started: its follower applies nothing
        with pytest.raises(NotYetApplied, match="0:3") as caught:
            service.wait_for({0: 3})
        assert caught.value.status == 504
    finally:
        service.stop()


def test_bad_requests_get_a_4xx_json_error(served: Any) -> None:
    _, server, _ = served
    api = server.url + "/api/v1"
    for path, fragment in (
        ("/artifacts?limit=-1", "whole number"),
        ("/artifacts?limit=abc", "whole number"),
        ("/artifacts?nonsense=1", "takes no parameter 'nonsense'"),
        ("/artifacts/resolve", "needs the parameter 'uri'"),
        ("/artifacts/resolve?uri=store://bad", "URI"),
        ("/artifacts?since=yesterday-ish", "time"),
        ("/lineage?uid=x&direction=sideways", "direction"),
        ("/positions?min_positions=zero", "PARTITION:OFFSET"),
        ("/positions?as_of=not-a-time", "as_of"),
        ("/artifacts?order=color", "order by"),
        ("/no/such/thing", "no such page"),
    ):
        status, body, _ = get(api + path)
        assert 400 <= status < 500, (path, status, body)
        assert body["status"] == status and fragment in body["message"], (path, body)


SQL_REFUSED = [
    "INSERT INTO artifacts SELECT * FROM artifacts",
    "SELECT 1; DROP TABLE artifacts",
    "DELETE FROM tags",
    "SET enable_external_access = true",
    "COPY artifacts TO '/tmp/x.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "ATTACH '/tmp/other.duckdb' AS o",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "INSTALL httpfs",
    "SELECT * FROM 'https://example.com/x.parquet'",
    "",
]


def test_sql_refusals_hold_through_http(served: Any) -> None:
    _, server, _ = served
    from urllib.parse import quote

    for statement in SQL_REFUSED:
        status, body, _ = get(f"{server.url}/api/v1/sql?q={quote(statement)}")
        assert status == 400 and body["error"] == "InvalidQuery", (statement, body)
    status, body, headers = get(f"{server.url}/api/v1/sql?q={quote('SELECT 42 AS x')}")
    assert status == 200 and body == {"columns": ["x"], "rows": [{"x": 42}]}
    status, body, _ = get(f"{server.url}/api/v1/sql?format=csv&q={quote('SELECT 42 AS x')}")
    assert status == 200 and body.decode().split() == ['"x"', "42"]


# ------------------------------------------------------------------ tokens


def test_tokens_by_scope(tmp_path: Path) -> None:
    env = environment(tmp_path, CATALOG_READ_TOKEN=READ, CATALOG_WRITE_TOKEN=WRITE)
    build(env).close()
    server = start_serve(env, tmp_path / "s.duckdb")
    try:
        api = server.url + "/api/v1"
        assert get(api + "/health")[0] == 200  # liveness is open
        status, body, _ = get(api + "/artifacts?project=team")
        assert status == 401 and body["error"] == "Unauthorized"
        assert get(api + "/artifacts?project=team", token="nope-nope-nope-nope")[0] == 401
        assert get(api + "/artifacts?project=team", token=READ)[0] == 200
        assert get(api + "/artifacts?project=team", token=WRITE)[0] == 200  # write implies read
        status, page, _ = get(server.url + "/projects/team/artifacts")  # redirected to log in
        assert status == 200 and b'name="token"' in page and b"iris" not in page
        uid = get(api + "/artifacts/resolve?uri=store://models/team/model", token=READ)[1]["uid"]

        def tag(token: str) -> int:
            request = urllib.request.Request(
                server.url + "/api/projects/team/artifacts/model/tag",
                data=json.dumps({"uid": uid, "tag": "x"}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                with exc:
                    return int(exc.code)

        assert tag(READ) == 403 and tag(WRITE) == 200
        # the CLI sends CATALOG_TOKEN
        no_token = cli({**env, "CATALOG_API": server.url}, "ls", "-p", "team")
        assert no_token.returncode == 6 and "token" in no_token.stderr
        with_token = cli({**env, "CATALOG_API": server.url, "CATALOG_TOKEN": READ}, "ls")
        assert with_token.returncode == 0, with_token.stderr
    finally:
        server.stop()


# --------------------------------------------------------- local sharing


def test_the_readme_projector_flow(tmp_path: Path) -> None:
    """With `catalog consume --follow` running on the default projection, every
    command works, promptly, reading through it."""
    env = environment(tmp_path)
    env.pop("CATALOG_ARTIFACT_PATH")
    data = tmp_path / "customers.csv"
    data.write_text("id,name\n1,a\n")
    assert cli(env, "log", str(data), "--key", "before").returncode == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "consume", "--follow"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        advert = advert_path(str(Path(env["CATALOG_HOME"]) / "catalog.duckdb"))
        deadline = time.monotonic() + 30
        while not advert.exists():
            assert follower.poll() is None and time.monotonic() < deadline, follower.stderr
            time.sleep(0.05)
        for args in (
            ("log", str(data), "--key", "conc-1"),
            ("ls",),
            ("sql", "SELECT key FROM artifacts ORDER BY key"),
            ("show", "conc-1"),
            ("consume",),
        ):
            started = time.monotonic()
            result = cli(env, *args, timeout=30)
            took = time.monotonic() - started
            assert result.returncode == 0, (args, result.stderr)
            assert took < 10, (args, took)
        assert "conc-1" in cli(env, "ls").stdout
    finally:
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert not advert.exists()  # withdrawn on exit
    assert "conc-1" in cli(env, "ls").stdout  # and the file is free again


def test_a_write_does_not_wait_for_a_busy_projection_file(tmp_path: Path) -> None:
    import duckdb

    env = environment(tmp_path)
    db = Path(env["CATALOG_HOME"]) / "catalog.duckdb"
    (tmp_path / "f.txt").write_text("x")
    assert cli(env, "log", str(tmp_path / "f.txt"), "--key", "a").returncode == 0
    holder = duckdb.connect(str(db))  # a short-lived command holding the file
    try:
        started = time.monotonic()
        result = cli(
            env,
            "--no-wait",
            "log",
            str(tmp_path / "f.txt"),
            "--key",
            "b",
            "--artifact-path",
            str(tmp_path / "artifacts"),
        )
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 10
    finally:
        holder.close()
    assert "b" in cli(env, "ls").stdout


def test_import_onto_a_uid_of_another_project_fails(tmp_path: Path) -> None:
    env = environment(tmp_path)
    (tmp_path / "f.csv").write_text("a\n1\n")
    assert cli(env, "log", str(tmp_path / "f.csv"), "--key", "customers").returncode == 0
    doc = cli(env, "export", "customers")
    assert doc.returncode == 0, doc.stderr
    (tmp_path / "doc.yaml").write_text(doc.stdout)
    result = cli(env, "import", str(tmp_path / "doc.yaml"), "-p", "teamb")
    assert result.returncode == 2, result.stdout
    assert "refused" in result.stderr and "already names a version" in result.stderr


def test_mlconf_dbpath_names_the_service(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env, server, _ = served
    from catalog import get_catalog, mlconf

    monkeypatch.setenv("CATALOG_LOG", env["CATALOG_LOG"])
    mlconf.reset()
    try:
        mlconf.dbpath = server.url
        cat = get_catalog()
        assert cat.config.api == server.url
        assert cat.get_artifact("store://models/team/model:prod").key == "model"
    finally:
        mlconf.reset()


@pytest.mark.kafka
def test_two_replicas_on_one_topic_answer_alike(topic_url: str, tmp_path: Path) -> None:
    """Two `catalog serve` replicas follow one Kafka topic, each with its own file:
    a client's writes are read back through either, and both reach the same digest."""
    env = environment(tmp_path, CATALOG_LOG=topic_url)
    one = start_serve(env, tmp_path / "one.duckdb")
    two = start_serve(env, tmp_path / "two.duckdb")
    try:
        writer = Catalog(log=topic_url, api=one.url, project="team", actor="w")
        other = Catalog(log=topic_url, api=two.url, project="team", actor="w")
        try:
            for i in range(12):
                art = writer.log_artifact(f"k{i % 4}", body=f"{i}".encode(), tag="t")
                # read-your-writes through the other replica: the read carries the position
                other._written = dict(writer._written)
                assert other.get_artifact(f"k{i % 4}:t").uid == art.uid
            end = writer.log.end_offsets()
            digests = [
                Catalog(log=topic_url, api=url).read("digest", min_positions=end)
                for url in (one.url, two.url)
            ]
            assert digests[0] == digests[1]
        finally:
            writer.close()
            other.close()
    finally:
        one.stop()
        two.stop()


def test_a_stale_advertisement_is_ignored(tmp_path: Path) -> None:
    env = environment(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    assert cli(env, "log", str(tmp_path / "f.txt"), "--key", "a").returncode == 0
    db = str(Path(env["CATALOG_HOME"]) / "catalog.duckdb")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for advert in (
        {"url": "http://127.0.0.1:9", "pid": dead.pid, "instance": "gone"},  # process gone
        {
            "url": f"http://127.0.0.1:{free_port()}",
            "pid": os.getpid(),
            "instance": "x",
        },  # no answer
    ):
        advert_path(db).write_text(json.dumps(advert))
        started = time.monotonic()
        result = cli(env, "ls")
        assert result.returncode == 0 and "a" in result.stdout, result.stderr
        assert time.monotonic() - started < 10


def test_a_second_service_on_the_same_file_is_refused_at_once(tmp_path: Path) -> None:
    env = environment(tmp_path)
    build(env).close()
    server = start_serve(env, tmp_path / "s.duckdb")
    try:
        started = time.monotonic()
        second = cli(env, "serve", "--port", str(free_port()), "--db", str(tmp_path / "s.duckdb"))
        assert second.returncode == 2 and "already served by pid" in second.stderr
        assert server.url in second.stderr and time.monotonic() - started < 10
    finally:
        server.stop()


def test_non_ascii_digits_and_hostile_bodies_are_400s(served: Any) -> None:
    """`²` and `١` pass str.isdigit(); int() refuses 5,000 digits; a body of 50,000
    brackets overflows json's parser."""
    _, server, _ = served
    for path in (
        "/projects/team/artifacts/iris?iter=%C2%B2",
        "/api/projects/team/artifacts/iris?iter=%D9%A1",
        "/api/v1/artifacts?limit=%C2%B2",
        "/api/v1/positions?min_positions=0%3A%C2%B2",
        "/api/v1/positions?as_of=%D9%A1",
        # more digits than int() converts (4,300): a ValueError, a 500, before
        "/api/v1/artifacts?limit=" + "9" * 5000,
        "/api/v1/positions?min_positions=0%3A" + "9" * 5000,
        "/api/projects/team/artifacts/iris?iter=" + "9" * 5000,
        "/projects/team/artifacts/iris?iter=" + "9" * 5000,
        # int() takes these; the document's integers do not
        "/api/v1/artifacts?limit=%2B5",
        "/api/v1/artifacts?limit=1_0",
        "/api/projects/team/artifacts/iris/history?limit=%D9%A1",
        f"/api/v1/artifacts?limit={2**62 + 1}",
    ):
        status, _, _ = get(server.url + path)
        assert status == 400, (path, status)
    for body in (b"[" * 50_000, b'{"q": "' + b"x" * (1024 * 1024 + 1) + b'"}'):
        request = urllib.request.Request(
            server.url + "/api/v1/sql", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            with exc:
                status = exc.code
                assert json.loads(exc.read())["status"] == 400
        assert status == 400


# ------------------------------------------------------------------ frozen


def test_serve_frozen_serves_the_file_as_it_is(tmp_path: Path) -> None:
    """`catalog serve --frozen --db FILE` answers from a replay --into file as it is:
    the log goes on, the answers stay in the past; reads of this machine through the
    advertisement need --frozen too (a live reader would wait for writes forever)."""
    env = environment(tmp_path)
    writer = build(env)
    try:
        then = tmp_path / "then.duckdb"
        done = cli(env, "replay", "--to-position", "3", "--into", str(then))
        assert done.returncode == 0, done.stderr
        writer.log_artifact("later", body=b"later")
        server = start_serve(env, then, "--frozen")
        try:
            remote = Catalog(log=env["CATALOG_LOG"], api=server.url, project="team")
            assert remote.positions() == {0: 3}
            assert sorted(a.key for a in remote.list_artifacts()) == ["iris", "model"]
            with pytest.raises(InvalidInput, match="frozen"):
                remote.read("positions", min_positions={0: 4})
            remote.close()
            status, body, _ = get(server.url + "/api/v1/status")
            assert status == 200 and body["frozen"] is True and body["lag"] > 0
            out = cli(env, "--db", str(then), "--frozen", "ls", "-p", "team", "--json")
            assert out.returncode == 0, out.stderr
            assert sorted(a["metadata"]["key"] for a in json.loads(out.stdout)) == [
                "iris",
                "model",
            ]
            refused = cli(env, "--db", str(then), "ls", "-p", "team")
            assert refused.returncode == 2 and "--frozen" in refused.stderr
        finally:
            err = server.stop()
        assert "frozen at 0:3" in err
    finally:
        writer.close()
