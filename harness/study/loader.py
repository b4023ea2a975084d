"""Load a study file: YAML with line numbers, ``--set`` overrides, grid expansion, validation.

Every problem is collected and reported at once as ``FILE:LINE: field.path: message``.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from harness.defaults import ComponentDefaults
from harness.errors import HarnessError, Problem, StudyError, did_you_mean
from harness.stats._results import StatsError
from harness.stats.registry import metric_names, resolve_metric
from harness.study.schema import ID_PATTERN, MAX_NAME, ArmSpec, Study, TrainingSpec, study_context
from harness.study.yamlio import load_value, read_yaml_with_lines

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Arm:
    """One arm of the ablation, with the study's training settings merged with its overrides."""

    name: str
    backbone: str
    attention_name: str
    attention_options: dict[str, Any]
    pretrained: bool | str
    training: TrainingSpec


@dataclass(frozen=True)
class LoadedStudy:
    """A validated study: the schema object, its arms, and where it came from."""

    spec: Study
    arms: dict[str, Arm]
    source: Path
    data: dict[str, Any]
    lines: dict[Path_, int]

    @property
    def name(self) -> str:
        return self.spec.name

    def line_of(self, path: Sequence[str | int]) -> int | None:
        return _line_for(self.lines, tuple(path))


# -- line numbers -------------------------------------------------------------------------


FROM_SET = -1  # line marker for values that came from --set


def _line_for(lines: Mapping[Path_, int], path: Path_) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _problem(file: str, lines: Mapping[Path_, int], path: Path_, message: str) -> Problem:
    line = _line_for(lines, path)
    if line == FROM_SET:
        return Problem("--set", None, _dotted(path), message)
    return Problem(file, line, _dotted(path), message)


# -- overrides and grids --------------------------------------------------------------------


def set_line(key: str, value: Any) -> str:
    """``key=value`` with the value as one line of YAML, the inverse of how --set parses it."""
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], lines: dict[Path_, int]) -> list[Problem]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) in place; mark their lines."""
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(Problem("--set", None, item, "expected KEY=VALUE, e.g. training.epochs=2"))
            continue
        try:
            value = load_value(raw)  # YAML 1.2 numbers: 5e-4 is a float, as in the study file
        except (yaml.YAMLError, RecursionError) as exc:
            problems.append(Problem("--set", None, key, f"value is not valid YAML: {exc}"))
            continue
        target: Any = data
        parts = re.sub(r"\[([^\]]*)\]", r".\1", key.strip()).split(".")  # datasets[0].x == datasets.0.x
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "the study"
            if isinstance(target, list):
                index = _list_index(target, part)
                if index is None:
                    ids = [str(e["id"]) for e in target if isinstance(e, dict) and "id" in e]
                    problems.append(Problem("--set", None, key, f"{where} has no entry {part!r} (an index 0..{len(target) - 1}"
                                            + (f" or an id: {', '.join(ids)})" if ids else ")")))
                    break
                part = index  # type: ignore[assignment]
            elif not isinstance(target, dict):
                problems.append(Problem("--set", None, key, f"{where} is not a mapping or a list"))
                break
            if depth == len(parts) - 1:
                target[part] = value
                lines[tuple(parts)] = FROM_SET
            else:
                if isinstance(target, dict) and part not in target:  # a key --set made up: its errors are --set's
                    lines.setdefault(tuple(parts[:depth + 1]), FROM_SET)
                child = target.setdefault(part, {}) if isinstance(target, dict) else target[part]
                if isinstance(child, dict | list):  # a copy: a YAML alias (*common) shares the object with others
                    child = target[part] = copy.copy(child)
                target = child
    return problems


def _list_index(items: list[Any], part: str) -> int | None:
    """A list entry named by its position or by its ``id`` (``--set datasets.busi.options.path=...``)."""
    if part.isdigit() and int(part) < len(items):
        return int(part)
    return next((i for i, entry in enumerate(items) if isinstance(entry, dict) and str(entry.get("id")) == part), None)


def slug(value: Any) -> str:
    """A short readable id for one grid value: ``se`` , ``se-reduction4``, ``lr0.01``."""
    if isinstance(value, Mapping):
        name = str(value.get("name", ""))
        rest = [f"{k}{slug(v)}" for k, v in value.items() if k != "name"]
        return "-".join([name, *rest] if name else rest)
    if isinstance(value, list | tuple):
        return "_".join(slug(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._+=-]", "", str(value).lower())


def expand_grid(grid: Mapping[str, list[Any]], clashes: list[str] | None = None,
                label: Callable[[str, Any], str] = lambda axis, value: slug(value),
                joiner: str = "-") -> dict[str, dict[str, Any]]:
    """Cartesian product of the grid's axes, as arms (or settings) with stable readable ids: each value's
    ``label`` (default: its slug), joined by ``joiner``.

    Two combinations with the same id (e.g. ``weights/A.pt`` and ``weights/a.pt``) are described in ``clashes``."""
    axes = list(grid)
    arms: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(grid[a] for a in axes)):
        arm: dict[str, Any] = {}
        for axis, value in zip(axes, combo, strict=True):
            target = arm
            parts = axis.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = copy.deepcopy(value)
        name = joiner.join(label(axis, v) for axis, v in zip(axes, combo, strict=True))
        if name in arms and clashes is not None:
            clashes.append(f"grid values {', '.join(map(repr, combo))} give the arm id {name!r} of an earlier "
                           "combination; make the values differ in more than case and punctuation")
        arms.setdefault(name, arm)
    return arms


# -- validation -------------------------------------------------------------------------------


def _allowed_keys(model: type[BaseModel], parent: Sequence[str | int]) -> list[str]:
    current: Any = model
    for part in parent:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _unwrap(field.annotation)
        elif get_origin(current) is dict:
            current = _unwrap(get_args(current)[1])
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if get_origin(arg) is dict:
            return arg
    return annotation


def _pydantic_problems(
    exc: ValidationError, file: str, lines: Mapping[Path_, int], prefix: Path_, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "bool"})))
        loc = loc or tuple(error["loc"])  # a user's key that looks like pydantic's own tags (``datasets[0]``)
        path = prefix + loc
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            message = f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), allowed)}"
            if allowed:
                message += f"; allowed: {', '.join(allowed)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] in ("model_type", "model_attributes_type", "dict_type") and (keys := _allowed_keys(model, loc)):
            message = f"expected a mapping with keys from: {', '.join(keys)}, e.g. {{{keys[0]}: ...}} (got {error['input']!r})"
        elif "input" in error and not isinstance(error["input"], dict | list):
            message += f" (got {error['input']!r})"
        problems.append(_problem(file, lines, path, message))
    return problems


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_study(path: str | Path, overrides: Iterable[str] = (), defaults: ComponentDefaults | None = None) -> LoadedStudy:
    """Read, override, expand and schema-check a study file (unnamed components: ``defaults``'); raise StudyError."""
    source = Path(path)
    data, lines = read_yaml_with_lines(source)
    return study_from_data(data, lines, source, overrides, defaults)


def study_from_data(data: Any, lines: dict[Path_, int], source: Path, overrides: Iterable[str] = (), defaults: ComponentDefaults | None = None) -> LoadedStudy:
    """:func:`load_study` after the YAML is read (``data`` is changed in place by the overrides)."""
    file = str(source)
    if not isinstance(data, dict):
        raise StudyError([Problem(file, 1, "", "a study file must be a YAML mapping (name:, dataset:, arms: ...)")])
    problems = apply_overrides(data, overrides, lines)
    context = study_context(defaults, data.get("plugins"))
    partial = None
    try:
        spec = Study.model_validate(data, context=context)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, file, lines, (), Study)
        spec = None
        partial = _without_faulty_keys(data, exc, lines, source, context)
    arms: dict[str, Arm] = {}
    if spec is not None:
        arms, arm_problems = _resolve_arms(spec, data, file, lines, context)
        problems += arm_problems
    problems += _baseline_problems(data, file, lines)
    problems += _metric_problems(data, file, lines)
    if spec is not None and spec.tune is not None and not problems:
        problems += _tune_problems(spec, data, file, lines, context)
    if problems or spec is None:
        raise StudyError(problems, partial)
    return LoadedStudy(spec=spec, arms=arms, source=source, data=data, lines=lines)


def _without_faulty_keys(data: dict[str, Any], exc: ValidationError, lines: dict[Path_, int],
                         source: Path, context: Mapping[str, Any]) -> LoadedStudy | None:
    """The study with every key the schema refused left out (defaults apply), or None when that is not a
    valid study either: later stages (component names, the data) can then report their problems too."""
    pruned = copy.deepcopy(data)
    for error in exc.errors():
        parent: Any = pruned
        *path, last = error["loc"]
        for key in path:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(last, None)
    try:
        spec = Study.model_validate(pruned, context=context)
        arms, problems = _resolve_arms(spec, pruned, str(source), lines, context)
    except (ValidationError, HarnessError):
        return None
    return None if problems else LoadedStudy(spec=spec, arms=arms, source=source, data=pruned, lines=lines)


def _baseline_problems(data: dict[str, Any], file: str, lines: Mapping[Path_, int]) -> list[Problem]:
    """compare.baseline must name an arm; checked on the raw data so it shows even beside schema errors."""
    compare = data.get("compare")
    baseline = compare.get("baseline") if isinstance(compare, dict) else None
    if not isinstance(baseline, str):
        return []
    names = list(data["arms"]) if isinstance(data.get("arms"), dict) else []
    grid = data.get("grid")
    if isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values()):
        names += list(expand_grid(grid))
    if baseline in names:
        return []
    return [_problem(file, lines, ("compare", "baseline"), f"no arm named {baseline!r}{did_you_mean(baseline, names)}")]


# tune.metric name -> results.csv column; from the metric registry (CV metrics only: tuning never sees the test set)
TUNE_METRICS = {name: resolve_metric(name).column for name in metric_names(with_test=False)}


def _metric_problems(data: dict[str, Any], file: str, lines: Mapping[Path_, int]) -> list[Problem]:
    """compare.metric and tune.metric must be known metrics (checked on the raw data, beside schema errors)."""
    problems = []
    for section, allow_test in (("compare", True), ("tune", False)):
        block = data.get(section)
        name = block.get("metric") if isinstance(block, dict) else None
        if not isinstance(name, str):
            continue
        try:
            resolve_metric(name, allow_test=allow_test)
        except StatsError as exc:
            problems.append(_problem(file, lines, (section, "metric"), str(exc)))
    return problems


def _tune_problems(spec: Study, data: dict[str, Any], file: str, lines: Mapping[Path_, int], context: Mapping[str, Any]) -> list[Problem]:
    """Every searched key must be a real study key that accepts the range's values."""
    assert spec.tune is not None
    problems: list[Problem] = []
    arm_names = list(spec.arms) + (list(expand_grid(spec.grid)) if spec.grid else [])
    for name in spec.tune.arms or []:
        if name not in arm_names:
            problems.append(_problem(file, lines, ("tune", "arms"), f"no arm named {name!r}{did_you_mean(name, arm_names)}"))
    for key, param in spec.tune.space.items():
        samples = param.choices if param.choices is not None else [param.low, param.high]
        for value in samples:
            trial = copy.deepcopy(data)
            trial.pop("tune", None)
            bad = apply_overrides(trial, [set_line(key, value)], {})
            try:
                checked = Study.model_validate(trial, context=context)
                _, arm_problems = _resolve_arms(checked, trial, file, {}, context)
                bad += arm_problems
            except ValidationError as exc:
                bad += _pydantic_problems(exc, file, {}, (), Study)
            if bad:
                problems.append(_problem(file, lines, ("tune", "space", key),
                                         f"cannot search {key!r} with value {value!r}: {bad[0].path}: {bad[0].message}"))
                break
    return problems


def _resolve_arms(spec: Study, data: dict[str, Any], file: str, lines: Mapping[Path_, int],
                  context: Mapping[str, Any]) -> tuple[dict[str, Arm], list[Problem]]:
    problems: list[Problem] = []
    raw_arms: dict[str, tuple[dict[str, Any], Path_]] = {
        name: (arm.model_dump(), ("arms", name)) for name, arm in spec.arms.items()
    }
    if spec.grid:
        clashes: list[str] = []
        grid_arms = expand_grid(spec.grid, clashes)
        problems += [_problem(file, lines, ("grid",), clash) for clash in clashes]
        for name, raw in grid_arms.items():
            if name in raw_arms:
                problems.append(_problem(file, lines, ("grid",), f"grid arm {name!r} clashes with an explicit arm"))
                continue
            try:
                raw_arms[name] = (ArmSpec.model_validate(raw, context=context).model_dump(), ("grid",))
            except ValidationError as exc:
                problems += _pydantic_problems(exc, file, lines, ("grid",), ArmSpec)
    base_training = data.get("training") or {}
    arms: dict[str, Arm] = {}
    folded: dict[str, str] = {}
    for name, (raw, where) in raw_arms.items():
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            problems.append(_problem(file, lines, where, f"arm names {other!r} and {name!r} differ only in case: their "
                                     "cell folders collide on case-insensitive file systems; rename one"))
            continue
        if not re.fullmatch(ID_PATTERN, name):  # fullmatch: '$' alone would accept a trailing newline
            problems.append(_problem(file, lines, where, f"arm name {name!r} may use only letters, digits and . _ + = -"))
            continue
        if len(name) > MAX_NAME:  # it names the arm's folder: a file system refuses long names
            problems.append(_problem(file, lines, where, f"arm name {name[:40]}... has {len(name)} characters; "
                                     f"use at most {MAX_NAME}"))
            continue
        merged = _deep_merge(base_training, raw["training"])
        try:
            training = TrainingSpec.model_validate(merged, context=context)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, file, lines, (*where, "training"), TrainingSpec)
            continue
        attention = raw["attention"]
        att_name, att_options = (attention, {}) if isinstance(attention, str) else (
            attention["name"], {k: v for k, v in attention.items() if k != "name"})
        arms[name] = Arm(name, raw["backbone"], att_name, att_options, raw["pretrained"], training)
    return arms, problems


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
