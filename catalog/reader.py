"""The read path: the only door to a projection.

Every read of the SDK, the CLI and the web UI is one op of
:mod:`catalog.api`, asked of a :class:`Reader` by name. Which reader a
client has decides where the answer comes from:

- :class:`LocalReader` — this process's own DuckDB file, caught up with the
  log before each answer (the embedded default: nothing to start). DuckDB
  allows one writing process per file, so when the file is held by a running
  ``catalog serve`` or ``catalog consume --follow`` of this machine (they
  advertise their loopback address beside it), it reads through that
  process instead of waiting for the file.
- :class:`RemoteReader` — a catalog service over HTTP (``CATALOG_API``): no
  DuckDB file here, nothing to rebuild, the same answers.
- the service's own reader (:mod:`catalog.service`), over the projection it
  keeps current.

Writes never come here, except to learn what only state knows (a project's
artifact path, the version a ``store://`` source names) and, afterwards,
whether their events were applied or refused (the ``outcome`` op).
"""

from __future__ import annotations

import abc
import http.client
import json
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from catalog import api, errors
from catalog.errors import CatalogError, InvalidInput, ServiceError, ServiceUnavailable

_logger = logging.getLogger("catalog.reader")

#: Bytes per socket write and read of an upload or download.
CHUNK = 1024 * 1024

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from catalog.consumers.projection import Projection
    from catalog.events.codec import Codec
    from catalog.log import EventLog

AsOf = datetime | dict[int, int] | None

#: Seconds a local projection file stays open after a read outside a session.
GRACE = 0.25
#: Readers of this process holding their file open for GRACE: released at once when
#: something else of this process needs the file (a read-only SQL connection).
_HELD: weakref.WeakSet[LocalReader] = weakref.WeakSet()


def release_held(db: str) -> None:
    """Release every file ``db`` this process holds open only for :data:`GRACE`."""
    path = os.path.realpath(db)
    for reader in list(_HELD):
        if os.path.realpath(reader.db) == path:
            with reader._lock:
                if reader._depth == 0:
                    reader._release()


class Reader(abc.ABC):
    """Answers the reads of :mod:`catalog.api` (by op name, keyword arguments)."""

    #: what messages name: a projection file or a service URL
    where: str

    @abc.abstractmethod
    def call(
        self,
        name: str,
        /,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
        **params: Any,
    ) -> Any:
        """The answer of op ``name``; once ``min_positions`` are applied; as of ``as_of``."""

    @abc.abstractmethod
    def sql(
        self,
        statement: str,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
    ) -> pa.Table:
        """A read-only SQL query over the projection's tables."""

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep what reading needs open across calls (a file, a connection)."""
        yield

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


# -------------------------------------------------------------------- local


class LocalReader(Reader):
    """This process's own projection file, caught up with the log before each answer."""

    def __init__(
        self,
        db: str,
        log: Callable[[], EventLog],
        *,
        codec: Codec | None = None,
        timeout: float = 30.0,
        token: str | None = None,
        frozen: bool = False,
        snapshots: str | None = None,
        start_from_snapshot: bool = True,
        publish_every: tuple[int | None, float | None] = (None, None),
        keep_snapshots: int = 3,
    ) -> None:
        self.db = db
        self.where = db
        #: where snapshots are published; an empty file starts from the newest there
        self.snapshots = snapshots
        self.start_from_snapshot = start_from_snapshot
        self.publish_every = publish_every
        self.keep_snapshots = keep_snapshots
        #: read the file as it is: never caught up with the log (``--frozen``)
        self.frozen = frozen
        self._log = log
        self._codec = codec
        self.timeout = timeout
        self._token = token
        self._projection: Projection | None = None
        self._depth = 0
        self._remote: RemoteReader | None = None
        # The file stays open GRACE seconds after a read outside a session (a loop of
        # writes, each learning its outcome, opens it once); a timer releases it.
        self._lock = threading.RLock()
        self._last_use = 0.0
        self._timer: threading.Timer | None = None

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            from catalog.events.codec import default_codec

            self._codec = default_codec()
        return self._codec

    # --------------------------------------------------------------- the file

    @contextmanager
    def session(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._release()

    def _release(self) -> None:
        with self._lock:
            _HELD.discard(self)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._projection is not None:
                self._projection.close()
                self._projection = None

    def _release_soon(self) -> None:
        """Release the file once it has not been used for :data:`GRACE` seconds."""
        self._last_use = time.monotonic()
        _HELD.add(self)
        if self._timer is None and self._projection is not None:
            self._timer = threading.Timer(GRACE, self._release_if_idle)
            self._timer.daemon = True
            self._timer.start()

    def _release_if_idle(self) -> None:
        with self._lock:
            self._timer = None
            if self._depth or self._projection is None:
                return
            idle = time.monotonic() - self._last_use
            if idle < GRACE:  # used meanwhile: look again when it may be idle
                self._timer = threading.Timer(GRACE - idle, self._release_if_idle)
                self._timer.daemon = True
                self._timer.start()
                return
            self._release()

    def close(self) -> None:
        self._release()
        if self._remote is not None:
            self._remote.close()
            self._remote = None

    def projection(self) -> Projection:
        """The projection file, opened for this process (waiting while a short-lived
        command holds it); :class:`ServedElsewhere` if a service holds it."""

        if self._projection is not None:
            return self._projection
        deadline = time.monotonic() + self.timeout
        while True:
            self._check_advert()
            try:
                self._projection = self._open(min(0.5, self.timeout))
                return self._projection
            except errors.ProjectionBusy:
                if time.monotonic() >= deadline:
                    raise

    def _open(self, timeout: float) -> Projection:
        """The file, opened; an empty one first started from the newest snapshot."""
        from catalog.consumers.projection import Projection
        from catalog.consumers.published import open_projection

        def make() -> Projection:
            return Projection(self.db, codec=self.codec, timeout=timeout, frozen=self.frozen)

        if self.snapshots is None or self.frozen or not self.start_from_snapshot:
            return make()
        return open_projection(self.db, self._log(), self.snapshots, open=make)

    def publisher(self, projection: Projection) -> Any:
        """A :class:`consumers.published.Publisher` of ``projection`` on this reader's
        schedule, or None when snapshots are off."""
        from catalog.consumers.published import Publisher

        if self.snapshots is None:
            return None
        events, seconds = self.publish_every
        return Publisher(
            projection,
            self.snapshots,
            lock=projection.lock,
            events=events,
            seconds=seconds,
            keep=self.keep_snapshots,
        )

    def publish_snapshot(self) -> dict[str, Any]:
        """Publish a snapshot of this projection now (through its service, if one holds it)."""
        from catalog.consumers.published import Listed, manifest_summary

        if self.snapshots is None:
            raise InvalidInput("snapshots are off (CATALOG_SNAPSHOTS=off): nowhere to publish")
        remote = self._delegate()
        if remote is not None:
            return remote.publish_snapshot()
        with self._live():
            publisher = self.publisher(self.projection())
            manifest = publisher.publish_now()
        summary: dict[str, Any] = manifest_summary(
            Listed(manifest.name, self.snapshots, manifest, None)
        )
        return summary

    def list_snapshots(self) -> list[dict[str, Any]]:
        """The snapshots published for this log, newest first."""
        from catalog.consumers.published import list_snapshots, manifest_summary

        if self.snapshots is None:
            raise InvalidInput("snapshots are off (CATALOG_SNAPSHOTS=off)")
        return [
            manifest_summary(item) for item in list_snapshots(self.snapshots, self._log().log_id)
        ]

    def _check_advert(self) -> None:
        found = api.read_advert(self.db)
        if found is None:
            return
        remote = RemoteReader(found["url"], token=self._token, timeout=self.timeout)
        try:
            health = remote.health()
        except ServiceError:
            remote.close()
            return  # stale: its process is gone or not answering; the file decides
        if health.get("instance") != found.get("instance"):
            remote.close()
            return
        if found.get("frozen") and not self.frozen:
            remote.close()
            raise InvalidInput(
                f"{self.db} is served frozen (as it is, never caught up) by pid "
                f"{found.get('pid')} at {found['url']}: read it with --frozen, or give "
                "this command another projection with --db"
            )
        raise ServedElsewhere(remote, found)

    @contextmanager
    def _live(self) -> Iterator[Any]:
        """A connection to the projection, caught up to the end of the log (unless frozen)."""
        with self._lock:
            projection = self.projection()
            try:
                if not self.frozen:
                    projection.catch_up(self._log())
                yield projection.con
            finally:
                if self._depth == 0:
                    self._release_soon()

    def _delegate(self) -> RemoteReader | None:
        """The service holding this file, if one does (checked once, then kept)."""
        if self._remote is not None:
            return self._remote
        if self._projection is not None:
            return None
        try:
            self._check_advert()
        except ServedElsewhere as served:
            self._check_same_log(served.advert)
            self._remote = served.remote
        return self._remote

    def _check_same_log(self, advert: Mapping[str, Any]) -> None:
        log = self._log()
        if advert.get("log_id") not in (None, log.log_id):
            raise InvalidInput(
                f"the projection {self.db} is held by a catalog service (pid "
                f"{advert.get('pid')}) that follows another log ({advert.get('log')}), not "
                f"{log.url}: give this command its own projection with --db"
            )

    # ---------------------------------------------------------------- reading

    def call(
        self,
        name: str,
        /,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
        **params: Any,
    ) -> Any:
        fn = api.op(name).function
        remote = self._delegate()
        if remote is not None:
            return remote.call(name, as_of=as_of, min_positions=min_positions, **params)
        if as_of is not None:
            from catalog.consumers.projection import Projection

            with Projection(self.snapshot(as_of), codec=self.codec, timeout=self.timeout) as p:
                return fn(p.con, **params)
        try:
            with self._live() as con:
                return fn(con, **params)
        except ServedElsewhere:  # a service took the file meanwhile: ask it
            return self.call(name, as_of=as_of, min_positions=min_positions, **params)

    def applied(self) -> dict[int, int]:
        """The projection's positions as they are, without catching up (``consume
        --status``); the service holding the file, if one does, answers its own."""
        remote = self._delegate()
        if remote is not None:
            found = remote.call("positions")
            return {int(p): int(o) for p, o in found.items()}
        with self._lock:
            projection = self.projection()
            try:
                return dict(projection.positions)
            finally:
                if self._depth == 0:
                    self._release_soon()

    def snapshot(self, as_of: datetime | dict[int, int]) -> str:
        """The file of the projection as of a past moment (built from the log, cached)."""
        from catalog.consumers.snapshot import snapshot
        from catalog.query import cut_at_time

        log = self._log()
        ends = log.end_offsets()
        if isinstance(as_of, datetime):
            with self._live() as con:
                ends = cut_at_time(con, as_of, ends)
        else:
            ends = {p: min(end, as_of.get(p, end)) for p, end in ends.items()}
        directory = Path(self.db).parent / "snapshots"
        return str(snapshot(log, directory, ends, codec=self.codec))

    def sql(
        self,
        statement: str,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
    ) -> pa.Table:
        from catalog.query import check_read_only, read_only_sql

        check_read_only(statement)
        remote = self._delegate()
        if remote is not None:
            return remote.sql(statement, as_of=as_of, min_positions=min_positions)
        if as_of is not None:
            path = self.snapshot(as_of)
        else:
            with self._live():  # caught up (or, frozen, checked)
                pass
            path = self.db
        self._release()  # read-only connections cannot share the file with a writer
        release_held(path)  # nor with another reader of this process
        return read_only_sql(path, statement)

    # ------------------------------------------------------------- projecting

    def _projection_when_reachable(self, follow: bool, stop: Callable[[], bool] | None) -> Any:
        """:meth:`projection`; a follower whose log is unreachable as it starts (a
        broker down or restarting) waits for it with backoff, saying so, as it does
        once following (and as ``catalog serve`` does); None if ``stop()`` came first."""
        delay = 0.0
        while True:
            try:
                projection = self.projection()
            except errors.LogUnavailable as exc:
                if not follow:
                    raise
                if stop is not None and stop():
                    return None  # stopped while waiting: nothing was applied
                delay = min(10.0, delay * 2 if delay else 0.2)
                _logger.warning("event log unavailable (%s); retrying in %.1fs", exc, delay)
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not (stop is not None and stop()):
                    time.sleep(0.1)
                continue
            if delay:
                _logger.warning("event log %s is back; following again", self._log().url)
            return projection

    def consume(
        self,
        *,
        follow: bool = False,
        stop: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None,
        poll: float = 0.5,
        batch_size: int | None = None,
    ) -> int:
        """Catch the projection up with the log; with ``follow``, keep following it."""
        from catalog.consumers.projection import DEFAULT_BATCH

        size = batch_size or DEFAULT_BATCH
        if self.frozen:
            raise InvalidInput(f"{self.db} is read frozen (--frozen): it is never caught up")
        with self.session():
            try:
                projection = self._projection_when_reachable(follow, stop)
            except ServedElsewhere as served:
                self._check_same_log(served.advert)
                if follow:
                    raise InvalidInput(
                        f"{self.db} is already kept current by a catalog service (pid "
                        f"{served.advert.get('pid')}, {served.remote.where})"
                    ) from None
                # it follows the log: wait until it has applied everything there is now
                served.remote.call("positions", min_positions=self._log().end_offsets())
                served.remote.close()
                return 0
            if projection is None:  # stopped while its log was unreachable
                return 0
            applied: int  # (mypy sees catalog.consumers as Any: catalog/__init__.py)
            if follow:  # catches up first, then follows; retries while the log is unreachable
                publisher = self.publisher(projection)
                if publisher is not None:
                    publisher.start()
                try:
                    applied = projection.follow(
                        self._log(),
                        stop=stop or (lambda: False),
                        poll=poll,
                        batch_size=size,
                        progress=progress,
                    )
                finally:
                    if publisher is not None:
                        publisher.stop()
            else:
                applied = projection.catch_up(self._log(), progress=progress, batch_size=size)
            return applied

    def replay(
        self,
        *,
        until: datetime | None = None,
        to_position: int | None = None,
        into: str | None = None,
        progress: Callable[[int], None] | None = None,
        from_snapshot: bool = False,
    ) -> str:
        """Rebuild the projection from the log into a new file, then swap it in;
        ``from_snapshot``: from the newest usable snapshot and the log's tail."""
        from catalog.consumers.replay import rebuild

        self._release()
        found = api.read_advert(self.db)
        if found is not None and into is None:
            raise InvalidInput(
                f"{self.db} is held by a catalog service (pid {found.get('pid')}, "
                f"{found.get('url')}): stop it before replaying into this file, "
                "or replay --into another file"
            )
        rebuilt: str = rebuild(
            self._log(),
            self.db,
            into=into,
            until=until,
            to_position=to_position,
            codec=self.codec,
            progress=progress,
            snapshots=self.snapshots if from_snapshot else None,
        )
        return rebuilt


class ServedElsewhere(Exception):
    """The projection file is held by a catalog service of this machine (use it)."""

    def __init__(self, remote: RemoteReader, advert: Mapping[str, Any]) -> None:
        super().__init__(remote.where)
        self.remote = remote
        self.advert = advert


# ------------------------------------------------------------------- remote


class RemoteReader(Reader):
    """A catalog service over HTTP: every read is one ``GET`` (:mod:`catalog.api`).

    One keep-alive connection per thread; a connection the server closed while
    idle is retried once (reads are idempotent). A service that cannot be
    reached is :class:`~catalog.errors.ServiceUnavailable`, naming the URL.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"catalog service URL {url!r}: expected http://HOST:PORT or https://HOST[:PORT]"
            )
        self.url = url.rstrip("/")
        self.where = self.url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            # the service waits up to its own bound for min_positions: allow for it
            conn = cls(self._host, self._port, timeout=self.timeout + 15, blocksize=CHUNK)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def get(
        self,
        path: str,
        params: list[tuple[str, str]],
        accept: str = "application/json",
        method: str = "GET",
    ) -> tuple[bytes, http.client.HTTPResponse]:
        """``GET`` (or ``method``) a path of the API; the body (errors raised as the
        service's own)."""
        return self.request(method, path, params, accept=accept)

    def _target(self, path: str, params: list[tuple[str, str]]) -> str:
        target = f"{self._base}{api.PREFIX}{path}"
        return target + ("?" + urlencode(params) if params else "")

    def _headers(self, accept: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "catalog", **(extra or {})}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        *,
        body: Callable[[], Any] | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = "application/json",
        answers: tuple[int, ...] = (),
    ) -> tuple[bytes, http.client.HTTPResponse]:
        """One request to a path of the API; the body (errors raised as the service's own,
        but for the statuses in ``answers``, returned as they are).

        A connection the server closed while idle is retried once, so every
        request must be idempotent (reads are; writes are, by their event ids
        and digests). ``body`` is bytes, or a function giving a fresh file
        object for each attempt.
        """
        target = self._target(path, params)
        sent = self._headers(accept, headers)
        for attempt in (1, 2):
            conn = self._connection()
            sending: Any = body() if callable(body) else body
            try:
                conn.request(method, target, body=sending, headers=sent)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise ServiceUnavailable(self.url, _reason(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise ServiceUnavailable(self.url, _reason(exc)) from None
            finally:
                if callable(body) and hasattr(sending, "close"):  # opened for this attempt
                    sending.close()
        if response.status >= 400 and response.status not in answers:
            raise _error_from(response.status, data, self.url)
        return data, response

    def stream(
        self, path: str, params: list[tuple[str, str]], accept: str = "application/octet-stream"
    ) -> http.client.HTTPResponse:
        """``GET`` on a connection of its own, the answer left to read (a download)."""
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout + 15, blocksize=CHUNK)
        try:
            conn.request("GET", self._target(path, params), headers=self._headers(accept))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ServiceUnavailable(self.url, _reason(exc)) from None
        if response.status >= 400:
            data = response.read()
            conn.close()
            raise _error_from(response.status, data, self.url)
        return response

    def call(
        self,
        name: str,
        /,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
        **params: Any,
    ) -> Any:
        op = api.op(name)
        query = api.encode_params(params) + _common(as_of, min_positions)
        body, response = self.get(op.path, query)
        times = response.getheader(api.TIMES_HEADER) or ""
        try:
            return api.load(body, [t for t in times.split(",") if t])
        except ValueError as exc:
            raise ServiceError(self.url, f"answered {op.path} with bad JSON ({exc})") from None

    def sql(
        self,
        statement: str,
        *,
        as_of: AsOf = None,
        min_positions: Mapping[int, int] | None = None,
    ) -> pa.Table:
        import pyarrow as pa

        query = [("q", statement), ("format", "arrow"), *_common(as_of, min_positions)]
        body, _ = self.get(api.SQL_PATH, query, accept=api.SQL_FORMATS["arrow"])
        try:
            with pa.ipc.open_stream(body) as stream:
                return stream.read_all()
        except pa.ArrowInvalid as exc:
            raise ServiceError(self.url, f"answered SQL with bad Arrow data ({exc})") from None

    def publish_snapshot(self) -> dict[str, Any]:
        """Ask the service to publish a snapshot now (``POST``; the write scope)."""
        body, _ = self.get(api.SNAPSHOT_PATH, [], method="POST")
        found: dict[str, Any] = json.loads(body)
        return found

    def health(self) -> dict[str, Any]:
        """The service's identity and where it stands (``GET /api/v1/health``)."""
        body, _ = self.get(api.HEALTH_PATH, [])
        try:
            found = json.loads(body)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise ServiceError(self.url, "is not a catalog service (bad health answer)")
        return found


def _common(as_of: AsOf, min_positions: Mapping[int, int] | None) -> list[tuple[str, str]]:
    out = []
    if min_positions:
        out.append(("min_positions", api.format_offsets(min_positions)))
    if isinstance(as_of, datetime):
        out.append(("as_of", as_of.isoformat()))
    elif as_of is not None:
        out.append(("as_of", api.format_offsets(as_of)))
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `catalog serve` running there?)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    text = str(exc) or type(exc).__name__
    return text


_REBUILT: dict[type[CatalogError], type[CatalogError]] = {}


def _error_from(status: int, body: bytes, url: str) -> CatalogError:
    """The service's error as the same class here (exit codes and ``except`` clauses hold)."""
    try:
        shape = json.loads(body)
        name, message = str(shape["error"]), str(shape["message"])
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace").strip()
        return ServiceError(url, f"answered HTTP {status}: {text or 'no details'}")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, CatalogError)):
        cls = ServiceError if status >= 500 else CatalogError
    if cls not in _REBUILT:
        # the class's own __init__ wants its fields; the message is all we have
        _REBUILT[cls] = type(
            cls.__name__, (cls,), {"__str__": _message, "__module__": cls.__module__}
        )
    error = _REBUILT[cls].__new__(_REBUILT[cls])
    Exception.__init__(error, message)
    error.status = status
    return error


def _message(self: BaseException) -> str:
    return str(self.args[0]) if self.args else ""


def environment_token() -> str | None:
    """The token a client sends: ``CATALOG_TOKEN``, else the file ``CATALOG_TOKEN_FILE`` names."""
    token = os.environ.get("CATALOG_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("CATALOG_TOKEN_FILE")
    if path:
        try:
            return Path(path).expanduser().read_text().strip() or None
        except OSError as exc:
            raise InvalidInput(f"CATALOG_TOKEN_FILE {path}: {exc.strerror or exc}") from None
    return None
