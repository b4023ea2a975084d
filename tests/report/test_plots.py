"""The report's figures: valid PNGs (base64, for inline <img>) whose layout follows the data."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from harness.report.plots import arm_curves_png, excitation_png, image_grid_png


def _size(png: str) -> tuple[int, int]:
    image = Image.open(io.BytesIO(base64.b64decode(png)))
    assert image.format == "PNG"
    return image.size


def test_image_grid_adds_a_row_per_six_images_and_takes_gray_and_colour() -> None:
    gray, colour = np.zeros((1, 8, 8), np.uint8), np.full((3, 8, 8), 200, np.uint8)
    one_row = _size(image_grid_png([gray] * 6, [f"#{i}" for i in range(6)]))
    two_rows = _size(image_grid_png([gray, colour] * 3 + [gray], [f"#{i}" for i in range(7)],
                                    overlays=[np.ones((8, 8))] * 7))
    assert two_rows[0] == one_row[0] and two_rows[1] > 1.5 * one_row[1]


def test_curves_and_excitations_are_drawn_for_every_arm_and_depth() -> None:
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
                            "lr": [0.1, 0.1, 0.01]})
    assert min(_size(arm_curves_png({"plain": [history, history], "se": [history]}, "loss"))) > 100
    narrow = _size(excitation_png({"layer1": np.full((2, 16), 0.5)}, ["a", "b"]))
    wide = _size(excitation_png({"layer1": np.full((2, 16), 0.5), "layer3": np.full((2, 64), 0.2)}, ["a", "b"]))
    assert wide[0] > 1.5 * narrow[0]
