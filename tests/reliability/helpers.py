"""Helpers shared by the reliability tests: counts, CLI runs, store checks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: test name -> what it ran (cases, trials, operations), printed at the end of the session.
COUNTS: dict[str, dict[str, Any]] = {}


def record(name: str, **counts: Any) -> None:
    """Remember what a test ran (added up over calls), for the session summary."""
    into = COUNTS.setdefault(name, {})
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value if isinstance(value, int) else value


def catalog_env(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment pointed at a catalog under ``root`` (for children)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        CATALOG_HOME=str(root / "home"),
        XDG_CONFIG_HOME=str(root / "config"),
        CATALOG_LOG=f"file://{root / 'events.db'}",
        CATALOG_DB=str(root / "catalog.duckdb"),
        CATALOG_ARTIFACT_PATH=str(root / "artifacts"),
        CATALOG_ACTOR="reliability",
    )
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m catalog.cli ARGS`` in a child process (a real process: real exit, real files)."""
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def check_store_layout(root: Path, verified: dict[str, float] | None = None) -> int:
    """Every blob hashes to its name; anything else under objects/ is under objects/tmp,
    but the store's owner marker (``catalog.store.OWNER_FILE``).

    ``verified`` (path -> mtime) skips blobs already checked and unchanged since.
    Returns the number of blobs re-hashed.
    """
    objects = root / "objects"
    if not objects.exists():
        return 0
    hashed = 0
    from catalog.store import OWNER_FILE

    for path in sorted(p for p in objects.rglob("*") if p.is_file()):
        rel = path.relative_to(objects).parts
        if path == root / OWNER_FILE:
            assert json.loads(path.read_text())["log_id"], f"an owner marker without owner: {path}"
            continue
        if rel[0] == "tmp":
            assert len(rel) == 2, f"unexpected file {path}"
            continue
        assert rel[0] == "sha256" and len(rel) == 3, f"stray file {path} (not a blob, not tmp)"
        name = rel[1] + rel[2]
        assert len(rel[1]) == 2 and len(name) == 64, f"blob with a bad name: {path}"
        mtime = path.stat().st_mtime
        if verified is not None and verified.get(str(path)) == mtime:
            continue
        assert sha256_of(path) == name, f"{path} does not hash to its name: a partial blob"
        hashed += 1
        if verified is not None:
            verified[str(path)] = mtime
    return hashed


def temp_files(root: Path) -> list[Path]:
    tmp = root / "objects" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def invoke(root: Path, *args: object, catch: bool = False) -> Any:
    """``catalog ARGS`` through click's CliRunner, on the catalog under ``root``."""
    from click.testing import CliRunner

    from catalog.cli import cli

    env: dict[str, str | None] = dict(catalog_env(root))
    env["CATALOG_PROJECT"] = None
    env["CATALOG_CONFIG"] = None
    return CliRunner().invoke(
        cli, [str(a) for a in args], env=env, catch_exceptions=catch, prog_name="catalog"
    )
