"""Names, labels, label filters and times: what is accepted, what is refused, and why."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.errors import (
    InvalidInput,
    InvalidKey,
    InvalidLabel,
    InvalidTag,
    InvalidTime,
    InvalidURI,
)
from catalog.validation import (
    KEY_RE,
    parse_duration,
    parse_label_args,
    parse_label_filter,
    parse_time,
    suggest_key,
    validate_key,
    validate_label_key,
    validate_label_value,
    validate_labels,
    validate_project,
    validate_tag,
    validate_uid,
)

NOW = datetime(2026, 3, 3, 12, 0, 0, tzinfo=UTC)

# Strings that must never become a key, tag, project or label name.
HOSTILE = [
    "../x",
    "..",
    ".",
    "a/b",
    "/abs",
    "a\\b",
    "a\x00b",
    "\x00",
    "a\nb",
    "a\n",  # `$` matches before a trailing newline; fullmatch must not
    "a b",
    " a",
    "a ",
    "a\tb",
    "\u043a\u0435y",  # Cyrillic "ке" + Latin "y": looks like "key"
    "\u212a",  # KELVIN SIGN, folds to "k" under IGNORECASE
    "\uff41",  # FULLWIDTH LATIN SMALL LETTER A
    "\u00e9t\u00e9",  # été
    "a\u200bb",  # zero-width space
    "a:b",
    "a@b",
    "a#b",
    "a^b",
    "a*",
    "x" * 300,
    "",
]


# ----------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "key",
    ["a", "A", "0", "model", "Model_v2.onnx", "train-set", "a.b-c_d", "9lives", "x" * 250],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key
    assert KEY_RE.fullmatch(key)


@pytest.mark.parametrize("key", HOSTILE)
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey) as info:
        validate_key(key)
    assert info.value.key == key
    assert info.value.reason


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 251, "is 251 characters long; at most 250 are allowed"),
        ("x" * 300, "is 300 characters long"),
        ("a/b", "bad character '/' at position 1"),
        ("ab\x00", "bad character '\\x00' (U+0000) at position 2"),
        ("\u043ay", "bad character '\u043a' (U+043A) at position 0"),
        ("-a", "must start with a letter or digit, not '-'"),
        ("_a", "must start with a letter or digit"),
        ("a.", "must end with a letter or digit, not '.'"),
        ("..", "must start with a letter or digit"),
        ("a\n", "bad character '\\n' (U+000A) at position 1"),
    ],
)
def test_key_reasons_name_the_problem(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey) as info:
        validate_key(key)
    assert reason in info.value.reason
    assert reason in str(info.value)


@pytest.mark.parametrize("key", [None, 1, b"abc", ["a"], 1.5])
def test_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(InvalidKey, match="must be a string"):
        validate_key(key)


def test_invalid_key_is_a_value_error_with_exit_code_2() -> None:
    with pytest.raises(ValueError) as info:
        validate_key("a/b")
    assert isinstance(info.value, InvalidInput)
    assert info.value.exit_code == 2
    assert info.value.status == 400


# ----------------------------------------------------------------------- tags


@pytest.mark.parametrize("tag", ["latest", "v1", "prod", "v1.2.3", "Release_2", "x" * 63])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 64, "is 64 characters long; at most 63"),
        ("v 1", "bad character ' ' at position 1"),
        ("v1-", "must end with a letter or digit"),
        ("-v1", "must start with a letter or digit"),
        ("a:b", "bad character ':'"),
        (None, "must be a string, not NoneType"),
    ],
)
def test_bad_tags(tag: object, reason: str) -> None:
    with pytest.raises(InvalidTag) as info:
        validate_tag(tag)
    assert reason in info.value.reason
    assert info.value.tag == tag


@pytest.mark.parametrize("tag", HOSTILE)
def test_hostile_tags_are_refused(tag: str) -> None:
    with pytest.raises(InvalidTag):
        validate_tag(tag)


# ------------------------------------------------------------------- projects


@pytest.mark.parametrize("name", ["default", "iris", "my-project", "p1", "0", "a" * 63])
def test_valid_projects(name: str) -> None:
    assert validate_project(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "project name must not be empty"),
        ("a" * 64, "project name is 64 characters long; at most 63"),
        ("Iris", "project name has bad character 'I' at position 0; allowed: lowercase"),
        ("my_project", "project name has bad character '_' at position 2"),
        ("my.project", "project name has bad character '.'"),
        ("-iris", "project name must start with a lowercase letter or digit"),
        ("iris-", "project name must end with a lowercase letter or digit"),
        (3, "project name must be a string, not int"),
    ],
)
def test_bad_projects(name: object, reason: str) -> None:
    with pytest.raises(InvalidKey) as info:
        validate_project(name)
    assert reason in info.value.reason
    assert "project" in str(info.value)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_projects_are_refused(name: str) -> None:
    with pytest.raises(InvalidKey, match="project name"):
        validate_project(name)


# ----------------------------------------------------------------------- uids


@pytest.mark.parametrize("uid", ["0", "abc123", "f" * 32, "0" * 40, "a" * 64])
def test_valid_uids(uid: str) -> None:
    assert validate_uid(uid) == uid


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        ("", "uid must not be empty"),
        ("a" * 65, "uid is 65 characters long; at most 64"),
        ("ABC", "uid has bad character 'A' at position 0; allowed: lowercase hex"),
        ("abcg", "bad character 'g' at position 3"),
        ("12 3", "bad character ' '"),
        ("\uff10", "(U+FF10)"),  # FULLWIDTH DIGIT ZERO
        (12, "uid must be a string, not int"),
    ],
)
def test_bad_uids(uid: object, reason: str) -> None:
    with pytest.raises(InvalidURI) as info:
        validate_uid(uid)
    assert reason in info.value.reason
    assert info.value.uri == uid


# --------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "key",
    [
        "owner",
        "Owner_2",
        "app.kubernetes.io/name",
        "mlrun.org/owner",
        "a/b",
        "x" * 63,
        "p" * 253 + "/" + "n" * 63,
    ],
)
def test_valid_label_keys(key: str) -> None:
    assert validate_label_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "label key must not be empty"),
        ("x" * 64, "label name is 64 characters long; at most 63"),
        ("a/b/c", "at most one '/'"),
        ("../x", "label prefix must start with a lowercase letter or digit, not '.'"),
        ("/x", "label prefix must not be empty"),
        ("x/", "label name must not be empty"),
        ("Mlrun.org/owner", "label prefix has bad character 'M'"),
        ("my_org/owner", "label prefix has bad character '_'"),
        ("-org/owner", "label prefix must start with a lowercase letter or digit"),
        ("p" * 254 + "/n", "label prefix is 254 characters long; at most 253"),
        ("org/-owner", "label name must start with a letter or digit"),
        ("own er", "label name has bad character ' '"),
        ("own\x00er", "label name has bad character '\\x00' (U+0000)"),
        (1, "label key must be a string, not int"),
    ],
)
def test_bad_label_keys(key: object, reason: str) -> None:
    with pytest.raises(InvalidLabel) as info:
        validate_label_key(key)
    assert reason in info.value.reason
    assert info.value.label == key


def test_validate_labels_converts_scalars_and_keeps_order() -> None:
    labels = {"b": "x", "a": 1, "c": 2.5, "d": True, "e": "", "f": "with spaces, commas = ok"}
    assert validate_labels(labels) == {
        "b": "x",
        "a": "1",
        "c": "2.5",
        "d": "True",
        "e": "",
        "f": "with spaces, commas = ok",
    }
    assert list(validate_labels(labels)) == ["b", "a", "c", "d", "e", "f"]


def test_validate_labels_none_and_empty() -> None:
    assert validate_labels(None) == {}
    assert validate_labels({}) == {}


def test_validate_labels_returns_a_copy() -> None:
    labels = {"a": "1"}
    result = validate_labels(labels)
    result["b"] = "2"
    assert labels == {"a": "1"}


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"a": None}, "value must be a string, not NoneType"),
        ({"a": ["x"]}, "value must be a string, not list"),
        ({"a": "x" * 1025}, "value is 1,025 characters long; at most 1024"),
        ({"a": "line\nbreak"}, "control character '\\n' (U+000A) at position 4"),
        ({"a": "nul\x00"}, "control character '\\x00' (U+0000) at position 3"),
        ({"a": "\x1b[31mred"}, "control character '\\x1b'"),
        ({"a": "\x85"}, "control character"),  # C1 control (NEL)
        ({"bad key": "x"}, "label name has bad character ' '"),
        ({f"k{i}": "v" for i in range(101)}, "more than 100 labels"),
        ("a=b", "labels must be a mapping, not str"),
    ],
)
def test_bad_labels(labels: object, reason: str) -> None:
    with pytest.raises(InvalidLabel) as info:
        validate_labels(labels)  # type: ignore[arg-type]
    assert reason in info.value.reason


def test_value_errors_name_the_label_key() -> None:
    with pytest.raises(InvalidLabel) as info:
        validate_label_value("owner", None)
    assert info.value.label == "owner"


def test_exactly_100_labels_and_1024_char_values_are_allowed() -> None:
    assert len(validate_labels({f"k{i}": "v" for i in range(100)})) == 100
    assert validate_label_value("k", "x" * 1024) == "x" * 1024
    assert validate_label_value("k", "caf\u00e9 \u2713") == "caf\u00e9 \u2713"  # non-ASCII is fine


# ---------------------------------------------------------------- label args


def test_parse_label_args() -> None:
    assert parse_label_args(["team=vision", "stage=prod"]) == {"team": "vision", "stage": "prod"}
    assert parse_label_args([]) == {}
    assert parse_label_args(("reviewed=",)) == {"reviewed": ""}
    assert parse_label_args(["expr=a=b"]) == {"expr": "a=b"}  # split at the first '='
    assert parse_label_args(["note= spaced "]) == {"note": " spaced "}  # value kept verbatim
    assert parse_label_args(["mlrun.org/owner=me"]) == {"mlrun.org/owner": "me"}


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (["team"], "expected KEY=VALUE (missing '=')"),
        (["=x"], "label key must not be empty"),
        (["bad key=x"], "label name has bad character ' '"),
        (["a=1", "a=2"], "label given more than once"),
        (["a=x\ny"], "control character"),
        ([f"k{i}=v" for i in range(101)], "more than 100 labels"),
        ("a=b", "not a single string"),
        ([1], "expected a KEY=VALUE string, not int"),
    ],
)
def test_bad_label_args(items: object, reason: str) -> None:
    with pytest.raises(InvalidLabel) as info:
        parse_label_args(items)  # type: ignore[arg-type]
    assert reason in info.value.reason


# -------------------------------------------------------------- label filters


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # dict syntax: None means "has the label"
        ({"team": "vision"}, [("team", "vision")]),
        ({"team": "vision", "gpu": None}, [("team", "vision"), ("gpu", None)]),
        ({"n": 3}, [("n", "3")]),
        ({"note": " padded, with comma "}, [("note", " padded, with comma ")]),
        # list syntax
        (["team=vision", "gpu"], [("team", "vision"), ("gpu", None)]),
        ([" team = vision ", "  gpu  "], [("team", "vision"), ("gpu", None)]),
        (("a=1,2",), [("a", "1,2")]),  # list items are not split on commas
        (["a=1", "a=2"], [("a", "1"), ("a", "2")]),  # duplicates kept: AND
        (["k="], [("k", "")]),
        (["", "  "], []),
        # comma-separated string syntax
        ("team=vision,gpu", [("team", "vision"), ("gpu", None)]),
        (" team = vision , gpu ", [("team", "vision"), ("gpu", None)]),
        ("k=", [("k", "")]),
        ("k", [("k", None)]),
        ("a=1,a=1", [("a", "1"), ("a", "1")]),
        ("a=1,,b,", [("a", "1"), ("b", None)]),
        ("expr=x=y", [("expr", "x=y")]),
        ("mlrun.org/owner=me", [("mlrun.org/owner", "me")]),
        # nothing
        (None, []),
        ("", []),
        ("  ", []),
        ([], []),
        ({}, []),
    ],
)
def test_parse_label_filter(spec: object, expected: list[tuple[str, str | None]]) -> None:
    assert parse_label_filter(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("k!=v", "'!=' is not supported"),
        ("=v", "label key must not be empty"),
        ("bad key=v", "label name has bad character ' '"),
        ("a/b/c", "at most one '/'"),
        (["a", 3], "filter item must be a string, not int"),
        ({"a": ["x"]}, "value must be a string, not list"),
        ({1: "x"}, "label key must be a string, not int"),
        ({"a": "x\ny"}, "control character"),
        (42, "not int"),
    ],
)
def test_bad_label_filters(spec: object, reason: str) -> None:
    with pytest.raises(InvalidLabel) as info:
        parse_label_filter(spec)  # type: ignore[arg-type]
    assert reason in info.value.reason


# ---------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("now", NOW),
        ("NOW", NOW),
        (" now ", NOW),
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h", NOW - timedelta(hours=1)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(weeks=1)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("1w2d3h4m5s", NOW - timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("0s", NOW),
        ("2026-03-03", datetime(2026, 3, 3, tzinfo=UTC)),
        ("2026-03-03T10:00", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-03-03 10:00", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-03-03T10:00:00Z", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-03-03T10:00:00.5Z", datetime(2026, 3, 3, 10, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-03-03T10:00+02:00", datetime(2026, 3, 3, 8, tzinfo=UTC)),
        ("2026-03-03T01:00-05:00", datetime(2026, 3, 3, 6, tzinfo=UTC)),
        ("20260303", datetime(2026, 3, 3, tzinfo=UTC)),  # ISO basic format, not epoch
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1_767_225_600, datetime(2026, 1, 1, tzinfo=UTC)),
        (1_767_225_600.25, datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)),
        (datetime(2026, 3, 3, 10), datetime(2026, 3, 3, 10, tzinfo=UTC)),  # naive = UTC
        (
            datetime(2026, 3, 3, 10, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 3, 8, tzinfo=UTC),
        ),
        (date(2026, 3, 3), datetime(2026, 3, 3, tzinfo=UTC)),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    result = parse_time(value, now=NOW)  # type: ignore[call-overload]
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


def test_parse_time_now_defaults_to_the_clock() -> None:
    before = datetime.now(UTC)
    result = parse_time("now")
    assert before <= result <= datetime.now(UTC)
    assert parse_time("1h") < before


def test_parse_time_naive_now_is_utc() -> None:
    assert parse_time("1h", now=datetime(2026, 3, 3, 12)) == datetime(2026, 3, 3, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "expected an ISO 8601 time"),
        ("yesterday", "expected an ISO 8601 time"),
        ("2026-13-01", "expected an ISO 8601 time"),
        ("2026-03-03T25:00", "expected an ISO 8601 time"),
        ("1700000000", "unix epoch seconds as a number"),  # a string is not epoch
        ("1h 30m", "cannot read"),
        ("30m1h", "largest to smallest"),
        ("1h1h", "largest to smallest"),
        ("1.5h", "cannot read"),
        ("99999999999999999w", "too large"),
        ("200000w", "before year 1"),
        ("0001-01-01T00:00+01:00", "out of the supported range"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (1e20, "out of the supported range"),
        (-1e20, "out of the supported range"),
        (True, "a bool is not a time"),
        ([2026], "not list"),
    ],
)
def test_bad_times(value: object, reason: str) -> None:
    with pytest.raises(InvalidTime) as info:
        parse_time(value, now=NOW)  # type: ignore[call-overload]
    assert reason in info.value.reason
    assert info.value.value is value


def test_time_errors_list_the_accepted_forms() -> None:
    with pytest.raises(InvalidTime) as info:
        parse_time("last tuesday", now=NOW)
    for form in ("ISO 8601", "2026-03-03T10:00Z", "'now'", "1h30m", "epoch"):
        assert form in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("0s", timedelta(0)),
        (" 5m ", timedelta(minutes=5)),
        ("120m", timedelta(hours=2)),  # no carrying rules: any size per unit
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration(text: str | timedelta, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty duration"),
        ("5", "cannot read '5'"),
        ("m", "cannot read 'm'"),
        ("5M", "cannot read '5M'"),  # M is not months, nor minutes
        ("1h30", "cannot read '30'"),
        ("1.5h", "cannot read"),
        ("-5m", "cannot read"),
        ("1h 30m", "cannot read ' 30m'"),
        ("30m1h", "largest to smallest"),
        ("1m1m", "largest to smallest"),
        ("\uff15m", "cannot read"),  # FULLWIDTH DIGIT FIVE
        ("1" * 5000 + "s", "too large"),
        ("999999999999w", "too large"),
        (timedelta(seconds=-1), "must not be negative"),
        (5, "duration must be a string, not int"),
    ],
)
def test_bad_durations(text: object, reason: str) -> None:
    with pytest.raises(InvalidTime) as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert reason in info.value.reason


# ----------------------------------------------------------------------- fuzz

VALIDATORS: list[Callable[[str], object]] = [
    validate_key,
    validate_tag,
    validate_project,
    validate_uid,
    validate_label_key,
    lambda text: validate_label_value("k", text),
    lambda text: validate_labels({text: text}),
    lambda text: parse_label_args([text]),
    parse_label_filter,
    lambda text: parse_label_filter([text]),
    lambda text: parse_time(text, now=NOW),
    parse_duration,
]

# Text biased toward the characters the grammars care about, plus anything at all.
_interesting = st.text(alphabet="aZ09-_./=,!: \n\x00\u043a\u212awdhmsTZ+", max_size=40)


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(st.text(), _interesting))
def test_validators_raise_only_invalid_input(text: str) -> None:
    for validator in VALIDATORS:
        with contextlib.suppress(InvalidInput):
            validator(text)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(),
        st.floats(),
        st.dates(),
        st.datetimes(),
        st.datetimes(
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))]
            )
        ),
    )
)
def test_parse_time_raises_only_invalid_time_on_any_number_or_date(value: object) -> None:
    try:
        result = parse_time(value, now=NOW)  # type: ignore[call-overload]
    except InvalidTime:
        return
    assert result.tzinfo is UTC


@settings(deadline=None)
@given(text=st.from_regex(KEY_RE, fullmatch=True).filter(lambda s: len(s) <= 250))
def test_generated_keys_validate(text: str) -> None:
    assert validate_key(text) == text


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("sample with spaces.csv", "sample_with_spaces.csv"),
        ("équipe.csv", "equipe.csv"),
        ("  --a//b..", "a_b"),
        ("日本", None),
        ("", None),
    ],
)
def test_suggest_key(text: str, suggested: str | None) -> None:
    assert suggest_key(text) == suggested


@settings(deadline=None)
@given(text=st.text())
def test_a_suggested_key_is_always_valid(text: str) -> None:
    key = suggest_key(text)
    assert key is None or validate_key(key) == key
