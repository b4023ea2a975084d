"""Backbones: timm's ImageNet ResNet family and the CIFAR-style ResNets.

Init policy (``BackboneRequest.init``, the study's ``init:``), the same for every family and arm:
``standard`` leaves every BatchNorm weight at 1 — timm's default ``zero_init_last`` is turned
off, because it zeroes each block's last BatchNorm, so a bias-free SE right after it gets zero
input and its weights no gradient (the "SE" arm would measure halved residual branches, not SE);
``zero_last_bn`` zeroes each residual branch's last BatchNorm weight in every family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.api import BackboneInfo, BackboneRequest, HarnessError, hookimpl

if TYPE_CHECKING:

    from torch import nn


TIMM_PLAIN = {
    "resnet18": "ResNet-18 (timm), basic blocks 2-2-2-2",
    "resnet34": "ResNet-34 (timm), basic blocks 3-4-6-3",
    "resnet50": "ResNet-50 (timm), bottlenecks 3-4-6-3",
    "resnet101": "ResNet-101 (timm), bottlenecks 3-4-23-3",
    "resnet152": "ResNet-152 (timm), bottlenecks 3-8-36-3",
    "resnext50_32x4d": "ResNeXt-50 32x4d (timm): SE-ResNeXt-50's no-SE twin",
}
TIMM_WITH_SE = {
    "seresnet18": "SE-ResNet-18 (timm's own SE: hidden width rounded to a multiple of 8, with bias)",
    "seresnet34": "SE-ResNet-34 (timm's own SE)",
    "seresnet50": "SE-ResNet-50 (timm's own SE)",
    "seresnet101": "SE-ResNet-101 (timm's own SE)",
    "seresnet152": "SE-ResNet-152 (timm's own SE)",
    "seresnext50_32x4d": "SE-ResNeXt-50 32x4d (timm's own SE)",
    "legacy_seresnet18": "SE-ResNet-18, original SENet port (timm legacy_senet)",
    "legacy_seresnet34": "SE-ResNet-34, original SENet port",
    "legacy_seresnet50": "SE-ResNet-50, original SENet port",
    "legacy_seresnet101": "SE-ResNet-101, original SENet port",
    "legacy_seresnet152": "SE-ResNet-152, original SENet port",
    "legacy_seresnext50_32x4d": "SE-ResNeXt-50 32x4d, original SENet port (ImageNet weights exist)",
}


def _timm_builder(name: str, attention_allowed: bool) -> Callable[[BackboneRequest], nn.Module]:
    def build(request: BackboneRequest) -> nn.Module:
        import timm

        from harness.api import apply_attention, apply_init, load_pretrained, tag_builtin_se

        if request.attention.layer is not None and not attention_allowed:
            base = name.replace("legacy_", "").replace("se", "", 1)
            raise HarnessError(
                f"{name} already has SE built in; to vary attention use backbone {base!r} "
                "with an attention: entry, so the arms differ in exactly one thing"
            )
        # timm's ResNet zero-inits each block's last BN by default; the policy decides instead (see top)
        extra = {} if name.startswith("legacy_") else {"zero_init_last": False}
        model = timm.create_model(
            name, pretrained=False, num_classes=request.num_classes, in_chans=request.in_chans, **extra
        )
        stages = {n: getattr(model, f"layer{n - 1}") for n in (2, 3, 4, 5)}
        apply_init(stages, request.init)
        apply_attention(stages, request.attention)
        if not attention_allowed:
            tag_builtin_se(model)
        if request.pretrained:
            load_pretrained(model, name, request.pretrained, request.in_chans)
        return model

    return build


def _cifar_builder(depth: int, se: bool) -> Callable[[BackboneRequest], nn.Module]:
    def build(request: BackboneRequest) -> nn.Module:
        from harness_plugins.attention.plugin import make_se
        from harness_plugins.models.cifar_resnet import CifarResNet

        from harness.api import apply_attention, apply_init

        if request.pretrained:
            raise HarnessError(f"no pretrained weights exist for the CIFAR ResNet-{depth}; set pretrained: false")
        model = CifarResNet(depth, num_classes=request.num_classes, in_chans=request.in_chans)
        plan = request.attention
        if se:
            if plan.layer is not None:
                raise HarnessError(f"se_resnet{depth} already has SE; use resnet{depth} with an attention: entry")
            plan = make_se({"reduction": 16})
        apply_init(model.stages(), request.init)
        apply_attention(model.stages(), plan)
        return model

    return build


@hookimpl
def register_backbones() -> list[BackboneInfo]:
    infos = [BackboneInfo(n, _timm_builder(n, True), s) for n, s in TIMM_PLAIN.items()]
    infos += [BackboneInfo(n, _timm_builder(n, False), s, family="resnet-se") for n, s in TIMM_WITH_SE.items()]
    for depth in (20, 32, 44, 56, 110):
        n = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}[depth]
        infos.append(BackboneInfo(f"resnet{depth}", _cifar_builder(depth, False),
                                  f"CIFAR-style ResNet-{depth}: 16/32/64 channels, {n} basic blocks per stage",
                                  family="cifar-resnet"))
        infos.append(BackboneInfo(f"se_resnet{depth}", _cifar_builder(depth, True),
                                  f"CIFAR-style SE-ResNet-{depth}: exact SE (r = 16, no bias) before the addition",
                                  family="cifar-resnet-se"))
    # timm itself is imported only when a timm/ name is used
    from harness_plugins.models.timm_family import timm_family

    return [*infos, timm_family()]
