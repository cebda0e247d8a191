"""Rebuild a projection from the log: the proof that the log is the only truth.

:func:`rebuild` replays the log into a fresh file next to the live projection
and swaps it in with one rename, so readers see either the old projection or
the complete new one, never a half-built file. ``until`` (a time) and
``to_position`` stop the replay early: the result is the catalog as it stood
then.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from catalog.errors import EventError
from catalog.events.codec import Codec, default_codec
from catalog.log import EventLog, Record

from .database import connect
from .fold import log_time, micros
from .projection import Projection


def _cut_at_time(records: list[Record], until: datetime, codec: Codec) -> tuple[list[Record], bool]:
    """The records the log took at or before ``until``; True when the cut was reached."""
    for i, r in enumerate(records):
        if r.error is not None:
            continue
        try:
            claimed = codec.decode(r.value).occurred_at
        except EventError:
            continue  # undecodable records are dead-lettered by the projection
        if log_time(r, micros(claimed)) > micros(until):
            return records[:i], True
    return records, False


def replay_into(
    projection: Projection,
    log: EventLog,
    *,
    until: datetime | None = None,
    to_position: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Apply the log to ``projection`` from its positions up to the stop; records applied."""
    projection.bind(log)
    ends = log.end_offsets()
    if to_position is not None:
        ends = {p: min(end, to_position) for p, end in ends.items()}
    if until is None:
        return projection.catch_up(log, until=ends, batch_size=batch_size, progress=progress)
    total = 0
    done = False
    while not done:
        records = log.read_range(
            projection.positions, ends, max_records=batch_size or projection.batch_size
        )
        if not records:
            break
        records, done = _cut_at_time(records, until, projection.codec)
        if records:
            projection.apply(records)
            total += len(records)
            if progress is not None:
                progress(len(records))
    return total


def rebuild(
    log: EventLog,
    db: str,
    *,
    into: str | None = None,
    until: datetime | None = None,
    to_position: int | None = None,
    codec: Codec | None = None,
    progress: Callable[[int], None] | None = None,
    snapshots: str | None = None,
) -> str:
    """Replay ``log`` into a new projection file; swap it in at ``db`` unless ``into``.

    ``snapshots``: start from the newest usable snapshot published there (at or
    before ``to_position``; none with ``until``, whose time a snapshot does not
    bound) and replay only the tail; the whole log if there is none.
    """
    from . import published

    target = Path(into or db).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.replay-{uuid.uuid4().hex[:8]}")
    try:
        restored = None
        if snapshots is not None and until is None:
            ends = log.end_offsets()
            if to_position is not None:
                ends = {p: min(end, to_position) for p, end in ends.items()}
            restored = published.restore(str(temp), log, snapshots, until=ends)
        with Projection(str(temp), codec=codec or default_codec()) as fresh:
            # Indexes are built once at the end: maintaining them row by row
            # costs the replay ~15 % of its time and memory (the file is private
            # until the swap, so nothing reads it meanwhile). A snapshot has them.
            if restored is None:
                fresh.drop_indexes()
                replay_into(fresh, log, until=until, to_position=to_position, progress=progress)
            else:  # the tail of a snapshot, in the bounded memory a new replica's takes
                with published.tail_settings(fresh, restored.events):
                    replay_into(
                        fresh,
                        log,
                        to_position=to_position,
                        batch_size=published.TAIL_BATCH,
                        progress=progress,
                    )
            fresh.create_indexes(bulk=restored is None)
        # Make sure no other process holds the live file, then swap.
        if target.exists():
            connect(str(target)).close()
        wal = Path(str(target) + ".wal")
        if wal.exists():
            wal.unlink()  # a stale WAL must never be replayed onto the new file
        os.replace(temp, target)
    finally:
        for leftover in (temp, Path(str(temp) + ".wal")):
            if leftover.exists():
                leftover.unlink()
    return str(target)
