"""Every error the catalog raises on purpose.

::

    CatalogError                                  exit_code 1, status 500
    ├── InvalidInput (ValueError)                 exit_code 2, status 400
    │   ├── InvalidURI(uri, reason)
    │   ├── InvalidKey(key, reason)
    │   ├── InvalidTag(tag, reason)
    │   ├── InvalidLabel(label, reason)
    │   ├── InvalidPath(path, reason)
    │   ├── InvalidQuery(query, reason)           `catalog sql` refusals
    │   ├── InvalidTime(value, reason)
    │   ├── WrongType(what, value) (TypeError)   a value of a type the call cannot take
    │   ├── LimitExceeded(what, size, limit)
    │   └── EventRefused(type, subject, reason)     status 409: the projection refused it
    ├── NotFound (LookupError)                    exit_code 3, status 404
    │   ├── ArtifactNotFound(uri)
    │   ├── RunNotFound(uid)
    │   ├── BlobNotFound(digest, url)
    │   └── ObjectNotFound(url) (FileNotFoundError)  no file or object at a plain URL
    ├── IntegrityError                            exit_code 4, status 500
    │   ├── DigestMismatch(expected, actual, url)
    │   └── LogCorruption(position, reason)
    ├── EventError                                terminal for one event: dead-lettered
    │   ├── UnknownSchema(fingerprint)
    │   └── UndecodableEvent(reason)
    ├── StorageError(url, reason) (OSError)       exit_code 5, status 502
    │   └── ProjectionStorageError(path, reason)  a projection's disk full or read-only
    ├── LogError(url, reason)                     exit_code 5, status 503
    │   ├── InvalidLogURL (InvalidInput)          exit_code 2: a malformed log URL
    │   ├── LogUnavailable                        transient: retried with backoff
    │   └── ProjectionBusy(path)                  another process holds the DuckDB file
    ├── LineageSendError(target, reason)          exit_code 5, status 502: an OpenLineage target
    ├── ServiceError(url, reason)                 exit_code 5, status 502: the catalog service
    │   ├── ServiceUnavailable                    cannot be reached
    │   └── NotYetApplied(url, positions, at)     status 504: read-your-writes timed out
    └── AccessDenied                              exit_code 6
        ├── Unauthorized                          status 401: no token, or not a valid one
        └── Forbidden                             status 403: CSRF, or a read-only token

Each error keeps the offending value as an attribute, and carries an
``exit_code`` (the CLI's) and an HTTP ``status`` (the web API's), so the
boundaries map errors by attribute, never by class name.

One warning, for what was done but not all of it: ``DatasetNotDescribed``
(a ``UserWarning``), a dataset logged without its preview, schema or stats.
"""

from __future__ import annotations

from typing import Any


class CatalogError(Exception):
    """Root of every error the catalog raises on purpose."""

    exit_code = 1
    status = 500

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape used by the CLI (``--json``) and the web API."""
        return {"error": type(self).__name__, "message": str(self), "status": self.status}


# ---------------------------------------------------------------------- input


class InvalidInput(CatalogError, ValueError):
    """The caller passed something the catalog refuses; nothing was changed."""

    exit_code = 2
    status = 400


class _ValueReason(InvalidInput):
    what = "value"

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {self.what} {value!r}: {reason}")


class InvalidURI(_ValueReason):
    what = "URI"

    @property
    def uri(self) -> object:
        return self.value


class InvalidKey(_ValueReason):
    what = "key"

    @property
    def key(self) -> object:
        return self.value


class InvalidTag(_ValueReason):
    what = "tag"

    @property
    def tag(self) -> object:
        return self.value


class InvalidLabel(_ValueReason):
    what = "label"

    @property
    def label(self) -> object:
        return self.value


class InvalidPath(_ValueReason):
    what = "path"

    @property
    def path(self) -> object:
        return self.value


class InvalidQuery(_ValueReason):
    what = "query"

    @property
    def query(self) -> object:
        return self.value


class InvalidTime(_ValueReason):
    what = "time"


class WrongType(InvalidInput, TypeError):
    """A value of a type the call cannot take (``DataItem.put(123)``)."""

    def __init__(self, what: str, value: object, expected: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"{what} takes {expected}, not {type(value).__name__}: {value!r}")


class LimitExceeded(InvalidInput):
    """A size limit was exceeded (documented in docs/limits.md); ``hint`` says what to do."""

    def __init__(self, what: str, size: int, limit: int, hint: str = "") -> None:
        self.what = what
        self.size = size
        self.limit = limit
        self.hint = hint
        super().__init__(
            f"{what} is {size:,} bytes, over the limit of {limit:,} bytes"
            + (f"; {hint}" if hint else "")
        )


class EventRefused(InvalidInput):
    """An appended event the projection refused (dead-lettered): the write took no effect.

    The event stays in the log (it is append-only) and in ``dead_letters``
    with the same reason; nothing it asked for happened.
    """

    status = 409

    def __init__(self, type: str, subject: str, reason: str) -> None:
        self.type = type
        self.subject = subject
        self.reason = reason
        super().__init__(f"the catalog refused {type} of {subject}: {reason}")


# ------------------------------------------------------------------ not found


class NotFound(CatalogError, LookupError):
    exit_code = 3
    status = 404


class ArtifactNotFound(NotFound):
    def __init__(self, uri: str, reason: str = "") -> None:
        self.uri = uri
        super().__init__(f"artifact not found: {uri}" + (f" ({reason})" if reason else ""))


class RunNotFound(NotFound):
    def __init__(self, uid: str) -> None:
        self.uid = uid
        super().__init__(f"run not found: {uid}")


class BlobNotFound(NotFound):
    def __init__(self, digest: str, url: str = "") -> None:
        self.digest = digest
        self.url = url
        super().__init__(f"blob sha256:{digest} not found" + (f" at {url}" if url else ""))


class ObjectNotFound(NotFound, FileNotFoundError):
    """No file or object at a plain URL (a ``FileNotFoundError`` too)."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"no such file or object: {url}")

    def __str__(self) -> str:
        return f"no such file or object: {self.url}"


# ------------------------------------------------------------------ integrity


class IntegrityError(CatalogError):
    exit_code = 4
    status = 500


class DigestMismatch(IntegrityError):
    """Stored bytes do not hash to the digest they are stored under."""

    def __init__(self, expected: str, actual: str, url: str = "") -> None:
        self.expected = expected
        self.actual = actual
        self.url = url
        where = f" at {url}" if url else ""
        super().__init__(f"content of sha256:{expected}{where} hashes to sha256:{actual}")


class LogCorruption(IntegrityError):
    def __init__(self, position: object, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(f"corrupt log record at {position}: {reason}")


# --------------------------------------------------------------------- events


class EventError(CatalogError):
    """An event that cannot be decoded or applied: terminal for that event only."""


class UnknownSchema(EventError):
    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        super().__init__(f"unknown writer schema fingerprint {fingerprint.hex()}")


class UndecodableEvent(EventError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"undecodable event: {reason}")


# -------------------------------------------------------------- infrastructure


class StorageError(CatalogError, OSError):
    """The object store failed; no event was appended."""

    exit_code = 5
    status = 502

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        CatalogError.__init__(self, f"object store error at {url}: {reason}")

    def __str__(self) -> str:
        return f"object store error at {self.url}: {self.reason}"


class ProjectionStorageError(StorageError):
    """The disk under a projection file refused a write (full, read-only): the batch
    was not applied; a later catch-up resumes once there is room."""

    def __str__(self) -> str:
        return f"projection {self.url}: {self.reason}"


class LogError(CatalogError):
    exit_code = 5
    status = 503

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"event log {url}: {reason}")


class InvalidLogURL(LogError, InvalidInput):
    """A log URL that is malformed (scheme, broker address, topic, option): invalid
    input (exit 2), and still a :class:`LogError` for those who catch that."""

    exit_code = 2
    status = 400


class LogUnavailable(LogError):
    """Transient: the log could not be reached; callers retry with bounded backoff."""


class ProjectionBusy(LogError):
    """The DuckDB projection file is held by another process (and no service is
    advertised beside it to read through)."""

    def __init__(self, path: str, reason: str = "") -> None:
        self.path = path
        self.reason = (
            "the file is held by another process"
            + (f" ({reason})" if reason else "")
            + "; wait for it, or give this command its own projection with --db"
        )
        CatalogError.__init__(self, f"projection {path}: {self.reason}")
        self.url = path


class LineageSendError(CatalogError):
    """An OpenLineage target (``consume --openlineage``) did not take an event; the feed
    resends from its stored position."""

    exit_code = 5
    status = 502

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"OpenLineage target {target}: {reason}")


class ServiceError(CatalogError):
    """The catalog service (``CATALOG_API``) failed or answered nonsense."""

    exit_code = 5
    status = 502

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"catalog service {url}: {reason}")


class ServiceUnavailable(ServiceError):
    """The catalog service cannot be reached (down, wrong address, network)."""

    status = 503


class NotYetApplied(ServiceError):
    """A read asked to see positions the projection has not applied in time."""

    status = 504

    def __init__(self, url: str, wanted: str, at: str, timeout: float) -> None:
        self.wanted = wanted
        self.at = at
        self.timeout = timeout
        super().__init__(
            url,
            f"has not applied position(s) {wanted} within {timeout:g} s "
            f"(it stands at {at or 'the start'}); is it following the same log?",
        )


class AccessDenied(CatalogError):
    """A request without the token its scope needs (read or write)."""

    exit_code = 6
    status = 401


class Unauthorized(AccessDenied):
    """A request without the token its scope needs."""

    status = 401


class Forbidden(AccessDenied):
    """A write without a valid CSRF token (or from another origin), or with a token
    whose scope does not allow it."""

    status = 403


# -------------------------------------------------------------------- warnings


class DatasetNotDescribed(UserWarning):
    """A dataset was logged without (some of) its preview, schema or stats; the
    message says why (its content does not read as its format, or is too big)."""
