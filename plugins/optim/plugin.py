"""Optimizers and per-epoch learning-rate schedulers from torch.optim, their options declared in
:mod:`harness_plugins.optim.options`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness_plugins.optim.options import (
    AdamOptions,
    AdamWOptions,
    ConstantOptions,
    CosineOptions,
    ExponentialOptions,
    MultiStepOptions,
    RMSpropOptions,
    SGDOptions,
    StepOptions,
)
from pydantic import BaseModel

from harness.api import HarnessError, OptimizerInfo, SchedulerInfo, hookimpl, parse_options

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler


def _call(owner: str, factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    try:
        return factory(*args, **options)
    except ValueError as exc:  # what the option models cannot see (e.g. a parameter group's own values)
        raise HarnessError(f"{owner}: {exc}") from None


def _optimizer(name: str, class_name: str, model: type[BaseModel], default: bool = False) -> OptimizerInfo:
    def build(params: Any, options: Mapping[str, Any]) -> Optimizer:
        import torch.optim

        owner = f"optimizer {name!r}"
        opts = parse_options(model, options, owner).model_dump()
        return _call(owner, getattr(torch.optim, class_name), params, **opts)  # type: ignore[no-any-return]

    return OptimizerInfo(name, build, f"torch.optim.{class_name}", model, default=default)


def _scheduler(name: str, summary: str, class_name: str, model: type[BaseModel],
               default: bool = False) -> SchedulerInfo:
    def build(optimizer: Optimizer, options: Mapping[str, Any], epochs: int) -> LRScheduler:
        from torch.optim import lr_scheduler

        owner = f"scheduler {name!r}"
        opts = parse_options(model, options, owner).model_dump()
        if "T_max" in opts and opts["T_max"] is None:
            opts["T_max"] = epochs
        factory = _constant if class_name == "constant" else getattr(lr_scheduler, class_name)
        return _call(owner, factory, optimizer, **opts)  # type: ignore[no-any-return]

    return SchedulerInfo(name, build, summary, model, default=default)


def _constant(optimizer: Optimizer) -> LRScheduler:
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda epoch: 1.0)


@hookimpl
def register_optimizers() -> list[OptimizerInfo]:
    return [
        _optimizer("sgd", "SGD", SGDOptions, default=True),
        _optimizer("adam", "Adam", AdamOptions),
        _optimizer("adamw", "AdamW", AdamWOptions),
        _optimizer("rmsprop", "RMSprop", RMSpropOptions),
    ]


@hookimpl
def register_schedulers() -> list[SchedulerInfo]:
    return [
        _scheduler("step", "StepLR: lr x gamma every step_size epochs (default 7 / 0.1, the SE projects' schedule)",
                   "StepLR", StepOptions, default=True),
        _scheduler("multistep", "MultiStepLR: lr x gamma at each of milestones", "MultiStepLR", MultiStepOptions),
        _scheduler("cosine", "CosineAnnealingLR over the training epochs (T_max defaults to epochs)",
                   "CosineAnnealingLR", CosineOptions),
        _scheduler("exponential", "ExponentialLR: lr x gamma every epoch", "ExponentialLR", ExponentialOptions),
        _scheduler("constant", "constant learning rate", "constant", ConstantOptions),
    ]
