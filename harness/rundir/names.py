"""Every file name the harness writes in a run directory, and the groups of names that clearing and claiming use.

One place, so the names cannot drift between modules; only :mod:`harness.rundir` composes paths from them.
"""

from __future__ import annotations

# files at the top of a run directory
STUDY = "study.yaml"
RUN_INFO = "run.json"
ARMS = "arms.json"
SPLITS = "splits.csv"
LABELS = "labels.csv"
CLASSES = "classes.json"
SKIPPED = "skipped_images.csv"
DATA_SUMMARY = "data_summary.json"
DUPLICATES = "duplicates.csv"
RESULTS = "results.csv"
PREDICTIONS = "predictions.csv"
STATS = "stats.json"
STOPPING = "stopping.json"  # cv.stop_when_settled: the design and every look (harness.run.stopping)
TUNING = "tuning.json"
REPORT = "report.html"
INSIGHT = "insight.json"  # what the report shows of the trained models (gates, Grad-CAM, mistakes), stored at run end
LOG = "run.log"
CELLS = "cells"
CACHE = "cache"
LOCK = ".lock"
LOCK_DB = ".lock.db"  # the lock where there is no fcntl (Windows): filelock's SQLite reader/writer lock
CELL_QUEUE = "cells.db"  # the local workers' shared queue (``run --workers N``)
PLUGINS = "plugins"  # one folder per plugin that writes files (loggers): plugins/<name>/, the plugin's own
DATASETS = "datasets"  # a multi-dataset study: one complete run per dataset, datasets/<id>/
ACROSS = "across.json"  # a multi-dataset study: the across-dataset comparison
SETTINGS = "settings"  # a study with settings: one complete run per training setting, settings/<id>/
MANIFEST = ".harness-run.json"  # marks the folder as a run directory and lists the names the harness owns in it
TUNING_DB = "tuning.db"  # harness tune: the default Optuna storage
TRIALS = "tuning"  # harness tune: one run directory per trial, tuning/<arm>/<trial>/
NESTED = "nested"  # nested-CV tuning: nested/<arm>/<outer fold>/

# files inside one cell's folder
RESULT = "result.json"
HISTORY = "history.csv"
CELL_PREDICTIONS = "predictions.csv"
FINGERPRINT = "fingerprint"
LAST = "last.pt"
BEST = "best.pt"

# harness.atomic writes ".<name>.<8 random characters>.tmp" beside the target

# what ``--fresh`` removes: everything a run writes except the decoded-image cache (keyed by content)
OUTPUTS = (STUDY, RUN_INFO, ARMS, SPLITS, LABELS, CLASSES, SKIPPED, DATA_SUMMARY, DUPLICATES, RESULTS, PREDICTIONS, STATS,
           TUNING, STOPPING, REPORT, INSIGHT, LOG, CELLS, CELL_QUEUE, PLUGINS, DATASETS, ACROSS, SETTINGS)
# every top-level name the harness may create in a run directory: what a new run directory's manifest lists
HARNESS_NAMES = (*OUTPUTS, CACHE, LOCK, LOCK_DB, MANIFEST, TUNING_DB, TRIALS, NESTED)
CELL_FILES = frozenset({RESULT, HISTORY, CELL_PREDICTIONS, FINGERPRINT, LAST, BEST})
# the outputs that summarise every cell: a rerun removes them before its first cell (rewritten from the cells)
RUN_SUMMARIES = (RESULTS, PREDICTIONS, STATS, REPORT, RUN_INFO, ARMS)
# what a process that is claiming the folder at the same moment may already have made there
_BOOKKEEPING = frozenset({LOCK, LOCK_DB, CELL_QUEUE, TUNING_DB})


def cell_name(repeat: int, fold: int) -> str:
    """One cell's folder name below its arm (``r0-f1``)."""
    return f"r{repeat}-f{fold}"
