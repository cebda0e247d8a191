"""A generated Avro binary encoder for the current envelope schema.

The mirror of :mod:`catalog.events.fastdecode`. Every SDK write encodes its
event, and fastavro's generic writer first needs the event as nested dicts
(:func:`catalog.events.model.to_avro`) and then walks the schema for every
value: together about 100 µs an artifact on the reference machine, a fifth
of a batched ``log_artifact``. This module turns the schema into
straight-line Python once — one function per named record, reading the
event's dataclass attributes directly — and compiles it.

It is deliberately strict: it encodes only values whose types are exactly
the ones the schema names (``str``, ``int`` in range, ``bool``, ``None`` for
the null branch, ``dict``, tuples/lists, the payload dataclasses, aware
``datetime``). Anything else raises :class:`Unsupported` (or ``KeyError``
for an unknown payload class, ``UnicodeEncodeError`` for a lone surrogate),
and the codec then encodes the event with fastavro, which either accepts it
(the same bytes) or raises its usual error. Any other exception is a bug
here and propagates. A test encodes every fixture and hypothesis-generated events both
ways and requires identical bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Encoder = Callable[[Any], bytes]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Unsupported(Exception):  # noqa: N818 - a signal to the codec, not an error to users
    """A value the generated encoder does not write; the codec uses fastavro instead."""


_RUNTIME = """
def write_long(out, n):
    if type(n) is not int or not -9223372036854775808 <= n <= 9223372036854775807:
        raise Unsupported(n)
    n = (n << 1) ^ (n >> 63)
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)


def write_int(out, n):
    if type(n) is not int or not -2147483648 <= n <= 2147483647:
        raise Unsupported(n)
    write_long(out, n)


def write_string(out, s):
    if type(s) is not str:
        raise Unsupported(s)
    b = s.encode()
    n = len(b)
    if n < 64:
        out.append(n << 1)
    else:
        write_long(out, n)
    out += b


def write_timestamp_micros(out, t):
    if type(t) is not datetime or t.tzinfo is None:
        raise Unsupported(t)
    d = t - EPOCH
    write_long(out, (d.days * 86400 + d.seconds) * 1000000 + d.microseconds)
"""


class _Gen:
    def __init__(self, payload_classes: dict[str, type[Any]]) -> None:
        self.functions: dict[str, str] = {}
        self.pending: list[tuple[str, dict[str, Any], str]] = []
        self.counter = 0
        self.classes = payload_classes  # full record name -> the dataclass encoding it
        self.scope: dict[str, Any] = {}
        self.unions: list[str] = []

    def var(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @staticmethod
    def record_name(schema: dict[str, Any], namespace: str) -> str:
        name = str(schema["name"])
        return name if "." in name else f"{schema.get('namespace', namespace)}.{name}"

    def function_for(self, schema: Any, namespace: str) -> str:
        """The writer function of a named record (generated on first use)."""
        if isinstance(schema, str):
            full = schema if "." in schema else f"{namespace}.{schema}"
            if full not in self.functions:
                raise ValueError(f"unknown named type {full}")  # pragma: no cover
            return self.functions[full]
        full = self.record_name(schema, namespace)
        if full not in self.functions:
            self.functions[full] = f"write_{full.replace('.', '_')}"
            self.pending.append((full, schema, self.functions[full]))
        return self.functions[full]

    def is_record(self, schema: Any) -> bool:
        if isinstance(schema, dict):
            return schema.get("type") == "record"
        return isinstance(schema, str) and schema not in _PRIMITIVES

    def emit(self, schema: Any, value: str, indent: str, namespace: str) -> list[str]:
        """Lines writing the Python expression ``value`` (a local name) as ``schema``."""
        if isinstance(schema, list):
            return self.emit_union(schema, value, indent, namespace)
        if self.is_record(schema):
            function = self.function_for(schema, namespace)
            return [f"{indent}{function}(out, {value})"]
        if isinstance(schema, str):
            return self.emit_primitive(schema, value, indent)
        kind = schema["type"]
        if kind == "long" and schema.get("logicalType") == "timestamp-micros":
            return [f"{indent}write_timestamp_micros(out, {value})"]
        if kind == "array":
            item = self.var("i")
            return [
                f"{indent}if type({value}) is not tuple and type({value}) is not list:",
                f"{indent}    raise Unsupported({value})",
                f"{indent}if {value}:",
                f"{indent}    write_long(out, len({value}))",
                f"{indent}    for {item} in {value}:",
                *self.emit(schema["items"], item, indent + "        ", namespace),
                f"{indent}out.append(0)",
            ]
        if kind == "map":
            k, v = self.var("k"), self.var("v")
            return [
                f"{indent}if type({value}) is not dict:  # other mappings: fastavro",
                f"{indent}    raise Unsupported({value})",
                f"{indent}if {value}:",
                f"{indent}    write_long(out, len({value}))",
                f"{indent}    for {k}, {v} in {value}.items():",
                f"{indent}        write_string(out, {k})",
                *self.emit(schema["values"], v, indent + "        ", namespace),
                f"{indent}out.append(0)",
            ]
        return self.emit(kind, value, indent, namespace)  # {"type": "string", ...}

    @staticmethod
    def emit_primitive(kind: str, value: str, indent: str) -> list[str]:
        if kind == "string":  # inline: the most common value by far
            return [
                f"{indent}if type({value}) is not str:",
                f"{indent}    raise Unsupported({value})",
                f"{indent}b = {value}.encode()",
                f"{indent}if len(b) < 64:",
                f"{indent}    out.append(len(b) << 1)",
                f"{indent}else:",
                f"{indent}    write_long(out, len(b))",
                f"{indent}out += b",
            ]
        if kind in ("long", "int"):  # small non-negative values inline
            return [
                f"{indent}if type({value}) is int and 0 <= {value} < 64:",
                f"{indent}    out.append({value} << 1)",
                f"{indent}else:",
                f"{indent}    write_{kind}(out, {value})",
            ]
        if kind == "boolean":
            return [
                f"{indent}if type({value}) is not bool:",
                f"{indent}    raise Unsupported({value})",
                f"{indent}out.append(1 if {value} else 0)",
            ]
        if kind == "null":
            return [f"{indent}if {value} is not None:", f"{indent}    raise Unsupported({value})"]
        raise ValueError(f"the generated encoder does not write {kind!r}")  # pragma: no cover

    def emit_union(self, branches: list[Any], value: str, indent: str, namespace: str) -> list[str]:
        if branches == ["null", branches[-1]] and len(branches) == 2:  # an optional value
            return [
                f"{indent}if {value} is None:",
                f"{indent}    out.append(0)",
                f"{indent}else:",
                f"{indent}    out.append(2)",
                *self.emit(branches[1], value, indent + "    ", namespace),
            ]
        if not all(self.is_record(b) for b in branches):  # pragma: no cover - not in our schema
            raise ValueError("the generated encoder writes optional values and record unions")
        table = self.var("branches")
        entries = {}
        for i, branch in enumerate(branches):
            full = (
                self.record_name(branch, namespace)
                if isinstance(branch, dict)
                else (branch if "." in branch else f"{namespace}.{branch}")
            )
            entries[self.classes[full]] = (i << 1, self.function_for(branch, namespace))
        self.scope[table] = entries
        self.unions.append(table)
        index, function = self.var("n"), self.var("w")
        return [
            f"{indent}{index}, {function} = {table}[type({value})]",
            f"{indent}out.append({index})",
            f"{indent}{function}(out, {value})",
        ]

    def record_function(self, full: str, schema: dict[str, Any], function: str) -> list[str]:
        namespace = full.rsplit(".", 1)[0]
        lines = [f"def {function}(out, obj):"]
        cls = self.classes.get(full)
        if cls is not None:  # the exact class, not a look-alike
            self.scope[f"cls_{function}"] = cls
            lines += [f"    if type(obj) is not cls_{function}:", "        raise Unsupported(obj)"]
        for field in schema["fields"]:
            local = f"f_{field['name']}"
            lines.append(f"    {local} = obj.{field['name']}")
            lines += self.emit(field["type"], local, "    ", namespace)
        return lines


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def compile_encoder(schema: dict[str, Any], classes: dict[str, type[Any]]) -> Encoder:
    """A function ``event -> bytes`` (the Avro binary body) for ``schema``.

    ``classes`` maps each record's full name to the dataclass holding it
    (attributes named like the fields). The function raises on any value it
    does not write exactly as fastavro would.
    """
    gen = _Gen(classes)
    namespace = schema.get("namespace", "")
    top = gen.function_for(schema, namespace)
    source: list[str] = [_RUNTIME]
    while gen.pending:
        full, definition, function = gen.pending.pop(0)
        source.append("\n".join(gen.record_function(full, definition, function)))
    source.append(f"def encode(obj):\n    out = bytearray()\n    {top}(out, obj)\n    return out")
    scope: dict[str, Any] = {"datetime": datetime, "EPOCH": _EPOCH, "Unsupported": Unsupported}
    scope.update(gen.scope)
    exec(compile("\n\n\n".join(source), "<catalog.events.fastencode>", "exec"), scope)  # noqa: S102
    for name in gen.unions:  # union tables name their writers: resolve them now
        scope[name] = {cls: (index, scope[fn]) for cls, (index, fn) in scope[name].items()}
    encoder: Encoder = scope["encode"]
    return encoder
