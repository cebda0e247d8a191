"""A realistic stream of catalog events, encoded with the real codec, written in bulk.

:func:`events` yields a deterministic mix about ``keys`` artifact keys of one
project: 80 % ``ArtifactLogged`` (three labels, a lineage source in 30 % of
them, the ``prod`` tag in 5 %), 10 % ``ArtifactTagged`` (``prod`` or
``staging`` moved onto a live version), 6 % ``ArtifactUpdated`` (a label set),
2 % ``ArtifactDeleted`` (one version of a key that has another) and 2 %
``ArtifactUntagged``. Every event is valid where it stands in the log, so a
projection applies all of them (no dead letters). Times run evenly over a year.

:func:`write_log` encodes them (``Codec.encode``, the same bytes the SDK
writes) and appends them to a log in big batches straight through
``catalog.log`` — no SDK, no object store — which is the fast way to build a
log of a million events.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from catalog.events.codec import Codec, default_codec
from catalog.events.headers import headers_for
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactTagged,
    ArtifactUntagged,
    ArtifactUpdated,
    CatalogEvent,
    Payload,
    Producer,
    ProjectConfigured,
    SourceRef,
)
from catalog.log import Message, open_log

T = TypeVar("T")

PROJECT = "bench"
START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
KINDS = ("dataset", "dataset", "model", "artifact", "plot", "table")
CATEGORY = {"dataset": "datasets", "model": "models"}


def key_name(k: int) -> str:
    return f"key-{k:06d}"


def events(n: int, *, keys: int | None = None, seed: int = 7) -> Iterator[CatalogEvent]:
    """``n`` events about ``keys`` keys (default ``n // 10``), as described above."""
    rnd = random.Random(seed)
    keys = keys or max(1, n // 10)
    step = SPAN / max(n, 1)
    producer = Producer(kind="client", name="bench", owner="bench")
    live: dict[int, list[str]] = {}  # key -> live uids, oldest first
    logged: list[int] = []  # keys with a version (maybe all deleted since)
    tagged: dict[int, set[str]] = {}  # key -> tags currently set

    def event(i: int, k: int, payload: Payload) -> CatalogEvent:
        return CatalogEvent(
            project=PROJECT,
            key=key_name(k),
            payload=payload,
            actor=f"user{k % 37}",
            event_id=f"{seed:08x}-0000-4000-8000-{i:012x}",
            occurred_at=START + step * i,
        )

    yield event(0, 0, ProjectConfigured(description="benchmark", owner="bench"))
    for i in range(1, n):
        roll = rnd.random()
        k = rnd.choice(logged) if logged and roll >= 0.80 else -1
        uids = live.get(k, [])
        if roll < 0.80 or not uids:
            k = rnd.randrange(keys)
            kind = KINDS[k % len(KINDS)]
            uid = f"{i:032x}"
            digest = f"{i * 2654435761 % 2**64:064x}"
            sources: tuple[SourceRef, ...] = ()
            if logged and rnd.random() < 0.30:
                parent = rnd.choice(logged)
                if live.get(parent):
                    puid = live[parent][-1]
                    sources = (
                        SourceRef(
                            name="data",
                            uri=f"store://datasets/{PROJECT}/{key_name(parent)}^{puid}",
                            uid=puid,
                        ),
                    )
            tag = "prod" if rnd.random() < 0.05 else None
            payload: Payload = ArtifactLogged(
                uid=uid,
                kind=kind,
                producer=producer,
                hash=digest,
                size=1024 + i % 100_000,
                target_path=f"/data/objects/sha256/{digest[:2]}/{digest[2:]}",
                format="parquet" if kind == "dataset" else "bin",
                filename=f"{key_name(k)}.bin",
                labels={
                    "team": f"t{k % 10}",
                    "env": "prod" if k % 3 == 0 else "dev",
                    "owner": f"user{k % 37}",
                },
                tag=tag,
                sources=sources,
            )
            if k not in live:
                logged.append(k)
            live.setdefault(k, []).append(uid)
            if tag:
                tagged.setdefault(k, set()).add(tag)
        elif roll < 0.90:
            tag = "prod" if rnd.random() < 0.5 else "staging"
            payload = ArtifactTagged(uid=rnd.choice(uids), tag=tag)
            tagged.setdefault(k, set()).add(tag)
        elif roll < 0.96:
            payload = ArtifactUpdated(
                uid=rnd.choice(uids), labels_set={"reviewed": rnd.choice(("yes", "no"))}
            )
        elif roll < 0.98 and len(uids) > 1:
            uid = uids.pop(rnd.randrange(len(uids)))
            payload = ArtifactDeleted(uids=(uid,), reason="superseded")
        else:
            tags = sorted(tagged.get(k, ()))
            if tags:
                tag = rnd.choice(tags)
                tagged[k].discard(tag)
            else:
                tag = "staging"
            payload = ArtifactUntagged(tag=tag)
        yield event(i, k, payload)


def message(codec: Codec, ev: CatalogEvent, *, cloudevents: bool = False) -> Message:
    """The message the SDK appends for ``ev`` (writer.Writer.message, minus the size check);
    with ``cloudevents``, as on Kafka."""
    headers = headers_for(ev, codec.current.fingerprint, cloudevents=cloudevents)
    return Message(ev.partition_key, codec.encode(ev), headers)


def messages(n: int, *, keys: int | None = None, seed: int = 7) -> list[Message]:
    codec = default_codec()
    return [message(codec, ev) for ev in events(n, keys=keys, seed=seed)]


def logs_only(n: int, *, keys: int | None = None, seed: int = 7) -> Iterator[Message]:
    """The messages of :func:`messages` that create the project or log without a tag.

    The leanest stream a projection can get: but in the batch that creates
    the project, each log is a new version of a key that only logs (the
    rules' one-pass case, ``Fold.log_plain``).
    """
    codec = default_codec()
    for ev in events(n, keys=keys, seed=seed):
        if isinstance(ev.payload, ProjectConfigured) or (
            isinstance(ev.payload, ArtifactLogged) and not ev.payload.tag
        ):
            yield message(codec, ev)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_log(
    url: str,
    n: int,
    *,
    keys: int | None = None,
    batch: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append ``n`` generated events to the log at ``url``; returns the count."""
    codec = default_codec()
    written = 0
    with open_log(url) as log:
        for chunk in chunked((message(codec, ev) for ev in events(n, keys=keys)), batch):
            log.append(chunk)
            written += len(chunk)
            if progress is not None:
                progress(written)
    return written
