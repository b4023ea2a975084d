"""The declarative training options around the step: lr warmup, gradient clipping, EMA of the weights.

Each is off unless the study declares it (``training.warmup``, ``training.clip_grad``,
``training.ema``); what ran is in the resolved study and the report's protocol line
(:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harness.errors import HarnessError
from harness.study.schema import ClipGradSpec, EmaSpec, TrainingSpec, WarmupSpec

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

    from harness.registry import Registry


def build_scheduler(registry: Registry, optimizer: Optimizer, training: TrainingSpec) -> LRScheduler:
    """The declared scheduler, behind a linear warmup when ``training.warmup`` asks for one.

    With warmup the declared scheduler covers the epochs after it (``cosine``'s ``T_max`` defaults
    to those), so it ends where it would have without warmup.
    """
    spec = training.scheduler.model_dump()
    name = spec.pop("name")
    epochs = training.epochs - (training.warmup.epochs if training.warmup else 0)
    scheduler = registry.scheduler(name).build(optimizer, spec, epochs)
    return with_warmup(optimizer, scheduler, training.warmup, name) if training.warmup else scheduler


def with_warmup(optimizer: Optimizer, scheduler: LRScheduler, warmup: WarmupSpec, name: str = "") -> LRScheduler:
    """``warmup.epochs`` of LinearLR from ``start_factor`` x lr to the lr, then ``scheduler`` (SequentialLR)."""
    from torch.optim.lr_scheduler import LinearLR, ReduceLROnPlateau, SequentialLR

    if isinstance(scheduler, ReduceLROnPlateau) or not hasattr(scheduler, "get_last_lr"):
        raise HarnessError(f"training.warmup cannot go before scheduler {name or type(scheduler).__name__!r}: "
                           f"{type(scheduler).__name__} steps on a metric, and torch's SequentialLR chains only "
                           "epoch-stepped schedulers; drop warmup or use an epoch-based scheduler (e.g. cosine)")
    ramp = LinearLR(optimizer, start_factor=warmup.start_factor, end_factor=1.0, total_iters=warmup.epochs)
    return SequentialLR(optimizer, [ramp, scheduler], milestones=[warmup.epochs])


def clip_gradients(parameters: Iterable[nn.Parameter], spec: ClipGradSpec | None) -> None:
    """Clip the gradients' total norm in place (the caller unscales them first under AMP)."""
    if spec is not None:
        nn.utils.clip_grad_norm_(parameters, spec.max_norm, norm_type=spec.norm_type)


def make_ema(model: nn.Module, spec: EmaSpec | None) -> nn.Module | None:
    """timm's ModelEmaV3 of ``model`` (a copy, on its device), or None when EMA is off.

    Updated with a fixed ``decay`` (no decay warmup): ema = decay * ema + (1 - decay) * weights,
    for every parameter and float buffer (BatchNorm statistics).
    """
    if spec is None:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=spec.decay)  # type: ignore[no-any-return]


def ema_update(ema: nn.Module | None, model: nn.Module) -> None:
    """One EMA step after an optimizer step."""
    if ema is not None:
        with torch.no_grad():
            ema.update(model)  # type: ignore[operator]


def describe(training: Mapping[str, Any]) -> list[str]:
    """Protocol-line phrases for the options a (resolved) ``training`` mapping turns on; [] for none."""
    parts = []
    if warmup := training.get("warmup"):
        parts.append(f"lr warmup: {warmup['epochs']} epoch{'s' if warmup['epochs'] != 1 else ''} from "
                     f"{warmup.get('start_factor', 0.1):g} x lr, then the scheduler")
    if clip := training.get("clip_grad"):
        norm = clip.get("norm_type", 2.0)
        parts.append(f"gradient clipping at total norm {clip['max_norm']:g}" + (f" (L{norm:g})" if norm != 2 else ""))
    if ema := training.get("ema"):
        parts.append(f"EMA of the weights (decay {ema['decay']:g}): the EMA weights are selected, scored and saved")
    if training.get("compile"):
        parts.append("trained through torch.compile (evaluation eager)")
    if training.get("cuda_graph"):
        parts.append("training step replayed from a CUDA graph")
    return parts
