"""Limits: oversize input is refused with an error naming the limit, before any write.

Every limit of docs/limits.md is exercised here through the SDK (and the CLI
where it takes the value), and the page is checked to state each limit's value.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from catalog import Catalog
from catalog.artifacts.dataset import (
    MAX_DESCRIBED_BYTES,
    MAX_DESCRIBED_JSON_BYTES,
    MAX_PREVIEW_COLUMNS,
    MAX_PREVIEW_ROWS,
    DatasetArtifact,
)
from catalog.client import MAX_DESCRIPTION, MAX_EVENT_BYTES, MAX_INLINE_BODY
from catalog.errors import InvalidInput, LimitExceeded
from catalog.validation import (
    MAX_KEY_LENGTH,
    MAX_LABEL_NAME_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_PROJECT_LENGTH,
    MAX_TAG_LENGTH,
)
from reliability.helpers import ROOT, invoke, record


def stored(root: Path) -> list[Path]:
    objects = root / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


CASES = [
    (
        "inline body",
        lambda c: c.log_artifact("k", body=b"\0" * (MAX_INLINE_BODY + 1)),
        f"{MAX_INLINE_BODY:,}",
    ),
    (
        "inline text body, counted in UTF-8 bytes",
        lambda c: c.log_artifact("k", body="é" * (MAX_INLINE_BODY // 2 + 1)),
        f"{MAX_INLINE_BODY:,}",
    ),
    (
        "label value",
        lambda c: c.log_artifact("k", body=b"x", labels={"a": "v" * (MAX_LABEL_VALUE_LENGTH + 1)}),
        str(MAX_LABEL_VALUE_LENGTH),
    ),
    (
        "label count",
        lambda c: c.log_artifact("k", body=b"x", labels={f"l{i}": "v" for i in range(101)}),
        str(MAX_LABELS),
    ),
    (
        "label name",
        lambda c: c.log_artifact("k", body=b"x", labels={"n" * (MAX_LABEL_NAME_LENGTH + 1): "v"}),
        str(MAX_LABEL_NAME_LENGTH),
    ),
    ("key", lambda c: c.log_artifact("k" * (MAX_KEY_LENGTH + 1), body=b"x"), str(MAX_KEY_LENGTH)),
    (
        "tag",
        lambda c: c.log_artifact("k", body=b"x", tag="t" * (MAX_TAG_LENGTH + 1)),
        str(MAX_TAG_LENGTH),
    ),
    (
        "project",
        lambda c: c.log_artifact("k", body=b"x", project="p" * (MAX_PROJECT_LENGTH + 1)),
        str(MAX_PROJECT_LENGTH),
    ),
    (
        "description",
        lambda c: c.log_artifact("k", body=b"x", description="d" * (MAX_DESCRIPTION + 1)),
        f"{MAX_DESCRIPTION:,}",
    ),
    (
        "event size (spec)",
        lambda c: c.log_artifact("k", body=b"x", spec={"big": "x" * MAX_EVENT_BYTES}),
        f"{MAX_EVENT_BYTES:,}",
    ),
    (
        "event size (update)",
        lambda c: c.update_artifact("k0", spec={"big": "x" * MAX_EVENT_BYTES}),
        f"{MAX_EVENT_BYTES:,}",
    ),
    (
        "dataset preview rows",
        lambda c: c.log_item(
            DatasetArtifact("ds", df=pd.DataFrame({"x": [1, 2]}), preview=MAX_PREVIEW_ROWS + 1)
        ),
        str(MAX_PREVIEW_ROWS),
    ),
]


@pytest.mark.parametrize(("what", "call", "limit"), CASES, ids=[c[0] for c in CASES])
def test_oversize_input_is_refused_naming_the_limit(
    catalog: Catalog, tmp_path: Path, what: str, call: object, limit: str
) -> None:
    catalog.log_artifact("k0", body=b"existing")
    end, blobs = catalog.log.end_offsets(), stored(tmp_path / "artifacts")
    with pytest.raises(InvalidInput) as info:
        call(catalog)  # type: ignore[operator]
    assert limit in str(info.value), f"{what}: {info.value}"
    assert catalog.log.end_offsets() == end
    assert stored(tmp_path / "artifacts") == blobs, f"{what}: bytes stored before refusing"
    record("limits refused (SDK)", cases=1)


def test_the_inline_body_limit_is_a_limit_exceeded_that_suggests_local_path(
    catalog: Catalog, tmp_path: Path
) -> None:
    with pytest.raises(LimitExceeded) as info:
        catalog.log_artifact("k", body=b"\0" * (MAX_INLINE_BODY + 1))
    assert (info.value.what, info.value.size, info.value.limit) == (
        "inline body",
        MAX_INLINE_BODY + 1,
        MAX_INLINE_BODY,
    )
    assert "local_path" in str(info.value)
    at_limit = catalog.log_artifact("k", body=b"\1" * MAX_INLINE_BODY)  # exactly: accepted
    assert at_limit.size == MAX_INLINE_BODY
    big = tmp_path / "big.bin"  # over the inline limit, through a file: fine
    with open(big, "wb") as fh:
        fh.truncate(MAX_INLINE_BODY + 1)
    assert catalog.log_artifact("big", local_path=big).size == MAX_INLINE_BODY + 1


def test_wide_frames_are_previewed_up_to_the_column_limit(catalog: Catalog) -> None:
    frame = pd.DataFrame({f"c{i}": [i] for i in range(MAX_PREVIEW_COLUMNS + 20)})
    art = catalog.log_item(DatasetArtifact("wide", df=frame, stats=False))
    assert len(art.spec.preview[0]) <= MAX_PREVIEW_COLUMNS


def test_cli_names_the_limit(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    long_value = "v" * (MAX_LABEL_VALUE_LENGTH + 1)
    result = invoke(tmp_path, "log", tmp_path / "f.txt", "--label", f"a={long_value}")
    assert result.exit_code == 2 and str(MAX_LABEL_VALUE_LENGTH) in result.stderr
    result = invoke(tmp_path, "log", tmp_path / "f.txt", "--description", "d" * 70_000)
    assert result.exit_code == 2 and f"{MAX_DESCRIPTION:,}" in result.stderr
    assert not (tmp_path / "artifacts").exists() or not stored(tmp_path / "artifacts")


def test_docs_limits_states_every_limit() -> None:
    page = (ROOT / "docs" / "limits.md").read_text()
    for value in (
        MAX_INLINE_BODY,
        MAX_EVENT_BYTES,
        MAX_DESCRIPTION,
        MAX_LABEL_VALUE_LENGTH,
        MAX_LABELS,
        MAX_LABEL_NAME_LENGTH,
        MAX_KEY_LENGTH,
        MAX_TAG_LENGTH,
        MAX_PROJECT_LENGTH,
        MAX_PREVIEW_ROWS,
        MAX_PREVIEW_COLUMNS,
        MAX_DESCRIBED_JSON_BYTES,
        MAX_DESCRIBED_BYTES,
    ):
        assert re.search(rf"\b{value:,}\b|\b{value}\b", page), f"docs/limits.md lacks {value}"
