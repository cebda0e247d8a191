"""Who may write, and proof that a write came from our own page.

- **CSRF.** Every browser gets a random ``catalog_session`` cookie
  (``HttpOnly``, ``SameSite=Strict``); its CSRF token is an HMAC of that
  cookie under a per-process secret. Every write — a form POST, or an API
  call — must carry the token (form field ``csrf_token`` or header
  ``X-CSRF-Token``) matching its cookie, and an ``Origin`` header, if sent,
  must name this server.
- **Write token.** When the server is given a token (``--token`` or
  ``CATALOG_UI_TOKEN``; required to bind a non-loopback address), writes
  also need it: ``Authorization: Bearer <token>`` (scripts; exempt from the
  CSRF check, since a browser never sends it on its own), or the
  ``catalog_auth`` cookie that ``/login`` sets.
- **Headers.** A strict Content-Security-Policy (no inline script, nothing
  from other origins), ``nosniff``, no framing, no referrer to other sites.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.errors import CatalogError

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


class Forbidden(CatalogError):
    """A write without a valid CSRF token (or from another origin)."""

    status = 403


class Unauthorized(CatalogError):
    """A write without the server's write token."""

    status = 401


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
    """Signs and checks CSRF tokens and the write token for one server process."""

    def __init__(self, token: str | None = None, secret: bytes | None = None) -> None:
        self.token = token or None
        self.secret = secret or secrets.token_bytes(32)

    def _sign(self, what: str) -> str:
        return hmac.new(self.secret, what.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf:" + session)

    def auth_cookie(self) -> str:
        return self._sign("auth:" + (self.token or ""))

    def check_token(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.check_token(value.strip())

    def logged_in(self, request: Request) -> bool:
        """May this request write (as far as the token goes)?"""
        if self.token is None:
            return True
        if self.bearer(request):
            return True
        cookie = request.cookies.get(AUTH_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, self.auth_cookie())

    def check_write(self, request: Request, form_token: str | None = None) -> None:
        """Raise unless this request may write: token (if any), then CSRF and origin."""
        if not self.logged_in(request):
            raise Unauthorized("this server needs its write token: log in, or send a Bearer token")
        if self.bearer(request):
            return  # not a browser's ambient credential: no CSRF risk
        self.check_csrf(request, form_token)

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
