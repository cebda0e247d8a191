"""Disks that refuse writes: a full projection disk, a full log disk, a read-only log.

Each test mounts a small tmpfs of its own (root only: skipped elsewhere) and
checks that the CLI answers with one line and exit code 5 naming the cause —
never a traceback, never a misleading message — and that everything resumes
once there is room.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.errors import LogError
from catalog.events.codec import Codec
from catalog.events.model import ArtifactLogged, Producer, new_event
from catalog.log import Message, open_log
from reliability.helpers import catalog_env, record, run_cli


def _mount(path: Path, *options: str) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs at ``tmp_path/disk`` (unmounted at the end)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount(disk, "size=3M"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _remount(disk: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(disk)], check=True)


def _events(url: str, count: int, *, description: str = "") -> None:
    codec = Codec()
    producer = Producer(kind="client", name="disk")
    with open_log(url) as log:
        batch = []
        for i in range(count):
            payload = ArtifactLogged(
                uid=f"{i:032x}",
                kind="artifact",
                producer=producer,
                labels={"team": f"t{i % 7}", "n": str(i)},
                description=description or None,
            )
            ev = new_event("default", f"key-{i % 500}", payload, "disk")
            batch.append(Message(ev.partition_key, codec.encode(ev)))
            if len(batch) == 1000:
                log.append(batch)
                batch = []
        if batch:
            log.append(batch)


def test_a_full_projection_disk_is_one_line_and_resumes(small_disk: Path, tmp_path: Path) -> None:
    env = {**catalog_env(tmp_path), "CATALOG_DB": str(small_disk / "catalog.duckdb")}
    _events(env["CATALOG_LOG"], 20_000)
    full = run_cli(env, "consume")
    assert full.returncode == 5, full.stderr
    assert full.stderr.count("\n") == 1 and "Traceback" not in full.stderr
    assert "No space left on device" in full.stderr and "catalog.duckdb" in full.stderr
    _remount(small_disk, "size=64M")  # room again: the next catch-up resumes
    assert run_cli(env, "consume").returncode == 0
    served = run_cli(env, "digest").stdout.split()[0]
    reference = {**env, "CATALOG_DB": str(tmp_path / "reference.duckdb")}
    assert run_cli(reference, "digest").stdout.split()[0] == served
    record("disk: projection disk full, then room again", cases=1)


def test_a_full_log_disk_names_the_cause(small_disk: Path) -> None:
    url = f"file://{small_disk / 'events.db'}"
    with pytest.raises(LogError) as caught:
        _events(url, 400, description="x" * 60_000)  # ~24 MB of events on a 3 MB disk
    message = str(caught.value)
    assert "full" in message and "nothing written" in message, message
    assert "no transaction is active" not in message
    with open_log(url) as log:  # what was acknowledged is there, whole
        end = log.end_offsets()[0]
        assert end % 1000 == 0 and len(log.read({0: 0}, 10)) == min(10, end)
    record("disk: log disk full", cases=1)


def test_a_log_on_a_read_only_mount_can_still_be_read(small_disk: Path, tmp_path: Path) -> None:
    env = {**catalog_env(tmp_path), "CATALOG_LOG": f"file://{small_disk / 'events.db'}"}
    (tmp_path / "f.txt").write_text("hello")
    with Catalog(
        log=env["CATALOG_LOG"], db=env["CATALOG_DB"], artifact_path=env["CATALOG_ARTIFACT_PATH"]
    ) as cat:
        cat.log_artifact("f", local_path=tmp_path / "f.txt")
    _remount(small_disk, "ro")
    fresh = {**env, "CATALOG_DB": str(tmp_path / "fresh.duckdb")}
    listed = run_cli(fresh, "ls")
    assert listed.returncode == 0 and "f" in listed.stdout, listed.stderr
    got = run_cli(fresh, "get", "f", str(tmp_path / "out.txt"))
    assert got.returncode == 0 and (tmp_path / "out.txt").read_text() == "hello"
    refused = run_cli(fresh, "log", str(tmp_path / "f.txt"), "--key", "g")
    assert refused.returncode == 5 and "read-only" in refused.stderr, refused.stderr
    assert refused.stderr.count("\n") == 1
    record("disk: read-only log", cases=1)
