"""The demo behind ``make demo``: the iris pipeline on the embedded default, then the CLI.

Everything lives under ./demo-output — the catalog's data directory for this
demo: the embedded log (events.db), the DuckDB projection (catalog.duckdb)
and the content-addressed artifact store — recreated on every run. Nothing
to start: the log is a local file.

1. the seed's iris pipeline (examples/iris/pipeline.py): ingest a CSV as a
   dataset, train a model, log a confusion-matrix plot, link it to the dataset;
2. a file artifact, a second version of the dataset, a tag and an update;
3. what the CLI shows: ls, show, sql, audit, lineage.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "demo-output"


def catalog_cli(*args: str) -> None:
    print(f"\n$ catalog {shlex.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "catalog.cli", *args], check=True, cwd=ROOT)


def main() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    work = HOME / "work"
    work.mkdir(parents=True)
    os.environ["CATALOG_HOME"] = str(HOME)
    os.environ["CATALOG_PROJECT"] = "iris"
    sys.path.insert(0, str(ROOT / "examples" / "iris"))

    import pipeline

    from catalog import get_catalog

    print("== the iris pipeline (runs, a dataset, a model, a plot, a link)")
    logged = pipeline.main(str(work))

    print("\n== more events: a file, a second dataset version, a tag, an update")
    catalog = get_catalog()
    notes = work / "notes.txt"
    notes.write_text("iris: Fisher 1936, 150 flowers, 3 species\n")
    print(
        "logged a file:", catalog.log_artifact("notes", local_path=notes, labels={"team": "ml"}).uri
    )
    df = catalog.get_dataitem(logged["dataset"]).as_df()
    v2 = catalog.log_artifact(
        "iris_dataset",
        body=df[df.species != "setosa"].to_csv(index=False),
        kind="dataset",
        format="csv",
        filename="iris_dataset.csv",
        labels={"subset": "no-setosa"},
        sources=[logged["dataset"]],
    )
    print("second version (latest moves):", v2.uri)
    catalog.tag_artifact(v2.uri, "prod")
    catalog.update_artifact(v2.uri, labels={"reviewed": "yes"}, description="iris without setosa")
    print("tagged it prod, added the label reviewed=yes")
    catalog.close()

    print("\n== what the CLI shows")
    catalog_cli("ls", "--all-versions")
    catalog_cli("show", "store://datasets/iris_dataset:train")
    catalog_cli("sql", "SELECT key, tag, left(uid, 12) AS uid FROM tags ORDER BY key, tag")
    catalog_cli("audit")
    catalog_cli("lineage", "store://models/iris-model", "--depth", "2")
    print(
        f"\nEverything is under {HOME}: events.db (the log), catalog.duckdb (the "
        "projection), work/ (the jobs' artifact paths with the content-addressed blobs)."
    )


if __name__ == "__main__":
    main()
