"""The compiled columnar decoder gives exactly what the codec gives, record by record.

``Codec.decode_many`` sends big batches through :mod:`catalog.events.columnar`
(``_kernel.c``). Every test here decodes the same bytes both ways — the columnar
path, and the codec one record at a time — and requires the same events, the
same payload JSON text (``events.payload``), and for bad bytes the same
error. Tests also check that valid events really take the compiled path
(nothing falls back), so a silently disabled kernel would fail them.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import native
from catalog.events import columnar
from catalog.events.codec import Codec, default_codec
from catalog.events.model import (
    ArtifactDeleted,
    ArtifactLogged,
    ArtifactUpdated,
    CatalogEvent,
    Producer,
    RunStarted,
    SourceRef,
)
from tests.test_codec import ALL_PAYLOADS, FIXTURE, _event, _maps, _text


@pytest.fixture(autouse=True)
def _always_columnar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "MIN_BATCH", 0)


def _codec() -> Codec:
    return default_codec()


def _compare(values: list[bytes]) -> columnar.Batch:
    """Decode ``values`` both ways and require identical results; the batch."""
    codec = _codec()
    fast = codec.decode_many(values)
    slow = [codec.decode_json(v) for v in values]
    assert len(fast) == len(slow) == len(values)
    for i, (a, b) in enumerate(zip(fast, slow, strict=True)):
        if isinstance(b, Exception):
            assert type(a) is type(b) and str(a) == str(b), (i, a, b)
        else:
            assert not isinstance(a, Exception), (i, a)
            assert a == b, (i, a, b)
    return columnar.decode_batch(values, codec.current.schema, codec._prefix)


def test_every_payload_takes_the_compiled_path() -> None:
    codec = _codec()
    values = [codec.encode(_event(p, run_uid="r1")) for p in ALL_PAYLOADS]
    values += [codec.encode(_event(p)) for p in ALL_PAYLOADS]
    batch = _compare(values)
    assert not batch.fallback.any()
    assert set(batch.payloads) == {f"catalog.{type(p).__name__}" for p in ALL_PAYLOADS}


def test_a_bench_stream_decodes_identically() -> None:
    from bench.events import messages

    values = [m.value for m in messages(3000)]
    batch = _compare(values)
    assert not batch.fallback.any()


@settings(max_examples=150, deadline=None)
@given(
    labels=_maps,
    text=_text,
    size=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    iteration=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    micros=st.integers(min_value=-(10**15), max_value=4 * 10**15),
    flag=st.booleans(),
)
def test_random_events_decode_identically(
    labels: dict[str, str], text: str, size: int | None, iteration: int, micros: int, flag: bool
) -> None:
    from datetime import UTC, datetime, timedelta

    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    payloads = [
        ArtifactLogged(
            uid=text,
            kind="artifact",
            producer=Producer("client", text, None if flag else text),
            labels=labels,
            size=size,
            iteration=iteration,
            description=text,
            extra_data=labels,
            sources=tuple(SourceRef(k, v, v or None) for k, v in labels.items()),
            spec=json.dumps({"t": text}),
        ),
        ArtifactDeleted(uids=(text,) * 3, all_versions=flag),
        ArtifactUpdated(uid=text, labels_set=labels, labels_removed=tuple(labels)),
        RunStarted(uid=text, name=text, labels=labels),
    ]
    codec = _codec()
    values = [
        codec.encode(
            CatalogEvent(
                project=text,
                key=text,
                payload=p,
                actor=text,
                run_uid=text or None,
                occurred_at=when,
            )
        )
        for p in payloads
    ]
    batch = _compare(values)
    assert not batch.fallback.any()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_events_give_the_codecs_result_or_error(data: st.DataObject) -> None:
    codec = _codec()
    values = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        raw = bytearray(codec.encode(_event(data.draw(st.sampled_from(ALL_PAYLOADS)))))
        for at in data.draw(st.lists(st.integers(min_value=0, max_value=len(raw) - 1), max_size=3)):
            raw[at] = data.draw(st.integers(min_value=0, max_value=255))
        cut = data.draw(st.integers(min_value=0, max_value=len(raw) + 3))
        values.append(bytes(raw[:cut]) if cut <= len(raw) else bytes(raw) + b"\x00" * 3)
    _compare(values)


@given(st.lists(st.binary(max_size=120), max_size=5))
def test_random_bytes_give_the_codecs_errors(values: list[bytes]) -> None:
    _compare(values)


def _body(codec: Codec, event: CatalogEvent) -> bytes:
    return codec.encode(event)[10:]


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(text: bytes) -> bytes:
    return _zigzag(len(text)) + text


def test_strings_json_escapes_and_unicode() -> None:
    codec = _codec()
    text = 'quote" back\\ nl\n cr\r tab\t bs\b ff\f nul\x00 esc\x1b del\x7f é 中 🙂 \u2028'
    event = CatalogEvent(
        project=text,
        key=text,
        payload=ArtifactUpdated(uid=text, labels_set={text: text}),
        actor=text,
    )
    values = [codec.encode(event)]
    batch = _compare(values)
    assert not batch.fallback.any()
    assert json.loads(batch.payload_json[0].as_py())["uid"] == text


def test_what_the_kernel_leaves_to_the_codec() -> None:
    codec = _codec()
    prefix = codec._prefix
    good = codec.encode(_event(ArtifactDeleted(uids=("a",))))
    body = bytearray(good[10:])
    # the event's strings: event_id, then occurred_at, actor "me", project "p", key "k"
    bad_utf8 = bytes(good).replace(b"\x04me", b"\x04\xed\xa0")  # a UTF-8 surrogate
    overlong = bytes(good).replace(b"\x04me", b"\x04\xc0\xaf")
    duplicate = codec.encode(_event(ArtifactUpdated(uid="u", labels_set={"a": "1", "b": "2"})))
    duplicate = duplicate.replace(b"\x02b\x022", b"\x02a\x022")  # the same key twice
    values = [
        bad_utf8,
        overlong,
        duplicate,
        good + b"\x00",  # a trailing byte
        prefix[:2] + b"\x00" * 8 + bytes(body),  # an unknown schema
        b"\x00\x01" + bytes(good[2:]),  # not single-object encoding
        good[:-1],  # truncated
        good,
    ]
    batch = _compare(values)
    assert batch.fallback.tolist() == [True] * 7 + [False]
    results = codec.decode_many(values)
    assert results[2][0].payload.labels_set == {"a": "2"}  # type: ignore[union-attr]


def test_blocks_with_byte_sizes_and_wide_varints() -> None:
    """Avro's negative block counts (a count then a byte size) and 10-byte varints."""
    codec = _codec()
    event = _event(ArtifactDeleted(uids=("x", "yy"), reason=None))
    plain = codec.encode(event)
    items = _string(b"x") + _string(b"yy")
    blocked = plain.replace(
        _zigzag(2) + items + b"\x00", _zigzag(-2) + _zigzag(len(items)) + items + b"\x00"
    )
    assert blocked != plain
    split = plain.replace(
        _zigzag(2) + items + b"\x00",
        _zigzag(1) + _string(b"x") + _zigzag(1) + _string(b"yy") + b"\x00",
    )
    wide = codec.encode(
        _event(ArtifactLogged(uid="u", kind="artifact", producer=Producer("c", "n"), size=-(2**63)))
    )
    too_wide = bytearray(wide)
    marker = _zigzag(-(2**63))
    at = bytes(too_wide).index(marker)
    too_wide[at + 9] = 0x03  # a tenth byte past 64 bits: Python's arbitrary ints decide
    batch = _compare([blocked, split, wide, bytes(too_wide)])
    assert batch.fallback.tolist() == [False, False, False, True]
    assert codec.decode_many([blocked])[0][0] == event  # type: ignore[index]


def test_buffers_grow_for_big_batches() -> None:
    """Many map entries and long escaped strings: the kernel's buffers are regrown."""
    codec = _codec()
    rnd = random.Random(3)
    values = []
    for i in range(600):
        labels = {f"k{j}": "\x01" * rnd.randrange(0, 40) for j in range(rnd.randrange(0, 60))}
        values.append(codec.encode(_event(ArtifactUpdated(uid=str(i), labels_set=labels))))
    columnar._PROGRAM.clear()  # fresh size estimates: start small, grow
    batch = _compare(values)
    assert not batch.fallback.any()


def test_older_schema_versions_fall_back_to_the_codec() -> None:
    data = json.loads(FIXTURE.read_text())
    values = [bytes.fromhex(r["value"]) for r in data["records"]]
    batch = _compare(values)
    assert batch.fallback.all()


def test_empty_and_tiny_batches() -> None:
    assert _codec().decode_many([]) == []
    _compare([b""])
    _compare([struct.pack("<H", 0x01C3)])


def _plain_edges() -> list[CatalogEvent]:
    """Logs that ``Fold.log_plain`` must leave to the event path: a uid logged
    twice by one key, or by two keys, or named by another key's event; links."""
    producer = Producer("client", "t")

    def logged(key: str, uid: str, **links: str) -> CatalogEvent:
        payload = ArtifactLogged(uid=uid, kind="artifact", producer=producer, extra_data=links)
        return CatalogEvent(project="bench", key=key, payload=payload, actor="t")

    from catalog.events.model import ArtifactTagged

    return [
        logged("twice", "1" * 32),
        logged("twice", "1" * 32),  # logged again: created stays the first log's
        logged("pair-a", "2" * 32),
        logged("pair-b", "2" * 32),  # refused: another key's uid
        logged("linked", "4" * 32, plot="store://bench/key-000001"),  # its links: lineage rows
        logged("named-a", "3" * 32),
        CatalogEvent(  # refused: the version belongs to named-a
            project="bench", key="named-b", payload=ArtifactTagged(uid="3" * 32, tag="x"), actor="t"
        ),
    ]


def _bad_logs() -> list[CatalogEvent]:
    """ArtifactLogged events the rules refuse, each for another reason."""
    producer = Producer("client", "t")

    def logged(key: str = "k", project: str = "bench", **kw: object) -> CatalogEvent:
        fields: dict[str, object] = {"uid": "f" * 32, "kind": "artifact", "producer": producer}
        fields.update(kw)
        return CatalogEvent(
            project=project,
            key=key,
            payload=ArtifactLogged(**fields),  # type: ignore[arg-type]
            actor="t",
        )

    return [
        logged(key="bad key!"),
        logged(project="Bad_Project"),
        logged(kind="no-such-kind"),
        logged(spec="[1, 2]"),
        logged(spec="{not json"),
        logged(tag="latest"),
        logged(tag="bad tag!"),
        logged(labels={"bad key!": "v"}),
        logged(labels={"ok": "control\x01char"}),
        logged(labels={f"l{i}": "v" for i in range(101)}),
        logged(key="key-000001", uid="00000000000000000000000000000002"),  # another key's uid
        logged(key="fine", uid="e" * 32),  # and a good one
    ]


def test_projection_in_columns_equals_the_event_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same log projected both ways: identical tables, dead letters and reasons."""
    from bench.events import events, message
    from catalog.consumers.digest import digest
    from catalog.consumers.fold import Fold
    from catalog.consumers.projection import Projection
    from catalog.log import open_log

    codec = _codec()
    stream = list(events(3000))
    for i, bad in enumerate(_bad_logs()):
        stream.insert(200 + 150 * i, bad)
    stream[1000:1000] = _plain_edges()  # in one batch, after the project exists
    plain: list[int] = []
    log_plain = Fold.log_plain
    monkeypatch.setattr(
        Fold, "log_plain", lambda fold, logs: (plain.append(len(logs)), log_plain(fold, logs))
    )
    with open_log(f"file://{tmp_path / 'log.db'}") as log:
        log.append([message(codec, ev) for ev in stream])
        results = []
        for min_batch in (10**9, 0):
            monkeypatch.setattr(columnar, "MIN_BATCH", min_batch)
            with Projection(str(tmp_path / f"p{min_batch}.duckdb")) as proj:
                counts = [
                    (r.applied, r.dead)
                    for r in (proj.apply(log.read({0: o}, 700)) for o in range(0, len(stream), 700))
                ]
                dead = proj.con.execute(
                    'SELECT "offset", reason FROM dead_letters ORDER BY "offset"'
                ).fetchall()
                results.append((digest(proj.con), dead, counts))
    (slow, slow_dead, slow_counts), (fast, fast_dead, fast_counts) = results
    assert fast_counts == slow_counts
    assert sum(a + d for a, d in fast_counts) == len(stream)
    assert len(slow_dead) == 13
    assert fast_dead == slow_dead
    assert fast == slow
    assert sum(plain) > 1000  # most logs took Fold.log_plain's pass


def _with_time(codec: Codec, event: CatalogEvent, micros: int) -> bytes:
    """``event`` encoded with an arbitrary ``occurred_at`` (a datetime cannot hold them all)."""
    import io

    import fastavro

    from catalog.events.model import to_avro

    record = to_avro(event)
    record["occurred_at"] = micros
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, codec.current.plain, record)
    return codec._prefix + buffer.getvalue()


def test_timestamps_python_cannot_hold_are_the_codecs_to_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.consumers.projection import Projection
    from catalog.log import Message, open_log

    codec = _codec()

    def good() -> CatalogEvent:  # a new event id each time
        return _event(ArtifactLogged(uid="a" * 32, kind="artifact", producer=Producer("c", "n")))

    values = [
        _with_time(codec, good(), 2**60),
        _with_time(codec, good(), -(2**60)),
        _with_time(codec, good(), 253_402_300_799_999_999),  # 9999-12-31: fine
        _with_time(codec, good(), -62_135_596_800_000_000),  # year 1: fine
        codec.encode(good()),
    ]
    batch = _compare(values)
    assert batch.fallback.tolist() == [True, True, False, False, False]
    with open_log(f"file://{tmp_path / 'log.db'}") as log:
        log.append([Message("p/k", v) for v in values])
        results = []
        for min_batch in (10**9, 0):
            monkeypatch.setattr(columnar, "MIN_BATCH", min_batch)
            with Projection() as proj:
                result = proj.apply(log.read({0: 0}, 100))
                reasons = proj.con.execute("SELECT reason FROM dead_letters").fetchall()
                results.append((result, sorted(reasons)))
    assert results[0] == results[1]
    assert (results[0][0].applied, results[0][0].dead) == (3, 2)


def test_schemas_the_kernel_does_not_decode_go_event_by_event() -> None:
    record = {"type": "record", "name": "R", "namespace": "x"}
    for fields in (
        [{"name": "d", "type": "double"}],
        [{"name": "b", "type": ["null", "bytes"]}],
        [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}}],
        [{"name": "r", "type": "x.Other"}],
        [{"name": "u", "type": {"type": "array", "items": [record, record]}}],
    ):
        schema = {**record, "fields": fields}
        prefix = b"\xc3\x01" + json.dumps(fields).encode()[:8]
        assert columnar.program(schema, prefix) is None
        assert not columnar.worth_it(1000, 1000, schema, prefix)
    codec = _codec()
    assert columnar.worth_it(1000, 1000, codec.current.schema, codec._prefix)
    assert not columnar.worth_it(1000, 2**31 // 7 + 1, codec.current.schema, codec._prefix)


def test_status_says_where_the_kernel_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built at install time (make venv), beside the module; a changed source is not
    served by a library built from another."""
    assert columnar.status() == f"built: {columnar.library_path()}"
    assert columnar.library_path().parent == Path(native.__file__).parent
    source = tmp_path / "_kernel.c"
    source.write_bytes(native.KERNEL_SOURCE.read_bytes() + b"\n/* changed */\n")
    monkeypatch.setattr(native, "KERNEL_SOURCE", source)
    assert columnar.status().startswith("unavailable (_kernel-")
    monkeypatch.setattr(native, "_KERNEL", None)
    with pytest.raises(OSError, match="reinstall"):
        native.kernel()
    built = native.build(tmp_path / "lib")  # what the build hook does
    assert built.name == native.library_name(source.read_bytes())
    native.Native(built)  # loads
    with pytest.raises(OSError, match="no-such-compiler"):
        native.build(tmp_path / "lib", "no-such-compiler")


@given(
    st.lists(
        st.one_of(st.none(), st.dictionaries(st.text(max_size=6), st.text(max_size=3), max_size=6)),
        max_size=12,
    ),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_sorted_map_sorts_each_map_as_python_does(
    maps: list[dict[str, str] | None], data: st.DataObject
) -> None:
    """The columnar path sorts map entries in Arrow; the event path with ``sorted``."""
    import pyarrow as pa

    from catalog.consumers.columns import sorted_map

    array = pa.array(
        [None if m is None else list(m.items()) for m in maps], pa.map_(pa.string(), pa.string())
    )
    start = data.draw(st.integers(0, len(maps)))
    part = array.slice(start, data.draw(st.integers(0, len(maps) - start)))
    want = [None if m is None else sorted(m) for m in part.to_pylist()]
    assert sorted_map(part).to_pylist() == want


def test_a_lazy_rows_fields_are_the_same_prefetched_or_not() -> None:
    """``LoggedColumns.row``: a row prefetched in one take, and one read value by
    value (a log the batch deletes with ``all_versions``), equal the columns' values."""
    from bench.events import messages
    from catalog.consumers.columns import PAYLOAD_FIELDS, LoggedColumns

    codec = _codec()
    values = [m.value for m in messages(600)]
    extra = ArtifactLogged(
        uid="f" * 32,
        kind="model",
        hash="ab" * 32,
        labels={"b": "2", "a": "1"},
        producer=Producer(kind="run", name="n", uri="u", owner=None),
        sources=(SourceRef(name="s", uri="store://k", uid=None, hash="cd" * 32),),
        extra_data={"plot": "store://p", "other": "s3://b/k"},
        description=None,
        size=None,
    )
    values.append(codec.encode(_event(extra)))
    batch = codec.decode_columns(values)
    assert batch is not None
    logged = LoggedColumns(batch)
    rows = logged.rows.tolist()
    uid_of = {j: logged.struct.field("uid")[int(logged.position[j])].as_py() for j in rows}
    columns = {c: logged.struct.field(name).to_pylist() for c, name in PAYLOAD_FIELDS}

    def expected(j: int) -> dict[str, object]:
        row = {c: columns[c][int(logged.position[j])] for c, _ in PAYLOAD_FIELDS}
        row["labels"], row["extra_data"] = dict(row["labels"]), dict(row["extra_data"])
        return row

    half = set(rows[::2]) | {rows[-1]}
    logged.prefetch({uid_of[j] for j in half})
    assert len(logged._filled) == len(half)
    for j in rows:
        got = logged.row(j)
        assert got.pop("category")
        assert got == expected(j), j
    assert logged._filled == {}  # each prefetched row was taken once


def test_without_the_kernel_the_warning_is_said_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(native, "KERNEL_SOURCE", tmp_path / "_kernel.c")
    (tmp_path / "_kernel.c").write_text("/* never built */\n")
    monkeypatch.setattr(native, "_KERNEL", None)
    monkeypatch.setattr(native, "_AVAILABLE", None)
    with caplog.at_level("DEBUG", logger="catalog.native"):
        for _ in range(3):
            assert not native.available()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "reinstall" in warnings[0].getMessage()
