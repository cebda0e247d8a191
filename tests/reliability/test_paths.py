"""Paths: nothing a user or a log record names can address a file outside its root.

The recorded file name of a version is only a hint: an event appended by
hand (bypassing the SDK's validation) can put anything there. ``catalog get
URI DEST/`` must write only inside DEST, and ``DataItem.local()`` only inside
the download cache, whatever the name says: ``..``, absolute paths,
backslashes, NUL, look-alike slashes. A directory manifest naming ``../x`` is
refused before anything is written.

Covered elsewhere: key, tag, label and project validation against the same
hostile names (tests/test_validation.py), manifest path validation and
symlink escapes (tests/test_store.py), hostile keys in hand-made events
dead-lettered (tests/reliability/test_poison.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.errors import InvalidInput
from catalog.events.codec import Codec
from catalog.events.model import ArtifactLogged, CatalogEvent, Producer
from catalog.log import Message, open_log
from catalog.store import ObjectStore
from reliability.helpers import catalog_env, invoke, record

HOSTILE_NAMES = [
    "../../evil",
    "../../../../../../tmp/evil",
    "/etc/evil",
    "/tmp/evil",
    "..\\..\\evil",
    "C:\\Windows\\evil",
    "sub/../../evil",
    "evil\x00.txt",
    "\u2215tmp\u2215evil",  # DIVISION SLASH
    "\uff0e\uff0e\uff0fevil",  # fullwidth ../
    "..",
    ".",
    "",
    "x.y/../../../../evil",
    "~/.bashrc",
    "evil\n.txt",
    "evil.t\x00xt",
    "x./etc/evil",
    "report.html/../../../../../evil",
    "a" * 300,
]


def snapshot(root: Path, inside: Path) -> dict[str, int]:
    """Every file under ``root`` outside ``inside`` (path -> mtime in ns)."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_relative_to(inside):
                files[str(path)] = path.stat().st_mtime_ns
    return files


def craft(root: Path, key: str, filename: str, content: bytes, fmt: str | None = None) -> str:
    """Append an ArtifactLogged naming ``filename``, bypassing the SDK; its URI."""
    env = catalog_env(root)
    blob = ObjectStore(env["CATALOG_ARTIFACT_PATH"]).put_bytes(content)
    uid = blob.digest[:32]
    codec = Codec()
    ev = CatalogEvent(
        project="default",
        key=key,
        actor="mallory",
        payload=ArtifactLogged(
            uid=uid,
            kind="artifact",
            producer=Producer("client", "mallory"),
            hash=blob.digest,
            size=blob.size,
            target_path=blob.url,
            filename=filename,
            format=fmt,
        ),
    )
    with open_log(env["CATALOG_LOG"]) as log:
        log.append([Message(ev.partition_key, codec.encode(ev))])
    return f"store://artifacts/default/{key}^{uid}"


def test_get_writes_only_inside_dest(tmp_path: Path) -> None:
    home = tmp_path / "jail"
    home.mkdir()
    uris = [
        craft(home, f"crafted{i}", name, f"payload {i}".encode())
        for i, name in enumerate(HOSTILE_NAMES)
    ]
    for i, (name, uri) in enumerate(zip(HOSTILE_NAMES, uris, strict=True)):
        dest = home / "dest" / str(i) / "inner"
        dest.mkdir(parents=True)
        before = snapshot(tmp_path, dest)
        result = invoke(home, "get", uri, dest, catch=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{name!r}: {result.exception!r}"
        )
        assert result.exit_code == 0, f"{name!r}: {result.output}"
        written = [p for p in dest.rglob("*") if p.is_file()]
        assert len(written) == 1 and written[0].read_bytes() == f"payload {i}".encode(), name
        assert written[0].parent == dest, name
        new = sorted(set(snapshot(tmp_path, dest)) - set(before))
        # Only the catalog's own files may appear outside DEST (projection, cache).
        assert all(p.startswith(str(home / "home")) or "catalog.duckdb" in p for p in new), new
        assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists(), name
    record("paths: catalog get with hostile recorded names", cases=len(HOSTILE_NAMES))


def test_dataitem_local_stays_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "jail"
    home.mkdir()
    env = catalog_env(home)
    monkeypatch.setenv("CATALOG_HOME", env["CATALOG_HOME"])
    cache = Path(env["CATALOG_HOME"]) / "cache"
    uris = [
        craft(home, f"crafted{i}", name, f"cached {i}".encode())
        for i, name in enumerate(HOSTILE_NAMES)
    ]
    before = snapshot(tmp_path, cache)
    with Catalog(
        log=env["CATALOG_LOG"],
        db=env["CATALOG_DB"],
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="default",
    ) as cat:
        for i, (name, uri) in enumerate(zip(HOSTILE_NAMES, uris, strict=True)):
            local = Path(cat.get_dataitem(uri).local())
            assert local.resolve().is_relative_to(cache.resolve()), (name, local)
            assert local.read_bytes() == f"cached {i}".encode(), name
    new = sorted(set(snapshot(tmp_path, cache)) - set(before))
    assert all("catalog.duckdb" in p for p in new), new
    record("paths: DataItem.local with hostile recorded names", cases=len(HOSTILE_NAMES))


def test_a_crafted_manifest_is_refused_before_writing(tmp_path: Path) -> None:
    home = tmp_path / "jail"
    home.mkdir()
    env = catalog_env(home)
    cas = ObjectStore(env["CATALOG_ARTIFACT_PATH"])
    inner = cas.put_bytes(b"evil")
    manifest = json.dumps(
        {
            "version": 1,
            "files": [
                {"path": "ok.txt", "sha256": inner.digest, "size": 4},
                {"path": "../../escaped.txt", "sha256": inner.digest, "size": 4},
            ],
        },
        separators=(",", ":"),
    ).encode()
    blob = cas.put_bytes(manifest)
    codec = Codec()
    ev = CatalogEvent(
        project="default",
        key="tree",
        actor="mallory",
        payload=ArtifactLogged(
            uid=blob.digest[:32],
            kind="dir",
            producer=Producer("client", "mallory"),
            hash=blob.digest,
            size=8,
            target_path=blob.url,
            format="dir",
        ),
    )
    with open_log(env["CATALOG_LOG"]) as log:
        log.append([Message(ev.partition_key, codec.encode(ev))])
    dest = home / "out" / "deep"
    dest.mkdir(parents=True)
    before = snapshot(tmp_path, dest)
    result = invoke(home, "get", "tree", dest, catch=True)
    assert result.exit_code == 2, result.output
    assert "escaped.txt" in result.stderr
    assert list(dest.rglob("*")) == []  # refused before the first file
    assert not (home / "escaped.txt").exists() and not (home / "out" / "escaped.txt").exists()
    assert set(snapshot(tmp_path, dest)) - set(before) <= {
        p for p in snapshot(tmp_path, dest) if "catalog.duckdb" in p
    }
    record("paths: crafted manifest", cases=1)


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a\\b", "a\x00b", "\u2215x", "x/../../y", ".", "..", "a b"]
)
def test_hostile_keys_tags_and_labels_are_refused_at_every_door(tmp_path: Path, key: str) -> None:
    home = tmp_path / "c"
    home.mkdir()
    (home / "f.txt").write_bytes(b"x")
    for args in (
        ["log", home / "f.txt", "--key", key],
        ["log", home / "f.txt", "--key", "ok", "--tag", key],
        ["log", home / "f.txt", "--key", "ok", "--label", f"{key}=v"],
        ["show", key],
        ["get", key, home / "out"],
    ):
        result = invoke(home, *args, catch=True)
        assert result.exit_code in (2, 3), (args, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        )
    assert not (home / "artifacts").exists() or not list((home / "artifacts").rglob("*.txt"))
    record("paths: hostile keys, tags, labels via CLI", cases=5)


def test_logging_a_directory_never_follows_a_link_out_of_it(tmp_path: Path) -> None:
    """`ln -s ~/secret symdir/leak.txt; catalog log symdir` refuses, naming the link;
    nothing is stored and nothing appended. --follow-symlinks stores it, on purpose."""
    secret = tmp_path / "secret"
    secret.write_text("-----BEGIN PRIVATE KEY-----")
    symdir = tmp_path / "symdir"
    symdir.mkdir()
    (symdir / "notes.txt").write_text("fine")
    (symdir / "leak.txt").symlink_to(secret)
    refused = invoke(tmp_path, "log", symdir, catch=True)
    assert refused.exit_code == 2, refused.output
    assert "leak.txt" in refused.output and "outside the directory" in refused.output
    assert "Traceback" not in refused.output
    with open_log(catalog_env(tmp_path)["CATALOG_LOG"]) as log:
        assert log.end_offsets() == {0: 0}  # nothing appended
    (symdir / "leak.txt").unlink()
    (symdir / "dangling.txt").symlink_to(tmp_path / "nowhere")
    dangling = invoke(tmp_path, "log", symdir, catch=True)
    assert dangling.exit_code == 2 and "dangling.txt" in dangling.output
    assert "dangling symbolic link" in dangling.output
    (symdir / "dangling.txt").unlink()
    (symdir / "leak.txt").symlink_to(secret)
    followed = invoke(tmp_path, "log", symdir, "--follow-symlinks", catch=True)
    assert followed.exit_code == 0, followed.output
    record("paths: symbolic links out of a logged directory", cases=3)


def test_terminal_escapes_and_bidi_controls_never_reach_a_terminal_raw(tmp_path: Path) -> None:
    """CATALOG_ACTOR=$'evil\\e]0;title\\a' is refused; label values refuse U+202E; an
    event written by another producer with such an actor prints escaped in audit."""
    osc = "evil\x1b]0;title\x07"
    env = catalog_env(tmp_path)
    with pytest.raises(InvalidInput, match="actor"):
        Catalog(log=env["CATALOG_LOG"], db=env["CATALOG_DB"], actor=osc)
    from click.testing import CliRunner

    from catalog.cli import cli

    refused = CliRunner().invoke(
        cli, ["ls"], env={**env, "CATALOG_ACTOR": osc}, catch_exceptions=True
    )
    assert refused.exit_code == 2 and "actor" in refused.output and "\x1b" not in refused.output
    with Catalog(
        log=env["CATALOG_LOG"], db=env["CATALOG_DB"], artifact_path=env["CATALOG_ARTIFACT_PATH"]
    ) as cat:
        with pytest.raises(InvalidInput, match="bidirectional control"):
            cat.log_artifact("k", body=b"x", labels={"note": "abc\u202edef"})
        for bad in (float("nan"), float("inf")):
            with pytest.raises(InvalidInput, match="finite"):
                cat.log_artifact("k", body=b"x", labels={"n": bad})
        art = cat.log_artifact("k", body=b"x")
    # another producer (not this SDK) appends an event with a hostile actor
    codec = Codec()
    event = CatalogEvent(
        project="default",
        key="k",
        actor=osc + "\u202e",
        payload=ArtifactLogged(uid="f" * 32, kind="artifact", producer=Producer("client", "x")),
    )
    with open_log(env["CATALOG_LOG"]) as log:
        log.append([Message("default/k", codec.encode(event))])
    for args in (("audit",), ("audit", "--format", "csv")):
        out = invoke(tmp_path, *args, catch=True).output
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, args
        assert "\\x1b" in out and "\\u202e" in out, args
    assert art.uid
    record("escapes: hostile actors and labels", cases=4)
