"""tests/reliability: faults, bad input and hostile input (issue 7; docs/reliability.md).

Long loops run a reduced count by default; each has a ``slow`` twin with the
full count, run by ``make soak`` (``pytest -m slow``). Every test records what it ran with
:func:`reliability.helpers.record`; the counts are printed at the end of the
session (by tests/conftest.py, added up over ``make test``'s workers), for
docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from reliability.helpers import catalog_env


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    """A catalog under ``tmp_path`` (the paths :func:`catalog_env` gives children), project
    ``default``."""
    env = catalog_env(tmp_path)
    with Catalog(
        log=env["CATALOG_LOG"],
        db=env["CATALOG_DB"],
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="default",
    ) as catalog:
        yield catalog
