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

from catalog.calls import log_returns
from catalog.execution import current_context

F = TypeVar("F", bound=Callable[..., Any])


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
