"""Small argument and environment checks for the command line, so user mistakes end in one clear message."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.cli.options import Command
    from harness.pipeline.plan import Plan

# OSErrors a user can fix (permissions, a read-only or full disk, a file where a folder belongs)
USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


def refuse_several_entries(plan: Plan, study: Path, datasets: str, settings: str) -> None:
    """A command that works on one study: refuse a ``datasets:`` or ``settings:`` plan, with what to do instead."""
    if plan.kind == "datasets":
        raise HarnessError(f"{study} lists several datasets (datasets:); {datasets}")
    if plan.kind == "settings":
        raise HarnessError(f"{study} declares settings (settings:/settings_grid:); {settings}")


def attention_option(text: str | None, identity: Callable[[], str], flag: str = "--attention") -> tuple[str, dict[str, Any]]:
    """``--attention se`` or ``--attention '{name: se, reduction: 8}'`` as (name, options); no name (no flag, or
    a mapping without one): ``identity()``, the registry's "no attention" variant."""
    import yaml

    if text is None:
        return identity(), {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HarnessError(f"{flag} {text!r} is not valid YAML ({str(exc).splitlines()[0]}); "
                           "give a name (se) or a mapping ('{name: se, reduction: 8}')") from None
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        options = dict(value)
        return str(options.pop("name", None) or identity()), options
    raise HarnessError(f"{flag} {text!r} must be a name (se) or a mapping ('{{name: se, reduction: 8}}'), "
                       f"not a {type(value).__name__}")


def run_directory(path: Path) -> Path:
    """The resolved run directory; a path that exists and is not a folder is refused."""
    if path.exists() and not path.is_dir():
        raise HarnessError(f"--out {path} is a file, not a folder; give a folder for the run (it is created if missing)")
    return path.resolve()


def os_error_message(exc: OSError) -> str:
    """One line for an OSError a user can fix: what, where, and what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.EISDIR:  # reading or writing: a folder where a file belongs
        return f"{exc.filename or 'a path'} is a folder, not a file; give the path of a file"
    advice = {errno.EACCES: "make it writable, or write elsewhere with --out",
              errno.EPERM: "make it writable, or write elsewhere with --out",
              errno.EROFS: "the file system is read-only: write elsewhere with --out",
              errno.ENOSPC: "free some space, or write elsewhere with --out"}.get(exc.errno or 0, "check the path")
    return f"cannot write{where}: {exc.strerror or exc}; {advice}"


def silence_broken_pipe() -> None:
    """After the reader of stdout went away (``harness compare --json | head``): no traceback at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured by a test)
        pass


def registry_for(command: Command, modules: Sequence[str] = ()):  # type: ignore[no-untyped-def]
    """The plugin registry with the study's own plugin modules, strict when --strict-plugins."""
    from harness.registry import load_registry

    return load_registry(modules, strict=command.strict_plugins)
