"""Producer crashes: ``kill -9`` a process in the middle of logging large artifacts.

A child logs 20–50 MB files in a loop (also inline bodies, directories and
batches of files) into an embedded log and a local store; the parent SIGKILLs
it at a random moment, then checks, after every kill:

* no event references a blob that is not fully stored: the projection is
  caught up, and every live artifact's blob (directory files and attachments
  included) exists and re-hashes to its hash — independently, and with
  ``catalog verify --blobs``;
* a partial blob is never visible under its hash: every file under
  ``objects/sha256`` hashes to its name; anything else is under ``objects/tmp``.

At the end, ``catalog gc --grace 0s`` removes the abandoned temporary files
and the unreferenced blobs, and ``catalog verify`` still passes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.maintenance import gc, verify
from reliability.helpers import (
    ROOT,
    check_store_layout,
    record,
    sha256_of,
    temp_files,
)

PRODUCER = r"""
import os, random, sys
from pathlib import Path
from catalog import Catalog

log, db, artifacts, work, seed, low, high = sys.argv[1:8]
rng = random.Random(int(seed))
low, high = int(low), int(high)
work = Path(work)
work.mkdir(parents=True, exist_ok=True)
block = os.urandom(1 << 20)
cat = Catalog(log=log, db=db, artifact_path=artifacts, project="crash", actor="producer")


def content(n, mib):
    return f"{seed}:{n}:".encode() + block * mib


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


print("ready", flush=True)
n = 0
while True:
    n += 1
    mode = rng.choice(["file", "file", "file", "body", "dir", "batch"])
    key = f"k{rng.randrange(6)}"
    if mode == "file":
        path = write(work / f"f{n}.bin", content(n, rng.randint(low, high)))
        cat.log_artifact(key, local_path=path, labels={"n": n})
    elif mode == "body":
        cat.log_artifact(key, body=content(n, rng.randint(1, min(high, 15))), tag="inline")
    elif mode == "dir":
        folder = work / f"d{n}"
        for i in range(3):
            write(folder / f"sub{i % 2}" / f"part{i}.bin", content(n * 10 + i, rng.randint(1, 8)))
        cat.log_artifact(key, local_path=folder, kind="model")
    else:
        with cat.batch():
            for i in range(3):
                path = write(work / f"b{n}-{i}.bin", content(n * 10 + i, rng.randint(2, 10)))
                cat.log_artifact(f"{key}-b{i}", local_path=path)
    print(n, mode, flush=True)
"""


def check_after_kill(root: Path, verified: dict[str, float], where: str) -> tuple[int, int]:
    """The two guarantees; returns (live versions checked, blobs re-hashed)."""
    artifacts = root / "artifacts"
    hashed = check_store_layout(artifacts, verified)
    with Catalog(
        log=f"file://{root / 'events.db'}",
        db=str(root / "check.duckdb"),
        artifact_path=str(artifacts),
        project="crash",
    ) as cat:
        rows = cat.sql(
            "SELECT key, uid, hash, size, target_path, format FROM artifacts WHERE NOT deleted"
        ).to_pylist()
        for row in rows:
            target = Path(row["target_path"])
            assert target.is_file(), f"{where}: {row['key']} names a missing blob {target}"
            assert target.name == row["hash"][2:], where
            if row["format"] != "dir":
                assert target.stat().st_size == row["size"], f"{where}: {target} is partial"
            assert sha256_of(target) == row["hash"], f"{where}: {target} does not verify"
        report = verify(cat, blobs=True, projection=False)
        assert report.ok, f"{where}: {report.problems}"
        assert report.versions == len(rows)
    return len(rows), hashed


def kill_producers(tmp_path: Path, trials: int, low: int, high: int) -> None:
    """``trials`` producers logging files of ``low``..``high`` MiB, each SIGKILLed."""
    master = random.randrange(2**32)
    rng = random.Random(master)
    verified: dict[str, float] = {}
    killed = logged = temps = 0
    for trial in range(trials):
        seed = rng.randrange(2**32)
        delay = rng.uniform(0.3, 2.5)
        where = f"master seed {master}, trial {trial + 1}/{trials}, kill after {delay:.2f}s"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCER,
                f"file://{tmp_path / 'events.db'}",
                str(tmp_path / f"producer-{trial}.duckdb"),
                str(tmp_path / "artifacts"),
                str(tmp_path / "work" / str(trial)),
                str(seed),
                str(low),
                str(high),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"{where}: the producer died first: {err}"
        killed += 1
        logged += len(out.splitlines())
        temps = len(temp_files(tmp_path / "artifacts"))
        versions, _ = check_after_kill(tmp_path, verified, where)
    assert logged > 0, f"master seed {master}: nothing was logged before the kills"

    # gc reclaims what the kills abandoned, and the catalog still verifies.
    with Catalog(
        log=f"file://{tmp_path / 'events.db'}",
        db=str(tmp_path / "check.duckdb"),
        project="crash",
        artifact_path=str(tmp_path / "artifacts"),
    ) as cat:
        collected = gc(cat, grace="0s")
        assert temp_files(tmp_path / "artifacts") == []
        assert all(r.error is None for r in collected.roots)
        assert verify(cat).ok
    check_store_layout(tmp_path / "artifacts")
    record(
        "producer crash (kill -9 while logging 20-50 MB files)",
        trials=killed,
        iterations_completed=logged,
        live_versions_checked=versions,
        temp_files_left_by_kills=temps,
    )


def test_killed_producer_never_leaves_a_dangling_or_partial_blob(tmp_path: Path) -> None:
    kill_producers(tmp_path, trials=4, low=20, high=30)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_killed_producer_soak(tmp_path: Path) -> None:
    kill_producers(tmp_path, trials=30, low=20, high=50)
