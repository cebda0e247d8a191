"""Runs: ``run_local`` executes a handler in-process with an ``MLClientCtx``.

A run is recorded as events: ``RunStarted`` (name, parameters, inputs
resolved to exact versions, artifact path) and ``RunFinished`` (state,
error, results, outputs). Every artifact logged through the context names
the run as its producer (``tree`` = run uid), carries ``run_uid`` on its
event envelope, and lists the run's inputs as lineage sources — pinned to
the versions the run read, even if their tags move later.

Handler arguments are filled by name: the context (the first parameter, or
one annotated ``MLClientCtx``), then ``params``, then ``inputs`` — an input
annotated ``DataItem`` (or not annotated) gets a DataItem, one annotated
``str`` gets the URL. A handler that raises, or a parameter the handler
does not take, records the run as ``error`` with the message and re-raises.
"""

from __future__ import annotations

import inspect
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from catalog import jsonutil, store
from catalog.artifacts.base import Artifact
from catalog.artifacts.dataset import DatasetArtifact
from catalog.artifacts.model import ModelArtifact
from catalog.client import Catalog
from catalog.datastore import DataItem
from catalog.errors import InvalidInput
from catalog.events.model import Producer, RunFinished, RunInput, RunStarted, SourceRef
from catalog.uri import is_store_uri
from catalog.validation import validate_key, validate_labels, validate_project

_LOG_ARGS = ("labels", "artifact_path", "extra_data", "description")


def split_dataset_args(
    key: str, df: Any, kwargs: dict[str, Any]
) -> tuple[Artifact, dict[str, Any]]:
    """``log_dataset`` arguments → a DatasetArtifact and the arguments of the log call."""
    log_args = {k: kwargs.pop(k) for k in list(kwargs) if k in _LOG_ARGS}
    local_path = kwargs.pop("local_path", None)
    if df is None and local_path is None:
        raise InvalidInput(f"log_dataset({key!r}) needs df= (a DataFrame) or local_path=")
    item = DatasetArtifact(key, df=df, local_path=local_path, **kwargs)
    return item, log_args


def split_model_args(key: str, kwargs: dict[str, Any]) -> tuple[Artifact, dict[str, Any]]:
    """``log_model`` arguments → a ModelArtifact and the arguments of the log call."""
    log_args = {
        k: kwargs.pop(k) for k in list(kwargs) if k in ("labels", "artifact_path", "description")
    }
    extra = kwargs.pop("extra_data", None)
    item = ModelArtifact(key, extra_data=extra, **kwargs)
    return item, log_args


class MLClientCtx:
    """The run context handed to handlers (MLRun's ``MLClientCtx``)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        name: str,
        project: str,
        uid: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        inputs: Mapping[str, DataItem] | None = None,
        input_refs: list[RunInput] | None = None,
        artifact_path: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self.name = name
        self.project = project
        self.uid = uid or uuid.uuid4().hex
        self.parameters = dict(parameters or {})
        self._inputs = dict(inputs or {})
        self._input_refs = list(input_refs or [])
        self.labels = dict(labels or {})
        self.results: dict[str, Any] = {}
        self.outputs: dict[str, str] = {}  # artifact key -> pinned URI
        self.state = "running"
        self._artifact_path_template = artifact_path
        self.artifact_path = catalog.artifact_path(project, None, artifact_path, self.uid)
        self.logger = logging.getLogger(f"catalog.run.{name}")
        if not self.logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("> %(asctime)s [%(levelname)s] %(message)s"))
            self.logger.addHandler(handler)
            self.logger.setLevel(logging.INFO)

    def __repr__(self) -> str:
        return f"<MLClientCtx {self.project}/{self.name} uid={self.uid}>"

    # ---------------------------------------------------------------- inputs

    @property
    def inputs(self) -> dict[str, DataItem]:
        return dict(self._inputs)

    def get_input(self, key: str, url: str = "") -> DataItem:
        if key in self._inputs:
            return self._inputs[key]
        if url:
            return self._catalog.get_dataitem(url)
        raise InvalidInput(f"run {self.name} has no input {key!r}")

    def get_param(self, key: str, default: Any = None) -> Any:
        return self.parameters.get(key, default)

    def artifact_subpath(self, *parts: str) -> str:
        """A path under the run's artifact path."""
        return store.join_url(self.artifact_path, *parts)

    def set_label(self, key: str, value: str) -> None:
        self.labels.update(validate_labels({key: value}))

    # --------------------------------------------------------------- results

    def log_result(self, key: str, value: Any, commit: bool = False) -> None:
        validate_key(key)
        self.results[key] = jsonutil.plain(value)

    def log_results(self, results: Mapping[str, Any], commit: bool = False) -> None:
        for key, value in results.items():
            self.log_result(key, value)

    def commit(self, message: str = "", completed: bool = False) -> None:
        """Compatibility no-op: results are recorded when the run finishes."""

    # ------------------------------------------------------------- artifacts

    @property
    def _producer(self) -> Producer:
        return Producer(
            kind="run",
            name=self.name,
            uri=f"{self.project}/{self.uid}",
            owner=self._catalog.config.actor,
        )

    def _sources(self) -> list[SourceRef]:
        return [SourceRef(name=i.name, uri=i.url, uid=i.uid, hash=i.hash) for i in self._input_refs]

    def _log(
        self,
        item: Artifact,
        *,
        tag: str | None = None,
        labels: Any = None,
        artifact_path: str | None = None,
        extra_data: Any = None,
        description: str | None = None,
    ) -> Artifact:
        art = self._catalog.log_item(
            item,
            project=self.project,
            tag=tag,
            labels=labels,
            artifact_path=artifact_path,
            extra_data=extra_data,
            sources=self._sources(),
            description=description,
            producer=self._producer,
            tree=self.uid,
            run_path=self._artifact_path_template,
        )
        self.outputs[art.key] = art.uri
        return art

    def log_artifact(
        self,
        item: Artifact | str,
        body: Any = None,
        local_path: str | None = None,
        artifact_path: str | None = None,
        tag: str | None = None,
        labels: Mapping[str, str] | None = None,
        format: str | None = None,
        upload: bool | None = None,
        extra_data: Mapping[str, Any] | None = None,
        target_path: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """Log an artifact object, or ``key`` with ``body=`` or ``local_path=``."""
        if isinstance(item, Artifact):
            return self._log(
                item,
                tag=tag,
                labels=labels,
                artifact_path=artifact_path,
                extra_data=extra_data,
                description=description,
            )
        if upload is False and local_path and target_path is None:
            target_path = store.normalize_url(local_path)
            local_path = None
        obj = Artifact(
            item, body=body, local_path=local_path, format=format, target_path=target_path, **kwargs
        )
        return self._log(
            obj,
            tag=tag,
            labels=labels,
            artifact_path=artifact_path,
            extra_data=extra_data,
            description=description,
        )

    def log_dataset(
        self, key: str, df: Any = None, tag: str | None = None, **kwargs: Any
    ) -> Artifact:
        """Log a DataFrame as a dataset (format, preview, stats, index=... pass through)."""
        item, log_args = split_dataset_args(key, df, dict(kwargs))
        return self._log(item, tag=tag, **log_args)

    def log_model(self, key: str, tag: str | None = None, **kwargs: Any) -> Artifact:
        """Log a model (body=, model_file= or model_dir=) with its metadata."""
        item, log_args = split_model_args(key, dict(kwargs))
        return self._log(item, tag=tag, **log_args)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": {
                "name": self.name,
                "project": self.project,
                "uid": self.uid,
                "labels": self.labels,
            },
            "spec": {
                "parameters": self.parameters,
                "inputs": {k: v.artifact_url for k, v in self._inputs.items()},
                "artifact_path": self.artifact_path,
            },
            "status": {"state": self.state, "results": self.results, "outputs": self.outputs},
        }


class RunObject:
    """What ``run_local`` returns: the run's identity, state, results and artifacts."""

    def __init__(self, ctx: MLClientCtx, error: str | None = None) -> None:
        self._ctx = ctx
        self.error = error

    @property
    def uid(self) -> str:
        return self._ctx.uid

    @property
    def metadata(self) -> Any:
        from catalog.artifacts.base import Metadata

        return Metadata(
            name=self._ctx.name,
            project=self._ctx.project,
            uid=self._ctx.uid,
            labels=self._ctx.labels,
        )

    def state(self) -> str:
        return self._ctx.state

    @property
    def outputs(self) -> dict[str, Any]:
        """Results and artifact key → pinned store URI."""
        return {**self._ctx.results, **self._ctx.outputs}

    def output(self, key: str) -> Any:
        outputs = self.outputs
        if key not in outputs:
            raise InvalidInput(
                f"run {self._ctx.name} has no output {key!r}; "
                f"outputs: {', '.join(sorted(outputs)) or 'none'}"
            )
        return outputs[key]

    def artifact(self, key: str) -> DataItem:
        """The DataItem of an artifact the run logged (the exact version)."""
        if key not in self._ctx.outputs:
            raise InvalidInput(
                f"run {self._ctx.name} logged no artifact {key!r}; artifacts: "
                f"{', '.join(sorted(self._ctx.outputs)) or 'none'}"
            )
        return self._ctx._catalog.get_dataitem(self._ctx.outputs[key])

    def to_dict(self) -> dict[str, Any]:
        return self._ctx.to_dict()

    def __repr__(self) -> str:
        return f"<RunObject {self._ctx.project}/{self._ctx.name} {self.uid} {self.state()}>"


def _resolve_input(
    catalog: Catalog, name: str, url: Any, project: str
) -> tuple[DataItem, RunInput]:
    if isinstance(url, Artifact):
        url = url.uri
    if isinstance(url, DataItem):
        url = url.artifact_url
    if not isinstance(url, str) or not url:
        raise InvalidInput(f"input {name!r} must be a URI, URL or path, not {url!r}")
    if is_store_uri(url):
        art = catalog.get_artifact(url, project=project)
        item = catalog.get_dataitem(art)
        return item, RunInput(name=name, url=url, uri=art.uri, uid=art.uid, hash=art.hash)
    normalized = store.normalize_url(url)
    digest = None
    if store.is_local(normalized):
        from pathlib import Path

        path = Path(normalized)
        if not path.exists():
            raise InvalidInput(f"input {name!r}: {url} does not exist")
        if path.is_file():
            digest, _ = store.hash_file(normalized)
    elif not store.url_exists(normalized):
        raise InvalidInput(f"input {name!r}: {url} cannot be read")
    return catalog.get_dataitem(normalized), RunInput(name=name, url=normalized, hash=digest)


def _handler_args(
    handler: Callable[..., Any],
    ctx: MLClientCtx,
    params: Mapping[str, Any],
    inputs: Mapping[str, DataItem],
) -> dict[str, Any]:
    sig = inspect.signature(handler)
    names = list(sig.parameters)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    args: dict[str, Any] = {}
    for i, (name, param) in enumerate(sig.parameters.items()):
        annotation = param.annotation
        is_ctx = (
            annotation is MLClientCtx
            or annotation == "MLClientCtx"
            or (i == 0 and name in ("context", "ctx"))
        )
        if is_ctx:
            args[name] = ctx
        elif name in inputs:
            wants_str = annotation is str or annotation == "str"
            args[name] = inputs[name].artifact_url if wants_str else inputs[name]
        elif name in params:
            args[name] = params[name]
    unknown = [k for k in [*params, *inputs] if k not in names]
    if unknown and not accepts_any:
        raise InvalidInput(
            f"handler {handler.__name__}() takes no parameter(s) {', '.join(map(repr, unknown))}"
            f"; it takes {', '.join(names)}"
        )
    if accepts_any:
        for k in unknown:
            args[k] = inputs[k] if k in inputs else params[k]
    missing = [
        n
        for n, p in sig.parameters.items()
        if n not in args
        and p.default is p.empty
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if missing:
        raise InvalidInput(
            f"handler {handler.__name__}() needs {', '.join(map(repr, missing))}"
            " (give them in params= or inputs=)"
        )
    return args


def run_local(
    handler: Callable[..., Any] | None = None,
    name: str = "",
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    project: str = "",
    artifact_path: str = "",
    labels: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
    **kwargs: Any,
) -> RunObject:
    """Run ``handler`` in this process as a recorded run; returns its RunObject.

    ``inputs`` map handler parameters to store URIs, fsspec URLs or paths; a
    store URI is pinned to the version it names now (uid and hash recorded).
    The run's artifact path (``artifact_path=``, may use ``{{run.uid}}``)
    becomes the default of every log call inside it. On failure the run is
    recorded as ``error`` and the exception re-raised.
    """
    from catalog.projects import get_catalog

    if handler is None or not callable(handler):
        raise InvalidInput("run_local needs handler=, a function")
    cat = catalog or get_catalog()
    project = validate_project(project or cat.project)
    name = name or handler.__name__.replace("_", "-")
    run_labels = validate_labels(labels)
    uid = uuid.uuid4().hex
    parameters = dict(params or {})
    run_path = artifact_path or None
    if run_path and "://" not in run_path and not run_path.startswith("+/"):
        from pathlib import Path

        run_path = str(Path(run_path).expanduser().absolute())

    started = False
    ctx: MLClientCtx | None = None
    try:
        resolved = {k: _resolve_input(cat, k, v, project) for k, v in (inputs or {}).items()}
        items = {k: v[0] for k, v in resolved.items()}
        refs = [v[1] for v in resolved.values()]
        ctx = MLClientCtx(
            cat,
            name=name,
            project=project,
            uid=uid,
            parameters=parameters,
            inputs=items,
            input_refs=refs,
            artifact_path=run_path,
            labels=run_labels,
        )
        cat.emit(
            project,
            uid,
            [
                RunStarted(
                    uid=uid,
                    name=name,
                    handler=f"{getattr(handler, '__module__', '')}:{handler.__qualname__}",
                    labels=run_labels,
                    parameters=jsonutil.dumps(parameters),
                    inputs=tuple(refs),
                    artifact_path=ctx.artifact_path,
                )
            ],
        )
        started = True
        args = _handler_args(handler, ctx, parameters, items)
        previous, cat.run_uid = cat.run_uid, uid
        try:
            returned = handler(**args)
        finally:
            cat.run_uid = previous
        if isinstance(returned, Mapping):
            ctx.log_results(returned)
        elif returned is not None:
            ctx.log_result("return", returned)
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        if not started:
            # Record the failed attempt too, so the run list shows it.
            ctx = ctx or MLClientCtx(
                cat,
                name=name,
                project=project,
                uid=uid,
                parameters=parameters,
                artifact_path=run_path,
                labels=run_labels,
            )
            cat.emit(
                project,
                uid,
                [
                    RunStarted(
                        uid=uid, name=name, labels=run_labels, parameters=jsonutil.dumps(parameters)
                    )
                ],
            )
        assert ctx is not None
        ctx.state = "error" if isinstance(exc, Exception) else "aborted"
        cat.emit(
            project,
            uid,
            [
                RunFinished(
                    uid=uid,
                    state=ctx.state,
                    error=message,
                    results=jsonutil.dumps(ctx.results),
                    outputs=dict(ctx.outputs),
                )
            ],
        )
        ctx.logger.debug("run %s failed:\n%s", uid, traceback.format_exc())
        raise
    ctx.state = "completed"
    cat.emit(
        project,
        uid,
        [
            RunFinished(
                uid=uid,
                state="completed",
                results=jsonutil.dumps(ctx.results),
                outputs=dict(ctx.outputs),
            )
        ],
    )
    return RunObject(ctx)


def get_run(uid: str, project: str = "", catalog: Catalog | None = None) -> dict[str, Any]:
    """The recorded run ``uid`` (name, state, parameters, inputs, results, outputs)."""
    from catalog.errors import RunNotFound
    from catalog.projects import get_catalog

    cat = catalog or get_catalog()
    row: dict[str, Any] | None = cat.read("run", project=project or cat.project, uid=uid)
    if row is None:
        raise RunNotFound(uid)
    for name in ("parameters", "inputs", "results"):
        row[name] = json.loads(row[name])
    return row
