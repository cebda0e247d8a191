"""The schema registry's HTTP client, for a Kafka log with ``?registry=URL``.

The framing itself (which schema an id names, whether the catalog ships it)
is the events' (catalog/events/framing.py), handed to the log by whoever
opens it (:func:`catalog.log.open_log`'s ``framing``): the log moves bytes
and positions, and knows no schema. Here: the registry's two documented
endpoints of the Confluent REST API (``POST /subjects/<subject>/versions``,
``GET /schemas/ids/<id>``), its credentials and the rules of its URL.

Credentials come only from the environment and are never in a URL, an error
or a log line: ``CATALOG_SCHEMA_REGISTRY_TOKEN`` (``Authorization: Bearer``)
or ``CATALOG_SCHEMA_REGISTRY_USER_INFO`` (``user:password``, HTTP basic auth,
as Confluent's ``basic.auth.user.info``). A registry URL with a user or
password in it is refused.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from catalog.errors import LogError, LogUnavailable

__all__ = [
    "ENV_TOKEN",
    "ENV_USER_INFO",
    "MEDIA_TYPE",
    "SchemaRegistry",
    "check_registry_url",
    "redacted",
    "subject_for",
]

#: The Confluent Schema Registry's media type, for requests and answers.
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
ENV_TOKEN = "CATALOG_SCHEMA_REGISTRY_TOKEN"
ENV_USER_INFO = "CATALOG_SCHEMA_REGISTRY_USER_INFO"


def subject_for(topic: str) -> str:
    """The subject of a topic's value schemas (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


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
