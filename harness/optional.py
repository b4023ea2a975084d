"""Optional heavy dependencies, imported lazily with a message that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import HarnessError

DISTRIBUTION = "ablation-harness"


class MissingExtra(HarnessError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra: "<purpose> needs <package>: pip install '<dist>[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtra(f"{purpose} needs {package}, which is not installed: "
                           f"pip install '{DISTRIBUTION}[{extra}]' (or pip install {package})") from None
