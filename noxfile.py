"""nox sessions: tests, lint, typecheck, quickstart. Dependencies come from pyproject.toml."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (tiny real studies on CPU)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "harness", "plugins", "reports", "tests", "noxfile.py", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check harness/ with mypy."""
    session.install("-e", ".", "mypy", "types-PyYAML", "pandas-stubs")
    session.run("mypy", "harness", *session.posargs)


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """Run the quickstart study (bundled synthetic ultrasound, CPU)."""
    session.install("-e", ".")
    session.run("harness", "run", "studies/quickstart.yaml", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run the standard benchmark set and write bench.csv."""
    import json

    session.install("-e", ".", "pandas")
    configs = [
        ["--backbone", "resnet20", "--image-size", "32", "--batch-size", "64", "--steps", "100"],
        ["--backbone", "resnet18", "--image-size", "64", "--batch-size", "32", "--steps", "60"],
        ["--backbone", "resnet20", "--attention", "{name: se, reduction: 16}", "--image-size", "32", "--batch-size", "64", "--steps", "100"],
    ]
    rows = []
    for config in configs:
        out = session.run("harness", "bench", *config, "--json", *session.posargs, silent=True)
        rows.append(json.loads(str(out).strip().splitlines()[-1]))
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(str(r[k]).replace(",", ";") for k in header) for r in rows]
    with open("bench.csv", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    session.log("wrote bench.csv")
