"""Dataset statistics are pandas' ``describe()`` and numpy's ``histogram``.

Random frames (hypothesis) are logged with ``log_dataset(stats=True)``; the
figures read back through ``DataItem.meta.stats`` — after the round trip
through the event, the projection and JSON — must equal what pandas and
numpy compute from the same frame. NaN figures come back as None (JSON has
no NaN).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import Project, get_catalog, get_dataitem, mlconf, new_project

FINITE = st.floats(
    min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False, allow_subnormal=False
)
WORDS = st.sampled_from(["a", "b", "c", "long words", "ü"])


@pytest.fixture(autouse=True)
def fresh_mlconf() -> Iterator[None]:
    mlconf.reset()
    with get_catalog().session():
        yield
    mlconf.reset()


@pytest.fixture
def project() -> Project:
    return new_project("stats")


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))

    def column(elements: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(elements, min_size=n, max_size=n))

    return pd.DataFrame(
        {
            "floats": pd.array(column(st.one_of(st.none(), FINITE)), dtype="float64"),
            "ints": pd.array(column(st.integers(-(10**6), 10**6)), dtype="int64"),
            "nullable": pd.array(column(st.one_of(st.none(), st.integers(-50, 50))), dtype="Int64"),
            "words": column(st.one_of(st.none(), WORDS)),
            "flags": column(st.booleans()),
            "category": pd.Categorical(
                column(st.sampled_from(["x", "y"])), categories=["x", "y", "unused"]
            ),
        }
    )


def close(actual: Any, expected: Any, scale: float) -> bool:
    """Equal up to float rounding; NaN is stored as None."""
    if expected is None or pd.isna(expected):
        return actual is None
    return actual is not None and math.isclose(
        actual, float(expected), rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale)
    )


def check_numeric(name: str, column: pd.Series, stats: dict[str, Any]) -> None:
    present = column.dropna().to_numpy(dtype="float64")
    if present.size == 0:
        assert stats == {"count": 0}, name
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # describe() of one value: std NaN
        expected = column.describe()
    scale = float(np.abs(present).max())
    assert stats["count"] == int(expected["count"]), name
    for figure in ("mean", "std", "min", "25%", "50%", "75%", "max"):
        assert close(stats[figure], expected[figure], scale), (name, figure, stats[figure])
    counts, edges = np.histogram(present, bins=20)
    hist_counts, hist_edges = stats["hist"]
    assert hist_counts == counts.tolist(), name
    assert len(hist_edges) == 21 and sum(hist_counts) == present.size
    assert all(close(a, b, scale) for a, b in zip(hist_edges, edges.tolist(), strict=True))


def check_other(name: str, column: pd.Series, stats: dict[str, Any]) -> None:
    expected = column.describe()
    assert stats["count"] == int(expected["count"]), name
    assert stats["unique"] == int(expected["unique"]), name
    if expected["count"]:
        assert stats["top"] == expected["top"], name
        assert stats["freq"] == int(expected["freq"]), name
    else:
        assert "top" not in stats and "freq" not in stats


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(df=frames())
def test_stats_equal_describe_and_histogram(project: Project, df: pd.DataFrame) -> None:
    art = project.log_dataset("random", df=df, stats=True)
    stats = get_dataitem(art.uri).meta.stats
    assert set(stats) == set(df.columns)
    for name in ("floats", "ints", "nullable"):
        check_numeric(name, df[name], stats[name])
    for name in ("words", "flags", "category"):
        check_other(name, df[name], stats[name])
    assert get_dataitem(art.uri).meta.length == len(df)


def test_stats_of_awkward_numbers(project: Project) -> None:
    """Infinities, huge and nearly equal values: no warnings, no crash, describe()'s min/max."""
    df = pd.DataFrame(
        {
            "inf": [1.0, np.inf, -np.inf, 2.0],
            "huge": [-1e308, 1e308, 0.0, 1.0],
            "ulps": [
                1600000000000000000,
                1600000000000000256,
                1600000000000000000,
                1600000000000000000,
            ],
            "empty": [np.nan] * 4,
        }
    )
    stats = get_dataitem(project.log_dataset("awkward", df=df).uri).meta.stats
    # infinities have no JSON form: None, like NaN; the histogram counts the finite values
    assert stats["inf"]["min"] is None and stats["inf"]["max"] is None
    assert stats["inf"]["count"] == 4 and sum(stats["inf"]["hist"][0]) == 2
    assert (stats["huge"]["min"], stats["huge"]["max"]) == (-1e308, 1e308)
    # numpy cannot cut 20 finite bins between values a few ulps apart: no histogram
    assert "hist" not in stats["ulps"] and stats["ulps"]["count"] == 4
    assert stats["empty"] == {"count": 0}


def test_categorical_unused_categories_are_not_counted(project: Project) -> None:
    column = pd.Categorical(["a", "a", "b"], categories=["a", "b", "c", "d"])
    stats = get_dataitem(project.log_dataset("cat", df=pd.DataFrame({"c": column})).uri).meta
    assert stats.stats["c"] == {"count": 3, "unique": 2, "top": "a", "freq": 2}
    assert pd.Series(column).describe()["unique"] == 2
