"""OpenLineage live: runs sent to an OpenLineage endpoint or topic as they start and finish.

``catalog consume --openlineage TARGET [--follow]``. The events are the ones
``catalog export-lineage`` writes (:mod:`catalog.openlineage`); they are sent
through the ``openlineage-python`` client's own transports (the ``openlineage``
extra: ``pip install -e '.[openlineage]'``), not HTTP or Kafka code of ours:

- ``http://…`` / ``https://…``: its ``HttpTransport`` (Marquez and other
  OpenLineage servers). A URL with no path posts to ``/api/v1/lineage``, the
  OpenLineage API's; a URL with a path posts there. An API key, if the
  endpoint wants one, comes from ``OPENLINEAGE_API_KEY`` (OpenLineage's own
  variable), sent as a bearer token; never from the URL or a log line.
- ``kafka://HOST:PORT[,HOST:PORT]/TOPIC``: its ``KafkaTransport`` (librdkafka,
  through ``confluent-kafka``), each event flushed before the next; key
  ``run:<namespace>/<job>``, so a run's events keep their order.

What is sent, by the events applied since the feed's stored position: a
``RunStarted`` sends the run's ``START``; a ``RunFinished`` its ``COMPLETE``,
``FAIL`` or ``ABORT`` (with its outputs); an artifact logged outside runs with
lineage sources its synthetic run's ``START`` and ``COMPLETE``.

**At least once, resumable.** The feed stores its position (the projection's
positions it has sent everything up to, and the log's id) in
``<db dir>/openlineage/<hash of TARGET>.json``, written atomically after the
events of a round are accepted. A crash or a refused send resends from the
stored position: a consumer may see an event twice (the OpenLineage model
identifies a run by ``runId`` and an event by its type and time, so Marquez
merges the repeat), never miss one. A position of another log (a re-created
topic) is dropped: the feed starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from catalog.errors import InvalidInput, LineageSendError, LogUnavailable
from catalog.openlineage import run_events, run_id_of, synthetic_run_id

if TYPE_CHECKING:  # pragma: no cover
    from catalog.client import Catalog

__all__ = ["DEFAULT_ENDPOINT", "LineageFeed", "send", "transport_for"]

#: Where an OpenLineage HTTP server takes events (the OpenLineage API's path).
DEFAULT_ENDPOINT = "api/v1/lineage"
API_KEY_ENV = "OPENLINEAGE_API_KEY"


def transport_for(target: str, timeout: float = 10.0) -> Any:
    """The openlineage-python transport that sends to ``target``."""
    parts = urlsplit(target)
    try:
        if parts.scheme in ("http", "https"):
            from openlineage.client.transport.http import (
                ApiKeyTokenProvider,
                HttpConfig,
                HttpTransport,
            )

            if not parts.hostname or parts.username or parts.password:
                raise InvalidInput(
                    f"--openlineage {parts.scheme}://…: a host, and no credentials in the URL "
                    f"(set {API_KEY_ENV})"
                )
            path = parts.path.strip("/")
            key = os.environ.get(API_KEY_ENV)
            config = HttpConfig(
                url=f"{parts.scheme}://{parts.netloc}",
                endpoint=path or DEFAULT_ENDPOINT,
                timeout=timeout,
            )
            if key:
                config.auth = ApiKeyTokenProvider({"apiKey": key})
            if parts.query:
                config.endpoint += f"?{parts.query}"
            return HttpTransport(config)
        if parts.scheme == "kafka":
            from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

            topic = parts.path.strip("/")
            if not parts.netloc or not topic:
                raise InvalidInput("--openlineage kafka://HOST:PORT[,HOST:PORT]/TOPIC")
            return KafkaTransport(
                KafkaConfig(
                    config={
                        "bootstrap.servers": parts.netloc,
                        "message.timeout.ms": str(int(timeout * 1000)),
                    },
                    topic=topic,
                    flush=True,
                )
            )
    except ImportError as exc:
        from catalog.about import install_hint

        raise InvalidInput(
            f"sending OpenLineage events needs {exc.name}: {install_hint('openlineage')}"
        ) from None
    raise InvalidInput(
        f"--openlineage {target!r}: an http(s):// OpenLineage endpoint or kafka://HOST:PORT/TOPIC"
    )


class LineageFeed:
    """Sends the OpenLineage events of what a catalog applied since the stored position."""

    def __init__(self, catalog: Catalog, target: str, *, transport: Any = None) -> None:
        self.catalog = catalog
        self.target = target
        self.transport = transport if transport is not None else transport_for(target)
        digest = hashlib.sha256(target.encode()).hexdigest()[:16]
        self.state = Path(catalog.config.db).expanduser().parent / "openlineage" / f"{digest}.json"
        #: events sent by this feed (this process)
        self.sent = 0

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------ position

    def _log_id(self) -> str | None:
        try:
            return self.catalog.log.log_id
        except InvalidInput:  # reads through a service, no log of its own
            return None

    def stored(self) -> dict[int, int]:
        """The positions everything before which was sent (empty: nothing yet)."""
        try:
            found = json.loads(self.state.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        log_id = self._log_id()
        if not isinstance(found, dict) or (log_id and found.get("log_id") not in (None, log_id)):
            return {}
        return {int(p): int(o) for p, o in (found.get("positions") or {}).items()}

    def _store(self, positions: Mapping[int, int]) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        body = {
            "target": self.target,
            "log_id": self._log_id(),
            "positions": {str(p): o for p, o in sorted(positions.items())},
        }
        tmp.write_text(json.dumps(body, indent=2), "utf-8")
        os.replace(tmp, self.state)

    # --------------------------------------------------------------- rounds

    def run_once(self) -> int:
        """Send what was applied since the stored position; events sent."""
        start = self.stored()
        end = self.catalog.positions()
        if all(end.get(p, 0) <= start.get(p, 0) for p in end):
            return 0
        events = list(self._events_between(start, end))
        for event in events:
            self._send(event)
        self._store(end)
        self.sent += len(events)
        return len(events)

    def follow(self, stop: Callable[[], bool], poll: float = 0.5, max_backoff: float = 30.0) -> int:
        """Rounds until ``stop()``; a target or log down is retried with backoff."""
        delay = 0.0
        sent = 0
        while True:
            try:
                sent += self.run_once()
                delay = 0.0
            except (LineageSendError, LogUnavailable) as exc:
                delay = min(max_backoff, delay * 2 if delay else 0.5)
                _warn(f"OpenLineage feed to {self.target}: {exc}; retrying in {delay:.1f}s")
            if stop():
                return sent
            _sleep_unless(stop, delay or poll)

    def _send(self, event: dict[str, Any]) -> None:
        if hasattr(self.transport, "message_key"):  # Kafka: a run's events in one partition
            self.transport.message_key = f"run:{event['job']['namespace']}/{event['job']['name']}"
        try:
            self.transport.emit(event)
        except Exception as exc:  # the transports raise their clients' errors
            raise LineageSendError(
                self.target, f"an event was not taken ({type(exc).__name__}: {exc})"
            ) from exc

    def _events_between(
        self, start: Mapping[int, int], end: Mapping[int, int]
    ) -> Iterator[dict[str, Any]]:
        ranges = " OR ".join(
            f'("partition" = {int(p)} AND "offset" >= {int(start.get(p, 0))} '
            f'AND "offset" < {int(o)})'
            for p, o in sorted(end.items())
            if o > start.get(p, 0)
        )
        rows = self.catalog.sql(
            "SELECT type, project, key, payload->>'uid' AS uid FROM events "
            "WHERE type IN ('RunStarted', 'RunFinished', 'ArtifactLogged') "
            f'AND ({ranges}) ORDER BY "partition", "offset"'
        ).to_pylist()
        started = {run_id_of(r["key"]) for r in rows if r["type"] == "RunStarted"}
        finished = {run_id_of(r["key"]) for r in rows if r["type"] == "RunFinished"}
        logged = {
            synthetic_run_id(r["project"], r["uid"])
            for r in rows
            if r["type"] == "ArtifactLogged" and r["uid"]
        }
        if not (started or finished or logged):
            return
        for event in run_events(self.catalog):
            run = event["run"]["runId"]
            kind = event["eventType"]
            if (
                (run in started and kind == "START")
                or (run in finished and kind != "START")
                or run in logged
            ):
                yield event


def _warn(message: str) -> None:
    import logging

    logging.getLogger(__name__).warning("%s", message)


def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, remaining))


def send(
    catalog: Catalog,
    target: str,
    *,
    follow: bool = False,
    stop: Callable[[], bool] | None = None,
    poll: float = 0.5,
) -> int:
    """Send the OpenLineage events of ``catalog``'s runs (as ``export-lineage`` writes
    them) to an OpenLineage HTTP endpoint or ``kafka://`` topic, from the feed's stored
    position on (at least once); with ``follow``, keep sending as runs start and finish
    until ``stop()``. Events sent (``catalog consume --openlineage``)."""
    feed = LineageFeed(catalog, target)
    try:
        if follow:
            return feed.follow(stop or (lambda: False), poll=poll)
        return feed.run_once()
    finally:
        feed.close()
