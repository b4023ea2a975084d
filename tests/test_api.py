"""The declared plugin API: every name resolves, and the built-in plugins import nothing else of the core."""

from __future__ import annotations

import ast
from pathlib import Path

import harness.api as api

PLUGINS = Path(__file__).parents[1] / "plugins"


def test_every_public_name_resolves() -> None:
    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert missing == []


def _core_imports(path: Path) -> list[str]:
    """``harness.*`` modules a file imports, other than the API (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                   else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found += [m for m in modules if (m == "harness" or m.startswith("harness.")) and m != "harness.api"]
    return found


def test_built_in_plugins_use_only_the_api() -> None:
    offenders = {str(p.relative_to(PLUGINS)): mods for p in PLUGINS.rglob("*.py") if (mods := _core_imports(p))}
    assert offenders == {}


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    planted = tmp_path / "plugin.py"
    planted.write_text("def f():\n    from harness.run.trainer import FoldTrainer\nimport harness.rundir\n")
    assert sorted(_core_imports(planted)) == ["harness.run.trainer", "harness.rundir"]
