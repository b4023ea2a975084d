"""The run directory: every file name the harness writes there, the lock, clearing and clean-up.

One owner, so the names cannot drift between modules: a run directory holds the resolved study,
the data files, one folder per cell, the aggregated results and the report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import HarnessError

# files at the top of a run directory
STUDY = "study.yaml"
RUN_INFO = "run.json"
ARMS = "arms.json"
SPLITS = "splits.csv"
LABELS = "labels.csv"
CLASSES = "classes.json"
SKIPPED = "skipped_images.csv"
DATA_SUMMARY = "data_summary.json"
RESULTS = "results.csv"
PREDICTIONS = "predictions.csv"
STATS = "stats.json"
TUNING = "tuning.json"
REPORT = "report.html"
LOG = "run.log"
CELLS = "cells"
CACHE = "cache"
LOCK = ".lock"
LOCK_DB = ".lock.db"  # the lock where there is no fcntl (Windows): filelock's SQLite reader/writer lock
CELL_QUEUE = "cells.db"  # the local workers' shared queue (``run --workers N``)
TENSORBOARD = "tensorboard"  # the tensorboard logger's event files: tensorboard/<arm>/r<repeat>-f<fold>/
MLFLOW_RUN = "mlflow_run.json"  # the mlflow logger's study run id, so a resumed run continues it
MLFLOW_LOCK = ".mlflow.lock"  # held while the mlflow logger finds or creates the study's runs (local workers)
MLRUNS = "mlruns"  # the mlflow logger's default store (mlflow.db + artifacts/); kept by --fresh: it holds every run
DATASETS = "datasets"  # a multi-dataset study: one complete run per dataset, datasets/<id>/
ACROSS = "across.json"  # a multi-dataset study: the across-dataset comparison
SETTINGS = "settings"  # a study with settings: one complete run per training setting, settings/<id>/

# files inside one cell's folder
RESULT = "result.json"
HISTORY = "history.csv"
CELL_PREDICTIONS = "predictions.csv"
FINGERPRINT = "fingerprint"
LAST = "last.pt"
BEST = "best.pt"

TEMP_SUFFIX = ".tmp"  # harness.atomic writes ".<name>.<random>.tmp" beside the target

# what ``--fresh`` removes: everything a run writes except the decoded-image cache (keyed by content)
OUTPUTS = (STUDY, RUN_INFO, ARMS, SPLITS, LABELS, CLASSES, SKIPPED, DATA_SUMMARY, RESULTS, PREDICTIONS, STATS, TUNING,
           REPORT, LOG, CELLS, CELL_QUEUE, TENSORBOARD, MLFLOW_RUN, DATASETS, ACROSS,
           SETTINGS)


class RunDir:
    """Paths and housekeeping of one run directory."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def cell(self, arm: str, repeat: int, fold: int) -> Path:
        """The folder of one arm x repeat x fold cell."""
        return self.root / CELLS / arm / cell_name(repeat, fold)

    def tensorboard(self, arm: str, repeat: int, fold: int) -> Path:
        """The tensorboard logger's run folder of one cell."""
        return self.root / TENSORBOARD / arm / cell_name(repeat, fold)

    def cache(self) -> Path:
        """The decoded-image cache: ``RUN/cache``, or for a setting's sub-run (``RUN/settings/<id>/``) the study's
        shared ``RUN/cache`` (every setting reads the same images)."""
        parent = self.root.parent
        if parent.name == SETTINGS and self.root.name in RunDir(parent.parent).setting_runs():
            return parent.parent / CACHE
        return self.root / CACHE

    def dataset(self, dataset_id: str) -> Path:
        """The complete sub-run of one dataset of a multi-dataset study."""
        return self.root / DATASETS / dataset_id

    def dataset_runs(self) -> dict[str, Path]:
        """Dataset id -> sub-run folder, for a multi-dataset run (empty for a single-dataset one), in study order."""
        return self.sub_runs(DATASETS)

    def setting_runs(self) -> dict[str, Path]:
        """Setting id -> sub-run folder, for a run with settings (empty otherwise), in study order."""
        return self.sub_runs(SETTINGS)

    def sub_runs(self, kind: str) -> dict[str, Path]:
        """Id -> ``RUN/<kind>/<id>/`` for the entries of the study.yaml's ``kind:`` list (datasets or settings)."""
        import yaml

        study = self.root / STUDY
        listed = (yaml.safe_load(study.read_text()) or {}).get(kind) if study.exists() else None
        if not isinstance(listed, list):
            return {}
        return {str(entry["id"]): self.root / kind / str(entry["id"]) for entry in listed if isinstance(entry, dict)}

    def prepare(self) -> None:
        """Create the folder, refusing a path that is a file or cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise HarnessError(f"{self.root} is a file, not a run directory; give --out a folder path")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot create run directory {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise HarnessError(f"run directory {self.root} is not writable; choose another --out")

    @contextlib.contextmanager
    def lock(self, *, shared: bool = False) -> Iterator[None]:
        """Exclusive for a plain run; ``shared`` for the workers of one storage, which share the folder
        with each other but never with a plain run."""
        self.prepare()
        try:
            release = _lock(self.root, shared)
        except BlockingIOError:
            holder = "a plain harness run" if shared else "a run or its workers"
            raise HarnessError(
                f"{self.root} is in use by another harness process ({holder}); wait for it, "
                "or use --out for a separate run"
            ) from None
        try:
            yield
        finally:
            release()

    def clear(self) -> None:
        """Remove every output of an earlier run (``--fresh``), so nothing stale reaches the report."""
        for name in OUTPUTS:
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        self.remove_temp_files()

    def remove_temp_files(self) -> int:
        """Delete temp files left by a killed atomic write; how many there were."""
        removed = 0
        if not self.root.is_dir():
            return removed
        for path in self.root.rglob(f".*{TEMP_SUFFIX}"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def cell_name(repeat: int, fold: int) -> str:
    """One cell's folder name below its arm (``r0-f1``)."""
    return f"r{repeat}-f{fold}"


def _lock(root: Path, shared: bool) -> Callable[[], None]:
    """Take the run directory's lock without waiting (BlockingIOError when held); returns the release.

    POSIX: ``fcntl.flock`` on ``.lock`` (shared or exclusive; the kernel drops it when the process dies).
    Elsewhere (Windows, no fcntl): filelock's ReadWriteLock on ``.lock.db`` (SQLite; readers share,
    a writer excludes), with the same semantics.
    """
    if not _posix_locks():
        return _sqlite_lock(root, shared)
    import fcntl

    handle = open(root / LOCK, "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BaseException:
        handle.close()
        raise

    def release() -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    return release


def _posix_locks() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return False
    return True


def _sqlite_lock(root: Path, shared: bool) -> Callable[[], None]:
    from filelock import ReadWriteLock, Timeout

    lock = ReadWriteLock(root / LOCK_DB, is_singleton=False, blocking=False)
    try:
        (lock.acquire_read if shared else lock.acquire_write)()
    except Timeout:
        lock.close()
        raise BlockingIOError(f"{root / LOCK_DB} is held") from None

    def release() -> None:
        lock.release()
        lock.close()

    return release
