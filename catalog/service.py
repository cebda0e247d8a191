"""The catalog service: one projection, kept current, answering many clients.

DuckDB allows one writing process per file, so a projection is shared by
serving it, not by opening it twice (docs/design.md). A :class:`Service` owns one
projection file: a follower thread applies the log to it batch by batch, and
every read — the versioned query API (:mod:`catalog.api`), the web UI, SQL —
runs in a read-only transaction on a cursor of its own, concurrently with the
follower and with each other (DuckDB's MVCC: a read sees one committed state).

- **Read-your-writes.** A read that passes ``min_positions`` waits (bounded,
  :attr:`Service.wait_timeout`) until the follower has applied them; the
  follower is nudged at once rather than at its next poll. A read waits the
  same way, at start, until the projection has caught up with the log as it
  stood when the service started, so nobody reads a half-built catalog.
- **Writes never pass here.** Producers append to the log and store bytes
  themselves; the service only learns of them by following the log.
- **Advertised.** The service writes its loopback address beside the file
  (:func:`catalog.api.write_advert`), so other processes of this machine that
  want that file read through the service instead of waiting for it.

``catalog serve`` runs it with the web UI; ``catalog consume --follow`` runs
it on an ephemeral loopback port.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pyarrow as pa

from catalog import __version__, access, api, query
from catalog.client import Catalog, parse_as_of
from catalog.config import Config
from catalog.consumers import published
from catalog.consumers.database import connect
from catalog.consumers.projection import DEFAULT_BATCH, Projection
from catalog.errors import CatalogError, InvalidInput, LogUnavailable, NotYetApplied
from catalog.events.codec import Codec, default_codec
from catalog.events.framing import registry_framing
from catalog.log import EventLog, is_behind, open_log
from catalog.reader import AsOf, Reader
from catalog.writer import Writer

_logger = logging.getLogger("catalog.service")

#: Default bound on a read's wait for ``min_positions`` (seconds).
WAIT_TIMEOUT = 10.0
#: Under a steady stream, apply at most this often (seconds) unless a reader waits.
APPLY_INTERVAL = 0.5


class Service:
    """Owns a projection file; follows the log into it; answers reads over it."""

    def __init__(
        self,
        log_url: str,
        db: str,
        *,
        codec: Codec | None = None,
        wait_timeout: float = WAIT_TIMEOUT,
        batch_size: int = DEFAULT_BATCH,
        open_timeout: float = 30.0,
        apply_interval: float = APPLY_INTERVAL,
        frozen: bool = False,
        snapshots: str | None = None,
        start_from_snapshot: bool = True,
        publish_every: tuple[int | None, float | None] = (None, None),
        keep_snapshots: int = 3,
    ) -> None:
        self.log_url = log_url
        self.db = db
        self.codec = codec or default_codec()
        self.wait_timeout = wait_timeout
        self.batch_size = batch_size
        self.apply_interval = apply_interval
        self.instance = uuid.uuid4().hex
        self.url = ""  # set by the server once it listens
        #: serve the file as it is (a replay --into file): no follower, nothing applied
        self.frozen = frozen
        #: where snapshots are published (and, when the file is empty, started from)
        self.snapshots = snapshots
        self.log: EventLog = open_log(log_url, framing=registry_framing)
        backoff = 0.0
        while True:  # a broker still starting (or restarting): wait for it, saying so
            projection: Projection | None = None
            try:
                projection = published.open_projection(
                    db,
                    self.log,
                    snapshots if start_from_snapshot and not frozen else None,
                    open=lambda: Projection(
                        db, codec=self.codec, timeout=open_timeout, frozen=frozen
                    ),
                )
                if not frozen:
                    projection.bind(self.log)
            except LogUnavailable as exc:
                if projection is not None:
                    projection.close()
                backoff = min(10.0, backoff * 2 if backoff else 0.2)
                _logger.warning(
                    "event log unavailable at start (%s); retrying in %.1fs", exc, backoff
                )
                time.sleep(backoff)
                continue
            except BaseException:
                if projection is not None:
                    projection.close()
                self.log.close()
                raise
            if backoff:
                _logger.warning("event log %s is back; following it", self.log.url)
            self.projection = projection
            break
        self.started_from_snapshot = self.projection.restored_from
        self.publisher: published.Publisher | None = None
        if snapshots is not None and not frozen:
            events, seconds = publish_every
            self.publisher = published.Publisher(
                self.projection,
                snapshots,
                lock=self.projection.lock,
                events=events,
                seconds=seconds,
                keep=keep_snapshots,
            )
        # Reads run users' SQL on this instance: no files, no ATTACH, no extensions.
        # (The follower needs none of them once the file is attached.)
        self.projection.con.execute("SET enable_external_access = false")
        self._applied: dict[int, int] = dict(self.projection.positions)
        self._changed = threading.Condition()
        self._nudge = threading.Event()
        self._stopping = threading.Event()
        self._cursors = threading.local()
        self._local_at = threading.local()  # per thread: positions its transaction sees
        self._all_cursors: list[Any] = []
        self._cursor_lock = threading.Lock()
        self._follower: threading.Thread | None = None
        self._probe: EventLog | None = None  # a log handle for requests' questions
        self._probe_lock = threading.Lock()
        self.error: str | None = None  # the follower's last failure, for /health
        self.started_at = time.time()
        self._ready_at: dict[int, int] = {}  # the log's end when the service started
        self.applied_events = 0

    # --------------------------------------------------------------- follower

    def start(self) -> Service:
        """Start following the log (returns at once; reads wait until caught up)."""
        if self.frozen:
            return self  # nothing to follow: ready as it is
        if self.publisher is not None:
            self.publisher.start()
        try:
            self._ready_at = self.log.end_offsets()
        except LogUnavailable as exc:
            _logger.warning("event log unavailable at start (%s); following when it is back", exc)
        self._follower = threading.Thread(target=self._follow, name="catalog-follower", daemon=True)
        self._follower.start()
        return self

    def _follow(self) -> None:
        delay = 0.005
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                applied = self.projection.catch_up(
                    self.log, batch_size=self.batch_size, progress=self._batch_applied
                )
                if backoff:
                    _logger.warning("event log %s is back; following again", self.log.url)
                    backoff = 0.0
                self.error = None
            except LogUnavailable as exc:
                backoff = min(10.0, backoff * 2 if backoff else 0.2)
                self.error = str(exc)
                _logger.warning("event log unavailable (%s); retrying in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                continue
            except Exception as exc:  # noqa: BLE001 - keep serving; report on /health
                self.error = f"{type(exc).__name__}: {exc}"
                _logger.exception("the follower failed; retrying in 1 s")
                self._stopping.wait(1.0)
                continue
            if applied:
                # Batch what keeps arriving: a batch's cost is mostly fixed (at a million
                # versions, 36 ms of CPU for 50 events, 81 ms for 1,000), so a steady
                # trickle is applied every apply_interval (measured under 1,000 events/s:
                # 20 small batches a second took the CPU 8 readers needed); a reader
                # waiting for its writes nudges the follower, which then applies at once.
                delay = 0.005
                if self._nudge.wait(self.apply_interval):
                    self._nudge.clear()
                continue
            if self._nudge.wait(delay):
                self._nudge.clear()
            delay = min(delay * 2, 0.1)

    def _batch_applied(self, count: int) -> None:
        with self._changed:
            self._applied = dict(self.projection.positions)
            self.applied_events += count
            self._changed.notify_all()

    def stop(self) -> None:
        """Stop following, release the file (a batch being applied completes first)."""
        self._stopping.set()
        self._nudge.set()
        if self._follower is not None:
            self._follower.join(timeout=60)
        if self.publisher is not None:
            self.publisher.stop()
        with self._cursor_lock:
            for cursor in self._all_cursors:
                cursor.close()
            self._all_cursors.clear()
        self.projection.close()
        self.log.close()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    @property
    def positions(self) -> dict[int, int]:
        with self._changed:
            return dict(self._applied)

    def ready(self) -> bool:
        return not is_behind(self.positions, self._ready_at)

    def end_offsets(self) -> dict[int, int]:
        """The log's end, asked on a handle of its own (never the follower's)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = open_log(self.log_url, framing=registry_framing)
            return self._probe.end_offsets()

    def wait_for(self, wanted: Mapping[int, int], timeout: float | None = None) -> None:
        """Return once every partition has applied up to ``wanted`` (next offsets);
        :class:`NotYetApplied` after ``timeout`` seconds. Positions past the end of
        the log are refused at once (:class:`InvalidInput`): no write made them."""
        if not wanted or not is_behind(self.positions, wanted):
            return
        if self.frozen:
            raise InvalidInput(
                f"this service serves {self.db} frozen at {api.format_offsets(self.positions)} "
                f"(as it is: it applies nothing); it will never reach "
                f"min_positions {api.format_offsets(wanted)}"
            )
        end = self.end_offsets()
        past = {p: o for p, o in wanted.items() if o > end.get(p, 0)}
        if past:
            raise InvalidInput(
                f"min_positions {api.format_offsets(past)} is past the end of the log "
                f"({api.format_offsets(end) or 'empty'}): no write has reached it"
            )
        limit = self.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        self._nudge.set()
        with self._changed:
            while is_behind(self._applied, wanted):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    raise NotYetApplied(
                        self.url or self.db,
                        api.format_offsets(wanted),
                        api.format_offsets(self._applied),
                        limit,
                    )
                self._changed.wait(min(left, 0.5))
                self._nudge.set()

    # ------------------------------------------------------------------ reads

    def _cursor(self) -> Any:
        cursor = getattr(self._cursors, "cursor", None)
        if cursor is None:
            cursor = self.projection.con.cursor()
            cursor.execute(f'USE "{self.projection.database}"')
            self._cursors.cursor = cursor
            with self._cursor_lock:
                self._all_cursors.append(cursor)
        return cursor

    @contextmanager
    def reading(
        self, min_positions: Mapping[int, int] | None = None, *, read_only: bool = False
    ) -> Iterator[Any]:
        """A transaction over one committed state (once ``min_positions`` and the
        start-up catch-up are applied), rolled back at the end. ``read_only``
        makes DuckDB refuse any write in it (for users' SQL; the ops only read,
        and the plain transaction costs nothing, where a ``BEGIN`` statement
        costs a fifth of a point lookup)."""
        self.wait_for(self._ready_at)
        self.wait_for(min_positions or {})
        cursor = self._cursor()
        self._local_at.value = self.positions  # what the transaction sees, at least
        if read_only:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
        else:
            cursor.begin()
        try:
            yield cursor
        finally:
            cursor.rollback()

    def read(
        self,
        op: api.Op,
        params: Mapping[str, Any],
        *,
        min_positions: Mapping[int, int] | None = None,
        as_of: AsOf = None,
    ) -> tuple[Any, dict[int, int]]:
        """Op ``op``'s answer and the positions it was read at."""
        if as_of is not None:
            with self._snapshot(as_of, min_positions) as (con, ends):
                access.scope_connection(con)
                return op.function(con, **params), ends
        with self.reading(min_positions) as con:
            access.scope_connection(con)  # the rows of the request's projects only
            return op.function(con, **params), self._local_at.value

    def sql(
        self,
        statement: str,
        *,
        min_positions: Mapping[int, int] | None = None,
        as_of: AsOf = None,
    ) -> pa.Table:
        """A checked read-only SQL query (:func:`catalog.query.check_read_only`), for
        a request of every project (:func:`catalog.access.check_sql`)."""
        access.check_sql()
        query.check_read_only(statement)
        if as_of is not None:
            with self._snapshot(as_of, min_positions) as (con, _):
                return query.run_sql(con, statement)
        with self.reading(min_positions, read_only=True) as con:
            return query.run_sql(con, statement)

    @contextmanager
    def _snapshot(
        self, as_of: datetime | dict[int, int], min_positions: Mapping[int, int] | None
    ) -> Iterator[tuple[Any, dict[int, int]]]:
        """A read-only connection to the projection as of a past moment (built once,
        from the log, into the snapshots folder beside the file)."""
        from pathlib import Path

        from catalog.consumers.snapshot import snapshot

        ends = self.end_offsets()
        if isinstance(as_of, datetime):
            with self.reading(min_positions) as con:
                ends = query.cut_at_time(con, as_of, ends)
        else:
            ends = {p: min(end, as_of.get(p, end)) for p, end in ends.items()}
        directory = Path(self.db).parent / "snapshots"
        path = snapshot(self.log, directory, ends, codec=self.codec)
        con = connect(str(path), read_only=True, config={"enable_external_access": False})
        try:
            yield con, ends
        finally:
            con.close()

    def publish_snapshot(self) -> dict[str, Any]:
        """Publish a snapshot now (``catalog snapshot``); its summary."""
        if self.publisher is None:
            raise InvalidInput(
                "this service publishes no snapshots"
                + (" (it serves a frozen file)" if self.frozen else " (CATALOG_SNAPSHOTS=off)")
            )
        self.wait_for(self._ready_at)
        self.wait_for(self.end_offsets())  # "now": everything the log holds at this moment
        manifest = self.publisher.publish_now()
        summary: dict[str, Any] = published.manifest_summary(
            published.Listed(manifest.name, self.snapshots or "", manifest, None)
        )
        return summary

    def health(self) -> dict[str, Any]:
        """Liveness and identity: no secrets, no paths (open to anyone)."""
        return {
            "status": "ok" if self.error is None else "degraded",
            "ready": self.ready(),
            "instance": self.instance,
            "version": __version__,
        }

    def status(self) -> dict[str, Any]:
        """Where the service stands (needs read access): positions, lag, log, file."""
        try:
            end = self.end_offsets()
        except LogUnavailable:
            end = {}
        at = self.positions
        return {
            **self.health(),
            "positions": {str(p): o for p, o in sorted(at.items())},
            "log_end": {str(p): o for p, o in sorted(end.items())},
            "lag": sum(max(0, o - at.get(p, 0)) for p, o in end.items()),
            "frozen": self.frozen,
            "started_from_snapshot": self.started_from_snapshot,
            "snapshot": self.publisher.last.name
            if self.publisher and self.publisher.last
            else None,
            "snapshot_error": self.publisher.error if self.publisher else None,
            "applied_since_start": self.applied_events,
            "log": self.log.url,
            "db": self.db,
            "pid": os.getpid(),
            "error": self.error,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    def advert(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": os.getpid(),
            "instance": self.instance,
            "log": self.log.url,
            "log_id": None if self.frozen else self.log.log_id,
            "started": self.started_at,
            "frozen": self.frozen,
        }


class ServedReader(Reader):
    """The reader of a Catalog inside the service (the web UI's): reads the
    service's projection directly, with no HTTP in between."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.where = service.url or service.db

    def call(
        self,
        name: str,
        /,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
        **params: Any,
    ) -> Any:
        result, _ = self.service.read(
            api.op(name), params, min_positions=min_positions, as_of=as_of
        )
        return result

    def sql(
        self,
        statement: str,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
    ) -> pa.Table:
        return self.service.sql(statement, as_of=as_of, min_positions=min_positions)


def served_catalog(service: Service, config: Config) -> Catalog:
    """A Catalog that reads the service's projection and writes to its log, each write
    admitted only for a project the request may write (:func:`catalog.access.admit`)."""
    catalog = Catalog(config=config, log=service.log_url, reader=ServedReader(service))
    assert isinstance(catalog.writer, Writer)
    catalog.writer.admit = access.admit
    return catalog


def parse_common(
    params: Mapping[str, str] | Callable[[str], str | None],
) -> tuple[dict[int, int] | None, AsOf]:
    """The ``min_positions`` and ``as_of`` of a request (every read takes them)."""
    get = params.get if isinstance(params, Mapping) else params
    wanted = get("min_positions")
    as_of = get("as_of")
    positions = api.parse_offsets(wanted, "min_positions") if wanted else None
    try:
        return positions, parse_as_of(as_of) if as_of else None
    except CatalogError as exc:
        if exc.args:
            exc.args = (f"parameter 'as_of': {exc.args[0]}", *exc.args[1:])
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"parameter 'as_of' {as_of!r}: {exc}") from None
