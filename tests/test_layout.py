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


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every ``harness.*`` import outside ``if TYPE_CHECKING:`` (function-level included)."""
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                 for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "harness" or node.module.startswith("harness.")):
            names = [f"harness.{a.name}" for a in node.names] if node.module == "harness" else [node.module]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("harness.")]
    return sorted(set(found))


def _package_pairs(root: Path) -> list[str]:
    """Pairs of subpackages that import each other, with one import of each direction."""
    def package(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and (root / parts[1]).is_dir() else None

    edges: dict[tuple[str, str], str] = {}
    for path in root.rglob("*.py"):
        source = package(_module_in(path, root))
        for line, module in _runtime_imports(ast.parse(path.read_text())):
            target = package(module)
            if source and target and source != target:
                edges.setdefault((source, target), f"{path.relative_to(root.parent)}:{line} -> {module}")
    return sorted(f"{a} <-> {b}: {edges[a, b]}; {edges[b, a]}" for a, b in edges if a < b and (b, a) in edges)


def _module_in(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_two_packages_import_each_other() -> None:
    """The layers go one way (function-level imports count; type-only imports do not)."""
    assert _package_pairs(HARNESS) == []


def test_the_package_pair_check_can_fail(tmp_path: Path) -> None:
    root = tmp_path / "harness"
    for package in ("low", "high"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "high" / "a.py").write_text("from harness.low.b import g\n")
    (root / "low" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.high import a\n")
    assert _package_pairs(root) == []  # a type-only import does not count
    (root / "low" / "c.py").write_text("def f():\n    from harness.high.a import x\n")
    assert [pair.split(":")[0] for pair in _package_pairs(root)] == ["high <-> low"]


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


# Tests mirror the modules: harness/<package>/<module>.py -> tests/<package>/test_<module>.py, a top-level
# harness/<module>.py -> tests/test_<module>.py, a plugin subpackage plugins/<kind>/ -> tests/plugins/test_<kind>.py,
# a script benchmarks/<name>.py -> tests/benchmarks/test_<name>.py. Whole-study runs live in tests/e2e/, the
# fault-injection family in tests/reliability/ (both by topic, mirroring nothing).
UNMIRRORED_FOLDERS = ("e2e", "reliability", "fixtures")
SPECIAL_TESTS = ("test_layout.py", "test_docs.py", "test_wheel.py")  # the tree, the docs site, the built wheel
NO_TEST_NEEDED = ("__init__", "__main__")  # package markers and `python -m` entry points: nothing of their own


def _mirrors(root: Path) -> dict[Path, Path]:
    """Each test file the layout asks for (relative to tests/), with the source it mirrors."""
    wanted: dict[Path, Path] = {}
    for path in sorted((root / "harness").rglob("*.py")):
        if path.stem not in NO_TEST_NEEDED:
            wanted[path.relative_to(root / "harness").parent / f"test_{path.stem}.py"] = path
    for kind in sorted((root / "plugins").iterdir()):
        if (kind / "__init__.py").exists():
            wanted[Path("plugins") / f"test_{kind.name}.py"] = kind
    for script in sorted((root / "benchmarks").glob("*.py")):
        wanted[Path("benchmarks") / f"test_{script.stem}.py"] = script
    return wanted


def _mirror_problems(root: Path) -> list[str]:
    """Modules without their test file, and test files (outside the unmirrored families) without their module."""
    wanted = _mirrors(root)
    tests = root / "tests"
    problems = [f"{source.relative_to(root)} has no tests/{test}" for test, source in wanted.items()
                if not (tests / test).exists()]
    for test in sorted(tests.rglob("test_*.py")):
        relative = test.relative_to(tests)
        if relative.parts[0] in UNMIRRORED_FOLDERS or (len(relative.parts) == 1 and relative.name in SPECIAL_TESTS):
            continue
        if relative not in wanted:
            problems.append(f"tests/{relative} mirrors no module (move its tests to the module they test, or to e2e/)")
    return problems


def test_tests_mirror_the_modules() -> None:
    assert _mirror_problems(HARNESS.parent) == []


def test_the_mirror_check_can_fail(tmp_path: Path) -> None:
    for folder in ("harness/stats", "plugins/optim", "benchmarks", "tests/stats", "tests/e2e", "tests/plugins"):
        (tmp_path / folder).mkdir(parents=True)
    for file in ("harness/__init__.py", "harness/errors.py", "harness/stats/__init__.py", "harness/stats/power.py",
                 "plugins/optim/__init__.py", "plugins/optim/plugin.py", "tests/e2e/test_quickstart.py",
                 "tests/test_layout.py", "tests/test_errors.py", "tests/stats/test_power.py", "tests/plugins/test_optim.py"):
        (tmp_path / file).write_text("")
    assert _mirror_problems(tmp_path) == []
    (tmp_path / "harness" / "stats" / "sequential.py").write_text("")  # a module without its test file
    (tmp_path / "tests" / "stats" / "test_foo.py").write_text("")  # a stale test file
    (tmp_path / "plugins" / "loggers").mkdir()
    (tmp_path / "plugins" / "loggers" / "__init__.py").write_text("")  # a plugin kind without its test file
    assert _mirror_problems(tmp_path) == [
        "harness/stats/sequential.py has no tests/stats/test_sequential.py",
        "plugins/loggers has no tests/plugins/test_loggers.py",
        "tests/stats/test_foo.py mirrors no module (move its tests to the module they test, or to e2e/)",
    ]
# a run-directory file name that is also the usual name of a file elsewhere: a dataset folder's label table
# (harness prepare patches, the phantom dataset) is ``labels.csv`` too, and is no run-directory path
SHARED_NAMES = {"labels.csv"}


def _rundir_names() -> set[str]:
    from harness.rundir import names

    return {value for name, value in vars(names).items() if name.isupper() and isinstance(value, str)} - SHARED_NAMES


def _is_rundir_name(node: ast.expr, aliases: set[str], imported: set[str], file_names: set[str]) -> bool:
    """``files.RESULTS`` (an upper-case attribute of the rundir module), ``RESULTS`` imported from it, or a literal."""
    if isinstance(node, ast.Attribute) and node.attr.isupper():
        return (isinstance(node.value, ast.Name) and node.value.id in aliases) or "rundir" in ast.unparse(node.value)
    if isinstance(node, ast.Name):
        return node.id in imported
    return isinstance(node, ast.Constant) and node.value in file_names


def _path_compositions(root: Path, file_names: set[str]) -> list[str]:
    """``file:line`` of every ``/`` whose operand is a run-directory name outside ``harness/rundir/``: an attribute
    of the rundir module (``files.RESULTS``), a name imported from it (``RESULTS``), or a literal (``"results.csv"``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "rundir" in path.relative_to(root).parts[:-1]:
            continue
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                   for a in node.names if (isinstance(node, ast.ImportFrom) and node.module == "harness" and a.name == "rundir")
                   or (isinstance(node, ast.Import) and a.name.startswith("harness.rundir"))}
        imported = {a.asname or a.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness.rundir")
                    for a in node.names if a.name.isupper()}

        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and any(
                    _is_rundir_name(side, aliases, imported, file_names) for side in (node.left, node.right)):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return sorted(set(found))


def test_only_the_run_directory_owner_builds_its_paths() -> None:
    """Nobody outside ``harness/rundir/`` composes a path from a run-directory file name (use RunDir / Cell)."""
    assert _path_compositions(HARNESS, _rundir_names()) == []
    assert _path_compositions(HARNESS.parent / "plugins", _rundir_names()) == []


def test_the_path_composition_check_can_fail(tmp_path: Path) -> None:
    root = tmp_path / "harness"
    (root / "rundir").mkdir(parents=True)
    (root / "rundir" / "records.py").write_text("from harness.rundir.names import RESULTS\np = root / RESULTS\n")
    (root / "ok.py").write_text("from harness import rundir as files\nprint(f'see {files.RESULTS}')\nx = a / b\n")
    assert _path_compositions(root, {"results.csv"}) == []  # the owner may; a name in a message is fine
    (root / "a.py").write_text("from harness import rundir as files\np = run_dir / files.RESULTS\n")
    (root / "b.py").write_text("from harness.rundir import RESULTS as R\np = run_dir / R\n")
    (root / "c.py").write_text("p = run_dir / 'results.csv'\n")
    assert _path_compositions(root, {"results.csv"}) == ["harness/a.py:2", "harness/b.py:2", "harness/c.py:1"]


FORBIDDEN_IN_STATS_IMPORTS = ("harness.rundir", "argparse", "pathlib")
FORBIDDEN_IN_STATS_CALLS = {"open", "read_csv", "to_csv", "read_text", "write_text"}


def _file_io(package: Path) -> list[str]:
    """``file:line what`` of every import of the run directory, argparse or pathlib and every file read or write
    (``open``, ``read_csv``, ``to_csv``, ``read_text``, ``write_text``) in ``package`` (function level included)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package.parent)
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if isinstance(node, ast.ImportFrom) and node.module == "harness":
                modules = [f"harness.{a.name}" for a in node.names]
            found += [f"{where}:{node.lineno} import {m}" for m in modules
                      if any(m == bad or m.startswith(bad + ".") for bad in FORBIDDEN_IN_STATS_IMPORTS)]
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in FORBIDDEN_IN_STATS_CALLS:
                    found.append(f"{where}:{node.lineno} {name}()")
    return found


def test_stats_does_no_file_io() -> None:
    """harness/stats/ is pure statistics on arrays and frames: the run directory is read and written above it."""
    assert _file_io(HARNESS / "stats") == []


def test_the_file_io_check_can_fail(tmp_path: Path) -> None:
    stats = tmp_path / "stats"
    stats.mkdir()
    (stats / "pure.py").write_text("import numpy as np\ndef f(frame):\n    return frame.mean()\n")
    assert _file_io(stats) == []
    (stats / "a.py").write_text("from pathlib import Path\nfrom harness import rundir as files\nimport argparse\n")
    (stats / "b.py").write_text("def f(p, frame):\n    frame.to_csv(p)\n    with open(p) as h:\n        return h\n")
    (stats / "c.py").write_text("def g(p):\n    from harness.rundir.records import read_study\n    return pd.read_csv(p)\n")
    assert _file_io(stats) == ["stats/a.py:1 import pathlib", "stats/a.py:2 import harness.rundir",
                               "stats/a.py:3 import argparse", "stats/b.py:2 to_csv()", "stats/b.py:3 open()",
                               "stats/c.py:2 import harness.rundir.records", "stats/c.py:3 read_csv()"]


def test_every_package_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages by name: a new subpackage left out installs without its modules."""
    import tomllib

    listed = set(tomllib.loads((HARNESS.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module(p.parent / "__init__.py") for p in HARNESS.rglob("__init__.py")}
    plugins = {"harness_plugins" + ("." + p.parent.name if p.parent.name != "plugins" else "")
               for p in (HARNESS.parent / "plugins").rglob("__init__.py")}
    assert found | plugins <= listed, sorted((found | plugins) - listed)
