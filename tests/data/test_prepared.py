"""Preparing a study's data: the table, decoded pixels and splits in one object; normalisation from the
training fold, or ImageNet's for pretrained weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.data.prepared import normalization, prepare_data
from harness.study.loader import load_study


def test_a_phantom_study_is_prepared_with_every_sample_validated_once(write_study, builtin_registry,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    said: list[str] = []
    data = prepare_data(load_study(write_study()), builtin_registry, tmp_path / "run", log=said.append)
    assert data.num_classes == 2 and data.images.pixels.shape == (24, data.images.channels, 32, 32)
    assert len(data.splits.folds) == 2 and len(data.splits.test) == 0
    validated = np.concatenate([fold.val for fold in data.splits.folds])
    assert sorted(validated) == list(range(24))
    assert data.summary and said  # the data summary is logged


def test_normalization_is_the_folds_own_or_imagenets_for_pretrained() -> None:
    x = torch.full((10, 1, 4, 4), 51, dtype=torch.uint8)  # 51 / 255 = 0.2 everywhere
    mean, std = normalization(x, 1, pretrained=False)
    assert torch.allclose(mean, torch.tensor([0.2])) and torch.equal(std, torch.tensor([1e-3]))  # sd floored
    mean, std = normalization(x, 3, pretrained=True)
    assert torch.allclose(mean, torch.tensor([0.485, 0.456, 0.406]))
    assert normalization(x, 1, pretrained=True)[0].shape == (1,)
