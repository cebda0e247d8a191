"""An atheris (libFuzzer) harness over the parsers that take untrusted input.

Run by tests/reliability/test_fuzz.py for a bounded number of runs, or by hand::

    .venv/bin/python tests/reliability/fuzz_atheris.py -atheris_runs=1000000

The first input byte picks a target; the rest is its input. A target may
return or raise one of the catalog's own errors (``CatalogError``); anything
else is a crash, which libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import contextlib
import sys

import atheris
import duckdb  # noqa: F401 - heavy dependencies load uninstrumented: only ours is
import fastavro  # noqa: F401
import fsspec  # noqa: F401
import pandas  # noqa: F401
import pyarrow  # noqa: F401

with atheris.instrument_imports(include=["catalog"]):
    from catalog import store
    from catalog.errors import CatalogError
    from catalog.events.codec import Codec
    from catalog.uri import StoreURI
    from catalog.validation import (
        parse_duration,
        parse_label_filter,
        parse_time,
        validate_key,
        validate_labels,
        validate_tag,
    )

CODEC = Codec()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


TARGETS = [
    lambda data: CODEC.decode(data),
    lambda data: StoreURI.parse(_text(data), default_project="default"),
    lambda data: StoreURI.parse("store://" + _text(data)),
    lambda data: validate_key(_text(data)),
    lambda data: validate_tag(_text(data)),
    lambda data: validate_labels(dict([_text(data).partition("=")[::2]])),
    lambda data: parse_label_filter(_text(data)),
    lambda data: parse_time(_text(data)),
    lambda data: parse_duration(_text(data)),
    lambda data: store.Manifest.from_bytes(data),
    lambda data: store.validate_relative_path(_text(data)),
]


def one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    with contextlib.suppress(CatalogError):
        target(data[1:])


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
