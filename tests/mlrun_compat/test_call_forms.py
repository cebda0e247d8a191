"""Item 1 and the bugs of item 7: the call forms MLRun's docs teach are accepted."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from catalog import InvalidInput, get_catalog, get_dataitem, get_or_create_ctx, new_project
from catalog.artifacts import Artifact, DatasetArtifact


def test_model_body_with_a_file_name() -> None:
    ctx = get_or_create_ctx("train", project="forms")
    blob = pickle.dumps({"w": [1, 2]})
    model = ctx.log_model("clf", body=blob, model_file="clf.pkl", metrics={"acc": 0.9})
    assert model.model_file == "clf.pkl"
    assert "clf.pkl" in get_dataitem(model.uri).listdir()


def test_model_training_set_frame_describes_features() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]})
    project = new_project("forms")
    model = project.log_model("m", body=b"w", training_set=frame, label_column="label")
    assert [f["name"] for f in model.spec.inputs] == ["x"]
    assert [f["name"] for f in model.spec.outputs] == ["label"]
    assert "x" in model.spec.feature_stats


def test_body_and_local_path_name_the_stored_file() -> None:
    ctx = get_or_create_ctx("job", project="forms")
    art = ctx.log_artifact("notes", body="abc", local_path="notes.txt")
    assert (art.spec.filename, art.spec.format) == ("notes.txt", "txt")
    assert get_dataitem(art.uri).get() == b"abc"
    assert not Path("notes.txt").exists()  # nothing written beside the job


def test_artifact_object_takes_the_call_arguments(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text("a\n1\n")
    ctx = get_or_create_ctx("job", project="forms")
    logged = ctx.log_artifact(Artifact("data"), local_path=str(source))
    assert logged.hash and logged.size == source.stat().st_size
    recorded = ctx.log_artifact(Artifact("remote", body=b"x"), target_path="s3://bucket/x.bin")
    assert recorded.target_path == "s3://bucket/x.bin" and recorded.hash is None


def test_an_artifact_without_content_or_a_missing_file_is_refused() -> None:
    ctx = get_or_create_ctx("job", project="forms")
    before = len(get_catalog().list_artifacts(project="forms"))
    with pytest.raises(InvalidInput, match="has no content"):
        ctx.log_artifact(Artifact("empty"))
    with pytest.raises(InvalidInput, match="does not exist"):
        ctx.log_artifact(Artifact("gone"), local_path="/no/such/file.txt")
    assert len(get_catalog().list_artifacts(project="forms")) == before


def test_pathlib_artifact_path_and_mlrun_only_dataset_arguments(tmp_path: Path) -> None:
    ctx = get_or_create_ctx("job", project="forms")
    frame = pd.DataFrame({"a": [1, 2]})
    ds = ctx.log_dataset("d", df=frame, upload=False, db_key="d", artifact_path=tmp_path / "out")
    assert ds.target_path.startswith(str(tmp_path / "out"))


def test_a_data_holding_index_is_kept() -> None:
    frame = pd.DataFrame({"label": ["a", "b"], "v": [1, 2]}).set_index("label")
    ds = new_project("forms").log_dataset("indexed", df=frame, format="csv")
    assert get_dataitem(ds.uri).as_df().columns.tolist() == ["label", "v"]
    times = pd.DataFrame({"v": [1, 2]}, index=pd.date_range("2024-01-01", periods=2, name="t"))
    back = get_dataitem(new_project("forms").log_dataset("ts", df=times).uri).as_df()
    assert back["t"].dt.year.tolist() == [2024, 2024]


def test_a_frame_body_logs_a_dataset() -> None:
    cat = get_catalog()
    art = cat.log_artifact(
        "features", body=pd.DataFrame({"a": [1]}), kind="dataset", project="forms"
    )
    assert art.kind == "dataset" and art.length == 1
    with pytest.raises(InvalidInput, match="DataFrame body logs a dataset"):
        cat.log_artifact("m", body=pd.DataFrame({"a": [1]}), kind="model", project="forms")


def test_a_source_takes_the_short_forms_show_takes() -> None:
    cat = get_catalog()
    v2 = cat.log_artifact("customers", body=b"c", tag="v2", project="default")
    model = cat.log_artifact("model", body=b"m", sources=["customers:v2"], project="default")
    assert model.spec.sources[0]["uid"] == v2.uid
    with pytest.raises(InvalidInput, match="does not exist"):
        cat.log_artifact("model", body=b"m", sources=["nope:v9 x"])


def test_dataset_object_is_described_before_logging() -> None:
    ds = DatasetArtifact("d", df=pd.DataFrame({"a": range(30)}))
    assert len(ds.preview) == 20 and ds.status.stats["a"]["count"] == 30
    assert ds.schema["fields"][0]["name"] == "a" and ds.header == ["a"]
