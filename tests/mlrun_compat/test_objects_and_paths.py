"""Round two of issue 18: artifact objects written before logging, database keys,
``file://`` sources and the plain-URL DataItem's errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from catalog import (
    InvalidInput,
    get_catalog,
    get_dataitem,
    get_or_create_ctx,
    new_project,
)
from catalog.artifacts import Artifact, DatasetArtifact, ModelArtifact, TableArtifact
from catalog.errors import InvalidKey, ObjectNotFound, WrongType


@pytest.mark.parametrize("bad", ["has@at", "has#hash", "bang!", "a/b"])
def test_a_project_logs_an_object_under_its_db_key_and_checks_it(bad: str) -> None:
    project = new_project("keys")
    obj = Artifact("fine-key", body=b"1")
    obj.spec.db_key = bad
    with pytest.raises(InvalidKey, match="invalid key"):
        project.log_artifact(obj)
    assert get_catalog().list_artifacts(project="keys") == []


def test_a_valid_db_key_names_the_version_and_the_object_is_left_alone() -> None:
    project = new_project("keys")
    obj = Artifact("fine-key", body=b"1")
    obj.spec.db_key = "stored.key"
    logged = project.log_artifact(obj)
    assert logged.key == "stored.key" and "db_key" not in logged.spec.to_dict()
    assert obj.key == "fine-key"  # the caller's object is not changed


def test_a_run_logs_an_object_under_its_own_key_whatever_its_db_key() -> None:
    obj = Artifact("run-key", body=b"1")
    obj.spec.db_key = "not!valid"
    logged = get_or_create_ctx("job", project="keys").log_artifact(obj)
    assert logged.key == "run-key"


def test_a_file_url_is_the_local_file_it_names(tmp_path: Path) -> None:
    pd.DataFrame({"n": [1, 2]}).to_parquet(tmp_path / "frame.pq")
    ctx = get_or_create_ctx("job", project="paths")
    logged = ctx.log_artifact(Artifact("frame"), local_path=f"file://{tmp_path}/frame.pq")
    assert logged.hash == hashlib.sha256((tmp_path / "frame.pq").read_bytes()).hexdigest()


def test_a_missing_file_url_is_refused_naming_the_path() -> None:
    ctx = get_or_create_ctx("job", project="paths")
    with pytest.raises(InvalidInput, match="'/nowhere/file.txt' does not exist"):
        ctx.log_artifact(Artifact("gone"), local_path="file:///nowhere/file.txt")


def test_log_dataset_without_a_frame_needs_an_existing_file(tmp_path: Path) -> None:
    ctx = get_or_create_ctx("job", project="paths")
    with pytest.raises(InvalidInput, match="df=None.*does not exist"):
        ctx.log_dataset("nothing", df=None, local_path=str(tmp_path / "missing.parquet"))


def test_put_of_a_number_is_a_type_error(tmp_path: Path) -> None:
    item = get_dataitem(str(tmp_path / "x.txt"))
    with pytest.raises(TypeError, match="bytes or text, not int"):
        item.put(123)
    with pytest.raises(WrongType):  # and the catalog's InvalidInput
        item.put(1.5)
    assert not (tmp_path / "x.txt").exists()


def test_stat_of_a_missing_object_is_file_not_found(tmp_path: Path) -> None:
    item = get_dataitem(str(tmp_path / "gone.txt"))
    item.put("12345")
    assert item.stat().size == 5
    item.delete()
    with pytest.raises(FileNotFoundError, match="gone.txt"):
        item.stat()
    with pytest.raises(ObjectNotFound):
        get_dataitem("memory://nobody/here.txt").stat()


def test_upload_writes_the_content_to_the_target_path_and_hashes_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2]})
    target = tmp_path / "out" / "data.csv"
    dataset = DatasetArtifact(df=frame, target_path=str(target), format="csv")
    dataset.upload()
    assert pd.read_csv(target).equals(frame)
    assert dataset.hash == hashlib.sha256(target.read_bytes()).hexdigest()
    assert dataset.metadata.hash == dataset.hash and dataset.size == target.stat().st_size


def test_upload_prefers_the_source_file(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("a\n1\n")
    dataset = DatasetArtifact(df=pd.DataFrame({"x": [9]}), target_path=str(tmp_path / "t.csv"))
    dataset.src_path = tmp_path / "src.csv"
    dataset.upload()
    assert (tmp_path / "t.csv").read_text() == "a\n1\n"


def test_upload_without_a_target_goes_to_the_content_store() -> None:
    art = Artifact("blob", body=b"payload")
    art.upload()
    digest = hashlib.sha256(b"payload").hexdigest()
    assert art.hash == digest and art.target_path.endswith(f"/{digest[:2]}/{digest[2:]}")
    assert Path(art.target_path).read_bytes() == b"payload"


def test_upload_with_nothing_to_write_does_nothing(tmp_path: Path) -> None:
    dataset = DatasetArtifact(target_path=str(tmp_path / "t.csv"), format="csv")
    dataset.upload()
    assert (dataset.hash, dataset.size) == (None, None)
    assert not (tmp_path / "t.csv").exists()


def test_upload_of_a_logged_version_is_refused() -> None:
    logged = new_project("up").log_artifact("v", body=b"1")
    with pytest.raises(InvalidInput, match="logged version"):
        logged.upload()


def test_a_table_of_a_frame_has_a_text_body() -> None:
    table = TableArtifact("t", df=pd.DataFrame({"x": [1, 2]}))
    assert table.get_body() == "x\n1\n2\n"
    assert "<table" in TableArtifact("h", df=pd.DataFrame({"x": [1]}), format="html").get_body()
    assert TableArtifact("b", body="raw").get_body() == "raw"


def test_set_artifact_paths_are_in_the_context_and_must_exist(tmp_path: Path) -> None:
    project = new_project("manifest", str(tmp_path / "ctx"))
    (tmp_path / "ctx" / "data.csv").write_text("a\n1\n")
    project.set_artifact("data", "data.csv")
    assert project.spec.artifacts[0]["target_path"] == str(tmp_path / "ctx" / "data.csv")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        project.set_artifact("gone", "missing.csv")
    with pytest.raises(ObjectNotFound):
        project.set_artifact("gone", target_path=str(tmp_path / "nowhere"))
    assert [e["key"] for e in project.spec.artifacts] == ["data"]  # nothing added
    project.set_artifact("remote", "https://example.invalid/model.zip")  # a URL as given


def test_set_artifact_of_an_object_with_a_target_path(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "m.pkl").write_bytes(b"w")
    project = new_project("manifest", str(tmp_path))
    model = ModelArtifact(model_file="m.pkl")
    project.set_artifact("model", model, target_path="model")
    entry = project.spec.artifacts[0]["artifact"]
    assert entry.spec.target_path == str(tmp_path / "model") and model.spec.target_path is None


def test_ignoring_the_preview_limits_previews_every_row_and_column() -> None:
    wide = pd.DataFrame([list(range(130))] * 45)
    assert len(DatasetArtifact(df=wide).preview) == 20
    assert len(DatasetArtifact(df=wide, preview=25).preview) == 25
    full = DatasetArtifact(df=wide, ignore_preview_limits=True).preview
    assert (len(full), len(full[0])) == (45, 130)
    assert len(DatasetArtifact(df=wide).preview[0]) == 100
