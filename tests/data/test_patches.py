"""Patch preparation: tiles of --size, mostly-white tiles discarded, whole sources kept to one split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.patches import make_patches
from harness.errors import HarnessError


def test_tiles_are_cut_white_ones_dropped_and_each_source_in_one_split(tmp_path: Path) -> None:
    src = tmp_path / "slides"
    src.mkdir()
    for i in range(4):
        slide = np.full((20, 30), 100, np.uint8)
        slide[:10, :10] = 255  # one white tile of the six
        Image.fromarray(slide, "L").save(src / f"{'tumour' if i % 2 else 'normal'}_{i}.png")
    summary = make_patches(src, tmp_path / "out", size=10, test_fraction=0.5)
    assert (summary.kept, summary.discarded_white) == (4 * 5, 4)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert set(labels.label) == {"tumour", "normal"} and labels.groupby("source").split.nunique().max() == 1
    assert set(labels.split) == {"train", "test"}
    assert Image.open(tmp_path / "out" / labels.image_path[0]).size == (10, 10)


def test_bad_arguments_are_one_message(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="--size must be at least 1"):
        make_patches(tmp_path, tmp_path / "out", size=0)
    with pytest.raises(HarnessError, match="--test-fraction"):
        make_patches(tmp_path, tmp_path / "out", test_fraction=1.0)
