"""The across-settings comparison of a run with settings (``RUN/settings/<id>/`` sub-runs): each setting's
ordinary comparison, Holm across settings, the interaction test and the robustness summary (stats.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import rundir as files
from harness.atomic import atomic_write_text
from harness.errors import HarnessError
from harness.rundir import RunDir
from harness.stats._results import StatsError
from harness.stats._runfiles import load_run
from harness.stats.compare import Comparison, compare_run
from harness.stats.settings import (
    METHOD,
    axis_name,
    clinician_sentence,
    holm_across_settings,
    holm_gated,
    interaction_test,
    robustness,
)


def is_settings_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run with settings."""
    return bool(RunDir(run_dir).setting_runs())


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
        if not (sub / files.RESULTS).exists():
            raise HarnessError(f"setting {setting!r} has no results ({sub / files.RESULTS}); run the study (again) to "
                               "finish it")
        run = load_run(sub, baseline=baseline, metric=metric, alpha=alpha, rope=rope)
        baseline = run.baseline  # every setting against the same baseline (the first's default)
        comparisons[setting] = compare_run(sub, baseline=baseline, metric=metric, alpha=alpha, rope=rope)
        tables[setting] = run.table()
    entries = files.read_study(run_dir).get(files.SETTINGS) or []
    return comparisons, analyse_settings(comparisons, tables, axis=axis_name(entries), span=run.metric.span,
                                         bounds=(run.metric.low, run.metric.high))


def analyse_settings(comparisons: dict[str, Comparison], tables: dict[str, pd.DataFrame], *, axis: str, span: float,
                     bounds: tuple[float, float]) -> dict[str, Any]:
    """Per arm: its verdict under each setting (Holm across settings), the interaction test and the robustness."""
    first = next(iter(comparisons.values()))
    baseline, ratio = first.baseline, float(np.mean([c.test_train_ratio for c in comparisons.values()]))
    cv = first.scope == "cross-validation"
    out: dict[str, Any] = {
        "metric": first.metric, "higher_is_better": first.higher_is_better, "baseline": baseline, "alpha": first.alpha,
        "rope": first.rope, "settings": list(comparisons), "axis": axis, "method": METHOD, "test_train_ratio": ratio,
        "scores": {s: {arm: float(t[arm].mean()) for arm in t.columns} for s, t in tables.items()},
        "intervals": {s: {a.arm: a.interval for a in c.arms} | {baseline: c.arms[0].baseline_interval if c.arms else None}
                      for s, c in comparisons.items()},
        "arms": [], "warnings": [f"{s}: {w}" for s, c in comparisons.items() for w in c.warnings]}
    arms = [a for a in dict.fromkeys(a.arm for c in comparisons.values() for a in c.arms)]
    for arm in arms:
        per = {s: c_arm for s, c in comparisons.items() for c_arm in c.arms if c_arm.arm == arm}
        holm_p = holm_across_settings({s: a.tests.get("corrected_t", {}).get("pvalue") for s, a in per.items()})
        per_setting = {}
        for s, a in per.items():
            verdict, note = holm_gated(a.verdict, holm_p[s], first.alpha) if cv else (a.verdict, "")
            per_setting[s] = {"difference": a.difference, "verdict": verdict, "verdict_note": note,
                              "verdict_text": a.verdict_text + (f" (inconclusive after Holm across settings: {note})"
                                                                if note else ""),
                              "bayes": a.tests.get("bayes", {}), "corrected_p": a.tests.get("corrected_t", {}).get("pvalue"),
                              "holm_p": holm_p[s], "difference_interval": a.difference_interval}
        item: dict[str, Any] = {"arm": arm, "baseline": baseline, "per_setting": per_setting}
        if not cv:
            why = f"computed on cross-validation scores only; {first.metric} is a held-out test metric"
            item["interaction"], item["robustness"] = {"error": why}, {"sentence": f"robustness: {why}"}
        else:
            try:
                diffs = pd.DataFrame({s: t[arm] - t[baseline] for s, t in tables.items()})
                item["interaction"] = interaction_test(diffs.to_numpy(), test_train_ratio=ratio)
            except (KeyError, StatsError) as exc:
                item["interaction"] = {"error": str(exc)}
            try:
                item["robustness"] = robustness(tables, arm, baseline, higher_is_better=first.higher_is_better,
                                                test_train_ratio=ratio, bounds=bounds)
            except (KeyError, StatsError) as exc:
                item["robustness"] = {"sentence": f"robustness not computable ({exc})"}
        item["sentence"] = clinician_sentence(arm, baseline, axis, per_setting, item["interaction"], first.alpha, span)
        out["arms"].append(item)
    return out


def settings_json(comparisons: dict[str, Comparison], analysis: dict[str, Any]) -> dict[str, Any]:
    """What ``compare --json`` prints and stats.json holds: each setting's comparison and the across-settings one."""
    return {"settings": {s: asdict(c) for s, c in comparisons.items()}, "across_settings": analysis}


def write_settings_stats(run_dir: Path, comparisons: dict[str, Comparison], analysis: dict[str, Any]) -> Path:
    """RUN/stats.json, atomically."""
    path = run_dir / files.STATS
    atomic_write_text(path, json.dumps(settings_json(comparisons, analysis), indent=1, default=float))
    return path
