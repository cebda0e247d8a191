"""Projects and MLRun's module-level API.

MLRun code talks to a process-wide database through module functions
(``set_environment``, ``new_project``, ``get_dataitem``, ...) and a config
object (``mlconf``). Here they use the process-wide :class:`~catalog.Catalog`
of :mod:`catalog.context` (:func:`get_catalog`, built from ``mlconf``; both
are importable from here too).
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.calls import artifact_from_call, fspath_or_none, split_dataset_args, split_model_args
from catalog.client import Catalog
from catalog.context import get_catalog as get_catalog  # also importable from here
from catalog.context import mlconf as mlconf
from catalog.errors import InvalidInput
from catalog.execution import run_local
from catalog.functions import LocalFunction, run_function
from catalog.runlist import list_runs
from catalog.uri import KINDS
from catalog.validation import validate_project

if TYPE_CHECKING:  # pragma: no cover
    from catalog.artifacts.base import Artifact
    from catalog.artifacts.lists import ArtifactList
    from catalog.datastore import DataItem


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
    """A project: its name, artifact path, artifact manifest and the artifact
    operations scoped to it.

    Artifacts logged through a project have the project as their producer
    (``kind`` project). ``spec.artifacts`` is MLRun's artifact manifest:
    ``set_artifact`` adds an entry, ``register_artifacts`` logs every entry
    (one run-less tree per call), ``save``/``export`` write the project's
    ``project.yaml`` with it and ``load_project`` reads it back.
    """

    def __init__(
        self,
        name: str,
        context: str | None = None,
        catalog: Catalog | None = None,
        description: str | None = None,
    ) -> None:
        from catalog.artifacts.base import _Section

        self.name = validate_project(name)
        self.context = context
        self.description = description
        self._catalog = catalog
        self.spec = _Section(
            description=description, context=context, artifacts=[], params={}, functions=[]
        )
        self._functions: dict[str, Any] = {}

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
        self.catalog.configure_project(self.name, artifact_path=_absolute(os.fspath(value)))

    def __repr__(self) -> str:
        return f"<Project {self.name}>"

    def _producer(self) -> Any:
        from catalog.events.model import Producer

        # the user who logs: a configured actor (CATALOG_ACTOR, the config file, an
        # argument), else the project's owner (spec.owner), else the login name
        config = self.catalog.config
        configured = dict(config.sources).get("actor", "default") != "default"
        owner = config.actor if configured else (self.spec.owner or config.actor)
        return Producer(kind="project", name=self.name, uri=self.name, owner=owner)

    def log_artifact(
        self,
        item: Any,
        body: Any = None,
        local_path: Any = None,
        artifact_path: Any = None,
        tag: str | None = None,
        upload: bool | None = None,
        labels: Any = None,
        format: str | None = None,
        target_path: str | None = None,
        extra_data: Any = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """Log an artifact object, or a key with ``body=``/``local_path=`` (the call
        forms of ``MLClientCtx.log_artifact``); other keywords are
        ``Catalog.log_item``'s (``sources``, ``iteration``, ...)."""
        log_args = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k in ("sources", "iteration", "tree", "producer", "run_path")
        }
        obj = artifact_from_call(
            item,
            body,
            local_path,
            format=format,
            upload=upload,
            target_path=target_path,
            kwargs=kwargs,
            use_db_key=True,
        )
        log_args.setdefault("producer", self._producer())
        return self.catalog.log_item(
            obj,
            project=self.name,
            tag=tag or None,
            labels=labels,
            artifact_path=fspath_or_none(artifact_path),
            extra_data=extra_data,
            description=description,
            **log_args,
        )

    def log_dataset(self, key: str, df: Any, tag: str | None = None, **kwargs: Any) -> Artifact:
        item, log_args = split_dataset_args(key, df, kwargs)
        return self.catalog.log_item(
            item, project=self.name, tag=tag or None, producer=self._producer(), **log_args
        )

    def log_model(self, key: str, tag: str | None = None, **kwargs: Any) -> Artifact:
        item, log_args = split_model_args(key, kwargs)
        return self.catalog.log_item(
            item, project=self.name, tag=tag or None, producer=self._producer(), **log_args
        )

    def list_artifacts(
        self, name: str | None = None, tag: str | None = None, labels: Any = None, **kwargs: Any
    ) -> ArtifactList:
        return self.catalog.list_artifacts(
            project=self.name, name=name, tag=tag, labels=labels, **kwargs
        )

    def list_models(
        self, name: str | None = None, tag: str | None = None, labels: Any = None, **kwargs: Any
    ) -> ArtifactList:
        """The project's models (``list_artifacts(kind="model")``)."""
        return self.list_artifacts(name=name, tag=tag, labels=labels, kind="model", **kwargs)

    def get_artifact(
        self, key: str, tag: str | None = None, iter: int | None = None, tree: str | None = None
    ) -> Artifact:
        uri = self.get_artifact_uri(key, tag=tag, iter=iter)
        if tree:
            uri += f"@{tree}"
        return self.catalog.get_artifact(uri)

    def get_artifact_uri(
        self, key: str, category: str = "artifacts", tag: str | None = None, iter: int | None = None
    ) -> str:
        """``store://<category>/<project>/<key>[#iter][:tag]`` (no tag: latest); MLRun's
        singular categories (``model``, ``dataset``, ``artifact``) give the plural."""
        from catalog.uri import canonical_category

        uri = f"store://{canonical_category(category)}/{self.name}/{key}"
        if iter:
            uri += f"#{iter}"
        if tag:
            uri += f":{tag}"
        return uri

    def delete_artifact(
        self,
        item: Any,
        deletion_strategy: str = "metadata-only",
        secrets: Any = None,
        **kwargs: Any,
    ) -> list[str]:
        """Delete a version (an artifact, a URI or a key: its latest), or with
        ``all_versions=True`` every version. The bytes stay until ``catalog gc``
        (MLRun's ``deletion_strategy`` other than ``metadata-only`` is refused)."""
        if deletion_strategy not in ("metadata-only", "", None):
            raise InvalidInput(
                f"deletion_strategy {deletion_strategy!r}: the catalog deletes versions as "
                "events (metadata-only); bytes are reclaimed by `catalog gc`"
            )
        if isinstance(item, str) and not item.startswith("store://"):
            tag = kwargs.pop("tag", None)
            item = self.get_artifact_uri(item, tag=tag)
        return self.catalog.delete_artifact(item, project=self.name, **kwargs)

    # ------------------------------------------------------------ manifest

    def set_artifact(
        self,
        key: str,
        artifact: Any = None,
        target_path: str | None = None,
        tag: str | None = None,
        upload: bool | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Add an artifact to the project's manifest (logged by ``register_artifacts``):
        an artifact object, a path or URL of its content (``target_path``, or
        ``artifact`` given as text), or an exported document (``.yaml``/``.json``)."""
        from catalog.artifacts.base import Artifact
        from catalog.validation import validate_key, validate_tag

        validate_key(key)
        if tag:
            validate_tag(tag)
        entry: dict[str, Any] = {"key": key}
        if isinstance(artifact, Artifact):
            if target_path is not None:  # where the object's content is (MLRun's form)
                artifact = copy.copy(artifact)
                artifact.spec = copy.copy(artifact.spec)
                artifact.spec.target_path = self._manifest_path(key, os.fspath(target_path))
                target_path = None
            entry["artifact"] = artifact
        elif isinstance(artifact, str | os.PathLike):
            path = self._manifest_path(key, os.fspath(artifact))
            if path.endswith((".yaml", ".yml", ".json")):
                entry["import_from"] = path
            else:
                entry["target_path"] = path
        elif artifact is not None:
            raise InvalidInput(
                f"set_artifact({key!r}): artifact must be an artifact object or a path, "
                f"not {type(artifact).__name__}"
            )
        if target_path is not None:
            entry["target_path"] = self._manifest_path(key, os.fspath(target_path))
        if len(set(entry) - {"key"}) != 1:
            raise InvalidInput(
                f"set_artifact({key!r}) needs one of artifact= (an object or a path) "
                "or target_path="
            )
        if tag:
            entry["tag"] = tag
        if upload is not None:
            entry["upload"] = upload
        if labels:
            entry["labels"] = dict(labels)
        self.spec.artifacts = [a for a in self.spec.artifacts if a["key"] != key] + [entry]

    def _manifest_path(self, key: str, path: str) -> str:
        """A manifest entry's path: a URL as given; a local path relative to the
        project's context directory, which must exist (else ``ObjectNotFound``, a
        ``FileNotFoundError``) and nothing is added."""
        from catalog.errors import ObjectNotFound

        if not path:
            raise InvalidInput(f"set_artifact({key!r}): empty path")
        if "://" in path and not path.startswith("file://"):
            return path
        if path.startswith("file://"):
            path = path[len("file://") :]
        if not os.path.isabs(path):
            path = os.path.normpath(os.path.join(os.path.abspath(self.context or "."), path))
        if not (os.path.isfile(path) or os.path.isdir(path)):
            raise ObjectNotFound(path)
        return path

    def register_artifacts(self) -> list[Artifact]:
        """Log every manifest entry (one tree, shared by them); returns the versions."""
        import uuid

        tree = str(uuid.uuid4())
        logged = []
        for entry in self.spec.artifacts:
            if "import_from" in entry:
                logged.append(self.import_artifact(entry["import_from"], new_key=entry["key"]))
                continue
            artifact = entry.get("artifact")
            if artifact is not None:
                artifact = copy.copy(artifact)
                artifact.metadata = copy.copy(artifact.metadata)
                artifact.metadata.key = entry["key"]
            logged.append(
                self.log_artifact(
                    artifact if artifact is not None else entry["key"],
                    local_path=entry.get("target_path")
                    if entry.get("upload") is not False and artifact is None
                    else None,
                    target_path=entry.get("target_path") if entry.get("upload") is False else None,
                    tag=entry.get("tag"),
                    labels=entry.get("labels"),
                    tree=tree,
                )
            )
        return logged

    def import_artifact(
        self,
        item_path: str,
        new_key: str | None = None,
        artifact_path: str | None = None,
        tag: str | None = None,
    ) -> Artifact:
        """Log a version from an exported document (``Artifact.export``: YAML or
        JSON) under ``new_key`` (else its own key) in this project. Its bytes are
        read from the document's ``target_path`` and verified against its hash."""
        import yaml

        from catalog import store

        try:
            with store.open_url(store.normalize_url(item_path), "rb") as fh:
                document = yaml.safe_load(fh.read())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(
                f"cannot read an artifact document from {item_path!r}: {exc}"
            ) from exc
        if not isinstance(document, dict) or "metadata" not in document:
            raise InvalidInput(f"{item_path!r} is not an artifact document")
        kind = str(document.get("kind") or "artifact")
        meta = dict(document.get("metadata") or {})
        spec = dict(document.get("spec") or {})
        target, digest = spec.get("target_path"), spec.get("hash")
        if not target:
            raise InvalidInput(f"{item_path!r} names no content (spec.target_path)")
        item = self.catalog.get_dataitem(target)
        local = item.local()
        if digest and os.path.isfile(local):
            actual, _ = store.hash_file(local)
            if actual != digest:
                from catalog.errors import DigestMismatch

                raise DigestMismatch(digest, actual, target)
        keep = {
            k: v
            for k, v in spec.items()
            if k not in ("target_path", "hash", "size", "producer", "sources", "extra_data")
        }
        fmt = keep.pop("format", None)
        keep.pop("filename", None)
        return self.catalog.log_artifact(
            new_key or str(meta.get("key")),
            local_path=local,
            kind=kind if kind in KINDS else "artifact",
            project=self.name,
            labels=meta.get("labels"),
            tag=tag,
            format=fmt if fmt != "dir" else None,
            artifact_path=artifact_path,
            description=meta.get("description"),
            spec=keep,
            producer=self._producer(),
        )

    def save(self, filepath: str | None = None) -> str:
        """Write ``project.yaml`` (name, description, artifact manifest) into the
        context directory, or to ``filepath``."""
        return self.export(filepath)

    def export(self, filepath: str | None = None, include_files: str | None = None) -> str:
        import yaml

        from catalog import store

        path = filepath or os.path.join(self.context or ".", "project.yaml")
        artifacts = []
        for entry in self.spec.artifacts:
            entry = dict(entry)
            if "artifact" in entry:
                entry["artifact"] = entry["artifact"].to_dict()
            artifacts.append(entry)
        document = {
            "kind": "project",
            "metadata": {"name": self.name},
            "spec": {
                "description": self.description,
                "params": self.spec.params,
                "artifacts": artifacts,
            },
        }
        url = store.normalize_url(path)
        store.put_bytes_atomic(url, yaml.safe_dump(document, sort_keys=False).encode("utf-8"))
        return url

    # ----------------------------------------------------------- functions

    def list_runs(
        self,
        name: str | None = None,
        uid: Any = None,
        labels: Any = None,
        state: str | None = None,
        last: int = 0,
        **kwargs: Any,
    ) -> Any:
        """The project's recorded runs, newest first, as a ``RunList`` (see
        :func:`catalog.runlist.list_runs` for the filters)."""
        return list_runs(
            self.catalog, self.name, name=name, labels=labels, state=state, uid=uid, last=last
        )

    def with_secrets(self, kind: str, source: Any, prefix: str = "") -> Project:
        """Accepted and recorded (``spec.secret_sources``): a local run reads its
        secrets from the environment (``context.get_secret``)."""
        self.spec.secret_sources = [
            *(self.spec.secret_sources or []),
            {"kind": kind, "source": source, "prefix": prefix},
        ]
        return self

    def set_function(
        self,
        func: Any = None,
        name: str = "",
        kind: str = "",
        image: str | None = None,
        handler: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Register a function (a file path, a Python function or a ``new_function``)."""
        if isinstance(func, LocalFunction):
            function = func
        elif callable(func):
            function = LocalFunction(name or func.__name__, self.name, kind, handler=func)
        elif isinstance(func, str):
            function = LocalFunction(name, self.name, kind, command=func, handler=handler)
        else:
            raise InvalidInput(
                f"set_function: func must be a file path or a function, not {func!r}"
            )
        key = name or function.metadata.name
        if not key:
            raise InvalidInput("set_function needs name=")
        function.metadata.name = key
        function.metadata.project = self.name
        self._functions[key] = function
        return function

    def get_function(self, key: str) -> Any:
        if key not in self._functions:
            raise InvalidInput(
                f"project {self.name} has no function {key!r}; functions: "
                f"{', '.join(sorted(self._functions)) or 'none'}"
            )
        return self._functions[key]

    def run_function(self, function: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Run a function of the project (its name, a ``new_function`` or a Python function)."""
        if isinstance(function, str):
            function = self.get_function(function)
        kwargs.setdefault("project", self.name)
        return run_function(function, handler=handler, **kwargs)

    def run(self, handler: Any, **kwargs: Any) -> Any:
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


def get_or_create_project(
    name: str, context: str | None = None, url: str | None = None, **kwargs: Any
) -> Project:
    """The project ``name``, created if the catalog has never seen it; with ``url``
    (a ``project.yaml``), loaded from it as ``load_project`` does."""
    if url:
        return load_project(context or "./", url, name=name)
    cat = get_catalog()
    exists = cat.read("project", name=validate_project(name)) is not None
    if exists:
        return Project(name, context=context)
    return new_project(name, context=context, **kwargs)


def get_dataitem(url: str, secrets: dict[str, str] | None = None) -> DataItem:
    """A DataItem for a store URI, an fsspec URL or a local path."""
    return get_catalog().get_dataitem(url)


def get_store_resource(uri: str, project: str = "", **kwargs: Any) -> Artifact:
    """The artifact version a store URI names (MLRun's ``get_store_resource``)."""
    return get_catalog().get_artifact(uri, project=project or None)


def get_object(
    url: str, secrets: dict[str, str] | None = None, size: int | None = None, offset: int = 0
) -> bytes:
    """The bytes at a URL, path or store URI (``size`` bytes from ``offset``)."""
    data = get_dataitem(url).get(size=size, offset=offset)
    assert isinstance(data, bytes)
    return data


def load_project(
    context: str = "./", url: str | None = None, name: str | None = None, **kwargs: Any
) -> Project:
    """A project from its ``project.yaml`` (written by ``Project.save``), with its
    artifact manifest; ``name`` overrides the file's."""
    import yaml

    path = url or os.path.join(context, "project.yaml")
    if "://" in path and not path.startswith("file://") or path.endswith((".zip", ".tar.gz")):
        raise InvalidInput(
            f"load_project({path!r}): a project is loaded from its project.yaml (a local "
            "path); cloning a git repository or unpacking an archive is not supported: "
            "clone or unpack it first and give its directory as context"
        )
    path = path.removeprefix("file://")
    try:
        with open(path, encoding="utf-8") as fh:
            document = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise InvalidInput(f"cannot read project file {path!r}: {exc}") from exc
    spec = dict(document.get("spec") or {})
    project = get_or_create_project(
        name or str((document.get("metadata") or {}).get("name") or ""),
        context=context,
        description=spec.get("description"),
    )
    from catalog.artifacts.base import Artifact

    for entry in spec.get("artifacts") or []:
        entry = dict(entry)
        if isinstance(entry.get("artifact"), dict):
            doc = entry["artifact"]
            art = Artifact.class_for(str(doc.get("kind")))()
            art.metadata.key = entry["key"]
            for k, v in (doc.get("spec") or {}).items():
                setattr(art.spec, k, v)
            if "body" in doc:
                art.body = doc["body"]
            entry["artifact"] = art
        project.spec.artifacts.append(entry)
    project.spec.params = dict(spec.get("params") or {})
    return project
