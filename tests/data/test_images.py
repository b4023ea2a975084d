"""Decoding: every image resized once to one uint8 tensor (gray stays one channel), unreadable ones named,
and a second decode served from the on-disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness.data.images import decode_images


def test_gray_and_colour_decode_to_one_tensor_and_bad_files_are_named(tmp_path: Path) -> None:
    Image.fromarray(np.full((20, 30), 128, np.uint8), "L").save(tmp_path / "gray.png")
    assert decode_images([tmp_path / "gray.png"], 8).channels == 1  # all gray: one channel
    Image.fromarray(np.tile(np.array([255, 0, 0], np.uint8), (10, 10, 1)), "RGB").save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    images = decode_images([tmp_path / "gray.png", tmp_path / "red.png", tmp_path / "broken.png"], 8)
    assert images.pixels.shape == (3, 3, 8, 8) and images.pixels.dtype == torch.uint8
    assert (images.pixels[0] == 128).all()  # gray repeated into every channel
    assert images.pixels[1, :, 4, 4].tolist() == [255, 0, 0]
    assert [index for index, _ in images.bad] == [2]


def test_the_cache_is_reused_and_a_changed_image_is_decoded_again(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((12, 12), 40 * i, np.uint8), "L").save(paths[-1])
    cache = tmp_path / "cache"
    first = decode_images(paths, 8, cache)
    second = decode_images(paths, 8, cache)
    assert torch.equal(first.pixels, second.pixels) and second.exact == first.exact
    assert len(list(cache.glob("decoded-8-*.npy"))) == 1
    Image.fromarray(np.full((12, 12), 200, np.uint8), "L").save(paths[0])  # the content keys the cache
    third = decode_images(paths, 8, cache)
    assert (third.pixels[0] == 200).all() and len(list(cache.glob("decoded-8-*.npy"))) == 2
