"""Plugin options checked through a pydantic model: every problem at once, with close matches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, did_you_mean

M = TypeVar("M", bound=BaseModel)


def option_errors(model: type[BaseModel], options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, message)`` for every bad option; empty when ``options`` fit ``model``."""
    try:
        model.model_validate(dict(options))
    except ValidationError as exc:
        return [_describe(model, err) for err in exc.errors()]
    return []


def _describe(model: type[BaseModel], err: Any) -> tuple[str, str]:
    key = str(err["loc"][0]) if err["loc"] else ""
    known = list(model.model_fields)
    if err["type"] == "extra_forbidden":
        return key, f"unknown option {key!r}{did_you_mean(key, known)}; options: {', '.join(known)}"
    if err["type"] == "missing":
        what = model.model_fields[key].description or ""
        return key, f"required option {key!r} is missing" + (f" ({what})" if what else "")
    return key, f"option {key!r}: {err['msg']}"


def parse_options(model: type[M], options: Mapping[str, Any], owner: str) -> M:
    """The options as ``model``; a :class:`HarnessError` listing every problem otherwise."""
    errors = option_errors(model, options)
    if errors:
        raise HarnessError("; ".join(f"{owner}: {message}" for _, message in errors))
    return model.model_validate(dict(options))


def options_table(model: type[BaseModel]) -> list[tuple[str, str, str]]:
    """``(name, default, description)`` per option, for documentation."""
    rows = []
    for name, field in model.model_fields.items():
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        default = "required" if field.is_required() else ("unset" if value is None else f"`{value!r}`")
        rows.append((name, default, field.description or ""))
    return rows


def options_markdown(entries: list[tuple[str, type[BaseModel] | None]]) -> str:
    """A Markdown table of every option of every component, generated from their option models."""
    lines = ["| dataset | option | default | meaning |", "| --- | --- | --- | --- |"]
    for name, model in entries:
        if model is None:
            lines.append(f"| `{name}` | (no option model) | | |")
            continue
        for option, default, description in options_table(model):
            cell = description.replace("|", "\\|")
            lines.append(f"| `{name}` | `{option}` | {default} | {cell} |")
    return "\n".join(lines)
