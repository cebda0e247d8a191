"""Tests for catalog.store: one contract suite, subclassed per backend (STYLE.md rule 15).

``StoreContract`` holds every test that any backend must pass; a backend subclass
only overrides the ``store`` fixture (an S3 subclass plugs in the same way).
Tests that need a local filesystem live in ``TestLocalOnly``; failure injection
uses an in-memory filesystem registered under the ``nospace://`` protocol.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem
from hypothesis import given, settings
from hypothesis import strategies as st

import catalog.store
from catalog.errors import (
    BlobNotFound,
    DigestMismatch,
    InvalidInput,
    InvalidPath,
    StorageError,
)
from catalog.store import (
    CHUNK_SIZE,
    Blob,
    Manifest,
    ManifestEntry,
    ObjectStore,
    get_to_local,
    hash_file,
    is_local,
    join_url,
    list_url,
    normalize_url,
    open_url,
    put_local_file,
    url_exists,
    url_size,
    validate_relative_path,
)

MiB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_path(store: ObjectStore, digest: str) -> str:
    """Where the layout says a blob lives, spelled as ``store.fs`` spells paths."""
    return f"{store.path}/objects/sha256/{digest[:2]}/{digest[2:]}"


def leftover_tmp(store: ObjectStore) -> list[str]:
    tmp = f"{store.path}/objects/tmp"
    return sorted(store.fs.find(tmp)) if store.fs.exists(tmp) else []


class Chunks(io.RawIOBase):
    """A readable stream over ``parts``; optionally calls ``hook`` before each read."""

    def __init__(self, parts: list[bytes], hook: Any = None) -> None:
        super().__init__()
        self.parts = list(parts)
        self.hook = hook
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.hook is not None:
            self.hook(self.reads)
        self.reads += 1
        return self.parts.pop(0) if self.parts else b""


def spy_writes(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> list[tuple[str, str]]:
    """Record every write-mode open and every move on the store's filesystem."""
    calls: list[tuple[str, str]] = []
    real_open, real_mv = store.fs.open, store.fs.mv

    def open_(path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if mode[0] in "wax":
            calls.append(("open", path))
        return real_open(path, mode, *args, **kwargs)

    def mv(path1: str, path2: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(("mv", path2))
        return real_mv(path1, path2, *args, **kwargs)

    monkeypatch.setattr(store.fs, "open", open_)
    monkeypatch.setattr(store.fs, "mv", mv)
    return calls


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "README.md": b"# model\n",
        "weights/layer1.bin": os.urandom(3000),
        "weights/deep/er/layer2.bin": os.urandom(10),
        "weights/copy.bin": b"# model\n",  # same bytes as README.md
        "empty.txt": b"",
        "sp ace/ü.txt": "grüße".encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


HOSTILE_PATHS = [
    "",
    "../x",
    "..",
    ".",
    "/etc/passwd",
    "a/../../b",
    "a/..",
    "a\\b",
    "..\\x",
    "C:\\x",
    "C:/x",
    "c:",
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "a\u202eb",  # right-to-left override
    "a//b",
    "a/",
    "./a",
    "a/.",
    "a/./b",
    "a\u2215b",  # division slash
    "a\uff0fb",  # fullwidth solidus
    "a\u29f8b",  # big solidus
    "a\u2044b",  # fraction slash
    "a\uff3cb",  # fullwidth reverse solidus
    "\u2024\u2024/x",  # one dot leaders
    "\uff0e\uff0e/x",  # fullwidth full stops
    "\u3002\u3002/x",  # ideographic full stops
    "\u2025/x",  # two dot leader
    "e\u0301",  # not NFC: e + combining acute
]


# ------------------------------------------------------------------- contract


class StoreContract:
    """What every ObjectStore backend guarantees. Subclasses override ``store``."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def test_layout(self, store: ObjectStore) -> None:
        blob = store.put_bytes(b"layout")
        digest = sha(b"layout")
        assert blob == Blob(digest, 6, store.url_for(digest))
        assert blob.url.endswith(f"/objects/sha256/{digest[:2]}/{digest[2:]}")
        assert blob.url.startswith(store.root)
        assert store.fs.cat_file(blob_path(store, digest)) == b"layout"

    def test_put_bytes_round_trip(self, store: ObjectStore) -> None:
        blob = store.put_bytes(b"hello world")
        assert blob.digest == sha(b"hello world") and blob.size == 11
        assert store.get_bytes(blob.digest) == b"hello world"
        assert store.exists(blob.digest) and store.size(blob.digest) == 11

    def test_empty_blob(self, store: ObjectStore) -> None:
        blob = store.put_bytes(b"")
        assert blob.size == 0 and store.get_bytes(blob.digest) == b""

    def test_put_file_round_trip(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(CHUNK_SIZE + 123)
        (tmp_path / "f.bin").write_bytes(data)
        blob = store.put_file(tmp_path / "f.bin")
        assert blob.digest == sha(data) and blob.size == len(data)
        assert store.get_bytes(blob.digest) == data

    def test_put_stream_round_trip(self, store: ObjectStore) -> None:
        parts = [os.urandom(CHUNK_SIZE), os.urandom(CHUNK_SIZE), b"tail"]
        blob = store.put_stream(Chunks(parts))
        data = b"".join(parts)
        assert (blob.digest, blob.size) == (sha(data), len(data))
        with store.open(blob.digest) as reader:
            assert reader.read(10) == data[:10]
            assert reader.read() == data[10:]
        assert leftover_tmp(store) == []

    def test_identical_content_same_digest(self, store: ObjectStore, tmp_path: Path) -> None:
        data = b"same bytes"
        (tmp_path / "f").write_bytes(data)
        blobs = {
            store.put_bytes(data),
            store.put_file(tmp_path / "f"),
            store.put_stream(io.BytesIO(data)),
        }
        assert len(blobs) == 1
        assert [b.digest for b in store.iter_blobs()] == [sha(data)]

    def test_dedup_writes_nothing(
        self, store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "f").write_bytes(b"dedup")
        first = store.put_bytes(b"dedup")
        calls = spy_writes(monkeypatch, store)
        assert store.put_bytes(b"dedup") == first
        assert store.put_file(tmp_path / "f") == first
        assert calls == []
        assert store.put_stream(io.BytesIO(b"dedup")) == first
        assert [c for c in calls if c[0] == "mv"] == []  # hashed to tmp, never moved
        assert leftover_tmp(store) == []

    def test_put_file_changed_while_storing(
        self, store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Files up to CHUNK_SIZE are read once (nothing can change between hash
        # and copy); bigger ones are hashed first and re-hashed while copied.
        monkeypatch.setattr(catalog.store, "CHUNK_SIZE", 2)
        (tmp_path / "f").write_bytes(b"after")
        monkeypatch.setattr(catalog.store, "hash_file", lambda path: (sha(b"before"), 6))
        with pytest.raises(DigestMismatch) as info:
            store.put_file(tmp_path / "f")
        assert (info.value.expected, info.value.actual) == (sha(b"before"), sha(b"after"))
        assert info.value.url == str(tmp_path / "f")
        assert list(store.iter_blobs()) == [] and leftover_tmp(store) == []

    def test_blob_invisible_while_writing(self, store: ObjectStore) -> None:
        parts = [b"a" * 1000, b"b" * 1000, b"c"]
        digest = sha(b"".join(parts))
        seen: list[bool] = []

        def hook(reads: int) -> None:
            if reads == 2:  # two chunks already handed over
                seen.append(store.exists(digest))

        store.put_stream(Chunks(parts, hook))
        assert seen == [False]
        assert store.exists(digest) and leftover_tmp(store) == []

    def test_failing_source_stores_nothing(self, store: ObjectStore) -> None:
        def hook(reads: int) -> None:
            if reads == 2:
                raise OSError(errno.EIO, "source went away")

        with pytest.raises(StorageError, match="source went away"):
            store.put_stream(Chunks([b"x" * 100, b"y" * 100, b"z"], hook))
        assert list(store.iter_blobs()) == []
        assert leftover_tmp(store) == []

    def test_iter_blobs_skips_tmp_and_strays(self, store: ObjectStore) -> None:
        blobs = [store.put_bytes(b"one"), store.put_bytes(b"two")]
        store.fs.pipe_file(f"{store.path}/objects/tmp/{uuid.uuid4().hex}", b"partial")
        store.fs.makedirs(f"{store.path}/objects/sha256/zz", exist_ok=True)
        store.fs.pipe_file(f"{store.path}/objects/sha256/zz/not-a-blob", b"stray")
        assert list(store.iter_blobs()) == sorted(blobs, key=lambda b: b.digest)

    def test_iter_blobs_empty(self, store: ObjectStore) -> None:
        assert list(store.iter_blobs()) == []

    def test_delete(self, store: ObjectStore) -> None:
        blob = store.put_bytes(b"bye")
        store.delete(blob.digest)
        assert not store.exists(blob.digest)
        with pytest.raises(BlobNotFound):
            store.delete(blob.digest)

    @pytest.mark.parametrize(
        "digest", ["", "abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61]
    )
    def test_invalid_digest(self, store: ObjectStore, digest: str) -> None:
        for call in (store.url_for, store.exists, store.get_bytes, store.open, store.size):
            with pytest.raises(InvalidPath):
                call(digest)

    def test_missing_blob(self, store: ObjectStore, tmp_path: Path) -> None:
        digest = sha(b"never stored")
        assert not store.exists(digest)
        for call in (store.open, store.get_bytes, store.size, store.read_manifest):
            with pytest.raises(BlobNotFound) as info:
                call(digest)
            assert info.value.digest == digest and info.value.url == store.url_for(digest)
        with pytest.raises(BlobNotFound):
            store.download(digest, tmp_path / "out" / "f")
        assert not (tmp_path / "out" / "f").exists()

    @pytest.mark.parametrize("evil", [b"tampered!!!", b"hello worlD", b"hello world+", b""])
    def test_tamper_detected(self, store: ObjectStore, tmp_path: Path, evil: bytes) -> None:
        blob = store.put_bytes(b"hello world")
        store.fs.pipe_file(blob_path(store, blob.digest), evil)
        with pytest.raises(DigestMismatch) as info:
            store.get_bytes(blob.digest)
        assert info.value.expected == blob.digest
        assert info.value.actual == sha(evil) and info.value.url == blob.url
        with pytest.raises(DigestMismatch), store.open(blob.digest) as reader:
            while reader.read(3):
                pass
        out = tmp_path / "out"
        with pytest.raises(DigestMismatch):
            store.download(blob.digest, out / "file.bin")
        assert list(out.iterdir()) == []

    def test_download(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(CHUNK_SIZE + 7)
        blob = store.put_bytes(data)
        dest = tmp_path / "a" / "b" / "file.bin"
        assert store.download(blob.digest, dest) == dest
        assert dest.read_bytes() == data
        dest.write_bytes(b"old")
        store.download(blob.digest, str(dest))
        assert dest.read_bytes() == data
        assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]

    def test_dir_round_trip(self, store: ObjectStore, tmp_path: Path) -> None:
        files = make_tree(tmp_path / "src")
        blob, manifest = store.put_dir(tmp_path / "src")
        assert [e.path for e in manifest.entries] == sorted(files)
        assert manifest.size == sum(len(d) for d in files.values())
        assert blob.digest == sha(manifest.to_bytes())
        assert store.read_manifest(blob.digest) == manifest
        assert store.put_dir(tmp_path / "src") == (blob, manifest)
        stored = {b.digest for b in store.iter_blobs()}
        assert stored == {sha(d) for d in files.values()} | {blob.digest}
        dest = store.download_dir(blob.digest, tmp_path / "dest")
        got = {
            p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()
        }
        assert got == files

    def test_empty_dir(self, store: ObjectStore, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        blob, manifest = store.put_dir(tmp_path / "empty")
        assert manifest.entries == () and manifest.to_bytes() == b'{"version":1,"files":[]}'
        assert store.download_dir(blob.digest, tmp_path / "d").is_dir()

    def test_put_dir_refuses_non_directory(self, store: ObjectStore, tmp_path: Path) -> None:
        with pytest.raises(InvalidPath):
            store.put_dir(tmp_path / "missing")

    def test_download_dir_detects_tampered_file(self, store: ObjectStore, tmp_path: Path) -> None:
        make_tree(tmp_path / "src")
        blob, manifest = store.put_dir(tmp_path / "src")
        victim = next(e for e in manifest.entries if e.path == "weights/layer1.bin")
        store.fs.pipe_file(blob_path(store, victim.digest), b"evil")
        with pytest.raises(DigestMismatch):
            store.download_dir(blob.digest, tmp_path / "dest")
        assert not (tmp_path / "dest" / "weights" / "layer1.bin").exists()

    @pytest.mark.parametrize(
        "path", ["../evil", "a/../../evil", "/tmp/evil", "..\\evil", "C:/evil", "./evil"]
    )
    def test_download_dir_refuses_crafted_manifest(
        self, store: ObjectStore, tmp_path: Path, path: str
    ) -> None:
        payload = store.put_bytes(b"payload")
        files = [
            {"path": "ok.txt", "sha256": payload.digest, "size": 7},
            {"path": path, "sha256": payload.digest, "size": 7},
        ]
        raw = json.dumps({"version": 1, "files": files}).encode()
        crafted = store.put_bytes(raw)
        dest = tmp_path / "x" / "dest"
        with pytest.raises(InvalidPath):
            store.download_dir(crafted.digest, dest)
        assert not (tmp_path / "x" / "evil").exists() and not (tmp_path / "evil").exists()
        assert not dest.exists()

    def test_read_manifest_refuses_non_manifest(self, store: ObjectStore) -> None:
        blob = store.put_bytes(b"\x00\x01 not json")
        with pytest.raises(InvalidInput):
            store.read_manifest(blob.digest)


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return ObjectStore(str(tmp_path / "store"))


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[ObjectStore]:
        store = ObjectStore(f"memory://t-{uuid.uuid4().hex}")
        yield store
        if store.fs.exists(store.path):
            store.fs.rm(store.path, recursive=True)


# ---------------------------------------------------------------- local only


class TestLocalOnly:
    def test_root_forms(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        relative = ObjectStore("rel/store")
        assert relative.root == str(tmp_path / "rel" / "store")
        assert relative.protocol == "file"
        via_url = ObjectStore(f"file://{tmp_path}/rel/store")
        assert via_url.root == relative.root
        blob = relative.put_bytes(b"x")
        assert via_url.get_bytes(blob.digest) == b"x"
        assert Path(blob.url).is_file() and os.path.isabs(blob.url)
        assert ObjectStore("memory://m").protocol == "memory"

    @pytest.mark.parametrize("how", ["bytes", "file", "stream"])
    def test_dedup_rewrites_nothing_but_freshens_mtime(self, tmp_path: Path, how: str) -> None:
        # The bytes stay (same inode), but the mtime moves to now: `catalog gc` spares
        # blobs younger than its grace period, counted from the latest write (as git).
        store = ObjectStore(str(tmp_path / "s"))
        (tmp_path / "f").write_bytes(b"dedup")
        blob = store.put_bytes(b"dedup")
        os.utime(blob.url, ns=(1_000_000_000, 1_000_000_000))
        inode = os.stat(blob.url).st_ino
        if how == "bytes":
            store.put_bytes(b"dedup")
        elif how == "file":
            store.put_file(tmp_path / "f")
        else:
            store.put_stream(io.BytesIO(b"dedup"))
        assert os.stat(blob.url).st_ino == inode
        assert os.stat(blob.url).st_mtime > time.time() - 60
        assert leftover_tmp(store) == []

    def test_put_stream_constant_memory(self, tmp_path: Path) -> None:
        store = ObjectStore(str(tmp_path / "s"))
        block = os.urandom(CHUNK_SIZE)
        total = 64 * MiB
        requested: list[int] = []

        class Generated(io.RawIOBase):
            sent = 0

            def readable(self) -> bool:
                return True

            def read(self, size: int = -1) -> bytes:
                requested.append(size)
                if self.sent >= total:
                    return b""
                self.sent += len(block)
                return bytes(memoryview(block))  # a fresh 4 MiB object each time

        expected = hashlib.sha256()
        for _ in range(total // len(block)):
            expected.update(block)
        tracemalloc.start()
        try:
            blob = store.put_stream(Generated())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (blob.digest, blob.size) == (expected.hexdigest(), total)
        assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
        assert 0 < max(requested) <= 8 * MiB

    def test_download_dir_refuses_symlink_escape(self, tmp_path: Path) -> None:
        store = ObjectStore(str(tmp_path / "s"))
        outside = tmp_path / "outside"
        outside.mkdir()
        dest = tmp_path / "dest"
        dest.mkdir()
        (dest / "link").symlink_to(outside)
        payload = store.put_bytes(b"payload")
        manifest = Manifest((ManifestEntry("link/evil", payload.digest, 7),))
        blob = store.put_bytes(manifest.to_bytes())
        with pytest.raises(InvalidPath, match="outside"):
            store.download_dir(blob.digest, dest)
        assert list(outside.iterdir()) == []

    def test_put_dir_refuses_symlinked_directory(self, tmp_path: Path) -> None:
        store = ObjectStore(str(tmp_path / "s"))
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "loop").symlink_to(tmp_path)
        with pytest.raises(InvalidPath):
            store.put_dir(tmp_path / "src")

    def test_put_dir_refuses_links_that_leave_it_or_dangle(self, tmp_path: Path) -> None:
        """`ln -s ~/secret dir/leak.txt; catalog log dir` must not store the secret."""
        store = ObjectStore(str(tmp_path / "s"))
        secret = tmp_path / "secret"
        secret.write_bytes(b"private key")
        src = tmp_path / "src"
        src.mkdir()
        (src / "data.csv").write_bytes(b"a,b\n")
        (src / "same.csv").symlink_to(src / "data.csv")  # inside: stored as its bytes
        (src / "leak.txt").symlink_to(secret)
        with pytest.raises(InvalidPath, match="leak.txt.*outside the directory"):
            store.put_dir(src)
        assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("sha256/*/*"))
        blob, manifest = store.put_dir(src, follow_symlinks=True)  # asked for explicitly
        assert {e.path for e in manifest.entries} == {"data.csv", "same.csv", "leak.txt"}
        (src / "leak.txt").unlink()
        (src / "gone.txt").symlink_to(tmp_path / "nowhere")
        with pytest.raises(InvalidPath, match="gone.txt.*dangling"):
            store.put_dir(src)
        (src / "gone.txt").unlink()
        _, manifest = store.put_dir(src)
        same = {e.path: e.digest for e in manifest.entries}
        assert same["same.csv"] == same["data.csv"]


# ------------------------------------------------------------ storage failure


class NoSpaceFile(MemoryFile):
    """Keeps the first byte of each write, then fails as a full disk would."""

    def write(self, data: Any) -> int:
        super().write(bytes(data[:1]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class NoSpaceFileSystem(MemoryFileSystem):
    """A private in-memory filesystem that runs out of space on ``fail_on``."""

    protocol = "nospace"
    store: dict[str, Any] = {}
    pseudo_dirs = [""]

    def __init__(self, fail_on: str = "write", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on = fail_on

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str):
            path = path.removeprefix("nospace://")
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if self.fail_on == "write" and mode[0] in "wax":
            f = NoSpaceFile(self, self._strip_protocol(path))
            f.commit()
            return f
        return super()._open(path, mode, **kwargs)

    def mv(self, path1: str, path2: str, *args: Any, **kwargs: Any) -> None:
        if self.fail_on == "mv":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().mv(path1, path2, *args, **kwargs)


fsspec.register_implementation("nospace", NoSpaceFileSystem, clobber=True)


class TestStorageFailure:
    @pytest.mark.parametrize("fail_on", ["write", "mv"])
    @pytest.mark.parametrize("how", ["bytes", "file", "stream"])
    def test_no_blob_no_temp(self, fail_on: str, how: str, tmp_path: Path) -> None:
        store = ObjectStore(f"nospace://t-{uuid.uuid4().hex}", {"fail_on": fail_on})
        assert isinstance(store.fs, NoSpaceFileSystem) and store.protocol == "nospace"
        data = b"some bytes that do not fit"
        (tmp_path / "f").write_bytes(data)
        with pytest.raises(StorageError) as info:
            if how == "bytes":
                store.put_bytes(data)
            elif how == "file":
                store.put_file(tmp_path / "f")
            else:
                store.put_stream(io.BytesIO(data))
        assert isinstance(info.value, OSError)
        assert os.strerror(errno.ENOSPC) in info.value.reason
        assert info.value.url.startswith(store.root + "/objects/")
        assert not store.exists(sha(data))
        assert list(store.iter_blobs()) == []
        assert leftover_tmp(store) == []
        assert not [p for p in store.fs.find(store.path) if "/sha256/" in p]


# ----------------------------------------------------------- paths, manifest


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_validate_relative_path_refuses(path: str) -> None:
    with pytest.raises(InvalidPath) as info:
        validate_relative_path(path)
    assert info.value.path == path


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_manifest_refuses_hostile_paths(path: str) -> None:
    with pytest.raises(InvalidPath):
        ManifestEntry(path, sha(b""), 0)
    raw = json.dumps({"version": 1, "files": [{"path": path, "sha256": sha(b""), "size": 0}]})
    with pytest.raises(InvalidPath):
        Manifest.from_bytes(raw.encode())


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "...", "a..b", ".hidden", "é/日本.txt", "a b"])
def test_validate_relative_path_accepts(path: str) -> None:
    assert validate_relative_path(path) == path


def test_manifest_canonical_bytes() -> None:
    d1, d2 = sha(b"1"), sha(b"2")
    manifest = Manifest((ManifestEntry("b/x", d2, 2), ManifestEntry("a", d1, 1)))
    assert manifest == Manifest((ManifestEntry("a", d1, 1), ManifestEntry("b/x", d2, 2)))
    expected = (
        f'{{"version":1,"files":[{{"path":"a","sha256":"{d1}","size":1}},'
        f'{{"path":"b/x","sha256":"{d2}","size":2}}]}}'
    ).encode()
    assert manifest.to_bytes() == expected
    assert Manifest.from_bytes(expected) == manifest
    pretty = json.dumps(json.loads(expected), indent=2).encode()
    assert Manifest.from_bytes(pretty) == manifest


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"version":2,"files":[]}',
        b'{"version":1}',
        b'{"version":1,"files":{}}',
        b'{"version":1,"files":[{"path":"a","sha256":"%s","size":1,"x":1}]}' % sha(b"").encode(),
        b'{"version":1,"files":[{"path":"a","sha256":"ABC","size":1}]}',
        b'{"version":1,"files":[{"path":"a","sha256":"%s","size":-1}]}' % sha(b"").encode(),
        b'{"version":1,"files":[{"path":"a","sha256":"%s","size":true}]}' % sha(b"").encode(),
        b'{"version":1,"files":[{"path":"a","sha256":"%s","size":"1"}]}' % sha(b"").encode(),
        b'{"version":1,"files":[{"path":1,"sha256":"%s","size":1}]}' % sha(b"").encode(),
    ],
)
def test_manifest_from_bytes_refuses(doc: bytes) -> None:
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(doc)


def test_manifest_refuses_duplicates_and_file_dir_clash() -> None:
    d = sha(b"")
    with pytest.raises(InvalidPath, match="twice"):
        Manifest((ManifestEntry("a", d, 0), ManifestEntry("a", d, 0)))
    with pytest.raises(InvalidPath, match="as a file"):
        Manifest((ManifestEntry("a", d, 0), ManifestEntry("a/b", d, 0)))


# --------------------------------------------------------------- URL helpers


def test_normalize_and_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_url("a/b") == str(tmp_path / "a" / "b")
    assert normalize_url("file:///srv/x/") == "/srv/x"
    assert normalize_url("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert normalize_url("memory://m") == "memory://m"
    with pytest.raises(InvalidPath):
        normalize_url("")
    assert is_local("/x") and is_local("rel") and is_local("file:///x")
    assert not is_local("s3://b/x") and not is_local("memory://x")
    assert join_url("s3://b/", "/p/", "q") == "s3://b/p/q"
    assert join_url("/srv", "a", "b") == "/srv/a/b"
    assert join_url("memory://", "a") == "memory://a"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_url_helpers(kind: str, tmp_path: Path) -> None:
    base = str(tmp_path / "u") if kind == "local" else f"memory://u-{uuid.uuid4().hex}"
    url = join_url(base, "dir", "f.txt")
    with open_url(url, "wb") as f:
        f.write(b"hello")
    with open_url(url, "r") as text:
        assert text.read() == "hello"
    assert url_exists(url) and not url_exists(join_url(base, "nope"))
    assert url_size(url) == 5
    assert hash_file(url) == (sha(b"hello"), 5)
    assert [n.rsplit("/", 1)[-1] for n in list_url(join_url(base, "dir"))] == ["f.txt"]
    (tmp_path / "local.bin").write_bytes(b"other")
    put_local_file(tmp_path / "local.bin", url)
    assert get_to_local(url, tmp_path / "back" / "x.bin").read_bytes() == b"other"
    missing = join_url(base, "missing.bin")
    with pytest.raises(StorageError, match="no such file"), open_url(missing):
        pass
    for call in (url_size, hash_file, list_url):
        with pytest.raises(StorageError):
            call(missing)
    with pytest.raises(StorageError):
        get_to_local(missing, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_open_url_does_not_wrap_caller_errors(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(KeyError), open_url(str(tmp_path / "f")):
        raise KeyError("mine")


# ------------------------------------------------------------------ property


@settings(max_examples=20, deadline=None, database=None)
@given(data=st.binary(max_size=2048))
def test_put_get_round_trip(data: bytes) -> None:
    store = ObjectStore(f"memory://h-{uuid.uuid4().hex}")
    try:
        blob = store.put_bytes(data)
        assert blob.digest == sha(data) and blob.size == len(data)
        assert store.get_bytes(blob.digest) == data
        assert store.put_stream(io.BytesIO(data)) == blob
    finally:
        store.fs.rm(store.path, recursive=True)


def test_small_file_reader_and_writer(tmp_path: Path) -> None:
    from catalog.store import _read_small_file, _write_new_file

    target = str(tmp_path / "new")
    _write_new_file(target, b"x" * 70_000)
    assert _read_small_file(target, 70_000) == b"x" * 70_000
    assert _read_small_file(target, 69_999) is None  # too big: the caller streams it
    with pytest.raises(FileExistsError):  # never overwrites
        _write_new_file(target, b"y")
    _write_new_file(str(tmp_path / "empty"), b"")
    assert _read_small_file(str(tmp_path / "empty"), 10) == b""


def test_a_failed_small_write_leaves_no_file(tmp_path: Path) -> None:
    """_write_new_file removes what it created when a write fails (here: EFBIG)."""
    import subprocess
    import sys

    script = (
        "import resource, sys\n"
        "from catalog.store import _write_new_file\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    _write_new_file(sys.argv[1], b'x' * 100)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    target = tmp_path / "partial"
    out = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "OSError"
    assert not target.exists()


def test_temporary_names_differ_across_forks_and_skip_taken_ones(tmp_path: Path) -> None:
    import os

    from catalog import store as store_module

    parent = store_module._temp_name()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new prefix
        os.write(write, store_module._temp_name().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert parent.split("-")[0] != child.split("-")[0]

    cas = ObjectStore(str(tmp_path / "s"))
    cas.put_bytes(b"warm")  # makes objects/tmp
    taken = tmp_path / "s" / "objects" / "tmp" / store_module._temp_name()
    nxt = int(taken.name.rsplit("-", 1)[1]) + 1
    squatter = taken.with_name(f"{taken.name.rsplit('-', 1)[0]}-{nxt}")
    squatter.write_bytes(b"somebody else's")  # the next name is taken
    blob = cas.put_bytes(b"mine")
    assert squatter.read_bytes() == b"somebody else's"  # untouched
    with cas.open(blob.digest) as fh:
        assert fh.read() == b"mine"
