"""The built-in optimizers and schedulers: torch's classes with the declared options; bad values name the owner."""

from __future__ import annotations

import pytest
import torch
from harness_plugins.optim.plugin import register_optimizers, register_schedulers

from harness.errors import HarnessError


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2))]


def test_optimizers_and_schedulers_are_torchs_with_the_options_given() -> None:
    optimizers = {info.name: info for info in register_optimizers()}
    sgd = optimizers["sgd"].build(_params(), {"lr": 0.05, "momentum": 0.9})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["lr"] == 0.05 and sgd.defaults["momentum"] == 0.9
    schedulers = {info.name: info for info in register_schedulers()}
    cosine = schedulers["cosine"].build(sgd, {}, 7)
    assert isinstance(cosine, torch.optim.lr_scheduler.CosineAnnealingLR) and cosine.T_max == 7  # T_max: the epochs
    constant = schedulers["constant"].build(sgd, {}, 3)
    for _ in range(3):
        sgd.step()
        constant.step()
    assert sgd.param_groups[0]["lr"] == 0.05


def test_a_value_torch_refuses_names_the_optimizer() -> None:
    adam = {info.name: info for info in register_optimizers()}["adam"]
    with pytest.raises(HarnessError, match="optimizer 'adam'"):
        adam.build(_params(), {"lr": 0.001, "betas": [1.5, 0.999]})
