"""A fold's inputs: the fold's own images on the device, normalised with its training part's statistics."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.data.prepared import normalization, prepare_data
from harness.run.inputs import fold_inputs
from harness.study.loader import load_study


def test_fold_inputs_hold_the_folds_samples_and_its_training_statistics(write_study, builtin_registry,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    data = prepare_data(load_study(write_study()), builtin_registry, tmp_path / "run", log=lambda _: None)
    fold = data.splits.folds[1]
    inputs = fold_inputs(data, fold, torch.device("cpu"), pretrained=False)
    pixels = data.images.pixels
    assert torch.equal(inputs.x_train, pixels[torch.from_numpy(fold.fit)])
    assert torch.equal(inputs.x_val, pixels[torch.from_numpy(fold.val)])
    assert inputs.y_val.tolist() == data.table.labels[fold.val].tolist() and len(inputs.x_test) == 0
    mean, _ = normalization(inputs.x_train, inputs.in_chans, pretrained=False)
    assert torch.equal(inputs.mean, mean)
    other = fold_inputs(data, data.splits.folds[0], torch.device("cpu"), pretrained=False)
    assert not torch.equal(other.mean, inputs.mean)  # each fold's own statistics, never the whole data's
