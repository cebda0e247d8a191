"""The headers of a log record: what a router or a tool may read without decoding.

Every record carries two headers of the catalog's own:

- ``type``: the payload's record name (``ArtifactLogged``);
- ``schema``: the CRC-64-AVRO fingerprint of the writer schema, as 16 hex
  digits (the 8 bytes of the single-object encoding's header, whatever the
  framing on the wire). Text, as every header here: the CloudEvents SDKs read
  every header of a record as UTF-8. (Records written before issue 20 carry
  the 8 raw bytes.)

A Kafka record also carries the CloudEvents 1.0 *binary content mode*
attributes of the Kafka protocol binding (``ce_`` prefixed headers, the value
being the event data as is), so that CloudEvents-aware buses and SDKs route and
read it without a catalog decoder:

============== ===============================================================
``ce_specversion``  ``1.0``
``ce_id``           the event's ``event_id`` (with ``ce_source``: unique)
``ce_source``       ``/catalog/<project>`` (a URI reference: the project)
``ce_type``         ``catalog.<payload record>``, the Avro full name
                    (``catalog.ArtifactLogged``)
``ce_time``         ``occurred_at``, RFC 3339 in UTC with microseconds
``ce_subject``      ``<project>/<key>``: the Kafka message key
``content-type``    ``application/avro``: the data is Avro binary, framed
                    single-object (``C3 01``) or for a schema registry
                    (``00``), as its first byte says (catalog/log/registry.py)
============== ===============================================================

The embedded log does not carry the ``ce_`` headers (they are a Kafka
binding, and would double the size of a small record there).
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import quote

from catalog.events.model import CatalogEvent

__all__ = [
    "CE_PREFIX",
    "CONTENT_TYPE",
    "SCHEMA_HEADER",
    "SPECVERSION",
    "TYPE_HEADER",
    "TYPE_NAMESPACE",
    "headers_for",
]

TYPE_HEADER = "type"
SCHEMA_HEADER = "schema"
#: The Kafka protocol binding's prefix of CloudEvents attributes in binary mode.
CE_PREFIX = "ce_"
SPECVERSION = "1.0"
#: The Avro namespace of the payload records: ``ce_type`` is their full name.
TYPE_NAMESPACE = "catalog"
#: The media type of the record value (``datacontenttype``), in either framing.
CONTENT_TYPE = "application/avro"

_SPECVERSION = SPECVERSION.encode()
_CONTENT_TYPE = CONTENT_TYPE.encode()


def source_of(project: str) -> str:
    """The ``ce_source`` of a project's events (a URI reference)."""
    return f"/catalog/{quote(project, safe='')}"


def headers_for(
    event: CatalogEvent, fingerprint: bytes, *, cloudevents: bool
) -> tuple[tuple[str, bytes], ...]:
    """The headers of ``event``'s record: ours, and with ``cloudevents`` the ``ce_`` ones."""
    kind = event.type
    ours = ((TYPE_HEADER, kind.encode()), (SCHEMA_HEADER, fingerprint.hex().encode()))
    if not cloudevents:
        return ours
    at = event.occurred_at
    when = (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        *ours,
        (CE_PREFIX + "specversion", _SPECVERSION),
        (CE_PREFIX + "id", event.event_id.encode()),
        (CE_PREFIX + "source", source_of(event.project).encode()),
        (CE_PREFIX + "type", f"{TYPE_NAMESPACE}.{kind}".encode()),
        (CE_PREFIX + "time", when.encode()),
        (CE_PREFIX + "subject", event.partition_key.encode()),
        ("content-type", _CONTENT_TYPE),
    )
