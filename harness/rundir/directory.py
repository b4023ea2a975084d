"""A run directory's paths and housekeeping: claiming the folder (the manifest), the lock, ``--fresh``, clean-up.

A folder becomes a run directory when the harness claims it (it must be empty or new): ``.harness-run.json``
records the names the harness owns there, and clearing or clean-up never touches anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.atomic import atomic_write_text, remove_temp_leftovers, temp_target
from harness.errors import HarnessError
from harness.rundir.cell import Cell
from harness.rundir.names import (
    _BOOKKEEPING,
    BEST,
    CACHE,
    CELL_FILES,
    CELL_QUEUE,
    CELLS,
    DATASETS,
    FINGERPRINT,
    HARNESS_NAMES,
    LOCK,
    LOCK_DB,
    LOG,
    MANIFEST,
    NESTED,
    OUTPUTS,
    PLUGINS,
    REPORT,
    RESULTS,
    RUN_INFO,
    RUN_SUMMARIES,
    SETTINGS,
    TRIALS,
    TUNING_DB,
    cell_name,
)
from harness.rundir.records import RunRecords, read_study

if TYPE_CHECKING:
    import pandas as pd


class RunDir(RunRecords):
    """One run directory: its paths, records (:class:`RunRecords`), cells, sub-runs and housekeeping."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def cell(self, arm: str, repeat: int, fold: int) -> Path:
        """The folder of one arm x repeat x fold cell."""
        return self.root / CELLS / arm / cell_name(repeat, fold)

    def cell_files(self, arm: str, repeat: int, fold: int) -> Cell:
        """The files of one arm x repeat x fold cell."""
        return Cell(self.cell(arm, repeat, fold))

    def cell_at(self, arm: str, name: str) -> Cell:
        """The files of the arm's cell in the folder ``name`` (``r0-f1``)."""
        return Cell(self.root / CELLS / arm / name)

    def arm_cells(self, arm: str) -> list[Cell]:
        """The stored cells of one arm, in folder-name order."""
        return [Cell(folder) for folder in sorted((self.root / CELLS / arm).glob("*")) if folder.is_dir()]

    def arm_folders(self) -> list[Path]:
        """One folder per arm below ``cells/``, in name order (empty when no cell ran)."""
        folder = self.root / CELLS
        return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def histories(self, arm: str) -> list[pd.DataFrame]:
        """The stored history.csv of each of the arm's cells, in cell order."""
        return [history for cell in self.arm_cells(arm) if (history := cell.history()) is not None]

    def checkpoints(self) -> list[Path]:
        """Every cell's checkpoint files (``last.pt``, ``best.pt``)."""
        return sorted(self.root.glob(f"{CELLS}/*/*/*.pt"))

    def has_checkpoints(self, arm: str) -> bool:
        """Whether any cell of the arm kept its scored model's weights (best.pt)."""
        return any((self.root / CELLS / arm).glob(f"*/{BEST}"))

    def has_sub_runs_started(self, kind: str) -> bool:
        """Whether any sub-run (``kind``: datasets or settings) holds a cell folder (a run began)."""
        return any(self.root.glob(f"{kind}/*/{CELLS}"))

    @property
    def log_path(self) -> Path:
        """run.log, which the run's log handler appends to."""
        return self.root / LOG

    @property
    def report_path(self) -> Path:
        return self.root / REPORT

    @property
    def trials(self) -> Path:
        """harness tune: one run directory per trial below it (``tuning/<arm>/<trial>/``)."""
        return self.root / TRIALS

    @property
    def nested(self) -> Path:
        """Nested-CV tuning: ``nested/<arm>/<outer fold>/``."""
        return self.root / NESTED

    def tuning_url(self) -> str:
        """The default Optuna storage of ``harness tune`` (SQLite ``tuning.db``)."""
        return f"sqlite:///{self.root / TUNING_DB}"

    def cell_queue_url(self) -> str:
        """The default shared queue of ``run --workers N`` (SQLite ``cells.db``)."""
        return f"sqlite:///{self.root / CELL_QUEUE}"

    def plugin_dir(self, name: str) -> Path:
        """The folder a plugin (a logger) owns in this run directory; nothing else writes there."""
        return self.root / PLUGINS / name

    def dataset(self, dataset_id: str) -> Path:
        """The complete sub-run of one dataset of a multi-dataset study."""
        return self.root / DATASETS / dataset_id

    def cache(self) -> Path:
        """The decoded-image cache: ``RUN/cache``, or for a setting's sub-run (``RUN/settings/<id>/``) the study's
        shared ``RUN/cache`` (every setting reads the same images)."""
        parent = self.root.parent
        if parent.name == SETTINGS and self.root.name in RunDir(parent.parent).setting_runs():
            return parent.parent / CACHE
        return self.root / CACHE

    def dataset_runs(self) -> dict[str, Path]:
        """Dataset id -> sub-run folder, for a multi-dataset run (empty for a single-dataset one), in study order."""
        return self.sub_runs(DATASETS)

    def setting_runs(self) -> dict[str, Path]:
        """Setting id -> sub-run folder, for a run with settings (empty otherwise), in study order."""
        return self.sub_runs(SETTINGS)

    def sub_run(self, kind: str, entry_id: str) -> Path:
        """``RUN/<kind>/<id>/``: one entry's complete run (``kind``: datasets or settings)."""
        return self.root / kind / entry_id

    def sub_runs(self, kind: str) -> dict[str, Path]:
        """Id -> ``RUN/<kind>/<id>/`` for the entries of the study.yaml's ``kind:`` list (datasets or settings)."""
        listed = read_study(self.root).get(kind)
        if not isinstance(listed, list):
            return {}
        return {str(entry["id"]): self.sub_run(kind, str(entry["id"])) for entry in listed if isinstance(entry, dict)}

    def prepare(self) -> None:
        """Create and claim the folder, refusing a path that is a file, cannot be written, or holds files
        that are not the harness's."""
        if self.root.exists() and not self.root.is_dir():
            raise HarnessError(f"{self.root} is a file, not a run directory; give --out a folder path")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot create run directory {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise HarnessError(f"run directory {self.root} is not writable; choose another --out")
        self.claim()

    def claim(self) -> None:
        """Make the folder a run directory (write the manifest), or refuse a non-empty folder that is not one.

        A folder is the harness's when it holds the manifest; when it is empty; or when it is an older
        harness's run directory (no manifest, nothing but names the harness writes, and what only the harness
        writes: a cell fingerprint, a run.json with the harness version, or tune's tuning.db with tuning/). Names a newer harness writes are added to an existing
        manifest only while they do not exist yet, so a user's file is never adopted."""
        entries = sorted(p.name for p in self.root.iterdir())  # listed first: another process may be claiming it
        if (self.root / MANIFEST).exists():
            owned = self.owned()
            added = [n for n in HARNESS_NAMES if n not in owned and not (self / n).exists()]
            if added:
                self._write_manifest([*owned, *added])
            return
        foreign = [n for n in entries if n not in HARNESS_NAMES and temp_target(n) not in HARNESS_NAMES]
        empty = all(n in _BOOKKEEPING or temp_target(n) == MANIFEST for n in entries)
        if not empty and (foreign or not _written_by_harness(self.root)):
            shown = ", ".join((foreign or entries)[:4]) + (", ..." if len(foreign or entries) > 4 else "")
            raise HarnessError(
                f"{self.root} is not empty and is not a harness run directory (it holds {shown}); the harness "
                "never writes into or clears a folder of yours: give --out an empty or new folder")
        self._write_manifest(list(HARNESS_NAMES))

    def owned(self) -> list[str]:
        """The top-level names the manifest says the harness owns here (empty when there is no manifest)."""
        path = self.root / MANIFEST
        if not path.exists():
            return []
        try:
            names = json.loads(path.read_text()).get("names")
        except (OSError, ValueError, AttributeError):
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HarnessError(f"{path} is damaged; if {self.root} is a harness run directory, delete {MANIFEST} "
                               "and rerun (an older run directory is recognised without it), or use a new --out")
        return names

    def _write_manifest(self, names: list[str]) -> None:
        atomic_write_text(self.root / MANIFEST, json.dumps({"owner": "ablation-harness", "format": 1,
                                                            "names": names}, indent=1) + "\n")

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

    def clear(self, keep: Iterable[str] = ()) -> None:
        """Remove every output of an earlier run (``--fresh``), so nothing stale reaches the report; only
        names the manifest lists as the harness's (the folder is claimed first, so a user's folder is refused).
        ``keep``: paths relative to the run directory inside ``plugins/`` that a plugin keeps (its store)."""
        self.prepare()
        kept = {self.root / path for path in keep}
        for name in OUTPUTS:
            if name in self.owned():
                _remove(self.root / name, kept)
        self.remove_temp_files()

    def invalidate_summaries(self) -> None:
        """Remove the run-level outputs before the first cell: they are rewritten from the cells that match
        the current settings, so a changed and interrupted rerun never leaves an earlier run's answers."""
        for name in RUN_SUMMARIES:
            if name in self.owned():
                _remove(self.root / name, set())

    def refuse_other_layout(self, kind: str | None) -> None:
        """Refuse to run into a folder that holds the other layout (a single run where a run of several settings or
        datasets (``kind``) starts, or the reverse): its outputs would survive beside the new run's; --fresh clears."""
        layouts = {None: "a single run", SETTINGS: "a run of several settings", DATASETS: "a run of several datasets"}
        marks = {None: (CELLS, RESULTS), SETTINGS: (SETTINGS,), DATASETS: (DATASETS,)}
        for other, names in marks.items():
            found = [n for n in names if other != kind and n in self.owned() and (self / n).exists()]
            if found:
                raise HarnessError(f"{self.root} holds {layouts[other]} ({', '.join(found)}); this study is "
                                   f"{layouts[kind]}, whose outputs would sit beside the old ones: rerun with --fresh "
                                   "to replace it, or give another --out")

    def remove_temp_files(self) -> int:
        """Delete the temp files a killed atomic write left (exact names, ``.<name>.<8 chars>.tmp``) in the
        folders the harness writes: the top (its own names), each cell (its files), the cache; how many."""
        removed = remove_temp_leftovers(self.root, frozenset(HARNESS_NAMES))
        for cell in sorted((self.root / CELLS).glob("*/*")):
            removed += remove_temp_leftovers(cell, CELL_FILES)
        return removed + remove_temp_leftovers(self.root / CACHE)


def _written_by_harness(root: Path) -> bool:
    """Evidence that an older harness (before the manifest) wrote this folder."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        if "harness_version" in json.loads((root / RUN_INFO).read_text()):
            return True
    cells = f"{CELLS}/*/r*-f*/{FINGERPRINT}"
    return (any(root.glob(cells)) or any(root.glob(f"{DATASETS}/*/{cells}"))
            or ((root / TUNING_DB).is_file() and (root / TRIALS).is_dir()))


def refuse_own_study(source: Path, root: Path) -> None:
    """The study file being run is never overwritten: refuse when it is a file the run writes (a folder that
    is not a run directory is refused by its claim first, with that message)."""
    if source.name in OUTPUTS and source.resolve().parent == Path(root).resolve():
        RunDir(root).claim()
        raise HarnessError(f"{source} is the run directory's own {source.name}, which the run rewrites; copy it "
                           f"out (cp {source} my_study.yaml) and run the copy, or give another --out")


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what creating it makes), or None."""
    path = Path(path).absolute()
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def remove_created(run_dir: Path, created: Path) -> None:
    """Undo creating ``run_dir`` (``created`` is the outermost folder that creating it made): the run directory,
    then each parent up to ``created`` only while it is empty (another process may have put a run beside it)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    folder = Path(run_dir).absolute().parent
    stop = Path(created).absolute()
    while folder == stop or stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _remove(target: Path, kept: set[Path]) -> None:
    """Delete a file or folder, except the ``kept`` paths below it (and the folders that lead to them)."""
    if target in kept:
        return
    if target.is_dir() and not target.is_symlink():
        if any(path.is_relative_to(target) for path in kept):
            for child in target.iterdir():
                _remove(child, kept)
            return
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)


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
