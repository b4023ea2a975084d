"""The data summary's frame-name warning: names that look like video frames are flagged."""

from __future__ import annotations

import pytest

from harness.data.describe import frame_name_warning


@pytest.mark.parametrize("names,n_classes,flagged", [
    ([f"vid{v}_frame{f}.png" for v in range(5) for f in range(4)], 2, True),
    ([f"scan{v}-slice_{f}.dcm.png" for v in range(5) for f in range(4)], 2, True),
    ([f"patient{v}_{f}.jpg" for v in range(6) for f in range(3)], 3, True),
    ([f"IMG_{i:04d}.jpg" for i in range(20)], 2, False),  # camera numbering: one prefix
    ([f"{'cat' if i % 2 else 'dog'}.{i}.jpg" for i in range(20)], 2, False),  # one prefix per class
    ([f"case{i}.png" for i in range(20)], 2, False),  # every name its own source ("case" shared is one prefix)
    ([f"{w}.png" for w in "abcdefghij"], 2, False),  # no numbers
    ([f"{i}.png" for i in range(100)], 2, False),  # plain numbers are not frames of sources "1".."9"
    ([f"{v}_{f}.png" for v in range(10, 16) for f in range(3)], 2, True),  # numeric video ids, set off
])
def test_frame_name_detection(names: list[str], n_classes: int, flagged: bool) -> None:
    assert (frame_name_warning(names, n_classes) is not None) is flagged
