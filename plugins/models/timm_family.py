"""Any timm model by name: ``backbone: timm/<name>`` (random init; pretrained only from a local file or cache).

Attention surgery needs blocks that follow timm's ResNet convention (``BasicBlock``/``Bottleneck``
in ``layer1``-``layer4``, see :mod:`harness.models.surgery`): resnet26d, resnext, wide_resnet...
Any other model trains with ``attention: none``; asking it for attention is a clear error naming
its block types. A model with attention already in its blocks (seresnext26d_32x4d, ecaresnet26t)
refuses a second one, as the named ``seresnet*`` backbones do.

The init policy is the study's: ``standard`` turns timm's ``zero_init_last`` off where the model
has it and leaves every BatchNorm weight at 1; ``zero_last_bn`` exists for ResNet blocks only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.api import BackboneInfo, BackboneRequest, HarnessError

if TYPE_CHECKING:
    from torch import nn

PREFIX = "timm/"
SUPPORTED = "timm ResNet-family blocks (BasicBlock, Bottleneck)"


def timm_names(pattern: str) -> list[str]:
    """``timm/<name>`` for every timm model matching ``pattern`` (an fnmatch pattern, ``timm/`` optional)."""
    import timm

    return [PREFIX + n for n in timm.list_models(pattern.removeprefix(PREFIX) or "*")]


def _resnet_stages(model: nn.Module) -> dict[int, nn.Sequential] | None:
    """``layer1``-``layer4`` as paper stages 2-5 when every block is a timm ResNet block, else None."""
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    if not isinstance(model, ResNet):
        return None
    stages = {n: getattr(model, f"layer{n - 1}") for n in (2, 3, 4, 5)}
    blocks = [b for stage in stages.values() for b in stage]
    return stages if blocks and all(isinstance(b, BasicBlock | Bottleneck) for b in blocks) else None


def block_types(model: nn.Module) -> list[str]:
    """The class names of a timm model's blocks (read off its ``feature_info`` stages), for messages."""
    from torch import nn

    names: list[str] = []
    root = dict(model.named_modules())
    for info in getattr(model, "feature_info", None) or []:
        stage = root.get(str(info.get("module", "")) if isinstance(info, dict) else "")
        inner = getattr(stage, "blocks", stage)
        children = list(inner.children()) if isinstance(inner, nn.Sequential) else [stage]
        names += [type(c).__name__ for c in children if c is not None]
    return sorted(set(names)) or [type(model).__name__]


def _create(name: str, request: BackboneRequest) -> nn.Module:
    import timm

    common: dict[str, Any] = {"pretrained": False, "num_classes": request.num_classes, "in_chans": request.in_chans}
    try:  # the init policy decides, not timm's zero_init_last default (see harness_plugins.models.plugin)
        return timm.create_model(name, zero_init_last=False, **common)
    except TypeError as exc:
        if "zero_init_last" not in str(exc):
            raise
    return timm.create_model(name, **common)


def build(request: BackboneRequest) -> nn.Module:
    """Build ``request.name`` (``timm/<name>``) with the study's init policy and attention plan."""
    from torch import nn

    from harness.api import apply_attention, apply_init, load_pretrained, tag_builtin_se

    full = request.name
    name = full.removeprefix(PREFIX)
    model = _create(name, request)
    stages = _resnet_stages(model)
    builtin = sorted({type(b.se).__name__ for s in stages.values() for b in s if b.se is not None}) if stages else []
    if request.attention.layer is not None:
        if stages is None:
            raise HarnessError(f"{full}: attention surgery supports {SUPPORTED}; this model has "
                               f"{', '.join(block_types(model))}. Use attention: none with it, or a ResNet-family "
                               "timm model (e.g. timm/resnet26d)")
        if builtin:
            raise HarnessError(f"{full} already has attention ({', '.join(builtin)}) in its blocks; to vary attention "
                               "use a timm model without it (e.g. timm/resnet26d) with an attention: entry, so the "
                               "arms differ in exactly one thing")
    if stages is not None:
        apply_init(stages, request.init)
        apply_attention(stages, request.attention)
        if builtin:
            tag_builtin_se(model)
    elif request.init == "zero_last_bn":
        raise HarnessError(f"{full}: init: zero_last_bn is defined for {SUPPORTED}; this model has "
                           f"{', '.join(block_types(model))}. Use init: standard")
    else:  # standard: every BatchNorm weight 1, whatever the model's own default
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
                nn.init.ones_(module.weight)
    if request.pretrained:
        load_pretrained(model, name, request.pretrained, request.in_chans)
    return model


def timm_family() -> BackboneInfo:
    """The ``timm/*`` entry: the registry resolves any ``timm/<name>`` to it (see ``BackboneInfo.members``)."""
    return BackboneInfo(PREFIX + "*", build, "any timm model by name, random init (`harness list backbones "
                        "'timm/resnet*'` lists them); attention surgery for ResNet-family blocks",
                        family="timm", members=timm_names)
