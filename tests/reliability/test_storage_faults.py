"""Storage faults: the object store fails → the log call fails cleanly, no event.

Failures are injected where they happen in production: an fsspec filesystem
that raises (permission denied, disk full, I/O error) at open, write, rename
or directory creation; the local fast path's own ``open``/``fsync`` calls
(permission denied and disk full cannot be provoked with ``chmod`` here: the
tests may run as root). Each write kind — inline body, file, directory,
attachments, a batch — must raise :class:`StorageError` (an ``OSError``),
append nothing (log end unchanged), and leave no blob under a digest path.

Not here: an S3 server stopped mid-write — the S3 suite (tests/test_store_s3.py,
by the Kafka/S3 work) runs against a real moto server.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from catalog import Catalog, store
from catalog.errors import StorageError
from catalog.store import ObjectStore
from reliability.helpers import record

FAULTS = {
    "permission": lambda: PermissionError(errno.EACCES, os.strerror(errno.EACCES)),
    "disk-full": lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    "io-error": lambda: OSError(errno.EIO, os.strerror(errno.EIO)),
}


class FaultyFile(MemoryFile):
    """Takes the first byte of a write, then fails."""

    def write(self, data: Any) -> int:
        super().write(bytes(data[:1]))
        raise self.fs.error()


class FaultyFileSystem(MemoryFileSystem):
    """An in-memory store that fails at one step: open, write, mv or makedirs."""

    protocol = "faulty"
    store: dict[str, Any] = {}
    pseudo_dirs = [""]

    def __init__(self, step: str = "write", fault: str = "disk-full", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.error = FAULTS[fault]

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str):
            path = path.removeprefix("faulty://")
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode[0] in "wax":
            if self.step == "open":
                raise self.error()
            if self.step == "write":
                f = FaultyFile(self, self._strip_protocol(path))
                f.commit()
                return f
        return super()._open(path, mode, **kwargs)

    def mv(self, path1: str, path2: str, *args: Any, **kwargs: Any) -> None:
        if self.step == "mv":
            raise self.error()
        super().mv(path1, path2, *args, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        if self.step == "makedirs":
            raise self.error()
        super().makedirs(path, exist_ok=exist_ok)


fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)


def write(cat: Catalog, how: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "a.bin").write_bytes(b"a" * 1000)
    (source / "sub").mkdir(exist_ok=True)
    (source / "sub" / "b.bin").write_bytes(b"b" * 1000)
    if how == "body":
        cat.log_artifact("k", body=b"inline " + os.urandom(8))
    elif how == "file":
        cat.log_artifact("k", local_path=source / "a.bin")
    elif how == "dir":
        cat.log_artifact("k", local_path=source)
    elif how == "attachments":
        cat.log_artifact("k", body=b"x", attachments={"viewer.html": b"<html/>"})
    else:  # a batch: the first log succeeds, the second fails, nothing is appended
        # (resolved up front: a read inside a batch flushes what it buffered so far)
        cat.artifact_path(cat.project)
        with cat.batch():
            cat.log_artifact("ok", body=b"fine", artifact_path=str(tmp_path / "good"))
            cat.log_artifact("k", local_path=source / "a.bin")


HOW = ["body", "file", "dir", "attachments", "batch"]


STEPS = [
    ("write", "disk-full"),
    ("write", "io-error"),
    ("open", "permission"),
    ("mv", "disk-full"),
    ("makedirs", "permission"),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("step", "fault"), STEPS)
def test_a_failing_fsspec_store_fails_the_log_call_and_appends_nothing(
    catalog: Catalog, tmp_path: Path, how: str, step: str, fault: str
) -> None:
    root = f"faulty://t-{uuid.uuid4().hex}"
    cat = Catalog(
        log=catalog.config.log,
        db=catalog.config.db,
        artifact_path=root,
        project="proj",
    )
    cas = cat.store_for(root)
    cas.fs.step, cas.fs.error = step, FAULTS[fault]  # type: ignore[attr-defined]
    end = cat.log.end_offsets()
    with pytest.raises(StorageError) as info:
        write(cat, how, tmp_path)
    assert isinstance(info.value, OSError)
    assert os.strerror(FAULTS[fault]().errno).lower() in info.value.reason.lower()  # type: ignore[arg-type]
    assert cat.log.end_offsets() == end, "an event was appended after a storage failure"
    assert list(cas.iter_blobs()) == []
    assert not [p for p in cas.fs.find(cas.path) if "/sha256/" in p]
    cat.close()
    record("storage faults (fsspec store)", cases=1)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_local_disk_fails_the_log_call_and_appends_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, fault: str
) -> None:
    # The local fast path writes with plain os calls; fail them as a full or
    # read-only disk would: writes take a byte then fail, makedirs refuses.
    real_open = open

    class FailingWriter:
        def __init__(self, path: str) -> None:
            self.handle = real_open(path, "wb")

        def __enter__(self) -> FailingWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[:1])
            raise FAULTS[fault]()

    def failing_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and "/objects/" in str(path):
            return FailingWriter(str(path))
        return real_open(path, mode, *args, **kwargs)

    real_write_new_file = store._write_new_file

    def failing_write_new_file(path: str, data: bytes) -> None:
        # small blobs: plain os calls. Its contract on a failed write: the
        # file it created is gone (tests/test_store.py checks the real one).
        real_write_new_file(path, data[:1])
        os.remove(path)
        raise FAULTS[fault]()

    artifacts = tmp_path / "artifacts"
    monkeypatch.setattr(store, "open", failing_open, raising=False)
    monkeypatch.setattr(store, "_write_new_file", failing_write_new_file)
    real_local_open = LocalFileSystem._open

    def failing_local_open(self: LocalFileSystem, path: str, mode: str = "rb", **kw: Any) -> Any:
        if mode[0] in "wax":
            raise FAULTS[fault]()
        return real_local_open(self, path, mode, **kw)

    monkeypatch.setattr(LocalFileSystem, "_open", failing_local_open)
    end = catalog.log.end_offsets()
    with pytest.raises(StorageError):
        write(catalog, how, tmp_path)
    assert catalog.log.end_offsets() == end
    for root in (artifacts, tmp_path / "good"):
        blobs = root / "objects" / "sha256"
        assert not blobs.exists() or [p for p in blobs.rglob("*") if p.is_file()] == []
        tmp = root / "objects" / "tmp"
        assert not tmp.exists() or list(tmp.iterdir()) == []
    record("storage faults (local disk)", cases=1)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_fsync_fails_the_log_call_and_appends_nothing(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The bytes are stored but cannot be made durable: no event may name them."""

    def failing_fsync(fd: int) -> None:
        raise FAULTS[fault]()

    end = catalog.log.end_offsets()
    monkeypatch.setattr(store.os, "fsync", failing_fsync)
    with pytest.raises(StorageError, match="durable"):
        catalog.log_artifact("k", body=b"never acknowledged")
    monkeypatch.undo()
    assert catalog.log.end_offsets() == end
    # The store recovers: the next write (and its sync) succeeds.
    art = catalog.log_artifact("k", body=b"acknowledged")
    assert catalog.get_dataitem(art.uri).get() == b"acknowledged"
    record("storage faults (fsync)", cases=1)


@pytest.mark.parametrize("how", ["syncfs", "threads"])
def test_a_failing_sync_of_a_batch_appends_none_of_it(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A batch's many blobs are made durable together (syncfs, or fsyncs from
    several threads where there is none): a failure fails the batch, and none of
    its events is appended."""
    if how == "syncfs":
        if store._libc() is None:
            pytest.skip("no syncfs here")

        class Failing:
            def syncfs(self, fd: int) -> int:
                import ctypes

                ctypes.set_errno(5)
                return -1

        monkeypatch.setattr(store, "_libc", lambda: Failing())
    else:
        real = store.os.fsync
        calls: list[int] = []

        def one_fails(fd: int) -> None:
            calls.append(fd)
            if len(calls) == 7:
                raise OSError(5, "Input/output error")
            real(fd)

        monkeypatch.setattr(store, "_libc", lambda: None)
        monkeypatch.setattr(store.os, "fsync", one_fails)
    end = catalog.log.end_offsets()
    with pytest.raises(StorageError, match="durable"), catalog.batch():
        for i in range(20):
            catalog.log_artifact(f"k{i}", body=f"blob {i}".encode())
    monkeypatch.undo()
    assert catalog.log.end_offsets() == end
    # The retry finds the blobs in place (stored, not known durable): they are
    # synced before its events are appended, not taken as durable.
    synced: list[str] = []
    real_fsync, real_syncfs = store._fsync, store._syncfs
    monkeypatch.setattr(store, "_fsync", lambda path: (synced.append(path), real_fsync(path)))
    monkeypatch.setattr(store, "_syncfs", lambda path: (synced.append(path), real_syncfs(path))[1])
    with catalog.batch():
        for i in range(20):
            catalog.log_artifact(f"k{i}", body=f"blob {i}".encode())
    assert synced, "the retried batch's blobs were taken as durable without a sync"
    assert catalog.log.end_offsets() != end
    record(f"storage faults ({how}, batch)", cases=1)


def test_an_unreachable_store_url_is_a_storage_error(catalog: Catalog) -> None:
    with pytest.raises(StorageError):
        ObjectStore("nosuchprotocol://bucket/x")
    end = catalog.log.end_offsets()
    with pytest.raises(StorageError):
        catalog.log_artifact("k", body=b"x", artifact_path="nosuchprotocol://bucket/x")
    assert catalog.log.end_offsets() == end
    record("storage faults (unknown protocol)", cases=1)
