"""Operations on logged artifacts that MLRun exposes as functions.

``update_dataset_meta`` links artifacts after the fact (the seed's
``update_dataset_meta(dataset, extra_data={'confusion_matrix': plot})``) and
refreshes a dataset's schema, preview and stats — on the same version, with
one ``ArtifactUpdated`` event: no new version, no tag moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.artifacts.base import Artifact, Client, default_client
from catalog.artifacts.dataset import check_columns, describe_frame
from catalog.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from catalog.client import Catalog


def process_catalog(given: Client | None = None) -> Catalog:
    """``given`` (a DataItem's client), else the process-wide client, as the SDK's Catalog."""
    from catalog.client import Catalog

    cat = given or default_client()
    if not isinstance(cat, Catalog):  # pragma: no cover - the SDK registers a Catalog
        raise TypeError(f"the process-wide client is a {type(cat).__name__}, not a Catalog")
    return cat


def resolve_target(target: Any, catalog: Catalog | None = None) -> tuple[Catalog, Artifact]:
    """The client and the logged version behind an artifact, a DataItem or a store URI."""
    from catalog.datastore import DataItem

    if isinstance(target, DataItem):
        cat = catalog or process_catalog(target.catalog)
        if target.meta is None:
            raise InvalidInput(f"{target.url} is not a catalog artifact")
        return cat, cat.get_artifact(target.meta.uri)
    cat = catalog or process_catalog()
    if isinstance(target, Artifact):
        if not target.uid:
            raise InvalidInput(f"artifact {target.key!r} has not been logged")
        return cat, cat.get_artifact(target.uri)
    if isinstance(target, str):
        return cat, cat.get_artifact(target)
    raise InvalidInput(
        f"expected an artifact, a DataItem or a store URI, not {type(target).__name__}"
    )


def update_dataset_meta(
    artifact: Any,
    from_df: pd.DataFrame | None = None,
    schema: dict[str, Any] | None = None,
    header: list[str] | None = None,
    preview: list[list[Any]] | None = None,
    stats: dict[str, Any] | None = None,
    extra_data: dict[str, Any] | None = None,
    column_metadata: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    ignore_preview_limits: bool = False,
    catalog: Catalog | None = None,
) -> Artifact:
    """Update a dataset version's metadata in place; links in ``extra_data``.

    ``extra_data`` values may be artifacts, store URIs or paths; each becomes
    a link (a ``lineage`` row with relation ``extra_data``). ``from_df``
    recomputes schema, header, preview and stats from a frame.
    """
    cat, art = resolve_target(artifact, catalog)
    if art.kind != "dataset":
        raise InvalidInput(f"update_dataset_meta needs a dataset; {art.uri} is a {art.kind}")
    spec: dict[str, Any] = {}
    if from_df is not None:
        check_columns(from_df)
        spec.update(describe_frame(from_df, ignore_preview_limits=ignore_preview_limits))
    for name, value in (
        ("schema", schema),
        ("header", header),
        ("preview", preview),
        ("stats", stats),
        ("column_metadata", column_metadata),
    ):
        if value is not None:
            spec[name] = value
    return cat.update_artifact(art, labels=labels, extra_data=extra_data, spec=spec)
