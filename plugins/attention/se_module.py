"""The exact Squeeze-and-Excitation module (imported only when a network is built)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from harness.api import HarnessError

GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hard_sigmoid": nn.Hardsigmoid,
}


# (grad_out, weights, buffer for grad_x), from _Scale's backward to _Squeeze's
Handoff = list[tuple[Tensor, Tensor, Tensor]]


class _Squeeze(torch.autograd.Function):
    """``mean_hw(x)``; its backward writes the whole ``grad_x`` in one pass (see :class:`_Scale`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, handoff: Handoff) -> Tensor:
        ctx.handoff, ctx.area = handoff, x.shape[2] * x.shape[3]
        return x.mean((2, 3))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_pooled: Tensor) -> tuple[Tensor, None]:
        grad_out, scale, buffer = ctx.handoff.pop()
        pooled_term = (grad_pooled / ctx.area).to(grad_out.dtype)[:, :, None, None]
        return torch.addcmul(pooled_term, grad_out, scale, out=buffer), None


class _Scale(torch.autograd.Function):
    """``x * weights`` whose backward leaves ``grad_x`` to :class:`_Squeeze`.

    Eager autograd spends five full-size passes on SE's backward (``g * w``, ``g * x``, its sum,
    the pooling's expand-and-divide, and adding that into ``grad_x``); SE's time is almost all
    these memory-bound passes, its two FC layers cost next to nothing. Here ``grad_w =
    sum_hw(g * x)`` is one pass and ``grad_x = g * w + grad_pooled / HW`` one more: this backward
    hands ``g`` on, and the squeeze's backward, which autograd must run later (it needs the
    excitation's gradient, which needs ``grad_w``), finishes ``grad_x`` with one ``addcmul``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weights: Tensor, handoff: Handoff) -> Tensor:
        ctx.save_for_backward(x, weights)
        ctx.handoff = handoff
        return x * weights[:, :, None, None].to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[None, Tensor, None]:
        x, weights = ctx.saved_tensors
        product = grad_out * x  # reused as grad_x's storage: no second full-size allocation
        ctx.handoff.append((grad_out, weights[:, :, None, None].to(grad_out.dtype), product))
        return None, product.sum((2, 3)).to(weights.dtype), None


class SqueezeExcite(nn.Module):
    """SE block with hidden width exactly ``channels // reduction`` (Hu et al., Eq. 5's parameter law).

    Unlike timm's ``SEModule`` it never rounds the width to a multiple of 8, so ``r`` means ``r``.
    Average squeeze in eager training runs through :class:`_Squeeze` and :class:`_Scale` (same
    values and gradients, fewer memory passes); under ``torch.compile`` the plain ops are left to
    the compiler, which fuses them itself.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        *,
        bias: bool = False,
        squeeze: str = "avg",
        excitation: str = "sigmoid",
        fused: bool = True,
    ):
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise HarnessError(
                f"SE reduction r={reduction} is larger than a block's {channels} channels "
                f"(hidden width would be 0); use reduction <= {channels} or restrict 'stages'"
            )
        self.squeeze = squeeze
        self.fused = fused and squeeze == "avg"
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, bias=bias)
        self.gate = GATES[excitation]()

    def excite(self, pooled: Tensor) -> Tensor:
        """Per-channel weights from the squeezed ``(N, C)`` descriptor."""
        return self.gate(self.fc2(self.act(self.fc1(pooled))))

    def forward(self, x: Tensor) -> Tensor:
        if self.fused and x.requires_grad and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            handoff: Handoff = []
            return _Scale.apply(x, self.excite(_Squeeze.apply(x, handoff)), handoff)
        pooled = x.mean((2, 3)) if self.squeeze == "avg" else torch.amax(x, dim=(2, 3))
        return x * self.excite(pooled)[:, :, None, None].to(x.dtype)
