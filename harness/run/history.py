"""A cell's per-epoch history (``history.csv``), written after every epoch so it can be followed live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from harness.atomic import atomic_write_text
from harness.rundir import HISTORY


def write_history(cell: Path, rows: Sequence[Mapping[str, float]]) -> None:
    """Replace the cell's history.csv with ``rows`` (atomically: a reader never sees half a file)."""
    atomic_write_text(cell / HISTORY, pd.DataFrame(list(rows)).to_csv(index=False))
