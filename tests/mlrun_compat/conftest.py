"""The MLRun compatibility surface (issue 18): each test states, in our words, one
behaviour MLRun's docs or tests rely on. Every test gets a fresh process-wide client
and runs in its own directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import catalog.execution
from catalog import mlconf


@pytest.fixture(autouse=True)
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    mlconf.reset()
    catalog.execution._contexts.clear()
    yield tmp_path
    mlconf.reset()
    catalog.execution._contexts.clear()
