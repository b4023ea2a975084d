"""Reading study YAML safely: line numbers for every key, YAML 1.2 numbers, and refusals for
files that would exhaust memory or the stack (alias bombs, recursive aliases, deep nesting)
or silently lose data (duplicate keys)."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError, Problem, StudyError

Path_ = tuple[str | int, ...]

MAX_NODES = 100_000  # YAML nodes after alias expansion; a real study has a few hundred
MAX_DEPTH = 64  # nesting levels; a real study has fewer than 10
MAX_BYTES = 1_000_000  # file size, checked before parsing; a real study has a few kilobytes
MERGE_TAG = "tag:yaml.org,2002:merge"


class StudyYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats without a dot (``5e-4``, ``1E6``) as numbers."""


StudyYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_value(text: str) -> Any:
    """One YAML value (e.g. a ``--set`` value) with the study file's rules; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=StudyYamlLoader)  # noqa: S506 - a SafeLoader subclass


class _Refused(Exception):
    def __init__(self, node: yaml.Node, message: str):
        super().__init__(message)
        self.line = node.start_mark.line + 1


def _guard(root: yaml.Node, file: str) -> list[Problem]:
    """Refuse alias expansion beyond MAX_NODES, recursive aliases, nesting beyond MAX_DEPTH; list duplicate keys."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    duplicates: list[Problem] = []

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:  # an alias to a node already measured: counted again, not walked again
            return sizes[key]
        if key in active:
            raise _Refused(node, "a recursive alias (an anchor used inside itself); write the value out")
        if depth > MAX_DEPTH:
            raise _Refused(node, f"nested deeper than {MAX_DEPTH} levels; a study file needs far fewer")
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE_TAG:
                    line = key_node.start_mark.line + 1
                    if key_node.value in seen:
                        duplicates.append(Problem(file, line, key_node.value, (
                            f"duplicate key {key_node.value!r} (first on line {seen[key_node.value]}, again on line "
                            f"{line}); YAML would silently keep only the second: merge them into one")))
                    seen.setdefault(key_node.value, line)
                total += size(key_node, depth + 1) + size(value_node, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        active.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise _Refused(node, f"aliases (*name) expand this file to more than {MAX_NODES:,} values "
                                 "(an 'alias bomb'?); refused before expanding it")
        return total

    try:
        size(root, 0)
    except _Refused as exc:
        return [Problem(file, exc.line, "", str(exc))]
    return duplicates


def read_yaml_with_lines(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML safely and map each dotted path to its 1-based line."""
    try:
        _check_file(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"{path}: study file not found") from None
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except IsADirectoryError:
        raise HarnessError(f"{path}: is a folder, not a study file") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read study file: {exc.strerror}") from None
    try:
        loader = StudyYamlLoader(text)
    except yaml.YAMLError as exc:  # e.g. control characters the YAML reader refuses
        raise StudyError([Problem(str(path), None, "", f"not a YAML text: {exc}")]) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            refused = _guard(node, str(path))
            if refused:
                raise StudyError(refused)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        raise StudyError([Problem(str(path), line, "", f"malformed YAML{col}: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise StudyError([Problem(str(path), None, "", f"malformed YAML: {exc}")]) from None
    except RecursionError:
        raise StudyError([Problem(str(path), None, "", f"nested deeper than {MAX_DEPTH} levels; "
                                                       "a study file needs far fewer")]) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _check_file(path: Path) -> None:
    """Refuse, before reading it, a study file that is not a regular file or is far too large to parse."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(info.st_mode):
        raise HarnessError(f"{path}: not a regular file (a FIFO, device or socket); give the path of a study file")
    if info.st_size > MAX_BYTES:
        raise HarnessError(f"{path}: {info.st_size:,} bytes; a study file has a few kilobytes (limit "
                           f"{MAX_BYTES:,} bytes, refused before parsing): is this the right file?")


def _collect_lines(node: yaml.Node, prefix: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[prefix + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, prefix + (key,), lines)
            lines[prefix + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, prefix + (index,), lines)
