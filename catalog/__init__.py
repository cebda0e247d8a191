"""catalog: an event-sourced catalog of ML and data artifacts.

Every log, tag or update is an Avro event on an append-only log; consumers
project the events into DuckDB for SQL; payloads live in object storage under
their content hash. Start with :class:`Catalog`, or with MLRun's functions
(``set_environment``, ``run_local``, ``get_dataitem``) — the same names work.
"""

import os as _os

# The wheel installs consumers/ and cli.py as catalog/consumers and catalog/cli.py
# (pyproject.toml, [tool.hatch.build.targets.wheel]), so that the installed names
# are this package's alone. In a checkout they stay at the top (the layout follows
# the data flow: schemas/, catalog/, consumers/, cli.py) and are found from here
# under the same names: the code imports catalog.consumers and catalog.cli, never
# bare consumers or cli (tests/test_packaging.py).
if not _os.path.isdir(_os.path.join(__path__[0], "consumers")):
    __path__.append(_os.path.dirname(_os.path.abspath(__path__[0])))

from catalog.artifacts.base import Artifact
from catalog.client import Catalog
from catalog.config import Config
from catalog.context import get_catalog, mlconf
from catalog.datastore import DataItem
from catalog.errors import (
    ArtifactNotFound,
    CatalogError,
    DigestMismatch,
    InvalidInput,
    InvalidURI,
    NotFound,
)
from catalog.execution import MLClientCtx, RunObject, get_or_create_ctx, get_run, run_local
from catalog.functions import code_to_function, new_function, run_function
from catalog.handlers import handler
from catalog.projects import (
    Project,
    get_dataitem,
    get_object,
    get_or_create_project,
    get_store_resource,
    load_project,
    new_project,
    set_environment,
)
from catalog.tasks import new_task
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
    "MLClientCtx",
    "NotFound",
    "Project",
    "RunObject",
    "StoreURI",
    "__version__",
    "code_to_function",
    "get_catalog",
    "get_dataitem",
    "get_object",
    "get_or_create_ctx",
    "get_or_create_project",
    "get_run",
    "get_store_resource",
    "handler",
    "load_project",
    "mlconf",
    "new_function",
    "new_project",
    "new_task",
    "run_function",
    "run_local",
    "set_environment",
]
