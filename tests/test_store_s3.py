"""The object store on S3 (moto's S3 server, started by the session), through s3fs.

The store contract on a fresh bucket per test, then what S3 changes: blobs whose
digest is known are uploaded straight to their key (an S3 upload is atomic, no
temporary object, no server-side copy), large files go up in parts with bounded
memory, and a failed or mismatched upload is aborted, leaving nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import servers
from test_store import Chunks, StoreContract, leftover_tmp, sha, spy_writes

from catalog.errors import DigestMismatch, StorageError
from catalog.store import CHUNK_SIZE, ObjectStore

pytestmark = pytest.mark.s3

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part S3 accepts


def s3_client(server: servers.S3Server) -> Any:
    return boto3.client("s3", endpoint_url=server.endpoint)


def pending_uploads(server: servers.S3Server, bucket: str) -> list[Any]:
    return list(s3_client(server).list_multipart_uploads(Bucket=bucket).get("Uploads", []))


class TestS3Store(StoreContract):
    """The contract, on a fresh bucket (and prefix) per test."""

    @pytest.fixture
    def store(self, bucket: str) -> ObjectStore:
        return ObjectStore(f"s3://{bucket}/catalog-{uuid.uuid4().hex[:8]}")


def test_known_digest_goes_straight_to_its_key(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(f"s3://{bucket}/direct")
    calls = spy_writes(monkeypatch, store)
    blob = store.put_bytes(b"direct")
    (tmp_path / "f").write_bytes(b"from a file")
    other = store.put_file(tmp_path / "f")
    assert calls == [
        ("open", f"{store.path}/objects/sha256/{blob.digest[:2]}/{blob.digest[2:]}"),
        ("open", f"{store.path}/objects/sha256/{other.digest[:2]}/{other.digest[2:]}"),
    ]
    assert store.get_bytes(blob.digest) == b"direct"
    # A stream's digest is known only at its end: it goes through objects/tmp.
    calls.clear()
    streamed = store.put_stream(io.BytesIO(b"streamed"))
    assert [c[0] for c in calls] == ["open", "mv"]
    assert calls[0][1].startswith(f"{store.path}/objects/tmp/")
    assert store.get_bytes(streamed.digest) == b"streamed" and leftover_tmp(store) == []


def test_large_files_upload_in_parts_with_constant_memory(
    bucket: str, tmp_path: Path, s3_env: servers.S3Server
) -> None:
    store = ObjectStore(f"s3://{bucket}/big", {"default_block_size": PART})
    store.put_bytes(b"warm up the client")
    block = os.urandom(MiB)
    peaks, blobs = {}, {}
    for mib in (8, 32):
        path = tmp_path / f"{mib}.bin"
        with open(path, "wb") as out:
            for i in range(mib):
                out.write(block[:-1] + bytes([i]))
        tracemalloc.start()
        try:
            blobs[mib] = store.put_file(path)
            peaks[mib] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert blobs[mib].size == mib * MiB
    # Memory is bounded by a part (plus a chunk), not by the file's size.
    assert peaks[32] < peaks[8] + 8 * MiB, {k: round(v / MiB, 1) for k, v in peaks.items()}
    blob = blobs[32]
    key = f"big/objects/sha256/{blob.digest[:2]}/{blob.digest[2:]}"
    head = s3_client(s3_env).head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith(tuple(f"-{n}" for n in range(2, 8)))  # parts
    assert head["ContentLength"] == 32 * MiB
    dest = store.download(blob.digest, tmp_path / "back.bin")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == blob.digest


def test_a_failed_multipart_upload_is_aborted(bucket: str, s3_env: servers.S3Server) -> None:
    store = ObjectStore(f"s3://{bucket}/abort", {"default_block_size": PART})
    parts = [os.urandom(CHUNK_SIZE) for _ in range(3)]  # 12 MiB: parts are uploaded

    def fail(reads: int) -> None:
        if reads == 3:
            raise OSError("the source went away")

    digest = sha(b"".join(parts))
    with pytest.raises(StorageError, match="went away"):
        store._write(Chunks(parts, fail), expected=digest)  # the direct path
    with pytest.raises(StorageError, match="went away"):
        store.put_stream(Chunks(list(parts), fail))  # the objects/tmp path
    assert not store.exists(digest)
    assert list(store.iter_blobs()) == [] and leftover_tmp(store) == []
    assert pending_uploads(s3_env, bucket) == []


def test_a_mismatched_upload_is_not_completed(bucket: str, s3_env: servers.S3Server) -> None:
    store = ObjectStore(f"s3://{bucket}/mismatch", {"default_block_size": PART})
    data = os.urandom(2 * CHUNK_SIZE)
    claimed = sha(b"not these bytes")
    with pytest.raises(DigestMismatch) as info:
        store._write(io.BytesIO(data), expected=claimed, origin="changed.bin")
    assert (info.value.expected, info.value.actual, info.value.url) == (
        claimed,
        sha(data),
        "changed.bin",
    )
    assert not store.exists(claimed) and list(store.iter_blobs()) == []
    assert pending_uploads(s3_env, bucket) == []


def test_a_blob_written_by_another_client_is_found(bucket: str) -> None:
    """Listings cached by s3fs never hide a blob another process stored since."""
    reader = ObjectStore(f"s3://{bucket}/shared")
    assert list(reader.iter_blobs()) == []  # caches the (empty) listing
    writer = ObjectStore(f"s3://{bucket}/shared", {"skip_instance_cache": True})
    assert writer.fs is not reader.fs
    blob = writer.put_bytes(b"from elsewhere")
    assert reader.exists(blob.digest)
    assert reader.size(blob.digest) == blob.size
    assert reader.get_bytes(blob.digest) == b"from elsewhere"


def test_a_missing_bucket_is_named_with_how_to_create_it(
    s3_env: servers.S3Server, tmp_path: Path
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    store = ObjectStore(f"s3://{bucket}/default")
    (tmp_path / "f").write_bytes(b"a file")
    for write in (lambda: store.put_bytes(b"x"), lambda: store.put_file(tmp_path / "f")):
        with pytest.raises(StorageError) as caught:
            write()
        message = str(caught.value)
        assert f"the bucket {bucket!r} does not exist" in message, message
        assert f"aws s3 mb s3://{bucket}" in message and "no such file" not in message
    # and through the CLI: one line, exit 5 (storage)
    from click.testing import CliRunner

    from catalog.cli import cli

    env = {
        "CATALOG_HOME": str(tmp_path / "home"),
        "CATALOG_ARTIFACT_PATH": f"s3://{bucket}/{{{{project}}}}",
    }
    result = CliRunner().invoke(cli, ["log", str(tmp_path / "f"), "--key", "f"], env=env)
    assert result.exit_code == 5, result.output
    assert result.stderr.count("\n") == 1
    assert f"the bucket {bucket!r} does not exist" in result.stderr
