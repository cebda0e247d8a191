"""Production mode end to end: the log on Kafka, the payloads on S3, nothing else changed.

Configured the way a team deploys it: ``CATALOG_LOG=kafka://…/topic``,
``CATALOG_ARTIFACT_PATH=s3://bucket/prefix/{{project}}`` and the usual AWS
variables (``AWS_ENDPOINT_URL`` pointing at the session's moto server). The SDK
and the CLI are used exactly as on the embedded default.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import s3fs
from click.testing import CliRunner

from catalog import Catalog
from catalog.log.kafka import KafkaLog

pytestmark = [pytest.mark.kafka, pytest.mark.s3]


@pytest.fixture
def production(topic_url: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment of a production client; returns the artifact path root."""
    root = f"s3://{bucket}/catalog"
    monkeypatch.setenv("CATALOG_LOG", topic_url)
    monkeypatch.setenv("CATALOG_ARTIFACT_PATH", root + "/{{project}}")
    monkeypatch.setenv("CATALOG_DB", str(tmp_path / "projection.duckdb"))
    monkeypatch.setenv("CATALOG_PROJECT", "team")
    return root


def test_sdk_on_kafka_and_s3(production: str, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00\x01" * 5000)
    (tmp_path / "model" / "config.json").write_text('{"layers": 3}')
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    frame.to_csv(tmp_path / "iris.csv", index=False)

    with Catalog() as cat:
        assert isinstance(cat.log, KafkaLog)
        data = cat.log_artifact(
            "iris", local_path=tmp_path / "iris.csv", kind="dataset", labels={"team": "ml"}
        )
        model = cat.log_artifact("net", local_path=tmp_path / "model", kind="model", tag="v1")
        notes = cat.log_artifact("notes", body="first", tag="draft")
        notes2 = cat.log_artifact("notes", body="second")
        assert data.target_path.startswith(f"{production}/team/objects/sha256/")
        assert model.uri.startswith("store://models/team/net")

        cat.tag_artifact(data.uri, "prod")
        cat.update_artifact("notes:draft", labels={"reviewed": "yes"})
        assert cat.get_artifact("iris:prod").uid == data.uid
        assert cat.get_artifact("notes").uid == notes2.uid  # latest
        assert cat.get_artifact("notes:draft").labels["reviewed"] == "yes"
        assert {a.key for a in cat.list_artifacts(labels=["team=ml"])} == {"iris"}
        assert sorted(a.key for a in cat.list_artifacts()) == ["iris", "net", "notes"]

        # Downloads come back from S3, verified.
        item = cat.get_dataitem("store://datasets/team/iris:prod")
        assert item.get() == (tmp_path / "iris.csv").read_bytes()
        assert item.as_df().equals(frame)
        out = cat.get_dataitem("store://models/team/net:v1").download(tmp_path / "back")
        assert (Path(out) / "weights.bin").read_bytes() == b"\x00\x01" * 5000
        assert cat.get_dataitem(notes.uri).get(encoding="utf-8") == "first"

        # The bytes are on S3 under the digest layout, once each (dedup).
        cat.log_artifact("notes-copy", body="first")
        fs = s3fs.S3FileSystem()
        blobs = [p for p in fs.find(production.removeprefix("s3://")) if "/objects/sha256/" in p]
        assert len(blobs) == len(set(blobs)) == 6  # csv, 2 files + manifest, 2 notes
        assert not fs.exists(production.removeprefix("s3://") + "/team/objects/tmp")

    # Another client with its own projection sees the same catalog.
    with Catalog(db=str(tmp_path / "replica.duckdb")) as replica, Catalog() as first:
        assert replica.get_artifact("iris:prod").uid == data.uid
        assert replica.get_dataitem("store://artifacts/team/notes").get() == b"second"
        assert replica.digest()["artifacts"] == first.digest()["artifacts"]


def test_cli_on_kafka_and_s3(production: str, tmp_path: Path) -> None:
    from catalog.cli import cli

    (tmp_path / "data.txt").write_text("hello from the cli")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    logged = json.loads(run("log", str(tmp_path / "data.txt"), "--key", "greeting", "--json"))
    assert logged["spec"]["target_path"].startswith(f"{production}/team/objects/sha256/")
    run("tag", "greeting", "prod")
    rows = json.loads(run("ls", "--json"))
    assert [r["metadata"]["key"] for r in rows] == ["greeting"]
    run("get", "greeting:prod", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "hello from the cli"
    assert "kafka://" in run("config")
