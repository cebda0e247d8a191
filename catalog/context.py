"""MLRun's global context: ``mlconf`` and the process-wide client.

MLRun code talks to a process-wide database through module functions and a
config object (``mlconf``). Here they use one process-wide
:class:`~catalog.Catalog` (:func:`get_catalog`), built from ``mlconf`` and the
usual configuration (environment, config file, defaults) and rebuilt when
``mlconf`` changes. The run and project modules (execution, tasks, projects)
take it from here, not from each other; the artifact classes below the SDK
ask for it through :func:`catalog.artifacts.base.default_client`, which this
module answers.

``mlconf.dbpath``, as in MLRun, names the API service: an ``http(s)://``
URL there makes the process-wide client read through that catalog service
(``catalog serve``), while its writes still go to the log and the object
store. Unset, it reads ``CATALOG_API`` (as MLRun's reads ``MLRUN_DBPATH``).
Any other value (MLRun also takes a local database path) is ignored.
"""

from __future__ import annotations

import os
from typing import Any

from catalog.artifacts.base import set_default_client
from catalog.client import Catalog

__all__ = ["get_catalog", "mlconf"]


class _Config:
    """MLRun's ``mlconf``: attribute settings, some of which steer the catalog.

    ``artifact_path``, ``default_project``, ``log``, ``db`` and ``dbpath``
    (an ``http(s)://`` catalog service) are used; anything else
    (``hub_url``, ...) is stored and ignored.
    """

    def __init__(self) -> None:
        self.__dict__.update(
            artifact_path="",
            default_project="",
            log="",
            db="",
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "dbpath":  # as MLRun reads MLRUN_DBPATH: the service a job is given
            return os.environ.get("CATALOG_API", "")
        return ""

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def reset(self) -> None:
        """Forget every setting (tests, notebooks)."""
        self.__dict__.clear()
        self.__init__()  # type: ignore[misc]
        global _client, _client_key
        if _client is not None:
            _client.close()
        _client, _client_key = None, None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


mlconf = _Config()

_client: Catalog | None = None
_client_key: tuple[str, ...] | None = None


def get_catalog() -> Catalog:
    """The process-wide client, (re)built from ``mlconf`` and the configuration."""
    global _client, _client_key
    dbpath = str(mlconf.dbpath or "")
    api = dbpath if dbpath.startswith(("http://", "https://")) else None
    key = (
        api or "",
        mlconf.log,
        mlconf.db,
        mlconf.artifact_path,
        mlconf.default_project,
        os.environ.get("CATALOG_HOME", ""),
        os.environ.get("CATALOG_LOG", ""),
        os.environ.get("CATALOG_DB", ""),
        os.environ.get("CATALOG_ARTIFACT_PATH", ""),
        os.environ.get("CATALOG_PROJECT", ""),
        os.environ.get("CATALOG_ACTOR", ""),
        os.environ.get("CATALOG_CONFIG", ""),
        os.environ.get("CATALOG_API", ""),
        os.environ.get("XDG_CONFIG_HOME", ""),
    )
    if _client is None or key != _client_key:
        if _client is not None:
            _client.close()
        _client = Catalog(
            log=mlconf.log or None,
            db=mlconf.db or None,
            artifact_path=mlconf.artifact_path or None,
            project=mlconf.default_project or None,
            api=api,
        )
        _client_key = key
    return _client


set_default_client(get_catalog)
