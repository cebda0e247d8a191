"""docs/cli.md is generated from the commands' --help and kept current (STYLE.md rule 18)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from catalog.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current() -> None:
    fresh = load_generator().render()
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == fresh, "docs/cli.md is out of date: run python docs/gen_cli.py"


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "Usage: catalog [OPTIONS] COMMAND [ARGS]..." in text
    for name, command in cli.commands.items():
        assert f"\n## catalog {name}\n" in text, f"catalog {name} is missing from docs/cli.md"
        assert f"Usage: catalog {name} " in text
        assert (command.help or "").strip(), f"catalog {name} has no help text"


def test_generation_is_deterministic() -> None:
    generator = load_generator()
    assert generator.render() == generator.render()
