"""Each command's options: argv is parsed into a Namespace once, then converted into one frozen object per
command, which the command reads and never changes (``dataclasses.replace`` makes a changed copy)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError
from harness.run.threads import checked_threads

T = TypeVar("T", bound="Command")


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every command shares (the global flags)."""

    strict_plugins: bool = False
    quiet: bool = False

    @classmethod
    def from_args(cls: type[T], args: argparse.Namespace) -> T:
        """The command's options from the parsed arguments: lists as tuples, ``--threads``, ``--workers`` and
        ``--steps`` checked, a shipped study's bare name resolved."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = getattr(args, field.name, None)
            values[field.name] = tuple(value) if isinstance(value, list) else value
        if "overrides" in values and values["overrides"] is None:
            values["overrides"] = ()
        checked_threads(values.get("threads"))
        for count in ("workers", "steps"):  # a count below 1 was quietly taken as 1 (workers) or 5 (bench steps)
            if isinstance(values.get(count), int) and values[count] < 1:
                raise HarnessError(f"--{count} must be at least 1, got {values[count]}")
        if isinstance(values.get("study"), Path):  # a bare name (quickstart) is a shipped study
            from harness.shipped import resolve_study

            values["study"] = resolve_study(values["study"])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class StudyCommand(Command):
    """What every command on a study file shares."""

    study: Path
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ValidateCommand(StudyCommand):
    no_data: bool = False


@dataclass(frozen=True, kw_only=True)
class RunCommand(StudyCommand):
    out: Path | None = None
    fresh: bool = False
    no_report: bool = False
    storage: str | None = None
    threads: int | None = None
    workers: int = 1


@dataclass(frozen=True, kw_only=True)
class TuneCommand(StudyCommand):
    out: Path | None = None
    trials: int | None = None
    storage: str | None = None
    threads: int | None = None
    workers: int = 1
    then_run: bool = False


@dataclass(frozen=True, kw_only=True)
class PlanStudyCommand(StudyCommand):
    steps: int = 5
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class BenchDataCommand(StudyCommand):
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class PlanCommand(Command):
    """``harness plan``: a run directory, or a study file (then :class:`PlanStudyCommand`)."""

    run_dir: Path
    effect: float | None = None
    baseline: str | None = None
    metric: str | None = None
    alpha: float | None = None
    steps: int = 5
    overrides: tuple[str, ...] = ()
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class CompareCommand(Command):
    run_dir: Path
    baseline: str | None = None
    metric: str | None = None
    alpha: float | None = None
    rope: float | None = None
    json: bool = False
    write: bool = False


@dataclass(frozen=True, kw_only=True)
class PluginsCommand(Command):
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class ListCommand(Command):
    kind: str
    pattern: str = "*"
    options: bool = False


@dataclass(frozen=True, kw_only=True)
class ModelCommand(Command):
    backbone: str
    attention: str | None = None  # None: the registry's identity variant
    classes: int = 1000
    image_size: int = 224
    in_chans: int = 3
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class PrepareCommand(Command):
    what: str
    src: Path
    dst: Path
    size: int = 150
    max_white: float = 0.5
    white_level: int = 240
    test_fraction: float = 0.2
    seed: int = 0
    pattern: str = ""


@dataclass(frozen=True, kw_only=True)
class BenchCommand(Command):
    mode: str = "model"
    study: Path | None = None
    backbone: str = "resnet50"
    attention: str | None = None  # None: the registry's identity variant
    image_size: int = 224
    batch_size: int = 64
    steps: int = 50
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    cuda_graph: bool = False
    fuse: int = 0
    deterministic: bool = True
    augment: bool = False
    threads: int | None = None
    profile: int = 0
    json: bool = False
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReportCommand(Command):
    run_dirs: tuple[Path, ...]
    out: Path | None = None
    trust_plugins: bool = False


@dataclass(frozen=True, kw_only=True)
class StudiesCommand(Command):
    copy: Path | None = None


@dataclass(frozen=True, kw_only=True)
class SchemaCommand(Command):
    out: Path | None = None
    plugin: tuple[str, ...] = ()
