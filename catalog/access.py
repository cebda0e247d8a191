"""Who may see and change which projects: the one rule, and the tokens that carry it.

A request to ``catalog serve`` carries a :class:`Grant`: a scope (``read`` or
``write``) and the projects it covers (all of them, or a list). The rule is
declared here once and applied at two doors every route passes:

- **Reads.** Every read of the projection on behalf of a request — the query
  API's ops, the pages and the UI's JSON API, content and YAML, lineage,
  audit, dead letters, diff, digest — runs in :meth:`Service.read
  <catalog.service.Service.read>`, which calls :func:`scope_connection`: for a
  project-limited grant, the transaction sees every table (and view) of the
  projection through a view of the rows of its projects, so nothing of another
  project appears in any answer, and a lineage edge into a hidden project is
  not there (a walk stops at the edge, never naming the project). SQL typed by
  a project-limited token is refused (:func:`check_sql`): a statement could
  name the tables behind the views.
- **Writes.** Every event appended on behalf of a request — the UI's writes,
  events POSTed by clients — passes :func:`admit` in the served catalog's
  writer: an event of a project the grant may not write is ``Forbidden`` (403)
  and nothing of the batch is appended. Uploads go only to the stores of the
  grant's projects (:meth:`catalog.intake.Intake.store`).

The server sets the request's grant (:func:`granted`) before any route runs
(:class:`catalog.web.security.ReadAccessMiddleware`); work handed to other
threads carries it (context variables).

**Managed tokens** (:class:`TokenTable`, ``catalog token create/list/revoke``)
live in a small JSON file beside the service's data (``<data>/access.json``,
or ``CATALOG_ACCESS_FILE``): each a name, a scope, its projects (or all) and
the SHA-256 of the token, which is shown once, at creation, and never stored.
The server re-reads the file when it changes, so a revoked token fails at
once. Tokens from ``CATALOG_READ_TOKEN``, ``CATALOG_WRITE_TOKEN`` and a
tokens file keep working as tokens for every project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.errors import Forbidden, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from catalog.events.model import CatalogEvent

SCOPES = ("read", "write")
ACCESS_FILE_ENV = "CATALOG_ACCESS_FILE"
#: Managed tokens start with this, so a leaked one is recognisable.
TOKEN_PREFIX = "cat_"


@dataclass(frozen=True)
class Grant:
    """What one request may do: read or write, in every project (``projects`` None)
    or only in those named. ``token`` names the managed token it came from."""

    scope: str
    projects: frozenset[str] | None = None
    token: str | None = None

    @property
    def limited(self) -> bool:
        return self.projects is not None

    def may_see(self, project: str) -> bool:
        return self.projects is None or project in self.projects

    def may_write(self, project: str) -> bool:
        return self.scope == "write" and self.may_see(project)

    def check_write(self, project: str) -> None:
        if self.may_write(project):
            return
        if self.scope != "write":
            raise Forbidden("this token may only read; writing needs a write token")
        raise Forbidden(f"this token may not write to project {project!r}")


#: A server with no token at all: everyone reads and writes every project.
OPEN = Grant("write")
#: Every project, read only.
READ_ALL = Grant("read")
#: Nothing (a request without a token where reads need one).
NOTHING = Grant("read", frozenset())

_current: ContextVar[Grant] = ContextVar("catalog_access", default=OPEN)


def current() -> Grant:
    """The grant of the request being served (:data:`OPEN` outside a request)."""
    return _current.get()


@contextmanager
def granted(grant: Grant) -> Iterator[Grant]:
    """Serve what runs inside (and the threads it hands work to) under ``grant``."""
    reset = _current.set(grant)
    try:
        yield grant
    finally:
        _current.reset(reset)


# ------------------------------------------------------------------ writes


def admit(ev: CatalogEvent) -> None:
    """Raise :class:`Forbidden` unless the current grant may write ``ev``'s project."""
    current().check_write(ev.project)


# ------------------------------------------------------------------- reads

#: How each table and view of the projection is cut for a project-limited grant
#: (``{p}`` is the list of its projects); tables not named are shown whole (they
#: hold no project's data: positions, meta).
SCOPED: Mapping[str, str] = {
    "artifacts": "project IN ({p})",
    "tags": "project IN ({p})",
    "tag_intervals": "project IN ({p})",
    "tag_history": "project IN ({p})",
    "latest_artifacts": "project IN ({p})",
    "artifact_tags": "project IN ({p})",
    "runs": "project IN ({p})",
    "events": "project IN ({p})",  # and see WITHHELD
    # undecodable records belong to no project: the operator's (all-project tokens)
    "dead_letters": "project IN ({p})",
    "projects": "name IN ({p})",
    # an edge is seen only when both ends are: a walk stops at a hidden project
    "lineage": "project IN ({p}) AND (parent_project IS NULL OR parent_project IN ({p}))",
}


#: Columns rewritten for a project-limited grant: an event logging a version made
#: from (or linking to) a version of a hidden project keeps its payload without
#: its sources and links, so the audit trail never names what the token cannot see.
WITHHELD: Mapping[str, str] = {
    "events": (
        "* REPLACE (CASE WHEN type = 'ArtifactLogged' AND EXISTS (SELECT 1 FROM {db}.lineage l "
        "WHERE l.uid = json_extract_string(payload, '$.uid') AND l.parent_project IS NOT NULL "
        "AND l.parent_project NOT IN ({p})) THEN json_merge_patch(payload, "
        """'{{"sources": null, "extra_data": null, "withheld": "sources and links into """
        """projects this token cannot see"}}') ELSE payload END AS payload)"""
    ),
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scope_connection(con: Any, grant: Grant | None = None) -> None:
    """Inside ``con``'s open transaction, shadow every table and view of the
    projection with the rows ``grant`` (default: the current one) may see.

    The views are temporary objects of the transaction: its rollback drops them.
    Nothing is done for a grant of every project."""
    grant = current() if grant is None else grant
    if grant.projects is None:
        return
    database = con.execute("SELECT current_database()").fetchone()[0]
    names = ", ".join(_literal(p) for p in sorted(grant.projects)) or "NULL"
    db = f'"{database}".main'
    for name, where in SCOPED.items():
        columns = WITHHELD.get(name, "*").format(db=db, p=names)
        con.execute(
            f'CREATE TEMP VIEW "{name}" AS SELECT {columns} FROM {db}."{name}" '
            f"WHERE {where.format(p=names)}"
        )


def check_sql(grant: Grant | None = None) -> None:
    """SQL is for tokens of every project: a statement could name the tables behind
    :func:`scope_connection`'s views."""
    grant = current() if grant is None else grant
    if grant.limited:
        raise Forbidden(
            "SQL needs a token for every project; this token is limited to "
            f"{', '.join(sorted(grant.projects or ())) or 'no project'}"
        )


# ---------------------------------------------------------- managed tokens


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """``CATALOG_ACCESS_FILE``, else ``<data>/access.json`` beside the service's data."""
    from catalog.config import data_dir

    env = os.environ if environ is None else environ
    given = env.get(ACCESS_FILE_ENV)
    return Path(given).expanduser() if given else data_dir() / "access.json"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class TokenRecord:
    """One managed token as stored: never the token, only its SHA-256."""

    id: str
    name: str
    scope: str
    projects: tuple[str, ...] | None
    created: str
    sha256: str

    def grant(self) -> Grant:
        projects = None if self.projects is None else frozenset(self.projects)
        return Grant(self.scope, projects, token=self.id)

    def public(self) -> dict[str, Any]:
        """What ``catalog token list`` shows (no hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "projects": "*" if self.projects is None else ",".join(self.projects),
            "created": self.created,
        }


class TokenTable:
    """The managed tokens of a service, in one JSON file (written atomically, 0600).

    :meth:`lookup` and :meth:`record` re-read the file whenever it changed, so a
    token created or revoked by ``catalog token`` counts at once, without a restart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenRecord] = {}
        self._by_id: dict[str, TokenRecord] = {}

    # ------------------------------------------------------------- reading

    def _load(self) -> list[TokenRecord]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"access file {self.path}: {exc}") from None
        records = []
        for item in raw.get("tokens", []) if isinstance(raw, dict) else []:
            projects = item.get("projects")
            records.append(
                TokenRecord(
                    id=str(item["id"]),
                    name=str(item["name"]),
                    scope=str(item["scope"]),
                    projects=None if projects is None else tuple(str(p) for p in projects),
                    created=str(item["created"]),
                    sha256=str(item["sha256"]),
                )
            )
        return records

    def _fresh(self) -> None:
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and (stamp is not None or not self._by_id):
                return
            records = self._load() if stamp is not None else []
            self._by_hash = {r.sha256: r for r in records}
            self._by_id = {r.id: r for r in records}
            self._stamp = stamp

    def __bool__(self) -> bool:
        self._fresh()
        return bool(self._by_id)

    def lookup(self, token: str) -> Grant | None:
        """The grant of ``token``, or None (unknown or revoked)."""
        self._fresh()
        found = self._by_hash.get(_hash(token))
        return found.grant() if found is not None else None

    def record(self, token_id: str) -> TokenRecord | None:
        self._fresh()
        return self._by_id.get(token_id)

    def list(self) -> list[TokenRecord]:
        return sorted(self._load(), key=lambda r: (r.created, r.id))

    # ------------------------------------------------------------- writing

    def _save(self, records: Iterable[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "tokens": [
                {
                    "id": r.id,
                    "name": r.name,
                    "scope": r.scope,
                    "projects": None if r.projects is None else list(r.projects),
                    "created": r.created,
                    "sha256": r.sha256,
                }
                for r in records
            ]
        }
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.path)

    def create(
        self, name: str, scope: str, projects: Iterable[str] | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token: its record and the token itself (shown once, never stored)."""
        from catalog.validation import validate_project

        if not _NAME.fullmatch(name):
            raise InvalidInput(
                f"token name {name!r}: letters, digits, '.', '_', '@', '-', at most 64"
            )
        if scope not in SCOPES:
            raise InvalidInput(f"scope {scope!r}: one of {', '.join(SCOPES)}")
        chosen = (
            None if projects is None else tuple(sorted({validate_project(p) for p in projects}))
        )
        if chosen == ():
            raise InvalidInput("give at least one project, or none for every project")
        records = self._load()
        if any(r.name == name for r in records):
            raise InvalidInput(f"a token named {name!r} exists already (revoke it first)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(
            id=secrets.token_hex(6),
            name=name,
            scope=scope,
            projects=chosen,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            sha256=_hash(token),
        )
        self._save([*records, record])
        return record, token

    def revoke(self, which: str) -> TokenRecord:
        """Remove the token whose id or name is ``which``; it fails from then on."""
        records = self._load()
        found = [r for r in records if which in (r.id, r.name)]
        if not found:
            raise InvalidInput(f"no token with id or name {which!r} in {self.path}")
        self._save([r for r in records if r is not found[0]])
        return found[0]
