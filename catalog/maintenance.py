"""Tools for operators: ``verify`` what is stored, ``gc`` what nothing needs any more.

:func:`verify` answers "are the bytes and the tables what the log says?":

* **blobs** — every blob a live version references is re-hashed: its content
  (``artifacts.hash`` at ``target_path``), the files a directory's manifest
  lists, and the attachments recorded in its spec. Missing, unreadable or
  changed bytes are reported with the versions that reference them.
* **projection** — the log is replayed into a temporary DuckDB file up to the
  live projection's positions, and the canonical per-table digests
  (:mod:`consumers.digest`) of both are compared; a table edited by hand, or
  projected wrongly, is named.

:func:`gc` deletes blobs that no live version, and no version deleted within
the grace period, references — and only once they are older than the grace
period. Why that never deletes bytes an in-flight write is about to name:

1. A write stores its bytes *before* appending the event that names them
   (docs/design.md), and a write that finds its bytes already stored (dedup)
   refreshes their mtime on local stores (:mod:`catalog.store`). So the bytes
   of any event not yet in the log were written or refreshed at most ``T``
   before it is appended, ``T`` being the longest time between a blob write
   and its event (one :meth:`Catalog.batch`, typically).
2. gc catches the projection up to the log end *first*, and refuses to run if
   it cannot; every event appended before that point is in its references.
3. A blob is deleted only if its mtime is older than the start of gc minus the
   grace period, and gc stops once it has run for half the grace period. With
   ``grace > T`` plus that bound, an event appended after gc started names bytes
   too young to be deleted.
4. On local stores a candidate is first renamed into ``objects/tmp``, its mtime
   checked again, and put back if a writer refreshed it in between: the check
   and the delete cannot race.

Stores considered: the root of every ``target_path`` in the catalog (the part
before ``/objects/sha256/``) and the artifact path configured for every known
project; swept only if the store is this catalog's own — its owner marker
(``objects/owner.json``, written by the first write of a catalog into it)
names this catalog's log, or, with no marker, it is one of this catalog's
artifact paths (then claimed) — never because a version refers into it. A
blob a live version names, by hash or by its path, is kept. Only files named
like blobs (``objects/sha256/xx/<62 hex>``) and temporary files
(``objects/tmp/*``) older than the grace period are deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from catalog import query, store
from catalog.client import Catalog
from catalog.consumers.digest import digest as projection_digest
from catalog.consumers.projection import Projection
from catalog.errors import (
    BlobNotFound,
    CatalogError,
    DigestMismatch,
    InvalidInput,
    LogError,
)
from catalog.log import is_behind
from catalog.store import CHUNK_SIZE, ObjectStore, normalize_url, validate_digest
from catalog.uri import StoreURI
from catalog.validation import parse_duration

#: gc's default grace period: blobs younger than this are never deleted.
DEFAULT_GRACE = timedelta(hours=24)

#: ``progress(phase, advance, total)``: ``phase`` names the work ("blobs" in bytes,
#: "replay" in records, "scan" in blobs); ``total`` is known from the first call.
Progress = Callable[[str, int, int], None]

_CAS = store.CAS_MARK
_HEX64 = re.compile("[0-9a-f]{64}")


def _uri(row: dict[str, Any]) -> str:
    try:
        return str(
            StoreURI(
                category=row["category"],
                project=row["project"],
                key=row["key"],
                iteration=row["iteration"] or 0,
                uid=row["uid"],
            )
        )
    except CatalogError:  # a hand-made uid outside the URI grammar: still name it
        return f"store://{row['category']}/{row['project']}/{row['key']}^{row['uid']}"


_root = store.root_of


def _digest_in(target_path: str | None) -> str | None:
    """The digest a content-addressed ``target_path`` names (``…/objects/sha256/ab/cd…``)."""
    if not target_path or _CAS not in target_path:
        return None
    digest = target_path.rsplit(_CAS, 1)[1].replace("/", "")
    return digest if _HEX64.fullmatch(digest) else None


def _attachments(spec: str | None) -> list[tuple[str, str, str]]:
    """``(name, root, digest)`` of every attachment recorded in a version's spec."""
    try:
        doc = json.loads(spec or "{}")
    except ValueError:
        return []
    found = []
    attachments = doc.get("attachments") if isinstance(doc, dict) else None
    if isinstance(attachments, dict):
        for name, att in sorted(attachments.items()):
            if isinstance(att, dict):
                root = _root(att.get("target_path"))
                if root is not None and isinstance(att.get("hash"), str):
                    found.append((str(name), root, att["hash"]))
    return found


# ------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    """One thing :func:`verify` found wrong."""

    check: str  # "blobs" or "projection"
    kind: str  # missing, changed, unreadable, manifest, invalid, table
    detail: str
    digest: str | None = None
    url: str | None = None
    referenced_by: tuple[str, ...] = ()


@dataclass
class VerifyReport:
    """What :func:`verify` checked and found; ``ok`` when nothing is wrong."""

    positions: dict[int, int] = field(default_factory=dict)
    versions: int = 0  # live versions whose content was checked
    blobs: int = 0  # distinct blobs re-hashed
    bytes: int = 0
    external: int = 0  # versions whose content lives outside the store (not checked)
    tables: dict[str, bool] = field(default_factory=dict)  # table -> equals the replay
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["positions"] = {str(p): o for p, o in self.positions.items()}
        return doc


@dataclass
class _Check:
    root: str
    digest: str
    size: int
    referenced_by: list[str]


def verify(
    catalog: Catalog,
    *,
    blobs: bool = True,
    projection: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Re-hash every referenced blob and compare the projection with a replay."""
    report = VerifyReport()
    with catalog.session():
        state = catalog.read("references", blobs=blobs, digest=projection)
        report.positions = {int(p): int(o) for p, o in state["positions"].items()}
        rows, live = state["blobs"], state["digest"]
        if blobs:
            _verify_blobs(catalog, rows, report, progress)
        if projection:
            _verify_projection(catalog, live, report, progress)
    return report


def _verify_blobs(
    catalog: Catalog, rows: list[dict[str, Any]], report: VerifyReport, progress: Progress | None
) -> None:
    checks: dict[tuple[str, str], _Check] = {}
    manifests: list[tuple[_Check, str]] = []

    def need(root: str, digest: str, size: int | None, uri: str) -> _Check | None:
        try:
            validate_digest(digest)
        except InvalidInput:
            bad = f"{digest!r} is not a sha256 digest"
            report.problems.append(Problem("blobs", "invalid", bad, digest, root, (uri,)))
            return None
        check = checks.setdefault((root, digest), _Check(root, digest, size or 0, []))
        if uri not in check.referenced_by:
            check.referenced_by.append(uri)
        return check

    for row in rows:
        if row["deleted"]:
            continue
        uri = _uri(row)
        root = _root(row["target_path"])
        counted = False
        if row["hash"] and root is not None:
            counted = True
            is_dir = row["format"] == "dir" or row["kind"] == "dir"
            check = need(root, row["hash"], None if is_dir else row["size"], uri)
            if check is not None and is_dir:
                manifests.append((check, uri))
        elif row["target_path"]:
            report.external += 1
        for name, att_root, att_digest in _attachments(row["spec"]):
            counted = True
            need(att_root, att_digest, None, f"{uri} (attachment {name})")
        report.versions += counted

    # Directory manifests first: they name more blobs to check.
    for check, uri in manifests:
        try:
            manifest = catalog.store_for(check.root).read_manifest(check.digest)
        except CatalogError:
            continue  # reported when the manifest blob itself is checked below
        for entry in manifest.entries:
            need(check.root, entry.digest, entry.size, f"{uri} (file {entry.path})")

    total = sum(c.size for c in checks.values())
    if progress is not None:
        progress("blobs", 0, total)
    for check in checks.values():
        report.blobs += 1
        size = _rehash(catalog, check, report, progress, total)
        report.bytes += size


def _rehash(
    catalog: Catalog,
    check: _Check,
    report: VerifyReport,
    progress: Progress | None,
    total: int,
) -> int:
    """Read one blob through the verifying reader; record what went wrong."""
    url = check.root + _CAS + check.digest[:2] + "/" + check.digest[2:]
    refs = tuple(check.referenced_by)
    size = 0
    try:
        with catalog.store_for(check.root).open(check.digest) as reader:
            while chunk := reader.read(CHUNK_SIZE):
                size += len(chunk)
                if progress is not None:
                    progress("blobs", len(chunk), total)
    except BlobNotFound as exc:
        report.problems.append(Problem("blobs", "missing", str(exc), check.digest, url, refs))
    except DigestMismatch as exc:
        report.problems.append(Problem("blobs", "changed", str(exc), check.digest, url, refs))
    except CatalogError as exc:
        report.problems.append(Problem("blobs", "unreadable", str(exc), check.digest, url, refs))
    return size


def _verify_projection(
    catalog: Catalog, live: dict[str, str], report: VerifyReport, progress: Progress | None
) -> None:
    total = sum(report.positions.values())
    if progress is not None:
        progress("replay", 0, total)
    with (
        tempfile.TemporaryDirectory(prefix="catalog-verify-") as scratch,
        Projection(str(Path(scratch) / "replay.duckdb"), codec=catalog.codec) as fresh,
    ):
        fresh.catch_up(
            catalog.log,
            until=report.positions,
            progress=(lambda n: progress("replay", n, total)) if progress else None,
        )
        replayed = projection_digest(fresh.con)
    for table in sorted(k for k in live if k != "digest"):
        same = live[table] == replayed.get(table)
        report.tables[table] = same
        if not same:
            report.problems.append(
                Problem(
                    "projection",
                    "table",
                    f"table {table} differs from a replay of the log "
                    f"(digest {live[table][:12]}, replay {str(replayed.get(table))[:12]}); "
                    "rebuild it with `catalog replay`",
                )
            )


def references(con: Any, blobs: bool = True, digest: bool = False) -> dict[str, Any]:
    """What verify and gc read, in one consistent read: the projection's
    ``positions``, every version that names content (``blobs``), every known
    project (``projects``) and, if asked, the projection's ``digest``. A read of
    the catalog service (``catalog.api``)."""
    return {
        "positions": query.positions(con),
        "blobs": query.blob_references(con) if blobs else [],
        "projects": query.known_projects(con),
        "digest": projection_digest(con) if digest else {},
    }


# ----------------------------------------------------------------------- gc


@dataclass
class RootReport:
    """What :func:`gc` did in one store."""

    root: str
    blobs: int = 0  # blobs found
    referenced: int = 0
    young: int = 0  # unreferenced but within the grace period (or of unknown age)
    freed: int = 0
    freed_bytes: int = 0
    temp_freed: int = 0  # abandoned temporary files (objects/tmp) removed
    temp_bytes: int = 0
    candidates: list[str] = field(default_factory=list)  # digests freed (or, dry run, to free)
    error: str | None = None


@dataclass
class GcReport:
    """What :func:`gc` found and freed, per store."""

    dry_run: bool
    grace_seconds: float
    cutoff: datetime  # blobs last written before this were old enough
    positions: dict[int, int] = field(default_factory=dict)
    roots: list[RootReport] = field(default_factory=list)
    stopped_early: bool = False  # ran past half the grace period; run again

    @property
    def freed(self) -> int:
        return sum(r.freed for r in self.roots)

    @property
    def freed_bytes(self) -> int:
        return sum(r.freed_bytes + r.temp_bytes for r in self.roots)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["cutoff"] = self.cutoff.isoformat()
        doc["positions"] = {str(p): o for p, o in self.positions.items()}
        doc["freed"] = self.freed
        doc["freed_bytes"] = self.freed_bytes
        return doc


def gc(
    catalog: Catalog,
    *,
    grace: str | timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Delete blobs no live or recently deleted version references (see the module doc)."""
    period = parse_duration(grace)
    started = datetime.now(UTC)
    # Past half the grace period the safety margin shrinks: stop (grace 0: no margin asked).
    deadline = time.monotonic() + (period.total_seconds() / 2 if period else float("inf"))
    cutoff = started - period
    report = GcReport(dry_run, period.total_seconds(), cutoff)

    end = catalog.log.end_offsets()
    with catalog.session():
        state = catalog.read("references", min_positions=end)  # caught up to at least ``end``
        report.positions = {int(p): int(o) for p, o in state["positions"].items()}
        rows, projects = state["blobs"], state["projects"]
        if is_behind(report.positions, end):
            raise LogError(
                catalog.log.url,
                f"the projection is at {report.positions}, behind the log end {end}: "
                "gc refuses to compute references from it",
            )
        keep, roots, unreadable = _references(catalog, rows, cutoff)
        configured = []
        for project in [catalog.project, *projects]:
            try:
                configured.append(catalog.artifact_path(project))
            except CatalogError:
                continue
    ours = {normalize_url(r) for r in configured if "{{" not in r}
    me = {"log_id": catalog.log.log_id, "log": catalog.log.url}
    for root in dict.fromkeys(normalize_url(r) for r in [*roots, *configured] if "{{" not in r):
        result = RootReport(root)
        report.roots.append(result)
        if root in unreadable:
            result.error = f"skipped: {unreadable[root]}"
            continue
        try:
            cas = catalog.store_for(root)
            why_not = _not_ours(cas, me, root in ours, dry_run)
            if why_not:
                result.error = f"skipped: {why_not}"
                continue
            _collect(cas, keep, cutoff, dry_run, result, progress, deadline)
        except _Deadline:
            report.stopped_early = True
            break
        except CatalogError as exc:
            result.error = str(exc)
    return report


class _Deadline(Exception):
    pass


def _not_ours(cas: ObjectStore, me: dict[str, str], configured: bool, dry_run: bool) -> str:
    """Why gc must not sweep ``cas`` ("" if it may): a store is swept only by the
    catalog it belongs to (its owner marker), never because a reference points in.

    A store with no marker (made before markers existed) that is one of this
    catalog's artifact paths is claimed and swept; one it only references is not.
    """
    owner = cas.owner()
    if owner is None:
        if not configured:
            return (
                "no owner marker, and not one of this catalog's artifact paths "
                "(versions only refer to it): another catalog's, perhaps"
            )
        if not dry_run:
            owner = cas.claim(me)
        else:
            return ""
    if owner["log_id"] != me["log_id"]:
        return f"it belongs to another catalog (log {owner.get('log') or owner['log_id']})"
    return ""


def _references(
    catalog: Catalog, rows: Iterable[dict[str, Any]], cutoff: datetime
) -> tuple[set[str], list[str], dict[str, str]]:
    """Digests to keep, every store root named, and roots whose manifests are unreadable."""
    keep: set[str] = set()
    roots: list[str] = []
    unreadable: dict[str, str] = {}
    for row in rows:
        root = _root(row["target_path"])
        attachments = _attachments(row["spec"])
        roots += [r for r in [root, *(a[1] for a in attachments)] if r is not None]
        if row["deleted"] and row["updated"] is not None and row["updated"] < cutoff:
            continue  # deleted longer ago than the grace period
        named = _digest_in(row["target_path"])  # a blob named by its path is kept too
        if named is not None:
            keep.add(named)
        if row["hash"]:
            keep.add(row["hash"])
            if root is not None and (row["format"] == "dir" or row["kind"] == "dir"):
                try:
                    manifest = catalog.store_for(root).read_manifest(row["hash"])
                except CatalogError as exc:
                    # Its files are unknown: delete nothing in that store.
                    unreadable[root] = f"manifest of {_uri(row)} unreadable ({exc})"
                    continue
                keep.update(e.digest for e in manifest.entries)
        keep.update(a[2] for a in attachments)
    return keep, roots, unreadable


def _collect(
    cas: ObjectStore,
    keep: set[str],
    cutoff: datetime,
    dry_run: bool,
    result: RootReport,
    progress: Progress | None,
    deadline: float,
) -> None:
    blobs = list(cas.iter_blobs())
    result.blobs = len(blobs)
    if progress is not None:
        progress("scan", 0, len(blobs))
    for blob in blobs:
        if progress is not None:
            progress("scan", 1, len(blobs))
        if blob.digest in keep:
            result.referenced += 1
            continue
        modified = cas.modified(blob.digest)
        if modified is None or modified >= cutoff:
            result.young += 1
            continue
        if time.monotonic() > deadline:
            raise _Deadline
        if dry_run or cas.collect(blob.digest, cutoff):
            result.freed += 1
            result.freed_bytes += blob.size
            result.candidates.append(blob.digest)
        else:
            result.young += 1  # refreshed by a writer while being collected
    for path, size in cas.abandoned(cutoff):
        if not dry_run and not cas.remove_abandoned(path):
            continue  # gone already, or not ours to remove: left
        result.temp_freed += 1
        result.temp_bytes += size


# ------------------------------------------------------------ log salvage


@dataclass
class SalvageReport:
    """What :func:`salvage_log` kept from a damaged embedded log."""

    path: str  # the log file, now holding the salvaged records (if replaced)
    salvaged: str  # the new file written
    damaged: str | None  # where the damaged file was moved (if replaced)
    kept: int = 0
    dropped: int = 0  # rows read back but damaged (checksum, types, duplicates)
    missing: list[tuple[int, int]] = field(default_factory=list)  # offset ranges lost
    log_id_kept: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _make_readable(path: Path) -> None:
    """Let SQLite read a truncated copy: whole pages, size taken from the file."""
    with open(path, "r+b") as fh:
        header = fh.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
            return
        page = int.from_bytes(header[16:18], "big")
        page = 65536 if page == 1 else page
        size = os.fstat(fh.fileno()).st_size
        if page and size % page:
            fh.truncate(size + page - size % page)  # the torn page, zero-filled
        fh.seek(28)
        fh.write(bytes(4))  # "in-header database size": 0 = count the file's pages


def salvage_log(path: str | os.PathLike[str], *, replace: bool = True) -> SalvageReport:
    """Copy every intact record of a damaged embedded log into a new file.

    For a ``file://`` log that SQLite reports as malformed (a scribbled or
    truncated file): reads what the damaged file still yields, keeps the
    records whose checksum verifies, at their original offsets, with the
    log's id (so projections of it resume), writes them to
    ``<path>.salvaged-<time>`` and, with ``replace``, moves the damaged file
    (and its ``-wal``/``-shm``) to ``<path>.damaged-<time>`` and the new one
    into its place. Stop every writer and reader of the log first. Afterwards
    run ``catalog verify --projection``: a projection that had applied a lost
    record differs from a replay and is rebuilt with ``catalog replay``.
    """
    import sqlite3

    from catalog.log.file import SCHEMA, _crc

    source = Path(os.fspath(path)).absolute()
    if not source.exists():
        raise InvalidInput(f"no embedded log at {str(source)!r}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = source.with_name(f"{source.name}.salvaged-{stamp}")
    report = SalvageReport(str(source), str(target), None)
    rows: dict[int, tuple[Any, ...]] = {}

    def take(row: tuple[Any, ...]) -> None:
        offset, key, value, headers, crc, ms = row
        ok = (
            isinstance(offset, int)
            and offset >= 0
            and isinstance(key, str)
            and isinstance(value, bytes)
            and isinstance(crc, int)
            and isinstance(ms, int)
            and (headers is None or isinstance(headers, str))
            and _crc(key, value) == crc
        )
        if ok and offset not in rows:
            rows[offset] = row
        else:
            report.dropped += 1

    columns = '"offset", key, value, headers, crc, appended_ms'
    scratch = tempfile.TemporaryDirectory(prefix="catalog-salvage-")
    copy = Path(scratch.name) / "damaged.db"
    shutil.copyfile(source, copy)  # the damaged file itself is left as it is
    if Path(f"{source}-wal").exists():
        shutil.copyfile(f"{source}-wal", f"{copy}-wal")
    _make_readable(copy)
    db = sqlite3.connect(copy)
    try:
        log_id = None
        try:
            found = db.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()
            log_id = found[0] if found else None
        except sqlite3.DatabaseError:
            pass
        scanned = -1
        try:  # a table scan yields every row of the pages still linked
            for row in db.execute(f"SELECT {columns} FROM records"):
                take(row)
                if isinstance(row[0], int):
                    scanned = max(scanned, row[0])
        except sqlite3.DatabaseError:
            pass
        highest = scanned + 1000  # past the scan: until 1,000 offsets in a row are missing
        try:  # a damaged tree may claim any maximum: probe at most a million more
            (top,) = db.execute('SELECT MAX("offset") FROM records').fetchone()
            if isinstance(top, int):
                highest = max(highest, min(top, scanned + 1_000_000))
        except sqlite3.DatabaseError:
            pass
        offset = 0
        while offset <= highest:  # seek the rows the scan could not reach
            if offset not in rows:
                try:
                    for row in db.execute(
                        f'SELECT {columns} FROM records WHERE "offset" = ?', [offset]
                    ):
                        take(row)
                        highest = max(highest, offset + 1000)
                except sqlite3.DatabaseError:
                    pass
            offset += 1
    finally:
        db.close()
        scratch.cleanup()

    out = sqlite3.connect(target, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode=WAL")
        out.executescript(SCHEMA)
        report.log_id_kept = log_id is not None
        out.execute("BEGIN")
        out.execute("INSERT INTO meta VALUES ('log_id', ?)", [log_id or str(uuid.uuid4())])
        out.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", [rows[o] for o in sorted(rows)]
        )
        out.execute("COMMIT")
        out.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        out.close()
    report.kept = len(rows)
    expected = 0
    for offset in sorted(rows):
        if offset > expected:
            report.missing.append((expected, offset - 1))
        expected = offset + 1
    if replace:
        aside = source.with_name(f"{source.name}.damaged-{stamp}")
        os.replace(source, aside)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{source}{suffix}")
            if companion.exists():
                os.replace(companion, Path(f"{aside}{suffix}"))
        os.replace(target, source)
        for suffix in ("-wal", "-shm"):
            leftover = Path(f"{target}{suffix}")
            if leftover.exists():
                leftover.unlink()
        report.damaged = str(aside)
    return report
