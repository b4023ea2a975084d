"""Put attention modules into residual networks: one shared mechanism for every ResNet family.

Blocks follow timm's ResNet convention: ``conv1`` (first conv of the residual branch),
``bn2``/``bn3`` (last norm of the branch), ``se`` (applied to the branch before the addition)
and ``downsample`` (the shortcut, or ``None``). Placements follow the SE paper (Hu et al., Fig. 5).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from harness.contracts import PLACEMENTS, AttentionPlan, AttentionTag, mark_attention
from harness.errors import HarnessError


class PostAttention(nn.Module):
    """SE-POST: attention applied to a block's output, after the addition and ReLU."""

    def __init__(self, block: nn.Module, attention: nn.Module):
        super().__init__()
        self.block = block
        self.attention = attention

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(self.block(x))


def branch_out_channels(block: nn.Module) -> int:
    """Channels at the end of a block's residual branch (= its output channels)."""
    norm = getattr(block, "bn3", None) or getattr(block, "bn2", None)
    if norm is None or not hasattr(norm, "num_features"):
        raise HarnessError(f"cannot place attention in {type(block).__name__}: it has no bn2/bn3")
    return int(norm.num_features)


def apply_attention(stages: Mapping[int, nn.Sequential], plan: AttentionPlan) -> None:
    """Insert ``plan``'s attention into the blocks of the selected ``stages`` (in place)."""
    if plan.layer is None:
        return
    if plan.placement not in PLACEMENTS:
        raise HarnessError(f"unknown attention placement {plan.placement!r}; use one of {', '.join(PLACEMENTS)}")
    if plan.stages is not None:
        unknown = sorted(set(plan.stages) - set(stages))
        if unknown:
            raise HarnessError(
                f"attention stages {unknown} do not exist in this backbone; its stages are {sorted(stages)}"
            )
    def layer(channels: int) -> nn.Module:
        assert plan.layer is not None
        hidden = plan.hidden(channels) if plan.hidden else None
        return mark_attention(plan.layer(channels), AttentionTag(channels, hidden, plan.gate, plan.describe(channels)))

    for number, stage in stages.items():
        if plan.stages is not None and number not in plan.stages:
            continue
        for index, block in enumerate(list(stage)):
            out_channels = branch_out_channels(block)
            if plan.placement == "standard":
                block.se = layer(out_channels)
            elif plan.placement == "pre":
                conv1 = block.conv1
                assert isinstance(conv1, nn.Conv2d)
                block.conv1 = nn.Sequential(layer(conv1.in_channels), conv1)
            elif plan.placement == "identity":
                parts = [block.downsample] if isinstance(block.downsample, nn.Module) else []
                block.downsample = nn.Sequential(*parts, layer(out_channels))
            else:
                stage[index] = PostAttention(block, layer(out_channels))


def apply_init(stages: Mapping[int, nn.Sequential], policy: str) -> None:
    """Apply the study's init policy to a ResNet's blocks (before attention is placed; see harness_plugins.models.plugin)."""
    if policy == "standard":
        return
    if policy != "zero_last_bn":
        raise HarnessError(f"unknown init policy {policy!r}; use standard or zero_last_bn")
    for stage in stages.values():
        for block in stage:
            norm = getattr(block, "bn3", None) or getattr(block, "bn2", None)
            if isinstance(norm, nn.BatchNorm2d):
                nn.init.zeros_(norm.weight)


def tag_builtin_se(model: nn.Module) -> None:
    """Tag the SE modules timm builds into seresnet*/legacy_seresnet* (``se``/``se_module`` of each block)."""
    for module in list(model.modules()):
        se = getattr(module, "se", None) or getattr(module, "se_module", None)
        fc1 = getattr(se, "fc1", None)
        if se is None or fc1 is None or not hasattr(fc1, "in_channels"):
            continue
        channels, hidden = int(fc1.in_channels), int(fc1.out_channels)
        gate = "gate" if hasattr(se, "gate") else "sigmoid" if hasattr(se, "sigmoid") else None
        mark_attention(se, AttentionTag(channels, hidden, gate, f"timm's built-in SE: hidden {hidden} of {channels}"))
