"""Property: incremental projection == full replay == a plain in-memory model of the rules.

Random sequences of log / tag / untag / update / delete operations (valid and
invalid) are written to a real embedded log, then projected (a) incrementally
in random batch sizes, (b) in one full replay, and (c) folded by the tiny model
below, written independently of ``consumers/fold.py`` from the rules in
docs/design.md. All three must agree; (a) and (b) must have the same digest.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.consumers.digest import digest
from catalog.consumers.projection import Projection
from catalog.events import columnar
from catalog.events.codec import Codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    Payload,
    Producer,
)
from catalog.log import Message, open_log

CODEC = Codec()
KEYS = ["k0", "k1", "k2"]
TAGS = ["prod", "dev"]
LABELS = ["a", "b"]


@dataclass
class Version:
    key: str
    labels: dict[str, str]
    deleted: bool = False
    order: int = 0


@dataclass
class Model:
    """The rules, as plainly as possible."""

    versions: dict[str, Version] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    dead: int = 0

    def live(self, key: str, uid: str) -> Version | None:
        v = self.versions.get(uid)
        return v if v is not None and v.key == key and not v.deleted else None

    def apply(self, order: int, key: str, p: Payload) -> None:
        if isinstance(p, ArtifactLogged):
            v = self.versions.setdefault(p.uid, Version(key, {}))
            v.labels, v.deleted, v.order = dict(p.labels), False, order
            if p.tag:
                self.tags[(key, p.tag)] = p.uid
        elif isinstance(p, ArtifactTagged):
            if self.live(key, p.uid) is None:
                self.dead += 1
            else:
                self.tags[(key, p.tag)] = p.uid
        elif isinstance(p, ArtifactUntagged):
            current = self.tags.get((key, p.tag))
            if current is not None and (p.uid is None or p.uid == current):
                del self.tags[(key, p.tag)]
        elif isinstance(p, ArtifactUpdated):
            v = self.live(key, p.uid)
            if v is None:
                self.dead += 1
                return
            v.labels = {k: x for k, x in v.labels.items() if k not in p.labels_removed}
            v.labels.update(p.labels_set)
        elif isinstance(p, ArtifactDeleted):
            uids = list(p.uids)
            if p.all_versions:
                uids += [u for u, v in self.versions.items() if v.key == key and u not in uids]
            if not uids or any(u not in self.versions or self.versions[u].key != key for u in uids):
                self.dead += 1
                return
            for u in uids:
                self.versions[u].deleted = True
                self.tags = {t: x for t, x in self.tags.items() if x != u}

    def expected_tags(self) -> dict[tuple[str, str], str]:
        tags = dict(self.tags)
        for key in KEYS:
            live = [
                (v.order, u) for u, v in self.versions.items() if v.key == key and not v.deleted
            ]
            if live:
                tags[(key, "latest")] = max(live)[1]
        return tags


op = st.one_of(
    st.tuples(
        st.just("log"),
        st.sampled_from(KEYS),
        st.integers(0, 3),
        st.none() | st.sampled_from(TAGS),
        st.dictionaries(st.sampled_from(LABELS), st.sampled_from(["x", "y"]), max_size=2),
    ),
    st.tuples(st.just("tag"), st.sampled_from(KEYS), st.integers(0, 5), st.sampled_from(TAGS)),
    st.tuples(
        st.just("untag"),
        st.sampled_from(KEYS),
        st.sampled_from(TAGS),
        st.none() | st.integers(0, 5),
    ),
    st.tuples(
        st.just("update"),
        st.sampled_from(KEYS),
        st.integers(0, 5),
        st.sampled_from(LABELS),
        st.none() | st.sampled_from(["x", "z"]),
    ),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.integers(0, 5)),
    st.tuples(st.just("delete_all"), st.sampled_from(KEYS)),
)


def to_payloads(ops: list[tuple]) -> list[tuple[str, Payload]]:
    """Abstract operations to events; version indexes name uids ever seen for that key."""
    seen: dict[str, list[str]] = {k: [] for k in KEYS}

    def pick(key: str, index: int) -> str:
        uids = seen[key]
        return uids[index % len(uids)] if uids and index < 4 else f"{key}-ghost"

    out: list[tuple[str, Payload]] = []
    for o in ops:
        kind, key = o[0], o[1]
        if kind == "log":
            uid = f"{key}-v{o[2]}"
            if uid not in seen[key]:
                seen[key].append(uid)
            out.append(
                (
                    key,
                    ArtifactLogged(
                        uid=uid,
                        kind="artifact",
                        labels=o[4],
                        tag=o[3],
                        producer=Producer("client", "prop"),
                    ),
                )
            )
        elif kind == "tag":
            out.append((key, ArtifactTagged(uid=pick(key, o[2]), tag=o[3])))
        elif kind == "untag":
            uid = None if o[3] is None else pick(key, o[3])
            out.append((key, ArtifactUntagged(tag=o[2], uid=uid)))
        elif kind == "update":
            label, value = o[3], o[4]
            out.append(
                (
                    key,
                    ArtifactUpdated(
                        uid=pick(key, o[2]),
                        labels_set={label: value} if value else {},
                        labels_removed=() if value else (label,),
                    ),
                )
            )
        elif kind == "delete":
            out.append((key, ArtifactDeleted(uids=(pick(key, o[2]),))))
        else:
            out.append((key, ArtifactDeleted(all_versions=True)))
    return out


def projected(p: Projection) -> tuple[dict, dict, int]:
    tags = {(k, t): u for k, t, u in p.con.execute("SELECT key, tag, uid FROM tags").fetchall()}
    versions = {
        u: (labels, deleted)
        for u, labels, deleted in p.con.execute(
            "SELECT uid, labels, deleted FROM artifacts"
        ).fetchall()
    }
    dead = p.con.execute("SELECT count(*) FROM dead_letters").fetchall()[0][0]
    return tags, versions, dead


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=40), cuts=st.lists(st.integers(1, 7), min_size=1))
def test_incremental_equals_replay_equals_model(ops: list[tuple], cuts: list[int]) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    payloads = to_payloads(ops)
    model = Model()
    for i, (key, p) in enumerate(payloads):
        model.apply(i, key, p)
    with tempfile.TemporaryDirectory() as tmp, open_log(f"file://{Path(tmp) / 'l.db'}") as log:
        log.append(
            [
                Message(
                    f"p/{key}",
                    CODEC.encode(
                        CatalogEvent(
                            project="p",
                            key=key,
                            payload=p,
                            actor="prop",
                            occurred_at=t0 + timedelta(seconds=i),
                        )
                    ),
                )
                for i, (key, p) in enumerate(payloads)
            ]
        )
        records = log.read({0: 0}, 10_000)
        with Projection() as incremental, Projection() as replay, Projection() as columns:
            start, i = 0, 0
            while start < len(records):
                size = cuts[i % len(cuts)]
                incremental.apply(records[start : start + size])
                # the same batches decoded in columns: from the second on, the logs
                # of keys that only log take Fold.log_plain's pass
                saved, columnar.MIN_BATCH = columnar.MIN_BATCH, 1
                try:
                    columns.apply(records[start : start + size])
                finally:
                    columnar.MIN_BATCH = saved
                start, i = start + size, i + 1
            assert digest(columns.con) == digest(incremental.con)
            # the replay decodes in columns (consumers/columns.py: its logs folded
            # as lazy rows, written from the batch's columns), the incremental
            # one event by event: the digests below also prove the two agree
            saved, columnar.MIN_BATCH = columnar.MIN_BATCH, 1
            try:
                replay.catch_up(log)
            finally:
                columnar.MIN_BATCH = saved
            a, b = projected(incremental), projected(replay)
            assert a == b
            assert digest(incremental.con) == digest(replay.con)
    tags, versions, dead = a
    assert tags == model.expected_tags()
    assert versions == {u: (v.labels, v.deleted) for u, v in model.versions.items()}
    assert dead == model.dead
