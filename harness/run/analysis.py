"""The analysis of a finished run directory: read its frames through :mod:`harness.rundir`, call the pure
statistics (:mod:`harness.stats`), write stats.json and across.json back through the owner.

It sits in the run layer because the run itself analyses its cells (the stop-when-settled looks, stats.json at
the end); the report, the pipeline and the CLI call the same functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.rundir import RESULTS, SETTINGS, RunDir
from harness.stats.across import across_datasets
from harness.stats.compare import Comparison, compare
from harness.stats.scores import RunScores, groups_of, run_scores
from harness.stats.settings import analyse_settings, axis_name, settings_json


def load_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None,
             alpha: float | None = None, rope: float | None = None) -> RunScores:
    """Results and settings; arguments left None come from the study's ``compare:`` block, then the defaults."""
    run = RunDir(run_dir)
    results = run.results()  # one message for a missing, empty or mismatched results.csv
    settings = dict(run.study().get("compare") or {})
    groups = groups_of(run.splits(usecols=lambda c: c in ("sample_id", "group"), dtype=str))
    return run_scores(results, settings, run.predictions(), groups, baseline=baseline, metric=metric, alpha=alpha,
                      rope=rope)


def compare_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None,
                alpha: float | None = None, rope: float | None = None) -> Comparison:
    """Each arm vs the baseline; settings left None come from the study's ``compare:`` block."""
    scores = load_run(run_dir, baseline=baseline, metric=metric, alpha=alpha, rope=rope)
    run = RunDir(run_dir)
    return compare(scores, run.study(), run.splits(dtype={"sample_id": str}), run.stopping())


def write_stats(run_dir: Path, comparison: Comparison) -> Path:
    """stats.json, atomically."""
    return RunDir(run_dir).write_stats(comparison.to_json())


def is_multi_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a multi-dataset run."""
    return bool(RunDir(run_dir).dataset_runs())


def is_settings_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run with settings."""
    return bool(RunDir(run_dir).setting_runs())


def across_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None, alpha: float | None = None,
               rope: float | None = None) -> dict[str, Any]:
    """Every arm vs the baseline over the run's datasets; settings left None come from the study's ``compare:``."""
    results = {}
    for dataset_id, sub in RunDir(run_dir).dataset_runs().items():
        frame = RunDir(sub).raw_results()
        if frame is None:
            raise HarnessError(f"dataset {dataset_id!r} has no results ({RunDir(sub).path_of(RESULTS)}); run the "
                               "study (again) to finish it")
        results[dataset_id] = frame
    if not results:
        raise HarnessError(f"{run_dir} is not a multi-dataset run (no datasets: in its study.yaml)")
    return across_datasets(results, RunDir(run_dir).study(), baseline=baseline, metric=metric, alpha=alpha, rope=rope)


def write_across(run_dir: Path, across: dict[str, Any]) -> Path:
    """across.json, atomically."""
    return RunDir(run_dir).write_across(across)


def settings_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None, alpha: float | None = None,
                 rope: float | None = None) -> tuple[dict[str, Comparison], dict[str, Any]]:
    """Each setting's comparison (setting id -> Comparison) and the across-settings analysis; arguments left None
    come from the study's ``compare:``."""
    subs = RunDir(run_dir).setting_runs()
    if not subs:
        raise HarnessError(f"{run_dir} is not a run with settings (no settings: in its study.yaml)")
    comparisons: dict[str, Comparison] = {}
    tables: dict[str, pd.DataFrame] = {}
    for setting, sub in subs.items():
        if not RunDir(sub).has(RESULTS):
            raise HarnessError(f"setting {setting!r} has no results ({RunDir(sub).path_of(RESULTS)}); run the study "
                               "(again) to finish it")
        run = load_run(sub, baseline=baseline, metric=metric, alpha=alpha, rope=rope)
        baseline = run.baseline  # every setting against the same baseline (the first's default)
        comparisons[setting] = compare_run(sub, baseline=baseline, metric=metric, alpha=alpha, rope=rope)
        tables[setting] = run.table()
    entries = RunDir(run_dir).study().get(SETTINGS) or []
    return comparisons, analyse_settings(comparisons, tables, axis=axis_name(entries), span=run.metric.span,
                                         bounds=(run.metric.low, run.metric.high))


def write_settings_stats(run_dir: Path, comparisons: dict[str, Comparison], analysis: dict[str, Any]) -> Path:
    """RUN/stats.json of a run with settings, atomically."""
    return RunDir(run_dir).write_stats(json.dumps(settings_json(comparisons, analysis), indent=1, default=float))


