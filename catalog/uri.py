"""Store URIs: the one way to name an artifact, with or without a version.

The grammar is MLRun's::

    store://[<category>/][<project>/]<key>[#<iter>][:<tag>][@<tree>][^<uid>]

=============  =======================================================
part           meaning
=============  =======================================================
``category``   which kind of artifact: ``artifacts`` (the default),
               ``datasets``, ``models``, ``feature-sets``,
               ``feature-vectors``
``project``    the project; may be left out when the caller supplies a
               default project
``key``        the artifact key, stable across versions
``#iter``      hyper-parameter iteration, a non-negative integer;
               ``0`` (the default) is the parent run's own artifact
``:tag``       a movable name such as ``latest`` or ``prod``
``@tree``      the producer (run) that logged this version
``^uid``       the content uid: pins one exact, immutable version
=============  =======================================================

The suffixes always come in that order, each at most once. With two path
segments, ``store://a/b`` reads ``a`` as a category if it is one, and as a
project otherwise. :meth:`StoreURI.__str__` always writes the full canonical
form, so what it prints parses back to an equal object::

    >>> u = StoreURI.parse("store://models/iris/clf:prod")
    >>> str(u)
    'store://models/iris/clf:prod'
    >>> str(StoreURI.parse("store://clf#2", default_project="iris"))
    'store://artifacts/iris/clf#2'

Every failure is an :class:`~catalog.errors.InvalidURI` whose ``uri`` is the
text given and whose ``reason`` names the bad part, for example
``bad tag 'x y': bad character ' ' at position 1; ...``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from catalog.errors import InvalidInput, InvalidURI
from catalog.validation import validate_key, validate_project, validate_tag, validate_uid

__all__ = [
    "CATEGORIES",
    "CATEGORY_ALIASES",
    "DEFAULT_CATEGORY",
    "KINDS",
    "KIND_CATEGORY",
    "MAX_ITERATION",
    "SCHEME",
    "TREE_RE",
    "StoreURI",
    "canonical_category",
    "category_for_kind",
    "is_store_uri",
    "parse_reference",
    "parse_uri",
]

SCHEME = "store://"
CATEGORIES = ("artifacts", "datasets", "models", "feature-sets", "feature-vectors")
DEFAULT_CATEGORY = "artifacts"

KIND_CATEGORY: dict[str, str] = {
    "artifact": "artifacts",
    "file": "artifacts",
    "dir": "artifacts",
    "plot": "artifacts",
    "chart": "artifacts",
    "table": "artifacts",
    "link": "artifacts",
    "dataset": "datasets",
    "model": "models",
    "feature-set": "feature-sets",
    "feature-vector": "feature-vectors",
}
"""Which URI category each artifact kind is filed under."""
KINDS = tuple(KIND_CATEGORY)

CATEGORY_ALIASES: dict[str, str] = {
    "artifact": "artifacts",
    "dataset": "datasets",
    "model": "models",
    "feature-set": "feature-sets",
    "feature-vector": "feature-vectors",
    "featureset": "feature-sets",
    "feature_set": "feature-sets",
    "feature_vector": "feature-vectors",
}
"""MLRun's singular spellings (``store://model/...``, ``category="dataset"``) of a category."""


def canonical_category(category: str) -> str:
    """A category in its canonical (plural) spelling: ``model`` → ``models``.

    Unknown names are returned unchanged (the caller's check names them).
    """
    return CATEGORY_ALIASES.get(category, category)


TREE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""A producer tree id. Use with ``.fullmatch()``."""
MAX_ITERATION = 2**31 - 1
"""Iterations are stored as Avro ``int`` (32-bit signed)."""

_SUFFIX_MARKS = "#:@^"
_SUFFIX_NAMES = {"#": "iteration", ":": "tag", "@": "tree", "^": "uid"}
_SUFFIX_SPLIT_RE = re.compile(r"([#:@^])")
_DIGITS_RE = re.compile(r"[0-9]+")
_ORDER = "#iter, :tag, @tree, ^uid"


def category_for_kind(kind: str) -> str:
    """Return the URI category for an artifact kind: ``model`` → ``models``.

    Unknown kinds raise :class:`InvalidURI` listing the known ones.
    """
    try:
        return KIND_CATEGORY[kind]
    except (KeyError, TypeError):
        raise InvalidURI(kind, f"unknown kind; one of {', '.join(KINDS)}") from None


def is_store_uri(text: object) -> bool:
    """True if ``text`` is a string that starts with ``store://`` (nothing is validated)."""
    return isinstance(text, str) and text.startswith(SCHEME)


def _format(
    category: object,
    project: object,
    key: object,
    iteration: object,
    tag: object,
    tree: object,
    uid: object,
) -> str:
    """The canonical text; also used to show invalid field values in errors."""
    text = f"{SCHEME}{category}/{project}/{key}"
    if iteration != 0:
        text += f"#{iteration}"
    if tag:
        text += f":{tag}"
    if tree:
        text += f"@{tree}"
    if uid:
        text += f"^{uid}"
    return text


def _bad(part: str, value: object, exc: InvalidInput) -> str:
    return f"bad {part} {value!r}: {getattr(exc, 'reason', exc)}"


@dataclass(frozen=True)
class StoreURI:
    """A parsed, validated store URI; build one with :meth:`parse` or directly.

    Construction validates every field (the same rules :meth:`parse` applies)
    and raises :class:`InvalidURI`, so a ``StoreURI`` that exists is valid.
    ``tag``, ``tree`` and ``uid`` are ``None`` when absent; ``iteration`` is
    ``0`` when absent.
    """

    category: str
    project: str
    key: str
    iteration: int = 0
    tag: str | None = None
    tree: str | None = None
    uid: str | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise InvalidURI(
                _format(
                    self.category,
                    self.project,
                    self.key,
                    self.iteration,
                    self.tag,
                    self.tree,
                    self.uid,
                ),
                problem,
            )

    def _problem(self) -> str | None:
        """The first thing wrong with the fields, in grammar order, or ``None``."""
        if self.category not in CATEGORIES:
            return f"unknown category {self.category!r}; one of {', '.join(CATEGORIES)}"
        try:
            validate_project(self.project)
        except InvalidInput as exc:
            return _bad("project", self.project, exc)
        try:
            validate_key(self.key)
        except InvalidInput as exc:
            return _bad("key", self.key, exc)
        if (
            isinstance(self.iteration, bool)
            or not isinstance(self.iteration, int)
            or not 0 <= self.iteration <= MAX_ITERATION
        ):
            return f"bad iteration {self.iteration!r}: must be an integer from 0 to {MAX_ITERATION}"
        if self.tag is not None:
            try:
                validate_tag(self.tag)
            except InvalidInput as exc:
                return _bad("tag", self.tag, exc)
        if self.tree is not None and not (
            isinstance(self.tree, str) and TREE_RE.fullmatch(self.tree)
        ):
            return (
                f"bad tree {self.tree!r}: must be 1 to 64 characters of "
                "letters, digits, '_', '.', '-'"
            )
        if self.uid is not None:
            try:
                validate_uid(self.uid)
            except InvalidInput as exc:
                return _bad("uid", self.uid, exc)
        return None

    # ------------------------------------------------------------------ parse

    @classmethod
    def parse(cls, text: str, default_project: str | None = None) -> StoreURI:
        """Parse ``store://[<category>/][<project>/]<key>[#<iter>][:<tag>][@<tree>][^<uid>]``.

        ``default_project`` fills in a missing project; without it a URI that
        names no project is refused. Whitespace is not trimmed: a URI with
        surrounding spaces is refused, since it was most likely pasted
        wrongly. Raises :class:`InvalidURI` and nothing else, whatever the
        input.
        """
        if not isinstance(text, str):
            raise InvalidURI(text, f"must be a string, not {type(text).__name__}")
        if text != text.strip():
            raise InvalidURI(text, "has leading or trailing whitespace")
        if not text.startswith(SCHEME):
            raise InvalidURI(text, f"must start with {SCHEME!r}")
        body = text[len(SCHEME) :]
        first_mark = min((i for i in map(body.find, _SUFFIX_MARKS) if i >= 0), default=len(body))
        path, suffix = body[:first_mark], body[first_mark:]
        category, project, key = cls._parse_path(text, path, default_project)
        fields = cls._parse_suffix(text, suffix)
        try:
            return cls(category, project, key, **fields)
        except InvalidURI as exc:
            raise InvalidURI(text, exc.reason) from None

    @staticmethod
    def _parse_path(text: str, path: str, default_project: str | None) -> tuple[str, str, str]:
        """Split ``[<category>/][<project>/]<key>`` into its three parts."""
        segments = path.split("/")
        if len(segments) > 3:
            raise InvalidURI(
                text,
                f"too many path segments ({len(segments)}); "
                "expected store://[<category>/][<project>/]<key>",
            )
        if not path:
            raise InvalidURI(text, "missing key")
        if "" in segments:
            what = "missing key (trailing '/')" if not segments[-1] else "empty path segment"
            raise InvalidURI(text, what)
        if len(segments) == 3:
            category, project, key = segments
            category = canonical_category(category)  # MLRun writes store://model/... too
            if category not in CATEGORIES:
                raise InvalidURI(
                    text, f"unknown category {category!r}; one of {', '.join(CATEGORIES)}"
                )
            return category, project, key
        if len(segments) == 2 and segments[0] not in CATEGORIES:
            return DEFAULT_CATEGORY, segments[0], segments[1]
        category = segments[0] if len(segments) == 2 else DEFAULT_CATEGORY
        if default_project is None:
            hint = f" ({category!r} is a category)" if len(segments) == 2 else ""
            raise InvalidURI(
                text,
                f"missing project{hint}: write store://{category}/<project>/{segments[-1]} "
                "or give a default project",
            )
        return category, default_project, segments[-1]

    @staticmethod
    def _parse_suffix(text: str, suffix: str) -> dict[str, Any]:
        """Read ``[#<iter>][:<tag>][@<tree>][^<uid>]`` into constructor keywords."""
        pieces = _SUFFIX_SPLIT_RE.split(suffix)[1:]  # [mark, value, mark, value, ...]
        seen = ""
        fields: dict[str, Any] = {}
        for mark, value in zip(pieces[::2], pieces[1::2], strict=True):
            name = _SUFFIX_NAMES[mark]
            if mark in seen:
                raise InvalidURI(text, f"{name} ({mark!r}) given more than once")
            if seen and _SUFFIX_MARKS.index(mark) < _SUFFIX_MARKS.index(seen[-1]):
                raise InvalidURI(
                    text,
                    f"{name} ({mark!r}) must come before {_SUFFIX_NAMES[seen[-1]]} "
                    f"({seen[-1]!r}); the order is {_ORDER}",
                )
            seen += mark
            if not value:
                raise InvalidURI(text, f"empty {name} after {mark!r}")
            if mark == "#":
                if not _DIGITS_RE.fullmatch(value) or len(value) > 10:
                    raise InvalidURI(
                        text,
                        f"bad iteration {value!r}: must be an integer from 0 to {MAX_ITERATION}",
                    )
                fields["iteration"] = int(value)
            else:
                fields[name] = value
        return fields

    # ----------------------------------------------------------------- format

    def __str__(self) -> str:
        """The canonical form: ``store://<category>/<project>/<key>`` plus any suffixes."""
        return _format(
            self.category, self.project, self.key, self.iteration, self.tag, self.tree, self.uid
        )

    # ---------------------------------------------------------------- helpers

    def replace(self, **changes: Any) -> StoreURI:
        """A copy with some fields changed, validated again: ``u.replace(tag="prod")``."""
        return dataclasses.replace(self, **changes)

    @property
    def pinned(self) -> bool:
        """True when the URI names one immutable version, i.e. ``uid`` is set."""
        return self.uid is not None

    def unpinned(self) -> StoreURI:
        """The same artifact and iteration without ``tag``, ``tree`` and ``uid``."""
        return dataclasses.replace(self, tag=None, tree=None, uid=None)


_PLAIN_RE = re.compile(r"store://([a-z-]+)/([^/#:@^]+)/([^/#:@^]+)(?:\^([^/#:@^]+))?")


def parent_parts(text: str, default_project: str | None = None) -> tuple[str, str, str | None]:
    """``(project, key, uid)`` of a store URI, as :meth:`StoreURI.parse` reads them.

    The projection asks this of every lineage source. The common spelling,
    ``store://<category>/<project>/<key>[^<uid>]``, is checked with the same
    validators without building a :class:`StoreURI` (4x cheaper); anything
    else goes through :meth:`StoreURI.parse`. Raises :class:`InvalidURI`.
    """
    match = _PLAIN_RE.fullmatch(text)
    if match is not None:
        category, project, key, uid = match.groups()
        try:
            if category in CATEGORIES:
                validate_project(project)
                validate_key(key)
                if uid is not None:
                    validate_uid(uid)
                return project, key, uid
        except InvalidInput:
            pass  # parse() explains
    parsed = StoreURI.parse(text, default_project)
    return parsed.project, parsed.key, parsed.uid


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/")


def parse_reference(text: object, default_project: str | None = None) -> StoreURI:
    """A store URI, or a key as people type it where a URI is expected.

    ``iris``, ``iris:v1`` and ``team/iris^3f2a`` read as ``store://iris``,
    ``store://iris:v1``... Errors name the text as it was typed, never the
    ``store://`` form made of it, and a mistyped scheme (``store:/x``,
    ``STORE://x``) or another URL (``s3://b/k``) is said to be one.
    """
    if not isinstance(text, str):
        raise InvalidURI(text, "expected a store:// URI or a key")
    if is_store_uri(text):
        return StoreURI.parse(text, default_project)
    scheme = _SCHEME_RE.match(text)
    if scheme is not None:
        if scheme.group(1).lower() == "store":
            meant = SCHEME + text[len(scheme.group(0)) :].lstrip("/")
            raise InvalidURI(text, f"a store URI starts with {SCHEME!r}: did you mean {meant!r}?")
        raise InvalidURI(text, f"not a catalog URI: expected {SCHEME}... or an artifact key")
    try:
        return StoreURI.parse(SCHEME + text, default_project)
    except InvalidURI as exc:
        raise InvalidURI(text, exc.reason) from None


def parse_uri(text: str, default_project: str | None = None) -> StoreURI:
    """Same as :meth:`StoreURI.parse`."""
    return StoreURI.parse(text, default_project)
