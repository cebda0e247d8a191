"""catalog: an event-sourced catalog of ML and data artifacts.

Every log, tag or update is an Avro event on an append-only log; consumers
project the events into DuckDB for SQL; payloads live in object storage under
their content hash. Start with :class:`Catalog`.
"""

from catalog.artifacts.base import Artifact
from catalog.client import Catalog
from catalog.config import Config
from catalog.datastore import DataItem
from catalog.errors import (
    ArtifactNotFound,
    CatalogError,
    DigestMismatch,
    InvalidInput,
    InvalidURI,
    NotFound,
)
from catalog.uri import StoreURI

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactNotFound",
    "Catalog",
    "CatalogError",
    "Config",
    "DataItem",
    "DigestMismatch",
    "InvalidInput",
    "InvalidURI",
    "NotFound",
    "StoreURI",
    "__version__",
]
