"""Contract suites over the registry for backbones, attention variants and loggers (built-ins here; a
third-party component passes the same checks): each builds, runs and says what it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.contracts import attention_modules
from harness.models.build import build_model

BACKBONES = ("resnet18", "resnet20", "se_resnet20", "seresnet18", "legacy_seresnet18", "resnext50_32x4d",
             "timm/resnet10t")  # one of each family (the others share its builder)


def _logits(registry: Any, backbone: str, attention: str = "none", options: dict[str, Any] | None = None,
            classes: int = 3) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(registry, backbone, attention, options or {}, num_classes=classes, in_chans=1, image_size=32)
    model.eval()
    with torch.no_grad():
        return model, model(torch.rand(2, 1, 32, 32))


def test_every_backbone_family_is_covered(builtin_registry: Any) -> None:
    """A new backbone family added to the built-ins must be added to BACKBONES (one per builder)."""
    def family(name: str) -> str:  # the builder a name uses (one closure per name, one factory per family)
        build = builtin_registry.backbone(name).build
        return f"{build.__module__}.{build.__qualname__}"

    builders = {family(name) for name in builtin_registry.names("backbones") if not name.endswith("*")}
    covered = {family(name) for name in BACKBONES if not name.startswith("timm/")}
    assert builders == covered


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbone_contract(builtin_registry: Any, backbone: str) -> None:
    """Builds for any class count and one input channel, gives one finite logit per class, has a summary."""
    model, logits = _logits(builtin_registry, backbone)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    assert sum(p.numel() for p in model.parameters()) > 0
    if not backbone.startswith("timm/"):
        assert builtin_registry.backbone(backbone).summary.strip()


@pytest.mark.parametrize("attention", ["none", "se", "eca", "cbam", "ese", "gc"])
def test_attention_contract(builtin_registry: Any, attention: str) -> None:
    """Every variant fits a ResNet, keeps the output's shape, and tags each module it inserts (the cost table,
    the gate plot and the pretrained-weights warning read the tags); 'none' inserts nothing."""
    assert attention in builtin_registry.names("attention")
    model, logits = _logits(builtin_registry, "resnet20", attention)
    tagged = attention_modules(model)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    assert (len(tagged) == 0) == (attention == "none")
    assert all(tag.channels > 0 and tag.description for _, _, tag in tagged)


def test_every_attention_variant_is_in_the_suite(builtin_registry: Any) -> None:
    assert set(builtin_registry.names("attention")) == {"none", "se", "eca", "cbam", "ese", "gc"}


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_logger_contract(builtin_registry: Any, name: str, tmp_path: Path) -> None:
    """A logger declares its options and the package it needs, starts in the folder it is given and writes
    nothing elsewhere, registers hook methods, and closes."""
    info = builtin_registry.logger(name)
    assert info.options is not None and info.requires is not None and info.summary.strip()
    pytest.importorskip(info.requires[0], reason=f"the {name} logger needs {info.requires[0]}")
    folder = tmp_path / "plugins" / name
    folder.mkdir(parents=True)
    plugin = info.start({}, folder)
    hooks = [attr for attr in dir(plugin) if hasattr(getattr(plugin, attr), "harness_impl")]
    assert hooks, f"{name} registers no hook method"
    plugin.close(True)  # type: ignore[attr-defined]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugins"]
    assert all(kept and "/" not in kept for kept in info.keep)
