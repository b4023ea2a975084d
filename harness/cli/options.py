"""The study commands' options: argv is parsed into a Namespace once, then converted into one frozen object
per command, which the command reads and never changes (``dataclasses.replace`` makes a changed copy)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from harness.run.threads import checked_threads

T = TypeVar("T", bound="StudyCommand")


@dataclass(frozen=True)
class StudyCommand:
    """What every command on a study file shares."""

    study: Path
    overrides: tuple[str, ...] = ()
    strict_plugins: bool = False
    quiet: bool = False

    @classmethod
    def from_args(cls: type[T], args: argparse.Namespace) -> T:
        """The command's options from the parsed arguments: a shipped study's bare name resolved, lists as
        tuples, ``--threads`` checked."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = getattr(args, field.name, None)
            values[field.name] = tuple(value) if isinstance(value, list) else value
        if values.get("overrides") is None:
            values["overrides"] = ()
        checked_threads(values.get("threads"))
        if isinstance(values["study"], Path):  # a bare name (quickstart) is a shipped study
            from harness.shipped import resolve_study

            values["study"] = resolve_study(values["study"])
        return cls(**values)


@dataclass(frozen=True)
class ValidateCommand(StudyCommand):
    no_data: bool = False


@dataclass(frozen=True)
class RunCommand(StudyCommand):
    out: Path | None = None
    fresh: bool = False
    no_report: bool = False
    storage: str | None = None
    threads: int | None = None
    workers: int = 1


@dataclass(frozen=True)
class TuneCommand(StudyCommand):
    out: Path | None = None
    trials: int | None = None
    storage: str | None = None
    threads: int | None = None
    workers: int = 1
    then_run: bool = False


@dataclass(frozen=True)
class PlanStudyCommand(StudyCommand):
    steps: int = 5
    json: bool = False


@dataclass(frozen=True)
class BenchDataCommand(StudyCommand):
    json: bool = False
