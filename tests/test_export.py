"""Export a version's document and import it into another catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from catalog import Catalog
from catalog.cli import cli
from catalog.errors import BlobNotFound, DigestMismatch, InvalidInput


def other_catalog(tmp_path: Path, name: str) -> Catalog:
    return Catalog(
        log=f"file://{tmp_path / name / 'events.db'}",
        db=str(tmp_path / name / "p.duckdb"),
        artifact_path=str(tmp_path / name / "artifacts"),
        project="proj",
    )


def test_round_trip_keeps_the_version(catalog: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "data.csv"
    src.write_text("a\n1\n")
    art = catalog.log_artifact(
        "data",
        local_path=src,
        kind="dataset",
        labels={"x": "y"},
        spec={"length": 1},
        sources=[str(src)],
    )
    doc = yaml.safe_load(catalog.get_artifact(art.uri).to_yaml())
    with other_catalog(tmp_path, "b") as other:
        imported = other.import_artifact(doc)
        assert imported.uid == art.uid and imported.hash == art.hash
        again = other.get_artifact("store://datasets/data")
        assert again.labels == {"x": "y"} and again.spec.length == 1
        assert other.get_dataitem(again).get() == src.read_bytes()
        assert [s["uri"] for s in again.spec.sources] == [str(src)]


def test_import_with_body_when_bytes_are_elsewhere(catalog: Catalog, tmp_path: Path) -> None:
    body = tmp_path / "m.bin"
    body.write_bytes(b"model")
    doc = catalog.log_artifact("m", local_path=body).to_dict()
    doc["spec"]["target_path"] = "/unreachable/objects/sha256/00/" + "0" * 62
    with other_catalog(tmp_path, "c") as other:
        with pytest.raises(BlobNotFound):
            other.import_artifact(doc)
        bad = tmp_path / "bad.bin"
        bad.write_bytes(b"other")
        with pytest.raises(DigestMismatch):
            other.import_artifact(doc, body_path=bad)
        assert not (tmp_path / "c" / "artifacts").exists()  # nothing stored on bad input
        assert other.import_artifact(doc, body_path=body).hash == doc["spec"]["hash"]


def test_import_refuses_garbage(catalog: Catalog) -> None:
    with pytest.raises(InvalidInput):
        catalog.import_artifact({"kind": "artifact"})
    with pytest.raises(InvalidInput):
        catalog.import_artifact({"kind": "nope", "metadata": {"key": "k", "uid": "ab"}})


def test_cli_export_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("CATALOG_HOME", str(tmp_path / "one"))
    src = tmp_path / "f.txt"
    src.write_text("hello")
    uri = runner.invoke(cli, ["log", str(src), "--key", "f"]).output.strip()
    out = runner.invoke(cli, ["export", uri, "-o", str(tmp_path / "f.yaml")])
    assert out.exit_code == 0, out.output
    json_out = runner.invoke(cli, ["export", uri, "--json"])
    assert '"kind": "artifact"' in json_out.output
    monkeypatch.setenv("CATALOG_HOME", str(tmp_path / "two"))
    result = runner.invoke(cli, ["import", str(tmp_path / "f.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == uri
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    result = runner.invoke(cli, ["import", str(bad)])
    assert result.exit_code == 2 and "artifact document" in result.stderr
