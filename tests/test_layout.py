"""The package's shape: short modules, no import cycles (function-level imports included)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HARNESS = Path(__file__).parents[1] / "harness"
MAX_LINES = 400


def _module(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in HARNESS.rglob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness."):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("harness.")}
        graph[_module(path)] = deps
    return graph


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(HARNESS.parent)): n for p in HARNESS.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_no_import_cycle_inside_the_package() -> None:
    graph = _imports()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep] if dep in path else [*path, dep]
            if state.get(dep) is None and (cycle := visit(dep, [*path, dep])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if state.get(module) is None and (cycle := visit(module, [module])):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_cycle_check_can_fail(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Guard against a check that passes vacuously: a planted cycle is found."""
    package = tmp_path / "harness"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from harness.b import g\n")
    (package / "b.py").write_text("from harness.a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "HARNESS", package)
    try:
        test_no_import_cycle_inside_the_package()
    except AssertionError as exc:
        assert "harness.a -> harness.b -> harness.a" in str(exc) or "harness.b -> harness.a -> harness.b" in str(exc)
    else:
        raise AssertionError("the planted cycle was not found")


def test_architecture_layout_table_names_every_module() -> None:
    """The docs' layout table (one row per subpackage, plus the top level) names every module of the tree."""
    readme = (HARNESS.parent / "docs" / "development" / "architecture.md").read_text()
    rows = {match[1]: match[2] for match in re.finditer(r"^\| `harness/(\w+)/` \| (.*) \|$", readme, flags=re.M)}
    top = re.search(r"^\| top level \| (.*) \|$", readme, flags=re.M)
    assert top is not None and set(rows) == {p.name for p in HARNESS.iterdir() if (p / "__init__.py").exists()}
    missing = [f"{path.parent.name}/{path.stem}" for path in HARNESS.glob("*/*.py")
               if path.stem != "__init__" and f"`{path.stem}`" not in rows[path.parent.name]]  # named, not a substring
    missing += [path.stem for path in HARNESS.glob("*.py") if path.stem != "__init__" and f"`{path.stem}`" not in top[1]]
    assert missing == []
