"""history.csv: one row per epoch, replaced whole after each epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.run.history import write_history
from harness.rundir import HISTORY


def test_history_is_replaced_by_the_rows_so_far(tmp_path: Path) -> None:
    write_history(tmp_path, [{"epoch": 1, "loss": 0.9}])
    write_history(tmp_path, [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
    history = pd.read_csv(tmp_path / HISTORY)
    assert history.to_dict("list") == {"epoch": [1, 2], "loss": [0.9, 0.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == [HISTORY]  # no temp file left
