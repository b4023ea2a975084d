"""One cell's files: result, history, predictions, fingerprint, checkpoints; atomic, replaced whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import rundir as files
from harness.rundir import Cell, RunDir


def test_a_cells_files(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    cell = run.cell_files("se", 1, 2)
    assert cell.folder == tmp_path / files.CELLS / "se" / "r1-f2" == run.cell("se", 1, 2)
    cell.folder.mkdir(parents=True)
    assert cell.fingerprint() is None and not cell.has_result() and cell.history() is None
    cell.write_fingerprint("key")
    cell.write_result({"arm": "se", "accuracy": 0.5})
    cell.write_history([{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}])
    cell.write_predictions(pd.DataFrame({"sample_id": ["x"], "y_pred": [1]}))
    assert cell.fingerprint() == "key" and cell.result() == {"arm": "se", "accuracy": 0.5}
    assert list(cell.history().loss) == [1.0, 0.5]  # type: ignore[union-attr]
    assert run.histories("se")[0].equals(cell.history()) and list(cell.predictions().y_pred) == [1]
    for path in (cell.last, cell.best):
        path.write_bytes(b"w")
    assert run.has_checkpoints("se") and not run.has_checkpoints("plain")
    assert run.checkpoints() == [cell.best, cell.last]
    cell.forget(result=False, best=False)
    assert sorted(p.name for p in cell.folder.iterdir()) == sorted(
        [files.BEST, files.FINGERPRINT, files.HISTORY, files.RESULT, files.CELL_PREDICTIONS])
    cell.forget()
    assert not cell.has_result() and not cell.best.exists()


def test_history_is_replaced_by_the_rows_so_far(tmp_path: Path) -> None:
    cell = Cell(tmp_path)
    cell.write_history([{"epoch": 1, "loss": 0.9}])
    cell.write_history([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
    history = pd.read_csv(tmp_path / files.HISTORY)
    assert history.to_dict("list") == {"epoch": [1, 2], "loss": [0.9, 0.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == [files.HISTORY]  # no temp file left
