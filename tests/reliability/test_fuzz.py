"""Fuzzing the doors that take untrusted input.

* **CLI arguments** (hypothesis): random argument lists — real commands and
  options mixed with hostile values, random text and numbers — handed to the
  ``catalog`` group through click's ``CliRunner``. Every run ends with an exit
  code (0 to 5, click's 2 for usage errors) and never with an unhandled
  exception or a traceback.
* **Manifests and relative paths** (hypothesis): ``Manifest.from_bytes`` and
  ``validate_relative_path`` raise only their own errors, and an accepted path
  can never leave its root.
* **atheris** (libFuzzer, coverage-guided, if installed — the ``fuzz`` extra):
  the event decoder, the URI parser, key/tag/label validation, label filters,
  times, durations, manifests and relative paths, for a bounded number of runs
  (tests/reliability/fuzz_atheris.py).

Covered elsewhere with hypothesis: the event decoder on random and corrupted
bytes (tests/test_codec.py), the URI parser (tests/test_uri.py), validators,
times and durations (tests/test_validation.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from catalog import Catalog
from catalog.cli import cli
from catalog.errors import InvalidInput, InvalidPath
from catalog.store import Manifest, validate_relative_path
from reliability.helpers import ROOT, catalog_env, record

HOSTILE = [
    "",
    " ",
    "-",
    "--",
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "nan",
    "' OR 1=1 --",
    "a\x00b",
    "\u2215etc",
    "ñandú",
    "\u202e",
    "%s%n",
    "{}",
    "[]",
    "latest",
    "iris",
    "iris:v1",
    "iris^",
    "iris^zz",
    "iris#1",
    "iris@run",
    "store:",
    "store://",
    "store://a/b/c/d",
    "store://datasets/default/iris:v1",
    "memory://x",
    "nosuch://x",
    "file:",
    "k=v",
    "a b=c",
    "=",
    "15m",
    "1h30m",
    "2026-13-45",
    "2026-01-01T00:00:00Z",
    "SELECT 1",
    "SELECT * FROM artifacts",
    "DELETE FROM artifacts",
    "data.csv",
    "folder",
    "missing.csv",
    "doc.yaml",
    "out",
]
SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="/\\~", blacklist_categories=("Cs",)),
    max_size=12,
).filter(lambda t: ".." not in t)
NEVER = {"--follow", "-f"}  # would follow the log forever
SERVERS = {"ui", "serve"}  # long-running commands: serve until stopped


def runs_forever(argv: list[str]) -> bool:
    return any(a in SERVERS or a.startswith(("-f", "--follow")) for a in argv)


def command_args(name: str) -> st.SearchStrategy[list[str]]:
    command = cli.commands[name]
    options = sorted(
        {o for p in command.params if isinstance(p, click.Option) for o in p.opts} - NEVER
    )
    token = st.one_of(
        st.sampled_from(options or ["--json"]),
        st.sampled_from(HOSTILE),
        SAFE_TEXT,
        st.integers(-5, 10**6).map(str),
    )
    return st.lists(token, max_size=6).map(lambda rest: [name, *rest])


ARGV = st.one_of(
    st.sampled_from(sorted(set(cli.commands) - SERVERS)).flatmap(command_args),
    st.lists(st.one_of(st.sampled_from(HOSTILE), SAFE_TEXT), max_size=4),
    st.lists(
        st.sampled_from(["--log", "--db", "--project", "-p", "--json", "-h", "--version"])
    ).map(lambda group: [*group, "ls"]),
)


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small catalog and a scratch working directory holding a few inputs."""
    root = tmp_path_factory.mktemp("fuzz")
    env = catalog_env(root)
    work = root / "work"
    (work / "folder").mkdir(parents=True)
    (work / "folder" / "a.txt").write_text("a")
    (work / "data.csv").write_text("x,y\n1,2\n")
    with Catalog(
        log=env["CATALOG_LOG"],
        db=env["CATALOG_DB"],
        artifact_path=env["CATALOG_ARTIFACT_PATH"],
        project="default",
    ) as cat:
        art = cat.log_artifact("iris", local_path=work / "data.csv", kind="dataset", tag="v1")
        (work / "doc.yaml").write_text(json.dumps(art.to_dict()))
    return root


TRACEBACK = re.compile(r"Traceback \(most recent call last\)")


def run_argv(root: Path, argv: list[str]) -> None:
    assume(not runs_forever(argv))
    env: dict[str, str | None] = dict(catalog_env(root))
    env.update(CATALOG_PROJECT=None, CATALOG_CONFIG=None)
    runner = CliRunner()
    with tempfile.TemporaryDirectory(dir=root / "work") as scratch, contextlib.chdir(scratch):
        for name in ("folder", "data.csv", "doc.yaml"):
            source = root / "work" / name
            target = Path(name)
            if source.is_dir():
                target.mkdir()
                (target / "a.txt").write_text("a")
            else:
                target.write_bytes(source.read_bytes())
        result = runner.invoke(cli, argv, env=env, prog_name="catalog")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"catalog {argv!r} raised {result.exception!r}"
    )
    assert result.exit_code in (0, 1, 2, 3, 4, 5, 6), (argv, result.exit_code, result.output)
    assert not TRACEBACK.search(result.output), (argv, result.output)


def fuzzed(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@fuzzed(120)
@given(argv=ARGV)
def test_random_command_lines_never_crash(fuzz_home: Path, argv: list[str]) -> None:
    run_argv(fuzz_home, argv)
    record("fuzz: CLI argument lists (hypothesis)", cases=1)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@fuzzed(3000)
@given(argv=ARGV)
def test_random_command_lines_soak(fuzz_home: Path, argv: list[str]) -> None:
    run_argv(fuzz_home, argv)
    record("fuzz: CLI argument lists (hypothesis)", cases=1)


MANIFEST_INPUT = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode))
RELATIVE_PATHS = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["a", "..", ".", "", "/", "\\", "\x00", "\u2215", "b.txt"])).map(
        "".join
    ),
)


def check_manifest(data: bytes) -> None:
    record("fuzz: manifest parser (hypothesis)", cases=1)
    try:
        manifest = Manifest.from_bytes(data)
    except (InvalidInput, InvalidPath):
        return
    for entry in manifest.entries:
        assert not entry.path.startswith("/") and ".." not in entry.path.split("/")


def check_relative_path(path: str) -> None:
    record("fuzz: relative paths (hypothesis)", cases=1)
    try:
        safe = validate_relative_path(path)
    except InvalidPath:
        return
    root = Path("/jail/root")
    resolved = Path("/jail/root", safe).resolve(strict=False)
    assert resolved.is_relative_to(root) and resolved != root, path
    assert "\\" not in safe and "\x00" not in safe


@fuzzed(1500)
@given(data=MANIFEST_INPUT)
def test_manifest_parser_raises_only_its_own_errors(data: bytes) -> None:
    check_manifest(data)


@fuzzed(1500)
@given(path=RELATIVE_PATHS)
def test_accepted_relative_paths_stay_inside_their_root(path: str) -> None:
    check_relative_path(path)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@fuzzed(30000)
@given(data=MANIFEST_INPUT, path=RELATIVE_PATHS)
def test_parsers_soak(data: bytes, path: str) -> None:
    check_manifest(data)
    check_relative_path(path)


ATHERIS = importlib.util.find_spec("atheris") is not None


def run_atheris(runs: int) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "fuzz_atheris.py"),
            f"-atheris_runs={runs}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = re.search(r"Done (\d+) (runs|in)", result.stderr)
    assert done, result.stderr[-2000:]
    record("fuzz: atheris (decoder, URIs, validators, manifests)", runs=int(done.group(1)))


NO_ATHERIS = "atheris is not installed (pip install -e '.[fuzz]')"


@pytest.mark.skipif(not ATHERIS, reason=NO_ATHERIS)
def test_atheris_finds_no_crash() -> None:
    run_atheris(50_000)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not ATHERIS, reason=NO_ATHERIS)
def test_atheris_soak() -> None:
    run_atheris(2_000_000)
