"""Feature-store objects: feature sets and feature vectors, versioned like any artifact.

A **feature set** describes features computed for entities: its ``entities``
and ``features`` (each ``{"name", "value_type"}``), the ``timestamp_key``,
and where its data lives (``targets``, URLs). It may be built from a
DataFrame (``df=``), which infers entity and feature types.

A **feature vector** selects features from feature sets (``"set.feature"`` or
``"set.*"``) plus a ``label_feature``; logging one records a lineage edge to
every feature set it reads, pinned to the version current at that moment.

Both are metadata-only artifacts (no payload bytes unless ``df`` is given for
a set) under the URI categories ``feature-sets`` and ``feature-vectors``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.artifacts.base import Artifact, Prepared
from catalog.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_FEATURE_REF = re.compile(
    r"^(?:(?P<project>[a-z0-9-]+)/)?(?P<set>[A-Za-z0-9][-A-Za-z0-9_.]*)"
    r"\.(?P<feature>\*|[A-Za-z0-9_][-A-Za-z0-9_ ]*)(?: as .+)?$"
)


def _value_type(dtype: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "str"


def _fields(items: Any, what: str) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append({"name": item, "value_type": "str"})
        elif isinstance(item, dict) and "name" in item:
            out.append(
                {"name": str(item["name"]), "value_type": str(item.get("value_type", "str"))}
            )
        else:
            raise InvalidInput(f"{what} must be names or {{'name', 'value_type'}} dicts: {item!r}")
    return out


class FeatureSetArtifact(Artifact):
    """A versioned feature-set definition."""

    kind = "feature-set"

    def __init__(
        self,
        key: str | None = None,
        entities: list[Any] | None = None,
        features: list[Any] | None = None,
        timestamp_key: str | None = None,
        targets: list[str] | None = None,
        df: pd.DataFrame | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(key, description=description, labels=labels, **kwargs)
        entity_list = _fields(entities, "entities")
        feature_list = _fields(features, "features")
        if df is not None:
            names = {e["name"] for e in entity_list}
            missing = [n for n in names if n not in df.columns]
            if missing:
                raise InvalidInput(f"entities {missing} are not columns of the frame")
            entity_list = [
                {"name": n, "value_type": _value_type(df[n].dtype)}
                for n in (e["name"] for e in entity_list)
            ]
            if not feature_list:
                feature_list = [
                    {"name": str(c), "value_type": _value_type(df[c].dtype)}
                    for c in df.columns
                    if c not in names and c != timestamp_key
                ]
            if timestamp_key is not None and timestamp_key not in df.columns:
                raise InvalidInput(f"timestamp_key {timestamp_key!r} is not a column")
        if not entity_list:
            raise InvalidInput(f"feature set {key!r} needs at least one entity")
        self.df = df
        self.spec.entities = entity_list
        self.spec.features = feature_list
        self.spec.timestamp_key = timestamp_key
        self.spec.targets = list(targets or [])

    @property
    def entities(self) -> list[dict[str, str]]:
        return list(self.spec.entities or [])

    @property
    def features(self) -> list[dict[str, str]]:
        return list(self.spec.features or [])

    def prepare(self, workdir: Path) -> Prepared:
        spec = {k: v for k, v in self.kind_spec.items() if v is not None}
        if self.df is None:
            return Prepared(spec=spec, extra_data=dict(self.spec.extra_data or {}))
        path = workdir / f"{self.key}.parquet"
        self.df.to_parquet(path, index=False)
        return Prepared(
            local_path=str(path),
            format="parquet",
            filename=path.name,
            spec=spec,
            extra_data=dict(self.spec.extra_data or {}),
        )


class FeatureVectorArtifact(Artifact):
    """A versioned selection of features from feature sets (with lineage to them)."""

    kind = "feature-vector"

    def __init__(
        self,
        key: str | None = None,
        features: list[str] | None = None,
        label_feature: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(key, description=description, labels=labels, **kwargs)
        refs = list(features or [])
        if not refs:
            raise InvalidInput(f"feature vector {key!r} needs at least one feature")
        for ref in [*refs, *([label_feature] if label_feature else [])]:
            if not isinstance(ref, str) or not _FEATURE_REF.match(ref):
                raise InvalidInput(
                    f"feature reference {ref!r}: expected 'set.feature', 'set.*' or "
                    "'project/set.feature'"
                )
        self.spec.features = refs
        self.spec.label_feature = label_feature

    @property
    def features(self) -> list[str]:
        return list(self.spec.features or [])

    def feature_sets(self) -> list[str]:
        """Store URIs of the feature sets the vector reads, in first-use order."""
        seen: list[str] = []
        refs = [*self.features, *([self.spec.label_feature] if self.spec.label_feature else [])]
        for ref in refs:
            match = _FEATURE_REF.match(ref)
            assert match is not None
            project = match.group("project")
            uri = (
                f"store://feature-sets/{project}/{match.group('set')}"
                if project
                else f"store://feature-sets/{match.group('set')}"
            )
            if uri not in seen:
                seen.append(uri)
        return seen

    def prepare(self, workdir: Path) -> Prepared:
        spec = {k: v for k, v in self.kind_spec.items() if v is not None}
        return Prepared(
            spec=spec, sources=self.feature_sets(), extra_data=dict(self.spec.extra_data or {})
        )
