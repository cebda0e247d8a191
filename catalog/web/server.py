"""Serving the UI: ``catalog ui`` and tests call :func:`serve` / :class:`Server`.

The server reads through a Catalog of its own whose projection file is not
the CLI's (DESIGN.md: a long-running process owns its projection file): by
default ``ui.duckdb`` next to the default projection. Before listening it
catches that projection up with the log, so the first page is quick; after
that every request catches up with whatever was appended meanwhile.

It binds to loopback by default. Binding any other address needs a write
token (``--token`` or ``CATALOG_UI_TOKEN``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from catalog.client import Catalog
from catalog.config import Config
from catalog.errors import InvalidInput
from catalog.web.app import create_app
from catalog.web.security import LOOPBACK_NAMES, is_loopback

TOKEN_ENV = "CATALOG_UI_TOKEN"
DEFAULT_PORT = 8765


def default_db(config: Config) -> str:
    """The UI's own projection file: ``ui.duckdb`` beside the CLI's (never the same file)."""
    cli_db = Path(config.db)
    path = cli_db.with_name("ui.duckdb")
    if path == cli_db:
        path = cli_db.with_name("ui-server.duckdb")
    return str(path)


def allowed_hosts(host: str) -> list[str]:
    """Host header names accepted: loopback names on loopback (no DNS rebinding), else any."""
    return [*LOOPBACK_NAMES, host] if is_loopback(host) else ["*"]


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise InvalidInput(
            f"binding to {host} lets other machines reach the catalog: give a write token "
            f"with --token or {TOKEN_ENV} (reads stay open; put a proxy in front to restrict them)"
        )


def make_catalog(
    *, log: str | None = None, db: str | None = None, project: str | None = None
) -> Catalog:
    config = Config.load()
    return Catalog(log=log, db=db or default_db(config), project=project, config=config)


class Server:
    """The UI served by uvicorn in a background thread (tests, scripts)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
    ) -> None:
        check_bind(host, token)
        self.host = host
        self.port = port or free_port(host)
        app = create_app(catalog, token=token, allowed_hosts=allowed_hosts(host))
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="catalog-ui", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the UI server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(
    catalog: Catalog,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Catch the UI's projection up, then serve until interrupted (Ctrl-C)."""
    token = token or os.environ.get(TOKEN_ENV) or None
    check_bind(host, token)
    echo(f"catching up {catalog.config.db} with {catalog.config.log} ...")
    applied = catalog.consume()
    echo(f"applied {applied:,} events; serving the catalog UI on http://{host}:{port}/")
    app = create_app(catalog, token=token, allowed_hosts=allowed_hosts(host))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
