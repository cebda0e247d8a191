"""SQL: every filter is a bound parameter; ``catalog sql`` reads the projection only.

SQL-looking text in any filter — labels, name, tag, kind, category, project,
times, audit filters, URIs — through the SDK and the CLI either matches
nothing or is refused as invalid input; it never widens a result or changes a
table (the projection's digest is unchanged). ``catalog sql`` refusals that
tests/test_cli.py does not already list are added here: other file readers,
globbing, remote URLs, extension auto-loading, secrets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.errors import InvalidInput, NotFound
from reliability.helpers import catalog_env, invoke, record

INJECTIONS = [
    "' OR 1=1 --",
    "x' OR 'a'='a",
    "'; DROP TABLE artifacts; --",
    '" OR ""="',
    "1) OR (1=1",
    "%",
    "_",
    "\\",
    "k%' --",
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalog]:
    """Three versions, built once: every test here must leave them unchanged."""
    tmp_path = tmp_path_factory.mktemp("sql")
    env = catalog_env(tmp_path)
    cat = Catalog(
        log=env["CATALOG_LOG"],
        db=env["CATALOG_DB"],
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="default",
        actor="alice",
    )
    with cat.session():
        for i in range(3):
            art = cat.log_artifact(f"k{i}", body=f"{i}", labels={"team": "ml"}, tag="v1")
            cat.update_artifact(art.uri, labels={"n": str(i)})
    yield tmp_path, cat
    cat.close()


def sdk_calls(cat: Catalog, text: str) -> list[object]:
    """Every SDK filter given ``text``; each result (or the refusal)."""
    calls = [
        lambda: cat.list_artifacts(labels={"team": text}),
        lambda: cat.list_artifacts(labels={text: "ml"}),
        lambda: cat.list_artifacts(labels=[text]),
        lambda: cat.list_artifacts(labels=f"team={text}"),
        lambda: cat.list_artifacts(name=text),
        lambda: cat.list_artifacts(tag=text),
        lambda: cat.list_artifacts(kind=text),
        lambda: cat.list_artifacts(category=text),
        lambda: cat.list_artifacts(project=text),
        lambda: cat.list_artifacts(producer=text, all_versions=True),
        lambda: cat.list_artifacts(since=text),
        lambda: cat.list_artifacts(until=text),
        lambda: cat.audit(project=text),
        lambda: cat.audit(key=text),
        lambda: cat.audit(actor=text),
        lambda: cat.audit(type=text),
        lambda: cat.audit(since=text),
        lambda: cat.get_artifact(text),
        lambda: cat.get_artifact(f"k0:{text}"),
        lambda: cat.lineage(text),
    ]
    results: list[object] = []
    for call in calls:
        try:
            results.append(call())
        except (InvalidInput, NotFound) as exc:
            results.append(type(exc).__name__)
    return results


@pytest.mark.parametrize("text", INJECTIONS)
def test_sdk_filters_are_parameters(seeded: tuple[Path, Catalog], text: str) -> None:
    _, cat = seeded
    with cat.session():  # one projection connection for every call
        before = cat.digest()
        results = sdk_calls(cat, text)
        for result in results:
            # Refused, or matches nothing: never everything.
            assert result == [] or result in REFUSALS, (text, result)
        assert cat.digest() == before
        assert len(cat.list_artifacts(labels={"team": "ml"})) == 3  # the honest query works
    record("SQL injection via SDK filters", cases=len(results))


REFUSALS = {
    "InvalidInput",
    "InvalidLabel",
    "InvalidTag",
    "InvalidTime",
    "InvalidURI",
    "InvalidKey",
    "InvalidQuery",
    "ArtifactNotFound",
}


CLI_FILTERS = [
    ["ls", "--label", "team={text}"],
    ["ls", "--label", "{text}"],
    ["ls", "--name", "{text}"],
    ["ls", "--tag", "{text}"],
    ["ls", "--kind", "{text}"],
    ["ls", "--category", "{text}"],
    ["ls", "--project", "{text}"],
    ["ls", "--since", "{text}"],
    ["ls", "--until", "{text}"],
    ["audit", "--project", "{text}"],
    ["audit", "--key", "{text}"],
    ["audit", "--actor", "{text}"],
    ["audit", "--type", "{text}"],
    ["audit", "--since", "{text}"],
    ["show", "{text}"],
    ["lineage", "{text}"],
]


@pytest.mark.parametrize("text", INJECTIONS[:2])
def test_cli_filters_are_parameters(seeded: tuple[Path, Catalog], text: str) -> None:
    root, cat = seeded
    before = cat.digest()
    cat.close()
    for args in CLI_FILTERS:
        argv = [a.format(text=text) for a in args] + (["--json"] if args[0] != "show" else [])
        result = invoke(root, *argv, catch=True)
        assert result.exit_code in (0, 2, 3), (argv, result.output)
        if result.exit_code == 0:
            assert json.loads(result.stdout) == [], (argv, result.stdout)
    assert cat.digest() == before
    record("SQL injection via CLI filters", cases=len(CLI_FILTERS))


REFUSED = [
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_parquet('{root}/x.parquet')",
    "SELECT * FROM read_json_auto('/etc/hostname')",
    "SELECT * FROM read_ndjson('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_csv(['/etc/passwd'])",
    "FROM read_text('/etc/hostname')",
    "WITH t AS (SELECT 1) SELECT * FROM read_text('/etc/hostname')",
    "SUMMARIZE SELECT * FROM read_csv('/etc/passwd')",
    "EXPLAIN SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('{root}/x.parquet')",
    "SELECT * FROM sqlite_scan('{root}/events.db', 'records')",
    "SELECT * FROM 'https://example.com/x.csv'",
    "select 1; attach '{root}/x.duckdb' as y",
    "select 1; copy (select 1) to '{root}/out.csv'",
    "SELECT * FROM duckdb_secrets()",
    "SELECT getenv('HOME')",
    "CREATE SECRET s (TYPE S3, KEY_ID 'x', SECRET 'y')",
    "RESET enable_external_access",
    "CALL load_extension('httpfs')",
    "CHECKPOINT",
    "VACUUM",
]


def test_sql_refuses_files_extensions_and_secrets(seeded: tuple[Path, Catalog]) -> None:
    root, cat = seeded
    before = cat.digest()
    cat.close()
    files = sorted(root.rglob("*"))
    for statement in REFUSED:
        result = invoke(root, "sql", statement.format(root=root), catch=True)
        assert result.exit_code == 2, (statement, result.output)
        assert result.stderr.startswith("error: invalid query"), (statement, result.stderr)
    assert sorted(root.rglob("*")) == files
    assert cat.digest() == before
    ok = invoke(root, "sql", "SELECT count(*) AS n FROM artifacts", "--format", "json")
    assert json.loads(ok.stdout) == [{"n": 3}]
    record("catalog sql refusals (beyond tests/test_cli.py)", cases=len(REFUSED))
