"""HTTP fuzz of a real `catalog serve`: schemathesis generates requests from the
service's own OpenAPI document (every operation: the query API, the web UI's
JSON API, its writes) and no answer may be a server error.

Default: 6 examples per operation (about 250 requests, seconds); the slow twin
(`make soak`) 300 per operation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from reliability.helpers import record
from servers import start_catalog_service

from catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz-api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        CATALOG_HOME=str(root / "home"),
        CATALOG_LOG=f"file://{root / 'events.db'}",
        CATALOG_ARTIFACT_PATH=str(root / "artifacts"),
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    with Catalog(
        log=env["CATALOG_LOG"],
        db=str(root / "writer.duckdb"),
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="demo",
    ) as cat:
        first = cat.log_artifact("sales", body=b"a,b\n1,2\n", kind="dataset", tag="v1")
        cat.log_artifact("model", body=b"w", kind="model", sources=[first.uri], labels={"t": "x"})
    server = start_catalog_service(env, root / "s.duckdb")
    url = server.url
    try:
        yield url
    finally:
        err = server.stop()
        assert "Traceback" not in err, err


def test_no_request_gets_a_server_error(service: str) -> None:
    fuzz_every_operation(service, 6)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_no_request_gets_a_server_error_long(service: str) -> None:
    fuzz_every_operation(service, 300)


def fuzz_every_operation(service: str, examples: int) -> None:
    schema = schemathesis.openapi.from_url(f"{service}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the query API, the UI's JSON API, its writes
    calls = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            nonlocal calls
            response = case.call(base_url=service, timeout=30)
            calls += 1
            where = f"{case.method} {case.formatted_path} {case.query}"
            assert response.status_code < 500, (
                f"{where} -> {response.status_code}: {response.text[:500]}"
            )
            kind = response.headers.get("content-type") or [""]
            if response.status_code >= 400 and str(kind[0]).startswith("application/json"):
                body = response.json()  # the one error shape
                assert set(body) == {"error", "message", "status"}, (where, body)
                assert body["status"] == response.status_code, (where, body)

        fuzz()
    record("HTTP fuzz (schemathesis, every operation)", operations=len(operations), calls=calls)
