"""``@handler``: MLRun's decorator that logs what a function returns.

``@handler(outputs=["scores", "model:model", "report:plot"])`` names the
values the function returns (one name, or one per element of a returned
tuple). Called inside a run (``run_local``, a context from
``get_or_create_ctx``), each value is logged under its name, by type unless
``name:type`` says otherwise:

==========================  ==============================================
value                       logged as
==========================  ==============================================
int, float, str, bool,      a result (``type`` ``result``)
dict, list, None
pandas or dask DataFrame    a dataset (``dataset``)
bytes                       a file artifact (``artifact`` / ``file``)
a figure (``savefig``),     a plot (``plot``)
plotly figure (``to_html``)
an Artifact object          logged as it is
==========================  ==============================================

``model`` logs bytes (or text) as a model's file, ``file`` a local path's
content. A value whose name is ``None`` is not logged. Outside a run the
function just returns. ``labels`` are set on the run; ``inputs=True`` (the
default) hands an input annotated ``pandas.DataFrame`` its frame, as
``run_local`` does for every handler.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from catalog.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

TYPES = ("result", "dataset", "artifact", "file", "model", "plot")


def _spec(output: Any) -> tuple[str | None, str | None]:
    if output is None:
        return None, None
    if isinstance(output, Mapping):
        return output.get("key"), output.get("artifact_type")
    text = str(output)
    key, _, written = text.partition(":")
    kind = written.strip() or None
    if kind is not None and kind not in TYPES:
        raise InvalidInput(f"output {text!r}: unknown type {kind!r}; one of {', '.join(TYPES)}")
    return key.strip(), kind


def _kind_of(value: Any) -> str:
    from catalog.artifacts.base import Artifact
    from catalog.artifacts.dataset import is_frame

    if isinstance(value, Artifact):
        return "artifact-object"
    if is_frame(value):
        return "dataset"
    if isinstance(value, bytes | bytearray):
        return "artifact"
    if hasattr(value, "savefig") or (hasattr(value, "to_html") and hasattr(value, "to_dict")):
        return "plot"
    return "result"


def log_value(ctx: Any, key: str, value: Any, kind: str | None = None) -> None:
    """Log one returned value under ``key`` as ``kind`` (or by its type)."""
    from catalog.artifacts.model import ModelArtifact
    from catalog.artifacts.plots import PlotArtifact

    kind = kind or _kind_of(value)
    if kind == "artifact-object":
        ctx.log_artifact(value)
    elif kind == "result":
        ctx.log_result(key, value)
    elif kind == "dataset":
        ctx.log_dataset(key, df=value)
    elif kind == "plot":
        ctx.log_artifact(PlotArtifact(key, body=value))
    elif kind == "model":
        ctx.log_artifact(ModelArtifact(key, body=value))
    elif kind == "file":
        ctx.log_artifact(key, local_path=str(value))
    else:  # artifact
        ctx.log_artifact(key, body=value if isinstance(value, bytes | str) else str(value))


def log_returns(ctx: Any, returned: Any, outputs: list[Any]) -> None:
    """Log the values a function returned under the names ``outputs`` gives."""
    specs = [_spec(o) for o in outputs]
    values = list(returned) if len(specs) > 1 and isinstance(returned, tuple) else [returned]
    if len(values) != len(specs):
        raise InvalidInput(
            f"the function returned {len(values)} value(s) but outputs names {len(specs)}"
        )
    for (key, kind), value in zip(specs, values, strict=True):
        if key:
            log_value(ctx, key, value, kind)
    ctx._returns_logged = True


def handler(
    labels: Mapping[str, str] | None = None,
    outputs: list[Any] | None = None,
    inputs: bool | Mapping[str, Any] = True,
) -> Callable[[F], F]:
    """Decorate a handler so that what it returns is logged (see the module doc)."""
    if callable(labels) and outputs is None:  # used bare: @handler
        return handler()(labels)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from catalog.execution import current_context

            returned = function(*args, **kwargs)
            ctx = current_context()
            if ctx is None:
                return returned
            for key, value in (labels or {}).items():
                ctx.set_label(key, value)
            if outputs:
                log_returns(ctx, returned, list(outputs))
            return returned

        return wrapper  # type: ignore[return-value]

    return decorate
