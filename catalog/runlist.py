"""``RunList``: what ``Project.list_runs`` returns (MLRun's ``mlrun.lists.RunList``).

A list of recorded runs, each the document ``get_run`` gives (name, uid, state,
labels, parameters, inputs, results, outputs, started, finished, error), with
``to_df()`` (one row per run, a column per parameter and result), ``show()`` and
``compare()`` (the same table, printed or displayed in Jupyter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from catalog.errors import InvalidInput
from catalog.execution import get_run

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from catalog.client import Catalog

#: how many of a project's runs one listing reads (newest first)
MAX_RUNS = 1000


class RunList(list[dict[str, Any]]):
    """Recorded runs, newest first."""

    def to_df(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for run in self:
            row = {k: run.get(k) for k in ("name", "uid", "state", "started", "finished")}
            row["labels"] = dict(run.get("labels") or {})
            row.update({f"param.{k}": v for k, v in (run.get("parameters") or {}).items()})
            row.update({f"result.{k}": v for k, v in (run.get("results") or {}).items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def show(self) -> None:
        """The table of runs: displayed in Jupyter, printed elsewhere."""
        _display(self.to_df())

    def compare(self) -> None:
        """The runs' parameters and results side by side (MLRun draws a parallel
        coordinates chart; this shows the table it is drawn from)."""
        df = self.to_df()
        keep = ["name", "uid", *[c for c in df.columns if c.startswith(("param.", "result."))]]
        _display(df[[c for c in keep if c in df.columns]])


def _display(df: pd.DataFrame) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(df.to_string(index=False))
    else:
        display(df)


def _label_filter(labels: Any) -> list[tuple[str, str | None]]:
    """MLRun's label filters: ``"k=v"``, ``"k"`` (has the label), a list of them, or a dict."""
    if labels is None:
        return []
    if isinstance(labels, Mapping):
        return [(str(k), None if v is None else str(v)) for k, v in labels.items()]
    items: Iterable[Any] = [labels] if isinstance(labels, str) else labels
    out: list[tuple[str, str | None]] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidInput(f"a label filter is 'key' or 'key=value', not {item!r}")
        key, eq, value = item.partition("=")
        out.append((key.strip(), value.strip() if eq else None))
    return out


def list_runs(
    cat: Catalog,
    project: str,
    name: str | None = None,
    labels: Any = None,
    state: str | None = None,
    uid: str | Iterable[str] | None = None,
    last: int = 0,
) -> RunList:
    """The runs of ``project`` matching every filter given, newest first: ``name`` (a
    case-insensitive substring; MLRun's ``~`` prefix accepted), ``labels``, ``state``,
    ``uid`` (one or several), ``last`` (at most that many)."""
    wanted = _label_filter(labels)
    part = (name or "").removeprefix("~").lower()
    uids = {uid} if isinstance(uid, str) else set(uid or ())
    page = cat.read("runs_of", project=project, limit=MAX_RUNS)
    found = RunList()
    for row in page["rows"]:
        have = dict(row.get("labels") or {})
        if part and part not in str(row["name"]).lower():
            continue
        if state and row["state"] != state:
            continue
        if uids and row["uid"] not in uids:
            continue
        if any(k not in have or (v is not None and have[k] != v) for k, v in wanted):
            continue
        found.append(get_run(row["uid"], project, cat))
        if last and len(found) >= last:
            break
    return found
