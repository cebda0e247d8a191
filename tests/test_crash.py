"""The projector crash test: ``kill -9`` a ``catalog consume`` at random moments.

From the spec: kill the consumer at random moments (several trials), restart it,
and the projection equals a clean replay — no event lost or applied twice.

One log of ~3,000 mixed events (logs, re-logs, updates, tags, untags, deletes,
runs, lineage, a few poison records) is built once per module. Each trial starts
``python -m catalog.cli consume --batch-size 100`` on a fresh projection file, sleeps a
random time within the span of a full consume, SIGKILLs it, runs ``consume``
again to completion, and compares the canonical digest with an in-process
replay's. The kill moments are stratified over that span so the trials cover
start-up, mid-consume and the end; every seed is in the assertion messages.

The same records are also copied, in log order, to a 3-partition Kafka topic on
the session's broker, and the same trials run against it (``kafka`` marker):
there the positions are per partition and the restart resumes each one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog import Artifact, Catalog
from catalog.consumers.database import connect
from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    Payload,
    RunFinished,
    RunStarted,
    SourceRef,
)
from catalog.log import Message, open_log

ROOT = Path(__file__).resolve().parent.parent
KEYS = 50
KINDS = ("artifact", "dataset", "model", "plot")
PROJECTS = ("crash", "other")
GENERATION_SEED = 20260101


@dataclass(frozen=True)
class World:
    """The shared log and what a clean replay of it looks like."""

    tmp: Path
    env: dict[str, str]
    end: dict[int, int]
    clean: dict[str, str]
    consume_seconds: float


def generate(cat: Catalog, rng: random.Random, target: int) -> None:
    """Append about ``target`` mixed events through the client, batched."""
    versions: dict[tuple[str, str], list[Artifact]] = {}
    tags = ("v1", "v2", "prod", "dev", "staging")
    count = 0

    def emit(project: str, key: str, payload: Payload) -> None:
        nonlocal count
        cat.emit(project, key, [payload])
        count += 1

    def log(key: str, project: str, **kw: Any) -> None:
        nonlocal count
        versions.setdefault((project, key), []).append(cat.log_artifact(key, project=project, **kw))
        count += 1

    with cat.batch():
        for project in PROJECTS:
            cat.configure_project(project, description=f"{project} project", labels={"team": "a"})
            count += 1
        n = 0
        while count < target:
            n += 1
            project = PROJECTS[0] if rng.random() < 0.85 else PROJECTS[1]
            key = f"key{rng.randrange(KEYS):02d}"
            known = versions.get((project, key), [])
            roll = rng.random()
            if roll < 0.40 or not known:
                sources = []
                if versions and rng.random() < 0.3:
                    parent = rng.choice(versions[rng.choice(sorted(versions))])
                    sources = [SourceRef(parent.key, parent.uri, parent.uid, parent.hash)]
                common: dict[str, Any] = {
                    "labels": {"team": rng.choice("abc"), "n": n, "big": rng.random() < 0.5},
                    "tag": rng.choice([None, None, *tags]),
                    "sources": sources,
                    "description": f"version {n}" if rng.random() < 0.5 else None,
                }
                if rng.random() < 0.15:  # a reference, often the same one again (a re-log)
                    target_path = f"s3://elsewhere/{key}/{rng.randrange(3)}.csv"
                    log(key, project, target_path=target_path, **common)
                else:
                    body = f"{key} body {n} {rng.random()}"
                    log(key, project, body=body, kind=rng.choice(KINDS), **common)
            elif roll < 0.60:
                art = rng.choice(known)
                peer = {"peer": rng.choice(known).uri} if rng.random() < 0.3 else {}
                emit(
                    project,
                    key,
                    ArtifactUpdated(
                        uid=art.uid or "",
                        labels_set={"updated": str(n), "team": rng.choice("xyz")},
                        labels_removed=("big",) if rng.random() < 0.5 else (),
                        extra_data_set=peer,
                        spec_set={"metric": str(rng.random())} if rng.random() < 0.3 else {},
                        description=f"updated {n}" if rng.random() < 0.3 else None,
                    ),
                )
            elif roll < 0.78:
                art = rng.choice(known)
                emit(project, key, ArtifactTagged(uid=art.uid or "", tag=rng.choice(tags)))
            elif roll < 0.88:
                uid = rng.choice(known).uid if rng.random() < 0.5 else None
                emit(project, key, ArtifactUntagged(tag=rng.choice(tags), uid=uid))
            elif roll < 0.95:
                if rng.random() < 0.15:
                    emit(project, key, ArtifactDeleted(all_versions=True, reason="cleanup"))
                else:
                    emit(project, key, ArtifactDeleted(uids=(rng.choice(known).uid or "",)))
            else:
                # A run that logs a few artifacts (their events carry its run_uid).
                run = f"run{n:05d}"
                emit(project, run, RunStarted(uid=run, name=f"train-{n}"))
                cat.run_uid = run
                for i in range(rng.randint(1, 4)):
                    rkey = f"key{rng.randrange(KEYS):02d}"
                    log(rkey, project, body=f"run {run} output {i}", tree=run)
                cat.run_uid = None
                emit(project, run, RunFinished(uid=run, state="completed"))
            if n % 400 == 0:
                # Poison among the good: undecodable, unknown schema, and a refused
                # event (a tag on an unknown version) all become dead letters.
                cat.flush()
                cat.log.append(
                    [
                        Message(f"{project}/{key}", b"not avro at all"),
                        Message(f"{project}/{key}", b"\xc3\x01" + bytes(8) + b"body"),
                    ]
                )
                count += 2
                emit(project, key, ArtifactTagged(uid="0" * 32, tag="ghost"))


def run_consume(env: dict[str, str], timeout: float = 100.0) -> subprocess.CompletedProcess[str]:
    """``catalog consume --batch-size 100`` to completion, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli", "consume", "--batch-size", "100"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_consume(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "consume", "--batch-size", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_projection(db: str, world: World, where: str) -> None:
    """The projection at ``db`` equals the clean replay, each event applied once."""
    con = connect(db, read_only=True)
    try:
        got = digest(con)
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events"
        ).fetchone()
        positions = dict(con.execute("SELECT partition, next_offset FROM positions").fetchall())
    finally:
        con.close()
    assert rows == distinct, f"{where}: {rows - distinct} event(s) applied twice"
    assert positions == world.end, f"{where}: positions {positions}, log end {world.end}"
    differing = sorted(k for k in got if got[k] != world.clean[k])
    assert got == world.clean, f"{where}: differs from a clean replay in {differing}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("crash")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        CATALOG_HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        CATALOG_LOG=f"file://{tmp / 'events.db'}",
        CATALOG_ARTIFACT_PATH=str(tmp / "artifacts"),
        CATALOG_PROJECT=PROJECTS[0],
        CATALOG_ACTOR="crash-tester",
    )
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CATALOG_HOME", "XDG_CONFIG_HOME"):
            mp.setenv(name, env[name])
        with Catalog(
            log=env["CATALOG_LOG"],
            db=str(tmp / "writer.duckdb"),
            artifact_path=env["CATALOG_ARTIFACT_PATH"],
            project=PROJECTS[0],
            actor="crash-tester",
            wait=False,  # the mix holds events the rules refuse, on purpose
        ) as cat:
            generate(cat, random.Random(GENERATION_SEED), 3000)
    with open_log(env["CATALOG_LOG"]) as log:
        end = log.end_offsets()
        with Projection(str(tmp / "clean.duckdb")) as clean:
            clean.catch_up(log)
            clean_digest = digest(clean.con)
            dead = clean.con.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert end[0] >= 3000 and dead >= 10

    # Time one full consume in a child; it must itself equal the clean replay.
    started = time.monotonic()
    done = run_consume(env | {"CATALOG_DB": str(tmp / "measure.duckdb")})
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    result = World(tmp, env, end, clean_digest, seconds)
    check_projection(str(tmp / "measure.duckdb"), result, "an uninterrupted consume")
    yield result


@dataclass(frozen=True)
class Trial:
    where: str
    killed: bool  # False: the consume had finished before the signal
    resumed_from: int  # records the restart did not have to apply

    def __str__(self) -> str:
        state = "killed" if self.killed else "had finished"
        return f"{self.where}: {state}, resumed from offset {self.resumed_from}"


def crash_trials(world: World, trials: int, label: str) -> list[Trial]:
    """Run ``trials`` kill-and-restart trials, checking each against the clean replay."""
    master = random.randrange(2**32)
    rng = random.Random(master)
    results = []
    for trial in range(trials):
        # Stratified: trial i kills in the i-th slice of a full consume's span.
        span = world.consume_seconds
        delay = rng.uniform(trial * span / trials, (trial + 1) * span / trials)
        db = str(world.tmp / f"{label}-{trial}.duckdb")
        env = world.env | {"CATALOG_DB": db}
        where = f"{label} trial {trial + 1}/{trials}, master seed {master}, kill at {delay:.3f}s"
        proc = start_consume(env)
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, f"{where}: consume failed: {err}"

        restart = run_consume(env)
        assert restart.returncode == 0, f"{where}: restart failed: {restart.stderr}"
        applied = int(restart.stdout.split()[1])  # "applied N record(s); ..."
        result = Trial(where, killed, sum(world.end.values()) - applied)
        check_projection(db, world, str(result))
        results.append(result)
        for path in (db, db + ".wal"):
            if os.path.exists(path):
                os.remove(path)
    return results


def test_killed_consumer_resumes_to_a_clean_replay(world: World) -> None:
    for trial in crash_trials(world, 5, "crash"):
        print(trial)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_killed_consumer_soak(world: World) -> None:
    soak(world, "soak")


def soak(world: World, label: str) -> None:
    """50 trials; the stratified kill moments must land mid-consume often enough."""
    trials = crash_trials(world, 50, label)
    report = "\n".join(str(t) for t in trials)
    print(report)
    total = sum(world.end.values())
    partial = [t for t in trials if t.killed and 0 < t.resumed_from < total]
    assert len(partial) >= 5, report


@pytest.fixture(scope="module")
def kafka_world(world: World, kafka_broker: Any) -> World:
    """The embedded world's records copied, in log order, to a fresh 3-partition topic."""
    url = kafka_broker.log_url(f"crash-{os.getpid()}-{random.randrange(2**32):08x}", timeout=10)
    with open_log(world.env["CATALOG_LOG"]) as source:
        records = source.read_range({}, source.end_offsets(), max_records=10**6)
    assert records and not any(r.error for r in records)
    with open_log(url) as topic:
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            topic.append([Message(r.key, r.value, r.headers) for r in chunk])
        end = topic.end_offsets()
        assert len([p for p, n in end.items() if n]) > 1, f"one partition only: {end}"
        with Projection(str(world.tmp / "kafka-clean.duckdb")) as clean:
            clean.catch_up(topic)
            clean_digest = digest(clean.con)
    env = world.env | {"CATALOG_LOG": url}
    started = time.monotonic()
    done = run_consume(env | {"CATALOG_DB": str(world.tmp / "kafka-measure.duckdb")})
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    result = World(world.tmp, env, end, clean_digest, seconds)
    check_projection(str(world.tmp / "kafka-measure.duckdb"), result, "an uninterrupted consume")
    return result


@pytest.mark.kafka
def test_killed_kafka_consumer_resumes_to_a_clean_replay(kafka_world: World) -> None:
    for trial in crash_trials(kafka_world, 5, "kafka"):
        print(trial)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_killed_kafka_consumer_soak(kafka_world: World) -> None:
    soak(kafka_world, "kafka-soak")
