"""``ArtifactList``: what listing artifacts returns (MLRun's ``mlrun.lists.ArtifactList``).

A list of artifact versions, each an :class:`~catalog.artifacts.base.Artifact`
that also reads as MLRun's dict (``item["metadata"]["key"]``), with MLRun's
helpers: ``to_objects()``, ``to_df()``, ``dataitems()``, ``objects()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.artifacts.base import Artifact, default_client

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from catalog.datastore import DataItem

#: the columns of ``to_df()``, as MLRun's ``ArtifactList.to_df`` names them
COLUMNS = (
    "tree",
    "key",
    "iter",
    "kind",
    "path",
    "hash",
    "viewer",
    "updated",
    "description",
    "producer",
    "sources",
    "labels",
    "uri",
)


class ArtifactList(list[Artifact]):
    """Artifact versions, in the order the listing returned them."""

    tag: str = ""

    def to_objects(self) -> list[Artifact]:
        """The artifacts as objects (they already are: a plain list of them)."""
        return list(self)

    def objects(self) -> list[Artifact]:
        return self.to_objects()

    def to_rows(self) -> list[list[Any]]:
        """A header row, then one row per version (the columns of ``to_df``)."""
        rows: list[list[Any]] = [list(COLUMNS)]
        for art in self:
            rows.append(
                [
                    art.tree or "",
                    art.key,
                    art.iter,
                    art.kind,
                    art.target_path or "",
                    art.hash or "",
                    art.spec.viewer or "",
                    art.metadata.updated,
                    art.metadata.description or "",
                    art.producer or {},
                    art.spec.sources or [],
                    art.labels,
                    art.uri,
                ]
            )
        return rows

    def to_df(self, flat: bool = False) -> pd.DataFrame:
        """One row per version: tree, key, iter, kind, path, hash, updated, labels, uri, ..."""
        import pandas as pd

        rows = self.to_rows()
        df = pd.DataFrame(rows[1:], columns=rows[0])
        df["updated"] = pd.to_datetime(df["updated"], utc=True)
        if flat:
            for column, prefix in (("producer", "prod_"), ("sources", "src_")):
                expanded = pd.json_normalize(
                    [v if isinstance(v, dict) else {} for v in df[column]]
                ).add_prefix(prefix)
                df = pd.concat([df.drop(columns=[column]), expanded], axis=1)
        return df

    def dataitems(self) -> list[DataItem]:
        """A DataItem per version that has content."""
        cat = default_client()
        return [cat.get_dataitem(a) for a in self if a.target_path]
