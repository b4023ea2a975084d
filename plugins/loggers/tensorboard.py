"""The ``tensorboard`` logger: one TensorBoard run per cell, ``RUN/plugins/tensorboard/<arm>/r<repeat>-f<fold>/``.

Every history.csv column is a scalar per epoch (step = epoch), flushed as the epoch ends so
``tensorboard --logdir RUN/plugins/tensorboard`` follows a study live; when the cell ends its arm's
settings (plus repeat and fold) are written as hparams, with the cell's final metrics as
``final/<metric>``. Needs the ``tensorboard`` package (``pip install 'ablation-harness[tensorboard]'``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.loggers.tracking import flatten
from pydantic import BaseModel, ConfigDict

from harness.api import (
    EpochContext,
    FoldContext,
    LoggerInfo,
    StudyStartContext,
    cell_name,
    hookimpl,
)

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class TensorBoardOptions(BaseModel):
    """The tensorboard logger takes no options (its files always go under RUN/plugins/tensorboard)."""

    model_config = ConfigDict(extra="forbid")


class TensorBoardLogger:
    """Writes one event-file run per cell; started for one study run by the core."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.arms: dict[str, dict[str, Any]] = {}
        self.writers: dict[tuple[str, int, int], SummaryWriter] = {}

    def _writer(self, arm: str, repeat: int, fold: int, *, first_epoch: bool) -> SummaryWriter:
        key = (arm, repeat, fold)
        if key not in self.writers:
            from torch.utils.tensorboard import SummaryWriter

            folder = self.folder / arm / cell_name(repeat, fold)
            if first_epoch and folder.exists():  # the cell trains from scratch: its old curves are stale
                shutil.rmtree(folder)
            self.writers[key] = SummaryWriter(log_dir=str(folder))
        return self.writers[key]

    @hookimpl
    def study_started(self, context: StudyStartContext) -> None:
        self.arms = {name: flatten(settings) for name, settings in context.arms.items()}

    @hookimpl
    def epoch_finished(self, context: EpochContext) -> None:
        writer = self._writer(context.arm, context.repeat, context.fold, first_epoch=context.epoch == 1)
        for key, value in context.metrics.items():
            if key != "epoch":
                writer.add_scalar(key, float(value), context.epoch)
        writer.flush()

    @hookimpl
    def fold_finished(self, context: FoldContext) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._writer(context.arm, context.repeat, context.fold, first_epoch=False)
        settings = {**self.arms.get(context.arm, {}), "arm": context.arm, "repeat": context.repeat,
                    "fold": context.fold}
        final = {f"final/{key}": float(value) for key, value in context.metrics.items()}
        file_writer = writer._get_file_writer()
        for summary in hparams(settings, final):  # experiment, session start, session end: this run's hparams
            file_writer.add_summary(summary)
        for tag, value in final.items():
            writer.add_scalar(tag, value, 0)
        writer.close()
        del self.writers[(context.arm, context.repeat, context.fold)]

    def close(self, completed: bool) -> None:
        """Flush and close the writers of cells that did not finish (an interrupted run)."""
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def start(options: Mapping[str, Any], folder: Path) -> TensorBoardLogger:
    try:
        import torch.utils.tensorboard  # noqa: F401  (needs the tensorboard package)
    except ImportError as exc:
        from harness.api import HarnessError

        raise HarnessError(f"the tensorboard logger cannot start ({exc}): "
                           "pip install 'ablation-harness[tensorboard]'") from None
    return TensorBoardLogger(folder)


@hookimpl
def register_loggers() -> list[LoggerInfo]:
    return [LoggerInfo("tensorboard", start, "TensorBoard event files per cell under RUN/plugins/tensorboard (scalars "
                       "per epoch, hparams per arm)", TensorBoardOptions, ("tensorboard", "tensorboard"))]
