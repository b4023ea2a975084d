"""ablation-harness: declarative, seeded, statistically honest ablation studies for image classifiers."""

from __future__ import annotations

__version__ = "0.1.0"

from harness.errors import HarnessError, StudyError
from harness.hookspecs import hookimpl

__all__ = ["HarnessError", "StudyError", "__version__", "hookimpl"]
