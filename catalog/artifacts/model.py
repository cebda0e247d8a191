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

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from catalog import jsonutil
from catalog.artifacts.base import Artifact, Prepared
from catalog.artifacts.dataset import as_frame, compute_stats, is_frame
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
        for name in ("upload", "db_key", "is_inline", "feature_weights"):
            kwargs.pop(name, None)  # MLRun's log arguments with nothing to do here
        # MLRun's call forms: body= with model_file= names the file the body is written
        # to; model_dir= with model_file= names the model file inside the directory.
        self.file_name: str | None = None
        if model_file is not None and (body is not None or model_dir is not None):
            name = os.path.basename(os.fspath(model_file))
            if not name:
                raise InvalidInput(f"model_file {model_file!r} names no file")
            self.file_name, model_file = name, None
        given = [x for x in (body, model_file, model_dir, model_url) if x is not None]
        if len(given) > 1:
            raise InvalidInput(
                "give one of body (with model_file= as its file name), model_file, "
                "model_dir or model_url"
            )
        super().__init__(
            key,
            body=body,
            labels=labels,
            description=description,
            format=format,
            target_path=model_url,
        )
        self.model_file_path = os.fspath(model_file) if model_file is not None else None
        self.model_dir = os.fspath(model_dir) if model_dir is not None else None
        self.extra_files = {
            k: v
            for k, v in (extra_data or {}).items()
            if isinstance(v, bytes | str) and not _looks_like_ref(v)
        }
        self.links = {k: v for k, v in (extra_data or {}).items() if k not in self.extra_files}
        self.training_set = training_set
        if training_set is not None and is_frame(training_set):
            # MLRun's form: the frame describes the model's features (not a lineage source)
            frame = as_frame(training_set)
            labels_of = _labels(label_column)
            self.training_set = None
            inputs = inputs or _features(frame, [c for c in frame.columns if c not in labels_of])
            outputs = outputs or _features(frame, [c for c in frame.columns if c in labels_of])
            self.spec.feature_stats = compute_stats(frame)
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
            if self.file_name is not None:
                if not (root / self.file_name).is_file():
                    raise InvalidInput(
                        f"model_file {self.file_name!r} is not a file in model_dir "
                        f"{self.model_dir!r}"
                    )
                model_file = self.file_name
        elif self.model_file_path is not None:
            source = Path(self.model_file_path)
            if not source.is_file():
                raise InvalidInput(f"model_file {self.model_file_path!r} is not a file")
            model_file = source.name
            shutil.copyfile(source, root / model_file)
        elif self.body is not None:
            model_file = self.file_name or f"{self.key}.{self.spec.format or 'pkl'}"
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


def _labels(label_column: str | list[str] | None) -> list[str]:
    if label_column is None:
        return []
    return [label_column] if isinstance(label_column, str) else list(label_column)


def _features(frame: Any, columns: list[Any]) -> list[dict[str, Any]]:
    """Feature schemas (``name``, ``value_type``) of some columns of a frame."""
    from catalog.artifacts.feature_store import _value_type as value_type

    return [{"name": str(c), "value_type": value_type(frame[c].dtype)} for c in columns]


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


def get_model(model_dir: Any, suffix: str = "") -> tuple[str, Artifact | None, dict[str, Any]]:
    """MLRun's ``get_model``: ``(local model file, model artifact, extra data items)``.

    ``model_dir`` is a model's store URI, its artifact or DataItem, a directory
    holding a model (``model_spec.yaml``, or a file ending in ``suffix``,
    ``.pkl`` by default), or the model file itself. A logged model is
    downloaded once (verified) into the cache; its extra data are DataItems:
    the files stored beside the model, and the artifacts it links to.
    """
    from catalog.artifacts.manager import process_catalog
    from catalog.datastore import DataItem
    from catalog.uri import is_store_uri

    suffix = suffix or ".pkl"
    cat = process_catalog()
    if isinstance(model_dir, DataItem):
        model_dir = model_dir.meta if model_dir.meta is not None else model_dir.url
    if isinstance(model_dir, str) and is_store_uri(model_dir):
        model_dir = cat.get_artifact(model_dir)
    if isinstance(model_dir, Artifact):
        art = model_dir
        if art.kind != "model":
            raise InvalidInput(f"{art.uri} is a {art.kind}, not a model")
        item = cat.get_dataitem(art)
        if art.spec.format != "dir":  # recorded where it is (model_url=)
            return item.local(), art, _extras(cat, art)
        root = Path(item.local())
        name = art.spec.model_file or next(
            (p.name for p in sorted(root.iterdir()) if p.name.endswith(suffix)), None
        )
        if name is None:
            raise InvalidInput(f"{art.uri} has no model file (none ends in {suffix!r})")
        extra = _extras(cat, art)
        for file_name in art.spec.extra_files or []:
            extra[file_name] = cat.get_dataitem(str(root / file_name))
        return str(root / name), art, extra
    path = os.fspath(model_dir)
    local = Path(path)
    if local.is_dir():
        spec_file = local / MODEL_SPEC_FILE
        if spec_file.is_file():
            document = yaml.safe_load(spec_file.read_text()) or {}
            name = (document.get("spec") or {}).get("model_file")
            if name and (local / name).is_file():
                return str(local / name), None, {}
        for candidate in sorted(local.iterdir()):
            if candidate.name.endswith(suffix):
                extra = {
                    p.name: cat.get_dataitem(str(p))
                    for p in sorted(local.iterdir())
                    if p != candidate and p.is_file()
                }
                return str(candidate), None, extra
        raise InvalidInput(f"no model file ending in {suffix!r} in {path}")
    if local.is_file() or path.endswith(suffix):
        if not local.is_file():
            return cat.get_dataitem(path).local(), None, {}
        return str(local), None, {}
    raise InvalidInput(f"cannot find a model at {path!r} (a store URI, a directory or a file)")


def _extras(cat: Catalog, art: Artifact) -> dict[str, Any]:
    return {name: cat.get_dataitem(uri) for name, uri in art.extra_data.items()}
