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
