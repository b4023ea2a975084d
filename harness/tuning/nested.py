"""Nested cross-validation for tuning: inner folds tune, outer folds estimate.

For every outer (repeat, fold) cell and every tuned arm, an Optuna study runs the arm's k-fold CV
on the outer *training* part only; the best values are then trained on the whole outer training
part and scored on the outer validation part, which the tuning never saw. The outer scores form
the run's ``results.csv``, so the report and ``harness compare`` read an unbiased estimate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from harness.run.runner import RunOptions, StudyRunner
from harness.rundir import Cell, RunDir
from harness.study.loader import TUNE_METRICS, load_study
from harness.tuning.search import (
    ArmObjective,
    TuneSetup,
    arm_overrides,
    describe_study,
    optimize_arm,
)


def nested_tune(setup: TuneSetup) -> dict[str, Any]:
    """Tune on an inner CV of each outer training part, score on the outer fold; results.csv and the report are
    those outer scores. Returns the arms' outer results and the protocol line."""
    study, registry, options, overrides = setup.study, setup.registry, setup.options, setup.overrides
    storage, total, direction = setup.storage, setup.total, setup.direction
    assert study.spec.tune is not None
    tune = study.spec.tune
    out = options.out_dir
    summary: dict[str, Any] = {"arms": {}, "protocol": ""}
    outer = StudyRunner(study, registry, RunOptions(out, quiet=True, report=None, stats=False))
    data, costs = outer.setup()  # outer splits, classes, arms.json: the frame of the final report
    column = TUNE_METRICS[tune.metric]
    rows, predictions = [], []
    for arm in tune.arms or list(study.arms):
        summary["arms"][arm] = {"outer": [], "counts": {}, "best_value": None, "best_params": {}, "plots": {}}
        for index, fold in enumerate(data.splits.folds):
            tag = f"outer-r{fold.repeat}f{fold.fold}"
            objective = ArmObjective(study, registry, arm, options, overrides, subset=fold.train,
                                     trials_dir=RunDir(out).nested / arm / tag)
            tuned = optimize_arm(f"{study.name}:{arm}:{tag}", objective, storage, total, direction, options.quiet)
            described = describe_study(tuned)
            best = described["best_params"]
            final = load_study(study.source, [*overrides, *arm_overrides(arm, best)], registry.defaults)
            final_dir = RunDir(out).nested / arm / tag / "final"
            StudyRunner(final, registry, RunOptions(final_dir, quiet=True, report=None, stats=False, arms=[arm],
                                                    cache_dir=RunDir(out).cache(), fold_order=[index])).run()
            cell = RunDir(final_dir).cell(arm, fold.repeat, fold.fold)
            target = outer.cell_dir(arm, fold.repeat, fold.fold)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(cell, target, ignore=shutil.ignore_patterns("*.tmp"))
            result = Cell(cell).result()
            result.pop("fingerprint", None)
            rows.append({**result, "tuned_params": json.dumps(best)})
            predictions.append(Cell(cell).predictions())
            summary["arms"][arm]["outer"].append({"repeat": fold.repeat, "fold": fold.fold, "best_params": best,
                                                  "inner_best": described["best_value"], "outer_score": result[column],
                                                  "counts": described["counts"]})
            for state, count in described["counts"].items():
                summary["arms"][arm]["counts"][state] = summary["arms"][arm]["counts"].get(state, 0) + count
        scores = [o["outer_score"] for o in summary["arms"][arm]["outer"]]
        summary["arms"][arm]["best_value"] = sum(scores) / len(scores)  # the unbiased nested estimate
    summary["protocol"] = (f"nested CV: for each of the {len(data.splits.folds)} outer folds, {total} {tune.sampler} "
                           f"trials ({tune.pruner} pruning) on an inner {study.spec.cv.folds}-fold CV of the outer "
                           "training part; the best values are scored on the outer fold, which tuning never saw. "
                           "The results below are those outer scores (unbiased).")
    results = pd.DataFrame(rows)
    RunDir(out).write_results(results)
    RunDir(out).write_predictions(pd.concat(predictions))
    RunDir(out).write_tuning({**setup.header(), **summary})
    outer.options.stats = results["arm"].nunique() > 1
    outer.options.report = setup.options.report
    outer.finish(data, costs, results)
    return summary


def inner_sample_ids(trial_dir: Path) -> set[str]:
    """Every sample an inner trial trained or validated on (for leakage checks)."""
    splits = RunDir(trial_dir).splits()
    if splits is None:
        raise FileNotFoundError(f"{trial_dir} has no splits.csv")
    return set(splits.sample_id)
