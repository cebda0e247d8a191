"""HTTP fuzz of a real `catalog serve` by schemathesis, from the service's own OpenAPI
document (the query API, the web UI's JSON API, its writes). Every answer must say what
the document says: a documented status (errors in the error shape, with that status), a
documented media type, a body of the documented schema, the documented headers; a
method no operation names is a 405 with ``Allow``; and no answer is a server error.

Schemathesis's own runner (``st run``) with all its phases: examples (the seeded
catalog's names, added to the document here so that real versions are reached), coverage
(each declared bound, enum and pattern at and past its edge; every unsupported method),
fuzzing (valid and invalid data) and stateful (following the document's links).
Default: 6 examples per operation for fuzzing (about 3,000 requests, seconds); the slow
twin (``make soak``) 300.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import record
from servers import start_catalog_service

from catalog import Catalog, run_local

#: What the answers are held to (schemathesis's names for its checks).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A served catalog with a run, its dataset and model, a plot and a directory; and
    the names to give schemathesis as examples."""
    root = tmp_path_factory.mktemp("fuzz-api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        CATALOG_HOME=str(root / "home"),
        CATALOG_LOG=f"file://{root / 'events.db'}",
        CATALOG_ARTIFACT_PATH=str(root / "artifacts"),
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a\n")
    (folder / "sub" / "b.txt").write_bytes(b"b\n")
    with Catalog(
        log=env["CATALOG_LOG"],
        db=str(root / "writer.duckdb"),
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="demo",
    ) as cat:
        first = cat.log_artifact("sales", body=b"a,b\n1,2\n", kind="dataset", format="csv")
        cat.tag_artifact(first.uri, "v1")

        def train(context: Any, data: Any) -> None:
            context.log_model("model", body=b"w", labels={"t": "x"})

        run = run_local(handler=train, name="train", inputs={"data": first.uri}, catalog=cat)
        cat.log_artifact("folder", local_path=str(folder))
        cat.log_artifact("notes", body=b"<b>hi</b>", format="html", labels={"team": "ml"})
    server = start_catalog_service(env, root / "s.duckdb")
    try:
        yield (
            server.url,
            {"project": "demo", "key": "sales", "uid": first.uid or "", "run": run.uid},
        )
    finally:
        err = server.stop()
        assert "Traceback" not in err, err


def test_every_answer_conforms_to_the_document(
    service: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    run_schemathesis(service, tmp_path, examples=6)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_answer_conforms_to_the_document_long(
    service: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    run_schemathesis(service, tmp_path, examples=300)


def run_schemathesis(service: tuple[str, dict[str, str]], tmp_path: Path, *, examples: int) -> None:
    url, names = service
    with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=30) as r:
        document = json.load(r)
    operations = sum(len(ops) for ops in document["paths"].values())
    assert operations > 30  # the query API, the UI's JSON API, its writes
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(with_examples(document, names)))
    report = tmp_path / "report.json"
    argv = [
        *("run", str(schema), "--url", url, "--checks", ",".join(CHECKS)),
        *("--phases", "examples,coverage,fuzzing,stateful", "--mode", "all"),
        *("--max-examples", str(examples), "--workers", "1", "--request-timeout", "30"),
        *("--generation-database", "none", "--suppress-health-check", "all", "--no-color"),
        *("--report", "json", "--report-json-path", str(report)),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", *argv],
        cwd=tmp_path,  # its caches stay here
        capture_output=True,
        text=True,
        timeout=3500,
    )
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    found = json.loads(report.read_text())
    assert found["complete"] and not found["failures"] and not found["errors"], found
    assert found["operations"]["tested"] == operations, found["operations"]
    record(
        "HTTP conformance (schemathesis, every operation)",
        operations=operations,
        requests=found["test_cases"]["generated"],
    )


def with_examples(document: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The document with the seeded catalog's names as examples of the UI API's path
    parameters and uids, so that schemathesis's examples phase reaches real versions
    and a real run (random names almost never exist: 404s only)."""
    for path, ops in document["paths"].items():
        if not path.startswith("/api/projects/{project}"):
            continue
        for op in ops.values():
            for param in op.get("parameters", []):
                name = param["name"]
                if name == "uid":
                    param["example"] = names["run" if param["in"] == "path" else "uid"]
                elif name in names and param["in"] == "path":
                    param["example"] = names[name]
    return document
