"""Defaults are registry properties (harness/defaults.py): a plugin marks its component the default, the study
schema fills what a study leaves unnamed from the registry it is loaded against, and the core spells no
built-in component's name."""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.api import AttentionInfo, AttentionPlan, OptimizerInfo, SchedulerInfo, hookimpl
from harness.errors import HarnessError, StudyError
from harness.registry import Registry, build_registry, make_plugin_manager

HARNESS = Path(__file__).parents[1] / "harness"
OTHER_BUILTINS = ["harness_plugins.models.plugin", "harness_plugins.datasets.plugin"]


def _build_adam(params: Any, options: Mapping[str, Any]) -> Any:
    import torch

    return torch.optim.Adam(params, **options)


def _build_flat(optimizer: Any, options: Mapping[str, Any], epochs: int) -> Any:
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


class ThirdParty:
    """A third party's plugin: its own optimizer and scheduler, marked the defaults, and attention variants
    (``off``: no attention, marked identity and default)."""

    def __init__(self, *, mark: bool = True) -> None:
        self.mark = mark

    @hookimpl
    def register_optimizers(self) -> list[OptimizerInfo]:
        return [OptimizerInfo("adam3p", _build_adam, "torch.optim.Adam, a third party's", default=self.mark)]

    @hookimpl
    def register_schedulers(self) -> list[SchedulerInfo]:
        return [SchedulerInfo("flat", _build_flat, "a constant learning rate", default=self.mark)]

    @hookimpl
    def register_attention_variants(self) -> list[AttentionInfo]:
        def make_off(options: Mapping[str, Any]) -> AttentionPlan:
            return AttentionPlan(layer=None)

        def make_gate(options: Mapping[str, Any]) -> AttentionPlan:
            from torch import nn

            return AttentionPlan(layer=lambda channels: nn.Identity())

        return [AttentionInfo("off", make_off, "no attention", default=self.mark, identity=self.mark),
                AttentionInfo("gate", make_gate, "an identity module where attention goes")]


def _registry(*builtins: str, third_party: ThirdParty | None = None) -> Registry:
    pm, records = make_plugin_manager(builtins, strict=True, entry_points=False)
    if third_party is not None:
        pm.register(third_party, name="third-party")
    return build_registry(pm, records)


def _study(tmp_path: Path, tiny_study: dict[str, Any], **changes: Any) -> Path:
    """The tiny study with no optimizer, scheduler or attention named (arms: plain and another)."""
    study = copy.deepcopy(tiny_study)
    study["training"].pop("optimizer")
    study["training"].pop("scheduler")
    study["arms"] = {"plain": {"backbone": "resnet20"}, "other": {"backbone": "resnet20", "attention": "gate"}}
    study.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_a_study_naming_none_gets_the_third_party_default(tmp_path: Path, tiny_study: dict[str, Any]) -> None:
    import torch

    from harness.study.arm_identity import resolved_study
    from harness.study.loader import load_study

    registry = _registry(*OTHER_BUILTINS, third_party=ThirdParty())
    assert (registry.default("optimizers"), registry.default("schedulers"), registry.default("attention"),
            registry.identity_attention()) == ("adam3p", "flat", "off", "off")
    study = load_study(_study(tmp_path, tiny_study), defaults=registry.defaults)
    assert {(a.attention_name, a.training.optimizer.name, a.training.scheduler.name) for a in study.arms.values()} \
        == {("off", "adam3p", "flat"), ("gate", "adam3p", "flat")}
    resolved = resolved_study(study)  # what the run directory's study.yaml records
    assert resolved["training"]["optimizer"]["name"] == "adam3p" and resolved["training"]["scheduler"]["name"] == "flat"
    assert resolved["arms"]["plain"]["attention"] == {"name": "off"}
    optimizer = registry.optimizer(study.arms["plain"].training.optimizer.name).build([torch.zeros(1, requires_grad=True)],
                                                                                   {"lr": 0.01})
    assert isinstance(optimizer, torch.optim.Adam)


def test_the_builtins_are_the_defaults_of_a_study_loaded_without_a_registry(write_study: Any) -> None:
    from harness.study.loader import load_study

    path = write_study({"training": {"optimizer": {"name": None}, "scheduler": {"name": None}}},
                       arms={"plain": {"backbone": "resnet20"}})
    arm = load_study(path).arms["plain"]  # the registry of the entry points (the built-ins) and its plugins
    assert (arm.attention_name, arm.training.optimizer.name, arm.training.scheduler.name) == ("none", "sgd", "step")


def test_attention_options_without_a_name_are_the_default_variants(write_study: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    path = write_study(arms={"plain": {"backbone": "resnet20", "attention": {}},
                             "odd": {"backbone": "resnet20", "attention": {"reduction": 4}}})
    assert main(["validate", str(path), "--no-data"]) == 2  # once a KeyError traceback
    err = capsys.readouterr().err
    assert "arms.odd.attention.reduction: attention variant 'none': no option 'reduction'" in err
    assert "arms.plain" not in err


def test_two_plugins_claiming_the_default_is_an_error_naming_both() -> None:
    with pytest.raises(HarnessError) as error:
        _registry("harness_plugins.optim.plugin", third_party=ThirdParty())
    message = str(error.value)
    assert "two optimizers claim to be the default one" in message
    assert "'adam3p' (plugin 'third-party')" in message and "'sgd' (plugin 'harness_plugins.optim.plugin')" in message


def test_without_a_default_the_study_must_name_one(tmp_path: Path, tiny_study: dict[str, Any]) -> None:
    from harness.study.loader import load_study

    registry = _registry(*OTHER_BUILTINS, third_party=ThirdParty(mark=False))
    with pytest.raises(HarnessError, match="no optimizer is the default"):
        registry.default("optimizers")
    with pytest.raises(StudyError) as error:
        load_study(_study(tmp_path, tiny_study), defaults=registry.defaults)
    paths = {problem.path for problem in error.value.problems}
    assert {"training.optimizer.name", "training.scheduler.name", "arms.plain.attention"} <= paths
    assert "name one here" in str(error.value)


def test_zero_last_bn_asks_the_registry_which_variant_is_no_attention(tmp_path: Path, tiny_study: dict[str, Any]) -> None:
    from harness.study.loader import load_study

    registry = _registry(*OTHER_BUILTINS, third_party=ThirdParty())
    plain_only = _study(tmp_path, tiny_study, init="zero_last_bn", arms={"plain": {"backbone": "resnet20"}})
    assert load_study(plain_only, defaults=registry.defaults).arms["plain"].attention_name == "off"
    with pytest.raises(StudyError, match="zero_last_bn zero-initialises"):  # "gate" is attention, whatever its name
        load_study(_study(tmp_path, tiny_study, init="zero_last_bn"), defaults=registry.defaults)


def test_the_json_schema_shows_the_registrys_defaults() -> None:
    from harness.study.json_schema import study_json_schema

    schema = study_json_schema(_registry(*OTHER_BUILTINS, third_party=ThirdParty()))
    assert schema["$defs"]["ArmSpec"]["properties"]["attention"]["default"] == "off"
    (adam,) = schema["$defs"]["OptimizerSpec"]["anyOf"]
    assert adam["properties"]["name"]["default"] == "adam3p" and "name" not in adam["required"]


def test_a_missing_group_column_gets_the_datasets_own_hint(tmp_path: Path, tiny_study: dict[str, Any],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from harness.cli.main import main

    for i in range(8):
        (tmp_path / "images" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), 40 * i).save(tmp_path / "images" / f"c{i % 2}" / f"{i}.png")
    for name, hint in (("folder", True), ("csv", False)):
        study = copy.deepcopy(tiny_study) | {"cv": {"folds": 2, "group": "patient"}}
        study["dataset"] = {"name": name, "image_size": 8, "options": {"path": "images"}}
        if name == "csv":
            (tmp_path / "labels.csv").write_text("image,label\n" + "".join(f"images/c{i % 2}/{i}.png,c{i % 2}\n"
                                                                            for i in range(8)))
            study["dataset"]["options"]["path"] = "labels.csv"
        (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
        assert main(["validate", str(tmp_path / "study.yaml")]) == 2
        err = capsys.readouterr().err
        assert "cv.group: the dataset has no column 'patient'" in err
        assert ("get a column 'group' from dataset.options.group_pattern" in err) is hint  # the plugin's hint only


# -- the core spells no built-in component's name ------------------------------------------------------------

EVERYWHERE = {"sgd", "step", "phantom", "folder", "filename"}  # never a literal in the core
AS_COMPONENT = EVERYWHERE | {"none"}  # "none" also means other things (checkpoints, pruner, augment preset)
COMPONENT_KEYS = {"name", "attention", "optimizer", "scheduler", "dataset", "default"}


def _names(node: ast.AST | None) -> set[str]:
    """The component names among the string constants of ``node`` (a literal, or a tuple/list/set of them)."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and i.value in AS_COMPONENT}


def builtin_names_in(source: str) -> list[str]:
    """``line: name`` for each built-in component name the code spells: any of EVERYWHERE, and "none" where
    a component goes (a default of a component field or parameter, a ``name`` key, a comparison with an
    attention, an argument beside the registry)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        hits: set[str] = set()
        if isinstance(node, ast.Constant) and node.value in EVERYWHERE:
            hits = {node.value}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in COMPONENT_KEYS:
            hits = _names(node.value) | {n for a in getattr(node.value, "args", []) for n in _names(a)}
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args][-len(node.defaults):] if node.defaults else []
            hits = {n for a, d in zip(named, node.defaults, strict=True) if a.arg in COMPONENT_KEYS for n in _names(d)}
        elif isinstance(node, ast.Dict):
            hits = {n for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value in COMPONENT_KEYS for n in _names(v)}
        elif isinstance(node, ast.Compare) and "attention" in ast.unparse(node):
            hits = {n for side in (node.left, *node.comparators) for n in _names(side)}
        elif isinstance(node, ast.Call):
            text = ast.unparse(node)
            beside = "registry" in text or "attention" in text or "'name'" in text
            hits = {n for a in node.args for n in _names(a)} if beside else set()
            hits |= {n for k in node.keywords if k.arg in COMPONENT_KEYS for n in _names(k.value)}
        found += [(getattr(node, "lineno", 0), name) for name in hits]
    return [f"{line}: {name}" for line, name in sorted(set(found))]


OLD_CORE = '''
class OptimizerSpec(BaseModel):
    name: str = "sgd"
class ArmSpec(StrictModel):
    attention: str | dict[str, Any] = "none"
plain = ("none", {"name": "none"})
model.add_argument("--attention", default="none", help="a name")
name = str(options.pop("name", "none"))
if config.attention != "none":
    loops["plain"] = bare_loop(_build(config, registry, "none", {}, device))
arm["attention"] = {"anyOf": [], "default": "none"}
if spec.dataset.name in ("folder", "filename"):
    pass
'''

UNRELATED = '''
class TrainingSpec(StrictModel):
    checkpoints: Literal["best", "none", "all"] = Field("best")
class TuneSpec(StrictModel):
    pruner: Literal["wilcoxon", "median", "hyperband", "none"] = "wilcoxon"
class AugmentSpec(StrictModel):
    preset: Literal["none", "light", "standard"] = "none"
pruners = {"none": lambda: optuna.pruners.NopPruner()}
if policy == "none":
    pass
listed = ", ".join(known) or "none"
'''


def test_the_check_finds_what_the_core_used_to_spell_and_nothing_unrelated() -> None:
    assert builtin_names_in(OLD_CORE) == ["3: sgd", *(f"{line}: none" for line in range(5, 12)), "12: filename",
                                          "12: folder"]  # every built-in name the old core spelled: it can fail
    assert builtin_names_in(UNRELATED) == []


def test_no_core_module_spells_a_builtin_component_name() -> None:
    found = {str(path.relative_to(HARNESS.parent)): hits for path in sorted(HARNESS.rglob("*.py"))
             if (hits := builtin_names_in(path.read_text()))}
    assert found == {}, "the core names built-in components; mark the plugin's info default=True instead"
