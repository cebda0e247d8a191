"""A writer with a wrong clock cannot move history (issue 23, items 1 and 3).

Every time that orders or cuts the history (as-of, --since/--until, diff, tag
validity, audit ranges, gc's grace) is the log's: when the log took the
event. What the writer's clock said is kept as it claimed
(``events.occurred_at``) and flagged where it is far from the log's.

The writer's clock is moved for one write (``catalog.events.model._now``,
where every event gets its claimed time); the log keeps the machine's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from catalog import Catalog
from catalog.events import model
from catalog.maintenance import gc
from reliability.helpers import invoke, record

YEAR = timedelta(days=365)


def clock_off_by(monkeypatch: pytest.MonkeyPatch, offset: timedelta) -> None:
    """From now on, this process's writer claims times ``offset`` away from the true one."""
    monkeypatch.setattr(model, "_now", lambda: datetime.now(UTC) + offset)


def moment() -> datetime:
    """Now, strictly between the log times of what was appended before and after."""
    before = datetime.now(UTC)
    while datetime.now(UTC) < before + timedelta(milliseconds=3):
        pass
    return datetime.now(UTC) - timedelta(milliseconds=1)


def audit(root: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(root, "audit", *args, "--json")
    assert result.exit_code == 0, result.output
    events: list[dict[str, Any]] = json.loads(result.output)
    return events


def keys(root: Path, *args: str) -> list[str]:
    result = invoke(root, "ls", *args, "--json")
    assert result.exit_code == 0, result.output
    return [row["metadata"]["key"] for row in json.loads(result.output)]


def test_a_writer_whose_clock_is_a_year_ahead_moves_no_history(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat.log_artifact("a", body=b"a")
    between = moment()
    with monkeypatch.context() as m:
        clock_off_by(m, YEAR)
        skewed = cat.log_artifact("skewed", body=b"s", tag="prod")
    cat.log_artifact("c", body=b"c")
    now = datetime.now(UTC)

    # the version the write returned carries the log's time, not the claim
    assert abs(skewed.metadata.updated - now) < timedelta(minutes=1)
    # as of now, all three exist; before the skewed write, only a
    assert sorted(keys(tmp_path, "--as-of", now.isoformat())) == ["a", "c", "skewed"]
    assert keys(tmp_path, "--as-of", between.isoformat()) == ["a"]
    # --since/--until are the log's times: the skewed one is not "newest" for a year
    assert sorted(keys(tmp_path, "--since", "1d")) == ["a", "c", "skewed"]
    assert keys(tmp_path, "--since", (now + timedelta(days=1)).isoformat()) == []
    assert keys(tmp_path, "--until", between.isoformat()) == ["a"]
    newest = cat.list_artifacts(order="updated")
    assert [a.key for a in newest][0] == "c"
    # the tag's validity starts when the log took it
    (valid_from,) = (
        cat.sql("SELECT valid_from FROM tag_history WHERE key = 'skewed' AND tag = 'prod'")
        .column(0)
        .to_pylist()
    )
    assert abs(valid_from - now) < timedelta(minutes=1)
    # diff over the last hour sees it; over the next year does not
    changes = cat.diff(since=between, until=now)
    assert [r["key"] for r in changes["added"]] == ["skewed", "c"]

    # the audit trail keeps what the writer claimed, and says its clock was off
    table = invoke(tmp_path, "audit", "--key", "skewed")
    assert table.exit_code == 0, table.output
    assert "writer's clock 365 days ahead" in table.output
    by_key = {e["key"]: e for e in audit(tmp_path) if e["type"] == "ArtifactLogged"}
    assert by_key["a"]["clock_skew_s"] is None
    assert by_key["skewed"]["clock_skew_s"] == pytest.approx(YEAR.total_seconds(), abs=60)
    claimed = datetime.fromisoformat(by_key["skewed"]["occurred_at"])
    logged = datetime.fromisoformat(by_key["skewed"]["logged_at"])
    assert claimed - logged > YEAR - timedelta(minutes=1)
    # audit ranges are the log's times
    since = audit(tmp_path, "--since", between.isoformat())
    assert [e["key"] for e in since] == ["skewed", "c"]

    # a replay cut at a time keeps what the log had taken by then
    into = tmp_path / "past.duckdb"
    assert invoke(tmp_path, "replay", "--until", between.isoformat(), "--into", into).exit_code == 0
    with duckdb.connect(str(into), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT key FROM artifacts").fetchall()
    assert rows == [("a",)]
    record("clocks: a writer a year ahead", checks=12)


def test_a_deletion_by_a_writer_days_behind_keeps_its_grace(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = cat.log_artifact("data", body=b"deleted just now")
    with monkeypatch.context() as m:
        clock_off_by(m, -timedelta(days=2))
        cat.delete_artifact(doomed.uri)
    offered = {d for r in gc(cat, grace="1d", dry_run=True).roots for d in r.candidates}
    assert doomed.hash not in offered  # deleted a moment ago, whatever its clock said
    later = {d for r in gc(cat, grace="0s", dry_run=True).roots for d in r.candidates}
    assert doomed.hash in later  # (and collectable once the grace is past)
    audit = invoke(tmp_path, "audit", "--type", "ArtifactDeleted")
    assert "writer's clock 2 days behind" in audit.output
    record("clocks: a deletion days behind", checks=3)


def test_times_the_writer_claims_within_minutes_are_not_flagged(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock_off_by(monkeypatch, timedelta(seconds=90))
    cat.log_artifact("k", body=b"x")
    (event,) = audit(tmp_path)
    assert event["clock_skew_s"] is None
    assert "clock" not in invoke(tmp_path, "audit").output


def test_the_page_of_a_version_shows_the_claim_of_a_skewed_writer(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.web.data import history

    with monkeypatch.context() as m:
        clock_off_by(m, YEAR)
        cat.log_artifact("k", body=b"x")
    event: dict[str, Any]
    (event,) = history(cat, "default", "k", 10)
    assert event["clock"] == "writer's clock 365 days ahead"
    assert event["occurred_at"] - event["logged_at"] > YEAR - timedelta(minutes=1)
