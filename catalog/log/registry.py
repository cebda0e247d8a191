"""Schema-registry framing on the Kafka log: an option, ``?registry=URL``.

One Avro body, two framings, told apart by the first byte::

    single-object (the default; the Avro spec's, catalog/events/codec.py)
        C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema, little-endian | body
    schema registry (Confluent's wire format: AvroConverter, Flink's avro-confluent,
    ksqlDB, Spark's from_avro with an ABRiS/registry config, kafka-ui, ...)
        00    | 4-byte big-endian schema id, assigned by the registry              | body

A log opened with ``registry=URL`` (or the ``schema_registry`` setting,
``CATALOG_SCHEMA_REGISTRY``) frames what it appends for the registry: the
writer schema is registered once per process under the subject
``<topic>-value`` (TopicNameStrategy) with ``POST
/subjects/<subject>/versions``, and every value then starts ``00`` + its id.
The registry cannot be reached, or refuses the schema: the append fails with
:class:`~catalog.errors.LogUnavailable` (or :class:`~catalog.errors.LogError`)
before anything is sent, so nothing is appended.

Every Kafka reader with a registry accepts both framings on one topic. A
registry-framed value is turned back into the single-object form the decoders
take (so a reader gets back exactly what the writer appended): its schema id is
looked up once (``GET /schemas/ids/<id>``) and accepted only if the schema's
parsing canonical form is one of the envelope schemas this catalog ships (its
fingerprint is one of theirs); otherwise the record is marked damaged with the
reason, and the projection dead-letters it. A reader without a registry passes
values through as they are (the log's contract: bytes in, the same bytes out);
the codec then refuses a registry-framed one, saying that a registry is needed,
and it is dead-lettered. A registry that cannot be reached while reading is transient
(:class:`~catalog.errors.LogUnavailable`): a follower retries, nothing is
dead-lettered for it.

Credentials come only from the environment and are never in a URL, an error
or a log line: ``CATALOG_SCHEMA_REGISTRY_TOKEN`` (``Authorization: Bearer``)
or ``CATALOG_SCHEMA_REGISTRY_USER_INFO`` (``user:password``, HTTP basic auth,
as Confluent's ``basic.auth.user.info``). A registry URL with a user or
password in it is refused.

Only the Confluent REST API's documented endpoints above are used.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from catalog.errors import LogError, LogUnavailable
from catalog.events.codec import (
    HEADER_SIZE,
    MAGIC,
    REGISTRY_HEADER_SIZE,
    REGISTRY_MAGIC,
    Codec,
    default_codec,
    fingerprint,
)
from catalog.log.base import Message, Record

__all__ = [
    "ENV_TOKEN",
    "ENV_USER_INFO",
    "ID_SIZE",
    "MEDIA_TYPE",
    "Framing",
    "SchemaRegistry",
    "check_registry_url",
    "redacted",
    "registry_framed",
    "schema_id",
    "subject_for",
]

#: The bytes of the schema id after REGISTRY_MAGIC (big-endian); the framing's
#: constants are the codec's (catalog/events/codec.py), with the single-object ones.
ID_SIZE = REGISTRY_HEADER_SIZE - len(REGISTRY_MAGIC)
_PREFIX_SIZE = REGISTRY_HEADER_SIZE
_ZERO = REGISTRY_MAGIC

#: The Confluent Schema Registry's media type, for requests and answers.
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
ENV_TOKEN = "CATALOG_SCHEMA_REGISTRY_TOKEN"
ENV_USER_INFO = "CATALOG_SCHEMA_REGISTRY_USER_INFO"


def subject_for(topic: str) -> str:
    """The subject of a topic's value schemas (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


def registry_framed(value: bytes) -> bool:
    """Whether ``value`` is in the registry framing (by its first byte)."""
    return value[:1] == REGISTRY_MAGIC


def schema_id(value: bytes) -> int:
    """The schema id of a registry-framed ``value``."""
    return int.from_bytes(value[1:_PREFIX_SIZE], "big")


_USERINFO = re.compile(r"(https?://)[^/@?#\s]*@", re.IGNORECASE)


def redacted(text: str) -> str:
    """``text`` with the user and password of any http(s) URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


def check_registry_url(url: str) -> str:
    """``url`` if it is an http(s) URL without credentials; else ValueError with why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a schema registry is an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"credentials do not go in the URL: set {ENV_TOKEN} or {ENV_USER_INFO} instead"
        )
    return url.rstrip("/")


class SchemaRegistry:
    """A client of the two Confluent Schema Registry endpoints the log uses.

    Errors name the registry URL and its answer, never the credentials. Transport
    failures and 5xx answers are :class:`LogUnavailable` (transient); other
    refusals :class:`LogError`.
    """

    def __init__(self, url: str, *, log_url: str, timeout: float) -> None:
        self.url = check_registry_url(url)
        self.log_url = log_url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SchemaRegistry({self.url!r})"

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (Avro, JSON text) under ``subject``; its global id.

        Registering a schema the subject already has answers its existing id.
        """
        found = self._request(
            "POST", f"/subjects/{quote(subject, safe='')}/versions", {"schema": schema}
        )
        if found is None or not isinstance(found.get("id"), int):
            raise LogError(self.log_url, f"schema registry {self.url}: no id in its answer")
        return int(found["id"])

    def schema(self, ident: int) -> str | None:
        """The schema (JSON text) with id ``ident``; None if the registry has none."""
        found = self._request("GET", f"/schemas/ids/{ident}", None)
        if found is None:
            return None
        text = found.get("schema")
        if not isinstance(text, str):
            raise LogError(self.log_url, f"schema registry {self.url}: no schema in its answer")
        if found.get("schemaType", "AVRO") != "AVRO":
            return None
        return text

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE}
        token = os.environ.get(ENV_TOKEN)
        user_info = os.environ.get(ENV_USER_INFO)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user_info:
            encoded = base64.b64encode(user_info.encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
        return headers

    def _request(self, method: str, path: str, body: Any) -> dict[str, Any] | None:
        """The JSON object answered; None for a 404. Raises LogError/LogUnavailable."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self._headers()
        )
        where = f"schema registry {self.url}: {method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_message(exc)
            exc.close()
            if exc.code == 404:
                return None
            kind = LogUnavailable if exc.code >= 500 or exc.code == 429 else LogError
            raise kind(self.log_url, f"{where} answered {exc.code}{detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LogUnavailable(self.log_url, f"{where} failed: {reason}") from None
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise LogError(self.log_url, f"{where} answered something not a JSON object")
        return found


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The registry's own message of an error answer (``{"error_code", "message"}``)."""
    try:
        found = json.loads(exc.read(4096))
    except (ValueError, OSError):
        return ""
    if isinstance(found, dict) and isinstance(found.get("message"), str):
        return f" ({found.get('error_code', '')}: {found['message'][:300]})"
    return ""


class Framing:
    """Both framings for one Kafka log: frame what it appends, unframe what it reads.

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
