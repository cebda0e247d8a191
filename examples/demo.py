"""The demo behind ``make demo``: a small job on the embedded default, then the CLI.

Everything lives under ./demo-output (the catalog's data directory for this
demo: the embedded log, the DuckDB projection and the artifact store), which
is recreated on every run. Nothing to start: the log is a local file.
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
    subprocess.run([sys.executable, "-m", "cli", *args], check=True, cwd=ROOT)


def main() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    (HOME / "work").mkdir(parents=True)
    os.environ["CATALOG_HOME"] = str(HOME)
    os.environ["CATALOG_PROJECT"] = "demo"

    from catalog import Catalog

    work = HOME / "work"
    with Catalog() as catalog:
        # A file, as a job would log it.
        notes = work / "notes.txt"
        notes.write_text("raw data pulled from the sensor export\n")
        raw = catalog.log_artifact("notes", local_path=notes, labels={"team": "ml"})
        print(f"logged a file:         {raw.uri}")

        # A CSV dataset, made from the file (lineage), tagged v1.
        csv = work / "iris.csv"
        csv.write_text("sepal_length,sepal_width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n")
        v1 = catalog.log_artifact(
            "iris",
            local_path=csv,
            kind="dataset",
            labels={"team": "ml", "stage": "raw"},
            tag="v1",
            sources=[raw],
        )
        print(f"logged a dataset:      {v1.uri}  (tag v1)")

        # A second version: latest moves, v1 still names the first one.
        csv.write_text(csv.read_text() + "6.3,3.3,virginica\n")
        v2 = catalog.log_artifact(
            "iris",
            local_path=csv,
            kind="dataset",
            labels={"team": "ml", "stage": "clean"},
            sources=["store://datasets/iris:v1"],
        )
        print(f"logged a new version:  {v2.uri}  (latest)")

        # A tag and an update, both events.
        catalog.tag_artifact(v2.uri, "prod")
        catalog.update_artifact(
            v2.uri, labels={"reviewed": "yes"}, description="iris with the virginica row added"
        )
        print("tagged it prod and added the label reviewed=yes")

    catalog_cli("ls", "--all-versions")
    catalog_cli("show", "store://datasets/iris:prod")
    catalog_cli("sql", "SELECT key, tag, uid FROM tags ORDER BY key, tag")
    catalog_cli("audit")
    catalog_cli("lineage", "store://datasets/iris", "--depth", "3")
    print(
        f"\nEverything is under {HOME}: events.db (the log), catalog.duckdb (the "
        "projection), artifacts/ (the content-addressed store)."
    )


if __name__ == "__main__":
    main()
