"""MLRun's call forms: what a log call's arguments, or a handler's returned values,
ask to log.

``MLClientCtx.log_artifact`` / ``log_dataset`` / ``log_model`` and the same
methods of a project take MLRun's many argument forms (an object or a key,
``body=``, ``local_path=``, ``upload=``, ``target_path=``, ...); the functions
here turn them into the artifact object and the arguments of one
``Catalog.log_item`` call. ``log_returns`` logs what a handler returned under
the names ``@handler(outputs=)`` (or ``run_local(returns=)``) gives, by type
(the table is in :mod:`catalog.handlers`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from catalog import store
from catalog.artifacts.base import Artifact
from catalog.artifacts.dataset import DatasetArtifact, is_frame
from catalog.artifacts.model import ModelArtifact
from catalog.artifacts.plots import PlotArtifact
from catalog.errors import InvalidInput
from catalog.validation import validate_key

_LOG_ARGS = ("labels", "artifact_path", "extra_data", "description")


def fspath_or_none(value: Any) -> str | None:
    """``artifact_path=`` and other paths as text (``pathlib.Path`` accepted)."""
    if value is None or value == "":
        return None
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    if not isinstance(value, str):
        raise InvalidInput(f"expected a path or URL, not {type(value).__name__}: {value!r}")
    return value


def split_dataset_args(
    key: str, df: Any, kwargs: dict[str, Any]
) -> tuple[Artifact, dict[str, Any]]:
    """``log_dataset`` arguments → a DatasetArtifact and the arguments of the log call.

    MLRun's ``local_path=`` with a frame names the file the frame is written to
    (its suffix gives the format when ``format=`` is not given); without a
    frame it is the dataset file to log. ``upload=``/``db_key=`` are accepted.
    """
    log_args = {k: kwargs.pop(k) for k in list(kwargs) if k in _LOG_ARGS}
    log_args["artifact_path"] = fspath_or_none(log_args.get("artifact_path"))
    local_path = fspath_or_none(kwargs.pop("local_path", None))
    for name in ("upload", "db_key"):
        kwargs.pop(name, None)
    if df is None and local_path is None:
        raise InvalidInput(f"log_dataset({key!r}) needs df= (a DataFrame) or local_path=")
    if local_path is not None and store.is_local(local_path):
        local_path = store.normalize_url(local_path)  # file:// URLs are local paths
        if df is None and not os.path.exists(local_path):
            raise InvalidInput(
                f"log_dataset({key!r}): no DataFrame (df=None) and local_path {local_path!r} "
                "does not exist"
            )
    if df is not None and local_path is not None:
        suffix = os.path.splitext(local_path)[1].lstrip(".").lower()
        if not kwargs.get("format") and suffix in ("csv", "parquet", "json", "feather"):
            kwargs["format"] = suffix
        local_path = None
    item = DatasetArtifact(key, df=df, local_path=local_path, **kwargs)
    return item, log_args


def split_model_args(key: str, kwargs: dict[str, Any]) -> tuple[Artifact, dict[str, Any]]:
    """``log_model`` arguments → a ModelArtifact and the arguments of the log call."""
    log_args = {
        k: kwargs.pop(k) for k in list(kwargs) if k in ("labels", "artifact_path", "description")
    }
    log_args["artifact_path"] = fspath_or_none(log_args.get("artifact_path"))
    extra = kwargs.pop("extra_data", None)
    item = ModelArtifact(key, extra_data=extra, **kwargs)
    return item, log_args


def artifact_from_call(
    item: Artifact | str,
    body: Any = None,
    local_path: Any = None,
    *,
    format: str | None = None,
    upload: bool | None = None,
    target_path: str | None = None,
    kwargs: dict[str, Any],
    use_db_key: bool = False,
) -> Artifact:
    """The artifact object a ``log_artifact`` call describes, MLRun's call forms included.

    - an artifact object: ``body=``, ``local_path=`` (``src_path=``),
      ``target_path=``, ``format=`` given to the call apply to it (on a copy);
    - a key: ``body=`` with ``local_path=`` names the file the body is stored
      as (its name and format); ``body=`` a DataFrame logs a dataset;
    - ``upload=False`` with a file, or ``target_path=`` without
      ``upload=True``, records the bytes where they are (no copy, no hash);
      with ``upload=True`` they are stored (content-addressed: ``target_path``
      then names nothing);
    - ``local_path=`` a ``file://`` URL is the local path it names;
    - an object's ``spec.db_key`` (MLRun's database key) is the key it is logged
      under when ``use_db_key`` (a project's log call); a run logs it under its
      own key, as MLRun does (there the run recomputes the database key).
    """
    local_path = fspath_or_none(
        local_path if local_path is not None else kwargs.pop("src_path", None)
    )
    target_path = fspath_or_none(target_path)
    for name in ("db_key", "is_inline", "viewer"):
        kwargs.pop(name, None)
    if isinstance(item, Artifact):
        if kwargs:
            raise InvalidInput(
                f"log_artifact of an artifact object takes no {', '.join(map(repr, kwargs))}: "
                "set them on the object"
            )
        obj = copy.copy(item)
        obj.metadata = copy.copy(item.metadata)
        obj.spec = copy.copy(item.spec)
        obj.status = copy.copy(item.status)
        obj.status._spec = obj.spec
        db_key = obj.spec.__dict__.pop("db_key", None)
        if use_db_key and db_key and db_key != obj.key:
            obj.metadata.key = validate_key(db_key)
        if body is not None:
            if hasattr(obj, "figure"):
                obj.figure = body
            else:
                obj.body = body
        has_body = obj.body is not None or getattr(obj, "figure", None) is not None
        has_df = getattr(obj, "df", None) is not None
        if local_path is not None:
            if has_body or has_df:
                obj.spec.filename = os.path.basename(local_path) or None
            else:
                obj.local_path = local_path
        if format is not None:
            obj.spec.format = format
    else:
        kind = kwargs.pop("kind", None)
        if is_frame(body):
            if kind not in (None, "dataset"):
                raise InvalidInput(f"a DataFrame body logs a dataset, not a {kind}")
            obj = DatasetArtifact(item, df=body, format=format, **kwargs)
        elif kind == "dataset":
            obj = DatasetArtifact(item, body=body, local_path=None, format=format, **kwargs)
            obj.local_path = local_path
        elif kind not in (None, "artifact"):
            raise InvalidInput(
                f"log_artifact(kind={kind!r}) with a key: log an artifact object instead "
                f"(log_model, log_dataset, or a {kind} artifact class)"
            )
        else:
            obj = Artifact(item, body=body, format=format, **kwargs)
            if body is not None and local_path is not None:
                obj.spec.filename = os.path.basename(local_path) or None
            elif local_path is not None:
                obj.local_path = local_path
    if obj.local_path is not None and obj.local_path.startswith("file://"):
        obj.local_path = store.normalize_url(obj.local_path)
    if (
        obj.local_path is not None
        and "://" in obj.local_path
        and not obj.local_path.startswith("file://")
    ):
        # a remote file: recorded where it is unless asked to copy it
        if upload:
            raise InvalidInput(
                f"local_path {obj.local_path!r} is not local: upload=True copies local files; "
                "give target_path= to record a remote one"
            )
        target_path, obj.local_path, upload = obj.local_path, None, False
    if upload is False and obj.local_path is not None and target_path is None:
        target_path = store.normalize_url(obj.local_path)
        obj.local_path = None
    if target_path is not None:
        if upload:
            pass  # stored content-addressed under the artifact path; target_path names nothing
        else:
            obj.body, obj.local_path = None, None
            if hasattr(obj, "figure"):
                obj.figure = None
            if getattr(obj, "df", None) is not None:
                obj.df = None  # type: ignore[attr-defined]
            obj.spec.target_path = target_path
    return obj


TYPES = ("result", "dataset", "artifact", "file", "model", "plot")


def _spec(output: Any) -> tuple[str | None, str | None]:
    if output is None:
        return None, None
    if isinstance(output, Mapping):
        return output.get("key"), output.get("artifact_type")
    text = str(output)
    key, _, written = text.partition(":")
    kind = written.strip() or None
    if kind is not None and kind not in TYPES:
        raise InvalidInput(f"output {text!r}: unknown type {kind!r}; one of {', '.join(TYPES)}")
    return key.strip(), kind


def _kind_of(value: Any) -> str:
    if isinstance(value, Artifact):
        return "artifact-object"
    if is_frame(value):
        return "dataset"
    if isinstance(value, bytes | bytearray):
        return "artifact"
    if hasattr(value, "savefig") or (hasattr(value, "to_html") and hasattr(value, "to_dict")):
        return "plot"
    return "result"


def log_value(ctx: Any, key: str, value: Any, kind: str | None = None) -> None:
    """Log one returned value under ``key`` as ``kind`` (or by its type)."""
    kind = kind or _kind_of(value)
    if kind == "artifact-object":
        ctx.log_artifact(value)
    elif kind == "result":
        ctx.log_result(key, value)
    elif kind == "dataset":
        ctx.log_dataset(key, df=value)
    elif kind == "plot":
        ctx.log_artifact(PlotArtifact(key, body=value))
    elif kind == "model":
        ctx.log_artifact(ModelArtifact(key, body=value))
    elif kind == "file":
        ctx.log_artifact(key, local_path=str(value))
    else:  # artifact
        ctx.log_artifact(key, body=value if isinstance(value, bytes | str) else str(value))


def log_returns(ctx: Any, returned: Any, outputs: list[Any]) -> None:
    """Log the values a function returned under the names ``outputs`` gives."""
    specs = [_spec(o) for o in outputs]
    values = list(returned) if len(specs) > 1 and isinstance(returned, tuple) else [returned]
    if len(values) != len(specs):
        raise InvalidInput(
            f"the function returned {len(values)} value(s) but outputs names {len(specs)}"
        )
    for (key, kind), value in zip(specs, values, strict=True):
        if key:
            log_value(ctx, key, value, kind)
    ctx._returns_logged = True
