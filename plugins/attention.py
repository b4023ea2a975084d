"""Attention variants: none, exact Squeeze-and-Excitation with the SE paper's knobs, and timm's cheaper ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from harness import hookimpl
from harness.contracts import PLACEMENTS, AttentionInfo, AttentionPlan
from harness.errors import HarnessError, did_you_mean

EXCITATIONS = ("sigmoid", "tanh", "relu", "hard_sigmoid")


def _pop_common(options: dict[str, Any], variant: str) -> tuple[str, tuple[int, ...] | None]:
    placement = options.pop("placement", "standard")
    if placement not in PLACEMENTS:
        raise HarnessError(f"{variant}: placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
    stages = options.pop("stages", None)
    if stages is not None:
        if isinstance(stages, int):
            stages = [stages]
        if not isinstance(stages, list) or not all(isinstance(s, int) for s in stages) or not stages:
            raise HarnessError(f"{variant}: stages must be a list of stage numbers, e.g. [2, 3, 4]")
        stages = tuple(sorted(set(stages)))
    return placement, stages


def _reject_rest(options: Mapping[str, Any], variant: str, allowed: list[str]) -> None:
    for key in options:
        raise HarnessError(
            f"attention {variant!r} has no option {key!r}{did_you_mean(key, allowed)}; "
            f"options: {', '.join(allowed)}"
        )


def make_none(options: Mapping[str, Any]) -> AttentionPlan:
    _reject_rest(options, "none", [])
    return AttentionPlan(layer=None)


def make_se(options: Mapping[str, Any]) -> AttentionPlan:
    opts = dict(options)
    placement, stages = _pop_common(opts, "se")
    reduction = opts.pop("reduction", 16)
    bias = opts.pop("bias", False)
    squeeze = opts.pop("squeeze", "avg")
    excitation = opts.pop("excitation", "sigmoid")
    fused = opts.pop("fused", True)
    _reject_rest(opts, "se", ["reduction", "bias", "squeeze", "excitation", "fused", "placement", "stages"])
    if not isinstance(reduction, int) or isinstance(reduction, bool) or reduction < 1:
        raise HarnessError(f"se: reduction must be a positive integer, got {reduction!r}")
    if squeeze not in ("avg", "max"):
        raise HarnessError(f"se: squeeze must be 'avg' or 'max', got {squeeze!r}")
    if excitation not in EXCITATIONS:
        raise HarnessError(f"se: excitation must be one of {', '.join(EXCITATIONS)}, got {excitation!r}")
    for knob, value in (("bias", bias), ("fused", fused)):
        if not isinstance(value, bool):
            raise HarnessError(f"se: {knob} must be true or false, got {value!r}")
    from harness_plugins.se_module import SqueezeExcite

    layer = partial(SqueezeExcite, reduction=reduction, bias=bias, squeeze=squeeze, excitation=excitation, fused=fused)
    return AttentionPlan(
        layer=layer,
        placement=placement,
        stages=stages,
        describe=lambda c: f"SE hidden {c // reduction} of {c} (r = {c / max(c // reduction, 1):g})",
        hidden=lambda c: c // reduction,
        gate="gate",
    )


def _timm_variant(timm_name: str, allowed: list[str]) -> Callable[[Mapping[str, Any]], AttentionPlan]:
    """A variant built by ``timm.layers.get_attn(timm_name)``, options passed through."""

    def make(options: Mapping[str, Any]) -> AttentionPlan:
        from timm.layers import get_attn

        opts = dict(options)
        placement, stages = _pop_common(opts, timm_name)
        _reject_rest({k: v for k, v in opts.items() if k not in allowed}, timm_name, [*allowed, "placement", "stages"])
        module_cls = get_attn(timm_name)
        return AttentionPlan(layer=partial(module_cls, **opts), placement=placement, stages=stages)

    return make


@hookimpl
def register_attention_variants() -> list[AttentionInfo]:
    return [
        AttentionInfo("none", make_none, "no attention: the plain residual block"),
        AttentionInfo(
            "se",
            make_se,
            "Squeeze-and-Excitation, hidden width exactly C // reduction; knobs: reduction, bias, "
            "squeeze avg|max, excitation sigmoid|tanh|relu|hard_sigmoid, placement, stages, "
            "fused (default true: the same SE with a two-pass backward)",
        ),
        AttentionInfo("eca", _timm_variant("eca", ["kernel_size", "gamma", "beta"]),
                      "Efficient Channel Attention (timm EcaModule): 1-D conv across channels, ~no params"),
        AttentionInfo("cbam", _timm_variant("cbam", ["rd_ratio", "spatial_kernel_size"]),
                      "CBAM (timm CbamModule): channel then spatial attention"),
        AttentionInfo("ese", _timm_variant("ese", []),
                      "effective SE (timm EffectiveSEModule): one FC, no reduction, hard-sigmoid gate"),
        AttentionInfo("gc", _timm_variant("gc", ["rd_ratio", "fuse_add", "fuse_scale"]),
                      "Global Context block (timm GlobalContext)"),
    ]
