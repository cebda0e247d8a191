"""Run one function in a fresh interpreter and report its result and peak memory.

    python -m bench.child MODULE:FUNCTION 'JSON KEYWORD ARGUMENTS' --json OUT

OUT receives ``{"result": <what the function returned>, "peak_rss_mb": ...,
"seconds": ...}``; ``peak_rss_mb`` is this process's peak RSS at the end
(``VmHWM``, imports included): the memory a user running that operation alone would see.
Used by :func:`run_child` for the phases whose memory is the figure (B3, B5).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

from bench.common import peak_rss_mb, run_python, write_json


def run_child(target: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """``target`` (``module:function``) called with ``kwargs`` in a fresh interpreter."""
    return run_python("bench.child", target, json.dumps(kwargs), timeout=timeout)


def main(argv: list[str]) -> None:
    target, arguments, flag, out = argv
    assert flag == "--json", argv
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    started = time.perf_counter()
    result = function(**json.loads(arguments))
    write_json(
        out,
        {
            "result": result,
            "peak_rss_mb": peak_rss_mb(),
            "seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
