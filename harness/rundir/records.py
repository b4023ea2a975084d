"""Typed reads and writes of the records at the top of a run directory (study, results, predictions, splits, ...).

Every write is atomic (:mod:`harness.atomic`: a temp file beside the target, then a rename, under the umask), in
the format each file has always had; every read of an optional record returns None (or an empty value) when the
record is missing. :class:`RunRecords` is the part of :class:`harness.rundir.RunDir` that reads and writes.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harness.rundir.names as n
from harness.atomic import atomic_write_text
from harness.errors import HarnessError

if TYPE_CHECKING:
    import pandas as pd


def read_study(run_dir: Path) -> dict[str, Any]:
    """The run's resolved study (``study.yaml``) as a mapping, ``{}`` when there is none; parsed once per
    version of the file in a process (every reader shares the parse)."""
    path = Path(run_dir) / n.STUDY
    try:
        info = path.stat()
    except OSError:
        return {}
    return copy.deepcopy(_parsed_study(str(path.resolve()), info.st_mtime_ns, info.st_size))


@functools.lru_cache(maxsize=32)
def _parsed_study(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    return data if isinstance(data, dict) else {}


def read_results(run_dir: Path) -> Any:
    """results.csv as a DataFrame; one message (HarnessError) for a run that has none, an empty one, or
    one that does not match its study.yaml (an interrupted rerun with other arms)."""
    import pandas as pd

    path = Path(run_dir) / n.RESULTS
    if not path.is_file():
        raise HarnessError(f"{run_dir} has no {n.RESULTS} (no finished run there); run the study first "
                           "(harness run STUDY --out RUN_DIR), or rerun it to resume")
    try:
        results = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        results = pd.DataFrame()
    if results.empty or "arm" not in results.columns:
        raise HarnessError(f"{path} holds no finished cell (the run stopped before one finished); rerun the "
                           "study to resume it")
    study = Path(run_dir) / n.STUDY
    declared = read_study(run_dir).get("arms")
    extra = sorted(set(results["arm"].astype(str)) - set(declared)) if isinstance(declared, dict) else []
    if extra:
        raise HarnessError(f"{path} does not match {study}: arm(s) {', '.join(extra)} are not in the study (the "
                           "results are from an earlier run); rerun the study to bring them up to date")
    return results


def _json_text(data: Any, *, indent: int | None = 1, default: Any = None) -> str:
    return json.dumps(data, indent=indent, default=default)


class RunRecords:
    """Reads and writes of the run directory's top-level records; ``root`` is the run directory."""

    root: Path

    # ------------------------------------------------------------------ generic
    def has(self, name: str) -> bool:
        """Whether the record ``name`` (one of :mod:`harness.rundir.names`) exists."""
        return (self.root / name).exists()

    def path_of(self, name: str) -> Path:
        """Where the record ``name`` lives: for messages and for tools that take a path (never to write to)."""
        return self.root / name

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON record at the top of the run directory (``stopping.json``, ``run.json``, ...); None when it is
        missing or unreadable (a record is written atomically, so unreadable means foreign or damaged)."""
        path = self.root / name
        try:
            data = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _load_json(self, name: str, default: Any) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else default

    def _csv(self, name: str, **read: Any) -> pd.DataFrame | None:
        import pandas as pd

        path = self.root / name
        return pd.read_csv(path, **read) if path.exists() else None

    def _write(self, name: str, text: str) -> Path:
        path = self.root / name
        atomic_write_text(path, text)
        return path

    # ------------------------------------------------------------------ the study
    def study(self) -> dict[str, Any]:
        """The resolved study (study.yaml), parsed once per version of the file; ``{}`` when there is none."""
        return read_study(self.root)

    def study_text(self) -> str:
        """study.yaml as it is (the report shows it)."""
        return (self.root / n.STUDY).read_text()

    def write_study(self, resolved: dict[str, Any]) -> Path:
        import yaml

        return self._write(n.STUDY, yaml.safe_dump(resolved, sort_keys=False))

    # ------------------------------------------------------------------ run records
    def run_info(self) -> dict[str, Any]:
        """run.json (``{}`` when missing)."""
        return dict(self._load_json(n.RUN_INFO, {}))

    def write_run_info(self, info: dict[str, Any]) -> Path:
        return self._write(n.RUN_INFO, _json_text(info, default=str))

    def arms_info(self) -> dict[str, Any]:
        """arms.json: each arm's cost and notes (``{}`` when missing)."""
        return dict(self._load_json(n.ARMS, {}))

    def write_arms(self, costs: dict[str, Any]) -> Path:
        return self._write(n.ARMS, _json_text(costs, default=str))

    def classes(self) -> list[str]:
        """classes.json: the class names in label order (empty when missing)."""
        return [str(c) for c in self._load_json(n.CLASSES, [])]

    def write_classes(self, class_names: list[str]) -> Path:
        return self._write(n.CLASSES, _json_text(class_names))

    def data_summary(self) -> dict[str, Any] | None:
        return self._load_json(n.DATA_SUMMARY, None)  # type: ignore[no-any-return]

    def write_data_summary(self, summary: dict[str, Any]) -> Path:
        return self._write(n.DATA_SUMMARY, _json_text(summary))

    def stats(self) -> dict[str, Any] | None:
        """stats.json (None when the run has none)."""
        return self._load_json(n.STATS, None)  # type: ignore[no-any-return]

    def write_stats(self, text: str) -> Path:
        """stats.json from its JSON text (a comparison serialises itself)."""
        return self._write(n.STATS, text)

    def stopping(self, *, strict: bool = False) -> dict[str, Any] | None:
        """stopping.json: None when missing, or when unreadable unless ``strict`` (then OSError or ValueError)."""
        return self._load_json(n.STOPPING, None) if strict else self.read_json(n.STOPPING)  # type: ignore[no-any-return]

    def write_stopping(self, record: dict[str, Any]) -> Path:
        return self._write(n.STOPPING, _json_text(record, default=float))

    def tuning(self) -> dict[str, Any] | None:
        return self._load_json(n.TUNING, None)  # type: ignore[no-any-return]

    def write_tuning(self, summary: dict[str, Any]) -> Path:
        return self._write(n.TUNING, _json_text(summary, default=str))

    def insight(self) -> dict[str, Any] | None:
        """insight.json (None when the run has none: made with --no-report, or by an older version)."""
        return self._load_json(n.INSIGHT, None)  # type: ignore[no-any-return]

    def write_insight(self, insight: dict[str, Any]) -> Path:
        return self._write(n.INSIGHT, _json_text(insight, indent=None))

    def across(self) -> dict[str, Any] | None:
        return self._load_json(n.ACROSS, None)  # type: ignore[no-any-return]

    def write_across(self, across: dict[str, Any]) -> Path:
        return self._write(n.ACROSS, _json_text(across, default=float))

    def write_report(self, html: str, out: Path | None = None) -> Path:
        """report.html (or ``out``, a path the user chose), atomically; where it went."""
        target = out or self.root / n.REPORT
        atomic_write_text(target, html)
        return target

    def remove(self, *names: str) -> None:
        """Delete top-level records (``names``) that a new run rewrites, so nothing stale is read meanwhile."""
        for name in names:
            (self.root / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ tables
    def results(self) -> pd.DataFrame:
        """results.csv, checked against the study (see :func:`read_results`)."""
        return read_results(self.root)  # type: ignore[no-any-return]

    def raw_results(self) -> pd.DataFrame | None:
        """results.csv as stored (None when missing), for readers with their own message."""
        return self._csv(n.RESULTS)

    def write_results(self, results: pd.DataFrame) -> Path:
        return self._write(n.RESULTS, results.to_csv(index=False))

    def predictions(self, **read: Any) -> pd.DataFrame | None:
        """predictions.csv (None when missing)."""
        return self._csv(n.PREDICTIONS, **read)

    def write_predictions(self, predictions: pd.DataFrame | None) -> None:
        """predictions.csv; None removes a stale one (no cell stored predictions)."""
        if predictions is None:
            (self.root / n.PREDICTIONS).unlink(missing_ok=True)
        else:
            self._write(n.PREDICTIONS, predictions.to_csv(index=False))

    def splits(self, **read: Any) -> pd.DataFrame | None:
        """splits.csv (None when missing); ``read``: pandas.read_csv options."""
        return self._csv(n.SPLITS, **read)

    def splits_bytes(self) -> bytes:
        """splits.csv as stored, to tell whether two runs used the same folds."""
        return (self.root / n.SPLITS).read_bytes()

    def write_splits(self, splits: pd.DataFrame) -> Path:
        return self._write(n.SPLITS, splits.to_csv(index=False))

    def duplicates(self) -> pd.DataFrame | None:
        return self._csv(n.DUPLICATES, keep_default_na=False)

    def write_duplicates(self, duplicates: pd.DataFrame) -> Path:
        return self._write(n.DUPLICATES, duplicates.to_csv(index=False))

    def skipped(self) -> pd.DataFrame | None:
        """skipped_images.csv: the images the run could not decode (path, reason)."""
        return self._csv(n.SKIPPED)

    def write_skipped(self, skipped: pd.DataFrame) -> Path:
        return self._write(n.SKIPPED, skipped.to_csv(index=False))
