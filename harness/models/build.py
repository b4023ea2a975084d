"""Build an arm's network from its backbone and attention plugins, and account for its cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harness.contracts import AttentionPlan, BackboneRequest, attention_modules
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.registry import Registry


@dataclass(frozen=True)
class ModelCost:
    params: int
    trainable_params: int
    flops: int  # forward FLOPs for one image (torch FlopCounterMode: 2 per multiply-add)
    attention: list[dict[str, Any]]


def attention_plan(registry: Registry, name: str, options: dict[str, Any]) -> AttentionPlan:
    return registry.attention(name).make(options)


def build_model(
    registry: Registry,
    backbone: str,
    attention: str,
    attention_options: dict[str, Any],
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    pretrained: bool | str = False,
    init: str = "standard",
) -> nn.Module:
    """The arm's network; HarnessError (naming the arm's parts) for anything the user can fix.

    ``init`` is the study's init policy, the same for every arm (see ``Study.init``).
    """
    info = registry.backbone(backbone)
    plan = attention_plan(registry, attention, attention_options)
    request = BackboneRequest(num_classes, in_chans, image_size, pretrained, plan, init, backbone)
    try:
        model = info.build(request)
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"backbone {backbone!r} with attention {attention!r} failed to build: {exc}") from exc
    return model


def attention_summary(model: nn.Module) -> list[dict[str, Any]]:
    """Every attention module (as tagged by its plugin) with channels, hidden width and effective ratio."""
    rows = []
    for name, module, tag in attention_modules(model):
        rows.append({"module": name, "channels": tag.channels, "hidden": tag.hidden,
                     "ratio": tag.channels / tag.hidden if tag.hidden else None,
                     "params": sum(p.numel() for p in module.parameters()), "description": tag.description})
    return rows


def count_flops(model: nn.Module, in_chans: int, image_size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(1, in_chans, image_size, image_size, device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def model_cost(model: nn.Module, in_chans: int, image_size: int) -> ModelCost:
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelCost(params, trainable, count_flops(model, in_chans, image_size), attention_summary(model))
