"""The study file's JSON Schema (``harness schema``): the pydantic study model with the registered
components wired in, for an editor's completion and inline errors.

Wired in: component names as enums (backbones, attention variants, datasets, optimizers, schedulers) and
each component's option model (:func:`harness.options.options_model`) as one ``anyOf`` branch per name
(``attention: {name: se, ...}``, ``training.optimizer``, ``training.scheduler``, ``dataset.options``).
Limits: the names are those of the plugins loaded when the schema was made (add ``--plugin MODULE`` for a
study's ``plugins:``); ``tune.space`` keys, ``--set`` and cross-field rules (selection needs an inner
split, SE's reduction against a block's channels) are checked by ``harness validate`` only.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from harness.options import is_open, options_model
from harness.study.schema import AUGMENT_PRESETS, ID_PATTERN, Study

if TYPE_CHECKING:
    from harness.registry import Registry

DRAFT = "http://json-schema.org/draft-07/schema#"  # what the YAML language server supports
REF = "#/$defs/{model}"


def study_json_schema(registry: Registry) -> dict[str, Any]:
    """The JSON Schema of a study file for the components in ``registry``."""
    schema = Study.model_json_schema(ref_template=REF)
    defs: dict[str, Any] = schema["$defs"]

    def branches(kind: str, required_name: bool, default: str | None = None) -> list[dict[str, Any]]:
        """One object schema per component: ``name`` is the component, the other keys its options; the
        ``default`` component (the registry's) may leave its name out."""
        out = []
        for name in registry.names(kind):
            model = _model_schema(options_model(registry.get(kind, name)), defs)
            named = {"const": name, "description": registry.get(kind, name).summary, **({"default": name} if name == default else {})}
            model["properties"] = {"name": named, **model.get("properties", {})}
            needs_name = required_name and name != default
            model["required"] = [*(["name"] if needs_name else []), *model.get("required", [])]
            out.append(model)
        return out

    def names(kind: str) -> dict[str, Any]:
        return {"enum": registry.names(kind)}

    arm = defs["ArmSpec"]["properties"]
    families = [name for name in registry.names("backbones") if name.endswith("/*")]  # timm/* : any timm/<name>
    backbone = [{"enum": [n for n in registry.names("backbones") if n not in families]},
                *({"type": "string", "pattern": "^" + re.escape(f[:-1]) + ".+$"} for f in families)]
    arm["backbone"] = {"anyOf": backbone, "description": "a registered backbone (harness list backbones)"}
    default = registry.defaults.names.get  # kind -> the component a study gets where it names none (None: no default)
    arm["attention"] = {"anyOf": [names("attention"), *branches("attention", True, default("attention"))],
                        **({"default": default("attention")} if default("attention") else {}),
                        "description": "a variant's name, or {name: VARIANT, OPTION: value, ...}"}
    defs["OptimizerSpec"] = {"anyOf": branches("optimizers", True, default("optimizers")),
                             "description": defs["OptimizerSpec"]["description"]}
    defs["SchedulerSpec"] = {"anyOf": branches("schedulers", True, default("schedulers")),
                             "description": defs["SchedulerSpec"]["description"]}
    # an arm's training overrides merge into the study's training, so its optimizer needs no name of its own
    override = copy.deepcopy(defs["TrainingSpec"])
    override["properties"]["optimizer"] = {"anyOf": branches("optimizers", False)}
    override["properties"]["scheduler"] = {"anyOf": branches("schedulers", False)}
    defs["TrainingOverride"] = override
    arm["training"] = {"$ref": REF.format(model="TrainingOverride"), "description": arm["training"]["description"]}

    dataset = defs["DatasetSpec"]
    dataset["properties"]["name"] = names("datasets")
    dataset["anyOf"] = [{"properties": {"name": {"const": name}, "options": _model_schema(
        options_model(registry.get("datasets", name)), defs)}} for name in registry.names("datasets")]
    augment = dataset["properties"]["augment"]
    dataset["properties"]["augment"] = {"anyOf": [{"enum": sorted(AUGMENT_PRESETS)}, {"enum": [None, False]},
                                                  {"$ref": augment["$ref"]}], "description": augment["description"]}
    _multi_dataset(schema, dataset)
    _settings(schema)
    loggers = branches("loggers", True) if "loggers" in registry.components else []
    schema["properties"]["loggers"] = {"type": "array", "items": {"anyOf": [names("loggers"), *loggers]},
                                       "description": schema["properties"]["loggers"].get("description", "")}
    grid = next(s for s in schema["properties"]["grid"]["anyOf"] if s.get("type") == "object")
    grid["properties"] = {key: {"type": "array", "items": arm[key]} for key in ("backbone", "attention")}
    return _draft7({"$schema": DRAFT, "title": "harness study file", **schema})


def _multi_dataset(schema: dict[str, Any], dataset: dict[str, Any]) -> None:
    """``datasets:`` (a list of dataset specs with an ``id`` and their own ``cv:`` keys) instead of ``dataset:``."""
    defs = schema["$defs"]
    entry = copy.deepcopy(dataset)
    entry["properties"]["id"] = {"type": "string", "pattern": ID_PATTERN,
                                 "description": "the dataset's sub-run folder, RUN/datasets/<id>/"}
    entry["properties"]["cv"] = {"type": "object", "properties": copy.deepcopy(defs["CVSpec"]["properties"]),
                                 "additionalProperties": False,
                                 "description": "overrides of the study's cv.* for this dataset"}
    entry["required"] = [*entry.get("required", []), "id"]
    defs["DatasetEntry"] = entry
    schema["properties"]["datasets"] = {"type": "array", "minItems": 1, "items": {"$ref": REF.format(model="DatasetEntry")},
                                        "description": "several datasets (instead of dataset:): every arm runs on each"}
    schema["required"] = [key for key in schema.get("required", []) if key != "dataset"]
    schema["oneOf"] = [{"required": ["dataset"]}, {"required": ["datasets"]}]


def _settings(schema: dict[str, Any]) -> None:
    """``settings:`` (named overrides of training.*) and ``settings_grid:`` (training keys -> lists of values)."""
    from harness.study.settings import SettingEntry

    entry = SettingEntry.model_json_schema(ref_template=REF)
    entry["properties"]["training"] = {"$ref": REF.format(model="TrainingOverride"),
                                       "description": entry["properties"]["training"]["description"]}
    entry["additionalProperties"] = False
    schema["$defs"]["SettingEntry"] = entry
    schema["properties"]["settings"] = {
        "type": "array", "items": {"$ref": REF.format(model="SettingEntry")},
        "description": "training settings: every arm runs under each on the same folds (RUN/settings/<id>/)"}
    schema["properties"]["settings_grid"] = {
        "type": "object", "propertyNames": {"pattern": r"^training\."},
        "additionalProperties": {"type": "array", "minItems": 1},
        "description": "settings generated from training keys and their values, e.g. {training.optimizer.lr: [0.1, "
                       "0.01]} gives the settings lr-0.1 and lr-0.01"}
    schema.setdefault("allOf", []).append({"not": {"required": ["datasets", "settings"]}})


def _draft7(node: Any) -> Any:
    """pydantic writes draft 2020-12; its one keyword draft 7 lacks is ``prefixItems`` (tuples): ``items: [...]``."""
    if isinstance(node, dict):
        out = {key: _draft7(value) for key, value in node.items()}
        if "prefixItems" in out:
            out["items"] = out.pop("prefixItems")
        return out
    if isinstance(node, list):
        return [_draft7(value) for value in node]
    return node


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON Schema with its own definitions moved into ``defs``."""
    sub = model.model_json_schema(ref_template=REF)
    defs.update(sub.pop("$defs", {}))
    sub.pop("title", None)
    sub["additionalProperties"] = is_open(model)
    return sub
