"""Tasks, handlers loaded by name and hyper-parameter runs (MLRun's ``new_task``,
``with_hyper_params``); the functions that run them are :mod:`catalog.functions`.

A hyper-parameter run is one run (one ``RunStarted``/``RunFinished`` pair)
whose handler is called once per **iteration**, numbered from 1. Each
iteration gets its own parameters and a child context: the artifacts it logs
are versions of their keys at that iteration (``store://…/key#3^uid``), with
the run as their producer. When the iterations are done:

- the **best** iteration is chosen by the selector (``max.accuracy``,
  ``min.loss``, or a result name, meaning ``max``); its results become the
  run's results, its artifacts the run's outputs, and ``best_iteration`` is
  a result;
- the table of iterations (``state``, ``iter``, ``param.*``, ``output.*``)
  is the run's ``status.iterations`` and is logged as the table artifact
  ``iteration_results`` (csv) at iteration 0.

Strategies: ``grid`` (every combination, the default), ``list`` (the i-th
value of every list), ``random`` (``max_iterations`` random combinations,
10 by default). ``param_file`` reads the values from a csv (one iteration per
row: ``list``) or json (a dict of lists) file or URL. ``stop_condition``
(``"accuracy>=0.9"``) ends the loop after the first iteration whose results
satisfy it. Iterations run one after another in this process
(``parallel_runs`` is accepted and ignored). An iteration that raises is
recorded as ``error`` in the table; the run fails only if every one did.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import io
import itertools
import json
import operator
import os
import random
import runpy
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from catalog.errors import InvalidInput

STRATEGIES = ("grid", "list", "random")
DEFAULT_MAX_ITERATIONS = 10


# ------------------------------------------------------------------- options


@dataclass(frozen=True)
class HyperOptions:
    """``selector``, ``strategy``, ``stop_condition``, ``max_iterations`` (MLRun's
    ``HyperParamOptions``; ``parallel_runs`` and the rest are accepted)."""

    selector: str = ""
    strategy: str = ""
    stop_condition: str = ""
    max_iterations: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: Any = None, **given: Any) -> HyperOptions:
        fields: dict[str, Any] = {}
        if isinstance(value, HyperOptions):
            fields = {
                "selector": value.selector,
                "strategy": value.strategy,
                "stop_condition": value.stop_condition,
                "max_iterations": value.max_iterations,
                "extra": dict(value.extra),
            }
        elif isinstance(value, Mapping):
            fields = dict(value)
        elif value is not None:
            fields = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        for k, v in given.items():
            if v not in (None, ""):
                fields[k] = v
        known = {k: fields.pop(k) for k in list(fields) if k in cls.__dataclass_fields__}
        extra = {**dict(known.pop("extra", None) or {}), **fields}
        options = cls(**known, extra=extra)
        if options.strategy and options.strategy not in STRATEGIES:
            raise InvalidInput(
                f"unknown hyper-parameter strategy {options.strategy!r}; one of "
                f"{', '.join(STRATEGIES)}"
            )
        return options

    def merged(self, other: HyperOptions | None) -> HyperOptions:
        """These options, with any left unset taken from ``other``."""
        if other is None:
            return self
        return replace(
            self,
            selector=self.selector or other.selector,
            strategy=self.strategy or other.strategy,
            stop_condition=self.stop_condition or other.stop_condition,
            max_iterations=self.max_iterations or other.max_iterations,
            extra={**other.extra, **self.extra},
        )


# ------------------------------------------------------------------ the grid


def iteration_params(
    hyperparams: Mapping[str, Any] | None, param_file: str | None, options: HyperOptions
) -> list[dict[str, Any]] | None:
    """The parameters of each iteration, or None for a run without iterations."""
    if not hyperparams and not param_file:
        return None
    strategy = options.strategy
    if param_file:
        values, file_strategy = _read_param_file(param_file)
        strategy = strategy or file_strategy
        hyperparams = {**values, **dict(hyperparams or {})}
    assert hyperparams is not None
    if not isinstance(hyperparams, Mapping):
        raise InvalidInput(f"hyperparams must be a dict of lists, not {type(hyperparams).__name__}")
    lists: dict[str, list[Any]] = {}
    for name, values in hyperparams.items():
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            raise InvalidInput(f"hyperparams[{name!r}] must be a list of values, not {values!r}")
        lists[str(name)] = list(values)
        if not lists[str(name)]:
            raise InvalidInput(f"hyperparams[{name!r}] is empty")
    strategy = strategy or "grid"
    names = list(lists)
    if strategy == "list":
        lengths = {len(v) for v in lists.values()}
        if len(lengths) > 1:
            raise InvalidInput(
                "with strategy 'list' every hyperparams list has the same length; got "
                + ", ".join(f"{k}: {len(v)}" for k, v in lists.items())
            )
        return [dict(zip(names, row, strict=True)) for row in zip(*lists.values(), strict=True)]
    # MLRun's grid order: the first parameter varies fastest ({"a": [1, 2], "b": [3, 4]}
    # runs a=1,b=3; a=2,b=3; a=1,b=4; a=2,b=4)
    combos = [
        dict(zip(names, reversed(row), strict=True))
        for row in itertools.product(*reversed(list(lists.values())))
    ]
    if strategy == "random":
        count = options.max_iterations or DEFAULT_MAX_ITERATIONS
        return [random.choice(combos) for _ in range(count)]
    if options.max_iterations:
        combos = combos[: options.max_iterations]
    return combos


def _read_param_file(url: str) -> tuple[dict[str, list[Any]], str]:
    """Values from a csv (rows: strategy ``list``) or json (dict of lists) file or URL."""
    from catalog import store

    try:
        with store.open_url(store.normalize_url(url), "rb") as fh:
            data = fh.read()
    except Exception as exc:
        raise InvalidInput(f"param_file {url!r} cannot be read: {exc}") from exc
    if url.lower().endswith(".json"):
        try:
            values = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"param_file {url!r} is not JSON: {exc}") from exc
        if not isinstance(values, dict):
            raise InvalidInput(f"param_file {url!r} must hold a dict of lists")
        return values, "grid"
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(data))
    return {str(c): frame[c].tolist() for c in frame.columns}, "list"


# ---------------------------------------------------------------- selection

_COMPARE = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def parse_selector(selector: str) -> tuple[str, str]:
    """``max.accuracy`` → (``max``, ``accuracy``); a bare name means ``max``."""
    if not selector:
        return "", ""
    if "." in selector:
        how, _, result = selector.partition(".")
        if how not in ("max", "min"):
            raise InvalidInput(f"selector {selector!r}: write max.<result> or min.<result>")
        return how, result
    return "max", selector


def select_best(rows: list[tuple[int, str, dict[str, Any]]], selector: str) -> int | None:
    """The iteration whose result the selector names is highest (or lowest)."""
    how, result = parse_selector(selector)
    if not result:
        return None
    scored = [
        (results[result], it)
        for it, state, results in rows
        if state == "completed" and isinstance(results.get(result), int | float)
    ]
    if not scored:
        return None
    best = max(scored, key=lambda s: s[0]) if how == "max" else min(scored, key=lambda s: s[0])
    return best[1]


def stop_reached(condition: str, results: Mapping[str, Any]) -> bool:
    """Whether results satisfy ``result OP value`` terms joined by ``and``/``or``."""
    if not condition:
        return False
    try:
        tree = ast.parse(condition, mode="eval").body
    except SyntaxError as exc:
        raise InvalidInput(f"stop_condition {condition!r} is not an expression: {exc}") from exc
    return bool(_evaluate(tree, results, condition))


def _evaluate(node: ast.AST, results: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, results, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, results, text)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, results, text)
            symbol = {
                ast.Gt: ">",
                ast.GtE: ">=",
                ast.Lt: "<",
                ast.LtE: "<=",
                ast.Eq: "==",
                ast.NotEq: "!=",
            }.get(type(op))
            if symbol is None or left is None or right is None:
                return False
            if not _COMPARE[symbol](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return results.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    raise InvalidInput(f"stop_condition {text!r}: only result names, numbers and comparisons")


# ---------------------------------------------------------------- iterations


def run_iterations(
    ctx: Any,
    handler: Callable[..., Any],
    items: Mapping[str, Any],
    grid: list[dict[str, Any]],
    options: HyperOptions,
    returns: list[Any] | None,
    call: Callable[..., None],
) -> list[list[Any]]:
    """Call ``handler`` once per parameter set in ``grid``; then choose the best."""
    for number, params in enumerate(grid, start=1):
        child = ctx._child(number, {**ctx.parameters, **params})
        ctx._children.append(child)
        try:
            call(child, handler, child.parameters, items, returns)
            child.state = "completed"
        except InvalidInput:
            raise  # the handler's arguments are wrong: every iteration would fail alike
        except Exception as exc:
            child.state, child.error = "error", f"{type(exc).__name__}: {exc}"
            ctx.logger.error("iteration %d failed: %s", number, child.error)
        if child.state == "completed" and stop_reached(options.stop_condition, child.results):
            ctx.logger.info(
                "iteration %d met the stop condition %s", number, options.stop_condition
            )
            break
    return summarize_children(ctx, options)


def link_best_iteration(ctx: Any, art: Any, best: int) -> Any:
    """The best iteration's version of a key, named again at iteration 0 (its bytes,
    not copied; ``spec.link_iteration`` says which), as MLRun links it: a key read
    without ``#<iteration>`` then gives the best one."""
    spec = {k: v for k, v in art.kind_spec.items() if k != "link_iteration"}
    return ctx._catalog.log_artifact(
        art.key,
        kind=art.kind,
        project=ctx.project,
        labels=art.labels,
        format=art.spec.format,
        filename=art.spec.filename,
        spec={**spec, "link_iteration": best},
        extra_data=art.extra_data or None,
        description=art.metadata.description,
        target_path=None if art.hash else art.target_path,
        stored_version=art if art.hash else None,
        producer=ctx._producer,
        tree=ctx.uid,
        sources=ctx._sources(),
        iteration=0,
    )


def summarize_children(ctx: Any, options: HyperOptions) -> list[list[Any]]:
    """The iteration table; the best iteration's results and outputs become the run's."""
    import pandas as pd

    from catalog.artifacts.dataset import TableArtifact

    children = ctx._children
    param_names = list(dict.fromkeys(k for c in children for k in c.parameters))
    result_names = list(dict.fromkeys(k for c in children for k in c.results))
    header = ["state", "iter"]
    header += [f"param.{k}" for k in param_names] + [f"output.{k}" for k in result_names]
    rows = [
        [c.state, c.iteration]
        + [c.parameters.get(k) for k in param_names]
        + [c.results.get(k) for k in result_names]
        for c in children
    ]
    best = ctx._best or select_best(
        [(c.iteration, c.state, c.results) for c in children], options.selector
    )
    failed = [c for c in children if c.state != "completed"]
    if children and len(failed) == len(children):
        ctx.error = f"{len(failed)} of {len(children)} iterations failed: {failed[0].error}"
    if best is None and options.selector:
        ctx.logger.warning("no best iteration: no completed one has %s", options.selector)
    chosen = next((c for c in children if c.iteration == best), None)
    if chosen is not None and best is not None:
        ctx.results.update(chosen.results)
        ctx.outputs.update(chosen.outputs)
        ctx._artifacts.update(chosen._artifacts)
        ctx.log_result("best_iteration", best)
        for art in chosen._artifacts.values():
            link_best_iteration(ctx, art, best)
    frame = pd.DataFrame(rows, columns=header)
    ctx.log_artifact(TableArtifact("iteration_results", df=frame))
    return [header, *rows]


# --------------------------------------------------------------------- tasks


class _Bag:
    """An attribute bag for a task's ``metadata`` and ``spec``."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{type(self).__name__} has no {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (v.to_dict() if isinstance(v, _Bag) else v)
            for k, v in self.__dict__.items()
            if v not in (None, {}, [])
        }


class RunTemplate:
    """A run description (MLRun's ``RunTemplate``): what ``new_task`` returns,
    what ``run_local(task)`` and ``function.run(task)`` take."""

    def __init__(self) -> None:
        self.metadata = _Bag(name="", project="", labels={})
        self.spec = _Bag(
            parameters={},
            inputs={},
            handler=None,
            hyperparams={},
            hyper_param_options=HyperOptions(),
            param_file=None,
            output_path="",
            returns=None,
            secret_sources=[],
        )

    def copy(self) -> RunTemplate:
        return copy.deepcopy(self)

    def with_params(self, **params: Any) -> RunTemplate:
        self.spec.parameters.update(params)
        return self

    def with_input(self, key: str, path: str) -> RunTemplate:
        self.spec.inputs[key] = path
        return self

    def with_inputs(self, inputs: Mapping[str, str]) -> RunTemplate:
        self.spec.inputs.update(inputs)
        return self

    def with_hyper_params(
        self,
        hyperparams: Mapping[str, Any],
        selector: str | None = None,
        strategy: str | None = None,
        **options: Any,
    ) -> RunTemplate:
        """Run once per parameter combination; ``selector`` picks the best
        (``max.accuracy``); ``strategy`` grid, list or random; ``stop_condition``,
        ``max_iterations``."""
        self.spec.hyperparams = dict(hyperparams)
        self.spec.hyper_param_options = HyperOptions.of(
            self.spec.hyper_param_options, selector=selector, strategy=strategy, **options
        )
        return self

    def with_param_file(
        self,
        param_file: str,
        selector: str | None = None,
        strategy: str | None = None,
        **options: Any,
    ) -> RunTemplate:
        """Iterations from a csv (rows) or json (dict of lists) file or URL."""
        self.spec.param_file = param_file
        self.spec.hyper_param_options = HyperOptions.of(
            self.spec.hyper_param_options, selector=selector, strategy=strategy, **options
        )
        return self

    def with_secrets(self, kind: str, source: Any) -> RunTemplate:
        """Accepted: a local run reads secrets from its environment (``get_secret``)."""
        self.spec.secret_sources.append({"kind": kind, "source": source})
        return self

    def set_label(self, key: str, value: str) -> RunTemplate:
        self.metadata.labels[key] = str(value)
        return self

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec.to_dict()
        options = spec.pop("hyper_param_options", None)
        if isinstance(options, HyperOptions) and options != HyperOptions():
            spec["hyper_param_options"] = {
                k: v
                for k, v in {
                    "selector": options.selector,
                    "strategy": options.strategy,
                    "stop_condition": options.stop_condition,
                    "max_iterations": options.max_iterations,
                    **options.extra,
                }.items()
                if v not in (None, "")
            }
        if callable(spec.get("handler")):
            spec["handler"] = spec["handler"].__name__
        return {"metadata": self.metadata.to_dict(), "spec": spec}

    def __repr__(self) -> str:
        return f"<RunTemplate {self.metadata.name or '(unnamed)'}>"


def new_task(
    name: str | None = None,
    project: str | None = None,
    handler: Any = None,
    params: Mapping[str, Any] | None = None,
    hyper_params: Mapping[str, Any] | None = None,
    param_file: str | None = None,
    selector: str | None = None,
    hyper_param_options: Any = None,
    inputs: Mapping[str, str] | None = None,
    outputs: list[str] | None = None,
    in_path: str | None = None,
    out_path: str | None = None,
    artifact_path: str | None = None,
    secrets: Any = None,
    base: RunTemplate | None = None,
    returns: list[Any] | None = None,
) -> RunTemplate:
    """A run template (MLRun's ``new_task``): name, handler, params, inputs,
    artifact path (``artifact_path`` or ``out_path``) and hyper-parameters."""
    task = base.copy() if base is not None else RunTemplate()
    if name:
        task.metadata.name = name
    if project:
        task.metadata.project = project
    if handler is not None:
        task.spec.handler = handler
    task.spec.parameters.update(params or {})
    task.spec.inputs.update(inputs or {})
    if artifact_path or out_path:
        task.spec.output_path = os.fspath(artifact_path or out_path or "")
    if returns or outputs:
        task.spec.returns = list(returns or outputs or [])
    options = HyperOptions.of(hyper_param_options, selector=selector)
    if hyper_params:
        task.spec.hyperparams = dict(hyper_params)
    if param_file:
        task.spec.param_file = param_file
    task.spec.hyper_param_options = options.merged(task.spec.hyper_param_options)
    return task


# ----------------------------------------------------------------- functions


def load_handler(handler: str, command: str | None = None) -> Callable[..., Any]:
    """A handler named as text: ``name`` in the file ``command``, or ``module.func``;
    ``Class::method`` names a method of a class (see :func:`class_handler`)."""
    if "::" in handler:
        class_name, _, method = handler.partition("::")
        return class_handler(load_handler(class_name, command), method, handler)
    if command:
        path = command.split()[0]
        if not os.path.isfile(path):
            raise InvalidInput(f"function file {path!r} does not exist")
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(path))[0], path
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        target = getattr(module, handler, None)
        if target is None:
            raise InvalidInput(f"{path} has no handler {handler!r}")
        return target  # type: ignore[no-any-return]
    module_name, _, attr = handler.rpartition(".")
    if not module_name:
        raise InvalidInput(f"handler {handler!r}: give a function, or 'module.function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"handler {handler!r}: cannot import {module_name}: {exc}") from exc
    target = getattr(module, attr, None)
    if target is None or not callable(target):
        raise InvalidInput(f"handler {handler!r}: {module_name} has no function {attr!r}")
    return target  # type: ignore[no-any-return]


def class_handler(cls: Any, method: str, text: str = "") -> Callable[..., Any]:
    """MLRun's ``Class::method`` handler: each run makes an instance (with the run's
    ``context`` if the constructor takes one, and the parameter ``_init_args``, a
    dict, as its other arguments) and calls ``method`` with the run's arguments."""
    text = text or f"{getattr(cls, '__name__', cls)}::{method}"
    if not isinstance(cls, type):
        raise InvalidInput(f"handler {text!r}: {getattr(cls, '__name__', cls)!r} is not a class")
    bound = getattr(cls, method, None)
    if bound is None or not callable(bound):
        raise InvalidInput(f"handler {text!r}: class {cls.__name__} has no method {method!r}")
    sig = inspect.signature(bound)
    params = list(sig.parameters.values())[1:]  # without self
    init_takes = inspect.signature(cls).parameters

    def run_method(*args: Any, _init_args: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if _init_args is not None and not isinstance(_init_args, Mapping):
            raise InvalidInput(f"handler {text!r}: _init_args must be a dict, not {_init_args!r}")
        init = dict(_init_args or {})
        context = kwargs.get("context", args[0] if args else None)
        if "context" in init_takes and "context" not in init:
            init["context"] = context
        instance = cls(**init)
        return getattr(instance, method)(*args, **kwargs)

    extra = inspect.Parameter("_init_args", inspect.Parameter.KEYWORD_ONLY, default=None)
    keyword = [p for p in params if p.kind is p.VAR_KEYWORD]
    plain = [p for p in params if p.kind is not p.VAR_KEYWORD]
    run_method.__signature__ = sig.replace(parameters=[*plain, extra, *keyword])  # type: ignore[attr-defined]
    run_method.__name__ = method
    run_method.__qualname__ = f"{cls.__name__}.{method}"
    return run_method


def script_handler(command: str, args: list[str] | None = None) -> Callable[..., Any]:
    """A handler that runs the script ``command`` (a file and its arguments) as
    ``__main__`` in this process, MLRun's local run of a function with no handler:
    ``{name}`` in the arguments is replaced by the run's parameter ``name``, ``args``
    are appended, and ``get_or_create_ctx`` in the script gives the run's context."""
    words = shlex.split(command)
    if not words:
        raise InvalidInput("a function with no handler needs command=, the script to run")
    path = words[0]
    if not os.path.isfile(path):
        raise InvalidInput(f"function file {path!r} does not exist")

    def run_script(context: Any, **params: Any) -> None:
        try:
            argv = [path, *(w.format(**params) for w in words[1:]), *(args or [])]
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                f"command {command!r}: no parameter for the placeholder {exc}; "
                f"parameters: {', '.join(sorted(params)) or 'none'}"
            ) from None
        saved = sys.argv
        sys.argv = argv
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise RuntimeError(f"{path} exited with status {exc.code}") from None
        finally:
            sys.argv = saved

    run_script.__name__ = os.path.splitext(os.path.basename(path))[0]
    return run_script
