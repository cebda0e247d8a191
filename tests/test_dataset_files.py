"""A dataset logged as a file gets the preview, schema and statistics the SDK
computes for a DataFrame: the same code (``describe_frame``), the same size
rules, for csv, parquet, json and feather, from ``catalog log --kind dataset``,
``log_artifact(kind="dataset")`` (a file or a body) and
``DatasetArtifact(local_path=...)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from catalog import Catalog
from catalog.artifacts.dataset import (
    FORMATS,
    MAX_DESCRIBED_BYTES,
    MAX_DESCRIBED_JSON_BYTES,
    STATS_ROW_LIMIT,
    DatasetArtifact,
    describe_frame,
    write_frame,
)
from catalog.cli import cli
from catalog.errors import DatasetNotDescribed

DESCRIBED = ("length", "header", "schema", "preview", "stats")


def frame(rows: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "sepal": rng.normal(5.8, 0.8, rows).round(2),
            "petals": rng.integers(1, 7, rows),
            "species": rng.choice(["setosa", "versicolor", "virginica"], rows),
        }
    )


def written(tmp_path: Path, df: pd.DataFrame, fmt: str) -> Path:
    path = tmp_path / f"iris.{fmt}"
    write_frame(df, path, fmt, index=False)
    return path


def described(spec: dict[str, Any]) -> dict[str, Any]:
    """The described fields of a spec, through JSON (as the event carries them)."""
    return json.loads(json.dumps({k: spec[k] for k in DESCRIBED if k in spec}))


def cli_log(tmp_path: Path, *args: object) -> Any:
    env = {
        "CATALOG_HOME": str(tmp_path / "home"),
        "CATALOG_PROJECT": "files",
        "CATALOG_ARTIFACT_PATH": str(tmp_path / "artifacts"),
    }
    runner = CliRunner()
    result = runner.invoke(cli, ["log", *map(str, args), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_describes_a_dataset_file_as_the_sdk_describes_its_frame(
    tmp_path: Path, fmt: str
) -> None:
    df = frame()
    _, document = cli_log(tmp_path, written(tmp_path, df, fmt), "--kind", "dataset")
    assert described(document["spec"]) == described(describe_frame(df))
    assert document["spec"]["stats"]["sepal"]["mean"] == pytest.approx(df["sepal"].mean())


def test_log_artifact_describes_a_file_and_a_body(catalog: Catalog, tmp_path: Path) -> None:
    df = frame()
    expected = described(describe_frame(df))
    from_file = catalog.log_artifact(
        "iris", local_path=written(tmp_path, df, "parquet"), kind="dataset"
    )
    assert described(from_file.spec.to_dict()) == expected
    body = df.to_csv(index=False)  # the demo's second version: a body in csv
    from_body = catalog.log_artifact("iris", body=body, kind="dataset", format="csv")
    assert described(from_body.spec.to_dict()) == expected
    # not a dataset, or no known format: nothing is read
    plain = catalog.log_artifact("notes", local_path=written(tmp_path, df, "csv"))
    assert plain.spec.to_dict().get("preview") is None
    raw = catalog.log_artifact("raw", body=b"\x00\x01", kind="dataset")
    assert raw.spec.to_dict().get("preview") is None


def test_a_dataset_artifact_of_a_file_takes_its_own_preview_and_stats(
    catalog: Catalog, tmp_path: Path
) -> None:
    df = frame()
    path = written(tmp_path, df, "feather")
    art = catalog.log_item(DatasetArtifact("iris", local_path=str(path), preview=5, stats=False))
    spec = art.spec.to_dict()
    assert described(spec) == described(describe_frame(df, preview=5, stats=False))
    assert len(spec["preview"]) == 5 and "stats" not in spec


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_size_rules_are_the_sdks(catalog: Catalog, tmp_path: Path, fmt: str) -> None:
    """At STATS_ROW_LIMIT rows no stats; only the rows a preview and a schema need are
    read, and the length is given where the format records it (parquet, feather)."""
    df = frame(STATS_ROW_LIMIT + 5)
    art = catalog.log_artifact("big", local_path=written(tmp_path, df, fmt), kind="dataset")
    spec = art.spec.to_dict()
    assert "stats" not in spec
    assert spec["preview"] == described(describe_frame(df.head(20)))["preview"]
    assert spec["header"] == ["sepal", "petals", "species"]
    assert spec["schema"] == described(describe_frame(df))["schema"]
    if fmt in ("parquet", "feather", "json"):  # json is read whole (within its limit)
        assert spec["length"] == STATS_ROW_LIMIT + 5
    else:
        assert "length" not in spec  # counting would parse the whole file
    forced = catalog.log_item(
        DatasetArtifact("big-stats", local_path=str(written(tmp_path, df, fmt)), stats=True)
    )
    assert forced.spec.to_dict()["stats"]["petals"]["count"] == STATS_ROW_LIMIT + 5


def test_content_that_does_not_read_as_its_format_is_logged_with_a_note(
    catalog: Catalog, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.warns(DatasetNotDescribed, match="cannot be read as parquet"):
        art = catalog.log_artifact("broken", local_path=broken, kind="dataset")
    assert art.hash and art.spec.to_dict().get("preview") is None
    result, document = cli_log(tmp_path, broken, "--kind", "dataset")
    assert document["spec"].get("preview") is None
    assert result.stderr.startswith("note: ") and "cannot be read as parquet" in result.stderr
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b" " * MAX_DESCRIBED_JSON_BYTES + b"]")
    with pytest.warns(DatasetNotDescribed, match="json"):
        catalog.log_artifact("big", local_path=big, kind="dataset")


def test_a_description_too_big_for_an_event_leaves_out_the_preview(
    catalog: Catalog, tmp_path: Path
) -> None:
    wide = pd.DataFrame({"n": range(20), "text": [f"{i}" + "x" * 40_000 for i in range(20)]})
    with pytest.warns(DatasetNotDescribed, match="the preview of .* left out"):
        art = catalog.log_artifact(
            "wide", local_path=written(tmp_path, wide, "csv"), kind="dataset"
        )
    spec = art.spec.to_dict()
    assert "preview" not in spec and spec["length"] == 20 and spec["stats"]["n"]["count"] == 20
    assert len(json.dumps(described(spec))) <= MAX_DESCRIBED_BYTES
