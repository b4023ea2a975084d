"""The harness's own error types: every user mistake surfaces as one of these, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class HarnessError(Exception):
    """A problem the user can fix; the message says what and how."""


class Interrupted(HarnessError):
    """The user stopped a run (Ctrl-C); a checkpoint was written and a rerun resumes."""


@dataclass(frozen=True)
class Problem:
    """One problem in a study file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<top>'}: {self.message}"


class StudyError(HarnessError):
    """A study file with one or more problems, all reported at once."""

    def __init__(self, problems: list[Problem], partial: Any = None):
        self.problems = problems
        self.partial = partial  # the study with the faulty keys left out, so later stages can still be checked
        super().__init__("\n".join(str(p) for p in problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """Message for an unknown component name: the close matches and the full list."""
    known = sorted(known)
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
