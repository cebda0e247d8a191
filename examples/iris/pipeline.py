"""The seed's iris pipeline, with ``mlrun`` changed to ``catalog`` in the imports.

ingest (get_data) → train a model → confusion-matrix plot → link the plot to
the dataset with update_dataset_meta → queries. Nothing is downloaded: the
iris data ships beside this file. Run it with ``python examples/iris/pipeline.py``
(``make demo`` runs it inside examples/demo.py).
"""

from __future__ import annotations

import pickle
from os import path

import numpy as np
import pandas as pd

from catalog import get_catalog, mlconf, new_project, run_local, set_environment
from catalog.artifacts import PlotArtifact, update_dataset_meta
from catalog.datastore import DataItem
from catalog.execution import MLClientCtx

HERE = path.dirname(path.abspath(__file__))
SOURCE_URL = path.join(HERE, "iris.csv")


def get_data(context: MLClientCtx, source_url: DataItem, format: str = "csv") -> None:
    """The seed's ingestion handler, verbatim."""
    iris_dataset = source_url.as_df()
    target_path = path.join(context.artifact_path, "data")
    context.logger.info("Saving Iris data set to {} ...".format(target_path))  # noqa: UP032 - the seed, verbatim
    context.log_dataset(
        "iris_dataset", df=iris_dataset, format=format, index=False, artifact_path=target_path
    )


def _fit(features: np.ndarray, labels: np.ndarray, seed: int) -> tuple[object, str, str]:
    """A scikit-learn decision tree, or nearest centroids when scikit-learn is absent."""
    try:
        from sklearn.tree import DecisionTreeClassifier
    except ImportError:
        classes = np.unique(labels)
        centroids = np.stack([features[labels == c].mean(axis=0) for c in classes])
        return (classes, centroids), "numpy", "nearest-centroid"
    model = DecisionTreeClassifier(max_depth=3, random_state=seed).fit(features, labels)
    return model, "sklearn", "DecisionTreeClassifier"


def _predict(model: object, features: np.ndarray) -> np.ndarray:
    if isinstance(model, tuple):
        classes, centroids = model
        distances = ((features[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(classes)[distances.argmin(axis=1)]
    return model.predict(features)  # type: ignore[attr-defined, no-any-return]


def train(
    context: MLClientCtx,
    dataset: DataItem,
    label_column: str = "species",
    test_size: float = 0.3,
    seed: int = 7,
) -> dict[str, float]:
    """Train a classifier, log it as a model and its confusion matrix as a plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = dataset.as_df()
    rng = np.random.default_rng(seed)
    test = rng.random(len(df)) < test_size
    features = df.drop(columns=[label_column]).to_numpy()
    labels = df[label_column].to_numpy()
    model, framework, algorithm = _fit(features[~test], labels[~test], seed)
    predicted = _predict(model, features[test])
    accuracy = float((predicted == labels[test]).mean())

    classes = sorted(set(labels))
    matrix = pd.crosstab(
        pd.Series(labels[test], name="actual"), pd.Series(predicted, name="predicted")
    ).reindex(index=classes, columns=classes, fill_value=0)
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(matrix.to_numpy(), cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45)
    axes.set_yticks(range(len(classes)), classes)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        axes.text(j, i, str(value), ha="center", va="center")
    axes.set_title(f"confusion matrix (accuracy {accuracy:.2f})")
    plot = context.log_artifact(PlotArtifact("confusion-matrix", body=figure))
    plt.close(figure)

    context.log_model(
        "iris-model",
        body=pickle.dumps(model),
        format="pkl",
        framework=framework,
        algorithm=algorithm,
        metrics={"accuracy": accuracy},
        parameters={"test_size": test_size, "seed": seed},
        training_set=dataset.meta,
        label_column=label_column,
        extra_data={"confusion_matrix": plot},
        labels={"framework": framework},
    )
    return {"accuracy": accuracy}


def main(workdir: str | None = None) -> dict[str, str]:
    """Run the pipeline; returns the pinned URIs of what it logged."""
    workdir = workdir or path.abspath(".")
    project_name, artifact_path = set_environment(
        project="iris", artifact_path=path.join(workdir, "artifacts")
    )
    project = new_project(project_name, path.join(workdir, "conf"), init_git=True)
    # MLRun's "DB path or API service URL": a catalog service (`catalog serve`) if one
    # is given (mlconf.dbpath, or CATALOG_API); else this process reads its own projection.
    print(f"reading through {mlconf.dbpath or 'a local projection (the embedded default)'}")

    get_data_run = run_local(
        name="get_data",
        handler=get_data,
        inputs={"source_url": SOURCE_URL},
        project=project_name,
        artifact_path=path.join(workdir, "jobs"),
    )
    dataset = get_data_run.artifact("iris_dataset")
    print(
        f"dataset {dataset.meta.uri}: {dataset.meta.spec.length} rows, "
        f"sepal_length mean {dataset.meta.stats['sepal_length']['mean']:.2f}"
    )

    get_catalog().tag_artifact(dataset.meta, "train")
    train_run = run_local(
        name="train",
        handler=train,
        inputs={"dataset": f"store://datasets/{project_name}/iris_dataset:train"},
        params={"label_column": "species"},
        project=project_name,
    )
    print(
        f"train run {train_run.uid}: {train_run.state()}, "
        f"accuracy {train_run.output('accuracy'):.3f}"
    )

    plot = train_run.artifact("confusion-matrix").meta
    update_dataset_meta(dataset, extra_data={"confusion_matrix": plot})
    print(f"linked {plot.uri} to the dataset")

    models = project.list_artifacts(kind="model")
    print(f"models in {project_name}: {[m.uri for m in models]}")
    return {
        "dataset": dataset.meta.uri,
        "model": train_run.outputs["iris-model"],
        "plot": plot.uri,
        "artifact_path": artifact_path,
    }


if __name__ == "__main__":
    main()
