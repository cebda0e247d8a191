"""The build hook: compiles the C kernel (catalog/_kernel.c) when the package is built.

A wheel carries the library (and is then tagged for this platform); an
editable install builds it beside catalog/native.py, which loads it. How it
is built and named is said once, in catalog/native.py, loaded here on its own
(it imports only the standard library). Without a C compiler the package
still installs, and runs in pure Python, slower (a warning says so).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _native(root: str) -> Any:
    path = Path(root) / "catalog" / "native.py"
    spec = importlib.util.spec_from_file_location("_catalog_native_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class KernelBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        native = _native(self.root)
        editable = version == "editable"
        directory = (
            Path(self.root) / "catalog" if editable else Path(tempfile.mkdtemp(prefix="kernel-"))
        )
        try:
            built = native.build(directory)
        except OSError as exc:
            self.app.display_warning(
                f"catalog: the C kernel was not built ({exc}); the package runs without it, "
                "slower (pure Python)"
            )
            return
        if not editable:
            build_data["force_include"][str(built)] = f"catalog/{built.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
