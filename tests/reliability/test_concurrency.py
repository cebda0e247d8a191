"""Concurrency: 8 processes logging, tagging and updating the same keys at once.

Every process writes through the SDK to one shared embedded log (each with its
own projection file: DuckDB has one writer per file): logs of a few bodies per
key (so processes re-log each other's versions and ``latest`` keeps moving),
tags, untags, label updates and deletes of versions it knows, and now and then
an SDK ``tag_artifact`` that resolves ``latest`` through its own projection.
Each process records every acknowledged event (event id and log position).

Then: nothing is lost (every acknowledged event is at its position in the
log, and in ``events`` or, if the rules refused it, ``dead_letters``); the
projection equals a replay of the log through a plain reference model of the
rules (tags, ``latest``, labels, deletions, refusals); ``latest`` is never
duplicated and every tag names exactly one version.

Default: 8 x 150 operations; ``make soak``: 8 x 1,000.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from catalog.consumers.projection import Projection
from catalog.events.codec import Codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
)
from catalog.log import open_log
from reliability.helpers import ROOT, record

PROCESSES = 8
WORKER = r"""
import json, random, sys
from catalog import Catalog
from catalog.errors import NotFound
from catalog.events.model import (
    ArtifactDeleted, ArtifactTagged, ArtifactUntagged, ArtifactUpdated,
)

log, db, artifacts, name, count, seed = sys.argv[1:7]
rng = random.Random(int(seed))
# wait=False: refusals are expected here (the test checks them against its model)
cat = Catalog(log=log, db=db, artifact_path=artifacts, project="race", actor=name, wait=False)
acks = []
append = cat.append_events


def acknowledged(events):
    written = append(events)
    acks.extend([e.event_id, p.offset] for e, p in zip(written.events, written.positions))
    return written


cat.append_events = acknowledged
keys = [f"k{i}" for i in range(4)]
tags = ["prod", "dev", "stage"]
known = {k: [] for k in keys}
print("ready", flush=True)
sys.stdin.readline()  # start together
session = cat.session()  # keep this process's projection open between SDK reads
session.__enter__()
for i in range(int(count)):
    key = rng.choice(keys)
    roll = rng.random()
    if roll < 0.35 or not known[key]:
        art = cat.log_artifact(
            key,
            body=f"{key} body {rng.randrange(6)}",  # shared by every process: re-logs
            labels={"by": name, "i": i},
            tag=rng.choice([None, None, "prod", "dev"]),
            artifact_path=artifacts,
        )
        known[key].append(art.uid)
        continue
    uid = rng.choice(known[key])
    if roll < 0.58:
        cat.emit("race", key, [ArtifactTagged(uid=uid, tag=rng.choice(tags))])
    elif roll < 0.78:
        removed = ("by",) if rng.random() < 0.3 else ()
        cat.emit("race", key, [ArtifactUpdated(uid=uid, labels_set={"who": name, "n": str(i)},
                                               labels_removed=removed)])
    elif roll < 0.90:
        cat.emit("race", key, [ArtifactUntagged(tag=rng.choice(tags),
                                                uid=rng.choice([None, uid]))])
    elif roll < 0.965:
        cat.emit("race", key, [ArtifactDeleted(uids=(uid,))])
    else:  # through the SDK and this process's projection: tag whatever is latest now
        try:
            cat.tag_artifact(key, rng.choice(tags))
        except NotFound:
            pass  # every version of the key is deleted at the moment
session.__exit__(None, None, None)
cat.close()
print(json.dumps(acks), flush=True)
"""


@dataclass
class Version:
    key: str
    labels: dict[str, str]
    order: int
    deleted: bool = False


@dataclass
class Model:
    """The rules of docs/design.md, as plainly as possible (cf. tests/test_model.py)."""

    versions: dict[str, Version] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def live(self, key: str, uid: str) -> Version | None:
        v = self.versions.get(uid)
        return v if v is not None and v.key == key and not v.deleted else None

    def apply(self, order: int, ev: CatalogEvent) -> None:
        key, p = ev.key, ev.payload
        if isinstance(p, ArtifactLogged):
            v = self.versions.setdefault(p.uid, Version(key, {}, order))
            v.labels, v.deleted, v.order = dict(p.labels), False, order
            if p.tag:
                self.tags[(key, p.tag)] = p.uid
        elif isinstance(p, ArtifactTagged):
            if self.live(key, p.uid) is None:
                self.refused.append(ev.event_id)
            else:
                self.tags[(key, p.tag)] = p.uid
        elif isinstance(p, ArtifactUntagged):
            current = self.tags.get((key, p.tag))
            if current is not None and p.uid in (None, current):
                del self.tags[(key, p.tag)]
        elif isinstance(p, ArtifactUpdated):
            v = self.live(key, p.uid)
            if v is None:
                self.refused.append(ev.event_id)
                return
            v.labels = {k: x for k, x in v.labels.items() if k not in p.labels_removed}
            v.labels.update(p.labels_set)
        elif isinstance(p, ArtifactDeleted):
            if any(self.versions.get(u) is None for u in p.uids):
                self.refused.append(ev.event_id)
                return
            for u in p.uids:
                self.versions[u].deleted = True
                self.tags = {t: x for t, x in self.tags.items() if x != u}
        else:  # pragma: no cover - the workers write nothing else
            raise AssertionError(f"unexpected event {ev.type}")

    def expected_tags(self) -> dict[tuple[str, str], str]:
        tags = dict(self.tags)
        for key in {v.key for v in self.versions.values()}:
            mine = self.versions.items()
            live = [(v.order, u) for u, v in mine if v.key == key and not v.deleted]
            if live:
                tags[(key, "latest")] = max(live)[1]
        return tags


def race(tmp_path: Path, operations: int) -> None:
    url = f"file://{tmp_path / 'events.db'}"
    with open_log(url):
        pass  # created up front: the workers race on appends only
    master = random.randrange(2**32)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                url,
                str(tmp_path / f"w{n}.duckdb"),
                str(tmp_path / "artifacts"),
                f"w{n}",
                str(operations),
                str(master + n),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=1500) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, f"master seed {master}: {err}"
    acks = [(e, o) for out, _ in outputs for e, o in json.loads(out.strip().splitlines()[-1])]
    where = f"master seed {master}, {PROCESSES} x {operations} operations"

    codec = Codec()
    with open_log(url) as log:
        records = log.read({0: 0}, max_records=10**7)
        assert [r.offset for r in records] == list(range(len(records))), where
        events = [codec.decode(r.value) for r in records]
        at = {r.offset: ev.event_id for r, ev in zip(records, events, strict=True)}
        for event_id, offset in acks:  # nothing lost: every acknowledged write is there
            assert at.get(offset) == event_id, f"{where}: ack {event_id}@{offset} lost"
        assert len(acks) == len(records), f"{where}: unacknowledged records in the log"

        model = Model()
        for order, ev in enumerate(events):
            model.apply(order, ev)
        with Projection(str(tmp_path / "check.duckdb")) as projection:
            projection.catch_up(log)
            con = projection.con
            applied = {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()}
            dead = [
                r[0]
                for r in con.execute(
                    'SELECT event_id FROM dead_letters ORDER BY "offset"'
                ).fetchall()
            ]
            assert applied | set(dead) == set(at.values()), f"{where}: events missing"
            assert dead == model.refused, f"{where}: refusals differ from the model"
            tags = {
                (k, t): u
                for k, t, u in con.execute(
                    "SELECT key, tag, uid FROM tags WHERE project = 'race'"
                ).fetchall()
            }
            assert tags == model.expected_tags(), f"{where}: tags differ from the model"
            versions = {
                u: (labels, deleted)
                for u, labels, deleted in con.execute(
                    "SELECT uid, labels, deleted FROM artifacts"
                ).fetchall()
            }
            assert versions == {u: (v.labels, v.deleted) for u, v in model.versions.items()}, (
                f"{where}: versions differ from the model"
            )
            duplicates = con.execute(
                "SELECT project, key, iteration, tag, count(*) FROM tags "
                "GROUP BY ALL HAVING count(*) > 1"
            ).fetchall()
            assert duplicates == [], f"{where}: a tag names two versions: {duplicates}"
            latest = con.execute(
                "SELECT key, count(*) FROM tags WHERE tag = 'latest' GROUP BY key"
            ).fetchall()
            assert all(n == 1 for _, n in latest), where
    record(
        f"concurrency ({PROCESSES} processes, one log)",
        processes=PROCESSES,
        operations_each=operations,
        events=len(records),
        refused_by_the_rules=len(dead),
    )


def test_concurrent_writers_lose_nothing_and_follow_the_rules(tmp_path: Path) -> None:
    race(tmp_path, 150)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_concurrent_writers_soak(tmp_path: Path) -> None:
    race(tmp_path, 1000)
