"""The exact Squeeze-and-Excitation module (imported only when a network is built)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from harness.errors import HarnessError

GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hard_sigmoid": nn.Hardsigmoid,
}


class SqueezeExcite(nn.Module):
    """SE block with hidden width exactly ``channels // reduction`` (Hu et al., Eq. 5's parameter law).

    Unlike timm's ``SEModule`` it never rounds the width to a multiple of 8, so ``r`` means ``r``.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        *,
        bias: bool = False,
        squeeze: str = "avg",
        excitation: str = "sigmoid",
    ):
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise HarnessError(
                f"SE reduction r={reduction} is larger than a block's {channels} channels "
                f"(hidden width would be 0); use reduction <= {channels} or restrict 'stages'"
            )
        self.squeeze = squeeze
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, bias=bias)
        self.gate = GATES[excitation]()

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean((2, 3)) if self.squeeze == "avg" else torch.amax(x, dim=(2, 3))
        weights = self.gate(self.fc2(self.act(self.fc1(pooled))))
        return x * weights[:, :, None, None].to(x.dtype)
