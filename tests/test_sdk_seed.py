"""The seed's flows (MLRun's "Artifacts and Versioning" page), as written.

The code inside each test is the seed's, with only the import names changed
(``mlrun`` → ``catalog``). It runs in a temporary working directory, because
the seed uses relative paths (``./artifacts``, ``conf``, ``jobs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from os import path
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import catalog
from catalog import (
    get_dataitem,
    get_or_create_project,
    mlconf,
    new_project,
    run_local,
    set_environment,
)
from catalog.artifacts import PlotArtifact, update_dataset_meta
from catalog.config import Config
from catalog.datastore import DataItem
from catalog.execution import MLClientCtx

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def fresh_mlconf() -> Iterator[None]:
    """The module-level API shares one client: start and end every test without it."""
    mlconf.reset()
    yield
    mlconf.reset()
    plt.close("all")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def api_service(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real catalog service on loopback, named by CATALOG_API: the seed's
    ``mlconf.dbpath`` then keeps it ("MLRun DB path or API service URL")."""
    from catalog.server import Server

    with Server(Config.load(db=str(workdir / "service.duckdb")), advertise=False) as server:
        monkeypatch.setenv("CATALOG_API", server.url)
        yield server.url


def iris_csv(where: Path) -> str:
    """An iris-shaped CSV (150 rows, four measurements and a species)."""
    rng = np.random.default_rng(7)
    species = np.repeat(["setosa", "versicolor", "virginica"], 50)
    centre = np.repeat([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]], 50, 0)
    values = np.round(centre + rng.normal(0, 0.3, centre.shape), 1)
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    df = pd.DataFrame(values, columns=columns).assign(species=species)
    target = where / "iris.csv"
    df.to_csv(target, index=False)
    return str(target)


# ----------------------------------------------------------- the seed's code


# Ingest a data set into the platform
def get_data(context: MLClientCtx, source_url: DataItem, format: str = "csv"):
    iris_dataset = source_url.as_df()

    target_path = path.join(context.artifact_path, "data")
    # Optionally print data to your logger
    context.logger.info("Saving Iris data set to {} ...".format(target_path))  # noqa: UP032

    # Store the data set in your artifacts database
    context.log_dataset(
        "iris_dataset", df=iris_dataset, format=format, index=False, artifact_path=target_path
    )


def confusion_matrix_plot(context: MLClientCtx, dataset: DataItem) -> None:
    """The seed's plot step: a confusion-matrix figure logged as a PlotArtifact."""
    df = dataset.as_df()
    predicted = np.where(df["petal_length"] < 2.5, "setosa", "versicolor")
    matrix = pd.crosstab(df["species"], predicted)
    figure, ax = plt.subplots()
    ax.imshow(matrix.to_numpy())
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")

    confusion_matrix = context.log_artifact(PlotArtifact("confusion-matrix", body=figure))
    plt.close(figure)

    extra_data = {"confusion_matrix": confusion_matrix}
    update_dataset_meta(dataset, extra_data=extra_data)


# --------------------------------------------------------------------- tests


def test_set_environment_returns_the_project_and_its_artifact_path(workdir: Path) -> None:
    project_name = "my-project"
    project_name, artifact_path = set_environment(project=project_name, artifact_path="./artifacts")
    assert (project_name, artifact_path) == ("my-project", str(workdir / "artifacts"))

    training_artifacts = path.join(artifact_path, "training")
    assert training_artifacts == str(workdir / "artifacts" / "training")

    cat = catalog.get_catalog()
    assert cat.project == "my-project"
    row = cat.sql("SELECT artifact_path FROM projects WHERE name = 'my-project'").to_pylist()
    assert row == [{"artifact_path": str(workdir / "artifacts")}]
    # every log call of the project now stores its bytes there
    art = cat.log_artifact("notes", body=b"hello")
    assert art.target_path.startswith(str(workdir / "artifacts") + "/")


def test_run_uid_template_gives_each_job_its_own_directory(workdir: Path) -> None:
    _, artifact_path = set_environment(
        project="my-project", artifact_path="./artifacts/{{project}}/{{run.uid}}"
    )
    assert artifact_path == str(workdir / "artifacts" / "my-project" / "{{run.uid}}")

    def job(context: MLClientCtx) -> None:
        context.log_artifact("out", body=b"same bytes")

    first = run_local(handler=job, project="my-project")
    second = run_local(handler=job, project="my-project")
    paths = [get_dataitem(r.output("out")).meta.target_path for r in (first, second)]
    assert paths[0].startswith(str(workdir / "artifacts" / "my-project" / first.uid) + "/")
    assert paths[1].startswith(str(workdir / "artifacts" / "my-project" / second.uid) + "/")
    # outside a run, {{run.uid}} is the literal "project" (as in MLRun)
    art = catalog.get_catalog().log_artifact("direct", body=b"x")
    assert "/my-project/project/" in art.target_path


def test_the_seed_job_flow(workdir: Path, api_service: str) -> None:
    source_url = iris_csv(workdir)

    project_name = "my-project"
    project_path = path.abspath("conf")
    project = new_project(project_name, project_path, init_git=True)

    # Target location for storing pipeline artifacts
    artifact_path = path.abspath("jobs")
    # MLRun DB path or API service URL
    mlconf.dbpath = mlconf.dbpath or "http://mlrun-api:8080"

    # Run get-data function locally
    get_data_run = run_local(
        name="get_data",
        handler=get_data,
        inputs={"source_url": source_url},
        project=project_name,
        artifact_path=artifact_path,
    )

    # Read your data set
    dataset = get_data_run.artifact("iris_dataset")

    # Visualize an artifact in Jupyter (image, html, df, ..)
    dataset.show()

    df = dataset.as_df()
    stats = dataset.meta.stats

    # --- what the seed promises
    assert (workdir / "conf" / ".git").is_dir()  # init_git=True
    assert project.name == project_name
    assert get_data_run.state() == "completed"
    assert get_data_run.outputs["iris_dataset"] == dataset.meta.uri
    assert dataset.meta.uri.startswith("store://datasets/my-project/iris_dataset^")
    pd.testing.assert_frame_equal(df, pd.read_csv(source_url))
    assert set(stats) == {"sepal_length", "sepal_width", "petal_length", "petal_width", "species"}
    assert stats["sepal_length"]["count"] == 150
    assert stats["species"]["count"] == 150 and stats["species"]["unique"] == 3
    assert len(dataset.meta.preview) == 20  # a preview of 20 rows by default
    # format= and index=False reached the writer; the bytes are under jobs/data
    assert dataset.meta.spec.format == "csv" and dataset.suffix == ".csv"
    assert dataset.get(size=12) == b"sepal_length"
    assert dataset.meta.target_path.startswith(str(workdir / "jobs" / "data") + "/")
    # the run produced it from the CSV it read
    assert dataset.meta.spec.producer["kind"] == "run"
    assert dataset.meta.spec.producer["uri"] == f"my-project/{get_data_run.uid}"
    (source,) = dataset.meta.spec.sources
    assert source["name"] == "source_url" and source["uri"] == source_url
    # mlconf.dbpath named the catalog service: every read went through it
    assert mlconf.dbpath == api_service
    assert catalog.get_catalog().config.api == api_service
    assert not Path(Config.load().db).exists()  # the job kept no projection file
    runs = catalog.get_catalog().sql("SELECT name, state, artifact_path FROM runs").to_pylist()
    assert runs == [
        {"name": "get_data", "state": "completed", "artifact_path": str(workdir / "jobs")}
    ]


def test_the_seed_plot_and_update_dataset_meta_flow(workdir: Path) -> None:
    source_url = iris_csv(workdir)
    project_name, artifact_path = set_environment(project="my-project", artifact_path="./artifacts")
    get_data_run = run_local(
        name="get_data",
        handler=get_data,
        inputs={"source_url": source_url},
        project=project_name,
        artifact_path=path.abspath("jobs"),
    )
    dataset = get_data_run.artifact("iris_dataset")
    train_run = run_local(
        name="train",
        handler=confusion_matrix_plot,
        inputs={"dataset": dataset.meta.uri},
        project=project_name,
    )

    plot = get_dataitem(train_run.outputs["confusion-matrix"])
    assert plot.kind == "plot" and plot.suffix == ".png"
    assert plot.get(size=8) == b"\x89PNG\r\n\x1a\n"
    assert plot.meta.target_path.startswith(artifact_path + "/")

    # the link is on the same dataset version, and shows everywhere
    linked = get_dataitem("store://datasets/my-project/iris_dataset")
    assert linked.meta.uid == dataset.meta.uid
    assert linked.meta.extra_data == {"confusion_matrix": plot.meta.uri}
    assert f"confusion_matrix: {plot.meta.uri}" in linked.meta.to_yaml()
    edges = catalog.get_catalog().lineage(linked.meta.uri)
    assert {(e["relation"], e["name"], e["parent_uid"]) for e in edges if e["depth"] == 1} == {
        ("source", "source_url", None),
    }
    links = catalog.get_catalog().links(linked.meta.uri)["links"]  # links apart from lineage
    assert [(e["name"], e["parent_uid"]) for e in links] == [("confusion_matrix", plot.meta.uid)]
    # the plot was made from the dataset version the run read
    (source,) = plot.meta.spec.sources
    assert source["uid"] == dataset.meta.uid
    versions = catalog.get_catalog().list_artifacts(name="iris_dataset", all_versions=True)
    assert [v.uid for v in versions] == [dataset.meta.uid]


def test_get_or_create_project_reopens(workdir: Path) -> None:
    created = get_or_create_project("my-project", "conf")
    again = get_or_create_project("my-project", "conf")
    assert created.name == again.name == "my-project"
    assert created.log_artifact("k", body=b"v").project == "my-project"
    assert again.get_artifact("k").hash == created.get_artifact("k").hash
