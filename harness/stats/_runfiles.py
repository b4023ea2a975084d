"""Read what the statistics need from a finished run directory (results, settings, groups, predictions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import rundir as files
from harness.errors import HarnessError, did_you_mean
from harness.stats._results import StatsError
from harness.stats.registry import MetricInfo, resolve_metric


@dataclass
class RunScores:
    """One run's per-cell scores and the settings the comparison uses."""

    results: pd.DataFrame
    arms: list[str]
    baseline: str
    metric: MetricInfo
    alpha: float
    rope: float
    folds: int
    repeats: int
    test_train_ratio: float
    predictions: pd.DataFrame | None
    groups: dict[str, str] | None  # sample_id -> group, when the study declared groups

    def table(self) -> pd.DataFrame:
        """(repeat, fold) x arm table of the metric's column."""
        return self.results.pivot_table(index=["repeat", "fold"], columns="arm", values=self.metric.column,
                                        dropna=False)


def study_compare_settings(run_dir: Path) -> dict[str, Any]:
    """The resolved study's ``compare:`` block (empty when the run has no study.yaml)."""
    return dict(files.read_study(run_dir).get("compare") or {})


def load_run(run_dir: Path, *, baseline: str | None = None, metric: str | None = None,
             alpha: float | None = None, rope: float | None = None) -> RunScores:
    """Results and settings; arguments left None come from the study's ``compare:`` block, then the defaults."""
    results = files.read_results(run_dir)  # one message for a missing, empty or mismatched results.csv
    settings = study_compare_settings(run_dir)
    try:
        info = resolve_metric(metric or settings.get("metric") or "accuracy")
    except StatsError as exc:
        raise HarnessError(f"--metric: {exc}") from None
    if info.column not in results.columns:
        hint = " (the study has no held-out test set)" if info.on_test else ""
        raise HarnessError(f"no metric {info.column!r} in results.csv{hint}{did_you_mean(info.column, results.columns)}")
    arms = list(dict.fromkeys(results["arm"]))
    baseline = baseline or settings.get("baseline") or arms[0]
    if baseline not in arms:
        raise HarnessError(f"baseline {baseline!r} has no results{did_you_mean(baseline, arms)}; arms: {', '.join(arms)}")
    ratio = float((results["n_val"] / results["n_train"]).mean())
    predictions = pd.read_csv(run_dir / files.PREDICTIONS) if (run_dir / files.PREDICTIONS).exists() else None
    return RunScores(results, arms, baseline, info,
                     float(alpha if alpha is not None else settings.get("alpha", 0.05)),
                     float(rope if rope is not None else settings.get("rope", 0.01)),
                     int(results["fold"].nunique()), int(results["repeat"].nunique()), ratio, predictions,
                     read_groups(run_dir))


def read_groups(run_dir: Path) -> dict[str, str] | None:
    """sample_id -> group from splits.csv, or None when no group column was declared."""
    path = run_dir / files.SPLITS
    if not path.exists():
        return None
    splits = pd.read_csv(path, usecols=lambda c: c in ("sample_id", "group"), dtype=str)
    if "group" not in splits or splits["group"].isna().all():
        return None
    unique = splits.dropna(subset=["group"]).drop_duplicates("sample_id")
    return dict(zip(unique["sample_id"], unique["group"], strict=True))
