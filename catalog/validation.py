"""Checks for every name, label and time a user can hand the catalog.

Each ``validate_*`` function takes an untrusted value and either returns it
(typed, normalised) or raises a subclass of
:class:`~catalog.errors.InvalidInput` whose ``reason`` says exactly what is
wrong, for example::

    >>> validate_key("model/v1")
    Traceback (most recent call last):
    ...
    catalog.errors.InvalidKey: invalid key 'model/v1': has bad character '/' at position 5; ...

Positions in messages are 0-based indexes into the string.

The name rules mirror MLRun's "Artifacts and Versioning":

=============  ===============================================  ======  ===============
what           pattern (whole string)                           length  error
=============  ===============================================  ======  ===============
artifact key   ``[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?``     1..250  ``InvalidKey``
tag            same alphabet as keys (``latest`` is a tag)      1..63   ``InvalidTag``
project        ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``                1..63   ``InvalidKey``
uid            ``[0-9a-f]+`` (lowercase hex)                    1..64   ``InvalidURI``
label key      ``[<prefix>/]<name>``, Kubernetes-style:         name    ``InvalidLabel``
               name in the key alphabet, prefix a lowercase     1..63,
               DNS subdomain                                    prefix
                                                                ..253
=============  ===============================================  ======  ===============

The patterns are ASCII-only on purpose: look-alike characters such as the
Cyrillic ``а`` or the Kelvin sign ``K`` are refused, so two keys that look
the same on screen are the same key. The ``*_RE`` constants are written with
``^...$`` to match MLRun's source; always use them with ``.fullmatch()``,
because ``$`` also matches before a trailing newline.

Times (:func:`parse_time`) and durations (:func:`parse_duration`) accept the
forms people type on a command line: ISO 8601, ``now``, ``90s`` / ``1h30m``
meaning "that long ago", and unix epoch seconds as numbers. Every time comes
back timezone-aware in UTC.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import overload

from catalog.errors import (
    InvalidInput,
    InvalidKey,
    InvalidLabel,
    InvalidTag,
    InvalidTime,
    InvalidURI,
)

__all__ = [
    "KEY_RE",
    "BIDI_CONTROLS",
    "case_twin",
    "LABEL_NAME_RE",
    "LABEL_PREFIX_RE",
    "MAX_ACTOR_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_LABEL_NAME_LENGTH",
    "MAX_LABEL_PREFIX_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_LABELS",
    "MAX_PROJECT_LENGTH",
    "MAX_TAG_LENGTH",
    "MAX_UID_LENGTH",
    "PROJECT_RE",
    "TAG_RE",
    "UID_RE",
    "LabelFilter",
    "parse_duration",
    "parse_label_args",
    "parse_label_filter",
    "parse_time",
    "parse_whole",
    "control_problem",
    "suggest_key",
    "validate_actor",
    "validate_key",
    "validate_new_tag",
    "validate_label_key",
    "validate_label_value",
    "validate_labels",
    "validate_project",
    "validate_tag",
    "validate_uid",
]

# ---------------------------------------------------------------------- names

KEY_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
"""MLRun's artifact key rule. Tags and label names use the same pattern."""
TAG_RE = KEY_RE
PROJECT_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
"""MLRun's project name rule: a DNS label (lowercase letters, digits, ``-``)."""
UID_RE = re.compile(r"^[0-9a-f]+$")
LABEL_NAME_RE = KEY_RE
LABEL_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
"""The optional ``prefix/`` of a label key: a lowercase DNS subdomain."""

MAX_KEY_LENGTH = 250
MAX_TAG_LENGTH = 63
MAX_PROJECT_LENGTH = 63
MAX_UID_LENGTH = 64
MAX_LABEL_NAME_LENGTH = 63
MAX_LABEL_PREFIX_LENGTH = 253
MAX_LABEL_VALUE_LENGTH = 1024
MAX_LABELS = 100

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_KEY_CHARS = _ALNUM | frozenset("-_.")
_PROJECT_CHARS = _LOWER_ALNUM | frozenset("-")
_PREFIX_CHARS = _LOWER_ALNUM | frozenset("-.")
_HEX = frozenset("0123456789abcdef")

_KEY_ALPHABET = "ASCII letters, digits, '-', '_', '.'"
_EDGE = "a letter or digit"
_LOWER_EDGE = "a lowercase letter or digit"


def _show(ch: str) -> str:
    """Quote one character so that invisible and look-alike ones are obvious.

    ``'/'`` stays ``'/'``; anything outside printable ASCII also gets its code
    point, so a Cyrillic ``'а'`` shows as ``'а' (U+0430)``.
    """
    if " " <= ch <= "~":
        return repr(ch)
    return f"{ch!r} (U+{ord(ch):04X})"


def _type_name(value: object) -> str:
    return type(value).__name__


def _name_problem(
    value: str,
    *,
    pattern: re.Pattern[str],
    chars: frozenset[str],
    alphabet: str,
    edge_chars: frozenset[str],
    edge: str,
    limit: int,
) -> str | None:
    """Say what is wrong with ``value`` as a name, or ``None`` if nothing is.

    The regular expression is the definition; the character-by-character walk
    only exists to turn a failed match into a reason a person can act on.
    """
    if not value:
        return "must not be empty"
    if len(value) > limit:
        return f"is {len(value):,} characters long; at most {limit} are allowed"
    if pattern.fullmatch(value):
        return None
    for position, ch in enumerate(value):
        if ch not in chars:
            return f"has bad character {_show(ch)} at position {position}; allowed: {alphabet}"
    if value[0] not in edge_chars:
        return f"must start with {edge}, not {_show(value[0])}"
    if value[-1] not in edge_chars:
        return f"must end with {edge}, not {_show(value[-1])}"
    return f"must match {pattern.pattern}"  # pragma: no cover - the walk above is exhaustive


def _key_problem(value: str, limit: int) -> str | None:
    return _name_problem(
        value,
        pattern=KEY_RE,
        chars=_KEY_CHARS,
        alphabet=_KEY_ALPHABET,
        edge_chars=_ALNUM,
        edge=_EDGE,
        limit=limit,
    )


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid artifact key, else raise :class:`InvalidKey`.

    A key is 1 to 250 ASCII letters, digits, ``-``, ``_`` and ``.``, starting
    and ending with a letter or digit: ``train-set``, ``model_v2.onnx``.
    Keys never contain ``/`` (the path separator of store URIs), so
    ``../x`` or ``a/b`` cannot smuggle a path into a key.
    """
    if not isinstance(key, str):
        raise InvalidKey(key, f"must be a string, not {_type_name(key)}")
    problem = _key_problem(key, MAX_KEY_LENGTH)
    if problem:
        raise InvalidKey(key, problem)
    return key


def suggest_key(text: str) -> str | None:
    """A valid key that reads like ``text``, or ``None`` if nothing of it is usable.

    Accents are dropped (``équipe.csv`` → ``equipe.csv``), every run of other
    characters outside the key alphabet becomes one ``_`` (``sample with
    spaces.csv`` → ``sample_with_spaces.csv``), and the ends are trimmed to a
    letter or digit. Only a suggestion for a message: keys are never rewritten
    silently.
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    key = re.sub(r"[^-A-Za-z0-9_.]+", "_", plain).strip("-_.")
    key = key[:MAX_KEY_LENGTH].rstrip("-_.")
    return key if KEY_RE.fullmatch(key) else None


def validate_tag(tag: object) -> str:
    """Return ``tag`` if it is a valid tag, else raise :class:`InvalidTag`.

    Tags use the key alphabet and are 1 to 63 characters long. ``latest`` is
    an ordinary, valid tag; the catalog moves it for you.
    """
    if not isinstance(tag, str):
        raise InvalidTag(tag, f"must be a string, not {_type_name(tag)}")
    problem = _key_problem(tag, MAX_TAG_LENGTH)
    if problem:
        raise InvalidTag(tag, problem)
    return tag


def validate_new_tag(tag: object) -> str:
    """:func:`validate_tag`, for a tag about to be put on a version.

    Tags are case-sensitive, as in MLRun (whose database compares tag names
    byte for byte): ``prod`` and ``Prod`` are two tags, and ``iris:Prod``
    does not find ``prod``. So ``latest`` in another case (``LATEST``) would
    be a tag of its own that looks like ``latest`` and never moves: it is
    refused here. A tag that differs only by case from another tag of the
    same key is refused by the projection (:func:`case_twin`), which knows the
    key's tags.
    """
    validate_tag(tag)
    assert isinstance(tag, str)
    if tag != "latest" and tag.lower() == "latest":
        raise InvalidTag(
            tag,
            "differs from latest only by case: tags are case-sensitive, so it would be "
            "another tag, one the catalog never moves (latest names the newest version)",
        )
    return tag


def case_twin(tag: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` (in sorted order) that differs from ``tag`` only by case.

    One key may not carry both ``prod`` and ``PROD``: they would look like one
    tag and name two versions. Names are ASCII, so ``str.lower`` is the fold.
    """
    folded = tag.lower()
    return next((o for o in sorted(others) if o != tag and o.lower() == folded), None)


def validate_project(name: object) -> str:
    """Return ``name`` if it is a valid project name, else raise :class:`InvalidKey`.

    Project names follow MLRun (and DNS labels): 1 to 63 *lowercase* letters,
    digits and ``-``, starting and ending with a letter or digit. Every reason
    starts with "project name" so the message is clear although the error
    class is the key error.
    """
    if not isinstance(name, str):
        raise InvalidKey(name, f"project name must be a string, not {_type_name(name)}")
    problem = _name_problem(
        name,
        pattern=PROJECT_RE,
        chars=_PROJECT_CHARS,
        alphabet="lowercase letters, digits, '-'",
        edge_chars=_LOWER_ALNUM,
        edge=_LOWER_EDGE,
        limit=MAX_PROJECT_LENGTH,
    )
    if problem:
        raise InvalidKey(name, f"project name {problem}")
    return name


_UID_RE = re.compile("[0-9a-f]+")


def validate_uid(uid: object) -> str:
    """Return ``uid`` if it is 1 to 64 lowercase hex digits, else raise :class:`InvalidURI`.

    Uids are content hashes or run ids printed in hex; uppercase is refused
    rather than folded so that one uid has exactly one spelling.
    """
    if isinstance(uid, str) and len(uid) <= MAX_UID_LENGTH and _UID_RE.fullmatch(uid):
        return uid  # the common case, without the per-character loop that explains errors
    if not isinstance(uid, str):
        raise InvalidURI(uid, f"uid must be a string, not {_type_name(uid)}")
    if not uid:
        raise InvalidURI(uid, "uid must not be empty")
    if len(uid) > MAX_UID_LENGTH:
        raise InvalidURI(
            uid, f"uid is {len(uid):,} characters long; at most {MAX_UID_LENGTH} are allowed"
        )
    for position, ch in enumerate(uid):
        if ch not in _HEX:
            raise InvalidURI(
                uid,
                f"uid has bad character {_show(ch)} at position {position}; "
                "allowed: lowercase hex digits 0-9 a-f",
            )
    return uid


# --------------------------------------------------------------------- labels

LabelFilter = list[tuple[str, str | None]]
"""Parsed label filter: ``(key, value)`` pairs, all ANDed; ``None`` means "has the label"."""


def validate_label_key(key: object) -> str:
    """Return ``key`` if it is a valid label key, else raise :class:`InvalidLabel`.

    Label keys are Kubernetes-style: an optional lowercase DNS-subdomain
    prefix (at most 253 characters) and ``/``, then a name that follows the
    artifact-key alphabet (at most 63 characters)::

        owner            name only
        mlrun.org/owner  prefix "mlrun.org", name "owner"
    """
    if isinstance(key, str) and key in _VALID_LABEL_KEYS:
        return key  # the projection validates the same few keys millions of times
    if not isinstance(key, str):
        raise InvalidLabel(key, f"label key must be a string, not {_type_name(key)}")
    if not key:
        raise InvalidLabel(key, "label key must not be empty")
    if key.count("/") > 1:
        raise InvalidLabel(key, "label key may contain at most one '/' (after the prefix)")
    prefix, slash, name = key.rpartition("/")
    if slash:
        problem = _name_problem(
            prefix,
            pattern=LABEL_PREFIX_RE,
            chars=_PREFIX_CHARS,
            alphabet="lowercase letters, digits, '-', '.'",
            edge_chars=_LOWER_ALNUM,
            edge=_LOWER_EDGE,
            limit=MAX_LABEL_PREFIX_LENGTH,
        )
        if problem:
            raise InvalidLabel(key, f"label prefix {problem}")
    problem = _key_problem(name, MAX_LABEL_NAME_LENGTH)
    if problem:
        raise InvalidLabel(key, f"label name {problem}")
    if len(_VALID_LABEL_KEYS) < 100_000:
        _VALID_LABEL_KEYS.add(key)
    return key


_VALID_LABEL_KEYS: set[str] = set()


def validate_label_value(key: str, value: object) -> str:
    """Return ``value`` as a label value string, else raise :class:`InvalidLabel`.

    Strings are kept as they are (the empty string is allowed); ``int``,
    ``float`` and ``bool`` are converted with ``str()`` (``True`` becomes
    ``"True"``); ``None`` and anything else are refused. A value is at most
    1024 characters and holds no control characters (Unicode category Cc:
    NUL, newline, tab, escape ...). ``key`` is only used in the error.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidLabel(key, f"value {value!r} is not a finite number")
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidLabel(key, f"value must be a string, not {_type_name(value)}")
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        raise InvalidLabel(
            key,
            f"value is {len(value):,} characters long; "
            f"at most {MAX_LABEL_VALUE_LENGTH} are allowed",
        )
    problem = control_problem(value)
    if problem:
        raise InvalidLabel(key, f"value has {problem}")
    return value


#: Characters that reorder the text around them on screen (bidirectional controls).
BIDI_CONTROLS = frozenset(
    chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
)


def control_problem(text: str) -> str:
    """ "" if ``text`` holds no control character (Unicode Cc: NUL, newline, escape...)
    and no bidirectional control (U+202E and the like); else what and where."""
    if text.isprintable():  # fast path: neither (both are non-printable)
        return ""
    for position, ch in enumerate(text):
        if unicodedata.category(ch) == "Cc":
            return f"control character {_show(ch)} at position {position}"
        if ch in BIDI_CONTROLS:
            return f"bidirectional control {_show(ch)} at position {position}"
    return ""


#: Longest actor name (a user, a service account, an e-mail address).
MAX_ACTOR_LENGTH = 253


def validate_actor(actor: object) -> str:
    """Return ``actor`` (who acts: ``CATALOG_ACTOR``, the login name) if it is a
    non-empty name of at most 253 printable characters, else :class:`InvalidInput`.

    Control characters would reach terminals raw (``catalog audit``: an escape
    sequence can retitle a window or write the clipboard), and bidirectional
    controls reorder what is shown.
    """
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput(f"invalid actor {actor!r}: give a user or service name")
    if len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidInput(
            f"invalid actor: {len(actor):,} characters, at most {MAX_ACTOR_LENGTH} are allowed"
        )
    problem = control_problem(actor)
    if problem:
        raise InvalidInput(f"invalid actor {actor!r}: it has {problem}")
    return actor


def validate_labels(labels: Mapping[str, object] | None) -> dict[str, str]:
    """Validate a whole label set and return it as a new ``dict[str, str]``.

    ``None`` means no labels. At most 100 labels; each key is checked with
    :func:`validate_label_key` and each value with :func:`validate_label_value`
    (so numbers and booleans come back as strings). Order is preserved.
    """
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidLabel(labels, f"labels must be a mapping, not {_type_name(labels)}")
    if len(labels) > MAX_LABELS:
        raise InvalidLabel(f"{len(labels)} labels", f"more than {MAX_LABELS} labels")
    return {
        validate_label_key(key): validate_label_value(key, value) for key, value in labels.items()
    }


def parse_label_args(items: Iterable[str]) -> dict[str, str]:
    """Parse repeated CLI ``--label KEY=VALUE`` options into a label dict.

    Each item is split at its first ``=``; the value may be empty
    (``--label reviewed=``) and is kept verbatim, spaces included. An item
    without ``=`` is refused, and so is a key given twice, because one of the
    two values would be silently lost. The result is checked like
    :func:`validate_labels`.

    >>> parse_label_args(["team=vision", "stage=prod"])
    {'team': 'vision', 'stage': 'prod'}
    """
    if isinstance(items, str):
        raise InvalidLabel(items, "expected a list of KEY=VALUE strings, not a single string")
    labels: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise InvalidLabel(item, f"expected a KEY=VALUE string, not {_type_name(item)}")
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidLabel(item, "expected KEY=VALUE (missing '=')")
        validate_label_key(key)
        if key in labels:
            raise InvalidLabel(key, "label given more than once")
        labels[key] = value
    return validate_labels(labels)


def _parse_filter_item(item: str) -> tuple[str, str | None]:
    """One ``KEY=VALUE`` or bare ``KEY`` item of a label filter (already trimmed)."""
    key, eq, value = item.partition("=")
    key = key.strip()
    if key.endswith("!"):
        raise InvalidLabel(item, "'!=' is not supported; use KEY=VALUE or KEY")
    validate_label_key(key)
    if not eq:
        return key, None
    return key, validate_label_value(key, value.strip())


def parse_label_filter(
    spec: str | Mapping[str, object] | Iterable[str] | None,
) -> LabelFilter:
    """Parse MLRun's label-filter syntax into ``(key, value_or_None)`` pairs.

    All conditions are ANDed. Three spellings are accepted::

        {"team": "vision", "gpu": None}   dict; None means "has the label"
        ["team=vision", "gpu"]            list of KEY=VALUE or bare KEY
        "team=vision, gpu"                one comma-separated string

    In the two string forms, whitespace around items, keys and values is
    trimmed, empty items are skipped, and ``KEY=`` means "the value is the
    empty string". Use the dict form for a value that contains a comma or
    starts or ends with spaces. Duplicates are kept (``a=1,a=2`` matches
    nothing, as AND says). ``None``, ``""``, ``[]`` and ``{}`` give ``[]``.

    >>> parse_label_filter("team=vision, gpu")
    [('team', 'vision'), ('gpu', None)]
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        items: Iterable[object] = spec.split(",")
    elif isinstance(spec, Mapping):
        result: LabelFilter = []
        for key, value in spec.items():
            validate_label_key(key)
            result.append((key, None if value is None else validate_label_value(key, value)))
        return result
    elif isinstance(spec, Iterable):
        items = spec
    else:
        raise InvalidLabel(
            spec,
            "label filter must be a dict, a list of strings or a comma-separated string, "
            f"not {_type_name(spec)}",
        )
    pairs: LabelFilter = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidLabel(item, f"filter item must be a string, not {_type_name(item)}")
        item = item.strip()
        if item:
            pairs.append(_parse_filter_item(item))
    return pairs


# ------------------------------------------------------------- whole numbers

_WHOLE_RE = re.compile("[0-9]+")


def parse_whole(text: str, lo: int, hi: int, what: str = "value") -> int:
    """``text`` as a whole number from ``lo`` to ``hi``, else :class:`InvalidInput`.

    ASCII digits only, nothing around them: ``int()`` would also take ``" 5"``,
    ``"+5"``, ``"1_000"`` and ``"١"`` (an Arabic-Indic one), and raise a
    ``ValueError`` of its own on ``"²"`` or on more than 4,300 digits. The
    OpenAPI document declares the bounds from the same ``lo`` and ``hi``.
    """
    ok = isinstance(text, str) and _WHOLE_RE.fullmatch(text) is not None
    digits = (text.lstrip("0") or "0") if ok else ""
    if not digits or len(digits) > len(str(hi)) or not lo <= int(digits) <= hi:
        shown = (
            repr(text) if len(str(text)) <= 40 else f"{str(text)[:40]!r}... ({len(text):,} chars)"
        )
        raise InvalidInput(f"{what} must be a whole number from {lo} to {hi}, not {shown}")
    return int(digits)


# ---------------------------------------------------------------------- times

_DURATION_TOKEN_RE = re.compile(r"([0-9]+)([wdhms])")
_UNITS = "wdhms"
_DIGITS = frozenset("0123456789")
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION_FORMS = "whole numbers with units w, d, h, m, s, largest first: 90s, 15m, 1h30m, 2d, 1w"
_TIME_FORMS = (
    "expected an ISO 8601 time (2026-03-03, 2026-03-03T10:00, 2026-03-03T10:00Z, "
    "2026-03-03T10:00+02:00), 'now', a duration meaning that long ago (90s, 15m, 1h30m, "
    "2d, 1w), or unix epoch seconds as a number"
)


def _duration_problem(text: str) -> tuple[timedelta | None, str]:
    """Parse a duration; return ``(delta, "")`` or ``(None, reason)``."""
    if not text:
        return None, f"empty duration; expected {_DURATION_FORMS}"
    position = 0
    last_unit = -1
    seconds = 0
    for match in _DURATION_TOKEN_RE.finditer(text):
        if match.start() != position:
            break
        unit = _UNITS.index(match.group(2))
        if unit <= last_unit:
            return None, f"units must go from largest to smallest, each once; {_DURATION_FORMS}"
        last_unit = unit
        digits = match.group(1)
        if len(digits) > 15:
            return None, "duration is too large"
        seconds += int(digits) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text):
        return None, f"cannot read {text[position:]!r}; expected {_DURATION_FORMS}"
    try:
        return timedelta(seconds=seconds), ""
    except OverflowError:
        return None, "duration is too large"


def parse_duration(text: str | timedelta) -> timedelta:
    """Parse a duration such as ``90s``, ``15m``, ``1h30m``, ``2d`` or ``1w``.

    Units are ``w`` (weeks), ``d`` (days), ``h`` (hours), ``m`` (minutes, not
    months) and ``s`` (seconds), with whole numbers, written largest first,
    each unit at most once, no spaces inside. ``0s`` is a valid zero duration.
    Surrounding whitespace is ignored. A ``timedelta`` is returned unchanged
    if it is not negative. Raises :class:`InvalidTime`.
    """
    if isinstance(text, timedelta):
        if text < timedelta(0):
            raise InvalidTime(text, "duration must not be negative")
        return text
    if not isinstance(text, str):
        raise InvalidTime(text, f"duration must be a string, not {_type_name(text)}")
    delta, problem = _duration_problem(text.strip())
    if delta is None:
        raise InvalidTime(text, problem)
    return delta


def _as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken to be UTC; aware ones are converted to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@overload
def parse_time(value: None, *, now: datetime | None = None) -> None: ...
@overload
def parse_time(
    value: str | datetime | date | int | float, *, now: datetime | None = None
) -> datetime: ...
def parse_time(
    value: str | datetime | date | int | float | None, *, now: datetime | None = None
) -> datetime | None:
    """Turn what a user typed into a timezone-aware UTC ``datetime``.

    ===========================  ==========================================
    input                        result
    ===========================  ==========================================
    ``None``                     ``None`` (no bound)
    ``datetime``                 itself in UTC; naive means UTC already
    ``date``                     midnight UTC of that day
    ``"2026-03-03"``             ISO 8601, with optional time, ``Z`` or an
    ``"2026-03-03T10:00+02:00"`` offset; naive means UTC
    ``"now"``                    ``now``
    ``"90s"``, ``"1h30m"``       ``now`` minus that duration (see
                                 :func:`parse_duration`)
    ``1767225600`` (int/float)   unix epoch seconds
    ===========================  ==========================================

    ``now`` defaults to the current time; pass it to make results
    reproducible. Strings are stripped of surrounding whitespace. Digit
    strings are read as ISO 8601 (``"20260303"`` is a date), never as epoch
    seconds. Anything else raises :class:`InvalidTime` listing these forms.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidTime(value, f"a bool is not a time; {_TIME_FORMS}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidTime(value, "epoch seconds must be a finite number")
    try:
        if isinstance(value, datetime):
            return _as_utc(value)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidTime(value, "out of the supported range (years 1 to 9999)") from None
    if not isinstance(value, str):
        raise InvalidTime(value, f"must be a string, number or datetime, not {_type_name(value)}")

    text = value.strip()
    current = datetime.now(UTC) if now is None else _as_utc(now)
    if text.lower() == "now":
        return current
    if text and text[0] in _DIGITS and text[-1] in _UNIT_SECONDS:
        delta, problem = _duration_problem(text)
        if delta is None:
            raise InvalidTime(value, problem)
        try:
            return current - delta
        except OverflowError:
            raise InvalidTime(value, "that long ago is before year 1") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTime(value, _TIME_FORMS) from None
    try:
        return _as_utc(parsed)
    except OverflowError:
        raise InvalidTime(value, "out of the supported range (years 1 to 9999)") from None
