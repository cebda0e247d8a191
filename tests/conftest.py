"""Shared fixtures: every test gets its own catalog home, log, projection and store."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import Catalog

ENV = (
    "CATALOG_LOG",
    "CATALOG_DB",
    "CATALOG_ARTIFACT_PATH",
    "CATALOG_PROJECT",
    "CATALOG_ACTOR",
    "CATALOG_CONFIG",
)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Nothing a test does reaches the real user's data or config directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CATALOG_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """A client on a fresh embedded log, projection file and artifact directory."""
    cat = Catalog(
        log=f"file://{tmp_path / 'events.db'}",
        db=str(tmp_path / "catalog.duckdb"),
        artifact_path=str(tmp_path / "artifacts"),
        project="proj",
        actor="tester",
    )
    yield cat
    cat.close()
