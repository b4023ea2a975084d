"""Every hook the harness calls. Plugins implement them with ``@harness.hookimpl``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from harness.components import (
        AttentionInfo,
        BackboneInfo,
        DatasetInfo,
        FoldContext,
        OptimizerInfo,
        SchedulerInfo,
        StudyContext,
    )

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- registration ---------------------------------------------------------------------------


@hookspec
def register_backbones() -> list[BackboneInfo]:
    """Return the backbones this plugin provides."""


@hookspec
def register_attention_variants() -> list[AttentionInfo]:
    """Return the attention variants this plugin provides."""


@hookspec
def register_datasets() -> list[DatasetInfo]:
    """Return the dataset loaders this plugin provides."""


@hookspec
def register_schedulers() -> list[SchedulerInfo]:
    """Return the learning-rate schedulers this plugin provides."""


@hookspec
def register_optimizers() -> list[OptimizerInfo]:
    """Return the optimizers this plugin provides."""


# -- lifecycle -----------------------------------------------------------------------------


@hookspec
def fold_finished(context: FoldContext) -> None:
    """Called after one arm x repeat x fold cell has trained and been evaluated.

    :param context: the cell's identity, metrics and run directory.
    """


@hookspec
def study_finished(context: StudyContext) -> None:
    """Called once every cell of a study is done and results are written.

    :param context: the study's name, run directory and results table.
    """
