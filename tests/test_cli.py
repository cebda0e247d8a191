"""Tests for the ``catalog`` command line, driven through click's ``CliRunner``.

Every test runs against its own log, projection and artifact directory under
``tmp_path`` (set through ``CATALOG_*`` environment variables), so nothing
reaches the real user's home. The CLI is thin (STYLE.md rule 5): these tests
check what each command prints and what it changes, not the library's logic,
which has its own tests. Errors are mapped by attribute (rule 11): the exit
code from ``catalog.errors``, one line on stderr.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import duckdb
import pytest
import yaml
from click.testing import CliRunner, Result

from catalog import Catalog
from catalog.cli import cli, main
from catalog.log import Message, open_log

DATA = b"sepal,petal\n5.1,1.4\n4.9,1.3\n"


@dataclass
class App:
    """The CLI on one isolated catalog, with helpers to run it and inspect its state."""

    root: Path
    runner: CliRunner

    @property
    def log_url(self) -> str:
        return f"file://{self.root / 'events.db'}"

    @property
    def db(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def run(self, *args: object, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(
            cli, [str(a) for a in args], env=env, catch_exceptions=False, prog_name="catalog"
        )

    def ok(self, *args: object, env: dict[str, str] | None = None) -> Result:
        result = self.run(*args, env=env)
        assert result.exit_code == 0, f"catalog {args}: exit {result.exit_code}\n{result.output}"
        return result

    def out(self, *args: object, env: dict[str, str] | None = None) -> str:
        """stdout of a successful command, stripped."""
        return self.ok(*args, env=env).stdout.strip()

    def json(self, *args: object, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(*args, env=env).stdout)

    def fail(self, code: int, *args: object) -> Result:
        result = self.run(*args)
        assert result.exit_code == code, f"catalog {args}: exit {result.exit_code}\n{result.output}"
        return result

    def file(self, name: str, content: bytes = DATA) -> Path:
        path = self.root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def log(self, key: str, content: bytes = DATA, *options: object, name: str = "") -> str:
        """Log ``content`` as ``key`` (file named ``name`` or ``<key>.csv``); its pinned URI."""
        return self.out("log", self.file(name or f"{key}.csv", content), "--key", key, *options)

    def keys(self, *ls_options: object) -> list[str]:
        return [a["metadata"]["key"] for a in self.json("ls", *ls_options, "--json")]

    def log_end(self) -> dict[int, int]:
        log = open_log(self.log_url)
        try:
            return log.end_offsets()
        finally:
            log.close()

    def blobs(self) -> list[str]:
        if not self.artifacts.exists():
            return []
        return sorted(str(p.relative_to(self.artifacts)) for p in self.artifacts.rglob("*"))

    def projection(self, path: Path | None = None) -> duckdb.DuckDBPyConnection:
        """A read-only look at a projection file, without catching it up (close it!)."""
        return duckdb.connect(str(path or self.db), read_only=True)


def catalog_env(root: Path) -> dict[str, str]:
    """The environment that points the CLI at a catalog under ``root``."""
    return {
        "CATALOG_HOME": str(root / "home"),
        "CATALOG_LOG": f"file://{root / 'events.db'}",
        "CATALOG_DB": str(root / "catalog.duckdb"),
        "CATALOG_ARTIFACT_PATH": str(root / "artifacts"),
        "CATALOG_ACTOR": "tester",
    }


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    for name, value in catalog_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CATALOG_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    return App(tmp_path, CliRunner())


@pytest.fixture
def iris(app: App) -> str:
    """A catalog holding one dataset, ``iris`` tagged ``v1``; its pinned URI."""
    return app.log("iris", DATA, "--kind", "dataset", "--label", "team=ml", "--tag", "v1")


@dataclass(frozen=True)
class Seed:
    root: Path
    digest: dict[str, Any]  # what `catalog digest --json` prints for it


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """The ``iris`` catalog built once per module, its projection caught up."""
    root = tmp_path_factory.mktemp("seed")
    env = {**catalog_env(root), "CATALOG_PROJECT": None, "CATALOG_CONFIG": None}
    env["XDG_CONFIG_HOME"] = str(root / "config")
    (root / "iris.csv").write_bytes(DATA)
    runner = CliRunner()
    for args in (
        ["log", str(root / "iris.csv"), "--key", "iris", "--kind", "dataset", "--tag", "v1"],
        ["consume"],
    ):
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (root / "iris.csv").unlink()
    digest = runner.invoke(cli, ["digest", "--json"], env=env, catch_exceptions=False)
    return Seed(root, json.loads(digest.stdout))


@pytest.fixture
def seeded(app: App, seed: Seed) -> App:
    """A copy of the seed catalog in this test's ``tmp_path`` (cheaper than logging anew).

    Only for tests that do not read payloads: the copied versions point at the
    seed's blobs. New payloads go under this test's own artifact path.
    """
    shutil.copytree(seed.root, app.root, dirs_exist_ok=True)
    return app


def uid(uri: str) -> str:
    """The uid a pinned URI names."""
    return uri.rsplit("^", 1)[1]


def one_line(result: Result) -> str:
    """The error message: exactly one line on stderr, nothing on stdout."""
    message = result.stderr.strip()
    assert message, result.output
    assert "\n" not in message, f"expected one line on stderr:\n{result.stderr}"
    assert result.stdout == ""
    return message


# ---------------------------------------------------------------------- help


def test_group_help_lists_every_command(app: App) -> None:
    text = app.out("--help")
    assert text.startswith("Usage: catalog")
    assert "event-sourced catalog" in text
    for name in cli.commands:
        assert f"  {name} " in text or text.endswith(f"  {name}"), name


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(app: App, name: str) -> None:
    command = cli.commands[name]
    assert (command.help or "").strip(), f"catalog {name} has no docstring"
    assert command.get_short_help_str().strip()
    text = app.out(name, "--help")
    assert text.startswith(f"Usage: catalog {name}")
    first_paragraph = command.help.strip().split("\n\n")[0]
    assert " ".join(first_paragraph.split()) in " ".join(text.split())
    assert app.ok(name, "-h").stdout == app.ok(name, "--help").stdout


def test_version(app: App) -> None:
    assert "0.1.0" in app.out("--version")


# ----------------------------------------------------------------------- log


def test_log_prints_a_pinned_uri_that_show_resolves(app: App) -> None:
    path = app.file("iris.csv")
    uri = app.out(
        "log", path, "--key", "iris", "--kind", "dataset", "--label", "team=ml", "--tag", "v1"
    )
    assert uri.startswith("store://datasets/default/iris^")
    doc = app.json("show", uri, "--json")
    assert doc["kind"] == "dataset"
    assert doc["metadata"]["key"] == "iris"
    assert doc["metadata"]["uid"] == uid(uri)
    assert doc["metadata"]["labels"] == {"team": "ml"}
    assert sorted(doc["metadata"]["tags"]) == ["latest", "v1"]
    assert doc["metadata"]["created_by"] == "tester"
    assert doc["spec"]["hash"] == hashlib.sha256(DATA).hexdigest()
    assert doc["spec"]["size"] == len(DATA)
    assert doc["spec"]["format"] == "csv"
    assert doc["spec"]["filename"] == "iris.csv"
    # the tag and the bare key name the same version
    assert app.json("show", "store://datasets/default/iris:v1", "--json") == {
        **doc,
        "metadata": {**doc["metadata"], "tag": "v1"},
    }
    assert app.json("show", "iris", "--json")["metadata"]["uid"] == doc["metadata"]["uid"]


def test_log_json_prints_the_whole_artifact(app: App) -> None:
    doc = app.json(
        "log", app.file("m.bin", b"weights"), "--key", "clf", "--kind", "model", "--json"
    )
    assert doc["kind"] == "model"
    assert doc["metadata"]["key"] == "clf"
    assert doc["spec"]["hash"] == hashlib.sha256(b"weights").hexdigest()
    shown = app.json("show", "store://models/default/clf", "--json")
    assert shown["metadata"]["uid"] == doc["metadata"]["uid"]


def test_log_options(app: App) -> None:
    uri = app.out(
        "log",
        app.file("notes.txt", b"hello"),
        "--format",
        "markdown",
        "--description",
        "some notes",
        "--label",
        "a=1",
        "--label",
        "b=",
    )
    assert uri.startswith("store://artifacts/default/notes.txt^")  # key defaults to the file name
    doc = app.json("show", uri, "--json")
    assert doc["spec"]["format"] == "markdown"
    assert doc["metadata"]["description"] == "some notes"
    assert doc["metadata"]["labels"] == {"a": "1", "b": ""}


def test_log_project_from_option_env_and_group(app: App) -> None:
    assert app.log("a", b"1", "--project", "vision").startswith("store://artifacts/vision/a^")
    env = {"CATALOG_PROJECT": "nlp"}
    assert app.out("log", app.file("b.csv"), "--key", "b", env=env).startswith(
        "store://artifacts/nlp/b^"
    )
    uri = app.out("--project", "audio", "log", app.file("c.csv"), "--key", "c")
    assert uri.startswith("store://artifacts/audio/c^")
    assert app.keys("--project", "vision") == ["a"]
    assert app.keys("--project", "nlp") == ["b"]
    assert sorted(app.keys("--all-projects")) == ["a", "b", "c"]


def test_log_directory_and_get_it_back(app: App) -> None:
    src = app.root / "model"
    (src / "sub").mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"\x00\x01")
    (src / "sub" / "config.json").write_text('{"a": 1}')
    uri = app.out("log", src, "--key", "model-dir")
    doc = app.json("show", uri, "--json")
    assert doc["kind"] == "dir"
    assert doc["spec"]["format"] == "dir"
    dest = app.root / "out"
    assert app.out("get", uri, dest) == str(dest)
    assert (dest / "weights.bin").read_bytes() == b"\x00\x01"
    assert (dest / "sub" / "config.json").read_text() == '{"a": 1}'


def test_log_sources_record_lineage(app: App, iris: str) -> None:
    raw = app.file("raw.txt", b"raw")
    uri = app.log("clean", b"clean", "--source", iris, "--source", raw)
    edges = app.json("lineage", uri, "--json")["edges"]
    parents = {(e["parent_key"], e["parent_uri"]) for e in edges}
    assert parents == {(None, str(raw)), ("iris", iris)}


# ------------------------------------------------------------------------ ls


def test_ls_table(app: App, iris: str) -> None:
    lines = app.out("ls").splitlines()
    assert lines[0].split() == ["KEY", "KIND", "TAGS", "LABELS", "UPDATED", "SIZE", "UID"]
    row = lines[1].split()
    assert row[:4] == ["iris", "dataset", "latest,v1", "team=ml"]
    assert row[-1] == uid(iris)[:12]
    assert f"{len(DATA)} B" in lines[1]


def test_ls_filters(app: App) -> None:
    app.log("a", b"a", "--kind", "dataset", "--label", "team=ml", "--label", "stage=prod")
    app.log("b", b"b", "--kind", "model", "--label", "team=cv")
    app.log("c", b"c", "--tag", "v1")
    assert app.keys() == ["c", "b", "a"]  # newest first
    assert app.keys("--label", "team=ml") == ["a"]
    assert app.keys("--label", "team") == ["b", "a"]  # bare key: the label exists
    assert app.keys("--label", "team", "--label", "stage=prod") == ["a"]
    assert app.keys("--label", "team=nope") == []
    assert app.keys("--kind", "model") == ["b"]
    assert app.keys("--kind", "artifact") == ["c"]
    assert app.keys("--category", "datasets") == ["a"]
    assert app.keys("--category", "models") == ["b"]
    assert app.keys("--tag", "v1") == ["c"]
    assert app.keys("--name", "B") == ["b"]
    assert app.keys("--limit", "2") == ["c", "b"]
    assert len(app.out("ls", "--limit", "1").splitlines()) == 2  # header and one row
    assert app.keys("--project", "other") == []


def test_ls_since_until(app: App) -> None:
    app.log("old", b"old")
    between = datetime.now(UTC)
    time.sleep(0.01)
    app.log("new", b"new")
    assert app.keys("--since", between.isoformat()) == ["new"]
    assert app.keys("--until", between.isoformat()) == ["old"]
    assert app.keys("--since", "1h") == ["new", "old"]
    assert app.keys("--until", "1h") == []


def test_ls_all_versions(app: App) -> None:
    first = app.log("a", b"one")
    second = app.log("a", b"two")
    assert app.keys() == ["a"]
    versions = app.json("ls", "--all-versions", "--json")
    assert [v["metadata"]["uid"] for v in versions] == [uid(second), uid(first)]


# ---------------------------------------------------------------------- show


def test_show_yaml_is_the_default_and_equals_json(app: App, iris: str) -> None:
    text = app.out("show", iris)
    assert text.startswith("kind: dataset")
    assert app.out("show", iris, "--yaml") == text
    assert yaml.safe_load(text) == app.json("show", iris, "--json")


# ----------------------------------------------------------------------- get


def test_get_writes_identical_bytes(app: App, iris: str) -> None:
    dest = app.root / "out" / "copy.csv"
    assert app.out("get", iris, dest) == str(dest)
    assert dest.read_bytes() == DATA
    # a bare key and a tag work too
    assert app.out("get", "iris:v1", app.root / "tagged.csv") == str(app.root / "tagged.csv")
    assert (app.root / "tagged.csv").read_bytes() == DATA


def test_get_into_a_directory_keeps_the_file_name(app: App, iris: str) -> None:
    dest = app.root / "downloads"
    dest.mkdir()
    assert app.out("get", iris, dest) == str(dest / "iris.csv")
    assert (dest / "iris.csv").read_bytes() == DATA
    assert [p.name for p in dest.iterdir()] == ["iris.csv"]


def test_get_refuses_tampered_bytes(app: App, iris: str) -> None:
    digest = hashlib.sha256(DATA).hexdigest()
    blob = app.artifacts / "objects" / "sha256" / digest[:2] / digest[2:]
    blob.write_bytes(DATA.replace(b"5.1", b"9.9"))
    dest = app.root / "copy.csv"
    message = one_line(app.fail(4, "get", iris, dest))
    assert digest in message
    assert not dest.exists()
    assert list(app.root.glob(".copy.csv*")) == []


# ------------------------------------------------------- tag / untag / rm


def test_tag_and_untag(app: App) -> None:
    first = app.log("a", b"one")
    second = app.log("a", b"two")
    uid1, uid2 = uid(first), uid(second)

    assert app.out("tag", "a", "prod") == f"store://artifacts/default/a:prod -> {uid2}"
    assert app.json("show", "a:prod", "--json")["metadata"]["uid"] == uid2
    # tagging another version moves the tag
    assert app.json("tag", first, "prod", "--json")["metadata"]["uid"] == uid1
    assert app.json("show", "a:prod", "--json")["metadata"]["uid"] == uid1
    assert [v["metadata"]["uid"] for v in app.json("ls", "--tag", "prod", "--json")] == [uid1]
    assert "prod" not in app.json("show", second, "--json")["metadata"]["tags"]

    # untag with a URI naming another version is refused
    one_line(app.fail(3, "untag", second, "prod"))
    assert app.out("untag", "a", "prod") == "removed tag prod"
    assert app.keys("--tag", "prod") == []
    assert "prod" in one_line(app.fail(3, "show", "a:prod"))


def test_tag_latest_is_refused(app: App, iris: str) -> None:
    assert "latest" in one_line(app.fail(2, "tag", iris, "latest"))
    assert "latest" in one_line(app.fail(2, "untag", iris, "latest"))


def test_rm_one_version(app: App) -> None:
    first = app.log("a", b"one")
    second = app.log("a", b"two")
    uid1, uid2 = uid(first), uid(second)
    assert app.out("rm", "a", "--reason", "bad data") == f"deleted 1 version(s): {uid2}"
    assert app.json("show", "a", "--json")["metadata"]["uid"] == uid1  # latest moves back
    assert [v["metadata"]["uid"] for v in app.json("ls", "--all-versions", "--json")] == [uid1]
    one_line(app.fail(3, "show", second))
    assert app.json("show", second, "--deleted", "--json")["metadata"]["uid"] == uid2
    (event,) = app.json("audit", "--type", "ArtifactDeleted", "--json")
    assert event["payload"]["reason"] == "bad data"
    assert event["payload"]["uids"] == [uid2]


def test_rm_all_versions(app: App) -> None:
    first = app.log("a", b"one")
    second = app.log("a", b"two")
    app.log("b", b"b")
    out = app.out("rm", "a", "--all-versions")
    assert out.startswith("deleted 2 version(s): ")
    assert set(out.split(": ", 1)[1].split(", ")) == {uid(first), uid(second)}
    assert app.keys("--all-versions") == ["b"]
    one_line(app.fail(3, "show", "a"))
    one_line(app.fail(3, "rm", "a", "--all-versions"))


# -------------------------------------------------------------------- update


def test_update_labels_links_and_description(app: App, iris: str) -> None:
    other = app.log("other", b"other")
    uri = app.out(
        "update",
        "iris",
        "--label",
        "stage=prod",
        "--remove-label",
        "team",
        "--link",
        "source=store://other",
        "--link",
        "docs=https://example.com/iris",
        "--description",
        "the iris data",
    )
    assert uri == iris  # in place: same version
    doc = app.json("show", iris, "--json")
    assert doc["metadata"]["labels"] == {"stage": "prod"}
    assert doc["metadata"]["description"] == "the iris data"
    assert doc["spec"]["extra_data"] == {
        "source": other,  # pinned to the version it named
        "docs": "https://example.com/iris",
    }
    assert app.keys("--label", "stage=prod") == ["iris"]
    assert app.keys("--label", "team") == []
    assert app.json("update", "iris", "--label", "x=1", "--json")["metadata"]["labels"] == {
        "stage": "prod",
        "x": "1",
    }


# ----------------------------------------------------------------------- sql


def test_sql_formats(app: App) -> None:
    app.log("a", b"a", "--kind", "dataset")
    app.log("b", b"b", "--kind", "model")
    query = "SELECT key, kind FROM artifacts ORDER BY key"
    lines = app.out("sql", query).splitlines()
    assert [line.split() for line in lines] == [
        ["KEY", "KIND"],
        ["a", "dataset"],
        ["b", "model"],
        ["(2", "rows)"],
    ]
    assert app.out("sql", "SELECT 1 AS n").splitlines()[-1] == "(1 row)"
    assert list(csv.reader(io.StringIO(app.out("sql", query, "--format", "csv")))) == [
        ["key", "kind"],
        ["a", "dataset"],
        ["b", "model"],
    ]
    assert app.json("sql", query, "--format", "json") == [
        {"key": "a", "kind": "dataset"},
        {"key": "b", "kind": "model"},
    ]
    assert app.json("sql", "SELECT count(*) AS n FROM latest_artifacts", "--format", "json") == [
        {"n": 2}
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO tags SELECT * FROM tags",
        "UPDATE artifacts SET key = 'x'",
        "DELETE FROM artifacts",
        "/* hidden */ DELETE FROM artifacts",
        "SELECT 1; DROP TABLE artifacts",
        "CREATE TABLE t (x INTEGER)",
        "DROP TABLE artifacts",
        "COPY artifacts TO '{root}/out.csv'",
        "COPY (SELECT * FROM artifacts) TO '{root}/out.csv'",
        "/* hidden */ COPY (SELECT 1) TO '{root}/out.csv'",
        "EXPORT DATABASE '{root}/out'",
        "ATTACH '{root}/out.duckdb' AS other",
        "/* hidden */ ATTACH '{root}/out.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "/* hidden */ LOAD httpfs",
        "SET enable_external_access = true",
        "/* hidden */ SET enable_external_access = true",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('{root}/events.db')",
    ],
)
def test_sql_refuses_writes_and_files(seeded: App, seed: Seed, statement: str) -> None:
    app = seeded
    statement = statement.format(root=app.root)
    files = sorted(app.root.rglob("*"))
    message = one_line(app.fail(2, "sql", statement))
    assert message.startswith("error: invalid query")
    assert app.json("digest", "--json") == seed.digest
    assert sorted(app.root.rglob("*")) == files


# ------------------------------------------------------------------- lineage


def test_lineage_upstream_downstream_depth(app: App) -> None:
    a = app.log("a", b"a")
    b = app.log("b", b"b", "--source", a)
    c = app.log("c", b"c", "--source", b)

    def hops(*args: object) -> list[tuple[int, str, str]]:
        edges = app.json("lineage", *args)["edges"]
        return [(e["depth"], e["key"], e["parent_key"]) for e in edges]

    assert hops(c, "--json") == [(1, "c", "b"), (2, "b", "a")]
    assert hops(c, "--upstream", "--json") == hops(c, "--json")
    assert hops(c, "--depth", "1", "--json") == [(1, "c", "b")]
    assert hops(a, "--downstream", "--json") == [(1, "b", "a"), (2, "c", "b")]
    assert hops(a, "--downstream", "--depth", "1", "--json") == [(1, "b", "a")]
    assert hops(a, "--json") == []

    lines = app.out("lineage", c).splitlines()
    assert lines[0].split()[:4] == ["DEPTH", "CHILD", "RELATION", "PARENT"]
    assert lines[1].split()[:2] == ["1", f"c@{uid(c)[:12]}"]
    assert app.out("lineage", a) == "no upstream lineage"
    assert app.out("lineage", c, "--downstream") == "no downstream lineage"
    assert app.run("lineage", c, "--depth", "0").exit_code == 2  # click range check


# --------------------------------------------------------------------- audit


def test_audit_filters(app: App) -> None:
    app.log("a", b"a")
    between = datetime.now(UTC)
    time.sleep(0.01)
    app.ok("tag", "a", "v1", env={"CATALOG_ACTOR": "alice"})
    app.log("b", b"b", "--project", "other")

    def events(*args: object) -> list[tuple[str, str, str, str]]:
        return [
            (e["type"], e["project"], e["key"], e["actor"])
            for e in app.json("audit", *args, "--json")
        ]

    logged_a = ("ArtifactLogged", "default", "a", "tester")
    tagged_a = ("ArtifactTagged", "default", "a", "alice")
    logged_b = ("ArtifactLogged", "other", "b", "tester")
    assert events() == [logged_a, tagged_a, logged_b]  # log order
    assert events("--project", "other") == [logged_b]
    assert events("--key", "a") == [logged_a, tagged_a]
    assert events("--actor", "alice") == [tagged_a]
    assert events("--type", "ArtifactLogged") == [logged_a, logged_b]
    assert events("--since", between.isoformat()) == [tagged_a, logged_b]
    assert events("--until", between.isoformat()) == [logged_a]
    assert events("--limit", "1") == [logged_a]
    assert events("--project", "default", "--type", "ArtifactTagged") == [tagged_a]

    (tagged,) = app.json("audit", "--type", "ArtifactTagged", "--json")
    assert tagged["payload"]["tag"] == "v1"  # the payload is JSON, not a string
    assert (tagged["partition"], tagged["offset"]) == (0, 1)

    lines = app.out("audit").splitlines()
    assert lines[0].split() == [
        "POSITION",
        "TIME",
        "ACTOR",
        "TYPE",
        "PROJECT",
        "KEY",
        "WHAT",
    ]
    assert len(lines) == 4
    assert lines[2].startswith("0:1 ")
    assert "alice" in lines[2] and "tag v1 -> " in lines[2]


def test_audit_dead_letters(app: App, iris: str) -> None:
    log = open_log(app.log_url)
    try:
        log.append([Message("garbage", b"not an event")])
    finally:
        log.close()
    # every read catches up first: the undecodable record is dead-lettered, not fatal
    (dead,) = app.json("audit", "--dead-letters", "--json")
    assert (dead["partition"], dead["offset"]) == (0, 1)
    assert "undecodable" in dead["reason"]
    lines = app.out("audit", "--dead-letters").splitlines()
    assert lines[0].split() == ["PARTITION", "OFFSET", "TYPE", "REASON"]
    assert lines[1].split()[:2] == ["0", "1"]
    # the audit trail itself only holds the events that were applied
    assert [e["key"] for e in app.json("audit", "--json")] == ["iris"]


# ------------------------------------------------------- consume / replay


def test_consume(app: App, iris: str) -> None:
    # `log` waited until its event was applied (to learn its outcome): nothing pending
    assert app.out("consume") == f"applied 0 record(s); projection at {app.db}"
    # --no-wait returns once the event is durable: one record is pending
    app.out("--no-wait", "log", app.file("b.csv", b"b"), "--key", "b")
    assert app.out("consume") == f"applied 1 record(s); projection at {app.db}"
    app.out("--no-wait", "log", app.file("c.csv", b"c"), "--key", "c")
    assert app.out("consume", "--batch-size", "1").startswith("applied 1 record(s)")


@pytest.mark.parametrize("serve", ["--serve", "--no-serve"])
def test_consume_follow_stops_on_sigterm(app: App, iris: str, serve: str) -> None:
    app.out("--no-wait", "log", app.file("b.csv", b"b"), "--key", "b")  # one record pending
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def stop_once_following() -> None:
        deadline = time.monotonic() + 20
        while signal.getsignal(signal.SIGTERM) is saved[signal.SIGTERM]:
            if time.monotonic() > deadline:  # pragma: no cover - the timeout fails the test
                return
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by the command's handler

    stopper = threading.Thread(target=stop_once_following, daemon=True)
    stopper.start()
    try:
        out = app.out("consume", "--follow", serve)
    finally:
        stopper.join(5)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert out == f"applied 1 record(s); projection at {app.db}"


def build_history(app: App) -> None:
    a = app.log("a", b"a", "--kind", "dataset", "--label", "team=ml")
    app.log("b", b"b", "--source", a)
    app.ok("tag", "a", "v1")
    app.ok("update", "a", "--label", "stage=prod")
    app.ok("rm", "b")


def test_digest_is_equal_after_replay(app: App) -> None:
    build_history(app)
    before = app.json("digest", "--json")
    assert before["at"] == {"0": 5}
    assert len(before["digest"]) == 64
    assert app.out("digest") == f"{before['digest']}  at {{0: 5}}"

    result = app.ok("replay")
    assert result.stdout.strip() == f"rebuilt {app.db}"
    assert "replaying" in result.stderr
    assert app.json("digest", "--json") == before

    into = app.root / "copies" / "rebuilt.duckdb"
    assert app.out("replay", "--into", into) == f"rebuilt {into}"
    assert into.exists()
    assert app.json("--db", into, "digest", "--json") == before
    assert app.json("digest", "--json") == before


def projection_state(app: App, path: Path) -> tuple[int, list[tuple[str, str]]]:
    """(events applied, sorted (key, tag) pairs) of a projection file, as it is on disk."""
    with app.projection(path) as con:
        (count,) = con.execute("SELECT count(*) FROM events").fetchone()
        tags = sorted(con.execute("SELECT key, tag FROM tags").fetchall())
    return count, tags


def test_replay_to_position(app: App) -> None:
    build_history(app)  # 0 log a, 1 log b, 2 tag a v1, 3 update a, 4 rm b
    app.ok("consume")
    into = app.root / "at2.duckdb"
    assert app.out("replay", "--to-position", "2", "--into", into) == f"rebuilt {into}"
    assert projection_state(app, into) == (2, [("a", "latest"), ("b", "latest")])
    assert projection_state(app, app.db) == (5, [("a", "latest"), ("a", "v1")])  # left alone

    # without --into the live projection is replaced by the state at that position
    assert app.out("replay", "--to-position", "3") == f"rebuilt {app.db}"
    assert projection_state(app, app.db) == (3, [("a", "latest"), ("a", "v1"), ("b", "latest")])
    # ...and the next read catches it up with the log again
    assert app.keys() == ["a"]
    assert projection_state(app, app.db)[0] == 5


def test_replay_until_time(app: App) -> None:
    app.log("a", b"a")
    between = datetime.now(UTC)
    time.sleep(0.01)
    app.log("b", b"b")
    into = app.root / "then.duckdb"
    app.ok("replay", "--until", between.isoformat(), "--into", into)
    assert projection_state(app, into) == (1, [("a", "latest")])


README = Path(__file__).resolve().parent.parent / "README.md"
README_TIME = "2026-03-03T00:00"


def readme_past_commands() -> list[list[str]]:
    """The README's CLI lines that look at the past (a time, or the then.duckdb file)."""
    import shlex

    block = README.read_text().split("## The CLI", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [
        shlex.split(line)[1:]  # without the leading "catalog"
        for line in lines
        if line and (README_TIME in line or "then.duckdb" in line)
    ]


def test_readme_past_examples_give_the_past(app: App) -> None:
    """The README's as-of lines, run as written (its time set between two writes): each
    read shows the catalog as it stood then, and the frozen file stays in the past."""
    app.log("a", b"a")
    between = datetime.now(UTC)
    time.sleep(0.01)
    app.log("b", b"b")
    app.ok("tag", "a", "prod")
    commands = readme_past_commands()
    assert [next(a for a in c if a in ("ls", "replay", "serve")) for c in commands] == [
        "ls",
        "replay",
        "ls",
        "serve",
    ]
    then = app.root / "then.duckdb"
    for args in commands:
        args = [
            between.isoformat() if a == README_TIME else str(then) if a == "then.duckdb" else a
            for a in args
        ]
        if "serve" in args:
            continue  # a daemon: test_serve_frozen_serves_the_file_as_it_is runs it
        if "ls" in args:
            args += ["--json"]
        result = app.ok(*args)
        if "ls" in args:
            assert [a["metadata"]["key"] for a in json.loads(result.stdout)] == ["a"], args
    # the frozen file is still the past after those reads, and writes are refused
    assert projection_state(app, then) == (1, [("a", "latest")])
    assert sorted(app.keys()) == ["a", "b"]
    result = app.fail(2, "--db", then, "--frozen", "tag", "a", "v2")
    assert "frozen" in result.output
    result = app.fail(2, "--db", then, "--frozen", "consume")
    assert "frozen" in result.output
    assert app.out("--db", then, "--frozen", "sql", "SELECT count(*) AS n FROM events",
                   "--format", "csv").splitlines() == ["n", "1"]  # fmt: skip
    assert projection_state(app, then) == (1, [("a", "latest")])


def test_frozen_refuses_what_is_not_a_projection_of_these_tables(app: App) -> None:
    app.log("a", b"a")
    result = app.fail(2, "--db", app.root / "missing.duckdb", "--frozen", "ls")
    assert "replay --until TIME --into FILE" in result.output
    other = app.root / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE meta (name VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    result = app.fail(2, "--db", other, "--frozen", "ls")
    assert "schema version 1" in result.output
    with duckdb.connect(str(other), read_only=True) as con:  # left as it was
        assert con.execute("SELECT value FROM meta").fetchall() == [("1",)]


def test_replay_into_a_directory_or_a_nul_path_is_refused(app: App) -> None:
    app.log("a", b"a")
    before = app.json("digest", "--json")
    for into, says in ((app.root, "is not a file path"), ("", "is not a file path")):
        result = app.run("replay", "--into", into)
        assert result.exit_code == 2 and says in result.output, result.output
    result = app.run("replay", "--into", "p\x00.duckdb")
    assert result.exit_code == 2 and "holds a NUL byte" in result.output, result.output
    assert app.json("digest", "--json") == before


# -------------------------------------------------------------------- config


def test_a_bad_duckdb_memory_setting_is_refused_before_any_file(app: App) -> None:
    result = app.run("ls", env={"CATALOG_DUCKDB_MEMORY": "lots"})
    assert result.exit_code == 2, result.output
    assert "CATALOG_DUCKDB_MEMORY='lots' is not a memory size" in result.output
    assert not app.db.exists()
    assert app.run("ls", env={"CATALOG_DUCKDB_MEMORY": "300MB"}).exit_code == 0


def test_config(app: App) -> None:
    settings = app.json("config", "--json")
    assert settings["log"] == app.log_url
    assert settings["db"] == str(app.db)
    assert settings["artifact_path"] == str(app.artifacts)
    assert settings["project"] == "default"
    assert settings["actor"] == "tester"
    assert settings["data_dir"] == str(app.root / "home")
    assert settings["columnar_decoder"].startswith(("built", "unavailable"))

    other = app.json(
        "--log",
        f"file://{app.root / 'other.db'}",
        "--db",
        app.root / "other.duckdb",
        "--project",
        "vision",
        "--artifact-path",
        app.root / "blobs",
        "config",
        "--json",
    )
    assert other["log"] == f"file://{app.root / 'other.db'}"
    assert other["db"] == str(app.root / "other.duckdb")
    assert other["project"] == "vision"
    assert other["artifact_path"] == str(app.root / "blobs")
    assert app.json("config", "--json", env={"CATALOG_PROJECT": "nlp"})["project"] == "nlp"

    lines = app.out("config").splitlines()
    assert lines[0].split() == ["SETTING", "VALUE", "FROM"]
    assert lines[1].split() == ["log", app.log_url, "env", "CATALOG_LOG"]


def test_options_point_at_another_catalog(app: App, iris: str) -> None:
    other = ["--log", f"file://{app.root / 'other.db'}", "--db", app.root / "other.duckdb"]
    assert app.json(*other, "ls", "--json") == []
    app.ok(*other, "log", app.file("x.csv"), "--key", "x")
    assert [a["metadata"]["key"] for a in app.json(*other, "ls", "--json")] == ["x"]
    assert app.keys() == ["iris"]


# ---------------------------------------------------------- JSON everywhere

READS = [
    ["ls", "--json"],
    ["ls", "--all-versions", "--json"],
    ["show", "iris", "--json"],
    ["lineage", "iris", "--json"],
    ["lineage", "iris", "--downstream", "--json"],
    ["audit", "--json"],
    ["audit", "--dead-letters", "--json"],
    ["digest", "--json"],
    ["config", "--json"],
    ["sql", "SELECT * FROM artifacts", "--format", "json"],
    ["log", "{file}", "--key", "other", "--json"],
    ["tag", "iris", "v2", "--json"],
    ["update", "iris", "--label", "x=1", "--json"],
]


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a[:2]))
def test_json_output_parses(seeded: App, args: list[str]) -> None:
    app = seeded
    args = [a.format(file=app.file("other.csv", b"other")) for a in args]
    result = app.ok(*args)
    assert json.loads(result.stdout) is not None
    assert result.stderr == ""


#: Commands that answer with data; each must offer --json.
READ_COMMANDS = {"ls", "show", "lineage", "audit", "digest", "config", "export", "diff", "verify"}
#: Commands that change something or move bytes (some also offer --json; sql has --format).
OTHER_COMMANDS = {
    "log",
    "tag",
    "untag",
    "update",
    "rm",
    "get",
    "sql",
    "consume",
    "replay",
    "import",
    "export-lineage",  # JSON Lines already
    "serve",
    "token",  # a group: its list takes --json
    "ui",
    "gc",
    "snapshot",  # publishes (--json); `snapshot ls --json` lists
}


def test_every_read_command_has_json() -> None:
    # a new command must be classified here, so it cannot miss --json unnoticed
    assert set(cli.commands) == READ_COMMANDS | OTHER_COMMANDS
    with_json = {
        name
        for name, command in cli.commands.items()
        if any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    }
    assert READ_COMMANDS.issubset(with_json)
    assert {"log", "tag", "update"}.issubset(with_json)


@pytest.mark.parametrize(
    ("args", "code", "error", "status"),
    [
        (["show", "nope", "--json"], 3, "ArtifactNotFound", 404),
        (["ls", "--label", "a b", "--json"], 2, "InvalidLabel", 400),
        (["lineage", "store://a/b/c/d", "--json"], 2, "InvalidURI", 400),
    ],
)
def test_errors_with_json_print_the_json_error_shape(
    seeded: App, args: list[str], code: int, error: str, status: int
) -> None:
    app = seeded
    body = json.loads(one_line(app.fail(code, *args)))
    assert body == {"error": error, "message": body["message"], "status": status}
    assert body["message"]


def test_main_entry_point(app: App, iris: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["show", "iris", "--json"])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["key"] == "iris"
    with pytest.raises(SystemExit) as exit_info:
        main(["show", "nope", "--json"])
    assert exit_info.value.code == 3
    assert json.loads(capsys.readouterr().err)["error"] == "ArtifactNotFound"


# ----------------------------------------------------------------- bad input

BAD_INPUT = [
    # (arguments, exit code, the bad value the message must name)
    (["log", "{new}", "--key", "bad key"], 2, "bad key"),
    (["log", "{new}", "--key", "../x"], 2, "../x"),
    (["log", "{new}", "--key", "ok", "--tag", "bad/tag"], 2, "bad/tag"),
    (["log", "{new}", "--key", "ok", "--label", "a b=1"], 2, "a b"),
    (["log", "{new}", "--key", "ok", "--label", "novalue"], 2, "novalue"),
    (["log", "{new}", "--key", "ok", "--kind", "bogus"], 2, "bogus"),
    (["log", "{new}", "--key", "ok", "--project", "Bad_Project"], 2, "Bad_Project"),
    (["log", "{missing}", "--key", "ok"], 2, "{missing}"),
    (["log", "{new}", "--key", "ok", "--source", "{missing}"], 2, "{missing}"),
    (["log", "{new}", "--key", "ok", "--source", "store://nope"], 3, "nope"),
    (["show", "store://a/b/c/d"], 2, "store://a/b/c/d"),
    (["show", "iris^XYZ"], 2, "XYZ"),
    (["show", "nope"], 3, "nope"),
    (["show", "iris:nope"], 3, "nope"),
    (["tag", "iris", "bad tag"], 2, "bad tag"),
    (["tag", "store://a/b/c/d", "v2"], 2, "store://a/b/c/d"),
    (["tag", "nope", "v2"], 3, "nope"),
    (["untag", "iris", "bad/tag"], 2, "bad/tag"),
    (["untag", "iris", "nope"], 3, "nope"),
    (["rm", "store://a/b/c/d"], 2, "store://a/b/c/d"),
    (["rm", "nope"], 3, "nope"),
    (["rm", "nope", "--all-versions"], 3, "nope"),
    (["get", "store://a/b/c/d", "{dest}"], 2, "store://a/b/c/d"),
    (["get", "nope", "{dest}"], 3, "nope"),
    (["update", "store://a/b/c/d", "--label", "a=1"], 2, "store://a/b/c/d"),
    (["update", "iris", "--label", "a b=1"], 2, "a b"),
    (["update", "iris", "--label", "novalue"], 2, "novalue"),
    (["update", "iris", "--link", "novalue"], 2, "novalue"),
    (["update", "iris", "--link", "bad name=store://iris"], 2, "bad name"),
    (["update", "iris", "--link", "x=store://nope"], 3, "nope"),
    (["update", "nope", "--label", "a=1"], 3, "nope"),
    (["lineage", "store://a/b/c/d"], 2, "store://a/b/c/d"),
    (["lineage", "nope"], 3, "nope"),
    (["ls", "--label", "a b"], 2, "a b"),
    (["ls", "--since", "yesterday-ish"], 2, "yesterday-ish"),
    (["ls", "--category", "bogus"], 2, "bogus"),
    (["audit", "--until", "soon"], 2, "soon"),
    (["sql", "DELETE FROM artifacts"], 2, "DELETE"),
]


@pytest.mark.parametrize(("args", "code", "bad"), BAD_INPUT, ids=lambda v: str(v))
def test_bad_input_is_refused_and_changes_nothing(
    seeded: App, args: list[str], code: int, bad: str
) -> None:
    app = seeded
    values = {
        "new": str(app.file("new.csv", b"content never stored")),
        "missing": str(app.root / "missing.csv"),
        "dest": str(app.root / "dest.csv"),
    }
    args = [a.format(**values) for a in args]
    bad = bad.format(**values)
    before = (app.log_end(), app.blobs())
    message = one_line(app.fail(code, *args))
    assert message.startswith("error: ")
    assert bad in message
    assert (app.log_end(), app.blobs()) == before
    assert not (app.root / "dest.csv").exists()


def test_consume_batch_size_default_is_the_projections() -> None:
    from catalog.consumers.projection import DEFAULT_BATCH

    option = next(p for p in cli.commands["consume"].params if p.name == "batch_size")
    assert option.default == DEFAULT_BATCH


def test_get_into_a_folder_and_bad_destinations(app: App, iris: str) -> None:
    """`catalog get iris:v1 ./out3/` writes into the folder out3 (made if missing), as
    the README shows; a destination that cannot be is one line, exit 2, no traceback."""
    folder = app.root / "out3"
    assert app.out("get", "iris:v1", "./out3/") == "out3/iris.csv"
    assert (folder / "iris.csv").read_bytes() == DATA
    assert app.out("get", "iris:v1", "deeper/still/x.csv") == "deeper/still/x.csv"
    tree = app.root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "m.pkl").write_bytes(b"model")
    app.out("log", tree, "--key", "churn-model")
    blocker = app.file("plain.txt", b"x")
    for args in (
        ("get", "churn-model", f"{blocker}/"),  # a folder wanted where a file is
        ("get", "churn-model", str(blocker)),  # a directory artifact onto a file
        ("get", "iris:v1", f"{blocker}/x.csv"),  # a file where a folder must be
        ("get", "iris:v1", f"{blocker}/"),
        ("get", "iris:v1", str(app.root)),  # a folder: fine, the file goes in it
    ):
        result = app.run(*args)
        assert "Traceback" not in result.output, (args, result.output)
        if args[2] == str(app.root):
            assert result.exit_code == 0
            continue
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1 and "plain.txt" in result.stderr, result.stderr


def test_one_precedence_for_the_sdk_and_the_cli(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flag or argument > environment > config file > default, for every setting, the
    same in `catalog config` and `Catalog()`; `catalog config` says where each came from."""
    config = tmp_path / "config.toml"
    config.write_text('project = "fromfile"\nactor = "fileactor"\n')
    monkeypatch.setenv("CATALOG_CONFIG", str(config))
    monkeypatch.setenv("CATALOG_PROJECT", "fromenv")
    monkeypatch.delenv("CATALOG_ACTOR", raising=False)
    shown = app.json("config", "--json")
    assert shown["project"] == "fromenv"
    assert shown["sources"]["project"] == "env CATALOG_PROJECT"
    assert shown["actor"] == "fileactor" and shown["sources"]["actor"] == f"file {config}"
    assert Catalog().project == "fromenv" and Catalog().config.actor == "fileactor"
    flagged = app.json("--project", "fromflag", "config", "--json")
    assert flagged["project"] == "fromflag" and flagged["sources"]["project"] == "argument"
    assert Catalog(project="fromarg").project == "fromarg"
    monkeypatch.delenv("CATALOG_PROJECT")
    assert app.json("config", "--json")["project"] == "fromfile"
    assert Catalog().project == "fromfile"
    config.unlink()
    again = app.json("config", "--json")
    assert again["project"] == "default" and again["sources"]["project"] == "default"
    assert "from" in app.out("config").splitlines()[0].lower()


def test_ls_says_when_only_older_versions_match(app: App, iris: str) -> None:
    app.ok("update", iris, "--label", "reviewed=yes")
    app.log("iris", b"a,b\n9,9\n", "--kind", "dataset")  # a newer version, not reviewed
    result = app.ok("ls", "--label", "reviewed=yes")
    assert "iris" not in result.stdout
    assert "1 older version(s) do" in result.stderr and "-a" in result.stderr
    assert "iris" in app.out("ls", "--label", "reviewed=yes", "-a")
    # -p names the project whose keys are shown as keys
    app.ok("log", app.file("c.csv"), "--key", "customers", "-p", "teamb")
    assert app.keys("-p", "teamb") == ["customers"]
    assert "teamb/customers" not in app.out("ls", "-p", "teamb")


def test_sql_takes_json_and_shows_maps_as_labels(app: App, iris: str) -> None:
    statement = "SELECT key, labels FROM artifacts WHERE key = 'iris'"
    assert app.json("sql", statement, "--json") == [{"key": "iris", "labels": {"team": "ml"}}]
    assert app.json("sql", statement, "--format", "json") == app.json("sql", statement, "--json")
    assert "team=ml" in app.out("sql", statement)
    assert "('team'" not in app.out("sql", statement, "--format", "csv")


def test_serve_on_a_busy_port_and_a_bad_log_url_are_invalid_input(app: App) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = app.run("serve", "--port", port)
    assert busy.exit_code == 2 and "serving" not in busy.output, busy.output
    assert f"127.0.0.1:{port}" in busy.stderr and "--port" in busy.stderr
    for url in ("kafka://h:1/t?bogus=1", "s3://bucket/log", "kafka://nohost/t"):
        bad = app.run("--log", url, "ls")
        assert bad.exit_code == 2, (url, bad.output)
        assert bad.stderr.count("\n") == 1


def test_audit_says_what_a_project_configuration_set(app: App) -> None:
    from catalog.projects import mlconf, set_environment

    mlconf.reset()
    try:
        set_environment(project="vision", artifact_path=str(app.root / "vision"))
    finally:
        mlconf.reset()
    rows = app.json("audit", "--project", "vision", "--json")
    assert rows and rows[0]["type"] == "ProjectConfigured"
    assert "artifact_path" in app.out("audit", "--project", "vision")


def test_a_file_name_that_is_no_key_suggests_one(app: App) -> None:
    spaced = app.file("data dir/sample with spaces.csv")
    message = one_line(app.fail(2, "log", spaced))
    assert "'sample with spaces.csv'" in message
    assert "--key sample_with_spaces.csv" in message
    assert "ASCII letters" in message
    accented = one_line(app.fail(2, "log", app.file("équipe.csv")))
    assert "ASCII letters" in accented and "--key equipe.csv" in accented
    # the suggestion is a key the catalog takes
    assert app.out("log", spaced, "--key", "sample_with_spaces.csv").startswith("store://")
    # a key given with --key is not the file name's: no --key hint, the SDK's words
    given = one_line(app.fail(2, "log", spaced, "--key", "bad key"))
    assert "--key" not in given and "ASCII letters" in given


def test_a_mistyped_uri_is_echoed_as_typed_and_not_found_names_the_category(
    app: App, iris: str
) -> None:
    typed = "store:/datasets/default/iris"
    for args in (["show", typed], ["get", typed, "o.csv"], ["export", typed], ["tag", typed, "x"]):
        message = one_line(app.fail(2, *args))
        assert f"invalid URI '{typed}'" in message, message
        assert "store://store:" not in message
        assert "store://datasets/default/iris" in message  # what was meant
    bare = one_line(app.fail(2, "show", "iris:bad/tag"))
    assert "'iris:bad/tag'" in bare and "store://" not in bare
    # a dataset asked for by its key alone: the message names its real category
    missing = one_line(app.fail(3, "show", "iris:nosuchtag"))
    assert "store://datasets/default/iris:nosuchtag" in missing, missing
    assert "no tag 'nosuchtag'" in missing
    assert "store://artifacts/" not in one_line(app.fail(3, "get", "iris:nosuchtag", "out.csv"))


def test_a_tag_differing_only_by_case_is_refused(app: App, iris: str) -> None:
    latest = one_line(app.fail(2, "tag", "iris", "LATEST"))
    assert "'LATEST'" in latest and "only by case" in latest
    twin = one_line(app.fail(2, "tag", "iris", "V1"))
    assert "refused" in twin and "'V1' differs only by case from the tag 'v1'" in twin
    assert "V1" not in app.out("sql", "SELECT tag FROM tags")
    assert one_line(app.fail(2, "log", app.file("b.csv"), "--key", "iris", "--tag", "Latest"))


def test_lineage_shows_links_apart(app: App) -> None:
    data = app.log("data", b"x\n1\n", "--kind", "dataset")
    plot = app.log("matrix", b"<svg/>", "--kind", "plot", "--source", data)
    model = app.log("model", b"m", "--kind", "model", "--source", data)
    app.ok("update", data, "--link", f"confusion_matrix={plot}")
    app.ok("update", model, "--link", f"matrix={plot}")
    shown = app.out("lineage", model, "--depth", "3")
    table, _, links = shown.partition("\n\n")
    assert "extra_data" not in table and "matrix@" not in table  # no link in the lineage
    assert [line.split()[2] for line in table.splitlines()[1:]] == ["source"]
    assert links.splitlines()[0].startswith("links (extra_data)")
    assert f"model@{uid(model)[:12]}" in links and f"matrix@{uid(plot)[:12]}" in links
    document = app.json("lineage", model, "--depth", "3", "--json")
    assert [e["relation"] for e in document["edges"]] == ["source"]
    assert [e["name"] for e in document["links"]] == ["matrix"]
    # the plot: nothing made from it, two versions link to it
    assert app.out("lineage", plot, "--downstream").startswith("no downstream lineage")
    linked = app.json("lineage", plot, "--downstream", "--json")
    assert [e["key"] for e in linked["linked_from"]] == ["data", "model"]
