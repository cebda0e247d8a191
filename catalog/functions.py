"""Functions: MLRun's ``new_function`` / ``code_to_function`` / ``run_function``.

A function here runs in this process (MLRun's local runtime): a Python
function, a handler in a file, or a script. Running one records a run
exactly as :func:`~catalog.execution.run_local` does (it is what runs it);
tasks, handlers loaded by name and hyper-parameters are :mod:`catalog.tasks`'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from catalog.errors import InvalidInput
from catalog.execution import run_local
from catalog.tasks import RunTemplate, _Bag, load_handler, script_handler

_REMOTE_KINDS = ("job", "dask", "mpijob", "spark", "nuclio", "serving", "remote", "databricks")


class LocalFunction:
    """A function that runs in this process (MLRun's local runtime).

    ``new_function`` makes one; ``run`` records a run like ``run_local``.
    Kinds that need a cluster (``job``, ``dask``, ``nuclio``, ...) run here
    too when ``local=True``; otherwise they are refused.
    """

    def __init__(
        self,
        name: str = "",
        project: str = "",
        kind: str = "",
        command: str = "",
        handler: Any = None,
        args: list[str] | None = None,
    ) -> None:
        self.metadata = _Bag(name=name, project=project)
        self.spec = _Bag(command=command, default_handler=handler, args=list(args or []))
        self.kind = kind or "local"

    def run(
        self,
        runspec: RunTemplate | None = None,
        handler: Any = None,
        name: str = "",
        project: str = "",
        params: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        out_path: str = "",
        artifact_path: str = "",
        local: bool = False,
        hyperparams: Mapping[str, Any] | None = None,
        hyper_param_options: Any = None,
        selector: str = "",
        param_file: str | None = None,
        labels: Mapping[str, str] | None = None,
        returns: list[Any] | None = None,
        schedule: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the handler here; the arguments are ``run_local``'s."""
        if schedule:
            raise InvalidInput(
                f"Unexpected schedule={schedule!r} parameter for local function execution"
            )
        if self.kind in _REMOTE_KINDS and not local and self.kind != "job":
            raise InvalidInput(
                f"functions of kind {self.kind!r} run on a cluster; the catalog runs "
                "functions in this process only (pass local=True)"
            )
        handler = (
            handler or (runspec.spec.handler if runspec else None) or self.spec.default_handler
        )
        if isinstance(handler, str):
            handler = load_handler(handler, self.spec.command or None)
        elif handler is None and self.spec.command:
            handler = script_handler(self.spec.command, self.spec.args)
        return run_local(
            runspec,
            handler,
            name=name or (runspec.metadata.name if runspec else "") or self.metadata.name,
            inputs=inputs,
            params=params,
            project=project or self.metadata.project,
            artifact_path=artifact_path or out_path,
            labels=labels,
            hyperparams=hyperparams,
            hyper_param_options=hyper_param_options,
            selector=selector,
            param_file=param_file,
            returns=returns,
        )

    def __repr__(self) -> str:
        return f"<LocalFunction {self.metadata.name or '(unnamed)'} kind={self.kind}>"


def new_function(
    name: str = "",
    project: str = "",
    tag: str = "",
    kind: str = "",
    command: str = "",
    image: str = "",
    args: list[str] | None = None,
    handler: Any = None,
    **kwargs: Any,
) -> LocalFunction:
    """A function to run in this process (MLRun's ``new_function``; ``image`` and
    cluster settings are accepted and ignored)."""
    return LocalFunction(name, project, kind, command, handler, args)


def code_to_function(
    name: str = "",
    project: str = "",
    filename: str = "",
    handler: Any = None,
    kind: str = "",
    image: str = "",
    **kwargs: Any,
) -> LocalFunction:
    """A function from a Python file (``filename``) and a handler name in it."""
    return LocalFunction(name, project, kind, filename, handler)


def run_function(
    function: LocalFunction | Callable[..., Any] | str,
    handler: Any = None,
    name: str = "",
    params: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    hyper_param_options: Any = None,
    selector: str = "",
    inputs: Mapping[str, Any] | None = None,
    artifact_path: str = "",
    local: bool = True,
    project: str = "",
    labels: Mapping[str, str] | None = None,
    returns: list[Any] | None = None,
    base_task: RunTemplate | None = None,
    **kwargs: Any,
) -> Any:
    """Run a function (a ``new_function``, a Python function, or a file path) here."""
    if callable(function) and not isinstance(function, LocalFunction):
        function, handler = LocalFunction(), handler or function
    elif isinstance(function, str):
        function = LocalFunction(command=function)
    assert isinstance(function, LocalFunction)
    return function.run(
        base_task,
        handler=handler,
        name=name,
        project=project,
        params=params,
        inputs=inputs,
        artifact_path=artifact_path,
        local=True,
        hyperparams=hyperparams,
        hyper_param_options=hyper_param_options,
        selector=selector,
        labels=labels,
        returns=returns,
    )
