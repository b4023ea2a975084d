"""Independent random streams from one study seed (numpy ``SeedSequence``).

Every stream is ``SeedSequence(seed, spawn_key=(purpose, *keys))`` — the same child that
``SeedSequence(seed).spawn`` hands out — so (seed 0, repeat 1) and (seed 1000, repeat 0) are
unrelated streams, unlike the older ``seed + 1000 * repeat``. Purposes are fixed numbers, so a
stream never changes when another purpose is added.
"""

from __future__ import annotations

import numpy as np

PURPOSES = {"split": 0, "inner": 1, "init": 2, "fold": 3, "order": 4, "augment": 5}


def stream(seed: int, purpose: str, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of one purpose (split, inner, init, fold, order, augment) at ``keys``."""
    return np.random.SeedSequence(int(seed), spawn_key=(PURPOSES[purpose], *(int(k) for k in keys)))


def stream_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit integer seed for torch generators from :func:`stream`."""
    return int(stream(seed, purpose, *keys).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def sklearn_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 32-bit ``random_state`` for scikit-learn splitters from :func:`stream`."""
    return int(stream(seed, purpose, *keys).generate_state(1, np.uint32)[0])
