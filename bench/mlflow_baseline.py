"""MLflow on its local SQLite backend: the baseline of B1 (logging) and B4 (queries).

MLflow's client and tracking store (``mlflow-skinny``, with SQLAlchemy and
Alembic for the SQL store) against ``sqlite:///…`` and a local artifact
directory: the setup MLflow documents for one machine.

- :func:`log_files`: per file, ``MlflowClient.log_artifact`` (copies it under
  the run's artifact directory) and ``set_tag`` (one tag carrying the file's
  labels) — the closest MLflow has to logging a labelled artifact version.
- :func:`bulk_runs` fills MLflow's own tables (``runs``, ``tags``) with one run
  per artifact version, set-based in SQL, the way B4's catalog is filled: the
  MLflow API creates a run in tens of milliseconds, so a million of them would
  take hours. :func:`search` then asks ``MlflowClient.search_runs``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_TRACKING_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def available() -> str | None:
    """None if MLflow's SQL tracking store can be used here, else why not."""
    try:
        import alembic  # noqa: F401
        import mlflow  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        return f"MLflow not installed ({exc.name}): pip install -e '.[bench]'"
    return None


def client(root: Path) -> tuple[Any, str]:
    """An MlflowClient on ``root/mlflow.db`` and a new experiment's id."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    c = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    eid = c.create_experiment(
        f"bench-{time.time_ns()}", artifact_location=(root / "artifacts").as_uri()
    )
    return c, eid


def log_files(
    root: Path, files: list[Path], labels: list[dict[str, str]]
) -> tuple[list[float], float]:
    """Log each file with its labels; (per-file milliseconds, total seconds)."""
    c, eid = client(root)
    run = c.create_run(eid)
    run_id = run.info.run_id
    times = []
    started = time.perf_counter()
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        began = time.perf_counter()
        c.log_artifact(run_id, str(path), artifact_path=f"file-{i:05d}")
        c.set_tag(run_id, f"file-{i:05d}", ",".join(f"{k}={v}" for k, v in label.items()))
        times.append((time.perf_counter() - began) * 1000)
    total = time.perf_counter() - started
    c.set_terminated(run_id)
    return times, total


def bulk_runs(root: Path, versions: int, keys: int, start_ms: int, span_ms: int) -> tuple[Any, str]:
    """MLflow's tables holding ``versions`` runs of ``keys`` keys (as B4's catalog).

    Run i: tags ``key`` = item-(i % keys), ``team``, ``env``, ``owner`` as the
    catalog's labels, ``prod`` = true on the versions the catalog tags prod;
    ``start_time`` spread over the same year.
    """
    c, eid = client(root)
    template = c.create_run(eid).info  # lets MLflow fill its own columns once
    db = sqlite3.connect(root / "mlflow.db")
    columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    row = dict(
        zip(
            columns,
            db.execute("SELECT * FROM runs WHERE run_uuid = ?", [template.run_id]).fetchone(),
            strict=True,
        )
    )
    computed = {
        "run_uuid": "printf('%032x', i + 1)",
        "name": "'item-' || printf('%07d', i % :keys)",
        "start_time": ":start + i * :step",
        "end_time": ":start + i * :step + 1000",
        "artifact_uri": f"'{row['artifact_uri'].rsplit('/', 1)[0]}/' || printf('%032x', i + 1)",
        "status": "'FINISHED'",
    }
    select = ", ".join(
        computed.get(col, ":" + col if row[col] is not None else "NULL") for col in columns
    )
    params = {col: row[col] for col in columns if row[col] is not None and col not in computed}
    params.update(keys=keys, start=start_ms, step=max(1, span_ms // versions), n=versions)
    seq = "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :n)"
    with db:
        db.execute(
            f"{seq} INSERT INTO runs ({', '.join(columns)}) SELECT {select} FROM seq", params
        )
        tags = {
            "key": "'item-' || printf('%07d', i % :keys)",
            "team": "'t' || ((i % :keys) / 10 % 10)",
            "env": "CASE WHEN (i % :keys) % 3 = 0 THEN 'prod' ELSE 'dev' END",
            "owner": "'user' || ((i % :keys) % 37)",
        }
        for name, value in tags.items():
            db.execute(
                f"{seq} INSERT INTO tags (key, value, run_uuid) "
                f"SELECT '{name}', {value}, printf('%032x', i + 1) FROM seq",
                {"keys": keys, "n": versions},
            )
        # prod: every third version of one key in ten (as bench/bulk.py tags them)
        db.execute(
            f"{seq} INSERT INTO tags (key, value, run_uuid) "
            "SELECT 'prod', 'true', printf('%032x', i + 1) FROM seq "
            "WHERE (i % :keys) % 10 = 0 AND (i / :keys) % 3 = 0",
            {"keys": keys, "n": versions},
        )
    db.execute("ANALYZE")
    db.close()
    return c, eid


def search(c: Any, eid: str, filter_string: str, max_results: int = 100) -> list[Any]:
    return list(
        c.search_runs(
            [eid],
            filter_string=filter_string,
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
    )
