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
    from pydantic import BaseModel
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
    The rest tells the core what it built, so any variant gets cost rows, the excitation plot and
    pretrained-weights warnings: ``describe(channels)`` one line for the cost table,
    ``hidden(channels)`` the bottleneck width (``None``: no bottleneck) and ``gate`` the name of the
    submodule whose output is the per-channel excitation (``None``: nothing to plot).
    """

    layer: Callable[[int], nn.Module] | None
    placement: str = "standard"
    stages: tuple[int, ...] | None = None
    describe: Callable[[int], str] = field(default=lambda c: "")
    hidden: Callable[[int], int] | None = None
    gate: str | None = None


@dataclass(frozen=True)
class AttentionTag:
    """What the core knows of one attention module in a network (set by :func:`mark_attention`)."""

    channels: int
    hidden: int | None = None
    gate: str | None = None  # submodule whose output is the per-channel excitation
    description: str = ""


ATTENTION_ATTRIBUTE = "harness_attention"


def mark_attention(module: nn.Module, tag: AttentionTag) -> nn.Module:
    """Tag ``module`` as attention. Surgery tags what it inserts; a backbone with built-in attention
    tags its own modules, so the core never recognises attention by class name."""
    object.__setattr__(module, ATTENTION_ATTRIBUTE, tag)  # a plain attribute, not a submodule or buffer
    return module


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, AttentionTag]]:
    """Every tagged attention module of ``model`` with its qualified name, in module order."""
    return [(name, module, getattr(module, ATTENTION_ATTRIBUTE)) for name, module in model.named_modules()
            if isinstance(getattr(module, ATTENTION_ATTRIBUTE, None), AttentionTag)]


@dataclass(frozen=True)
class BackboneRequest:
    """Everything a backbone factory needs to build one network."""

    num_classes: int
    in_chans: int = 3
    image_size: int = 224
    pretrained: bool | str = False
    attention: AttentionPlan = AttentionPlan(layer=None)
    init: str = "standard"  # the study's init policy: standard (every BN weight 1) | zero_last_bn
    name: str = ""  # the backbone name the study gave (a family entry such as ``timm/*`` builds from it)


@dataclass(frozen=True)
class BackboneInfo:
    """A backbone: ``build(request) -> nn.Module``; ``family`` groups related backbones in listings.

    A backbone with attention built in tags those modules with :func:`mark_attention`.
    A family entry is named ``prefix/*`` and has ``members(pattern)``, the ``prefix/<name>`` names
    matching an fnmatch pattern: the registry resolves each of those names to it. ``options``:
    a study gives a backbone no options yet (the request carries what it needs), so ``None`` (no options).
    """

    name: str
    build: Callable[[BackboneRequest], nn.Module]
    summary: str
    family: str = "resnet"
    members: Callable[[str], list[str]] | None = None
    options: type[BaseModel] | None = None


@dataclass(frozen=True)
class AttentionInfo:
    """An attention variant: ``make(options) -> AttentionPlan``; raises HarnessError on bad options.

    ``options``: a pydantic model of its options (checked by ``validate`` with line numbers, listed by
    ``harness list attention --options``, in ``harness schema``); ``None``: derived from ``make``'s
    signature (see :func:`harness.options.options_model`). ``default``: the variant an arm gets when it
    names none; ``identity``: the variant that adds no attention (the plain network: ``init: zero_last_bn``
    accepts it, ``harness model``/``bench`` use it). At most one loaded variant may claim each.
    """

    name: str
    make: Callable[[Mapping[str, Any]], AttentionPlan]
    summary: str
    options: type[BaseModel] | None = None
    default: bool = False
    identity: bool = False


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
    a generator that writes images). ``group_column_hint``: how a user of this dataset gets a column to
    group the folds by (``cv.group``), added to the message when the named column is missing.
    """

    name: str
    load: Callable[[DatasetRequest], ImageTable]
    summary: str
    options: type[BaseModel] | None = None
    cheap_index: bool = True
    group_column_hint: str | None = None


@dataclass(frozen=True)
class OptimizerInfo:
    """An optimizer: ``build(params, options) -> Optimizer``; ``options`` as for :class:`AttentionInfo`;
    ``default``: the optimizer a study gets when it names none (at most one loaded optimizer claims it)."""

    name: str
    build: Callable[[Any, Mapping[str, Any]], Optimizer]
    summary: str
    options: type[BaseModel] | None = None
    default: bool = False


@dataclass(frozen=True)
class SchedulerInfo:
    """An LR scheduler stepped once per epoch: ``build(optimizer, options, epochs)``; ``options`` as for
    :class:`AttentionInfo`; ``default``: the scheduler a study gets when it names none (at most one claims it)."""

    name: str
    build: Callable[[Optimizer, Mapping[str, Any], int], LRScheduler]
    summary: str
    options: type[BaseModel] | None = None
    default: bool = False


@dataclass(frozen=True)
class LoggerInfo:
    """An experiment tracker a study turns on with ``loggers:``: ``start(options, folder) -> plugin``.

    ``folder`` is the logger's own folder in the run directory (``RUN/plugins/<name>/``, created by
    the core); it writes nothing elsewhere there. ``keep``: names inside that folder that ``--fresh``
    keeps (a store that holds every earlier run); everything else in it is removed.

    The plugin is an object whose ``@hookimpl`` methods (``study_started``, ``epoch_finished``,
    ``fold_finished``, ``study_finished``) are registered for that run only, and whose optional
    ``close(completed: bool)`` is called once the run has ended (after the report is written).
    ``options``: a pydantic model of its options; ``requires``: the module it imports and the
    extra that installs it (``("mlflow", "mlflow")``), checked by ``validate``.
    """

    name: str
    start: Callable[[Mapping[str, Any], Path], object]
    summary: str
    options: type | None = None
    requires: tuple[str, str] | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyStartContext:
    """Passed to ``study_started``: the run directory and every arm's resolved settings."""

    study_name: str
    run_dir: Path
    arms: Mapping[str, Mapping[str, Any]]  # arm -> its settings as in the run's study.yaml
    study: Mapping[str, Any]  # the resolved study (study.yaml)


@dataclass(frozen=True)
class EpochContext:
    """Passed to ``epoch_finished``: one epoch of one arm x repeat x fold cell.

    ``metrics`` is the epoch's row of the cell's ``history.csv`` (same keys); ``seconds`` the
    training time of the cell so far.
    """

    study_name: str
    run_dir: Path
    arm: str
    repeat: int
    fold: int
    epoch: int
    metrics: Mapping[str, float]
    lr: float
    seconds: float
    cell_dir: Path


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
    """Passed to ``study_finished``: the whole run's results; ``artifacts``: the run's result files worth
    keeping with it (the report, results.csv, study.yaml; the report is written after this hook)."""

    study_name: str
    run_dir: Path
    results: pd.DataFrame
    artifacts: tuple[Path, ...] = ()


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


KIND_NAMES = {  # a component kind (the registry's table) -> what one of them is called in messages
    "backbones": "backbone",
    "attention": "attention variant",
    "datasets": "dataset",
    "schedulers": "scheduler",
    "optimizers": "optimizer",
    "loggers": "logger",
}
