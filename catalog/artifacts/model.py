"""Models: a directory artifact (model file, extra files, ``model_spec.yaml``) with metadata.

A model version stores a directory holding the model file (``body=`` bytes,
``model_file=`` a local file, or ``model_dir=`` a whole directory), any
``extra_data`` given as bytes or text (written as files beside the model),
and ``model_spec.yaml`` (the spec, for tools that read the directory alone).
Its spec records ``model_file``, ``framework``, ``algorithm``, ``metrics``,
``parameters``, ``inputs``/``outputs`` (feature schemas), ``feature_vector``,
``label_column``; ``training_set`` becomes a lineage source.

``update_model`` changes metrics, parameters, links and labels of the same
version with one ``ArtifactUpdated`` event (metrics and parameters merge).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from catalog import jsonutil
from catalog.artifacts.base import Artifact, Prepared
from catalog.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from catalog.client import Catalog

MODEL_SPEC_FILE = "model_spec.yaml"


class ModelArtifact(Artifact):
    """A trained model and what describes it."""

    kind = "model"

    def __init__(
        self,
        key: str | None = None,
        body: bytes | str | None = None,
        model_file: str | None = None,
        model_dir: str | None = None,
        framework: str | None = None,
        algorithm: str | None = None,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        inputs: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        feature_vector: str | None = None,
        extra_data: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        training_set: Any = None,
        label_column: str | list[str] | None = None,
        description: str | None = None,
        format: str | None = None,
        model_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        given = [x for x in (body, model_file, model_dir, model_url) if x is not None]
        if len(given) > 1:
            raise InvalidInput("give one of body, model_file, model_dir or model_url")
        super().__init__(
            key,
            body=body,
            labels=labels,
            description=description,
            format=format,
            target_path=model_url,
        )
        self.model_file_path = model_file
        self.model_dir = model_dir
        self.extra_files = {
            k: v
            for k, v in (extra_data or {}).items()
            if isinstance(v, bytes | str) and not _looks_like_ref(v)
        }
        self.links = {k: v for k, v in (extra_data or {}).items() if k not in self.extra_files}
        self.training_set = training_set
        self.spec.framework = framework
        self.spec.algorithm = algorithm
        self.spec.metrics = dict(metrics or {})
        self.spec.parameters = dict(parameters or {})
        self.spec.inputs = inputs
        self.spec.outputs = outputs
        self.spec.feature_vector = feature_vector
        self.spec.label_column = label_column
        for name, value in kwargs.items():
            setattr(self.spec, name, value)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.spec.metrics or {})

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.spec.parameters or {})

    @property
    def model_file(self) -> str | None:
        return self.spec.model_file  # type: ignore[no-any-return]

    def prepare(self, workdir: Path) -> Prepared:
        root = workdir / "model"
        root.mkdir()
        model_file: str | None = None
        if self.model_dir is not None:
            source = Path(self.model_dir)
            if not source.is_dir():
                raise InvalidInput(f"model_dir {self.model_dir!r} is not a directory")
            shutil.copytree(source, root, dirs_exist_ok=True)
        elif self.model_file_path is not None:
            source = Path(self.model_file_path)
            if not source.is_file():
                raise InvalidInput(f"model_file {self.model_file_path!r} is not a file")
            model_file = source.name
            shutil.copyfile(source, root / model_file)
        elif self.body is not None:
            model_file = f"{self.key}.{self.spec.format or 'pkl'}"
            data = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
            (root / model_file).write_bytes(data)
        for name, content in self.extra_files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (root / name).write_bytes(data)
        spec = {k: v for k, v in self.kind_spec.items() if v not in (None, {}, [])}
        if model_file:
            spec["model_file"] = model_file
        if self.extra_files:
            spec["extra_files"] = sorted(self.extra_files)
        if self.target_path and not (self.model_dir or self.model_file_path or self.body):
            return Prepared(
                spec=spec,
                target_path=self.target_path,
                format=self.spec.format,
                extra_data=self.links,
                sources=[self.training_set] if self.training_set else [],
            )
        document = {"kind": "model", "key": self.key, "spec": jsonutil.plain(spec)}
        (root / MODEL_SPEC_FILE).write_text(yaml.safe_dump(document, sort_keys=True))
        return Prepared(
            local_path=str(root),
            format="dir",
            spec=spec,
            extra_data=self.links,
            sources=[self.training_set] if self.training_set is not None else [],
        )


def _looks_like_ref(value: Any) -> bool:
    """extra_data strings that name artifacts or files are links, others are contents."""
    if not isinstance(value, str):
        return False
    return value.startswith(
        (
            "store://",
            "/",
            "./",
            "s3://",
            "gs://",
            "az://",
            "memory://",
            "file://",
            "http://",
            "https://",
        )
    )


def update_model(
    model: Any,
    *,
    metrics: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    extra_data: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    feature_vector: str | None = None,
    catalog: Catalog | None = None,
) -> Artifact:
    """Update a logged model in place (same version): metrics and parameters merge.

    ``model`` is a model artifact, a DataItem of one, or a store URI.
    """
    from catalog.artifacts.manager import resolve_target

    cat, art = resolve_target(model, catalog)
    if art.kind != "model":
        raise InvalidInput(f"{art.uri} is a {art.kind}, not a model")
    spec: dict[str, Any] = {}
    if metrics:
        spec["metrics"] = {**(art.spec.metrics or {}), **metrics}
    if parameters:
        spec["parameters"] = {**(art.spec.parameters or {}), **parameters}
    if inputs is not None:
        spec["inputs"] = inputs
    if outputs is not None:
        spec["outputs"] = outputs
    if feature_vector is not None:
        spec["feature_vector"] = feature_vector
    for name, value in (extra_data or {}).items():
        if isinstance(value, bytes) or (isinstance(value, str) and not _looks_like_ref(value)):
            raise InvalidInput(
                f"extra_data[{name!r}]: a logged model's files cannot change; log the content "
                "as its own artifact and link it"
            )
    return cat.update_artifact(art, labels=labels, extra_data=extra_data, spec=spec)
