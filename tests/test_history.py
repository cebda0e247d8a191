"""Time travel: tag history intervals, as-of reads, snapshots, digests of the past."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog import Catalog, InvalidInput
from catalog.cli import cli
from catalog.client import parse_as_of


def moment() -> datetime:
    time.sleep(0.01)
    t = datetime.now(UTC)
    time.sleep(0.01)
    return t


def history(catalog: Catalog, tag: str) -> list[tuple[str, bool]]:
    rows = catalog.sql(
        f"SELECT uid, valid_to IS NULL AS open FROM tag_history WHERE tag = '{tag}' "
        "ORDER BY from_partition, from_offset"
    ).to_pylist()
    return [(r["uid"], r["open"]) for r in rows]


def test_tag_history_records_every_interval(catalog: Catalog) -> None:
    v1 = catalog.log_artifact("model", body=b"1", tag="prod")
    v2 = catalog.log_artifact("model", body=b"2")
    catalog.tag_artifact(v2.uri, "prod")
    catalog.untag_artifact("model", "prod")
    catalog.tag_artifact(v1.uri, "prod")
    assert history(catalog, "prod") == [(v1.uid, False), (v2.uid, False), (v1.uid, True)]
    catalog.delete_artifact(v2.uri)  # latest falls back to v1
    assert history(catalog, "latest") == [(v1.uid, False), (v2.uid, False), (v1.uid, True)]
    row = catalog.sql(
        "SELECT set_by, removed_by, valid_to > valid_from AS ordered FROM tag_history "
        "WHERE tag = 'prod' AND valid_to IS NOT NULL"
    ).to_pylist()
    assert row == [{"set_by": "tester", "removed_by": "tester", "ordered": True}] * 2


def test_which_model_was_prod_then_and_which_data_trained_it(catalog: Catalog) -> None:
    d1 = catalog.log_artifact("data", body=b"a,b\n1,2\n", kind="dataset", format="csv")
    catalog.log_artifact("model", body=b"m1", kind="model", tag="prod", sources=[d1])
    then = moment()
    d2 = catalog.log_artifact("data", body=b"a,b\n3,4\n", kind="dataset", format="csv")
    m2 = catalog.log_artifact("model", body=b"m2", kind="model", sources=[d2])
    catalog.tag_artifact(m2.uri, "prod")
    sql = f"""
        SELECT l.parent_key, l.parent_uid, l.parent_hash
        FROM tag_history h JOIN lineage l ON l.uid = h.uid AND l.relation = 'source'
        WHERE h.key = 'model' AND h.tag = 'prod'
          AND h.valid_from <= TIMESTAMPTZ '{then.isoformat()}'
          AND (h.valid_to IS NULL OR h.valid_to > TIMESTAMPTZ '{then.isoformat()}')
    """
    assert catalog.sql(sql).to_pylist() == [
        {"parent_key": "data", "parent_uid": d1.uid, "parent_hash": d1.hash}
    ]


def test_as_of_time_answers_as_the_catalog_stood(catalog: Catalog, tmp_path: Path) -> None:
    v1 = catalog.log_artifact("k", body=b"1", labels={"stage": "raw"}, tag="prod")
    other = catalog.log_artifact("gone", body=b"x")
    then = moment()
    v2 = catalog.log_artifact("k", body=b"2")
    catalog.tag_artifact(v2.uri, "prod")
    catalog.update_artifact(v1.uri, labels={"stage": "clean"})
    catalog.delete_artifact(other.uri)
    past = Catalog(config=catalog.config, as_of=then)
    assert past.get_artifact("k").uid == v1.uid
    assert past.get_artifact("k:prod").uid == v1.uid
    assert past.get_artifact(v1.uri).labels == {"stage": "raw"}
    assert {a.key for a in past.list_artifacts()} == {"k", "gone"}
    assert past.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 2}]
    with pytest.raises(InvalidInput, match="past"):
        past.log_artifact("new", body=b"x")
    # the live catalog is untouched by the time travel
    assert catalog.get_artifact("k:prod").uid == v2.uid
    assert catalog.get_artifact(v1.uri).labels == {"stage": "clean"}
    past.close()


def test_as_of_position_and_snapshot_digest(catalog: Catalog, tmp_path: Path) -> None:
    for i in range(5):
        catalog.log_artifact("k", body=str(i).encode(), tag=f"t{i}")
    third = Catalog(config=catalog.config, as_of=3)
    assert third.positions() == {0: 3}
    assert len(third.list_artifacts(all_versions=True)) == 3
    # a snapshot equals a projection replayed to the same position
    replayed = catalog.replay(to_position=3, into=str(tmp_path / "at3.duckdb"))
    at3 = Catalog(config=catalog.config.with_(db=replayed), as_of=3)
    assert third.digest() == at3.digest()
    assert third.digest() != catalog.digest()
    third.close()
    at3.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", {0: 12}), (7, {0: 7}), ("0:5,1:9", {0: 5, 1: 9}), (None, None)],
)
def test_parse_as_of_positions(text: object, expected: object) -> None:
    assert parse_as_of(text) == expected


def test_parse_as_of_times() -> None:
    assert isinstance(parse_as_of("2026-03-03T10:00"), datetime)
    assert isinstance(parse_as_of("3d"), datetime)
    with pytest.raises(InvalidInput):
        parse_as_of("yesterday-ish")
    with pytest.raises(InvalidInput):
        parse_as_of(-1)


def test_cli_as_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_HOME", str(tmp_path))
    runner = CliRunner()
    src = tmp_path / "f.txt"
    for i in range(3):
        src.write_text(str(i))
        assert runner.invoke(cli, ["log", str(src), "--key", "f", "--tag", f"v{i}"]).exit_code == 0
    out = runner.invoke(cli, ["sql", "--as-of", "1", "SELECT tag FROM tags ORDER BY tag"])
    assert out.exit_code == 0 and "v0" in out.output and "v1" not in out.output
    ls = runner.invoke(cli, ["ls", "-a", "--as-of", "2", "--json"])
    assert ls.exit_code == 0 and ls.output.count('"uid"') == 2
    show = runner.invoke(cli, ["show", "f", "--as-of", "1"])
    assert "tag: latest" in show.output and "v0" in show.output
    digest_then = runner.invoke(cli, ["digest", "--as-of", "1"]).output
    assert "at {0: 1}" in digest_then
    bad = runner.invoke(cli, ["ls", "--as-of", "whenever"])
    assert bad.exit_code == 2 and "invalid time" in bad.stderr


def test_diff_lists_what_changed_with_actor_and_time(catalog: Catalog) -> None:
    v1 = catalog.log_artifact("k", body=b"1", tag="prod", labels={"a": "1"})
    start = moment()
    v2 = catalog.log_artifact("k", body=b"2")
    catalog.tag_artifact(v2.uri, "prod")
    catalog.update_artifact(v2.uri, labels={"b": "2"}, remove_labels=["a"])
    catalog.untag_artifact("k", "prod")
    catalog.delete_artifact(v1.uri, reason="obsolete")
    changes = catalog.diff(start)
    assert [a["uid"] for a in changes["added"]] == [v2.uid]
    assert [(d["uids"], d["reason"]) for d in changes["deleted"]] == [([v1.uid], "obsolete")]
    assert [(t["tag"], t["from_uid"], t["to_uid"]) for t in changes["tags"]] == [
        ("prod", v1.uid, v2.uid),
        ("prod", v2.uid, None),
    ]
    (label,) = changes["labels"]
    assert label["labels_set"] == {"b": "2"} and label["labels_removed"] == ["a"]
    assert {r["actor"] for rows in changes.values() if isinstance(rows, list) for r in rows} == {
        "tester"
    }
    assert catalog.diff(start, start)["added"] == []
    with pytest.raises(InvalidInput):
        catalog.diff("now", start)


def test_audit_event_detail_and_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("CATALOG_HOME", str(tmp_path))
    runner = CliRunner()
    src = tmp_path / "f.txt"
    src.write_text("x")
    runner.invoke(cli, ["log", str(src), "--key", "f", "--tag", "v1"])
    lines = runner.invoke(cli, ["audit", "--format", "json"]).output.splitlines()
    event = json.loads(lines[0])
    assert event["type"] == "ArtifactLogged" and event["payload"]["tag"] == "v1"
    detail = json.loads(runner.invoke(cli, ["audit", "--event", event["event_id"]]).output)
    assert detail["schema_version"] == 2 and (detail["partition"], detail["offset"]) == (0, 0)
    csv_out = runner.invoke(cli, ["audit", "--format", "csv"]).output.splitlines()
    assert csv_out[0].startswith("position,") and csv_out[1].startswith("0:0,")
    missing = runner.invoke(cli, ["audit", "--event", "nope"])
    assert missing.exit_code == 3
    out = runner.invoke(cli, ["diff", "--from", "1h", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["added"][0]["key"] == "f"


def test_audit_follow_prints_new_events(catalog: Catalog) -> None:
    import subprocess
    import sys

    env = {
        "CATALOG_LOG": catalog.config.log,
        "CATALOG_DB": str(Path(catalog.config.db).with_name("follow.duckdb")),
        "CATALOG_PROJECT": "proj",
        "PATH": "/usr/bin:/bin",
    }
    catalog.log_artifact("before", body=b"1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "audit", "--follow", "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("position,")
        assert ",before," in proc.stdout.readline()
        catalog.log_artifact("after", body=b"2")
        assert ",after," in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_open_intervals_are_the_tags_rows_closed_ones_are_appended(catalog: Catalog) -> None:
    """tag_history is tag_intervals (closed, never updated) plus the current tags."""
    v1 = catalog.log_artifact("model", body=b"1", tag="prod")
    v2 = catalog.log_artifact("model", body=b"2")
    catalog.tag_artifact(v2.uri, "prod")
    rows = catalog.sql(
        "SELECT tag, uid, valid_to IS NULL AS open FROM tag_intervals ORDER BY from_offset, tag"
    ).to_pylist()
    assert rows == [
        {"tag": "latest", "uid": v1.uid, "open": False},
        {"tag": "prod", "uid": v1.uid, "open": False},
    ]
    # a tags row carries the position of the event that put it there
    tagged = catalog.sql(
        "SELECT t.tag, e.type FROM tags t JOIN events e "
        'ON e."partition" = t.from_partition AND e."offset" = t.from_offset ORDER BY t.tag'
    ).to_pylist()
    assert tagged == [
        {"tag": "latest", "type": "ArtifactLogged"},
        {"tag": "prod", "type": "ArtifactTagged"},
    ]
    counts = catalog.sql(
        "SELECT (SELECT count(*) FROM tag_history) AS history, "
        "(SELECT count(*) FROM tag_intervals) + (SELECT count(*) FROM tags) AS parts"
    ).to_pylist()
    assert counts == [{"history": 4, "parts": 4}]


def test_snapshots_are_not_shared_between_schema_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached as-of snapshot built by another version of the tables is never reused."""
    from catalog.consumers import schema
    from catalog.consumers.snapshot import snapshot_path
    from catalog.log import open_log

    with open_log(f"file://{tmp_path / 'log.db'}") as log:
        now = snapshot_path(tmp_path, log, {0: 5})
        monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION - 1)
        assert snapshot_path(tmp_path, log, {0: 5}) != now
