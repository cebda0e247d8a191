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

import contextvars
import inspect
import json
import logging
import os
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from catalog import jsonutil, store
from catalog.artifacts.base import Artifact, _Section
from catalog.calls import (
    artifact_from_call,
    fspath_or_none,
    log_returns,
    split_dataset_args,
    split_model_args,
)
from catalog.client import Catalog
from catalog.context import get_catalog
from catalog.datastore import DataItem
from catalog.errors import CatalogError, InvalidInput
from catalog.events.model import Producer, RunFinished, RunInput, RunStarted, SourceRef
from catalog.tasks import (
    HyperOptions,
    RunTemplate,
    iteration_params,
    load_handler,
    run_iterations,
    summarize_children,
)
from catalog.uri import is_store_uri
from catalog.validation import validate_key, validate_labels, validate_project

_current: contextvars.ContextVar[MLClientCtx | None] = contextvars.ContextVar(
    "catalog_run_context", default=None
)


def current_context() -> MLClientCtx | None:
    """The context of the run executing in this thread, if any."""
    return _current.get()


class _Uid(str):
    """A run uid that is also callable: MLRun's ``run.uid()`` beside ``ctx.uid``."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


class MLClientCtx:
    """The run context handed to handlers (MLRun's ``MLClientCtx``).

    A context made by ``run_local`` records its run when the handler returns;
    one made by :func:`get_or_create_ctx` records ``RunStarted`` when it is
    created and ``RunFinished`` on ``commit(completed=True)``, ``set_state``
    or leaving its ``with`` block.
    """

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
        iteration: int = 0,
        parent: MLClientCtx | None = None,
    ) -> None:
        self._catalog = catalog
        self.name = name
        self.project = project
        self.uid = uid or uuid.uuid4().hex
        self.iteration = iteration
        self._parent = parent
        self.parameters = dict(parameters or {})
        self._inputs = dict(inputs or {})
        self._input_refs = list(input_refs or [])
        self.labels = dict(labels or {})
        self.annotations: dict[str, str] = {}
        self.results: dict[str, Any] = {}
        self.outputs: dict[str, str] = {}  # artifact key -> pinned URI
        self._artifacts: dict[str, Artifact] = {}  # artifact key -> the version logged
        self.state = "running"
        self.error: str | None = None
        self.start_time = datetime.now(UTC)
        self._standalone = False  # made by get_or_create_ctx: records its own end
        self._children: list[MLClientCtx] = []
        self._best: int | None = None
        self._returns_logged = False
        self._artifact_path_template = artifact_path
        self.artifact_path = catalog.artifact_path(project, None, artifact_path, self.uid)
        self.logger = logging.getLogger(f"catalog.run.{name}")
        if not self.logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("> %(asctime)s [%(levelname)s] %(message)s"))
            self.logger.addHandler(handler)
            self.logger.setLevel(logging.INFO)

    def _announce(self, handler: str) -> None:
        """Append this run's ``RunStarted`` (``handler``: module:function, or "")."""
        self._catalog.emit(
            self.project,
            self.uid,
            [
                RunStarted(
                    uid=self.uid,
                    name=self.name,
                    handler=handler,
                    labels=self.labels,
                    parameters=jsonutil.dumps(self.parameters),
                    inputs=tuple(self._input_refs),
                    artifact_path=self.artifact_path,
                )
            ],
        )

    def __repr__(self) -> str:
        it = f" iter={self.iteration}" if self.iteration else ""
        return f"<MLClientCtx {self.project}/{self.name} uid={self.uid}{it}>"

    @property
    def catalog(self) -> Catalog:
        """The client this run writes through."""
        return self._catalog

    @property
    def tag(self) -> str:
        return ""

    @property
    def out_path(self) -> str:
        return self.artifact_path

    # ---------------------------------------------------------------- inputs

    @property
    def inputs(self) -> dict[str, DataItem]:
        return dict(self._inputs)

    def get_input(self, key: str, url: str = "") -> DataItem:
        """A run input by name; else ``url`` (or ``key`` itself, as MLRun does) read as a URL."""
        if key in self._inputs:
            return self._inputs[key]
        target = url or key
        try:
            item = self._catalog.get_dataitem(target)
        except CatalogError as exc:
            raise InvalidInput(
                f"run {self.name} has no input {key!r} (inputs: "
                f"{', '.join(sorted(self._inputs)) or 'none'}), and {target!r} cannot be read "
                f"as a URL: {exc}"
            ) from exc
        if not is_store_uri(item.url) and not store.url_exists(item.url):
            raise InvalidInput(
                f"run {self.name} has no input {key!r} (inputs: "
                f"{', '.join(sorted(self._inputs)) or 'none'}), and {target!r} does not exist"
            )
        self._inputs[key] = item
        return item

    def get_dataitem(self, url: str, secrets: Mapping[str, str] | None = None) -> DataItem:
        """A DataItem for a store URI, an fsspec URL or a path (MLRun's ``get_dataitem``)."""
        return self._catalog.get_dataitem(url)

    def get_store_resource(self, url: str) -> Artifact:
        """The artifact version a store URI names."""
        return self._catalog.get_artifact(url, project=self.project)

    def get_secret(self, key: str) -> str | None:
        """A secret: the environment variable ``key`` (None if unset).

        The catalog keeps no secrets; a job gets them from its environment.
        """
        return os.environ.get(key)

    def get_param(self, key: str, default: Any = None) -> Any:
        return self.parameters.get(key, default)

    def artifact_subpath(self, *parts: str) -> str:
        """A path under the run's artifact path."""
        return store.join_url(self.artifact_path, *parts)

    def set_label(self, key: str, value: str, replace: bool = True) -> None:
        if replace or key not in self.labels:
            self.labels.update(validate_labels({key: value}))

    def set_annotation(self, key: str, value: str, replace: bool = True) -> None:
        """Kept for MLRun code: annotations live with the context, not in the catalog."""
        if replace or key not in self.annotations:
            self.annotations[key] = str(value)

    # --------------------------------------------------------------- results

    def log_result(self, key: str, value: Any, commit: bool = False) -> None:
        validate_key(key)
        self.results[key] = jsonutil.plain(value)

    def log_results(self, results: Mapping[str, Any], commit: bool = False) -> None:
        for key, value in results.items():
            self.log_result(key, value)

    def commit(self, message: str = "", completed: bool = False) -> None:
        """With ``completed=True``, a context from ``get_or_create_ctx`` records that
        its run completed (``RunFinished``). In ``run_local`` the run is recorded
        when the handler returns, so this does nothing there."""
        if completed and self._standalone and self.state == "running":
            self._finish("completed")

    def set_state(
        self, execution_state: str | None = None, error: str | None = None, commit: bool = True
    ) -> None:
        """Set the state; an ``error`` (even empty) makes it ``error``. A context
        from ``get_or_create_ctx`` records its end when the state is final."""
        if error is not None:
            self.error = str(error)
            state = "error"
        elif execution_state == "running" or execution_state is None:
            state = self.state
        else:
            state = str(execution_state)
        if self._standalone and state in ("completed", "error", "aborted"):
            if self.state == "running":
                self._finish(state, self.error)
        else:
            self.state = state

    def __enter__(self) -> MLClientCtx:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._parent is not None:  # a child of get_child_context: back to its parent
            self.state = "error" if exc is not None else "completed"
            if exc is not None:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        if self._standalone and self.state == "running":
            if exc is not None:
                self._finish("error", f"{type(exc).__name__}: {exc}")
            else:
                self._finish(self.state if self.error is None else "error", self.error)
        elif self._standalone and self.error is not None and exc is None:
            pass

    def _finish(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.error = error
        self._catalog.emit(
            self.project,
            self.uid,
            [
                RunFinished(
                    uid=self.uid,
                    state=state,
                    error=self.error if state != "completed" else None,
                    results=jsonutil.dumps(self.results),
                    outputs=dict(self.outputs),
                )
            ],
        )

    # ----------------------------------------------------- custom iterations

    def get_child_context(self, with_parent_params: bool = False, **params: Any) -> MLClientCtx:
        """A context for one more iteration of this run (MLRun's custom hyper-parameter
        loops): its artifacts are logged under ``#<iteration>``; use it in a ``with``
        block and call ``mark_as_best()`` on the best one."""
        parameters = {**self.parameters, **params} if with_parent_params else dict(params)
        child = self._child(len(self._children) + 1, parameters)
        self._children.append(child)
        return child

    def _child(self, iteration: int, parameters: Mapping[str, Any]) -> MLClientCtx:
        child = MLClientCtx(
            self._catalog,
            name=self.name,
            project=self.project,
            uid=self.uid,
            parameters=parameters,
            inputs=self._inputs,
            input_refs=self._input_refs,
            artifact_path=self._artifact_path_template,
            labels=self.labels,
            iteration=iteration,
            parent=self,
        )
        child.logger = self.logger
        return child

    def mark_as_best(self) -> None:
        """This iteration is the run's best (its results and artifacts become the run's)."""
        if self._parent is None:
            raise InvalidInput("mark_as_best() is for an iteration's context (get_child_context)")
        self._parent._best = self.iteration

    # ------------------------------------------------------------- artifacts

    @property
    def _producer(self) -> Producer:
        return Producer(
            kind="run",
            name=self.name,
            uri=f"{self.project}/{self.uid}",
            owner=self.labels.get("owner") or self._catalog.config.actor,
        )

    def _sources(self) -> list[SourceRef]:
        return [SourceRef(name=i.name, uri=i.url, uid=i.uid, hash=i.hash) for i in self._input_refs]

    def _log(
        self,
        item: Artifact,
        *,
        tag: str | None = None,
        labels: Any = None,
        artifact_path: Any = None,
        extra_data: Any = None,
        description: str | None = None,
    ) -> Artifact:
        art = self._catalog.log_item(
            item,
            project=self.project,
            tag=tag or None,
            labels=labels,
            artifact_path=fspath_or_none(artifact_path),
            extra_data=extra_data,
            sources=self._sources(),
            description=description,
            producer=self._producer,
            tree=self.uid,
            run_path=self._artifact_path_template,
            iteration=self.iteration,
        )
        self.outputs[art.key] = art.uri
        self._artifacts[art.key] = art
        return art

    def log_artifact(
        self,
        item: Artifact | str,
        body: Any = None,
        local_path: Any = None,
        artifact_path: Any = None,
        tag: str | None = None,
        labels: Mapping[str, str] | None = None,
        format: str | None = None,
        upload: bool | None = None,
        extra_data: Mapping[str, Any] | None = None,
        target_path: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """Log an artifact object, or ``key`` with ``body=`` or ``local_path=``.

        MLRun's forms: ``body=`` with ``local_path=`` stores the body under that
        file name; an artifact object takes ``body=``, ``local_path=``,
        ``target_path=``, ``upload=`` and ``format=`` from the call;
        ``upload=False`` records a file where it is.
        """
        obj = artifact_from_call(
            item,
            body,
            local_path,
            format=format,
            upload=upload,
            target_path=target_path,
            kwargs=dict(kwargs),
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

    def get_cached_artifact(self, key: str) -> Artifact | None:
        """The version this run logged under ``key`` (None if none)."""
        return self._artifacts.get(key)

    def update_artifact(self, artifact: Artifact) -> Artifact:
        """Record changes made to a logged version's labels, description or
        kind-specific spec (one ``ArtifactUpdated``; the bytes cannot change)."""
        logged = self._catalog.get_artifact(artifact.uri)
        spec = {k: v for k, v in artifact.kind_spec.items() if logged.kind_spec.get(k) != v}
        changed = self._catalog.update_artifact(
            logged,
            labels={k: v for k, v in artifact.labels.items() if logged.labels.get(k) != v},
            spec=spec,
            description=artifact.metadata.description
            if artifact.metadata.description != logged.metadata.description
            else None,
        )
        self._artifacts[changed.key] = changed
        return changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": {
                "name": self.name,
                "project": self.project,
                "uid": str(self.uid),
                "labels": self.labels,
            },
            "spec": {
                "parameters": self.parameters,
                "inputs": {k: v.artifact_url for k, v in self._inputs.items()},
                "artifact_path": self.artifact_path,
            },
            "status": {"state": self.state, "results": self.results, "outputs": self.outputs},
        }

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))


class RunStatus(_Section):
    """MLRun's ``run.status``: ``state``, ``results``, ``artifacts`` (documents),
    ``artifact_uris``, ``iterations`` (a table: header row, then one row per
    iteration), ``error``."""


class RunObject:
    """What ``run_local`` returns: the run's identity, state, results and artifacts."""

    def __init__(self, ctx: MLClientCtx, error: str | None = None) -> None:
        self._ctx = ctx
        self.error = error
        self.iterations: list[list[Any]] = []

    @property
    def uid(self) -> str:
        """The run uid; calling it also gives it (MLRun's ``run.uid()``)."""
        return _Uid(self._ctx.uid)

    @property
    def metadata(self) -> Any:
        from catalog.artifacts.base import Metadata

        return Metadata(
            name=self._ctx.name,
            project=self._ctx.project,
            uid=self._ctx.uid,
            labels=self._ctx.labels,
            iteration=0,
        )

    @property
    def spec(self) -> Any:
        from catalog.artifacts.base import Spec

        return Spec(
            parameters=self._ctx.parameters,
            inputs={k: v.artifact_url for k, v in self._ctx._inputs.items()},
            output_path=self._ctx.artifact_path,
        )

    @property
    def status(self) -> RunStatus:
        """State, results, artifact documents and URIs, iterations, error."""
        return RunStatus(
            state=self._ctx.state,
            results=dict(self._ctx.results),
            artifacts=[a.to_dict() for a in self._ctx._artifacts.values()],
            artifact_uris=dict(self._ctx.outputs),
            iterations=list(self.iterations),
            error=self._ctx.error,
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

    def show(self) -> None:
        print(self._ctx.to_yaml())

    def logs(self, *args: Any, **kwargs: Any) -> None:
        """A local run's log went to this process's logging; nothing to fetch."""

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
            wants_df = getattr(annotation, "__name__", annotation) in (
                "DataFrame",
                "pd.DataFrame",
                "pandas.DataFrame",
            )
            if wants_str:
                args[name] = inputs[name].artifact_url
            elif wants_df:  # MLRun parses an input annotated DataFrame into one
                args[name] = inputs[name].as_df()
            else:
                args[name] = inputs[name]
        elif name in params:
            args[name] = params[name]
    # an input the handler does not take is still the run's: read with context.get_input
    unknown = [k for k in params if k not in names]
    if unknown and not accepts_any:
        raise InvalidInput(
            f"handler {handler.__name__}() takes no parameter(s) {', '.join(map(repr, unknown))}"
            f"; it takes {', '.join(names)}"
        )
    if accepts_any:
        for k in unknown:
            args[k] = params[k]
        for k in inputs:
            if k not in names and k.isidentifier():
                args[k] = inputs[k]
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
    task: Any = None,
    handler: Any = None,
    name: str = "",
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    project: str = "",
    artifact_path: Any = "",
    labels: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
    *,
    hyperparams: Mapping[str, Any] | None = None,
    hyper_param_options: Any = None,
    selector: str = "",
    param_file: str | None = None,
    returns: list[Any] | None = None,
    **kwargs: Any,
) -> RunObject:
    """Run ``handler`` in this process as a recorded run; returns its RunObject.

    ``inputs`` map handler parameters to store URIs, fsspec URLs or paths; a
    store URI is pinned to the version it names now (uid and hash recorded).
    The run's artifact path (``artifact_path=``, may use ``{{run.uid}}``)
    becomes the default of every log call inside it. On failure the run is
    recorded as ``error`` and the exception re-raised.

    The first argument is MLRun's ``task`` (made by ``new_task``), or the
    handler itself. A task supplies name, params,
    inputs, labels, artifact path and hyper-parameters. With ``hyperparams``
    (or ``param_file``) the handler runs once per iteration (see
    :mod:`catalog.tasks`); ``selector`` (``max.accuracy``) picks the best.
    ``returns`` names the handler's returned values, logged as ``@handler(outputs=)``.
    """
    if task is not None and not isinstance(task, RunTemplate):
        if handler is not None:
            raise InvalidInput(
                f"run_local: the first argument is a task (new_task) or the handler; "
                f"got {type(task).__name__} and handler= too"
            )
        task, handler = None, task
    options = HyperOptions.of(hyper_param_options, selector=selector)
    if task is not None:
        handler = handler or task.spec.handler
        name = name or task.metadata.name or ""
        project = project or task.metadata.project or ""
        params = {**task.spec.parameters, **(params or {})}
        inputs = {**task.spec.inputs, **(inputs or {})}
        labels = {**task.metadata.labels, **(labels or {})}
        artifact_path = artifact_path or task.spec.output_path or ""
        hyperparams = hyperparams or task.spec.hyperparams or None
        param_file = param_file or task.spec.param_file
        options = options.merged(task.spec.hyper_param_options)
        returns = returns or task.spec.returns
    if isinstance(handler, str):
        handler = load_handler(handler, kwargs.get("command"))
    if handler is None or not callable(handler):
        raise InvalidInput("run_local needs handler=, a function")
    cat = catalog or get_catalog()
    project = validate_project(project or cat.project)
    # a run named by its handler: _private_fn -> private-fn (a key starts with a letter or digit)
    name = (
        name or getattr(handler, "__name__", "handler").replace("_", "-").strip("-.") or "handler"
    )
    validate_key(name)
    run_labels = {"kind": "local", **validate_labels(labels)}  # as MLRun labels its runs
    uid = uuid.uuid4().hex
    parameters = dict(params or {})
    grid = iteration_params(hyperparams, param_file, options)  # bad input refused before any event
    run_path = fspath_or_none(artifact_path)
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
        ctx._announce(f"{getattr(handler, '__module__', '')}:{handler.__qualname__}")
        started = True
        table: list[list[Any]] = []
        if grid is not None:
            table = run_iterations(ctx, handler, items, grid, options, returns, call_handler)
        else:
            call_handler(ctx, handler, parameters, items, returns)
            if ctx._children:
                table = summarize_children(ctx, options)
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
        ctx.error = message
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
    ctx.state = "completed" if ctx.error is None else "error"
    cat.emit(
        project,
        uid,
        [
            RunFinished(
                uid=uid,
                state=ctx.state,
                error=ctx.error,
                results=jsonutil.dumps(ctx.results),
                outputs=dict(ctx.outputs),
            )
        ],
    )
    run = RunObject(ctx)
    run.iterations = table
    return run


def call_handler(
    ctx: MLClientCtx,
    handler: Callable[..., Any],
    parameters: Mapping[str, Any],
    items: Mapping[str, DataItem],
    returns: list[Any] | None = None,
) -> None:
    """Call ``handler`` with its arguments filled from the context, params and inputs,
    and log what it returns: MLRun's result ``return`` (a dict's keys also as results),
    or the values ``returns`` / ``@handler(outputs=)`` name."""
    args = _handler_args(handler, ctx, parameters, items)
    cat = ctx._catalog
    previous, cat.run_uid = cat.run_uid, ctx.uid
    token = _current.set(ctx)
    try:
        returned = handler(**args)
    finally:
        _current.reset(token)
        cat.run_uid = previous
    if ctx._returns_logged:
        return
    if returns:
        log_returns(ctx, returned, returns)
        return
    if returned is None:
        return
    if isinstance(returned, Mapping):
        ctx.log_results(returned)
    try:
        ctx.log_result("return", returned)
    except (TypeError, ValueError):  # not JSON: say what was returned
        ctx.log_result("return", repr(returned))


_contexts: dict[tuple[str, str], MLClientCtx] = {}


def get_or_create_ctx(
    name: str,
    event: Any = None,
    spec: Any = None,
    with_env: bool = True,
    rundb: str = "",
    project: str = "",
    upload_artifacts: bool = False,
    labels: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
) -> MLClientCtx:
    """MLRun's entry point for code that runs outside ``run_local``.

    Inside a running handler it returns that run's context. Otherwise it
    returns the context of a run recorded now (``RunStarted``, label
    ``kind=local``), the same one for the same name and project until that
    run ends: ``commit(completed=True)``, ``set_state(...)`` or leaving a
    ``with ctx:`` block records its end. ``spec`` may be a run document
    (``metadata``/``spec``: name, project, labels, parameters, inputs,
    output_path). ``event``, ``rundb`` and ``upload_artifacts`` are accepted.
    """
    active = _current.get()
    if active is not None and spec is None:
        return active
    document: Mapping[str, Any] = {}
    if spec is not None:
        document = json.loads(spec) if isinstance(spec, str | bytes) else dict(spec)
    meta = dict(document.get("metadata") or {})
    run_spec = dict(document.get("spec") or {})
    cat = catalog or get_catalog()
    project = validate_project(project or meta.get("project") or cat.project)
    name = meta.get("name") or name
    validate_key(name)
    cache_key = (project, name)
    cached = _contexts.get(cache_key)
    if spec is None and cached is not None and cached.state == "running":
        return cached
    run_labels = {"kind": "local", **validate_labels(meta.get("labels")), **validate_labels(labels)}
    parameters = dict(run_spec.get("parameters") or {})
    run_path = fspath_or_none(run_spec.get("output_path") or run_spec.get("artifact_path"))
    uid = str(meta.get("uid") or uuid.uuid4().hex)
    inputs: dict[str, DataItem] = {}
    refs: list[RunInput] = []
    for key, url in (run_spec.get("inputs") or {}).items():
        try:
            item, ref = _resolve_input(cat, key, url, project)
        except CatalogError:
            continue  # read on demand by get_input (MLRun resolves inputs lazily)
        inputs[key] = item
        refs.append(ref)
    ctx = MLClientCtx(
        cat,
        name=name,
        project=project,
        uid=uid,
        parameters=parameters,
        inputs=inputs,
        input_refs=refs,
        artifact_path=run_path,
        labels=run_labels,
    )
    ctx._standalone = True
    ctx._announce("")
    _contexts[cache_key] = ctx
    return ctx


def get_run(uid: str, project: str = "", catalog: Catalog | None = None) -> dict[str, Any]:
    """The recorded run ``uid`` (name, state, parameters, inputs, results, outputs)."""
    from catalog.errors import RunNotFound

    cat = catalog or get_catalog()
    row: dict[str, Any] | None = cat.read("run", project=project or cat.project, uid=uid)
    if row is None:
        raise RunNotFound(uid)
    for name in ("parameters", "inputs", "results"):
        row[name] = json.loads(row[name])
    return row
