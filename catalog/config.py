"""Configuration: where the log, the projection and the artifacts are, and who is acting.

Every setting is resolved the same way, by the SDK and the CLI alike, first
match wins (as git, pip and the AWS CLI do: a job's environment wins over a
config file baked into its image):

1. the explicit argument (``Catalog(log=...)``, a CLI flag);
2. the environment (``CATALOG_LOG``, ``CATALOG_DB``, ``CATALOG_ARTIFACT_PATH``,
   ``CATALOG_PROJECT``, ``CATALOG_ACTOR``, ``CATALOG_API``, the snapshot settings,
   ``CATALOG_SCHEMA_REGISTRY``);
3. the config file: ``$CATALOG_CONFIG``, else ``<config dir>/catalog/config.toml``
   with keys ``log``, ``db``, ``artifact_path``, ``project``, ``actor``, ``api``;
4. the default, under the user's data directory (``$CATALOG_HOME``, else
   ``$XDG_DATA_HOME/catalog``, else ``~/.local/share/catalog``):
   ``file://<data>/events.db``, ``<data>/catalog.duckdb``,
   ``<data>/artifacts/{{project}}``, project ``default``, the login name.

Artifact paths follow MLRun: templates ``{{project}}`` and ``{{run.uid}}``
expand (``{{run.uid}}`` to the literal ``project`` outside a run, as MLRun
does), a path starting with ``+/`` extends the next less specific path, and
relative local paths become absolute. Paths are fsspec URLs, never assumed to
be local.
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInput
from catalog.log import with_registry

ENV = {
    "log": "CATALOG_LOG",
    "db": "CATALOG_DB",
    "artifact_path": "CATALOG_ARTIFACT_PATH",
    "project": "CATALOG_PROJECT",
    "actor": "CATALOG_ACTOR",
    "api": "CATALOG_API",
    "snapshots": "CATALOG_SNAPSHOTS",
    "snapshot_every": "CATALOG_SNAPSHOT_EVERY",
    "snapshot_keep": "CATALOG_SNAPSHOT_KEEP",
    "schema_registry": "CATALOG_SCHEMA_REGISTRY",
}

#: Snapshots kept by default (the newest K; older ones are deleted after publishing).
SNAPSHOT_KEEP = 3
#: How often a Kafka projection publishes by default (events, seconds), whichever first.
SNAPSHOT_EVERY_KAFKA = (100_000, 3600.0)

DEFAULT_PROJECT = "default"


def data_dir() -> Path:
    """The user's catalog data directory (created on demand by the writers)."""
    home = os.environ.get("CATALOG_HOME")
    if home:
        return Path(home).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / "catalog").absolute()


def config_file() -> Path:
    explicit = os.environ.get("CATALOG_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "catalog" / "config.toml"


def _read_config_file() -> dict[str, Any]:
    path = config_file()
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read the config file {path}: {exc}") from exc
    unknown = set(data) - set(ENV)
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {', '.join(sorted(unknown))} in {path}; known: {', '.join(ENV)}"
        )
    return {k: str(v) for k, v in data.items()}


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (containers)
        return "unknown"


@dataclass(frozen=True)
class Config:
    """Resolved settings of one client."""

    log: str
    db: str
    artifact_path: str
    project: str
    actor: str
    #: the catalog service reads go to (``http://host:port``); empty: a local projection
    api: str = ""
    #: where projection snapshots are published (an fsspec URL; ``off``: none); empty:
    #: ``_snapshots`` under the artifact path's root
    snapshots: str = ""
    #: how often serve and consume --follow publish: ``N`` events, ``T`` (30m, 1h) or
    #: both (``N,T``), ``off``; empty: off on the embedded log, 100000,1h on Kafka
    snapshot_every: str = ""
    #: snapshots kept (the newest)
    snapshot_keep: str = ""
    #: a Confluent-API schema registry (``http(s)://host:port``): a Kafka log frames
    #: its values for it (catalog/log/registry.py); merged into ``log`` as
    #: ``?registry=`` unless the URL names one. Empty: single-object framing
    schema_registry: str = ""
    #: where each setting came from: "argument", "env CATALOG_…", "file <path>", "default"
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.schema_registry:  # the log URL says everything the log does
            object.__setattr__(self, "log", with_registry(self.log, self.schema_registry))

    @classmethod
    def load(cls, **overrides: str | None) -> Config:
        """Resolve every setting from arguments, environment, config file and defaults."""
        bad = set(overrides) - set(ENV)
        if bad:
            raise TypeError(f"unknown settings {sorted(bad)}")
        data = data_dir()
        defaults = {
            "log": f"file://{data / 'events.db'}",
            "db": str(data / "catalog.duckdb"),
            "artifact_path": str(data / "artifacts" / "{{project}}"),
            "project": DEFAULT_PROJECT,
            "actor": _actor(),
            "api": "",
            "snapshots": "",
            "snapshot_every": "",
            "snapshot_keep": str(SNAPSHOT_KEEP),
            "schema_registry": "",
        }
        from_file = _read_config_file()
        values: dict[str, Any] = {}
        sources = []
        for name, env in ENV.items():  # argument > environment > config file > default
            for value, source in (
                (overrides.get(name), "argument"),
                (os.environ.get(env), f"env {env}"),
                (from_file.get(name), f"file {config_file()}"),
                (defaults[name], "default"),
            ):
                if value:
                    values[name] = value
                    sources.append((name, source))
                    break
            else:
                values[name] = defaults[name]
                sources.append((name, "default"))
        return cls(**values, sources=tuple(sources))

    def with_(self, **changes: Any) -> Config:
        given = {k: v for k, v in changes.items() if v is not None}
        sources = tuple((k, "argument" if k in given else s) for k, s in self.sources)
        return replace(self, **given, sources=sources)

    def source(self, name: str) -> str:
        """Where setting ``name`` came from (``argument``, ``env …``, ``file …``, ``default``)."""
        return dict(self.sources).get(name, "argument")


_TEMPLATE = re.compile(r"\{\{\s*(project|run\.uid)\s*\}\}")


def expand_template(path: str, project: str, run_uid: str | None = None) -> str:
    """Expand ``{{project}}`` and ``{{run.uid}}`` in an artifact path."""

    def sub(match: re.Match[str]) -> str:
        if match.group(1) == "project":
            return project
        return run_uid or "project"

    return _TEMPLATE.sub(sub, path)


def resolve_artifact_path(
    candidates: list[str | None],
    project: str,
    run_uid: str | None = None,
) -> str:
    """The artifact path from candidates ordered most specific first.

    The first non-empty candidate wins; if it starts with ``+/`` it extends the
    next candidate that resolves (MLRun's ``extend_artifact_path``). Relative
    local paths become absolute; URLs (``s3://``, ``memory://``) stay as they are.
    """
    for i, candidate in enumerate(candidates):
        if not candidate:
            continue
        if candidate.startswith("+/"):
            base = resolve_artifact_path(candidates[i + 1 :], project, run_uid)
            extension = expand_template(candidate[2:], project, run_uid).lstrip("/")
            return base.rstrip("/") + "/" + extension
        return _absolute(expand_template(candidate, project, run_uid))
    raise InvalidInput("no artifact path configured")


def _absolute(path: str) -> str:
    if path.startswith("file://"):
        path = path[len("file://") :]
    if "://" in path:
        return path
    return str(Path(path).expanduser().absolute())


def snapshots_url(config: Config) -> str | None:
    """Where this catalog's projection snapshots are published and looked for; None: off.

    Default: ``_snapshots`` beside the projects under the artifact path's root (the
    path up to its first template), e.g. ``s3://bucket/catalog/{{project}}`` gives
    ``s3://bucket/catalog/_snapshots`` (``_`` never starts a project name).
    """
    value = config.snapshots.strip()
    if value.lower() in ("off", "none", "no"):
        return None
    if value:
        return _absolute(value)
    path = config.artifact_path
    if "{{" in path:
        path = path.split("{{", 1)[0]
        path = path[: path.rfind("/") + 1] if "/" in path else path
    path = path.rstrip("/")
    if not path or path.endswith(":"):
        return None
    return _absolute(path) + "/_snapshots"


def snapshot_every(config: Config) -> tuple[int | None, float | None]:
    """(events, seconds) between published snapshots, whichever comes first; (None, None): off."""
    value = config.snapshot_every.strip().lower()
    if not value:
        return SNAPSHOT_EVERY_KAFKA if config.log.startswith("kafka://") else (None, None)
    if value in ("off", "none", "no", "0"):
        return None, None
    events: int | None = None
    seconds: float | None = None
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    for part in value.split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and int(part) > 0:
            events = int(part)
        elif part[-1:] in units and part[:-1].isascii() and part[:-1].isdigit() and int(part[:-1]):
            seconds = int(part[:-1]) * units[part[-1]]
        else:
            raise InvalidInput(
                f"CATALOG_SNAPSHOT_EVERY={config.snapshot_every!r}: expected N events, a time "
                "(30m, 1h) or both (100000,30m), or off"
            )
    return events, seconds


def snapshot_keep(config: Config) -> int:
    value = config.snapshot_keep.strip() or str(SNAPSHOT_KEEP)
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise InvalidInput(f"CATALOG_SNAPSHOT_KEEP={value!r}: expected a whole number >= 1")
    return int(value)


def settings_summary(config: Config) -> Mapping[str, str]:
    """What ``catalog config`` prints."""
    from catalog import native

    return {
        "log": config.log,
        "db": config.db,
        "artifact_path": config.artifact_path,
        "project": config.project,
        "actor": config.actor,
        "api": config.api or "(none: reads a local projection)",
        "snapshots": snapshots_url(config) or "(off)",
        "snapshot_every": _every_text(config),
        "snapshot_keep": str(snapshot_keep(config)),
        "schema_registry": config.schema_registry or "(none: single-object framing)",
        "config_file": str(config_file()),
        "data_dir": str(data_dir()),
        "columnar_decoder": native.status(),
    }


def _every_text(config: Config) -> str:
    events, seconds = snapshot_every(config)
    if events is None and seconds is None:
        return "off"
    parts = [f"{events} events"] if events else []
    if seconds:
        parts.append(f"{seconds / 60:g} min")
    return " or ".join(parts)
