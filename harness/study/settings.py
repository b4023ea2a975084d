"""Studies under several training settings (``settings:`` and/or ``settings_grid:``).

Each setting is a named set of overrides of ``training:``; it becomes one ordinary study (the same arms,
data, folds and seed, its training merged with the overrides), so the runner, validation and statistics stay
those of one study, and every arm runs under every setting on the same folds. ``settings_grid:`` generates
settings from lists of training values (``{training.optimizer.lr: [0.1, 0.01]}`` gives ``lr-0.1`` and
``lr-0.01``). Problems of one setting are reported with its id.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field

from harness.errors import HarnessError, Problem, StudyError
from harness.study.loader import (
    LoadedStudy,
    Path_,
    _deep_merge,
    _problem,
    apply_overrides,
    expand_grid,
    slug,
    study_from_data,
)
from harness.study.multi import KEY as DATASETS
from harness.study.multi import MIXED, MultiStudy, duplicate_ids, validated_ids
from harness.study.schema import ID_PATTERN, StrictModel
from harness.study.yamlio import read_yaml_with_lines

KEY = "settings"
GRID = "settings_grid"


class SettingEntry(StrictModel):
    """One entry of ``settings:``: its id (the sub-run's folder, ``RUN/settings/<id>/``) and overrides of the study's
    ``training:`` (merged as an arm's are)."""

    id: str = Field(pattern=ID_PATTERN, description="the setting's sub-run folder, RUN/settings/<id>/")
    training: dict[str, Any] = Field(default_factory=dict, description="overrides of the study's training.*")


def declares_settings(path: Path) -> bool:
    """Whether the study file declares settings (``settings:`` or ``settings_grid:``)."""
    try:
        data, _ = read_yaml_with_lines(Path(path))
    except HarnessError:
        return False
    return isinstance(data, dict) and (KEY in data or GRID in data)


def grid_label(axis: str, value: Any) -> str:
    """``lr-0.1`` for ``training.optimizer.lr: 0.1``: the key's last part and the value."""
    return f"{axis.rsplit('.', 1)[-1]}-{slug(value)}"


def _grid_entries(data: dict[str, Any], file: str, lines: dict[Path_, int], problems: list[Problem]) -> list[dict[str, Any]]:
    grid = data.get(GRID)
    if grid is None:
        return []
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        problems.append(_problem(file, lines, (GRID,), "settings_grid: must map training keys to non-empty lists of "
                                 "values, e.g. {training.optimizer.lr: [0.1, 0.01, 0.001]}"))
        return []
    bad = [k for k in grid if not str(k).startswith("training.")]
    for key in bad:
        problems.append(_problem(file, lines, (GRID, key), f"a setting overrides training only: write the key as "
                                 f"training.{key} (e.g. training.optimizer.lr)"))
    if bad:
        return []
    clashes: list[str] = []
    generated = expand_grid(grid, clashes, label=grid_label, joiner="_")
    problems += [_problem(file, lines, (GRID,), clash) for clash in clashes]
    for axis in grid:  # the generated overrides point at their grid key's line
        line = lines.get((GRID, axis), lines.get((GRID,)))
        if line is not None:
            lines.setdefault((KEY, "grid", *str(axis).split(".")), line)
    return [{"id": name, **override} for name, override in generated.items()]


def load_settings(path: Path, overrides: Iterable[str] = ()) -> MultiStudy:
    """Read a study with settings; StudyError with every problem, each setting's prefixed by its id."""
    source = Path(path)
    data, lines = read_yaml_with_lines(source)
    file = str(source)
    problems = apply_overrides(data, overrides, lines)
    if DATASETS in data:
        problems.append(_problem(file, lines, (KEY,) if KEY in data else (GRID,), MIXED))
    entries = data.get(KEY, [])
    if not isinstance(entries, list):
        problems.append(_problem(file, lines, (KEY,), "settings: must be a list of {id: NAME, training: {...}}, e.g. "
                                 "[{id: lr-high, training: {optimizer: {lr: 0.1}}}]"))
        raise StudyError(problems)
    ids = validated_ids(entries, SettingEntry, KEY, file, lines, problems)
    generated = _grid_entries(data, file, lines, problems)
    ids += [g["id"] for g in generated]
    if len(ids) < 2 and not problems:
        problems.append(_problem(file, lines, (KEY,) if KEY in data else (GRID,), f"{len(ids)} setting(s): list two "
                                 "or more (the point is to compare the arms across them), or drop settings: and "
                                 "put the overrides into training:"))
    problems += duplicate_ids(ids, KEY, file, lines)
    if problems:
        raise StudyError(problems)
    resolved = {k: v for k, v in data.items() if k not in (KEY, GRID)}
    resolved[KEY] = [{"id": e["id"], "training": copy.deepcopy(e.get("training", {}))} for e in [*entries, *generated]]
    studies: dict[str, LoadedStudy] = {}
    found: dict[str, list[Problem]] = {}
    for index, entry in enumerate(resolved[KEY]):
        where: Path_ = (KEY, index) if index < len(entries) else (KEY, "grid")
        sub_data, sub_lines = _one_setting(resolved, lines, where, entry)
        try:
            studies[entry["id"]] = study_from_data(sub_data, sub_lines, source)
        except StudyError as exc:
            found[entry["id"]] = _own_named(exc.problems, entry["id"], lines, where)
    if found:
        raise StudyError(prefixed(found, len(resolved[KEY])))
    return MultiStudy(str(data.get("name", "")), source, resolved, studies, kind=KEY)


def _one_setting(data: dict[str, Any], lines: dict[Path_, int], where: Path_,
                 entry: dict[str, Any]) -> tuple[dict[str, Any], dict[Path_, int]]:
    """The ordinary study of one setting and its line numbers (its overrides point into its entry)."""
    sub = {k: copy.deepcopy(v) for k, v in data.items() if k != KEY}
    sub["training"] = _deep_merge(data.get("training") or {}, entry.get("training") or {})
    if isinstance(sub.get("name"), str):
        sub["name"] = f"{sub['name']}.{entry['id']}"
    sub_lines = {k: v for k, v in lines.items() if not k or k[0] not in (KEY, GRID)}
    for key, line in lines.items():
        if key[:len(where)] == where and key[len(where):len(where) + 1] == ("training",):
            sub_lines[key[len(where):]] = line
    return sub, sub_lines


def _own_lines(lines: dict[Path_, int], where: Path_) -> set[int]:
    return {line for key, line in lines.items() if key[:len(where)] == where}


def _own_named(problems: list[Problem], setting: str, lines: dict[Path_, int], where: Path_) -> list[Problem]:
    """A problem on a line of the setting's own entry is named ``settings[id].path`` (the others: see :func:`prefixed`)."""
    own = _own_lines(lines, where) - {lines.get(("training",))}
    return [Problem(p.file, p.line, f"{KEY}[{setting}].{p.path}", p.message) if p.line in own else p for p in problems]


def prefixed(found: dict[str, list[Problem]], settings: int) -> list[Problem]:
    """Every setting's problems with its id (``[id] path``); one found identically under all ``settings``
    settings (a study-wide one), once and unprefixed."""
    counts = Counter(p for problems in found.values() for p in set(problems))
    out: list[Problem] = []
    for setting, problems in found.items():
        for p in problems:
            if p.path.startswith(f"{KEY}["):
                out.append(p)
            elif counts[p] < settings:
                out.append(Problem(p.file, p.line, f"[{setting}] {p.path}", p.message))
            elif p not in out:
                out.append(p)
    return out
