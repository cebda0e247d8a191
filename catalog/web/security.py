"""Who may write, and proof that a write came from our own page.

- **CSRF.** Every browser gets a random ``catalog_session`` cookie
  (``HttpOnly``, ``SameSite=Strict``); its CSRF token is an HMAC of that
  cookie under a per-process secret. Every write — a form POST, or an API
  call — must carry the token (form field ``csrf_token`` or header
  ``X-CSRF-Token``) matching its cookie, and an ``Origin`` header, if sent,
  must name this server.
- **Tokens, by scope.** A server may be given write tokens and read tokens
  (:func:`load_tokens`: ``CATALOG_WRITE_TOKEN``, ``CATALOG_READ_TOKEN``, or a
  tokens file; never a command-line argument, which ``ps`` shows; binding a
  non-loopback address needs both). Writes — the UI's manage actions, any
  write through the API — then need a write token; with read tokens, every
  read needs a read or a write token. A token comes as ``Authorization:
  Bearer <token>`` (scripts; exempt from the CSRF check, since a browser never
  sends it on its own), or as the ``catalog_auth`` cookie that ``/login``
  sets, which records the scope. Tokens are compared in constant time.
- **Headers.** A strict Content-Security-Policy (no inline script, nothing
  from other origins), ``nosniff``, no framing, no referrer to other sites.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog import access
from catalog.access import Grant, TokenTable
from catalog.errors import Forbidden, InvalidInput, Unauthorized

SESSION_COOKIE = "catalog_session"
AUTH_COOKIE = "catalog_auth"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'self'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
}


READ_TOKEN_ENV = "CATALOG_READ_TOKEN"
WRITE_TOKEN_ENV = "CATALOG_WRITE_TOKEN"
LEGACY_TOKEN_ENV = "CATALOG_UI_TOKEN"  # a write token, as before scopes
TOKENS_FILE_ENV = "CATALOG_TOKENS_FILE"


def load_tokens(
    tokens_file: str | None = None, environ: dict[str, str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(read tokens, write tokens) from the environment and a tokens file.

    Environment: ``CATALOG_READ_TOKEN`` and ``CATALOG_WRITE_TOKEN`` (each may
    hold several, comma-separated; ``CATALOG_UI_TOKEN`` is a write token too).
    File (``tokens_file`` or ``CATALOG_TOKENS_FILE``): one ``read TOKEN`` or
    ``write TOKEN`` per line; blank lines and ``#`` comments are skipped.
    """
    env = dict(os.environ if environ is None else environ)
    read = [t for t in env.get(READ_TOKEN_ENV, "").split(",") if t.strip()]
    write = [t for t in env.get(WRITE_TOKEN_ENV, "").split(",") if t.strip()]
    write += [t for t in [env.get(LEGACY_TOKEN_ENV, "")] if t.strip()]
    path = tokens_file or env.get(TOKENS_FILE_ENV)
    if path:
        try:
            lines = Path(path).expanduser().read_text().splitlines()
        except OSError as exc:
            raise InvalidInput(f"tokens file {path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            scope, _, token = text.partition(" ")
            token = token.strip()
            if scope not in ("read", "write") or not token or " " in token:
                raise InvalidInput(
                    f"tokens file {path}, line {number}: expected 'read TOKEN' or 'write TOKEN'"
                )
            (read if scope == "read" else write).append(token)
    short = [t for t in read + write if len(t.strip()) < 16]
    if short:
        raise InvalidInput("a token must be at least 16 characters (use: openssl rand -hex 32)")
    return tuple(t.strip() for t in read), tuple(t.strip() for t in write)


_RAW_HEADERS = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS.items()]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``127.0.0.1``, ``::1``, localhost)."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """Signs and checks CSRF tokens, and the read and write tokens, for one server.

    No token at all: reads and writes are open (a loopback server; browsers
    still need their CSRF token to write). Write tokens only: reads open,
    writes need one. Read tokens too, or managed tokens (``catalog token``):
    every read needs a token. Read tokens only: a read-only server. What a
    request may do is a :class:`catalog.access.Grant` (:meth:`grant`).
    """

    def __init__(
        self,
        token: str | None = None,
        secret: bytes | None = None,
        *,
        read_tokens: tuple[str, ...] = (),
        write_tokens: tuple[str, ...] = (),
        table: TokenTable | None = None,
    ) -> None:
        self.write_tokens = tuple(t for t in (token, *write_tokens) if t)
        self.read_tokens = tuple(t for t in read_tokens if t)
        #: managed tokens (``catalog token``), re-read when their file changes
        self.table = table
        #: set for a server beyond loopback: never open, even with no token left
        self.closed = False
        #: a write token is needed to write (what the pages show)
        self.token = self.write_tokens[0] if self.write_tokens else None
        self.secret = secret or secrets.token_bytes(32)

    @property
    def managed(self) -> bool:
        return self.table is not None and bool(self.table)

    @property
    def read_required(self) -> bool:
        return bool(self.read_tokens) or self.closed or self.managed

    @property
    def writes_open(self) -> bool:
        return not (self.write_tokens or self.read_tokens or self.closed or self.managed)

    @property
    def write_required(self) -> bool:
        """Does writing need a token (what the pages show)?"""
        return bool(self.write_tokens) or self.managed

    def _sign(self, what: str) -> str:
        return hmac.new(self.secret, what.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf:" + session)

    def auth_cookie(self, scope: str | Grant = "write") -> str:
        """The ``catalog_auth`` cookie of a grant: its scope, its managed token's id
        (looked up on every request, so revoking it logs the browser out), signed."""
        grant = scope if isinstance(scope, Grant) else Grant(scope)
        token = grant.token or ""
        return f"{grant.scope}.{token}.{self._sign(f'auth:{grant.scope}:{token}')}"

    def grant_of(self, given: str) -> Grant | None:
        """What a token allows (None: no such token). The server's own tokens are
        compared in constant time; managed ones by their SHA-256."""
        found = None
        raw = given.encode()
        for scope, tokens in (("read", self.read_tokens), ("write", self.write_tokens)):
            for token in tokens:
                if hmac.compare_digest(raw, token.encode()):
                    found = scope if found != "write" else found
        if found is not None:
            return access.OPEN if found == "write" else access.READ_ALL
        return self.table.lookup(given) if self.table is not None else None

    def scope_of(self, given: str) -> str | None:
        """``"write"``, ``"read"`` or None for a token."""
        grant = self.grant_of(given)
        return grant.scope if grant is not None else None

    def check_token(self, given: str) -> bool:
        return self.grant_of(given) is not None

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def bearer(self, request: Request) -> bool:
        """Does the request carry a valid Bearer token (of either scope)?"""
        given = self._bearer(request)
        return given is not None and self.grant_of(given) is not None

    def credential(self, request: Request) -> Grant | None:
        """What this request's token (Bearer header, or ``/login``'s cookie) allows."""
        given = self._bearer(request)
        if given is not None:
            return self.grant_of(given)
        scope, _, rest = request.cookies.get(AUTH_COOKIE, "").partition(".")
        token, _, signature = rest.rpartition(".")
        if scope not in access.SCOPES or not hmac.compare_digest(
            signature, self._sign(f"auth:{scope}:{token}")
        ):
            return None
        if not token:
            return access.OPEN if scope == "write" else access.READ_ALL
        record = self.table.record(token) if self.table is not None else None
        return record.grant() if record is not None else None  # revoked: logged out

    def grant(self, request: Request) -> Grant | None:
        """What this request may do; None when reads need a token it lacks."""
        found = self.credential(request)
        if found is not None:
            return found
        if self.read_required:
            return None
        return access.OPEN if self.writes_open else access.READ_ALL

    def scope(self, request: Request) -> str | None:
        """What this request's credential allows: ``"write"``, ``"read"`` or None."""
        found = self.credential(request)
        return found.scope if found is not None else None

    def may_read(self, request: Request) -> bool:
        return self.grant(request) is not None

    def logged_in(self, request: Request) -> bool:
        """May this request write (as far as the token goes)?"""
        return self.writes_open or self.scope(request) == "write"

    def check_read(self, request: Request) -> None:
        if not self.may_read(request):
            raise Unauthorized(
                "this server needs a read or write token: log in, or send "
                "Authorization: Bearer <token> (the CLI and SDK send CATALOG_TOKEN)"
            )

    def check_write(self, request: Request, form_token: str | None = None) -> None:
        """Raise unless this request may write: token (if any), the project of its
        path (each event is checked again: catalog.access.admit), CSRF and origin."""
        project = request.path_params.get("project")
        grant = self.credential(request)
        if project is not None and grant is not None:
            grant.check_write(str(project))
        if not self.logged_in(request):
            if not self.write_tokens and not self.managed:
                raise Forbidden("this server takes no writes (it has no write token)")
            if self.scope(request) == "read":
                raise Forbidden("this token may only read; writing needs a write token")
            raise Unauthorized("this server needs its write token: log in, or send a Bearer token")
        if self._bearer(request) is not None:
            return  # not a browser's ambient credential: no CSRF risk
        self.check_csrf(request, form_token)

    def check_api_write(self, request: Request) -> None:
        """Raise unless this API request may write (events, bytes through the service).

        With tokens configured: a write token, as a Bearer header (never a
        browser's cookie). Without: a loopback server takes writes from its
        machine, but never from a page of another site (a foreign Origin); the
        write routes also take only bodies a page cannot send without asking
        (the browser's preflight, which this server never grants).
        """
        if not self.writes_open:
            given = self._bearer(request)
            grant = self.grant_of(given) if given is not None else None
            if grant is not None and grant.scope == "read":
                raise Forbidden("this token may only read; writing needs a write token")
            if grant is None:
                if not self.write_tokens and not self.managed:
                    raise Forbidden("this server takes no writes (it has no write token)")
                raise Unauthorized(
                    "this server needs its write token: send Authorization: Bearer <token> "
                    "(the CLI and SDK send CATALOG_TOKEN)"
                )
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise Forbidden(f"cross-origin write refused (Origin {origin})")

    def check_csrf(self, request: Request, form_token: str | None = None) -> None:
        """Raise unless the request carries this browser's CSRF token and no foreign Origin."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise Forbidden(f"cross-origin write refused (Origin {origin})")
        session = request.cookies.get(SESSION_COOKIE, "")
        given = form_token if form_token is not None else request.headers.get(CSRF_HEADER, "")
        if not session or not given or not hmac.compare_digest(given, self.csrf_token(session)):
            raise Forbidden(
                "missing or invalid CSRF token: reload the page and try again "
                "(API clients: GET /api/session, then send X-CSRF-Token)"
            )


def session_of(request: Request) -> str:
    """This browser's session id (set by :class:`SecurityMiddleware`)."""
    return str(request.scope.get("state", {}).get("session", ""))


class SecurityMiddleware:
    """Gives every browser a session cookie and every response the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith("/api/v1/"):
            # the query API: scripts and clients, no browser session (no CSRF: it only
            # reads); the headers are added as cheaply as possible
            async def send_api(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *_RAW_HEADERS]
                await send(message)

            await self.app(scope, receive, send_api)
            return
        request = Request(scope)
        session = request.cookies.get(SESSION_COOKIE, "")
        fresh = not (
            16 <= len(session) <= 64 and session.replace("-", "").replace("_", "").isalnum()
        )
        if fresh:
            session = secrets.token_urlsafe(24)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["session"] = session

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if fresh:
                    headers.append(
                        "set-cookie",
                        f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict",
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HostMiddleware:
    """Answers only requests whose Host is one of ``allowed_hosts`` (loopback names on a
    loopback server: no DNS rebinding). Starlette's check decides; a refusal is a 400 in
    the one error shape on ``/api/`` (its own is plain text), a plain 400 on pages."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.pages = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts)
        self.check = TrustedHostMiddleware(_host_passed, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.pages(scope, receive, send)
            return

        async def refused(message: Message) -> None:  # Starlette's answer is not sent
            pass

        scope.setdefault("state", {}).pop(_HOST_PASSED, None)
        await self.check(scope, receive, refused)
        if scope["state"].pop(_HOST_PASSED, False):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        error = InvalidInput(f"this server does not answer to the Host {host!r}")
        await JSONResponse(error.to_dict(), status_code=400)(scope, receive, send)


_HOST_PASSED = "catalog.host_passed"


async def _host_passed(scope: Scope, receive: Receive, send: Send) -> None:
    scope["state"][_HOST_PASSED] = True


#: Paths anyone may fetch even when reads need a token (to log in, and liveness).
OPEN_PATHS = ("/login", "/static/", "/favicon.ico", "/api/v1/health")


class ReadAccessMiddleware:
    """Serves every request under its grant (:func:`catalog.access.granted`). Where
    reads need a token: API requests without one get 401 (the one error shape),
    pages a redirect to the login page."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        grant = self.guard.grant(Request(scope))
        if grant is not None or path.startswith(OPEN_PATHS):
            with access.granted(grant or access.NOTHING):
                await self.app(scope, receive, send)
            return
        if path.startswith("/api/"):
            error = Unauthorized(
                "this server needs a read or write token: send Authorization: Bearer <token> "
                "(the CLI and SDK send CATALOG_TOKEN)"
            )
            response: Response = JSONResponse(error.to_dict(), status_code=401)
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            target = quote(path + ("?" + query if query else ""))
            response = RedirectResponse(f"/login?next={target}", status_code=303)
        await response(scope, receive, send)
