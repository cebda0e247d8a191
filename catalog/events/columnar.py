"""Columnar decoding: a batch of encoded events to Arrow columns, in compiled code.

The projection's per-event cost was dominated by Python work, decoding first:
decoding one ``ArtifactLogged`` with its Python objects costs tens of µs
(fastavro's record, then the event). This module decodes a whole batch at once in
compiled code, ~10x faster, into Arrow arrays: the way to a projection that
never touches one event at a time in Python.

How it works:

- :func:`compile_program` flattens the envelope schema into a small program
  of opcodes (read a string, a nullable long, a union branch, loop over a
  map's items, write a piece of JSON...). The kernel, ``_kernel.c``, is an
  interpreter of such programs: one fixed C file with no Python API, built
  with the system C compiler (``$CC``, default ``cc``) when the package is
  installed (:mod:`catalog.native`), and loaded with ctypes. A new schema version needs no new code
  (one using what the kernel does not decode — doubles, bytes, enums, named
  references — is decoded event by event).
  Without a compiler every batch decodes event by event, as before (a
  warning says so once).
- The kernel walks each record once. Every primitive value is stored as a
  pair (start and length of a string in the batch buffer, or an integer and a
  presence flag) in a matrix per *level*: level 0 holds a row per record,
  each array or map gets its own level of items. While it walks the payload it
  also writes the payload's JSON text, byte for byte what
  ``json.dumps(payload, ensure_ascii=False)`` writes for the dict the Python
  decoder returns (the ``events.payload`` column).
- Anything the kernel is not sure to decode exactly as the Python decoder —
  a foreign header, malformed or truncated bytes, invalid UTF-8, a trailing
  byte, an integer wider than 64 bits, a map with a repeated key, a
  timestamp outside Python's datetime range — marks the
  record *fallback*: the caller decodes that one with the codec, which either
  decodes it or produces the precise error that dead-letters it. So the fast
  path never changes a result; it only makes the common case cheap.
- :func:`decode_batch` builds the Arrow arrays from that storage (strings
  gathered into Arrow buffers by another compiled loop; no Python per value),
  each payload type over its own records only.
- Batches under :data:`MIN_BATCH` records decode event by event.

Why C and not numba (tried first): numba added ~170 MB of RSS (LLVM) and
~1.5 s to every process that used it, which broke the replay's 500 MB
budget; the C library adds ~0 MB and loads in milliseconds.

Tests decode fixtures, hypothesis-generated events and corrupted bytes with
both decoders and require identical events and identical JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

# The compiled kernel is loaded by catalog.native (the Kafka reader uses it too);
# these names are re-exported for the projection and `catalog config`.
from catalog.native import Native, available, kernel, library_path, status

__all__ = ["Native", "available", "kernel", "library_path", "status"]

JSON_FIELD = "payload"  # the envelope field whose JSON text the kernel writes

# ------------------------------------------------------------- output layout


@dataclass
class Leaf:
    """A primitive value: where it is stored and how to type it in Arrow."""

    kind: str  # string, long, int, boolean
    level: int
    col: int


@dataclass
class Record:
    name: str
    fields: list[tuple[str, Any]]  # (field name, node)


@dataclass
class Array:
    level: int  # where the (first, count) pair is stored
    col: int
    child: int  # the items' level
    item: Any


@dataclass
class Map:
    level: int
    col: int
    child: int
    key: Leaf
    value: Any


@dataclass
class Union:
    """A union of records (the payload): the branch index is stored as a leaf."""

    branch: Leaf
    branches: list[tuple[str, Any]]  # (record full name, Record)


@dataclass
class Nullable:
    """``["null", primitive]``: the primitive's leaf is null when absent."""

    inner: Leaf


@dataclass
class Program:
    """The schema flattened into the kernel's opcodes, and the layout of what it stores."""

    ops: list[list[int]] = field(default_factory=list)  # rows of (op, a, b, c, d)
    jumps: list[int] = field(default_factory=list)
    # fixed at these offsets in the kernel: null, true, false, ", "
    literals: bytearray = field(default_factory=lambda: bytearray(b"nulltruefalse, "))
    columns: list[int] = field(default_factory=lambda: [0])  # per level
    root: Any = None
    #: per level, items per record in the last batch decoded (sizes the next one)
    items_per_record: Any = None

    def op(self, code: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> int:
        self.ops.append([code, a, b, c, d])
        return len(self.ops) - 1

    def lit(self, text: str) -> None:
        data = text.encode("utf-8")
        offset = self.literals.find(data)
        if offset < 0:
            offset = len(self.literals)
            self.literals += data
        self.op(K.LIT, offset, len(data))

    def leaf(self, kind: str, level: int) -> Leaf:
        self.columns[level] += 1
        return Leaf(kind, level, self.columns[level] - 1)

    def new_level(self) -> int:
        self.columns.append(0)
        return len(self.columns) - 1


class K:
    """The kernel's opcodes (the enum at the top of ``_kernel.c``)."""

    END, STR, LONG, BOOL, NSTR, NLONG, NBOOL, LIT, UNION, JUMP = range(10)
    SEQ, ITEM, NEXT, DUP, JSON_ON, JSON_OFF, SEQ_DONE = range(10, 17)


_PRIMITIVE_OPS = {
    "string": (K.STR, K.NSTR),
    "long": (K.LONG, K.NLONG),
    "int": (K.LONG, K.NLONG),
    "boolean": (K.BOOL, K.NBOOL),
}
MAX_LEVELS = 64  # the kernel's limit: one level for the records, one per array or map


def _primitive(schema: Any) -> tuple[Any, int]:
    """A primitive schema without its logical type (the same bytes), and the check to
    apply: 1 for ``timestamp-micros``, whose value must fit Python's datetime (years
    1 to 9999; the kernel leaves others to the codec, which refuses them), else 0."""
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVE_OPS:
        check = int(schema.get("logicalType") == "timestamp-micros" and schema["type"] == "long")
        return schema["type"], check
    return schema, 0


def _compile(prog: Program, schema: Any, level: int, js: bool) -> Any:
    """Append the ops reading one ``schema`` value at ``level``; its output node."""
    schema, check = _primitive(schema)
    if isinstance(schema, str):
        if schema == "null":
            if js:
                prog.lit("null")
            return None
        if schema not in _PRIMITIVE_OPS:
            raise ValueError(f"columnar decoding does not support {schema!r}")
        leaf = prog.leaf(schema, level)
        prog.op(_PRIMITIVE_OPS[schema][0], level, leaf.col, check)
        return leaf
    if isinstance(schema, list):
        if len(schema) == 2 and schema[0] == "null":
            inner, check = _primitive(schema[1])
            if isinstance(inner, str) and inner in _PRIMITIVE_OPS:
                leaf = prog.leaf(inner, level)
                prog.op(_PRIMITIVE_OPS[inner][1], level, leaf.col, check)
                return Nullable(leaf)
        if level != 0:
            raise ValueError("columnar decoding supports unions of records at the top only")
        if not all(isinstance(b, dict) and b.get("type") == "record" for b in schema):
            raise ValueError("columnar decoding supports unions of records or ['null', primitive]")
        leaf = prog.leaf("int", level)
        first = len(prog.jumps)
        prog.jumps += [0] * len(schema)
        prog.op(K.UNION, level, leaf.col, first, len(schema))
        exits, nodes = [], []
        for i, branch in enumerate(schema):
            prog.jumps[first + i] = len(prog.ops)
            nodes.append(
                (
                    f"{branch.get('namespace', 'catalog')}.{branch['name']}",
                    _compile(prog, branch, level, js),
                )
            )
            exits.append(prog.op(K.JUMP))
        for pc in exits:
            prog.ops[pc][1] = len(prog.ops)
        return Union(leaf, nodes)
    kind = schema["type"]
    if kind == "record":
        fields = []
        for i, f in enumerate(schema["fields"]):
            if js:
                prog.lit(("{" if i == 0 else ", ") + json.dumps(f["name"]) + ": ")
            json_here = level == 0 and not js and f["name"] == JSON_FIELD
            if json_here:
                prog.op(K.JSON_ON)
            fields.append((f["name"], _compile(prog, f["type"], level, js or json_here)))
            if json_here:
                prog.op(K.JSON_OFF)
        if js:
            prog.lit("}" if schema["fields"] else "{}")
        return Record(schema["name"], fields)
    if kind in ("array", "map"):
        holder = prog.leaf("list", level)
        child = prog.new_level()
        if js:
            prog.lit("[" if kind == "array" else "{")
        seq = prog.op(K.SEQ, level, holder.col, child)
        item = prog.op(K.ITEM)
        if kind == "array":
            if schema["items"] == "null":
                raise ValueError("columnar decoding does not support arrays of null")
            node: Any = _compile(prog, schema["items"], child, js)
        else:
            key = _compile(prog, "string", child, js)
            prog.op(K.DUP, child)
            if js:
                prog.lit(": ")
            value = _compile(prog, schema["values"], child, js)
        prog.op(K.NEXT, item)
        done = prog.op(K.SEQ_DONE, level, holder.col)
        prog.ops[seq][4] = done
        prog.ops[item][1] = done
        if js:
            prog.lit("]" if kind == "array" else "}")
        if kind == "array":
            return Array(level, holder.col, child, node)
        return Map(level, holder.col, child, key, value)
    raise ValueError(f"columnar decoding does not support {schema!r}")


def compile_program(schema: dict[str, Any]) -> Program:
    """The kernel program decoding ``schema`` (the envelope) to columns and payload JSON."""
    prog = Program()
    prog.root = _compile(prog, schema, 0, False)
    prog.op(K.END)
    if len(prog.columns) > MAX_LEVELS:
        raise ValueError(f"more than {MAX_LEVELS - 1} arrays and maps")
    return prog


# ------------------------------------------------------------------- decoding


@dataclass
class Batch:
    """A decoded batch: Arrow columns, and the records the kernel left to the codec."""

    size: int
    #: True where the record must be decoded by the codec (its columns are null)
    fallback: Any  # numpy bool array
    #: envelope fields by name (``occurred_at`` as int64 microseconds)
    envelope: dict[str, Any]
    #: per payload record full name: (the records of that type, their struct array)
    payloads: dict[str, tuple[Any, Any]]
    #: the payload's JSON text per record (null for fallback records)
    payload_json: Any
    #: the output tree (names the map fields, whose Arrow values are pairs)
    root: Any = None
    _envelope_lists: dict[str, list[Any]] | None = None

    def forget_lists(self) -> None:
        """Drop the lists of :meth:`envelope_lists` (after a column was added)."""
        self._envelope_lists = None

    def envelope_lists(self) -> dict[str, list[Any]]:
        """The envelope columns as Python lists (made once)."""
        if self._envelope_lists is None:
            self._envelope_lists = {k: v.to_pylist() for k, v in self.envelope.items()}
        return self._envelope_lists

    def events(self, skip: Any = None) -> list[Any]:
        """The :class:`CatalogEvent` of each record, None where it fell back (or ``skip``).

        Built column by column: one ``to_pylist`` per field, then the same
        construction the codec's :func:`~catalog.events.model.from_avro` does.
        """
        from datetime import timedelta

        import pyarrow as pa

        from catalog.events.model import _EPOCH, _NESTED, PAYLOAD_TYPES, CatalogEvent, _build

        new = object.__new__
        payload: list[Any] = [None] * self.size
        union = next(node for _, node in self.root.fields if isinstance(node, Union))
        records = dict(union.branches)
        for full, (rows, struct) in self.payloads.items():
            if skip is not None:
                keep = ~skip[rows]
                if not keep.any():
                    continue
                if not keep.all():
                    rows, struct = rows[keep], struct.filter(pa.array(keep))
            name = full.rsplit(".", 1)[-1]
            cls = PAYLOAD_TYPES[name]
            fields = records[full].fields
            names = [f for f, _ in fields]
            columns = []
            for (fname, node), child in zip(fields, struct.flatten(), strict=True):
                values = child.to_pylist()
                nested = _NESTED.get((name, fname))
                if isinstance(node, Map):
                    values = [dict(v) for v in values]
                elif isinstance(node, Array):
                    if nested is None:
                        values = [tuple(v) for v in values]
                    else:
                        values = [tuple(_build(nested, d) for d in v) for v in values]
                elif isinstance(node, Record):
                    assert nested is not None, (name, fname)
                    values = [_build(nested, d) for d in values]
                columns.append(values)
            for r, values in zip(rows.tolist(), zip(*columns, strict=True), strict=True):
                obj = new(cls)
                obj.__dict__.update(zip(names, values, strict=True))
                payload[r] = obj
        env = self.envelope_lists()
        out: list[Any] = [None] * self.size
        epoch = _EPOCH
        for r, (p, project, key, actor, event_id, micros, run_uid) in enumerate(
            zip(
                payload,
                env["project"],
                env["key"],
                env["actor"],
                env["event_id"],
                env["occurred_at"],
                env["run_uid"],
                strict=True,
            )
        ):
            if p is None:
                continue
            obj = new(CatalogEvent)
            obj.__dict__.update(
                project=project,
                key=key,
                payload=p,
                actor=actor,
                event_id=event_id,
                occurred_at=epoch + timedelta(microseconds=micros),
                run_uid=run_uid,
            )
            out[r] = obj
        return out


#: batches smaller than this decode record by record
MIN_BATCH = 256


def worth_it(batch: int, size: int, schema: dict[str, Any], prefix: bytes) -> bool:
    """Whether to decode ``batch`` records of ``size`` bytes, written with ``schema``, in columns.

    No when the batch is small, when the kernel cannot be built here, when
    the schema uses what the kernel does not decode (doubles, bytes, enums,
    fixed, named references, unions of records below the top), or when the
    batch's strings could pass the 2 GiB of an Arrow string column.
    """
    return (
        batch >= MIN_BATCH
        and batch > 0
        and size * 7 < 2**31
        and program(schema, prefix) is not None
        and available()
    )


_PROGRAM: dict[bytes, tuple[Program, tuple[Any, ...]] | None] = {}
_logger = logging.getLogger("catalog.events")


def program(schema: dict[str, Any], prefix: bytes) -> tuple[Program, tuple[Any, ...]] | None:
    """The program for ``schema`` and its arrays, built once per schema; None if unsupported."""
    import numpy as np

    if prefix not in _PROGRAM:
        try:
            prog = compile_program(_plain_schema(schema))
        except (ValueError, TypeError, KeyError) as exc:
            _logger.info("schema %s decodes event by event: %s", prefix[2:].hex(), exc)
            _PROGRAM[prefix] = None
            return None
        prog.items_per_record = np.full(len(prog.columns), 0.5)
        arrays = (
            np.frombuffer(prefix, np.uint8),
            np.array(prog.ops, np.int64),
            np.array(prog.jumps or [0], np.int64),
            np.frombuffer(bytes(prog.literals), np.uint8),
        )
        _PROGRAM[prefix] = (prog, arrays)
    return _PROGRAM[prefix]


def _plain_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _plain_schema(v) for k, v in schema.items() if k not in ("doc", "default")}
    if isinstance(schema, list):
        return [_plain_schema(v) for v in schema]
    return schema


def decode_batch(values: list[bytes], schema: dict[str, Any], prefix: bytes) -> Batch:
    """Decode encoded events written with ``schema`` (whose header is ``prefix``) to columns.

    Records with another header, or that the kernel leaves to the codec, are
    marked in ``Batch.fallback``.
    """
    import numpy as np

    k = kernel()
    compiled = program(schema, prefix)
    if compiled is None:
        raise ValueError("this schema is decoded event by event (see worth_it)")
    prog, (prefix_array, ops, jumps, literals) = compiled
    n = len(values)
    data = b"".join(values)
    buf = np.frombuffer(data, np.uint8) if data else np.zeros(1, np.uint8)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, n), out=starts[1:])
    ncols = np.array(prog.columns, np.int64)
    # items per level: as many per record as in the previous batch, with a margin
    cap = (prog.items_per_record * n * 1.25).astype(np.int64) + 16
    cap[0] = n
    status = np.ones(n, np.int8)
    jstart = np.zeros(n, np.int64)
    jlen = np.zeros(n, np.int64)
    counter = np.zeros(len(ncols), np.int64)
    J = np.empty(2 * len(data) + 256 * n + 64, np.uint8)
    jc = np.zeros(3, np.int64)  # JSON write position, "full" flag, record to resume at
    P, Q, base = _storage(ncols, cap)
    while (
        k.decode(
            buf,
            starts,
            prefix_array,
            ops,
            jumps,
            literals,
            P,
            Q,
            base,
            ncols,
            cap,
            counter,
            status,
            jstart,
            jlen,
            J,
            jc,
        )
        < n
    ):
        if jc[1] == 1:  # the JSON buffer is full
            J = np.concatenate([J, np.empty(len(J), np.uint8)])
        else:  # an item level is full: double them all, keep what is decoded
            grown = cap.copy()
            grown[1:] *= 2
            P2, Q2, base2 = _storage(ncols, grown)
            for level in range(len(ncols)):
                rows = int(counter[level] if level else n) * int(ncols[level])
                P2[base2[level] : base2[level] + rows] = P[base[level] : base[level] + rows]
                Q2[base2[level] : base2[level] + rows] = Q[base[level] : base[level] + rows]
            P, Q, base, cap = P2, Q2, base2, grown
        jc[1] = 0
    prog.items_per_record = np.maximum(counter / max(n, 1), 0.05)
    fallback = status != 0
    build = _Builder(k, buf, P, Q, base, ncols, counter, n)
    envelope: dict[str, Any] = {}
    payloads: dict[str, Any] = {}
    valid = ~fallback
    for name, node in prog.root.fields:
        if isinstance(node, Union):
            branch = np.where(fallback, -1, build.P[0][:, node.branch.col])
            for i, (full, record) in enumerate(node.branches):
                of_type = np.flatnonzero(branch == i)
                if len(of_type):
                    ones = np.ones(len(of_type), bool)
                    payloads[full] = (of_type, build.node(record, 0, ones, of_type))
        else:
            envelope[name] = build.node(node, 0, valid)
    payload_json = build.strings(J, jstart, jlen, valid)
    return Batch(n, fallback, envelope, payloads, payload_json, prog.root)


def _storage(ncols: Any, cap: Any) -> tuple[Any, Any, Any]:
    import numpy as np

    sizes = ncols * cap
    base = np.zeros(len(sizes), np.int64)
    np.cumsum(sizes[:-1], out=base[1:])
    total = int(sizes.sum())
    return np.zeros(total, np.int64), np.full(total, -1, np.int64), base


class _Builder:
    """Arrow arrays from the kernel's storage (compiled loops; no Python per value)."""

    def __init__(
        self, k: Any, buf: Any, P: Any, Q: Any, base: Any, ncols: Any, counter: Any, n: int
    ) -> None:
        import numpy as np

        self.np = np
        self.k = k
        self.buf = buf
        sizes = [n] + [int(c) for c in counter[1:]]
        self.P = [
            P[base[i] : base[i] + sizes[i] * ncols[i]].reshape(sizes[i], ncols[i])
            for i in range(len(sizes))
        ]
        self.Q = [
            Q[base[i] : base[i] + sizes[i] * ncols[i]].reshape(sizes[i], ncols[i])
            for i in range(len(sizes))
        ]

    def strings(self, buf: Any, starts: Any, lengths: Any, valid: Any) -> Any:
        import pyarrow as pa

        np = self.np
        valid = valid & (lengths >= 0)
        total = int(lengths[valid].sum())
        if total >= 2**31:
            raise OverflowError("a batch's strings exceed 2 GiB; use smaller batches")
        offsets = np.empty(len(valid) + 1, np.int32)
        data = np.empty(max(total, 1), np.uint8)
        self.k.gather(buf, starts, lengths, valid, offsets, data)
        nulls = int(len(valid) - valid.sum())
        return pa.StringArray.from_buffers(
            len(valid),
            pa.py_buffer(offsets),
            pa.py_buffer(data),
            pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None,
            nulls,
        )

    def node(self, node: Any, level: int, valid: Any, rows: Any = None) -> Any:
        """The Arrow array of ``node`` at ``level`` (level-0 ``rows`` only, if given)."""
        import pyarrow as pa

        np = self.np
        P, Q = self.P[level], self.Q[level]
        if isinstance(node, Nullable):
            node = node.inner
        if isinstance(node, Leaf):
            p = P[:, node.col] if rows is None else P[rows, node.col]
            q = Q[:, node.col] if rows is None else Q[rows, node.col]
            if node.kind == "string":
                return self.strings(
                    self.buf, np.ascontiguousarray(p), np.ascontiguousarray(q), valid
                )
            present = valid & (q >= 0)
            mask = None if present.all() else ~present
            if node.kind == "boolean":
                return pa.array(p.astype(bool), mask=mask)
            return pa.array(p, pa.int64(), mask=mask)
        if isinstance(node, Record):
            children = [self.node(child, level, valid, rows) for _, child in node.fields]
            names = [name for name, _ in node.fields]
            mask = None if valid.all() else pa.array(~valid)
            return pa.StructArray.from_arrays(children, names, mask=mask)
        if isinstance(node, Array | Map):
            q = Q[:, node.col] if rows is None else Q[rows, node.col]
            present = valid & (q >= 0)
            offsets = np.empty(len(present) + 1, np.int32)
            self.k.list_offsets(np.ascontiguousarray(q), present, offsets)
            child_valid = np.ones(self.P[node.child].shape[0], bool)
            mask = None if present.all() else pa.array(~present)
            if isinstance(node, Array):
                items = self.node(node.item, node.child, child_valid)
                return pa.ListArray.from_arrays(pa.array(offsets), items, mask=mask)
            keys = self.node(node.key, node.child, child_valid)
            values = self.node(node.value, node.child, child_valid)
            return pa.MapArray.from_arrays(pa.array(offsets), keys, values, mask=mask)
        raise TypeError(f"no Arrow form for {node!r}")  # pragma: no cover
