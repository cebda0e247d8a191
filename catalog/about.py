"""What this distribution says about itself, declared once in ``pyproject.toml``.

The project's own URL is ``[project.urls] Repository`` there; OpenLineage's
``_producer`` and the install hints derive from it here. It is read from the
installed metadata (an editable install has it too), else, in a bare checkout on
``sys.path``, from ``pyproject.toml`` itself.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import tomllib
from pathlib import Path

#: The distribution's name (``pyproject.toml``: ``[project] name``).
DISTRIBUTION = "catalog"
#: How to install the catalog with its web stack: from a checkout, as nothing on
#: PyPI under this name is ours.
INSTALL = "pip install -e '.[web]'"

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@functools.cache
def repository() -> str:
    """The project's own URL: ``[project.urls] Repository`` in ``pyproject.toml``."""
    entries: list[str] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        entries = importlib.metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    with open(_PYPROJECT, "rb") as fh:  # a checkout that was never installed
        return str(tomllib.load(fh)["project"]["urls"]["Repository"])


def install_hint(extra: str = "web") -> str:
    """Where the catalog comes from, and the command that installs it (with ``extra``)."""
    return f"{INSTALL.replace('[web]', f'[{extra}]')} in a checkout of {repository()}"
