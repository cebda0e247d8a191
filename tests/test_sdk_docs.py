"""docs/sdk.md is tested mechanically: its examples run, and it names every public member."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import catalog
import catalog.artifacts
from catalog import Catalog, DataItem, MLClientCtx, Project, RunObject, mlconf

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "sdk.md"


@pytest.fixture(autouse=True)
def fresh_mlconf() -> Iterator[None]:
    mlconf.reset()
    yield
    mlconf.reset()


def test_sdk_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``python`` block runs, in order, in one namespace, beside an iris.csv."""
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    iris = pd.DataFrame(
        rng.normal(5, 1, (150, 4)).round(1),
        columns=["sepal_length", "sepal_width", "petal_length", "petal_width"],
    ).assign(species=np.repeat(["setosa", "versicolor", "virginica"], 50))
    iris.to_csv(tmp_path / "iris.csv", index=False)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) >= 20
    namespace: dict[str, object] = {"__name__": "sdk_md"}
    try:
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"docs/sdk.md block {number}", "exec"), namespace)
    finally:
        plt.close("all")


def public_members(cls: type) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


def test_sdk_doc_names_every_public_member() -> None:
    prose = re.sub(r"```.*?```", "", PAGE.read_text(), flags=re.S)  # examples do not count
    spans = " ".join(re.findall(r"`([^`]+)`", prose))  # code spans, signatures in headings

    def documented(name: str) -> bool:
        return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", spans) is not None

    functions = [
        "set_environment",
        "new_project",
        "get_or_create_project",
        "get_dataitem",
        "get_catalog",
        "mlconf",
        "run_local",
        "get_run",
    ]
    missing = [f for f in functions if not documented(f)]
    for cls in (Catalog, MLClientCtx, RunObject, DataItem, Project):
        missing += [f"{cls.__name__}.{m}" for m in sorted(public_members(cls)) if not documented(m)]
    for name in catalog.artifacts.__all__:
        obj = getattr(catalog.artifacts, name)
        if not documented(name):
            missing.append(name)
        if isinstance(obj, type):
            missing += [f"{name}.{m}" for m in sorted(public_members(obj)) if not documented(m)]
    missing += [n for n in catalog.__all__ if n != "__version__" and not documented(n)]
    assert not missing, f"docs/sdk.md does not mention: {', '.join(missing)}"
