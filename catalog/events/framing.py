"""Schema-registry framing of the catalog's events on a Kafka log (``?registry=URL``).

One Avro body, two framings, told apart by the first byte::

    single-object (the default; the Avro spec's, catalog/events/codec.py)
        C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema, little-endian | body
    schema registry (Confluent's wire format: AvroConverter, Flink's avro-confluent,
    ksqlDB, Spark's from_avro with an ABRiS/registry config, kafka-ui, ...)
        00    | 4-byte big-endian schema id, assigned by the registry              | body

A log opened with ``registry=URL`` by the catalog (its writer, ``catalog
serve``: they pass :func:`registry_framing` to :func:`catalog.log.open_log`)
frames what it appends for the registry: the writer schema is registered once
per process under the subject ``<topic>-value`` (TopicNameStrategy), and every
value then starts ``00`` + its id. The registry cannot be reached, or refuses
the schema: the append fails before anything is sent, so nothing is appended.

Reading, a registry-framed value is turned back into the single-object form
the decoders take: its schema id is looked up once and accepted only if the
schema's parsing canonical form is one of the envelope schemas this catalog
ships (its fingerprint is one of theirs); otherwise the record is marked
damaged with the reason, and the projection dead-letters it. The registry's
HTTP client, its credentials and its URL rules are the log's
(:mod:`catalog.log.registry`): the log moves bytes; this module knows the schemas.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from catalog.errors import LogError
from catalog.events.codec import (
    HEADER_SIZE,
    MAGIC,
    REGISTRY_HEADER_SIZE,
    REGISTRY_MAGIC,
    Codec,
    default_codec,
    fingerprint,
)
from catalog.log import Message, Record
from catalog.log.registry import SchemaRegistry, subject_for

__all__ = ["ID_SIZE", "RegistryFraming", "registry_framing", "schema_id"]

#: The bytes of the schema id after REGISTRY_MAGIC (big-endian).
ID_SIZE = REGISTRY_HEADER_SIZE - len(REGISTRY_MAGIC)
_PREFIX_SIZE = REGISTRY_HEADER_SIZE
_ZERO = REGISTRY_MAGIC


def schema_id(value: bytes) -> int:
    """The schema id of a registry-framed ``value``."""
    return int.from_bytes(value[1:_PREFIX_SIZE], "big")


def registry_framing(log_url: str, topic: str, registry: str, timeout: float) -> RegistryFraming:
    """The framing of a Kafka log whose URL names a registry (what
    :func:`catalog.log.open_log` takes as ``framing``)."""
    return RegistryFraming(log_url, topic, registry, timeout=timeout)


class RegistryFraming:
    """Both framings for one Kafka log: frame what it appends, unframe what it reads.

    The log calls it (:class:`catalog.log.Framing`) without knowing why: which
    schema an id names, and whether the catalog ships it, is known here.
    With no registry (``registry`` None) both are the identity.
    """

    def __init__(
        self,
        log_url: str,
        topic: str,
        registry: str | None,
        *,
        timeout: float,
        codec: Codec | None = None,
    ) -> None:
        self.log_url = log_url
        self.subject = subject_for(topic)
        self.registry = (
            SchemaRegistry(registry, log_url=log_url, timeout=timeout) if registry else None
        )
        self._codec = codec
        self._lock = threading.Lock()
        #: writer schema fingerprint -> the id registered for it (this process)
        self._ids: dict[bytes, int] = {}
        #: schema id -> the fingerprint of a shipped schema, or the reason it is refused
        self._known: dict[int, bytes | str] = {}

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = default_codec()
        return self._codec

    # ----------------------------------------------------------------- write

    def frame(self, messages: Sequence[Message]) -> Sequence[Message]:
        """``messages`` in the registry framing (each schema registered first)."""
        if self.registry is None:
            return messages
        out = []
        for m in messages:
            value = m.value
            if value[:2] != MAGIC or len(value) < HEADER_SIZE:
                out.append(m)  # not ours to frame: appended as given
                continue
            ident = self._id_for(bytes(value[2:HEADER_SIZE]))
            prefix = _ZERO + ident.to_bytes(ID_SIZE, "big")
            out.append(Message(m.key, prefix + value[HEADER_SIZE:], m.headers))
        return out

    def _id_for(self, fp: bytes) -> int:
        with self._lock:
            found = self._ids.get(fp)
            if found is not None:
                return found
            assert self.registry is not None
            version = next((v for v in self.codec.versions if v.fingerprint == fp), None)
            if version is None:
                raise LogError(
                    self.log_url, f"no shipped schema has the fingerprint {fp.hex()} to register"
                )
            ident = self.registry.register(self.subject, json.dumps(version.schema))
            if not 0 <= ident < 1 << (8 * ID_SIZE):
                raise LogError(
                    self.log_url, f"schema registry {self.registry.url}: id {ident} out of range"
                )
            self._ids[fp] = ident
            self._known.setdefault(ident, fp)
            return ident

    # ------------------------------------------------------------------ read

    def unframe(self, records: list[Record]) -> list[Record]:
        """``records`` with every registry-framed value in the single-object framing.

        A value whose schema is not one of ours (or cannot be looked up: no
        registry) comes back marked with the reason (``Record.error``).
        """
        if self.registry is None or not any(r.value[:1] == _ZERO for r in records):
            return records
        out = []
        for r in records:
            value = r.value
            if value[:1] != _ZERO or r.error is not None:
                out.append(r)
                continue
            if len(value) < _PREFIX_SIZE:
                found: bytes | str = f"{len(value)} bytes is shorter than the 5-byte header"
            else:
                found = self._fingerprint_of(schema_id(value))
            if isinstance(found, str):
                out.append(_marked(r, found))
            else:
                single = MAGIC + found + value[_PREFIX_SIZE:]
                out.append(
                    Record.make(r.partition, r.offset, r.key, single, r.timestamp_ms, r.headers)
                )
        return out

    def _fingerprint_of(self, ident: int) -> bytes | str:
        with self._lock:
            found = self._known.get(ident)
            if found is not None:
                return found
            assert self.registry is not None
            text = self.registry.schema(ident)  # LogUnavailable: not cached, retried
            found = self._judge(ident, text)
            self._known[ident] = found
            return found

    def _judge(self, ident: int, text: str | None) -> bytes | str:
        """The fingerprint of schema ``ident`` if we ship it; else why not."""
        assert self.registry is not None
        where = f"schema id {ident} of {self.registry.url}"
        if text is None:
            return f"{where}: no such Avro schema in the registry"
        try:
            fp = fingerprint(json.loads(text))
        except Exception as exc:  # whatever the text, a reason rather than a crash
            return f"{where}: not a schema we can parse ({type(exc).__name__})"
        if all(v.fingerprint != fp for v in self.codec.versions):
            return f"{where}: not an envelope schema this catalog ships (fingerprint {fp.hex()})"
        return fp


def _marked(record: Record, reason: str) -> Record:
    return Record.make(
        record.partition,
        record.offset,
        record.key,
        record.value,
        record.timestamp_ms,
        record.headers,
        error=reason,
    )
