"""Items 2 and 3: MLRun's entry points, and results shaped as MLRun's."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from catalog import (
    InvalidInput,
    get_catalog,
    get_object,
    get_or_create_ctx,
    get_store_resource,
    handler,
    new_project,
    run_local,
)
from catalog.artifacts import ArtifactList, PlotArtifact, PlotlyArtifact, get_model


def test_standalone_context_records_its_run() -> None:
    ctx = get_or_create_ctx("notebook", project="entry")
    assert ctx.labels["kind"] == "local" and ctx.state == "running"
    assert get_or_create_ctx("notebook", project="entry") is ctx
    ctx.log_result("accuracy", 0.5)
    ctx.commit(completed=True)
    run = get_catalog().read("run", project="entry", uid=ctx.uid)
    assert run["state"] == "completed"


def test_context_set_state_error_and_with_block() -> None:
    with get_or_create_ctx("failing", project="entry") as ctx:
        ctx.set_state(error="bad input")
    assert (ctx.state, ctx.error) == ("error", "bad input")
    assert get_catalog().read("run", project="entry", uid=ctx.uid)["state"] == "error"


def test_context_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret")
    ctx = get_or_create_ctx("helpers", project="entry")
    art = ctx.log_artifact("a", body=b"123")
    assert ctx.get_secret("API_TOKEN") == "s3cret" and ctx.get_secret("NOPE") is None
    assert ctx.get_dataitem(art.uri).get() == b"123"
    assert ctx.get_store_resource(art.uri).uid == art.uid == get_store_resource(art.uri).uid
    assert get_object(art.uri, size=2) == b"12"
    with open("local.txt", "w") as fh:
        fh.write("x")
    assert ctx.get_input("local.txt").get() == b"x"  # the key read as a URL
    with pytest.raises(InvalidInput, match="has no input 'missing'"):
        ctx.get_input("missing")


def test_run_status_and_callable_uid() -> None:
    def job(context: object) -> float:
        context.log_artifact("chart", body="abc")  # type: ignore[attr-defined]
        return 1.5

    run = run_local(handler=job, project="entry")
    assert run.status.state == "completed" and run.status.results == {"return": 1.5}
    assert run.status.artifacts[0]["metadata"]["key"] == "chart"
    assert run.uid() == run.uid and run.status.artifact_uris["chart"] == run.outputs["chart"]


def test_handler_decorator_logs_outputs() -> None:
    @handler(outputs=["table", "count", "raw:artifact"])
    def produce(context: object) -> tuple[pd.DataFrame, int, bytes]:
        return pd.DataFrame({"a": [1, 2]}), 2, b"bytes"

    run = run_local(handler=produce, project="entry")
    assert run.outputs["count"] == 2
    assert run.outputs["table"].startswith("store://datasets/entry/table^")
    assert run.artifact("raw").get() == b"bytes"
    assert produce(None)[1] == 2  # outside a run it just returns


def test_list_artifacts_shapes() -> None:
    project = new_project("entry")
    project.log_artifact("alpha-one", body=b"1")
    project.log_model("beta", body=b"2")
    listed = project.list_artifacts()
    assert isinstance(listed, ArtifactList)
    assert {a["metadata"]["key"] for a in listed} == {"alpha-one", "beta"}
    assert set(listed.to_df()["key"]) == {"alpha-one", "beta"}
    assert [a.key for a in listed.to_objects()] == [a.key for a in listed]
    assert [a.key for a in project.list_artifacts(name="~alpha")] == ["alpha-one"]
    assert [a.key for a in project.list_models()] == ["beta"]
    assert [a.key for a in get_catalog().list_artifacts(project="entry", category="model")] == [
        "beta"
    ]


def test_singular_categories() -> None:
    project = new_project("entry")
    model = project.log_model("clf", body=b"w")
    uri = project.get_artifact_uri("clf", category="model")
    assert uri == "store://models/entry/clf"
    assert get_catalog().get_artifact("store://model/entry/clf").uid == model.uid


def test_metadata_hash_and_producer() -> None:
    art = new_project("entry").log_artifact("x", body="123")
    assert art.metadata.hash == art.hash and art.producer["kind"] == "project"
    doc = art.export("x.yaml")
    assert os.path.exists(doc)


def test_get_model_downloads_the_model() -> None:
    model = new_project("entry").log_model(
        "clf", body=b"weights", model_file="clf.bin", extra_data={"notes.txt": "hello"}
    )
    path, art, extra = get_model(model.uri, suffix=".bin")
    with open(path, "rb") as fh:
        assert fh.read() == b"weights"
    assert art is not None and art.uid == model.uid
    assert extra["notes.txt"].get() == b"hello"


def test_plotly_artifact_is_html() -> None:
    class Figure:  # what PlotlyArtifact needs of a plotly figure
        def to_html(self, **kwargs: object) -> str:
            return "<div>plot</div>"

    art = new_project("entry").log_artifact(PlotlyArtifact("p", figure=Figure()))
    assert (art.kind, art.spec.format) == ("plot", "html")
    assert isinstance(get_catalog().get_artifact(art.uri), PlotArtifact)
    with pytest.raises(InvalidInput, match="plotly figure"):
        PlotlyArtifact("bad", figure=42)
