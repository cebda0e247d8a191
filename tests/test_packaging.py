"""The wheel: one top-level name, a license and a type marker, and it works installed.

The repository keeps ``consumers/`` and ``cli.py`` at the top (its layout); the
wheel installs them as ``catalog/consumers`` and ``catalog/cli.py``
(pyproject.toml), so that nothing it puts in site-packages collides with another
distribution's ``consumers`` or ``cli``. The code imports them by those names
only, in a checkout (``catalog/__init__.py`` finds them at the top) as installed.

The wheel is built by the build backend itself (hatchling, a dev dependency:
``pip wheel --no-build-isolation``, offline) and installed into a fresh venv that
borrows this venv's dependencies. The slow tests install it the way a user does,
with the pip ``python3 -m venv`` gives (not upgraded), dependencies from the index.
"""

from __future__ import annotations

import ast
import email
import json
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reliability.helpers import catalog_env

from catalog import __version__, about

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_INFO = f"catalog-{__version__}.dist-info"
#: Where the code and its tests live (imports of bare ``consumers``/``cli`` are refused).
CODE = ("catalog", "consumers", "cli.py", "tests", "bench", "examples", "docs")


def run(*args: str | Path, timeout: float = 600, **kwargs: Any) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", out, ROOT,
    )  # fmt: skip
    [built] = out.glob("catalog-*.whl")
    return built


def names_in(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def read(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)


def sources(top: str) -> list[Path]:
    return sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    assert {name.split("/")[0] for name in names_in(wheel)} == {"catalog", DIST_INFO}


def test_the_checkout_s_modules_and_schemas_are_in_the_wheel_under_catalog(wheel: Path) -> None:
    names = names_in(wheel)
    expected = {p.relative_to(ROOT).as_posix() for p in sources("catalog")}
    expected |= {f"catalog/{p.relative_to(ROOT).as_posix()}" for p in sources("consumers")}
    expected |= {"catalog/cli.py", "catalog/py.typed", "catalog/_kernel.c"}
    expected |= {
        f"catalog/_schemas/{p.relative_to(ROOT / 'schemas').as_posix()}"
        for p in (ROOT / "schemas").rglob("*.avsc")
    }
    assert expected - names == set()
    kernels = [n for n in names if n.startswith("catalog/_kernel-") and n.endswith(".so")]
    assert len(kernels) == 1, names  # compiled by the build (hatch_build.py)
    assert "-py3-none-any" not in wheel.name  # so the wheel is for this platform
    assert "catalog/consumers/__init__.py" in names and "catalog/_schemas" in {
        n.rsplit("/", 1)[0] for n in names
    }


def test_the_wheel_carries_its_license_entry_point_and_urls(wheel: Path) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert read(wheel, f"{DIST_INFO}/licenses/LICENSE").decode() == license_text
    metadata = email.message_from_bytes(read(wheel, f"{DIST_INFO}/METADATA"))
    assert metadata["License-Expression"] == PYPROJECT["project"]["license"] == "Apache-2.0"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert urls == PYPROJECT["project"].get("urls", {})
    entry_points = read(wheel, f"{DIST_INFO}/entry_points.txt").decode()
    assert "catalog = catalog.cli:main" in entry_points.splitlines()


def test_the_code_imports_consumers_and_cli_by_their_installed_names() -> None:
    """``consumers.x`` or ``cli`` would work in a checkout and fail once installed."""
    bare = []
    for top in CODE:
        for path in [ROOT / top] if top.endswith(".py") else sources(top):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    modules = [node.module or ""]
                else:
                    continue
                bare += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {m}"
                    for m in modules
                    if m.split(".")[0] in ("consumers", "cli")
                ]
    assert bare == []
    # and in a checkout the installed names are the checkout's files, under no other name
    code = (
        "import json, sys, catalog.cli, catalog.consumers.replay, catalog.maintenance;"
        "print(json.dumps([catalog.cli.__file__, catalog.consumers.__file__,"
        " sorted({m.split('.')[0] for m in sys.modules} & {'consumers', 'cli'})]))"
    )
    cli_file, consumers_file, bare_modules = json.loads(run(sys.executable, "-c", code))
    assert Path(cli_file) == ROOT / "cli.py"
    assert Path(consumers_file) == ROOT / "consumers" / "__init__.py"
    assert bare_modules == []


def test_the_project_s_own_url_is_declared_once_and_used() -> None:
    """Not PyPI's catalog, which is not ours: pyproject.toml's [project.urls]."""
    from catalog.openlineage import PRODUCER

    url = PYPROJECT["project"]["urls"]["Repository"]
    assert about.repository() == url
    assert f"{url}/{__version__}" == PRODUCER
    assert about.install_hint() == f"pip install -e '.[web]' in a checkout of {url}"
    pip_install_catalog = re.compile(r"pip install ['\"]?catalog\b|pypi\.org/project/catalog")
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "Dockerfile"]
    files += sorted((ROOT / "docs").glob("*.md"))
    files += [p for top in CODE if not top.endswith(".py") for p in sources(top)]
    files += [ROOT / "cli.py", *(ROOT / "catalog" / "web" / "templates").iterdir()]
    found = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in files
        for line in path.read_text().splitlines()
        if pip_install_catalog.search(line) and path != Path(__file__)
    ]
    assert found == []


def test_serve_without_its_web_stack_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.cli import cli

    monkeypatch.setitem(sys.modules, "catalog.server", None)  # as if uvicorn were missing
    result = CliRunner().invoke(cli, ["serve"], env=catalog_env(tmp_path), prog_name="catalog")
    assert result.exit_code != 0
    assert about.install_hint() in result.output


def fresh_venv(path: Path, *, pip: bool) -> tuple[Path, Path]:
    """A new venv (``python3 -m venv``): its python and its site-packages."""
    run(sys.executable, "-m", "venv", *([] if pip else ["--without-pip"]), path)
    python = path / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    return python, Path(purelib.strip())


def check_installed(python: Path, purelib: Path, work: Path) -> None:
    """What the venv has is the wheel's catalog alone, and it logs and lists."""
    tops = {p.name for p in purelib.iterdir()} - {"_borrowed.pth", "__pycache__"}
    ours = {n for n in tops if n.lower().startswith("catalog")}
    assert ours == {"catalog", DIST_INFO} and "consumers" not in tops and "cli.py" not in tops
    code = (
        "import json, catalog, catalog.cli, catalog.consumers.projection as p;"
        "from catalog import native;"
        "print(json.dumps([list(catalog.__path__), catalog.cli.__file__, p.__file__,"
        " native.status()]))"
    )
    path, cli_file, projection_file, kernel = json.loads(run(python, "-c", code, cwd=work))
    # the C kernel the build compiled is the one loaded: nothing compiles at run time
    assert kernel.startswith(f"built: {purelib / 'catalog' / '_kernel-'}"), kernel
    assert path == [str(purelib / "catalog")]
    assert Path(cli_file) == purelib / "catalog" / "cli.py"
    assert Path(projection_file) == purelib / "catalog" / "consumers" / "projection.py"
    catalog = python.parent / "catalog"
    env = catalog_env(work)
    assert "Usage: catalog" in run(catalog, "--help", cwd=work, env=env)
    (work / "iris.csv").write_text("a,b\n1,2\n3,4\n")
    run(catalog, "log", "iris.csv", "--key", "iris", "--kind", "dataset", cwd=work, env=env)
    listed = json.loads(run(catalog, "ls", "--json", cwd=work, env=env))
    assert [row["metadata"]["key"] for row in listed] == ["iris"]


def test_the_installed_wheel_works_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    python, purelib = fresh_venv(tmp_path / "venv", pip=False)
    # the dependencies come from this venv (its path after the new venv's own)
    borrowed = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (purelib / "_borrowed.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    pip = (sys.executable, "-m", "pip", "--python", python)
    run(*pip, "install", "--no-deps", "--no-index", wheel)
    check_installed(python, purelib, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_fresh_venv_s_own_pip_installs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    python, purelib = fresh_venv(tmp_path / "venv", pip=True)
    run(python, "-m", "pip", "install", "--quiet", wheel)
    check_installed(python, purelib, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_fresh_venv_s_own_pip_resolves_the_dev_extras(tmp_path: Path) -> None:
    """``pip install -e '.[dev,examples]'`` as README says, with the pip a venv has."""
    python, _ = fresh_venv(tmp_path / "venv", pip=True)
    print(run(python, "-m", "pip", "--version"))  # 23.2.1 with Debian's python3.11
    shown = run(python, "-m", "pip", "install", "--dry-run", "-e", f"{ROOT}[dev,examples]")
    assert "Would install" in shown
