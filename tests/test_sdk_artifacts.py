"""The artifact families through the SDK: datasets, tables, models, plots,
directories, feature-store objects; update_dataset_meta / update_model; the
DataItem; the MLRun-shaped document (to_dict / to_yaml); refusals of bad input.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from catalog import (
    ArtifactNotFound,
    DataItem,
    DigestMismatch,
    InvalidInput,
    MLClientCtx,
    Project,
    get_catalog,
    get_dataitem,
    mlconf,
    new_project,
    run_local,
)
from catalog.artifacts import (
    Artifact,
    DatasetArtifact,
    DirArtifact,
    FeatureSetArtifact,
    FeatureVectorArtifact,
    ModelArtifact,
    PlotArtifact,
    TableArtifact,
    update_dataset_meta,
    update_model,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def fresh_mlconf() -> Iterator[None]:
    """A fresh process-wide client, its projection kept open for the test (speed)."""
    mlconf.reset()
    with get_catalog().session():
        yield
    mlconf.reset()
    plt.close("all")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project("arts", artifact_path=str(tmp_path / "store"))


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": np.arange(30),
            "x": np.linspace(0.0, 1.0, 30),
            "s": [f"v{i % 3}" for i in range(30)],
            "when": pd.date_range("2024-01-01", periods=30, freq="D"),
        }
    )


def log_end() -> dict[int, int]:
    return get_catalog().log_end()


def versions() -> int:
    return int(get_catalog().sql("SELECT count(*) AS n FROM artifacts").to_pylist()[0]["n"])


def png_bytes() -> bytes:
    figure, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


# ---------------------------------------------------------------- datasets


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "feather", None])
def test_dataset_formats_round_trip(project: Project, frame: pd.DataFrame, fmt: str | None) -> None:
    kwargs: dict[str, Any] = {"double_precision": 15} if fmt == "json" else {}
    art = project.log_dataset("table", df=frame, format=fmt, **kwargs)
    expected = fmt or "parquet"  # parquet is the default, as in MLRun
    assert (art.kind, art.category, art.spec.format) == ("dataset", "datasets", expected)
    item = get_dataitem(art.uri)
    assert item.suffix == f".{expected}" and item.meta.spec.filename == f"table.{expected}"
    back = item.as_df()
    if fmt in ("csv", "json"):  # text formats lose the datetime dtype
        back["when"] = pd.to_datetime(back["when"]).dt.as_unit("ns")
    pd.testing.assert_frame_equal(back, frame, check_dtype=fmt not in ("csv", "json"))
    assert item.as_df(columns=["n", "s"]).columns.tolist() == ["n", "s"]


def test_dataset_metadata(project: Project, frame: pd.DataFrame) -> None:
    art = project.log_dataset("table", df=frame)
    assert art.spec.length == 30 and art.spec.header == ["n", "x", "s", "when"]
    assert len(art.spec.preview) == 20  # 20 rows by default
    assert art.spec.preview[0] == [0, 0.0, "v0", "2024-01-01T00:00:00"]
    fields = {f["name"]: f["type"] for f in art.spec.schema["fields"]}
    assert fields == {"n": "integer", "x": "number", "s": "string", "when": "datetime"}
    stats = art.spec.stats
    assert stats["n"]["count"] == 30 and stats["n"]["max"] == 29.0
    assert stats["s"] == {"count": 30, "unique": 3, "top": "v0", "freq": 10}
    counts, edges = stats["x"]["hist"]
    assert sum(counts) == 30 and len(counts) == 20 and len(edges) == 21
    assert stats["when"]["min"] == "2024-01-01T00:00:00"
    # the same figures from the DataItem and from a fresh read
    item = get_dataitem("store://datasets/arts/table")
    assert isinstance(item.meta, DatasetArtifact)
    assert item.meta.stats == stats and item.meta.schema == art.spec.schema
    assert item.meta.preview == art.spec.preview
    assert item.meta.header == art.spec.header and item.meta.length == 30


def test_preview_size_and_column_limit(project: Project) -> None:
    art = project.log_dataset("small", df=pd.DataFrame({"a": range(50)}), preview=5)
    assert art.spec.preview == [[0], [1], [2], [3], [4]]
    wide = pd.DataFrame(np.zeros((3, 120)), columns=[f"c{i}" for i in range(120)])
    art = project.log_dataset("wide", df=wide)
    assert len(art.spec.preview) == 3 and all(len(row) == 100 for row in art.spec.preview)
    assert len(art.spec.header) == 120
    with pytest.raises(InvalidInput, match="non-negative"):
        project.log_dataset("bad", df=wide, preview=-1)


def test_when_stats_are_computed(project: Project) -> None:
    small = pd.DataFrame({"a": [1.0, 2.0]})
    long = pd.DataFrame({"a": np.arange(10_000)})
    wide = pd.DataFrame(np.ones((2, 100)), columns=[f"c{i}" for i in range(100)])
    assert project.log_dataset("small", df=small).spec.stats is not None
    assert project.log_dataset("small-off", df=small, stats=False).spec.stats is None
    assert project.log_dataset("long", df=long).spec.stats is None  # 10,000 rows
    assert project.log_dataset("wide", df=wide).spec.stats is None  # 100 columns
    forced = project.log_dataset("long-on", df=long, stats=True).spec.stats
    assert forced["a"]["count"] == 10_000 and forced["a"]["max"] == 9999.0


def test_writer_kwargs_pass_through(project: Project) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    art = project.log_dataset("semi", df=df, format="csv", sep=";", index=True)
    item = get_dataitem(art.uri)
    assert item.get(encoding="utf-8").splitlines()[:2] == [";a;b", "0;1;x"]
    assert item.as_df(sep=";", index_col=0).equals(df)
    assert art.spec.schema["primaryKey"] == ["index"]  # index=True: the index is described


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "feather"])
def test_index_true_keeps_the_index_in_every_format(project: Project, fmt: str) -> None:
    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k"))
    back = get_dataitem(project.log_dataset("indexed", df=df, format=fmt, index=True).uri).as_df()
    if "k" in back.columns:  # csv, json and feather hold it as a column; parquet as the index
        back = back.set_index("k")
    assert back.reset_index().to_dict("list") == {"k": ["x", "y"], "a": [1, 2]}
    plain = get_dataitem(project.log_dataset("plain", df=df, format=fmt, index=False).uri)
    assert plain.as_df().to_dict("list") == {"a": [1, 2]}  # index=False drops it
    # by default an index that holds data (named, or not a RangeIndex) is kept as columns
    kept = get_dataitem(project.log_dataset("kept", df=df, format=fmt).uri).as_df()
    assert kept.to_dict("list") == {"k": ["x", "y"], "a": [1, 2]}


@pytest.mark.parametrize(
    ("df", "kwargs", "message"),
    [
        (pd.DataFrame({"ok": [1], "z": [1 + 2j]}), {}, "column 'z' has unsupported type"),
        (pd.DataFrame({"d": [{"a": 1}]}), {}, "column 'd' holds values of unsupported type"),
        (pd.DataFrame({"a": [1]}), {"label_column": "target"}, "label_column 'target'"),
        (pd.DataFrame({"a": [1]}), {"format": "xlsx"}, "unknown dataset format 'xlsx'"),
        ("not a frame", {}, "df must be a pandas or dask DataFrame"),
    ],
    ids=["complex", "dicts", "label-column", "format", "not-a-frame"],
)
def test_bad_frames_are_refused_before_anything_is_written(
    project: Project, tmp_path: Path, df: Any, kwargs: dict[str, Any], message: str
) -> None:
    before = log_end()
    with pytest.raises(InvalidInput, match=message):
        project.log_dataset("bad", df=df, **kwargs)
    assert log_end() == before
    assert not (tmp_path / "store").exists()

    def job(context: MLClientCtx) -> None:
        context.log_dataset("bad", df=df, **kwargs)

    with pytest.raises(InvalidInput, match=message):
        run_local(handler=job, project="arts")
    (row,) = get_catalog().sql("SELECT state, error FROM runs").to_pylist()
    assert row["state"] == "error" and message in row["error"]
    assert versions() == 0


def test_label_column_and_column_metadata_are_recorded(project: Project) -> None:
    art = project.log_dataset(
        "train",
        df=pd.DataFrame({"a": [1], "y": [0]}),
        label_column="y",
        column_metadata={"a": {"unit": "cm"}},
    )
    assert art.spec.label_column == "y" and art.spec.column_metadata == {"a": {"unit": "cm"}}


def test_dataset_artifact_object_and_local_file(project: Project, tmp_path: Path) -> None:
    art = project.log_artifact(DatasetArtifact("obj", df=pd.DataFrame({"a": [1]}), format="csv"))
    assert art.kind == "dataset" and get_dataitem(art.uri).as_df()["a"].tolist() == [1]
    path = tmp_path / "given.csv"
    path.write_text("a\n5\n")
    art = project.log_dataset("from-file", df=None, local_path=str(path), format="csv")
    assert get_dataitem(art.uri).as_df()["a"].tolist() == [5]
    with pytest.raises(InvalidInput, match="needs df="):
        project.log_dataset("nothing", df=None)


# ------------------------------------------------------------------- tables


def test_table_artifacts(project: Project) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    t = project.log_artifact(TableArtifact("tbl", df=df))
    assert (t.kind, t.spec.format, t.spec.header, t.spec.length) == ("table", "csv", ["a", "b"], 2)
    assert get_dataitem(t.uri).as_df().equals(df)
    t = project.log_artifact(TableArtifact("html", df=df, format="html"))
    assert t.spec.format == "html" and b"<table" in get_dataitem(t.uri).get()
    t = project.log_artifact(TableArtifact("body", body="a,b\n1,2\n", header=["a", "b"]))
    assert t.spec.header == ["a", "b"] and get_dataitem(t.uri).as_df()["b"].tolist() == [2]
    with pytest.raises(InvalidInput, match="csv or html"):
        project.log_artifact(TableArtifact("bad", df=df, format="xml"))


# ------------------------------------------------------------------- models


def test_model_is_a_directory_with_its_spec(project: Project, tmp_path: Path) -> None:
    chart = project.log_artifact(PlotArtifact("roc", body=png_bytes()))
    training = project.log_dataset("train", df=pd.DataFrame({"a": [1], "y": [0]}))
    model = project.log_model(
        "clf",
        body=b"pickled-model",
        framework="sklearn",
        algorithm="RandomForestClassifier",
        metrics={"accuracy": 0.93},
        parameters={"n_estimators": 10},
        inputs=[{"name": "a", "value_type": "int"}],
        outputs=[{"name": "y", "value_type": "int"}],
        extra_data={"notes.txt": "trained on a laptop", "roc": chart},
        training_set=training,
        label_column="y",
        labels={"stage": "dev"},
    )
    assert (model.kind, model.category, model.spec.format) == ("model", "models", "dir")
    assert isinstance(model, ModelArtifact)
    assert model.model_file == "clf.pkl" and model.spec.extra_files == ["notes.txt"]
    assert model.metrics == {"accuracy": 0.93} and model.parameters == {"n_estimators": 10}
    assert (model.spec.framework, model.spec.algorithm) == ("sklearn", "RandomForestClassifier")
    assert model.spec.inputs == [{"name": "a", "value_type": "int"}]
    assert model.extra_data == {"roc": chart.uri}  # artifacts are links, text is a file
    assert [s["uid"] for s in model.spec.sources] == [training.uid]

    item = get_dataitem(model.uri)
    assert item.listdir() == ["clf.pkl", "model_spec.yaml", "notes.txt"]
    local = Path(item.local())
    assert (local / "clf.pkl").read_bytes() == b"pickled-model"
    assert (local / "notes.txt").read_text() == "trained on a laptop"
    spec = yaml.safe_load((local / "model_spec.yaml").read_text())
    assert spec["kind"] == "model" and spec["spec"]["metrics"] == {"accuracy": 0.93}
    assert spec["spec"]["model_file"] == "clf.pkl"
    out = Path(item.download(tmp_path / "copy"))
    assert sorted(p.name for p in out.iterdir()) == ["clf.pkl", "model_spec.yaml", "notes.txt"]


def test_model_from_a_file_or_a_directory(project: Project, tmp_path: Path) -> None:
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"onnx")
    art = project.log_model("from-file", model_file=str(weights))
    assert art.model_file == "model.onnx"
    folder = tmp_path / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "variables" / "v.data").write_bytes(b"v")
    art = project.log_model("from-dir", model_dir=str(folder), framework="tensorflow")
    assert get_dataitem(art.uri).listdir() == [
        "model_spec.yaml",
        "saved_model.pb",
        "variables/v.data",
    ]
    with pytest.raises(InvalidInput, match="give one of body"):
        ModelArtifact("two", body=b"x", model_dir=str(tmp_path))
    with pytest.raises(InvalidInput, match="is not a file"):
        project.log_model("missing", model_file=str(tmp_path / "nope.pkl"))


def test_update_model_changes_the_same_version(project: Project) -> None:
    model = project.log_model("clf", body=b"m", metrics={"accuracy": 0.9}, tag="prod")
    chart = project.log_artifact(PlotArtifact("cm", body=png_bytes()))
    before = log_end()
    updated = update_model(
        model,
        metrics={"f1": 0.8},
        parameters={"depth": 3},
        extra_data={"confusion": chart},
        labels={"reviewed": "yes"},
    )
    assert updated.uid == model.uid and updated.hash == model.hash
    assert updated.metrics == {"accuracy": 0.9, "f1": 0.8}  # merged
    assert updated.parameters == {"depth": 3}
    assert updated.extra_data == {"confusion": chart.uri}
    assert updated.labels == {"reviewed": "yes"}
    assert sum(log_end().values()) == sum(before.values()) + 1  # one event
    events = (
        get_catalog()
        .sql("SELECT type FROM events WHERE key = 'clf' ORDER BY \"offset\"")
        .to_pylist()
    )
    assert [e["type"] for e in events] == ["ArtifactLogged", "ArtifactUpdated"]
    assert get_catalog().get_artifact("store://models/arts/clf:prod").uid == model.uid
    # by DataItem and by URI too
    assert update_model(get_dataitem(model.uri), metrics={"auc": 0.7}).metrics["auc"] == 0.7
    assert update_model("store://models/arts/clf", labels={"x": "1"}).labels["x"] == "1"

    with pytest.raises(InvalidInput, match="is a plot, not a model"):
        update_model(chart, metrics={"a": 1})
    with pytest.raises(InvalidInput, match="files cannot change"):
        update_model(model, extra_data={"readme": "new text"})


# -------------------------------------------------------------------- plots


def test_plot_from_a_matplotlib_figure(project: Project) -> None:
    figure, ax = plt.subplots()
    ax.bar(["a", "b"], [3, 5])
    art = project.log_artifact(PlotArtifact("bars", body=figure, title="Counts"))
    plt.close(figure)
    assert (art.kind, art.spec.format, art.spec.title) == ("plot", "png", "Counts")
    item = get_dataitem(art.uri)
    assert item.suffix == ".png" and item.get(size=8) == b"\x89PNG\r\n\x1a\n"
    viewer = art.spec.attachments["viewer.html"]
    page = get_dataitem(viewer["target_path"]).get(encoding="utf-8")
    assert "<h3>Counts</h3>" in page and "data:image/png;base64," in page
    assert len(viewer["hash"]) == 64 and viewer["size"] == len(page.encode())


def test_plot_from_png_bytes_or_html(project: Project) -> None:
    png = png_bytes()
    art = project.log_artifact(PlotArtifact("png", body=png))
    assert art.spec.format == "png" and get_dataitem(art.uri).get() == png
    assert art.spec.title == "png"  # the key when no title is given
    html = "<html><body><svg></svg></body></html>"
    art = project.log_artifact(PlotArtifact("page", body=html))
    assert art.spec.format == "html" and art.spec.attachments is None
    assert get_dataitem(art.uri).get(encoding="utf-8") == html
    before = log_end()
    with pytest.raises(InvalidInput, match="no body"):
        project.log_artifact(PlotArtifact("empty"))
    with pytest.raises(InvalidInput, match="not PNG nor text"):
        project.log_artifact(PlotArtifact("junk", body=b"\xff\xfe\x00\x81"))
    with pytest.raises(InvalidInput, match="not int"):
        project.log_artifact(PlotArtifact("number", body=42))
    assert log_end() == before


def test_directory_artifacts(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>hi</p>")
    (folder / "sub" / "data.csv").write_text("a\n1\n")
    art = project.log_artifact(DirArtifact("reports", local_path=str(folder)))
    assert (art.kind, art.spec.format, art.size) == ("dir", "dir", 13)
    item = get_dataitem(art.uri)
    assert item.listdir() == ["index.html", "sub/data.csv"]
    assert (Path(item.local()) / "sub" / "data.csv").read_text() == "a\n1\n"
    with pytest.raises(InvalidInput, match="is a directory"):
        item.get()
    with pytest.raises(InvalidInput, match="needs local_path"):
        project.log_artifact(DirArtifact("nothing"))


# ------------------------------------------------------------- feature store


def test_feature_sets_and_vectors(project: Project) -> None:
    df = pd.DataFrame(
        {
            "ticker": ["A", "B"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "price": [1.5, 2.5],
            "volume": [10, 20],
        }
    )
    stocks_v1 = project.log_artifact(
        FeatureSetArtifact("stocks", entities=["ticker"], df=df, timestamp_key="time"), tag="v1"
    )
    assert (stocks_v1.kind, stocks_v1.category) == ("feature-set", "feature-sets")
    assert stocks_v1.uri.startswith("store://feature-sets/arts/stocks^")
    assert stocks_v1.spec.entities == [{"name": "ticker", "value_type": "str"}]
    assert stocks_v1.spec.features == [
        {"name": "price", "value_type": "float"},
        {"name": "volume", "value_type": "int"},
    ]
    assert get_dataitem(stocks_v1.uri).as_df().equals(df)  # the frame is stored as parquet
    quotes = project.log_artifact(
        FeatureSetArtifact(
            "quotes",
            entities=[{"name": "ticker", "value_type": "str"}],
            features=["bid", {"name": "ask", "value_type": "float"}],
        )
    )
    assert quotes.hash is None and quotes.target_path is None  # metadata only

    vector = project.log_artifact(
        FeatureVectorArtifact(
            "prices", features=["stocks.price", "quotes.*"], label_feature="stocks.volume"
        ),
        tag="v1",
    )
    assert (vector.kind, vector.category) == ("feature-vector", "feature-vectors")
    edges = get_catalog().lineage(vector.uri)
    assert {(e["parent_key"], e["parent_uid"]) for e in edges} == {
        ("stocks", stocks_v1.uid),
        ("quotes", quotes.uid),
    }

    # a new version of the set; the tag keeps naming the old one, the vector's lineage too
    stocks_v2 = project.log_artifact(
        FeatureSetArtifact("stocks", entities=["ticker"], features=["price", "volume", "vwap"])
    )
    assert stocks_v2.uid != stocks_v1.uid
    cat = get_catalog()
    assert cat.get_artifact("store://feature-sets/arts/stocks:v1").uid == stocks_v1.uid
    assert cat.get_artifact("store://feature-sets/arts/stocks").uid == stocks_v2.uid
    assert cat.get_artifact("store://feature-vectors/arts/prices:v1").uid == vector.uid
    assert {a.key for a in cat.list_artifacts(category="feature-sets", project="arts")} == {
        "stocks",
        "quotes",
    }
    assert [a.key for a in cat.list_artifacts(kind="feature-vector", project="arts")] == ["prices"]
    assert len(cat.list_artifacts(name="stocks", project="arts", all_versions=True)) == 2
    assert {e["parent_uid"] for e in cat.lineage(vector.uri)} == {stocks_v1.uid, quotes.uid}
    with pytest.raises(ArtifactNotFound, match="category feature-sets"):
        cat.get_artifact("store://datasets/arts/stocks")


def test_feature_store_refusals(project: Project) -> None:
    with pytest.raises(InvalidInput, match="at least one entity"):
        FeatureSetArtifact("no-entity", features=["a"])
    with pytest.raises(InvalidInput, match="not columns"):
        FeatureSetArtifact("s", entities=["id"], df=pd.DataFrame({"x": [1]}))
    with pytest.raises(InvalidInput, match="feature reference 'nodot'"):
        FeatureVectorArtifact("v", features=["nodot"])
    before = log_end()
    with pytest.raises(ArtifactNotFound, match="feature-sets/arts/missing"):
        project.log_artifact(FeatureVectorArtifact("v", features=["missing.x"]))
    assert log_end() == before


# ------------------------------------------------------- update_dataset_meta


def test_update_dataset_meta_links_on_the_same_version(project: Project) -> None:
    dataset = project.log_dataset("iris", df=pd.DataFrame({"a": [1, 2, 3]}), tag="prod")
    plot = project.log_artifact(PlotArtifact("confusion-matrix", body=png_bytes()))
    notes = project.log_artifact("notes", body=b"text")
    before = log_end()

    updated = update_dataset_meta(dataset, extra_data={"confusion_matrix": plot})
    assert updated.uid == dataset.uid and updated.hash == dataset.hash
    assert updated.extra_data == {"confusion_matrix": plot.uri}
    assert sum(log_end().values()) == sum(before.values()) + 1
    # a DataItem and a store URI (by tag) name the same version
    update_dataset_meta(get_dataitem(dataset.uri), extra_data={"notes": "store://notes"})
    final = update_dataset_meta("store://datasets/arts/iris:prod", labels={"checked": "yes"})
    assert final.uid == dataset.uid and final.labels == {"checked": "yes"}
    assert final.extra_data == {"confusion_matrix": plot.uri, "notes": notes.uri}
    assert sorted(final.metadata.tags) == ["latest", "prod"]  # no tag moved
    assert len(get_catalog().list_artifacts("arts", name="iris", all_versions=True)) == 1

    document = yaml.safe_load(final.to_yaml())
    assert document["spec"]["extra_data"] == {
        "confusion_matrix": plot.uri,
        "notes": notes.uri,
    }
    links = (
        get_catalog()
        .sql("SELECT name, relation, parent_uid FROM lineage WHERE key = 'iris' ORDER BY name")
        .to_pylist()
    )
    assert links == [
        {"name": "confusion_matrix", "relation": "extra_data", "parent_uid": plot.uid},
        {"name": "notes", "relation": "extra_data", "parent_uid": notes.uid},
    ]
    # a link is not lineage: the plot was not made from iris; iris links to it
    assert get_catalog().lineage(plot.uri, direction="downstream") == []
    linked_from = get_catalog().links(plot.uri)["linked_from"]
    assert [(e["key"], e["relation"]) for e in linked_from] == [("iris", "extra_data")]


def test_update_dataset_meta_refreshes_schema_preview_and_stats(project: Project) -> None:
    dataset = project.log_dataset("d", df=pd.DataFrame({"a": [1, 2]}))
    new = pd.DataFrame({"a": [5, 6, 7], "b": ["x", "y", "z"]})
    updated = update_dataset_meta(dataset, from_df=new, column_metadata={"b": {"pii": False}})
    assert updated.uid == dataset.uid
    assert updated.spec.length == 3 and updated.spec.header == ["a", "b"]
    assert updated.spec.preview == [[5, "x"], [6, "y"], [7, "z"]]
    assert updated.spec.stats["a"]["mean"] == 6.0
    assert updated.spec.column_metadata == {"b": {"pii": False}}
    explicit = update_dataset_meta(
        dataset, schema={"fields": []}, header=["h"], preview=[[1]], stats={"h": {"count": 1}}
    )
    assert (explicit.spec.schema, explicit.spec.header) == ({"fields": []}, ["h"])
    assert (explicit.spec.preview, explicit.spec.stats) == ([[1]], {"h": {"count": 1}})


@pytest.mark.parametrize(
    ("target", "kwargs", "error", "message"),
    [
        ("plot", {}, InvalidInput, "needs a dataset; store://artifacts/arts/notes"),
        ("plain-url", {}, InvalidInput, "is not a catalog artifact"),
        ("number", {}, InvalidInput, "not int"),
        ("unlogged", {}, InvalidInput, "has not been logged"),
        ("missing", {}, ArtifactNotFound, "store://datasets/arts/nope"),
        ("dataset", {"extra_data": {"x": 42}}, InvalidInput, "extra_data['x']"),
        ("dataset", {"extra_data": {"x": "store://nope"}}, ArtifactNotFound, "nope"),
        ("dataset", {"from_df": pd.DataFrame({"c": [1j]})}, InvalidInput, "column 'c'"),
    ],
    ids=[
        "not-a-dataset",
        "plain-url",
        "number",
        "unlogged",
        "missing",
        "bad-link",
        "missing-link",
        "bad-frame",
    ],
)
def test_update_dataset_meta_refusals_change_nothing(
    project: Project,
    tmp_path: Path,
    target: str,
    kwargs: dict[str, Any],
    error: type,
    message: str,
) -> None:
    dataset = project.log_dataset("d", df=pd.DataFrame({"a": [1]}))
    notes = project.log_artifact("notes", body=b"text")
    plain = tmp_path / "plain.csv"
    plain.write_text("a\n1\n")
    targets: dict[str, Any] = {
        "plot": notes,
        "plain-url": get_dataitem(str(plain)),
        "number": 42,
        "unlogged": DatasetArtifact("fresh", df=pd.DataFrame({"a": [1]})),
        "missing": "store://datasets/arts/nope",
        "dataset": dataset,
    }
    before = log_end()
    with pytest.raises(error) as info:
        update_dataset_meta(targets[target], **{"labels": {"k": "v"}, **kwargs})
    assert message in str(info.value)
    assert log_end() == before
    assert get_catalog().get_artifact(dataset.uri).labels == {}


# ------------------------------------------------------------------ DataItem


def test_dataitem_of_an_artifact(project: Project, tmp_path: Path) -> None:
    art = project.log_artifact("greeting", body="héllo wörld", format="txt")
    item = get_dataitem(art.uri)
    assert isinstance(item, DataItem) and str(item) == item.url == art.uri
    assert (item.key, item.kind, item.suffix) == ("greeting", "artifact", ".txt")
    assert item.get() == "héllo wörld".encode()
    assert item.get(encoding="utf-8") == "héllo wörld"
    assert item.get(size=5, offset=1) == "éllo".encode()
    local = item.local()
    assert local.endswith(".txt") and Path(local).read_bytes() == item.get()
    assert item.local() == local and get_dataitem(art.uri).local() == local  # cached
    with item.open() as fh:
        assert fh.read() == item.get()
    with item.open("r") as fh:
        assert fh.read() == "héllo wörld"
    with pytest.raises(InvalidInput, match="read-only"):
        item.open("wb")
    target = tmp_path / "out" / "copy.txt"
    assert item.download(target) == str(target) and target.read_bytes() == item.get()
    stat = item.stat()
    assert (stat.size, stat.hash, stat.url) == (len(item.get()), art.hash, art.uri)
    assert item.meta.uid == art.uid
    with pytest.raises(InvalidInput, match="unknown format 'txt'"):
        item.as_df()


def test_dataitem_of_urls_and_paths(tmp_path: Path) -> None:
    import fsspec

    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "b.txt").write_text("b")
    item = get_dataitem(str(folder / "a.csv"))
    assert (item.kind, item.key, item.suffix, item.meta) == ("file", "a.csv", ".csv", None)
    assert item.as_df().to_dict("list") == {"x": [1], "y": [2]}
    assert item.local() == str(folder / "a.csv") and item.stat().size == 8
    assert get_dataitem(f"file://{folder}").listdir() == ["a.csv", "b.txt"]
    with fsspec.open("memory://sdk-arts/tsv/t.tsv", "w") as fh:
        fh.write("p\tq\n3\t4\n")
    remote = get_dataitem("memory://sdk-arts/tsv/t.tsv")
    assert (remote.kind, remote.suffix) == ("memory", ".tsv")
    assert remote.as_df()["q"].tolist() == [4]
    assert remote.get(size=1) == b"p"
    assert Path(remote.local()).name == "t.tsv" and remote.local() == remote.local()
    assert get_dataitem("memory://sdk-arts/tsv").listdir() == ["t.tsv"]
    out = Path(remote.download(tmp_path / "dl" / "t.tsv"))
    assert out.read_text() == "p\tq\n3\t4\n"


def test_dataitem_show_prints_without_ipython(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # import fails: show() prints
    get_dataitem(project.log_artifact("t", body="plain text", format="txt").uri).show()
    get_dataitem(project.log_dataset("d", df=pd.DataFrame({"col": [7]})).uri).show()
    out = capsys.readouterr().out
    assert "plain text" in out and "col" in out


def test_dataitem_of_a_file_recorded_where_it_is(tmp_path: Path) -> None:
    """``upload=False``: the version names the file in place; reads keep its suffix."""
    source = tmp_path / "report.csv"
    source.write_text("a\n1\n")

    def job(context: MLClientCtx) -> None:
        context.log_artifact("report", local_path=str(source), upload=False)

    item = run_local(handler=job, project="arts").artifact("report")
    assert item.meta.target_path == str(source) and item.meta.hash is None
    assert item.suffix == ".csv" and item.as_df()["a"].tolist() == [1]
    local = Path(item.local())
    assert local.name == "report.csv" and local.read_text() == "a\n1\n"


@pytest.mark.parametrize("read", ["get", "as_df", "local", "download", "open", "listdir"])
def test_every_read_verifies_the_hash(project: Project, tmp_path: Path, read: str) -> None:
    if read == "listdir":
        folder = tmp_path / "dir"
        folder.mkdir()
        (folder / "f.txt").write_text("original")
        art = project.log_artifact(DirArtifact("folder", local_path=str(folder)))
        manifest = Path(art.target_path)
    else:
        art = project.log_dataset("d", df=pd.DataFrame({"a": [1, 2, 3]}), format="csv")
        manifest = Path(art.target_path)
    manifest.chmod(0o644)
    content = manifest.read_bytes()
    manifest.write_bytes(content[:-2] + b"9\n" if read != "listdir" else content + b" ")
    item = get_dataitem(art.uri)
    target = tmp_path / "out.csv"
    calls = {
        "get": item.get,
        "as_df": item.as_df,
        "local": item.local,
        "download": lambda: item.download(target),
        "open": lambda: item.open().read(),
        "listdir": item.listdir,
    }
    with pytest.raises(DigestMismatch) as info:
        calls[read]()
    assert info.value.expected == art.hash  # type: ignore[attr-defined]
    assert not target.exists()


# -------------------------------------------------------------------- export


def test_documents_in_mlrun_layout(project: Project) -> None:
    dataset = project.log_dataset("d", df=pd.DataFrame({"a": [1, 2]}), labels={"k": "v"}, tag="v1")
    doc = get_catalog().get_artifact(dataset.uri).to_dict()
    assert list(doc) == ["kind", "metadata", "spec", "status"]
    assert doc["kind"] == "dataset" and doc["status"] == {"state": "created"}
    meta = doc["metadata"]
    assert {k: meta[k] for k in ("key", "project", "uid", "iter", "labels")} == {
        "key": "d",
        "project": "arts",
        "uid": dataset.uid,
        "iter": 0,
        "labels": {"k": "v"},
    }
    assert sorted(meta["tags"]) == ["latest", "v1"]
    assert {"created", "updated"} <= set(meta)
    spec = doc["spec"]
    for field in (
        "target_path",
        "hash",
        "size",
        "format",
        "producer",
        "schema",
        "preview",
        "stats",
        "header",
        "length",
    ):
        assert field in spec, field
    assert spec["producer"]["kind"] == "project"  # logged through a Project, as in MLRun
    assert yaml.safe_load(dataset.to_yaml()) == dataset.to_dict()
    for art in (
        project.log_model("m", body=b"x", metrics={"a": 1}),
        project.log_artifact(PlotArtifact("p", body=png_bytes())),
        project.log_artifact(FeatureSetArtifact("fs", entities=["id"])),
    ):
        loaded = yaml.safe_load(art.to_yaml())
        assert loaded["kind"] == art.kind and loaded["metadata"]["uid"] == art.uid


def test_unlogged_artifacts_have_no_uri() -> None:
    art = Artifact("k", body=b"x")
    assert art.uid is None and "unlogged" in repr(art)
    with pytest.raises(ValueError, match="has not been logged"):
        art.uri  # noqa: B018
