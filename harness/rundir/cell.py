"""One cell's folder (``RUN/cells/<arm>/r<repeat>-f<fold>/``): its result, history, predictions, fingerprint and
checkpoints. Writes are atomic (:mod:`harness.atomic`); the checkpoints are written by the trainer at the paths
given here (``atomic_save_torch``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harness.rundir.names as n
from harness.atomic import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd


class Cell:
    """The files of one arm x repeat x fold cell."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Cell({str(self.folder)!r})"

    @property
    def last(self) -> Path:
        """The resumable checkpoint (last epoch)."""
        return self.folder / n.LAST

    @property
    def best(self) -> Path:
        """The scored model's weights."""
        return self.folder / n.BEST

    @property
    def result_path(self) -> Path:
        return self.folder / n.RESULT

    def has_result(self) -> bool:
        return self.result_path.exists()

    def result(self) -> dict[str, Any]:
        """result.json (the cell's scores and notes)."""
        return dict(json.loads(self.result_path.read_text()))

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_text(self.result_path, json.dumps(result, indent=1))

    def predictions(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.folder / n.CELL_PREDICTIONS)

    def write_predictions(self, predictions: pd.DataFrame) -> None:
        atomic_write_text(self.folder / n.CELL_PREDICTIONS, predictions.to_csv(index=False))

    def history(self) -> pd.DataFrame | None:
        """history.csv (one row per epoch), None when the cell has none."""
        import pandas as pd

        path = self.folder / n.HISTORY
        return pd.read_csv(path) if path.exists() else None

    def write_history(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace history.csv with ``rows`` (atomically: a reader never sees half a file)."""
        import pandas as pd

        atomic_write_text(self.folder / n.HISTORY, pd.DataFrame(list(rows)).to_csv(index=False))

    def fingerprint(self) -> str | None:
        """The settings key the cell was trained with, None when it has none."""
        path = self.folder / n.FINGERPRINT
        return path.read_text().strip() if path.exists() else None

    def write_fingerprint(self, fingerprint: str) -> None:
        atomic_write_text(self.folder / n.FINGERPRINT, fingerprint)

    def forget(self, *, result: bool = True, last: bool = True, best: bool = True) -> None:
        """Drop the cell's result and (or) checkpoints, so it trains again."""
        for keep, path in ((result, self.result_path), (last, self.last), (best, self.best)):
            if keep:
                path.unlink(missing_ok=True)
