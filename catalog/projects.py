"""Projects, the process-wide client and ``mlconf``: MLRun's module-level API.

MLRun code talks to a process-wide database through module functions
(``set_environment``, ``new_project``, ``get_dataitem``, ...) and a config
object (``mlconf``). Here they use one process-wide :class:`~catalog.Catalog`
(:func:`get_catalog`), built from ``mlconf`` and the usual configuration
(environment, config file, defaults) and rebuilt when ``mlconf`` changes.

``mlconf.dbpath``, as in MLRun, names the API service: an ``http(s)://``
URL there makes the process-wide client read through that catalog service
(``catalog serve``), while its writes still go to the log and the object
store. Unset, it reads ``CATALOG_API`` (as MLRun's reads ``MLRUN_DBPATH``).
Any other value (MLRun also takes a local database path) is ignored.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.client import Catalog, set_default_client
from catalog.errors import InvalidInput
from catalog.validation import validate_project

if TYPE_CHECKING:  # pragma: no cover
    from catalog.artifacts.base import Artifact
    from catalog.datastore import DataItem


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


def _absolute(path: str) -> str:
    """Relative local paths made absolute; URLs and ``+/...`` (extend the default) kept."""
    if ("://" in path and not path.startswith("file://")) or path.startswith("+/"):
        return path
    return str(Path(path.removeprefix("file://")).expanduser().absolute())


def set_environment(
    api_path: str | None = None,
    artifact_path: str = "",
    project: str = "",
    access_key: str | None = None,
    user_project: bool = False,
    username: str | None = None,
    env_file: str | None = None,
) -> tuple[str, str]:
    """Set the default project and its artifact path; returns ``(project, artifact_path)``.

    A relative path is made absolute; templates are kept as given and expanded
    where the path is used, so ``{{project}}`` names each project. The path
    becomes the client's default (``mlconf.artifact_path``) and the project's
    (recorded on the log: a ``ProjectConfigured`` event, so every client and
    every later session uses it); a path starting with ``+/`` only sets the
    project's, extending the client's default. The returned path has
    ``{{project}}`` expanded and keeps ``{{run.uid}}``, which each run expands.
    ``api_path``, as in MLRun, sets ``mlconf.dbpath`` (the catalog service
    reads go through); ``access_key`` and ``env_file`` are accepted for
    compatibility and ignored.
    """
    if api_path:
        mlconf.dbpath = api_path
    if project:
        name = validate_project(project)
        if user_project:
            name = validate_project(f"{name}-{username or os.environ.get('USER', 'user')}")
        mlconf.default_project = name
    cat = get_catalog()
    name = cat.project
    if artifact_path:
        path = _absolute(artifact_path)
        if not path.startswith("+/"):
            mlconf.artifact_path = path
            cat = get_catalog()
        cat.configure_project(name, artifact_path=path)
    return name, cat.artifact_path(name, run_uid="{{run.uid}}")


class Project:
    """A project: its name, artifact path and the artifact operations scoped to it."""

    def __init__(
        self,
        name: str,
        context: str | None = None,
        catalog: Catalog | None = None,
        description: str | None = None,
    ) -> None:
        self.name = validate_project(name)
        self.context = context
        self.description = description
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        return self._catalog or get_catalog()

    @property
    def metadata(self) -> Any:
        from catalog.artifacts.base import Metadata

        return Metadata(name=self.name)

    @property
    def artifact_path(self) -> str:
        return self.catalog.artifact_path(self.name)

    @artifact_path.setter
    def artifact_path(self, value: str) -> None:
        self.catalog.configure_project(self.name, artifact_path=_absolute(value))

    def __repr__(self) -> str:
        return f"<Project {self.name}>"

    def log_artifact(
        self, item: Any, body: Any = None, local_path: str | None = None, **kwargs: Any
    ) -> Artifact:
        from catalog.artifacts.base import Artifact

        if isinstance(item, Artifact):
            return self.catalog.log_item(item, project=self.name, **kwargs)
        return self.catalog.log_artifact(
            item, body=body, local_path=local_path, project=self.name, **kwargs
        )

    def log_dataset(self, key: str, df: Any, tag: str | None = None, **kwargs: Any) -> Artifact:
        from catalog.execution import split_dataset_args

        item, log_args = split_dataset_args(key, df, kwargs)
        return self.catalog.log_item(item, project=self.name, tag=tag, **log_args)

    def log_model(self, key: str, tag: str | None = None, **kwargs: Any) -> Artifact:
        from catalog.execution import split_model_args

        item, log_args = split_model_args(key, kwargs)
        return self.catalog.log_item(item, project=self.name, tag=tag, **log_args)

    def list_artifacts(
        self, name: str | None = None, tag: str | None = None, labels: Any = None, **kwargs: Any
    ) -> list[Artifact]:
        return self.catalog.list_artifacts(
            project=self.name, name=name, tag=tag, labels=labels, **kwargs
        )

    def get_artifact(self, key: str, tag: str | None = None, iter: int | None = None) -> Artifact:
        return self.catalog.get_artifact(self.get_artifact_uri(key, tag=tag, iter=iter))

    def get_artifact_uri(
        self, key: str, category: str = "artifacts", tag: str | None = None, iter: int | None = None
    ) -> str:
        """``store://<category>/<project>/<key>[#iter][:tag]`` (no tag: latest)."""
        uri = f"store://{category}/{self.name}/{key}"
        if iter:
            uri += f"#{iter}"
        if tag:
            uri += f":{tag}"
        return uri

    def run(self, handler: Any, **kwargs: Any) -> Any:
        from catalog.execution import run_local

        return run_local(handler=handler, project=self.name, **kwargs)


def new_project(
    name: str,
    context: str | None = None,
    init_git: bool = False,
    user_project: bool = False,
    description: str | None = None,
    artifact_path: str | None = None,
    **kwargs: Any,
) -> Project:
    """Create (or re-open) a project; ``context`` is its local directory.

    With ``init_git`` the context directory becomes a git repository (if git is
    available and it is not one already). Other MLRun arguments are accepted.
    """
    name = validate_project(name)
    if user_project:
        name = validate_project(f"{name}-{os.environ.get('USER', 'user')}")
    if context:
        Path(context).mkdir(parents=True, exist_ok=True)
        if init_git and not (Path(context) / ".git").exists():
            try:
                subprocess.run(["git", "init", "-q", context], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise InvalidInput(f"cannot init a git repository in {context}: {exc}") from exc
    cat = get_catalog()
    path = _absolute(artifact_path) if artifact_path else None
    cat.configure_project(name, artifact_path=path, description=description, owner=cat.config.actor)
    return Project(name, context=context, description=description)


def get_or_create_project(name: str, context: str | None = None, **kwargs: Any) -> Project:
    """The project ``name``, created if the catalog has never seen it."""
    cat = get_catalog()
    exists = cat.read("project", name=validate_project(name)) is not None
    if exists:
        return Project(name, context=context)
    return new_project(name, context=context, **kwargs)


def get_dataitem(url: str, secrets: dict[str, str] | None = None) -> DataItem:
    """A DataItem for a store URI, an fsspec URL or a local path."""
    return get_catalog().get_dataitem(url)
