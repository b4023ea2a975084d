"""Every component's options through one pydantic model: built-ins declare theirs (defaults that build the
component and equal torch's and timm's), third-party plugins without one get one derived, and ``validate``
reports every bad option of every kind as ``FILE:LINE: field.path: message``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, TypedDict

import pytest
import torch
from pydantic import BaseModel

from harness import hookimpl
from harness.cli.main import main
from harness.contracts import AttentionInfo, OptimizerInfo, attention_modules
from harness.errors import HarnessError, StudyError
from harness.models.build import build_model
from harness.options import component_option_errors, is_open, option_errors, options_model
from harness.registry import KINDS, Registry, build_registry, make_plugin_manager

BUILT_IN = ["harness_plugins.models.plugin", "harness_plugins.attention.plugin", "harness_plugins.datasets.plugin",
            "harness_plugins.optim.plugin"]
# options torch requires (no default exists); everything else comes from the model's defaults
REQUIRED: dict[tuple[str, str], dict[str, Any]] = {("schedulers", "multistep"): {"milestones": [2]}, ("schedulers", "exponential"): {"gamma": 0.9},
            ("datasets", "csv"): {"path": "x.csv"}, ("datasets", "folder"): {"path": "x"}}


def _registry(*extra: object) -> Registry:
    pm, records = make_plugin_manager(BUILT_IN, entry_points=False)
    for index, plugin in enumerate(extra):
        pm.register(plugin, name=f"thirdparty{index}")
    return build_registry(pm, records)


REGISTRY = _registry()
COMPONENTS = [(kind, name) for kind in KINDS for name in REGISTRY.names(kind)]


@pytest.mark.parametrize(("kind", "name"), COMPONENTS, ids=[f"{k}:{n}" for k, n in COMPONENTS])
def test_every_builtin_declares_an_options_model(kind: str, name: str) -> None:
    info = REGISTRY.get(kind, name)
    model = options_model(info)
    assert kind == "backbones" or info.options is model, "built-ins declare their model, none is derived"
    assert not is_open(model) and model.model_config.get("extra") == "forbid"
    required = REQUIRED.get((kind, name), {})
    parsed = model.model_validate(required)  # the defaults alone (plus what torch requires) are valid options
    assert {k: getattr(parsed, k) for k in model.model_fields if k not in required} == {
        k: field.get_default(call_default_factory=True) for k, field in model.model_fields.items() if k not in required}
    assert option_errors(model, {**required, "no_such_option": 1}) == [
        ("no_such_option", f"no option 'no_such_option'; options: {', '.join(model.model_fields) or 'none'}")]


@pytest.mark.parametrize("name", REGISTRY.names("attention"))
def test_attention_defaults_build_a_network(name: str) -> None:
    with torch.device("meta"):
        model = build_model(REGISTRY, "resnet20", name, {}, num_classes=2, in_chans=1, image_size=16)
    tagged = attention_modules(model)  # every block of every stage by default (stages unset): 3 x 3 in ResNet-20
    assert len(tagged) == (0 if name == "none" else 9)
    assert sorted({tag.channels for _, _, tag in tagged}) == ([] if name == "none" else [16, 32, 64])


@pytest.mark.parametrize("name", REGISTRY.names("optimizers"))
def test_optimizer_defaults_build_and_equal_torch(name: str) -> None:
    info = REGISTRY.optimizer(name)
    optimizer = info.build([torch.nn.Parameter(torch.zeros(1))], {})
    torch_defaults = {k: p.default for k, p in inspect.signature(type(optimizer)).parameters.items()}
    for option, field in options_model(info).model_fields.items():
        if option != "lr":  # the study's default (0.01), not torch's
            assert field.default == torch_defaults[option], f"{name}.{option}: default differs from torch's"
        assert optimizer.defaults[option] == (field.default if option != "betas" else tuple(field.default))


@pytest.mark.parametrize("name", REGISTRY.names("schedulers"))
def test_scheduler_defaults_build(name: str) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = REGISTRY.scheduler(name).build(optimizer, REQUIRED.get(("schedulers", name), {}), 5)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    if name == "cosine":
        assert scheduler.T_max == 5  # type: ignore[attr-defined]  # T_max unset: the training epochs


def test_timm_attention_defaults_are_timms() -> None:
    from timm.layers import get_attn

    for name in ("eca", "cbam", "ese", "gc"):
        signature = inspect.signature(get_attn(name)).parameters
        for option, field in options_model(REGISTRY.attention(name)).model_fields.items():
            if option not in ("placement", "stages"):
                assert field.default == pytest.approx(signature[option].default), f"{name}.{option}"


def test_se_options_are_parsed_once_and_typed() -> None:
    plan = REGISTRY.attention("se").make({"reduction": 4, "stages": 3, "placement": "pre"})
    assert plan.stages == (3,) and plan.placement == "pre" and plan.hidden is not None and plan.hidden(64) == 16
    with pytest.raises(HarnessError, match=r"attention 'se': option 'reduction': Input should be a valid integer"):
        REGISTRY.attention("se").make({"reduction": True})
    with pytest.raises(HarnessError, match=r"nesterov: true needs momentum > 0"):
        REGISTRY.optimizer("sgd").build([torch.nn.Parameter(torch.zeros(1))], {"nesterov": True})


class LionOptions(TypedDict, total=False):
    lr: float
    beta: float


def _lion(params: Any, options: LionOptions) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=options.get("lr", 0.01))


def _gate(options: Any) -> Any:
    from harness.contracts import AttentionPlan

    return AttentionPlan(layer=None)


class _ThirdParty:
    @hookimpl
    def register_optimizers(self) -> list[OptimizerInfo]:
        return [OptimizerInfo("lion", _lion, "a third-party optimizer with a typed options dict")]  # type: ignore[arg-type]

    @hookimpl
    def register_attention_variants(self) -> list[AttentionInfo]:
        return [AttentionInfo("gate", _gate, "a third-party variant that checks its own options")]


def test_third_party_without_a_model_gets_one_derived_from_its_signature() -> None:
    registry = _registry(_ThirdParty())
    lion = options_model(registry.optimizer("lion"))
    assert set(lion.model_fields) == {"lr", "beta"} and issubclass(lion, BaseModel)
    assert component_option_errors(registry, "optimizers", "lion", {"lr": 0.1, "beta": 0.9}) == []
    assert component_option_errors(registry, "optimizers", "lion", {"betta": 0.9}) == [
        ("betta", "optimizer 'lion': no option 'betta' (did you mean 'beta'?); options: lr, beta")]
    assert component_option_errors(registry, "optimizers", "lion", {"lr": "fast"})[0][1].startswith(
        "optimizer 'lion': option 'lr': Input should be a valid number")
    gate = options_model(registry.attention("gate"))  # unannotated mapping: the plugin checks its options
    assert is_open(gate) and component_option_errors(registry, "attention", "gate", {"anything": 1}) == []


def test_validate_reports_bad_options_of_every_kind_with_lines(write_study, capsys) -> None:  # type: ignore[no-untyped-def]
    study: Path = write_study({
        "dataset": {"options": {"clases": 2}},
        "training": {"optimizer": {"momentun": 0.9}, "scheduler": {"gamma": "half"}},
    }, arms={"se": {"backbone": "resnet20", "attention": {"name": "se", "reductio": 4, "placement": "inside"}}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    lines = study.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    expected = [
        f"study.yaml:{line_of('reductio')}: arms.se.attention.reductio: attention variant 'se': no option 'reductio' "
        "(did you mean 'reduction'?)",
        f"study.yaml:{line_of('placement')}: arms.se.attention.placement: attention variant 'se': option 'placement': "
        "Input should be 'standard', 'pre', 'post' or 'identity' (got 'inside')",
        f"study.yaml:{line_of('momentun')}: training.optimizer.momentun: optimizer 'sgd': no option 'momentun' "
        "(did you mean 'momentum'?)",
        f"study.yaml:{line_of('gamma')}: training.scheduler.gamma: scheduler 'step': option 'gamma': Input should be "
        "a valid number",
        f"study.yaml:{line_of('clases')}: dataset.options.clases: dataset 'phantom': no option 'clases' "
        "(did you mean 'classes', 'per_class'?)",
    ]
    for message in expected:
        assert message in err, err


def test_study_error_lists_options_of_every_kind_at_once(write_study) -> None:  # type: ignore[no-untyped-def]
    from harness.pipeline.validate import validate_study
    from harness.study.loader import load_study

    study = load_study(write_study({"training": {"optimizer": {"lrr": 1}, "scheduler": {"steps": 2}}}), [])
    with pytest.raises(StudyError) as caught:
        validate_study(study, REGISTRY)
    assert [p.path for p in caught.value.problems] == ["training.optimizer.lrr", "training.scheduler.steps"]


def test_docs_list_every_component_option_from_the_option_models(capsys, docs_generator) -> None:  # type: ignore[no-untyped-def]
    """The docs' tables (generated) are `harness list attention|optimizers|schedulers --options`, from the models."""
    tables = docs_generator.options_tables()
    generated = []
    for kind in ("attention", "optimizers", "schedulers"):
        assert main(["list", kind, "--options"]) == 0
        generated.append(capsys.readouterr().out.strip())
    table = "\n\n".join(tables[kind] for kind in ("attention", "optimizers", "schedulers"))
    assert table == "\n\n".join(generated)
    page = docs_generator.components_page()
    assert all(tables[kind] in page for kind in tables)
    assert "| `se` | `reduction` | int >= 1 | `16` |" in table and "| `cosine` | `T_max` | int >= 1 or unset |" in table
    assert main(["list", "backbones", "resnet20", "--options"]) == 0
    assert "| `resnet20` | (no options) |" in capsys.readouterr().out
