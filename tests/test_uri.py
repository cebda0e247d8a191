"""Store URIs: MLRun's grammar, parse ↔ format, and refusals that name the bad part."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.errors import InvalidInput, InvalidURI
from catalog.uri import (
    CATEGORIES,
    KIND_CATEGORY,
    KINDS,
    MAX_ITERATION,
    StoreURI,
    category_for_kind,
    is_store_uri,
    parent_parts,
    parse_reference,
    parse_uri,
)

U = StoreURI

# ------------------------------------------------------------ parse and format

PARSE_CASES: list[tuple[str, str | None, StoreURI, str]] = [
    # text, default_project, expected, canonical str()
    ("store://p/k", None, U("artifacts", "p", "k"), "store://artifacts/p/k"),
    ("store://artifacts/p/k", None, U("artifacts", "p", "k"), "store://artifacts/p/k"),
    ("store://models/iris/clf", None, U("models", "iris", "clf"), "store://models/iris/clf"),
    (
        "store://feature-vectors/p/fv",
        None,
        U("feature-vectors", "p", "fv"),
        "store://feature-vectors/p/fv",
    ),
    ("store://k", "dflt", U("artifacts", "dflt", "k"), "store://artifacts/dflt/k"),
    ("store://models/k", "dflt", U("models", "dflt", "k"), "store://models/dflt/k"),
    ("store://datasets/k", "dflt", U("datasets", "dflt", "k"), "store://datasets/dflt/k"),
    # two segments, first is not a category: it is the project, default ignored
    ("store://iris/k", "dflt", U("artifacts", "iris", "k"), "store://artifacts/iris/k"),
    # a project given in the URI wins over the default
    ("store://models/iris/k", "dflt", U("models", "iris", "k"), "store://models/iris/k"),
    # iteration
    ("store://p/k#3", None, U("artifacts", "p", "k", iteration=3), "store://artifacts/p/k#3"),
    ("store://p/k#0", None, U("artifacts", "p", "k"), "store://artifacts/p/k"),
    ("store://p/k#007", None, U("artifacts", "p", "k", iteration=7), "store://artifacts/p/k#7"),
    (
        f"store://p/k#{MAX_ITERATION}",
        None,
        U("artifacts", "p", "k", iteration=MAX_ITERATION),
        f"store://artifacts/p/k#{MAX_ITERATION}",
    ),
    # tag, tree, uid
    (
        "store://p/k:latest",
        None,
        U("artifacts", "p", "k", tag="latest"),
        "store://artifacts/p/k:latest",
    ),
    (
        "store://p/k@run-1.a_b",
        None,
        U("artifacts", "p", "k", tree="run-1.a_b"),
        "store://artifacts/p/k@run-1.a_b",
    ),
    ("store://p/k^0a1b", None, U("artifacts", "p", "k", uid="0a1b"), "store://artifacts/p/k^0a1b"),
    (
        "store://p/k:v1^ff",
        None,
        U("artifacts", "p", "k", tag="v1", uid="ff"),
        "store://artifacts/p/k:v1^ff",
    ),
    (
        "store://p/k#2@t",
        None,
        U("artifacts", "p", "k", iteration=2, tree="t"),
        "store://artifacts/p/k#2@t",
    ),
    # everything at once
    (
        "store://models/iris/clf.v2#4:prod@9f3c^" + "ab" * 20,
        None,
        U("models", "iris", "clf.v2", 4, "prod", "9f3c", "ab" * 20),
        "store://models/iris/clf.v2#4:prod@9f3c^" + "ab" * 20,
    ),
    (
        "store://clf#1:t@r^a",
        "dflt",
        U("artifacts", "dflt", "clf", 1, "t", "r", "a"),
        "store://artifacts/dflt/clf#1:t@r^a",
    ),
    # keys with dots and underscores; a tag that looks like a number
    (
        "store://p/a.b_c-d:1",
        None,
        U("artifacts", "p", "a.b_c-d", tag="1"),
        "store://artifacts/p/a.b_c-d:1",
    ),
]


@pytest.mark.parametrize(("text", "default", "expected", "canonical"), PARSE_CASES)
def test_parse_and_format(
    text: str, default: str | None, expected: StoreURI, canonical: str
) -> None:
    parsed = StoreURI.parse(text, default_project=default)
    assert parsed == expected
    assert str(parsed) == canonical
    assert StoreURI.parse(canonical) == parsed
    assert parse_uri(text, default) == parsed


BAD_CASES: list[tuple[str, str | None, str]] = [
    # text, default_project, fragment of the reason
    ("", None, "must start with 'store://'"),
    ("p/k", None, "must start with 'store://'"),
    ("s3://bucket/k", None, "must start with 'store://'"),
    ("STORE://p/k", None, "must start with 'store://'"),
    ("store:/p/k", None, "must start with 'store://'"),
    (" store://p/k", None, "leading or trailing whitespace"),
    ("store://p/k\n", None, "leading or trailing whitespace"),
    ("store://", None, "missing key"),
    ("store://p/", None, "missing key (trailing '/')"),
    ("store:///k", None, "empty path segment"),
    ("store://models//k", None, "empty path segment"),
    ("store://a/b/c/d", None, "too many path segments (4)"),
    ("store://models/p/a/b", None, "too many path segments"),
    ("store://k", None, "missing project"),
    ("store://models/k", None, "missing project ('models' is a category)"),
    ("store://k:v1", None, "missing project"),
    ("store://things/p/k", None, "unknown category 'things'"),
    ("store://Models/p/k", None, "unknown category 'Models'"),
    ("store://My_Proj/k", None, "bad project 'My_Proj': project name has bad character 'M'"),
    ("store://k", "Bad Default", "bad project 'Bad Default'"),
    ("store://" + "p" * 64 + "/k", None, "bad project"),
    ("store://p/-k", None, "bad key '-k': must start with a letter or digit"),
    ("store://p/k.", None, "bad key 'k.': must end with a letter or digit"),
    ("store://p/" + "k" * 251, None, "bad key"),
    ("store://p/k e y", None, "bad key 'k e y': has bad character ' ' at position 1"),
    ("store://p/\u043ay", None, "bad key '\u043ay': has bad character '\u043a' (U+043A)"),
    ("store://p/k%2F", None, "bad key 'k%2F'"),
    ("store://p/k#", None, "empty iteration after '#'"),
    ("store://p/k#x", None, "bad iteration 'x'"),
    ("store://p/k#-1", None, "bad iteration '-1'"),
    ("store://p/k#+1", None, "bad iteration '+1'"),
    ("store://p/k#1.0", None, "bad iteration '1.0'"),
    ("store://p/k#\uff11", None, "bad iteration"),  # FULLWIDTH DIGIT ONE
    (f"store://p/k#{MAX_ITERATION + 1}", None, "bad iteration"),
    ("store://p/k#99999999999", None, "bad iteration"),
    ("store://p/k:", None, "empty tag after ':'"),
    ("store://p/k:x y", None, "bad tag 'x y': has bad character ' ' at position 1"),
    ("store://p/k:-x", None, "bad tag '-x': must start with a letter or digit"),
    ("store://p/k:" + "t" * 64, None, "bad tag"),
    ("store://p/k:a/b", None, "bad tag 'a/b'"),
    ("store://p/k@", None, "empty tree after '@'"),
    ("store://p/k@a b", None, "bad tree 'a b'"),
    ("store://p/k@" + "t" * 65, None, "bad tree"),
    ("store://p/k^", None, "empty uid after '^'"),
    ("store://p/k^ABC", None, "bad uid 'ABC'"),
    ("store://p/k^xyz", None, "bad uid 'xyz'"),
    ("store://p/k^" + "a" * 65, None, "bad uid"),
    ("store://p/k:a:b", None, "tag (':') given more than once"),
    ("store://p/k#1#2", None, "iteration ('#') given more than once"),
    ("store://p/k^a^b", None, "uid ('^') given more than once"),
    ("store://p/k:t#1", None, "iteration ('#') must come before tag (':')"),
    ("store://p/k^a@t", None, "tree ('@') must come before uid ('^')"),
    ("store://p/k@t:v", None, "tag (':') must come before tree ('@')"),
    ("store://p/k#1:t@r^a#2", None, "given more than once"),
]


@pytest.mark.parametrize(("text", "default", "reason"), BAD_CASES)
def test_bad_uris_name_the_bad_part(text: str, default: str | None, reason: str) -> None:
    with pytest.raises(InvalidURI) as info:
        StoreURI.parse(text, default_project=default)
    assert reason in info.value.reason
    assert info.value.uri == text
    assert str(info.value).startswith(f"invalid URI {text!r}: ")


@pytest.mark.parametrize("value", [None, 1, b"store://p/k", ["store://p/k"]])
def test_non_strings_are_invalid_uris(value: object) -> None:
    with pytest.raises(InvalidURI, match="must be a string"):
        StoreURI.parse(value)  # type: ignore[arg-type]


def test_invalid_uri_maps_to_exit_code_2_and_status_400() -> None:
    with pytest.raises(InvalidInput) as info:
        StoreURI.parse("store://p/k:")
    assert (info.value.exit_code, info.value.status) == (2, 400)
    assert info.value.to_dict()["error"] == "InvalidURI"


# ---------------------------------------------------------------- constructor


def test_constructor_validates() -> None:
    with pytest.raises(InvalidURI, match="bad tag 'a b'"):
        StoreURI("artifacts", "p", "k", tag="a b")
    with pytest.raises(InvalidURI, match="unknown category 'model'"):
        StoreURI("model", "p", "k")
    with pytest.raises(InvalidURI, match="bad iteration -1"):
        StoreURI("artifacts", "p", "k", iteration=-1)
    with pytest.raises(InvalidURI, match="bad iteration True"):
        StoreURI("artifacts", "p", "k", iteration=True)
    with pytest.raises(InvalidURI, match="bad tag ''"):
        StoreURI("artifacts", "p", "k", tag="")
    with pytest.raises(InvalidURI, match="bad uid"):
        StoreURI("artifacts", "p", "k", uid="")
    with pytest.raises(InvalidURI, match="bad tree"):
        StoreURI("artifacts", "p", "k", tree=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidURI, match="bad project"):
        StoreURI("artifacts", None, "k")  # type: ignore[arg-type]


def test_store_uri_is_frozen_and_hashable() -> None:
    u = StoreURI.parse("store://p/k:v1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.tag = "v2"  # type: ignore[misc]
    assert {u, StoreURI.parse("store://artifacts/p/k:v1")} == {u}


def test_replace_pinned_unpinned() -> None:
    u = StoreURI.parse("store://models/p/k#2:prod@run1")
    assert not u.pinned
    pinned = u.replace(uid="abc")
    assert pinned.pinned
    assert str(pinned) == "store://models/p/k#2:prod@run1^abc"
    assert pinned.unpinned() == StoreURI("models", "p", "k", iteration=2)
    assert str(pinned.unpinned()) == "store://models/p/k#2"
    assert u.replace(tag=None) == StoreURI("models", "p", "k", 2, tree="run1")
    with pytest.raises(InvalidURI, match="bad tag"):
        u.replace(tag="no spaces")
    with pytest.raises(TypeError):
        u.replace(colour="red")


def test_is_store_uri() -> None:
    assert is_store_uri("store://p/k")
    assert is_store_uri("store://")  # only the prefix is checked
    assert not is_store_uri("s3://bucket/key")
    assert not is_store_uri(" store://p/k")
    assert not is_store_uri("p/k")
    assert not is_store_uri(None)


# --------------------------------------------------------------- kinds


def test_kind_categories() -> None:
    assert tuple(KIND_CATEGORY) == KINDS
    for kind in ("artifact", "file", "dir", "plot", "chart", "table", "link"):
        assert category_for_kind(kind) == "artifacts"
    assert category_for_kind("dataset") == "datasets"
    assert category_for_kind("model") == "models"
    assert category_for_kind("feature-set") == "feature-sets"
    assert category_for_kind("feature-vector") == "feature-vectors"
    assert set(KIND_CATEGORY.values()) == set(CATEGORIES)


@pytest.mark.parametrize("kind", ["models", "Model", "", "notebook", None])
def test_unknown_kind(kind: object) -> None:
    with pytest.raises(InvalidURI, match="unknown kind; one of artifact, file"):
        category_for_kind(kind)  # type: ignore[arg-type]


# -------------------------------------------------------------- properties

_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM = _LOWER_ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _names(edge: str, inner: str, max_size: int) -> st.SearchStrategy[str]:
    """Names of 1..max_size characters: ``edge`` characters at both ends, ``inner`` inside."""
    one = st.text(edge, min_size=1, max_size=1)
    longer = st.tuples(one, st.text(inner, max_size=max_size - 2), one).map("".join)
    return st.one_of(one, longer)


projects = _names(_LOWER_ALNUM, _LOWER_ALNUM + "-", 63)
keys = _names(_ALNUM, _ALNUM + "-_.", 250)
tags = _names(_ALNUM, _ALNUM + "-_.", 63)
trees = st.text(_ALNUM + "_.-", min_size=1, max_size=64)
uids = st.text("0123456789abcdef", min_size=1, max_size=64)

store_uris = st.builds(
    StoreURI,
    category=st.sampled_from(CATEGORIES),
    project=projects,
    key=keys,
    iteration=st.one_of(st.just(0), st.integers(0, MAX_ITERATION)),
    tag=st.none() | tags,
    tree=st.none() | trees,
    uid=st.none() | uids,
)


@settings(max_examples=500, deadline=None)
@given(u=store_uris, default=st.none() | projects)
def test_round_trip(u: StoreURI, default: str | None) -> None:
    text = str(u)
    assert StoreURI.parse(text) == u
    assert StoreURI.parse(text, default_project=default) == u  # a full URI ignores the default
    assert str(StoreURI.parse(text)) == text


@settings(max_examples=300, deadline=None)
@given(u=store_uris)
def test_short_forms_parse_to_the_same_uri(u: StoreURI) -> None:
    suffix = str(u)[len(f"store://{u.category}/{u.project}/{u.key}") :]
    if u.category == "artifacts":
        assert StoreURI.parse(f"store://{u.project}/{u.key}{suffix}") == u
        assert StoreURI.parse(f"store://{u.key}{suffix}", u.project) == u
    assert StoreURI.parse(f"store://{u.category}/{u.key}{suffix}", u.project) == u


# Tokens that exercise every branch of the grammar: valid pieces, separators and junk.
_uri_tokens = st.sampled_from(
    ["p", "k", "models/", "p/", "/", "#1", "#", ":v1", ":", "@r", "@", "^ab", "^", "-", "."]
    + list("aZ09_ \n\x00\u043aF+%#:@^")
)
_near_uris = st.lists(_uri_tokens, max_size=12).map(lambda parts: "store://" + "".join(parts))
_defaults = st.none() | st.sampled_from(["p", "dflt"]) | st.text(max_size=8)


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(st.text(), _near_uris), default=_defaults)
def test_parse_raises_only_invalid_uri(text: str, default: str | None) -> None:
    try:
        u = StoreURI.parse(text, default_project=default)
    except InvalidURI as exc:
        assert exc.uri == text
        assert exc.reason
        return
    assert isinstance(u, StoreURI)
    assert StoreURI.parse(str(u)) == u


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(st.text(), _near_uris, store_uris.map(str)), default=_defaults)
def test_parent_parts_reads_what_parse_reads(text: str, default: str | None) -> None:
    try:
        u = StoreURI.parse(text, default_project=default)
    except InvalidURI:
        with pytest.raises(InvalidURI):
            parent_parts(text, default)
        return
    assert parent_parts(text, default) == (u.project, u.key, u.uid)


def test_parent_parts_common_and_odd_spellings() -> None:
    assert parent_parts("store://datasets/p/k^ab12") == ("p", "k", "ab12")
    assert parent_parts("store://models/p/k") == ("p", "k", None)
    assert parent_parts("store://p/k:v1", "q") == ("p", "k", None)
    assert parent_parts("store://k", "q") == ("q", "k", None)
    for bad in ("store://datasets/p/k^AB", "store://datasets/P/k", "store://datasets/p/k\n"):
        with pytest.raises(InvalidURI):
            parent_parts(bad)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("store:/datasets/p/iris", "did you mean 'store://datasets/p/iris'?"),
        ("STORE://models/p/clf", "did you mean 'store://models/p/clf'?"),
        ("s3://bucket/key", "not a catalog URI"),
        ("iris:bad/tag", "bad tag 'bad/tag'"),
    ],
)
def test_a_reference_is_refused_as_typed(typed: str, reason: str) -> None:
    with pytest.raises(InvalidURI) as caught:
        parse_reference(typed, default_project="p")
    assert caught.value.uri == typed and reason in caught.value.reason


def test_a_reference_may_be_a_bare_key() -> None:
    assert parse_reference("iris:v1", default_project="p") == StoreURI.parse("store://p/iris:v1")
    assert parse_reference("store://models/p/clf") == StoreURI.parse("store://models/p/clf")
