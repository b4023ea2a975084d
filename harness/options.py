"""Component options checked through pydantic models: one path for every kind, every problem at once.

Each ``*Info`` may declare ``options`` (a pydantic model); a plugin that declares none gets one derived
from its factory's signature (:func:`options_model`), so ``validate``, the listings and the JSON Schema
treat every component alike.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from harness.contracts import KIND_NAMES as SINGULAR
from harness.errors import HarnessError, did_you_mean


class Components(Protocol):
    """What option checks need of the registry (its ``get``), without importing it (it imports this)."""

    def get(self, kind: str, name: str) -> Any: ...

M = TypeVar("M", bound=BaseModel)

# the factory attribute of each Info type and the position of the options in its call
_FACTORIES = {"BackboneInfo": ("build", None), "AttentionInfo": ("make", 0), "DatasetInfo": ("load", None),
              "OptimizerInfo": ("build", 1), "SchedulerInfo": ("build", 1)}


class NoOptions(BaseModel):
    """A component that takes no options."""

    model_config = ConfigDict(extra="forbid")


def options_model(info: Any) -> type[BaseModel]:
    """The component's option model: the one it declares, else one derived from its factory's signature.

    Derived: an options parameter annotated with a pydantic model or a ``TypedDict`` gives that model
    (a TypedDict through :func:`pydantic.create_model`, unknown keys refused); an unannotated one
    (``Mapping[str, Any]``) gives an open model, so the plugin receives its options unchecked, as before;
    a factory with no options parameter (backbones) takes no options.
    """
    declared = getattr(info, "options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    attribute, position = _FACTORIES.get(type(info).__name__, ("", None))
    factory = getattr(info, attribute, None)
    if position is None or factory is None:
        return NoOptions if type(info).__name__ == "BackboneInfo" else _open(info)
    try:
        parameters = list(inspect.signature(factory).parameters)
        hints = typing.get_type_hints(factory)
    except (TypeError, ValueError, NameError):
        return _open(info)
    hint = hints.get(parameters[position]) if position < len(parameters) else None
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    if hint is not None and typing.is_typeddict(hint):
        required: frozenset[str] = getattr(hint, "__required_keys__", frozenset())
        fields: dict[str, Any] = {key: (kind, ... if key in required else None)
                                  for key, kind in typing.get_type_hints(hint).items()}
        return create_model(f"{getattr(hint, '__name__', 'Typed')}Model", __config__=ConfigDict(extra="forbid"),
                            **fields)
    return _open(info)


def _open(info: Any) -> type[BaseModel]:
    return create_model(f"{getattr(info, 'name', 'plugin')}_options", __config__=ConfigDict(extra="allow"),
                        __doc__="options not declared: passed to the plugin unchecked")


def is_open(model: type[BaseModel]) -> bool:
    """Whether ``model`` accepts keys it does not declare (an undeclared plugin's options)."""
    return model.model_config.get("extra") == "allow"


def option_errors(model: type[BaseModel], options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, message)`` for every bad option; empty when ``options`` fit ``model``."""
    try:
        model.model_validate(dict(options))
    except ValidationError as exc:
        return [_describe(model, err) for err in exc.errors()]
    return []


def _describe(model: type[BaseModel], err: Any) -> tuple[str, str]:
    key = ".".join(str(part) for part in err["loc"])
    top = str(err["loc"][0]) if err["loc"] else ""
    known = list(model.model_fields)
    if err["type"] == "extra_forbidden":
        listed = ", ".join(known) or "none"
        return key, f"no option {top!r}{did_you_mean(top, known)}; options: {listed}"
    if err["type"] == "missing":
        field = model.model_fields.get(top)
        what = field.description if field is not None and field.description else ""
        return key, f"required option {key!r} is missing" + (f" ({what})" if what else "")
    if err["type"] == "value_error":  # a validator's own message names the option and the fix
        return key, str(err["ctx"]["error"])
    return key, f"option {key!r}: {err['msg']} (got {err['input']!r})" if key else str(err["msg"])


def component_option_errors(registry: Components, kind: str, name: str,
                            options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, message)`` for every bad option of component ``name`` of ``kind``, each message naming the
    component (``scheduler 'step': no option 'steps' (did you mean 'step_size'?)``): how ``validate`` checks
    the options of every kind."""
    info = registry.get(kind, name)
    return [(key, f"{SINGULAR[kind]} {name!r}: {message}") for key, message in option_errors(options_model(info), options)]


def parse_options(model: type[M], options: Mapping[str, Any], owner: str) -> M:
    """The options as ``model``; a :class:`HarnessError` listing every problem otherwise."""
    errors = option_errors(model, options)
    if errors:
        raise HarnessError("; ".join(f"{owner}: {message}" for _, message in errors))
    return model.model_validate(dict(options))


def options_table(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` per option, for documentation; types from the JSON Schema."""
    properties = model.model_json_schema().get("properties", {})
    rows = []
    for name, field in model.model_fields.items():
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        default = "required" if field.is_required() else ("unset" if value is None else f"`{value!r}`")
        rows.append((name, schema_type(properties.get(name, {})), default, field.description or ""))
    return rows


def schema_type(schema: Mapping[str, Any]) -> str:
    """A short human reading of one property's JSON Schema: ``int >= 1``, ``avg \\| max``, ``list of int``."""
    if "enum" in schema or "const" in schema:
        return " \\| ".join(repr(v) for v in schema.get("enum", [schema.get("const")]))
    if "anyOf" in schema:
        parts = [schema_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(parts) + (" or unset" if len(parts) < len(schema["anyOf"]) else "")
    kind = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}.get(schema.get("type", ""),
                                                                                       schema.get("type", "any"))
    if kind == "array":
        items = schema.get("prefixItems")
        kind = f"[{', '.join(schema_type(s) for s in items)}]" if items else f"list of {schema_type(schema.get('items', {}))}"
    bounds = [f"{op} {schema[key]:g}" for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                        ("maximum", "<="), ("exclusiveMaximum", "<")) if key in schema]
    return " ".join([kind, *bounds])


def options_markdown(kind: str, entries: list[tuple[str, type[BaseModel]]]) -> str:
    """A Markdown table of every option of every component of ``kind``, generated from their option models."""
    lines = [f"| {kind.rstrip('s')} | option | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, model in entries:
        rows = options_table(model)
        if is_open(model):
            lines.append(f"| `{name}` | (not declared) | | | passed to the plugin unchecked |")
        elif not rows:
            lines.append(f"| `{name}` | (no options) | | | |")
        for option, kind_, default, description in rows:
            cell = description.replace("|", "\\|")
            lines.append(f"| `{name}` | `{option}` | {kind_} | {default} | {cell} |")
    return "\n".join(lines)
