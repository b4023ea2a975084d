"""The built-in attention plugin: SE's hidden width is exactly channels // r, its fused path equals the plain
ops in values and gradients, and a reduction too large for the block is one clear error."""

from __future__ import annotations

import pytest
import torch
from harness_plugins.attention.plugin import make_none, make_se
from harness_plugins.attention.se_module import SqueezeExcite

from harness.errors import HarnessError


def test_se_plan_builds_the_exact_width_and_none_builds_nothing() -> None:
    assert make_none({}).layer is None
    plan = make_se({"reduction": 3})
    module = plan.layer(48)
    assert module.fc1.out_features == 16 and plan.hidden(48) == 16 and plan.gate == "gate"
    assert plan.describe(48) == "SE hidden 16 of 48 (r = 3)"


def test_fused_se_equals_the_plain_ops_in_values_and_gradients() -> None:
    torch.manual_seed(0)
    fused, plain = SqueezeExcite(8, 2, fused=True), SqueezeExcite(8, 2, fused=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(3, 8, 5, 5)
    grads = []
    for module in (fused, plain):
        xi = x.clone().requires_grad_(True)
        out = module(xi)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        grads.append((out.detach(), xi.grad, module.fc1.weight.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_a_reduction_larger_than_the_channels_is_refused() -> None:
    with pytest.raises(HarnessError, match="larger than a block's 8 channels"):
        SqueezeExcite(8, 16)
