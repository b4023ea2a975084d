"""Optional heavy dependencies, imported lazily with a message that says how to install them."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from harness.errors import HarnessError

DISTRIBUTION = "ablation-harness"


class MissingExtra(HarnessError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path; not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a malformed name
        return False


def install_hint(module: str, extra: str) -> str:
    """How to install what brings ``module``: the extra of this distribution, or the package itself."""
    package = module.split(".")[0]
    return f"pip install '{DISTRIBUTION}[{extra}]' (or pip install {package})"


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra: "<purpose> needs <package>: pip install '<dist>[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                           f"{install_hint(module, extra)}") from None
