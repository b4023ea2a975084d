"""nox sessions: tests, lint, typecheck, docs, quickstart, bench. Dependencies come from pyproject.toml."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (tiny real studies on CPU), one pytest-xdist worker per core (each single-threaded)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", "--dist", "loadgroup", *session.posargs)


def _floors() -> list[str]:
    """``name==floor`` for every dependency of pyproject.toml written as ``name>=floor``."""
    import re

    import tomllib

    with open("pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    pins = []
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9][^,;\s]*)", requirement.strip())
        if match:
            pins.append(f"{match[1]}=={match[2]}")
    return pins


@nox.session(python=PYTHON, default=False)
def lowest(session: nox.Session) -> None:
    """Install the declared floors exactly and run the fast tests: the floors must be true."""
    constraints = session.create_tmp() + "/floors.txt"
    with open(constraints, "w") as handle:
        handle.write("\n".join(_floors()) + "\n")
    session.install("-c", constraints, "-e", ".[test]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "harness", "plugins", "reports", "tests", "noxfile.py", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check harness/ with mypy (against the tests session's packages when it exists)."""
    session.install("mypy", "types-PyYAML", "pandas-stubs", "pydantic")  # pydantic: mypy's plugin runs in mypy's venv
    tests_python = Path(".nox/tests/bin/python")
    if tests_python.exists():  # reuse the installed torch & co. instead of a second 5 GB install
        session.run("mypy", "--python-executable", str(tests_python), "harness", *session.posargs)
    else:
        session.install("-e", ".")
        session.run("mypy", "harness", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict``; the reference pages are generated from the code
    (docs/gen_reference.py, an mkdocs hook), so the project is installed too."""
    tools = ["mkdocs-material", "mkdocstrings[python]"]
    env = {"NO_MKDOCS_2_WARNING": "1"}
    tests_python = Path(".nox/tests/bin/python")
    if tests_python.exists():  # reuse the installed torch & co. (as typecheck does) instead of a second 5 GB install
        session.run(str(tests_python), "-m", "pip", "install", "--quiet", *tools, external=True)
        session.run(str(tests_python), "-m", "mkdocs", "build", "--strict", *session.posargs, env=env, external=True)
    else:
        session.install("-e", ".", *tools)
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session(python=PYTHON, default=False)
def wheel(session: nox.Session) -> None:
    """Build the wheel, install it into a fresh venv and run the shipped quickstart outside the tree (CI runs it in tests)."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/test_wheel.py", *session.posargs)


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """Run the quickstart study (bundled synthetic ultrasound, CPU)."""
    session.install("-e", ".")
    session.run("harness", "run", "studies/quickstart.yaml", *session.posargs)


SE16 = "{name: se, reduction: 16}"
BENCH_SETS = {
    "cpu": [
        ["--backbone", "resnet20", "--image-size", "32", "--batch-size", "64", "--steps", "100"],
        ["--backbone", "resnet18", "--image-size", "64", "--batch-size", "32", "--steps", "60"],
        ["--backbone", "resnet20", "--attention", SE16, "--image-size", "32", "--batch-size", "64", "--steps", "100"],
        ["--backbone", "resnet50", "--attention", SE16, "--image-size", "96", "--batch-size", "16", "--steps", "20",
         "--channels-last"],
    ],
    "gpu": [  # the H100 figures: ResNet-50 and SE-ResNet-50 at 224, the ultrasound protocol's ResNet-20 at 150
        ["--backbone", "resnet50", "--attention", SE16, "--image-size", "224", "--batch-size", "256", "--steps", "100"],
        ["--backbone", "resnet50", "--attention", SE16, "--image-size", "224", "--batch-size", "256", "--steps", "100",
         "--compile"],
        ["--backbone", "resnet20", "--attention", SE16, "--image-size", "150", "--batch-size", "64", "--steps", "200"],
    ],
}


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run a standard benchmark set and write bench.csv: ``nox -s bench`` (CPU) or ``nox -s bench -- gpu``."""
    args = list(session.posargs)
    kind = args.pop(0) if args and args[0] in BENCH_SETS else "cpu"
    device = ["--device", "cuda"] if kind == "gpu" else ["--device", "cpu"]
    session.install("-e", ".")
    rows = []
    for config in BENCH_SETS[kind]:
        out = session.run("harness", "bench", *config, *device, "--json", *args, silent=True)
        rows.append(json.loads(str(out).strip().splitlines()[-1]))
    columns = list(dict.fromkeys(key for row in rows for key in row))  # attention rows add plain_* columns
    with open("bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()} for row in rows)
    session.log("wrote bench.csv")
