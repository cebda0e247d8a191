"""Datasets and tables: DataFrames written in a format, with schema, preview and stats.

A dataset version stores the frame written as csv, parquet (the default, as in
MLRun), json or feather, and records in its spec:

- ``length`` (rows) and ``header`` (column names);
- ``schema``: the Frictionless Table Schema pandas builds
  (``pandas.io.json.build_table_schema``);
- ``preview``: the first 20 rows (``preview=N``), at most 100 columns;
- ``stats``: per column ``count``, and ``mean``, ``std``, ``min``, ``25%``,
  ``50%``, ``75%``, ``max`` plus a 20-bin histogram ``hist = [counts, edges]``
  for numeric columns, or ``unique``, ``top``, ``freq`` for the others — the
  figures of ``DataFrame.describe`` — computed when ``stats=True``, or when
  ``stats`` is None and the frame has fewer than 10,000 rows and 100 columns,
  never when ``stats=False``. They are computed column by column with numpy
  (one partition for all quantiles, one pass for the histogram), never in a
  Python loop over rows. The histogram (of the finite values) is left out
  when numpy cannot cut their range into 20 finite bins (values a few ulps
  apart); NaN and infinite figures are stored as null.

A dataset logged as a file (``catalog log --kind dataset``,
``log_artifact(kind="dataset")`` with a file or a body,
``DatasetArtifact(local_path=...)``) is described by the same code
(:func:`describe_content`): its content is read back as its format and
:func:`describe_frame` runs on what is read. At most ``STATS_ROW_LIMIT + 1``
rows are read of a csv, parquet or feather file — enough for the preview, the
schema (inferred from those rows) and the stats rule, which already leaves out
the stats of a frame that long — unless ``stats=True`` asks for all of them;
then ``length`` comes from the file's metadata (parquet, feather) or is left
out (csv: counting would parse it whole). A json file is parsed whole (it has
no streaming reader), so one over ``MAX_DESCRIBED_JSON_BYTES`` is not
described. Content that does not read as its format is logged as it is, with
a :class:`DatasetNotDescribed` warning saying why.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog.artifacts.base import Artifact, Prepared
from catalog.errors import DatasetNotDescribed, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_FORMAT = "parquet"
FORMATS = ("csv", "parquet", "json", "feather")
DEFAULT_PREVIEW_ROWS = 20
MAX_PREVIEW_COLUMNS = 100
MAX_PREVIEW_ROWS = 1000
STATS_ROW_LIMIT = 10_000
STATS_COLUMN_LIMIT = 100
HIST_BINS = 20
#: a json dataset file is parsed whole to be described: a bigger one is not
MAX_DESCRIBED_JSON_BYTES = 64 * 1024 * 1024
#: a file's description is at most this much JSON: the preview, then the stats, are
#: left out of a bigger one (a frame's, too big for an event, is refused instead)
MAX_DESCRIBED_BYTES = 512 * 1024
#: the spec fields :func:`describe_frame` writes
DESCRIBED_FIELDS = ("length", "header", "schema", "preview", "stats")


_SUPPORTED_INFERRED = {
    "string",
    "empty",
    "boolean",
    "integer",
    "floating",
    "mixed-integer-float",
    "decimal",
    "datetime",
    "datetime64",
    "date",
    "time",
    "timedelta",
    "timedelta64",
    "categorical",
    "bytes",
    "period",
    "interval",
}


def check_columns(df: pd.DataFrame) -> None:
    """Refuse columns no format can store faithfully, naming them."""
    import pandas as pd

    for name in df.columns:
        column = df[name]
        if pd.api.types.is_complex_dtype(column.dtype):
            raise InvalidInput(f"column {name!r} has unsupported type {column.dtype}")
        if column.dtype == object:
            inferred = pd.api.types.infer_dtype(column, skipna=True)
            if inferred not in _SUPPORTED_INFERRED:
                raise InvalidInput(
                    f"column {name!r} holds values of unsupported type ({inferred}); "
                    "convert them to strings, numbers or dates first"
                )


def _numeric(column: pd.Series) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
    )


def column_stats(column: pd.Series) -> dict[str, Any]:
    """``describe()``-like figures of one column, plus a histogram for numbers."""
    import pandas as pd

    if _numeric(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        values = values[~np.isnan(values)]
        count = int(values.size)
        if count == 0:
            return {"count": 0}
        # Infinities and huge magnitudes give NaN/inf figures (stored as null), not warnings.
        with np.errstate(invalid="ignore", over="ignore"):
            q = np.percentile(values, [25, 50, 75])
            figures: dict[str, Any] = {
                "count": count,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if count > 1 else math.nan,
                "min": float(values.min()),  # as describe(): exact even with infinities
                "25%": float(q[0]),
                "50%": float(q[1]),
                "75%": float(q[2]),
                "max": float(values.max()),
            }
            finite = values[np.isfinite(values)]
            try:
                counts, edges = (
                    np.histogram(finite, bins=HIST_BINS)
                    if finite.size
                    else (np.zeros(0), np.zeros(0))
                )
            except ValueError:
                # numpy cannot cut the range into 20 finite bins (values a few ulps
                # apart, or a range wider than the largest float): no histogram.
                return figures
        figures["hist"] = [counts.astype(int).tolist(), edges.tolist()]
        return figures
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        present = column.dropna()
        if present.empty:
            return {"count": 0}
        return {
            "count": int(present.size),
            "mean": present.mean().isoformat(),
            "min": present.min().isoformat(),
            "max": present.max().isoformat(),
        }
    counts = column.value_counts(dropna=True)
    counts = counts[counts > 0]  # a categorical lists its unused categories with count 0
    stats: dict[str, Any] = {"count": int(column.count()), "unique": int(counts.size)}
    if counts.size:
        top = counts.index[0]
        stats["top"] = top.item() if hasattr(top, "item") else top
        stats["freq"] = int(counts.iloc[0])
    return stats


def compute_stats(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Statistics of every column (see the module doc)."""
    return {str(name): column_stats(df[name]) for name in df.columns}


def want_stats(df: pd.DataFrame, stats: bool | None) -> bool:
    if stats is None:
        return len(df) < STATS_ROW_LIMIT and len(df.columns) < STATS_COLUMN_LIMIT
    return bool(stats)


def preview_of(df: pd.DataFrame, rows: int, all_columns: bool = False) -> list[list[Any]]:
    head = df.head(rows) if all_columns else df.head(rows).iloc[:, :MAX_PREVIEW_COLUMNS]
    return [[_cell(v) for v in row] for row in head.itertuples(index=False, name=None)]


def _cell(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def table_schema(df: pd.DataFrame, index: bool) -> dict[str, Any]:
    from pandas.io.json import build_table_schema

    schema: dict[str, Any] = build_table_schema(df, index=index)
    return schema


def describe_frame(
    df: pd.DataFrame,
    *,
    preview: int | None = None,
    stats: bool | None = None,
    index: bool = False,
    ignore_preview_limits: bool = False,
) -> dict[str, Any]:
    """The dataset spec fields of a frame: length, header, schema, preview, stats."""
    if preview is None:  # MLRun: ignoring the limits without a count previews every row
        rows = len(df) if ignore_preview_limits else DEFAULT_PREVIEW_ROWS
    else:
        rows = int(preview)
    if rows < 0:
        raise InvalidInput(f"preview must be a non-negative number of rows, not {preview!r}")
    if rows > MAX_PREVIEW_ROWS and not ignore_preview_limits:
        raise InvalidInput(f"preview of {rows} rows is over the limit of {MAX_PREVIEW_ROWS} rows")
    spec: dict[str, Any] = {
        "length": len(df),
        "header": [str(c) for c in df.columns],
        "schema": table_schema(df, index),
        "preview": preview_of(df, rows, all_columns=ignore_preview_limits),
    }
    if want_stats(df, stats):
        spec["stats"] = compute_stats(df)
    return spec


def describe_content(
    content: str | os.PathLike[str] | bytes,
    fmt: str | None,
    *,
    preview: int | None = None,
    stats: bool | None = None,
    ignore_preview_limits: bool = False,
) -> dict[str, Any]:
    """The spec fields of dataset content already written as ``fmt`` (a file or bytes).

    What :func:`describe_frame` gives for the frame the content holds, with the
    same size rules; ``{}`` for a format other than csv, parquet, json and
    feather. Content that cannot be read as ``fmt`` gives ``{}`` and a
    :class:`DatasetNotDescribed` warning (it is logged anyway).
    """
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        return {}
    name = "the content" if isinstance(content, bytes) else repr(os.fspath(content))
    size = len(content) if isinstance(content, bytes) else os.path.getsize(content)
    if fmt == "json" and size > MAX_DESCRIBED_JSON_BYTES:
        warnings.warn(
            DatasetNotDescribed(
                f"{name} is not described (no preview, schema or stats): a json dataset is "
                f"parsed whole, and it is {size:,} bytes, over {MAX_DESCRIBED_JSON_BYTES:,}"
            ),
            stacklevel=2,
        )
        return {}
    limit = None if stats else STATS_ROW_LIMIT + 1
    try:
        df, length = _read_rows(content, fmt, limit)
    except Exception as exc:  # any parser's error: the bytes are logged as they are
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        warnings.warn(
            DatasetNotDescribed(
                f"{name} is not described (no preview, schema or stats): it cannot be read "
                f"as {fmt} ({reason})"
            ),
            stacklevel=2,
        )
        return {}
    complete = limit is None or len(df) < limit
    if limit is not None and not complete:
        df = df.iloc[: limit - 1]  # one row more was read only to learn there are more
    spec = describe_frame(
        df,
        preview=preview,
        stats=stats if complete else False,  # a frame this long has no stats by default
        ignore_preview_limits=ignore_preview_limits,
    )
    if complete:
        spec["length"] = len(df)
    elif length is not None:
        spec["length"] = length
    else:
        del spec["length"]
    left_out = []
    for field in ("preview", "stats", "schema"):
        if len(json.dumps(spec, default=str)) <= MAX_DESCRIBED_BYTES:
            break
        if spec.pop(field, None) is not None:
            left_out.append(field)
    if left_out:
        warnings.warn(
            DatasetNotDescribed(
                f"the {' and '.join(left_out)} of {name} left out: its description is over "
                f"{MAX_DESCRIBED_BYTES:,} bytes of JSON"
            ),
            stacklevel=2,
        )
    return spec


def _read_rows(
    content: str | os.PathLike[str] | bytes, fmt: str, limit: int | None
) -> tuple[pd.DataFrame, int | None]:
    """The first ``limit`` rows (all if None) of content in ``fmt``, and its row count
    if the format records it without parsing every row (else None)."""
    import pandas as pd

    def source() -> Any:
        return io.BytesIO(content) if isinstance(content, bytes) else os.fspath(content)

    if fmt == "csv":
        return pd.read_csv(source(), nrows=limit), None
    if fmt == "json":
        df = pd.read_json(source())
        return (df if limit is None else df.iloc[:limit]), len(df)
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(source()) as parquet:
            rows = parquet.metadata.num_rows
            if limit is None or rows <= limit:
                return pd.read_parquet(source()), rows
            first = next(parquet.iter_batches(batch_size=limit))
            table = pa.Table.from_batches([first], schema=parquet.schema_arrow)
            return table.to_pandas(), rows
    # feather (version 2 is the Arrow IPC file format): batch by batch, bounded memory
    with pa.ipc.open_file(source()) as reader:
        kept, rows = [], 0
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            if limit is None or rows < limit:
                kept.append(batch if limit is None else batch.slice(0, limit - rows))
            rows += batch.num_rows
        table = pa.Table.from_batches(kept, schema=reader.schema)
        return table.to_pandas(), rows


def write_frame(df: pd.DataFrame, path: Path, fmt: str, **writer_kwargs: Any) -> None:
    """Write ``df`` in ``fmt``; writer keyword arguments (``index=False``) pass through."""
    if fmt == "csv":
        df.to_csv(path, **writer_kwargs)
    elif fmt == "parquet":
        df.to_parquet(path, **writer_kwargs)
    elif fmt == "json":
        index = bool(writer_kwargs.pop("index", False))
        writer_kwargs.setdefault("orient", "records")
        # ISO 8601 dates: pandas' default (epoch numbers) is deprecated and warns
        writer_kwargs.setdefault("date_format", "iso")
        # records carry no index: with index=True it becomes a column, as csv writes it
        (df.reset_index() if index else df).to_json(path, **writer_kwargs)
    elif fmt == "feather":
        index = bool(writer_kwargs.pop("index", False))
        df.reset_index(drop=not index).to_feather(path, **writer_kwargs)  # same for feather
    else:
        raise InvalidInput(f"unknown dataset format {fmt!r}; one of {', '.join(FORMATS)}")


#: MLRun's ``log_dataset``/``DatasetArtifact`` arguments that are not pandas writer arguments
_MLRUN_ONLY = ("upload", "db_key", "is_inline", "viewer", "size", "project")


def as_frame(df: Any, index: Any = None) -> pd.DataFrame:
    """A pandas DataFrame from ``df``: a pandas frame (a meaningful index kept as
    columns) or a dask one (computed); anything else is refused, naming its type.

    An index that is not pandas' default (an unnamed RangeIndex) holds data —
    ``df.set_index("label")``, a DatetimeIndex — so unless ``index`` is given it
    becomes columns, and is written and described with the rest.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame) and hasattr(df, "compute") and hasattr(df, "columns"):
        df = df.compute()  # a dask DataFrame: its partitions in memory, as MLRun does
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(f"df must be a pandas or dask DataFrame, not {type(df).__name__}")
    default = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    if index is None and not default:
        df = df.reset_index()
    return df


def is_frame(value: Any) -> bool:
    """True for a pandas or dask DataFrame (what ``body=`` may not be but ``df=`` may)."""
    import pandas as pd

    return isinstance(value, pd.DataFrame) or (
        hasattr(value, "compute") and hasattr(value, "columns") and hasattr(value, "dtypes")
    )


class DatasetArtifact(Artifact):
    """A dataset: a DataFrame (or a file) with schema, preview and statistics."""

    kind = "dataset"

    def __init__(
        self,
        key: str | None = None,
        df: pd.DataFrame | None = None,
        preview: int | None = None,
        format: str | None = None,
        stats: bool | None = None,
        target_path: str | None = None,
        extra_data: dict[str, Any] | None = None,
        column_metadata: dict[str, Any] | None = None,
        ignore_preview_limits: bool = False,
        label_column: str | list[str] | None = None,
        local_path: str | None = None,
        labels: dict[str, str] | None = None,
        description: str | None = None,
        body: bytes | str | None = None,
        **writer_kwargs: Any,
    ) -> None:
        for name in _MLRUN_ONLY:  # MLRun's log arguments: nothing to write with
            writer_kwargs.pop(name, None)
        src_path = writer_kwargs.pop("src_path", None)
        super().__init__(
            key,
            local_path=local_path,
            format=format,
            labels=labels,
            description=description,
            target_path=target_path,
            extra_data=extra_data,
            src_path=src_path,
            body=body,
        )
        self._preview = preview
        self._stats = stats
        self._ignore_preview_limits = ignore_preview_limits
        self._writer_kwargs = writer_kwargs
        self._column_metadata = column_metadata
        self._label_column = label_column
        self.df = None if df is None else as_frame(df, index=writer_kwargs.get("index"))
        if self.df is not None:
            check_columns(self.df)
            for column in _as_list(label_column):
                if column not in self.df.columns:
                    raise InvalidInput(
                        f"label_column {column!r} is not a column of the frame "
                        f"(columns: {', '.join(map(str, self.df.columns))})"
                    )
            # described now, as in MLRun: preview, schema and stats before logging
            for name, value in self._describe().items():
                setattr(self.spec, name, value)

    def _describe(self) -> dict[str, Any]:
        assert self.df is not None
        spec = describe_frame(
            self.df,
            preview=self._preview,
            stats=self._stats,
            index=bool(self._writer_kwargs.get("index", False)),
            ignore_preview_limits=self._ignore_preview_limits,
        )
        if self._label_column is not None:
            spec["label_column"] = self._label_column
        if self._column_metadata:
            spec["column_metadata"] = self._column_metadata
        return spec

    # MLRun-style accessors over the spec
    @property
    def stats(self) -> dict[str, Any] | None:
        return self.spec.stats  # type: ignore[no-any-return]

    @property
    def schema(self) -> dict[str, Any] | None:
        return self.spec.schema  # type: ignore[no-any-return]

    @property
    def preview(self) -> list[list[Any]] | None:
        return self.spec.preview  # type: ignore[no-any-return]

    @property
    def header(self) -> list[str] | None:
        return self.spec.header  # type: ignore[no-any-return]

    @property
    def length(self) -> int | None:
        return self.spec.length  # type: ignore[no-any-return]

    def prepare(self, workdir: Path) -> Prepared:
        if self.df is None:
            prepared = super().prepare(workdir)
            content = prepared.body if prepared.body is not None else prepared.local_path
            if content is not None and not (isinstance(content, str) and os.path.isdir(content)):
                name = "" if isinstance(content, bytes) else os.path.basename(content)
                fmt = prepared.format or (name.rsplit(".", 1)[1] if "." in name else None)
                prepared.spec = {
                    **describe_content(
                        content,
                        fmt,
                        preview=self._preview,
                        stats=self._stats,
                        ignore_preview_limits=self._ignore_preview_limits,
                    ),
                    **prepared.spec,
                }
            return prepared
        fmt = (self.spec.format or DEFAULT_FORMAT).lower()
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown dataset format {fmt!r}; one of {', '.join(FORMATS)}")
        kwargs = dict(self._writer_kwargs)
        kwargs.setdefault("index", False)
        index = bool(kwargs.get("index"))
        path = workdir / f"{self.key}.{fmt}"
        write_frame(self.df, path, fmt, **kwargs)
        described = ("length", "header", "schema", "preview", "stats", "label_column")
        spec = {
            name: getattr(self.spec, name)
            for name in (*described, "column_metadata")
            if getattr(self.spec, name) is not None
        }
        if index and "schema" in spec:  # described before index=True was known
            spec["schema"] = table_schema(self.df, True)
        return Prepared(
            local_path=str(path),
            format=fmt,
            filename=path.name,
            spec=spec,
            extra_data=dict(self.spec.extra_data or {}),
        )


class TableArtifact(Artifact):
    """A small table shown as is: a DataFrame or a body, as csv (default) or html."""

    kind = "table"

    def __init__(
        self,
        key: str | None = None,
        body: bytes | str | None = None,
        df: pd.DataFrame | None = None,
        viewer: str | None = None,
        visible: bool = False,
        header: list[str] | None = None,
        format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(key, body=body, format=format, **kwargs)
        self.df = df
        self._header = header

    def get_body(self) -> Any:
        """The table as text (csv, or html with ``format="html"``) when it holds a
        frame; else the body given, or a logged version's bytes."""
        if self.df is not None:
            fmt = (self.spec.format or "csv").lower()
            return self.df.to_html(index=False) if fmt == "html" else self.df.to_csv(index=False)
        return super().get_body()

    def prepare(self, workdir: Path) -> Prepared:
        fmt = (self.spec.format or "csv").lower()
        if self.df is None:
            prepared = super().prepare(workdir)
            prepared.format = fmt
            prepared.filename = f"{self.key}.{fmt}"
            if self._header:
                prepared.spec["header"] = self._header
            return prepared
        if fmt == "html":
            body = self.df.to_html(index=False).encode("utf-8")
        elif fmt == "csv":
            body = self.df.to_csv(index=False).encode("utf-8")
        else:
            raise InvalidInput(f"a table is csv or html, not {fmt!r}")
        return Prepared(
            body=body,
            format=fmt,
            filename=f"{self.key}.{fmt}",
            spec={"header": [str(c) for c in self.df.columns], "length": len(self.df)},
        )


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
