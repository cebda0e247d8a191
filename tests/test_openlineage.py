"""The OpenLineage export validates against the OpenLineage JSON schema and keeps our hashes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from catalog import Catalog, run_local
from catalog.cli import cli
from catalog.execution import MLClientCtx
from catalog.openlineage import export_lines

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "openlineage" / "OpenLineage.json").read_text()
)


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


def test_runs_and_logs_export_as_valid_run_events(catalog: Catalog, tmp_path: Path) -> None:
    raw = catalog.log_artifact("raw", body=b"a,b\n1,2\n", kind="dataset", format="csv", tag="v1")

    def train(context: MLClientCtx, data: object) -> None:
        context.log_artifact("model", body=b"weights")

    def broken(context: MLClientCtx) -> None:
        raise RuntimeError("out of memory")

    run = run_local(
        handler=train, inputs={"data": "store://datasets/raw:v1"}, project="proj", catalog=catalog
    )
    with pytest.raises(RuntimeError):
        run_local(handler=broken, project="proj", catalog=catalog)
    catalog.log_artifact("report", body=b"r", sources=[raw])

    events = [json.loads(line) for line in export_lines(catalog)]
    check = validator()
    for event in events:
        check.validate(event)
    kinds = [(e["job"]["name"], e["eventType"]) for e in events]
    assert kinds == [
        ("train", "START"),
        ("train", "COMPLETE"),
        ("broken", "START"),
        ("broken", "FAIL"),
        ("log/report", "START"),
        ("log/report", "COMPLETE"),
    ]
    complete = events[1]
    assert complete["run"]["runId"].replace("-", "") == run.uid
    (source,) = complete["inputs"]
    assert source["name"] == "raw" and source["namespace"] == "catalog://proj"
    assert source["facets"]["version"]["datasetVersion"] == raw.uid
    assert source["facets"]["catalog"]["sha256"] == raw.hash
    assert source["facets"]["catalog"]["askedFor"] == "store://datasets/raw:v1"
    (output,) = complete["outputs"]
    assert output["name"] == "model"
    assert events[3]["run"]["facets"]["errorMessage"]["message"].endswith("out of memory")


def test_cli_export_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_HOME", str(tmp_path))
    runner = CliRunner()
    src = tmp_path / "a.txt"
    src.write_text("a")
    runner.invoke(cli, ["log", str(src), "--key", "a"])
    runner.invoke(cli, ["log", str(src), "--key", "b", "--source", "store://a"])
    out = tmp_path / "lineage.jsonl"
    result = runner.invoke(cli, ["export-lineage", "--format", "openlineage", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        validator().validate(json.loads(line))
