"""The across-dataset comparison of a multi-dataset run directory (``RUN/datasets/<id>/`` sub-runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness import rundir as files
from harness.atomic import atomic_write_text
from harness.errors import HarnessError, did_you_mean
from harness.rundir import RunDir
from harness.stats._results import StatsError
from harness.stats._runfiles import study_compare_settings
from harness.stats.across import compare_across
from harness.stats.registry import resolve_metric


def is_multi_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a multi-dataset run."""
    return bool(RunDir(run_dir).dataset_runs())


def dataset_scores(run_dir: Path, column: str) -> pd.DataFrame:
    """Dataset x arm table of each arm's mean ``column`` over that dataset's folds and repeats.

    A fold without a finite score makes the arm's mean on that dataset NaN (it is then left out of the
    across-dataset tests and named), rather than averaging the failure away."""
    rows: dict[str, pd.Series] = {}
    for dataset_id, sub in RunDir(run_dir).dataset_runs().items():
        path = sub / files.RESULTS
        if not path.exists():
            raise HarnessError(f"dataset {dataset_id!r} has no results ({path}); run the study (again) to finish it")
        results = pd.read_csv(path)
        if column not in results.columns:
            raise HarnessError(f"dataset {dataset_id!r}: no metric {column!r} in its results.csv"
                               f"{did_you_mean(column, results.columns)}")
        rows[dataset_id] = results.groupby("arm", sort=False)[column].agg(
            lambda v: float(v.mean()) if v.notna().all() else float("nan"))
    if not rows:
        raise HarnessError(f"{run_dir} is not a multi-dataset run (no datasets: in its study.yaml)")
    return pd.DataFrame(rows).T


def across_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None, alpha: float | None = None,
               rope: float | None = None) -> dict[str, Any]:
    """Every arm vs the baseline over the run's datasets; settings left None come from the study's ``compare:``."""

    settings = study_compare_settings(run_dir)
    try:
        info = resolve_metric(metric or settings.get("metric") or "accuracy")
    except StatsError as exc:
        raise HarnessError(f"--metric: {exc}") from None
    scores = dataset_scores(run_dir, info.column)
    arms = [str(a) for a in scores.columns]
    baseline = baseline or settings.get("baseline") or arms[0]
    if baseline not in arms:
        raise HarnessError(f"baseline {baseline!r} has no results{did_you_mean(baseline, arms)}; arms: {', '.join(arms)}")
    seed = int(files.read_study(run_dir).get("seed", 0))
    try:
        return compare_across(scores, baseline, metric=info.column, higher_is_better=info.higher_is_better,
                              alpha=float(alpha if alpha is not None else settings.get("alpha", 0.05)),
                              rope=float(rope if rope is not None else settings.get("rope", 0.01)), seed=seed)
    except StatsError as exc:
        raise HarnessError(str(exc)) from None


def write_across(run_dir: Path, across: dict[str, Any]) -> Path:
    """across.json, atomically."""
    path = run_dir / files.ACROSS
    atomic_write_text(path, json.dumps(across, indent=1, default=float))
    return path
