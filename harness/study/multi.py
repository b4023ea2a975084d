"""Studies over several datasets (``datasets:`` instead of ``dataset:``).

Each entry becomes one ordinary single-dataset study (the same arms, training and seed; the entry's
``cv:`` keys override the study's), so the runner, validation and statistics stay those of one
dataset. Problems of a dataset's study are reported with the dataset's id.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, Problem, StudyError
from harness.study.loader import (
    LoadedStudy,
    Path_,
    _deep_merge,
    _problem,
    _pydantic_problems,
    apply_overrides,
    study_from_data,
)
from harness.study.schema import DatasetEntry
from harness.study.yamlio import read_yaml_with_lines

KEY = "datasets"
MIXED = ("settings cannot be combined with datasets: (one sub-run per setting of one dataset); write one study per "
         "dataset with dataset: and these settings")


@dataclass(frozen=True)
class MultiStudy:
    """A study over several datasets: one :class:`LoadedStudy` per dataset id, in file order. The same shape
    holds a study over several training settings (``kind`` "settings", :mod:`harness.study.settings`):
    ``datasets`` then maps each setting's id to its study."""

    name: str
    source: Path
    data: dict[str, Any]
    datasets: dict[str, LoadedStudy]
    kind: str = KEY  # the sub-runs' folder: RUN/<kind>/<id>/

    @property
    def first(self) -> LoadedStudy:
        return next(iter(self.datasets.values()))


def declares_datasets(path: Path) -> bool:
    """Whether the study file lists several datasets (``datasets:``); False when it cannot be read as a mapping
    (the ordinary loader then reports why)."""
    try:
        data, _ = read_yaml_with_lines(Path(path))
    except HarnessError:
        return False
    return isinstance(data, dict) and KEY in data


def load_multi(path: Path, overrides: Iterable[str] = ()) -> MultiStudy:
    """Read a multi-dataset study; StudyError with every problem, each dataset's prefixed by its id."""
    source = Path(path)
    data, lines = read_yaml_with_lines(source)
    file = str(source)
    problems = apply_overrides(data, overrides, lines)
    entries = data.get(KEY)
    if "dataset" in data:
        problems.append(_problem(file, lines, ("dataset",), "a study has either dataset: (one) or datasets: "
                                 "(a list, each with an id), not both; move this dataset into the datasets: list"))
    if "settings" in data or "settings_grid" in data:
        problems.append(_problem(file, lines, ("settings",) if "settings" in data else ("settings_grid",), MIXED))
    if not isinstance(entries, list) or not entries:
        problems.append(_problem(file, lines, (KEY,), "datasets: must be a non-empty list of datasets, each a "
                                 "dataset spec with an id, e.g. [{id: easy, name: phantom}, {id: hard, name: phantom}]"))
        raise StudyError(problems)
    ids = validated_ids(entries, DatasetEntry, KEY, file, lines, problems)
    problems += duplicate_ids(ids, KEY, file, lines)
    if problems:
        raise StudyError(problems)
    studies: dict[str, LoadedStudy] = {}
    found: dict[str, list[Problem]] = {}
    for index, (dataset_id, entry) in enumerate(zip(ids, entries, strict=True)):
        sub_data, sub_lines = split_one(data, lines, index, entry)
        try:
            studies[dataset_id] = study_from_data(sub_data, sub_lines, source)
        except StudyError as exc:
            found[dataset_id] = exc.problems
    if found:
        raise StudyError(prefixed(found, len(entries)))
    return MultiStudy(str(data.get("name", "")), source, data, studies)


def validated_ids(entries: list[Any], model: type[BaseModel], key: str, file: str, lines: dict[Path_, int],
                  problems: list[Problem]) -> list[str]:
    """The id of each entry of the ``key:`` list that ``model`` accepts; the others' problems are added to
    ``problems``, named by the entry's id where it has one (``datasets[easy].cv.foldz``)."""
    ids: list[str] = []
    for index, entry in enumerate(entries):
        try:
            ids.append(model.model_validate(entry).id)  # type: ignore[attr-defined]
        except ValidationError as exc:
            named = entry.get("id") if isinstance(entry, dict) else None
            for bad in _pydantic_problems(exc, file, lines, (key, index), model):
                where = bad.path.replace(f"{key}[{index}]", f"{key}[{named}]", 1) if isinstance(named, str) else bad.path
                problems.append(Problem(bad.file, bad.line, where, bad.message))
    return ids


def duplicate_ids(ids: list[str], key: str, file: str, lines: dict[Path_, int]) -> list[Problem]:
    """An id used twice (it names a sub-run's folder)."""
    word = key.removesuffix("s")
    return [_problem(file, lines, (key,), f"{word} id {name!r} is used {count} times; each {word} needs its own id "
                     "(it names the sub-run's folder)") for name, count in Counter(ids).items() if count > 1]


def split_one(data: dict[str, Any], lines: dict[Path_, int], index: int,
              entry: dict[str, Any]) -> tuple[dict[str, Any], dict[Path_, int]]:
    """The single-dataset study of entry ``index``, and its line numbers (the entry's keys point into the list)."""
    sub = {k: copy.deepcopy(v) for k, v in data.items() if k != KEY}
    dataset = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("id", "cv")}
    sub["dataset"] = dataset
    if entry.get("cv"):
        sub["cv"] = _deep_merge(data.get("cv") or {}, entry["cv"])
    if isinstance(sub.get("name"), str):
        sub["name"] = f"{sub['name']}.{entry['id']}"
    sub_lines = {k: v for k, v in lines.items() if not k or k[0] != KEY}
    for key, line in lines.items():
        if key[:2] != (KEY, index):
            continue
        rest = key[2:]
        if rest[:1] == ("cv",):
            sub_lines[rest] = line
        elif rest[:1] != ("id",):
            sub_lines[("dataset", *rest)] = line
    return sub, sub_lines


def prefixed(found: dict[str, list[Problem]], datasets: int) -> list[Problem]:
    """Each dataset's problems with its id; a study-wide problem found identically for every dataset, once."""
    counts = Counter(p for problems in found.values() for p in problems)
    out: list[Problem] = []
    for dataset_id, problems in found.items():
        for p in problems:
            own = p.path.startswith(("dataset", "cv"))
            if not own and counts[p] == datasets:
                if p not in out:
                    out.append(p)
                continue
            rest = p.path.removeprefix("dataset") if p.path.startswith("dataset") else f".{p.path}"
            path = f"{KEY}[{dataset_id}]{rest}" if own else f"[{dataset_id}] {p.path}"
            out.append(Problem(p.file, p.line, path, p.message))
    return out
