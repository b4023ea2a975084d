"""Frozen info objects that plugins register, and the context objects lifecycle hooks receive.

A registration hook returns a list of these; the core flattens and validates them
(see :mod:`harness.registry`). Factories take one request/option object so they can grow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

    from harness.data.images import ImageTable


PLACEMENTS = ("standard", "pre", "post", "identity")  # SE, SE-PRE, SE-POST, SE-Identity (Hu et al., Fig. 5)


@dataclass(frozen=True)
class AttentionPlan:
    """How an attention variant changes a network: which layer, where, in which stages.

    ``layer(channels)`` builds one attention module; ``None`` means no attention.
    ``stages`` is ``None`` for "every stage", else the stage numbers (paper numbering).
    """

    layer: Callable[[int], nn.Module] | None
    placement: str = "standard"
    stages: tuple[int, ...] | None = None
    describe: Callable[[int], str] = field(default=lambda c: "")


@dataclass(frozen=True)
class BackboneRequest:
    """Everything a backbone factory needs to build one network."""

    num_classes: int
    in_chans: int = 3
    image_size: int = 224
    pretrained: bool | str = False
    attention: AttentionPlan = AttentionPlan(layer=None)


@dataclass(frozen=True)
class BackboneInfo:
    """A backbone: ``build(request) -> nn.Module``.

    ``stage_numbers`` are the stage numbers its blocks use (ResNet: 2..5, CIFAR ResNet: 1..3).
    """

    name: str
    build: Callable[[BackboneRequest], nn.Module]
    summary: str
    family: str = "resnet"
    stage_numbers: tuple[int, ...] = (2, 3, 4, 5)


@dataclass(frozen=True)
class AttentionInfo:
    """An attention variant: ``make(options) -> AttentionPlan``; raises HarnessError on bad options."""

    name: str
    make: Callable[[Mapping[str, Any]], AttentionPlan]
    summary: str


@dataclass(frozen=True)
class DatasetRequest:
    """What a dataset loader receives: its options, where the study file lives, a cache dir, a seed."""

    options: Mapping[str, Any]
    study_dir: Path
    cache_dir: Path
    seed: int


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: ``load(request) -> ImageTable`` (paths + labels + groups).

    ``options``: a pydantic model of its options (checked by ``validate``, listed in the docs);
    ``cheap_index``: loading the table only indexes files, so ``validate`` may load it (not so for
    a generator that writes images).
    """

    name: str
    load: Callable[[DatasetRequest], ImageTable]
    summary: str
    options: type | None = None
    cheap_index: bool = True


@dataclass(frozen=True)
class OptimizerInfo:
    """An optimizer: ``build(params, options) -> Optimizer``."""

    name: str
    build: Callable[[Any, Mapping[str, Any]], Optimizer]
    summary: str


@dataclass(frozen=True)
class SchedulerInfo:
    """An LR scheduler stepped once per epoch: ``build(optimizer, options, epochs)``."""

    name: str
    build: Callable[[Optimizer, Mapping[str, Any], int], LRScheduler]
    summary: str


@dataclass(frozen=True)
class FoldContext:
    """Passed to ``fold_finished``: one finished arm x repeat x fold cell."""

    study_name: str
    run_dir: Path
    arm: str
    repeat: int
    fold: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class StudyContext:
    """Passed to ``study_finished``: the whole run's results."""

    study_name: str
    run_dir: Path
    results: pd.DataFrame


@dataclass(frozen=True)
class ReportSection:
    """A report section from a plugin: a Jinja template (autoescaped) rendered with ``context``."""

    title: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportContext:
    """Passed to ``report_sections``: the run directory and the report's data."""

    run_dir: Path
    data: Any
