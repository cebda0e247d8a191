"""The event-log contract (catalog/log/base.py), one abstract suite for every backend.

:class:`LogContract` is not collected by itself (no ``Test`` prefix). A backend's
test module subclasses it and overrides two fixtures:

- ``make_log``: a factory returning a *new, independent* handle on the log
  under test each time it is called (the suite uses it for multi-handle tests);
- ``log``: the handle most tests use; by default the factory's first handle.

The tests are backend-neutral: they never assume a single partition (they use
``Position.partition``), never assume offsets start at 0 (they start from
``end_offsets()``), and tolerate short reads (a read may return fewer records
than asked for; a paging loop reads until the wanted end). Each test writes under
its own random key prefix, so a backend may share one log across tests.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from catalog.log import EventLog, Message, Offsets, Position, Record, is_behind

MakeLog = Callable[[], EventLog]

#: Seconds a paging loop waits for records it knows exist (generous: brokers lag).
READ_TIMEOUT = 30.0


def read_until(
    log: EventLog,
    start: Offsets,
    end: Mapping[int, int],
    *,
    max_records: int = 1000,
    timeout: float = READ_TIMEOUT,
) -> list[Record]:
    """Every record at or after ``start`` and before ``end``, paging ``max_records`` at a time.

    Checks the read contract on every page: at most ``max_records`` records,
    none before the requested offset, offsets increasing within each partition.
    """
    positions = {p: start.get(p, 0) for p in set(start) | set(end)}
    collected: list[Record] = []
    deadline = time.monotonic() + timeout
    while is_behind(positions, end):
        page = log.read(positions, max_records=max_records)
        assert len(page) <= max_records
        if not page:
            assert time.monotonic() < deadline, f"no records from {positions} up to {dict(end)}"
            time.sleep(0.01)
            continue
        last: dict[int, int] = {}
        for r in page:
            assert r.offset >= positions.get(r.partition, 0), f"{r.position} before {positions}"
            assert r.offset > last.get(r.partition, -1), f"{r.position} out of order"
            last[r.partition] = r.offset
        for r in page:
            if r.offset < end.get(r.partition, 0):
                collected.append(r)
        for p, offset in last.items():
            positions[p] = offset + 1
    return collected


def read_range_all(
    log: EventLog, start: Offsets, ends: Mapping[int, int], max_records: int
) -> list[Record]:
    """Page through ``read_range`` until it returns nothing, checking each page."""
    positions = dict(start)
    collected: list[Record] = []
    while page := log.read_range(positions, ends, max_records=max_records):
        assert len(page) <= max_records
        for r in page:
            assert r.partition in ends, f"{r.position}: partition not asked for"
            assert positions.get(r.partition, 0) <= r.offset < ends[r.partition], r.position
            positions[r.partition] = r.offset + 1
        collected += page
    return collected


def by_position(records: Sequence[Record]) -> dict[Position, Record]:
    result = {r.position: r for r in records}
    assert len(result) == len(records), "a position was read twice"
    return result


def after(positions: Sequence[Position]) -> dict[int, int]:
    """The offsets just past ``positions`` (per partition)."""
    result: dict[int, int] = {}
    for pos in positions:
        result[pos.partition] = max(result.get(pos.partition, 0), pos.offset + 1)
    return result


class LogContract:
    """The contract of :class:`catalog.log.base.EventLog`; subclass per backend."""

    @pytest.fixture
    def make_log(self) -> Iterator[MakeLog]:
        """Override: a factory of independent handles on one log (closed at teardown)."""
        raise NotImplementedError("a LogContract subclass must provide make_log")

    @pytest.fixture
    def log(self, make_log: MakeLog) -> EventLog:
        return make_log()

    @pytest.fixture
    def prefix(self) -> str:
        """A key prefix no other test uses."""
        return f"contract-{uuid.uuid4().hex[:12]}"

    # ------------------------------------------------------------------ append

    def test_append_returns_one_position_per_message_in_order(
        self, log: EventLog, prefix: str
    ) -> None:
        messages = [Message(f"{prefix}/k{i % 3}", f"v{i}".encode()) for i in range(12)]
        before = log.end_offsets()
        positions = log.append(messages)
        assert len(positions) == len(messages)
        assert all(isinstance(p, Position) for p in positions)
        assert len(set(positions)) == len(positions)
        for p in positions:
            assert p.offset >= before.get(p.partition, 0)
        # Within a partition, the batch's positions follow the message order.
        per_partition: dict[int, list[int]] = defaultdict(list)
        for p in positions:
            per_partition[p.partition].append(p.offset)
        for offsets in per_partition.values():
            assert offsets == sorted(offsets)
        # Each position holds exactly the message that got it.
        records = by_position(read_until(log, before, after(positions)))
        for message, pos in zip(messages, positions, strict=True):
            assert (records[pos].key, records[pos].value) == (message.key, message.value)

    def test_same_key_positions_increase_in_one_partition(self, log: EventLog, prefix: str) -> None:
        key = f"{prefix}/same"
        positions = log.append([Message(key, b"a"), Message(key, b"b"), Message(key, b"c")])
        positions += log.append([Message(key, b"d")])
        positions += log.append([Message(f"{prefix}/other", b"x"), Message(key, b"e")])[1:]
        assert len({p.partition for p in positions}) == 1
        offsets = [p.offset for p in positions]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

    def test_empty_append_returns_nothing_and_writes_nothing(self, log: EventLog) -> None:
        before = log.end_offsets()
        assert log.append([]) == []
        assert log.end_offsets() == before

    def test_same_key_order_is_preserved_across_many_appends(
        self, log: EventLog, prefix: str
    ) -> None:
        key = f"{prefix}/ordered"
        before = log.end_offsets()
        positions: list[Position] = []
        for i in range(60):
            batch = [Message(key, f"{i}".encode())]
            if i % 4 == 0:  # interleave other keys, some in the same batch
                batch.insert(0, Message(f"{prefix}/noise{i % 5}", b"noise"))
            positions += log.append(batch)
        records = read_until(log, before, after(positions))
        mine = [r for r in records if r.key == key]
        assert len({r.partition for r in mine}) == 1
        assert [r.value for r in mine] == [f"{i}".encode() for i in range(60)]
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)

    # -------------------------------------------------------------------- read

    def test_read_returns_exactly_what_was_appended(self, log: EventLog, prefix: str) -> None:
        messages = [
            Message(f"{prefix}/a", b"\x00\x01binary\xff"),
            Message(f"{prefix}/b", b"", (("type", b"ArtifactLogged"), ("schema", b"\x00\xfe"))),
            Message(f"{prefix}/a", "ünïcode".encode(), (("h", b""),)),
            Message(f"{prefix}/c", bytes(range(256)) * 40, (("a", b"1"), ("b", b"2"))),
        ]
        before = log.end_offsets()
        now_ms = time.time() * 1000
        positions = log.append(messages)
        records = read_until(log, before, after(positions))
        assert len(records) == len(messages)
        got = by_position(records)
        for message, pos in zip(messages, positions, strict=True):
            r = got[pos]
            assert r.error is None
            assert (r.partition, r.offset) == (pos.partition, pos.offset)
            assert r.position == pos
            assert r.key == message.key
            assert r.value == message.value
            assert tuple(r.headers) == message.headers
            assert abs(r.timestamp_ms - now_ms) < 10 * 60 * 1000
        # Reading never changes the log: a second read returns the same records.
        assert read_until(log, before, after(positions)) == records

    def test_read_pages_with_max_records(self, log: EventLog, prefix: str) -> None:
        before = log.end_offsets()
        positions = log.append([Message(f"{prefix}/k{i % 2}", f"{i}".encode()) for i in range(23)])
        for size in (1, 5, 7, 23, 100):
            records = read_until(log, before, after(positions), max_records=size)
            assert sorted(r.value for r in records) == sorted(f"{i}".encode() for i in range(23))
            assert len(by_position(records)) == 23

    def test_read_from_the_end_returns_nothing(self, log: EventLog, prefix: str) -> None:
        assert log.read(log.end_offsets()) == []
        log.append([Message(f"{prefix}/k", b"v")])
        assert log.read(log.end_offsets()) == []
        assert log.read(log.end_offsets(), max_records=1) == []

    def test_end_offsets_name_the_next_position(self, log: EventLog, prefix: str) -> None:
        before = log.end_offsets()
        assert before and all(isinstance(o, int) and o >= 0 for o in before.values())
        positions = log.append([Message(f"{prefix}/k{i}", b"v") for i in range(6)])
        ends = log.end_offsets()
        for pos in positions:
            assert ends[pos.partition] > pos.offset
        for p, offset in before.items():
            assert ends[p] >= offset
        # The end of a partition is the offset the next record appended there gets.
        key = f"{prefix}/k0"
        partition = positions[0].partition
        [next_pos] = log.append([Message(key, b"next")])
        assert next_pos == Position(partition, ends[partition])
        assert log.end_offsets()[partition] == ends[partition] + 1

    def test_read_range_stops_at_the_ends(self, log: EventLog, prefix: str) -> None:
        before = log.end_offsets()
        positions = log.append([Message(f"{prefix}/k{i % 7}", f"{i}".encode()) for i in range(40)])
        ends = after(positions)
        start = {p: before.get(p, 0) for p in ends}
        cut = {p: start[p] + (end - start[p] + 1) // 2 for p, end in ends.items()}
        log.append([Message(f"{prefix}/k{i}", b"after the cut") for i in range(7)])
        for size in (1, 6, 1000):
            got = read_range_all(log, start, cut, size)
            assert by_position(got).keys() == by_position(read_until(log, start, cut)).keys()
            assert b"after the cut" not in {r.value for r in got}
        # Partitions at their end, or not named, are not read.
        assert log.read_range(ends, ends) == []
        assert log.read_range(start, {}) == []
        first = positions[0].partition
        only = read_range_all(log, start, {first: ends[first]}, 1000)
        assert {r.partition for r in only} == {first}
        assert len(only) == ends[first] - start[first]

    # -------------------------------------------------------------------- wait

    def test_wait_returns_at_once_when_data_exists(self, log: EventLog, prefix: str) -> None:
        before = log.end_offsets()
        log.append([Message(f"{prefix}/k", b"v")])
        started = time.monotonic()
        assert log.wait(before, timeout=10.0) is True
        assert time.monotonic() - started < 5.0

    def test_wait_times_out_when_nothing_new(self, log: EventLog, prefix: str) -> None:
        log.append([Message(f"{prefix}/k", b"v")])
        started = time.monotonic()
        assert log.wait(log.end_offsets(), timeout=0.3) is False
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 5.0

    def test_wait_wakes_when_another_handle_appends(
        self, log: EventLog, make_log: MakeLog, prefix: str
    ) -> None:
        other = make_log()
        ends = log.end_offsets()
        errors: list[BaseException] = []

        def append_later() -> None:
            try:
                time.sleep(0.3)
                other.append([Message(f"{prefix}/k", b"from the other handle")])
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=append_later, daemon=True)
        started = time.monotonic()
        thread.start()
        try:
            assert log.wait(ends, timeout=20.0) is True
            elapsed = time.monotonic() - started
        finally:
            thread.join(10.0)
        assert not errors, errors
        assert elapsed < 10.0
        records = read_until(log, ends, log.end_offsets())
        assert [r.value for r in records] == [b"from the other handle"]

    # ---------------------------------------------------------------- handles

    def test_a_second_handle_sees_the_first_handles_appends(
        self, log: EventLog, make_log: MakeLog, prefix: str
    ) -> None:
        other = make_log()
        before = log.end_offsets()
        positions = log.append([Message(f"{prefix}/k{i}", f"{i}".encode()) for i in range(5)])
        ends = after(positions)
        assert all(other.end_offsets()[p] >= o for p, o in ends.items())
        seen = read_until(other, before, ends)
        assert [(r.position, r.value) for r in sorted(seen, key=lambda r: r.position)] == sorted(
            (p, f"{i}".encode()) for i, p in enumerate(positions)
        )
        # And the other way round.
        more = other.append([Message(f"{prefix}/k0", b"back")])
        [record] = read_until(log, {more[0].partition: more[0].offset}, after(more))
        assert (record.position, record.value) == (more[0], b"back")

    def test_log_id_is_stable_and_not_empty(self, log: EventLog, make_log: MakeLog) -> None:
        assert isinstance(log.log_id, str) and log.log_id
        assert make_log().log_id == log.log_id
        assert log.log_id == log.log_id
