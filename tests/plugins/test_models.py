"""Any timm model as ``backbone: timm/<name>``: builds, trains, follows the init policy; clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from harness.cli.main import main
from harness.contracts import attention_modules
from harness.errors import HarnessError
from harness.models.build import build_model
from harness.registry import build_registry, make_plugin_manager

REGISTRY = build_registry(*make_plugin_manager(["harness_plugins.models.plugin", "harness_plugins.attention.plugin"],
                                               entry_points=False))


def _build(name: str, attention: str = "none", options: dict | None = None, init: str = "standard") -> torch.nn.Module:  # type: ignore[type-arg]
    torch.manual_seed(0)
    return build_model(REGISTRY, name, attention, dict(options or {}), num_classes=3, in_chans=1, image_size=32,
                       init=init)


@pytest.mark.parametrize("name,attention", [("timm/resnet26d", "none"), ("timm/resnet26d", "se"),
                                            ("timm/convnext_atto", "none"), ("timm/efficientnet_b0", "none")])
def test_timm_model_builds_and_trains_one_step_at_32px(name: str, attention: str) -> None:
    model = _build(name, attention, {"reduction": 4} if attention == "se" else {})
    assert bool(attention_modules(model)) == (attention == "se")  # surgery placed (and tagged) SE, or nothing
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 1, 32, 32, generator=generator), torch.tensor([0, 1, 2, 0])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_init_policy_applies_to_timm_models() -> None:
    """standard: timm's zero_init_last is off (every BatchNorm weight 1); zero_last_bn zeroes each block's last BN."""
    standard = _build("timm/resnet26d")
    assert all(bool((m.weight == 1).all()) for m in standard.modules() if isinstance(m, torch.nn.BatchNorm2d))
    zeroed = _build("timm/resnet26d", init="zero_last_bn")
    last_bns = [m for name, m in zeroed.named_modules() if name.startswith("layer1.") and name.endswith(".bn3")]
    assert last_bns and all(float(m.weight.detach().abs().sum()) == 0 for m in last_bns)  # type: ignore[union-attr]
    with pytest.raises(HarnessError, match=r"timm/convnext_atto: init: zero_last_bn is defined for timm ResNet"):
        _build("timm/convnext_atto", init="zero_last_bn")


def test_attention_on_an_unsupported_timm_model_names_the_model_and_its_blocks() -> None:
    with pytest.raises(HarnessError) as info:
        _build("timm/convnext_atto", "se", {"reduction": 4})
    assert str(info.value).startswith("timm/convnext_atto: attention surgery supports timm ResNet-family blocks "
                                      "(BasicBlock, Bottleneck); this model has ConvNeXtBlock")


def test_timm_model_with_builtin_attention_refuses_a_second_one() -> None:
    with pytest.raises(HarnessError, match=r"timm/seresnext26d_32x4d already has attention \(SEModule\)"):
        _build("timm/seresnext26d_32x4d", "eca")
    rows = attention_modules(_build("timm/seresnext26d_32x4d"))
    assert rows and "built-in SE" in rows[0][2].description


def test_unknown_timm_name_lists_close_matches() -> None:
    with pytest.raises(HarnessError, match=r"unknown backbone 'timm/resnet26x' \(did you mean .*'timm/resnet26d'"):
        REGISTRY.backbone("timm/resnet26x")


def test_unknown_timm_name_in_a_study_points_at_the_backbone_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  tiny_study: dict[str, Any]) -> None:
    study = tmp_path / "study.yaml"
    data = {**tiny_study, "arms": {"plain": {"backbone": "timm/resnet26x"}}, "compare": {"baseline": "plain"}}
    study.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "arms.plain.backbone: unknown backbone 'timm/resnet26x' (did you mean" in err


def test_list_backbones_lists_timm_models_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    assert "timm/*" in out and "timm/resnet26d" not in out
    assert main(["list", "backbones", "timm/resnet26*"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "timm/resnet26d" in listed and "timm/convnext_atto" not in listed


def test_gradcam_says_why_it_skips_a_model_without_resnet_stages() -> None:
    from harness.report.insight import cam_layer

    layer, why = cam_layer(_build("timm/convnext_atto").eval(), torch.zeros(1, 1, 32, 32))
    assert layer is None and why == "Grad-CAM not shown: ConvNeXt has no ResNet stages (layer1-layer4) to attribute on"
