"""What one fold trains on: the device, and the fold's tensors placed there once."""

from __future__ import annotations

import torch

from harness.data.prepared import PreparedData, normalization
from harness.data.splits import Fold
from harness.run.threads import default_threads
from harness.run.trainer import FoldInputs

__all__ = ["FoldDataTooLarge", "default_threads", "fold_inputs"]


class FoldDataTooLarge(torch.cuda.OutOfMemoryError):
    """The fold's images, not a batch, exhausted GPU memory."""


def fold_inputs(data: PreparedData, fold: Fold, device: torch.device, pretrained: bool) -> FoldInputs:
    """The fold's uint8 images and labels on ``device`` (fit / inner / val / test) with the fit part's
    normalisation statistics; FoldDataTooLarge when the images themselves do not fit on the GPU."""
    pixels, labels = data.images.pixels, torch.from_numpy(data.table.labels)
    fit, inner = fold.fit, fold.inner  # weights fit on `fit`; choices (if any) made on `inner`, never on val
    x_train = pixels[torch.from_numpy(fit)]
    mean, std = normalization(x_train, data.images.channels, pretrained)
    test = torch.from_numpy(data.splits.test)

    def put(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, non_blocking=True)

    x_val, x_test, x_inner = pixels[torch.from_numpy(fold.val)], pixels[test], pixels[torch.from_numpy(inner)]
    try:
        return FoldInputs(
            x_train=put(x_train), y_train=put(labels[fit]),
            x_val=put(x_val), y_val=put(labels[fold.val]),
            x_test=put(x_test), y_test=put(labels[test]),
            mean=put(mean), std=put(std), in_chans=data.images.channels,
            x_inner=put(x_inner), y_inner=put(labels[inner]),
        )
    except torch.cuda.OutOfMemoryError:
        nbytes = sum(t.numel() for t in (x_train, x_val, x_test, x_inner))
        power = min(3, max(0, (nbytes.bit_length() - 1) // 10))
        size = f"{nbytes / 1024**power:.1f} {['bytes', 'KiB', 'MiB', 'GiB'][power]}"
        raise FoldDataTooLarge(
            f"the fold's decoded images ({size} as uint8) do not fit in GPU memory beside the model; "
            "a smaller batch will not help: lower dataset.image_size, or --set training.device=cpu"
        ) from None
