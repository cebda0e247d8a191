"""Event log backends, chosen by URL scheme: ``file://`` (embedded) or ``kafka://``."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

from catalog.errors import InvalidLogURL, LogError
from catalog.log.base import (
    EventLog,
    Framing,
    FramingFactory,
    Message,
    Offsets,
    Position,
    Record,
    is_behind,
)

__all__ = [
    "EventLog",
    "Framing",
    "FramingFactory",
    "Message",
    "Offsets",
    "Position",
    "Record",
    "carries_cloudevents",
    "is_behind",
    "open_log",
    "with_registry",
]


def carries_cloudevents(url: str) -> bool:
    """Whether records on the log at ``url`` carry the CloudEvents headers (Kafka's do:
    catalog/events/headers.py)."""
    return url.startswith("kafka://")


def open_log(url: str, *, framing: FramingFactory | None = None) -> EventLog:
    """The log at ``url``: ``file://PATH`` (or a plain path) or ``kafka://HOST:PORT[,...]/TOPIC``.

    ``framing`` frames values for a schema registry when a Kafka URL names one
    (``registry=``): the catalog's writer and service pass
    :func:`catalog.events.framing.registry_framing`.
    """
    if url.startswith("kafka://"):
        try:
            from catalog.log.kafka import KafkaLog
        except ImportError as exc:  # pragma: no cover - kafka-python is a dependency
            raise LogError(url, f"the Kafka backend is unavailable: {exc}") from exc
        kafka_log: EventLog = KafkaLog(url, framing=framing)
        return kafka_log
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise InvalidLogURL(url, f"unknown log scheme {scheme!r}; use file:// or kafka://")
    from catalog.log.file import FileLog

    return FileLog(url)


def with_registry(url: str, registry: str) -> str:
    """A ``kafka://`` ``url`` with ``registry=`` added when it names none (the
    ``schema_registry`` setting); any other log's URL as it is."""
    if not url.startswith("kafka://") or not registry:
        return url
    query = urlsplit(url).query
    if any(name == "registry" for name, _ in parse_qsl(query, keep_blank_values=True)):
        return url
    sep = "" if url.endswith("?") else ("&" if query else "?")
    return f"{url}{sep}registry={quote(registry, safe=':/')}"
