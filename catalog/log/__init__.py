"""Event log backends, chosen by URL scheme: ``file://`` (embedded) or ``kafka://``."""

from __future__ import annotations

from catalog.errors import InvalidLogURL, LogError
from catalog.log.base import EventLog, Message, Offsets, Position, Record, is_behind

__all__ = ["EventLog", "Message", "Offsets", "Position", "Record", "is_behind", "open_log"]


def open_log(url: str) -> EventLog:
    """The log at ``url``: ``file://PATH`` (or a plain path) or ``kafka://HOST:PORT[,...]/TOPIC``."""
    if url.startswith("kafka://"):
        try:
            from catalog.log.kafka import KafkaLog
        except ImportError as exc:  # pragma: no cover - kafka-python is a dependency
            raise LogError(url, f"the Kafka backend is unavailable: {exc}") from exc
        kafka_log: EventLog = KafkaLog(url)
        return kafka_log
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise InvalidLogURL(url, f"unknown log scheme {scheme!r}; use file:// or kafka://")
    from catalog.log.file import FileLog

    return FileLog(url)
