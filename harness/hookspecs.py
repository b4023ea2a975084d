"""Every hook the harness calls. Plugins implement them with ``@harness.hookimpl``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from harness import contracts as c

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- registration ---------------------------------------------------------------------------


@hookspec
def register_backbones() -> list[c.BackboneInfo]:
    """Return the backbones this plugin provides."""


@hookspec
def register_attention_variants() -> list[c.AttentionInfo]:
    """Return the attention variants this plugin provides."""


@hookspec
def register_datasets() -> list[c.DatasetInfo]:
    """Return the dataset loaders this plugin provides."""


@hookspec
def register_schedulers() -> list[c.SchedulerInfo]:
    """Return the learning-rate schedulers this plugin provides."""


@hookspec
def register_optimizers() -> list[c.OptimizerInfo]:
    """Return the optimizers this plugin provides."""


@hookspec
def register_loggers() -> list[c.LoggerInfo]:
    """Return the experiment trackers (``loggers:`` in a study) this plugin provides."""


# -- lifecycle -----------------------------------------------------------------------------


@hookspec
def study_started(context: c.StudyStartContext) -> None:
    """Called once before the first cell trains (after the resolved study is written).

    :param context: the study's name, run directory, and every arm's resolved settings.
    """


@hookspec
def epoch_finished(context: c.EpochContext) -> None:
    """Called after each training epoch of a cell, once its row is in the cell's ``history.csv``.

    :param context: the cell's identity, the epoch, its metrics row, learning rate and elapsed seconds.
    """


@hookspec
def fold_finished(context: c.FoldContext) -> None:
    """Called after one arm x repeat x fold cell has trained and been evaluated.

    :param context: the cell's identity, metrics and run directory.
    """


@hookspec
def study_finished(context: c.StudyContext) -> None:
    """Called once every cell of a study is done and results are written.

    :param context: the study's name, run directory and results table.
    """


# -- reporting -----------------------------------------------------------------------------


@hookspec
def report_sections(context: c.ReportContext) -> list[c.ReportSection]:
    """Return extra sections for the HTML report.

    :param context: the run directory and the report's data (``ReportData``).
    """


@hookspec
def report_filters() -> dict[str, Callable[..., Any]]:
    """Return Jinja filters (name -> function) that report templates, plugin sections included, may use."""
