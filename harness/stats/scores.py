"""One run's per-cell scores and the settings of its comparison, from frames (:mod:`harness.run.analysis` reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

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


def run_scores(results: pd.DataFrame, settings: dict[str, Any], predictions: pd.DataFrame | None,
               groups: dict[str, str] | None, *, baseline: str | None = None, metric: str | None = None,
               alpha: float | None = None, rope: float | None = None) -> RunScores:
    """Results and settings; arguments left None come from the study's ``compare:`` block (``settings``), then the
    defaults."""
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
    return RunScores(results, arms, baseline, info,
                     float(alpha if alpha is not None else settings.get("alpha", 0.05)),
                     float(rope if rope is not None else settings.get("rope", 0.01)),
                     int(results["fold"].nunique()), int(results["repeat"].nunique()), ratio, predictions,
                     groups)


def groups_of(splits: pd.DataFrame | None) -> dict[str, str] | None:
    """sample_id -> group from splits.csv's sample_id and group columns (read as text), or None when no group
    column was declared."""
    if splits is None:
        return None
    if "group" not in splits or splits["group"].isna().all():
        return None
    unique = splits.dropna(subset=["group"]).drop_duplicates("sample_id")
    return dict(zip(unique["sample_id"], unique["group"], strict=True))
