"""Optimizers and per-epoch learning-rate schedulers from torch.optim."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness import hookimpl
from harness.contracts import OptimizerInfo, SchedulerInfo
from harness.errors import HarnessError, did_you_mean

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler


def _accepted(factory: Callable[..., Any]) -> list[str]:
    try:
        return [p for p in inspect.signature(factory).parameters if p not in ("self", "params", "optimizer")]
    except (TypeError, ValueError):
        return []


def _call(kind: str, name: str, factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    accepted = _accepted(factory)
    unknown = [k for k in options if accepted and k not in accepted]
    if unknown:
        raise HarnessError(f"{kind} {name!r}: no option {unknown[0]!r}{did_you_mean(unknown[0], accepted)}; "
                           f"options: {', '.join(accepted)}")
    try:
        return factory(*args, **options)
    except TypeError as exc:
        raise HarnessError(f"{kind} {name!r}: bad options {sorted(options)}: {exc}") from None
    except ValueError as exc:
        raise HarnessError(f"{kind} {name!r}: {exc}") from None


def _optimizer(name: str, class_name: str) -> OptimizerInfo:
    def build(params: Any, options: Mapping[str, Any]) -> Optimizer:
        import torch.optim

        return _call("optimizer", name, getattr(torch.optim, class_name), params, **options)  # type: ignore[no-any-return]

    return OptimizerInfo(name, build, f"torch.optim.{class_name}")


def _scheduler(name: str, summary: str, class_name: str, needs_epochs: bool = False,
               defaults: Mapping[str, Any] | None = None) -> SchedulerInfo:
    def build(optimizer: Optimizer, options: Mapping[str, Any], epochs: int) -> LRScheduler:
        from torch.optim import lr_scheduler

        factory = _constant if class_name == "constant" else getattr(lr_scheduler, class_name)
        merged = {**(defaults or {}), **({"T_max": epochs} if needs_epochs else {}), **options}
        for key in ("step_size", "T_max"):  # torch accepts 0 here and divides by it at the first step
            if key in merged and (isinstance(merged[key], bool) or not isinstance(merged[key], int) or merged[key] < 1):
                raise HarnessError(f"scheduler {name!r}: {key} must be a whole number of epochs >= 1 (got {merged[key]!r})")
        return _call("scheduler", name, factory, optimizer, **merged)  # type: ignore[no-any-return]

    return SchedulerInfo(name, build, summary)


def _constant(optimizer: Optimizer) -> LRScheduler:
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda epoch: 1.0)


@hookimpl
def register_optimizers() -> list[OptimizerInfo]:
    return [
        _optimizer("sgd", "SGD"),
        _optimizer("adam", "Adam"),
        _optimizer("adamw", "AdamW"),
        _optimizer("rmsprop", "RMSprop"),
    ]


@hookimpl
def register_schedulers() -> list[SchedulerInfo]:
    return [
        _scheduler("step", "StepLR: lr x gamma every step_size epochs (default 7 / 0.1, the SE projects' schedule)",
                   "StepLR", defaults={"step_size": 7, "gamma": 0.1}),
        _scheduler("multistep", "MultiStepLR: lr x gamma at each of milestones", "MultiStepLR"),
        _scheduler("cosine", "CosineAnnealingLR over the training epochs (T_max defaults to epochs)",
                   "CosineAnnealingLR", needs_epochs=True),
        _scheduler("exponential", "ExponentialLR: lr x gamma every epoch", "ExponentialLR"),
        _scheduler("constant", "constant learning rate", "constant"),
    ]
