"""Attention variants: none, exact Squeeze-and-Excitation with the SE paper's knobs, and timm's cheaper ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from harness_plugins.attention.options import (
    CbamOptions,
    EcaOptions,
    EseOptions,
    GcOptions,
    NoneOptions,
    PlacedOptions,
    SEOptions,
)

from harness.api import AttentionInfo, AttentionPlan, hookimpl, parse_options


def make_none(options: Mapping[str, Any]) -> AttentionPlan:
    parse_options(NoneOptions, options, "attention 'none'")
    return AttentionPlan(layer=None)


def make_se(options: Mapping[str, Any]) -> AttentionPlan:
    opts = parse_options(SEOptions, options, "attention 'se'")
    from harness_plugins.attention.se_module import SqueezeExcite

    reduction = opts.reduction
    layer = partial(SqueezeExcite, reduction=reduction, bias=opts.bias, squeeze=opts.squeeze,
                    excitation=opts.excitation, fused=opts.fused)
    return AttentionPlan(
        layer=layer,
        placement=opts.placement,
        stages=_stages(opts),
        describe=lambda c: f"SE hidden {c // reduction} of {c} (r = {c / max(c // reduction, 1):g})",
        hidden=lambda c: c // reduction,
        gate="gate",
    )


def _stages(opts: PlacedOptions) -> tuple[int, ...] | None:
    return tuple(opts.stages) if opts.stages is not None else None


def _timm_variant(timm_name: str, model: type[PlacedOptions]) -> Callable[[Mapping[str, Any]], AttentionPlan]:
    """A variant built by ``timm.layers.get_attn(timm_name)`` with the model's options (timm's defaults)."""

    def make(options: Mapping[str, Any]) -> AttentionPlan:
        from timm.layers import get_attn

        opts = parse_options(model, options, f"attention {timm_name!r}")
        module_cls = get_attn(timm_name)
        knobs = opts.model_dump(exclude={"placement", "stages"})
        settings = ", ".join(f"{k} {v}" for k, v in knobs.items() if v is not None)
        return AttentionPlan(layer=partial(module_cls, **knobs), placement=opts.placement, stages=_stages(opts),
                             describe=lambda c: f"timm {module_cls.__name__} on {c} channels"
                             + (f" ({settings})" if settings else " (timm's defaults)"))

    return make


@hookimpl
def register_attention_variants() -> list[AttentionInfo]:
    return [
        AttentionInfo("none", make_none, "no attention: the plain residual block", NoneOptions, default=True,
                      identity=True),
        AttentionInfo(
            "se",
            make_se,
            "Squeeze-and-Excitation, hidden width exactly C // reduction; knobs: reduction, bias, "
            "squeeze avg|max, excitation sigmoid|tanh|relu|hard_sigmoid, placement, stages, "
            "fused (default true: the same SE with a two-pass backward)",
            SEOptions,
        ),
        AttentionInfo("eca", _timm_variant("eca", EcaOptions),
                      "Efficient Channel Attention (timm EcaModule): 1-D conv across channels, ~no params",
                      EcaOptions),
        AttentionInfo("cbam", _timm_variant("cbam", CbamOptions),
                      "CBAM (timm CbamModule): channel then spatial attention", CbamOptions),
        AttentionInfo("ese", _timm_variant("ese", EseOptions),
                      "effective SE (timm EffectiveSEModule): one FC, no reduction, hard-sigmoid gate", EseOptions),
        AttentionInfo("gc", _timm_variant("gc", GcOptions),
                      "Global Context block (timm GlobalContext)", GcOptions),
    ]
