"""A study resolved once into a :class:`Plan`: its entries (one study per dataset or setting; a single-dataset
study is one entry whose folder is the run directory itself), the registry, the arms and the seed. ``validate``,
``run``, ``tune``, ``plan STUDY`` and ``bench data STUDY`` all start from :func:`make_plan`."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import rundir as files
from harness.errors import Problem, StudyError
from harness.pipeline.validate import component_problems, validate_study
from harness.registry import Registry, load_registry
from harness.rundir import RunDir
from harness.study.loader import Arm, LoadedStudy, apply_overrides, study_from_data
from harness.study.multi import KEY as DATASETS_KEY
from harness.study.multi import MultiStudy, load_multi, prefixed
from harness.study.settings import GRID, load_settings
from harness.study.settings import KEY as SETTINGS_KEY
from harness.study.settings import prefixed as settings_prefixed
from harness.study.yamlio import read_yaml_with_lines


@dataclass(frozen=True)
class PlanEntry:
    """One dataset's or setting's study and where its run goes: ``RUN/<kind>/<id>/``, or ``RUN`` itself for a
    single-dataset study (``id`` None, ``subdir`` empty)."""

    id: str | None
    study: LoadedStudy
    subdir: tuple[str, ...] = ()

    def folder(self, run_dir: Path) -> Path:
        return RunDir(run_dir).sub_run(*self.subdir) if self.subdir else Path(run_dir)


@dataclass(frozen=True)
class Plan:
    """A study resolved and checked once; ``kind`` is None (one dataset), "datasets" or "settings"."""

    source: Path
    overrides: tuple[str, ...]
    kind: str | None
    entries: tuple[PlanEntry, ...]
    registry: Registry
    notes: tuple[str, ...]  # what validation found worth saying (warnings, data notes), each entry's with its id
    multi: MultiStudy | None = None  # the whole file of a multi-entry study (its study.yaml at the run's top)
    strict_plugins: bool = False  # a plugin that failed to load was an error (worker processes load it the same way)

    @property
    def first(self) -> LoadedStudy:
        return self.entries[0].study

    @property
    def name(self) -> str:
        return self.multi.name if self.multi is not None else self.first.name

    @property
    def arms(self) -> dict[str, Arm]:
        return self.first.arms  # every entry has the same arms

    @property
    def seed(self) -> int:
        return self.first.spec.seed

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries if e.id is not None]


def make_plan(source: Path, overrides: Sequence[str] = (), *, strict_plugins: bool = False, threads: int | None = None,
              worker_threads: int | None = None, data: bool = False) -> Plan:
    """Load ``source`` with ``overrides`` once, build its registry and validate every entry (``data``: the
    dataset too); StudyError with every problem, each entry's prefixed with its id. ``threads`` (``--threads``)
    sets training.threads; ``worker_threads`` sets it only where neither the study nor the overrides do (local
    workers split the cores)."""
    source = Path(source)
    raw, lines = read_yaml_with_lines(source)
    found = tuple(overrides) + ((f"training.threads={threads}",) if threads else ())
    if worker_threads and not _declares_threads(raw, found):
        found += (f"training.threads={worker_threads}",)
    if isinstance(raw, dict) and (SETTINGS_KEY in raw or GRID in raw or DATASETS_KEY in raw):
        return _multi_plan(source, found, strict_plugins, data, raw)
    study = _load_single(raw, lines, source, found, strict_plugins)
    registry = load_registry(study.spec.plugins, strict=strict_plugins)
    notes = validate_study(study, registry, data=data)
    return Plan(source, found, None, (PlanEntry(None, study),), registry, tuple(notes), strict_plugins=strict_plugins)


def _declares_threads(raw: Any, overrides: Sequence[str]) -> bool:
    """Whether the study file, with ``overrides``, sets training.threads (a file that cannot say: no)."""
    if not isinstance(raw, dict):
        return False
    data = copy.deepcopy(raw)
    apply_overrides(data, overrides, {})
    training = data.get("training")
    return isinstance(training, dict) and training.get("threads") is not None


def _load_single(raw: Any, lines: dict[Any, int], source: Path, overrides: Sequence[str],
                 strict_plugins: bool) -> LoadedStudy:
    """The study, or a StudyError with every problem at once: when the schema refuses some keys, the components
    of the rest (backbones, attention, optimizers, ...) are checked too, in the same message."""
    try:
        return study_from_data(raw, lines, source, overrides)
    except StudyError as exc:
        if exc.partial is None:
            raise
        more = component_problems(exc.partial, load_registry(exc.partial.spec.plugins, strict=strict_plugins))
        raise StudyError([*exc.problems, *(p for p in more if p not in exc.problems)]) from None


def _multi_plan(source: Path, overrides: tuple[str, ...], strict_plugins: bool, data: bool, raw: dict[str, Any]) -> Plan:
    """A ``datasets:`` or ``settings:`` study: one entry per id, each validated; problems with the entry's id."""
    with_settings = SETTINGS_KEY in raw or GRID in raw
    multi = (load_settings if with_settings else load_multi)(source, overrides)
    registry = load_registry(multi.first.spec.plugins, strict=strict_plugins)
    found: dict[str, list[Problem]] = {}
    notes: list[str] = []
    for entry_id, study in multi.datasets.items():
        try:
            notes += [f"{entry_id}: {note}" for note in validate_study(study, registry, data=data)]
        except StudyError as exc:
            found[entry_id] = exc.problems
    if found:
        raise StudyError((settings_prefixed if with_settings else prefixed)(found, len(multi.datasets)))
    kind = files.SETTINGS if with_settings else files.DATASETS
    entries = tuple(PlanEntry(i, s, (multi.kind, i)) for i, s in multi.datasets.items())
    return Plan(source, overrides, kind, entries, registry, tuple(notes), multi, strict_plugins)
