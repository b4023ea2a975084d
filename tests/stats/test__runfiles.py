"""A run's scores and settings as the statistics read them: the study's compare block, then the defaults."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.errors import HarnessError
from harness.stats._runfiles import load_run, read_groups


def _results(run: Path, compare: dict) -> Path:
    rows = [{"arm": arm, "repeat": 0, "fold": fold, "status": "ok", "accuracy": 0.7 + 0.1 * fold, "n_train": 80,
             "n_val": 20} for arm in ("a", "b") for fold in (0, 1)]
    pd.DataFrame(rows).to_csv(run / "results.csv", index=False)
    (run / "study.yaml").write_text(yaml.safe_dump({"name": "s", "compare": compare}))
    return run


def test_settings_come_from_the_study_then_the_defaults_then_the_arguments(tmp_path: Path) -> None:
    scores = load_run(_results(tmp_path, {"baseline": "b", "alpha": 0.1}))
    assert (scores.arms, scores.baseline, scores.alpha, scores.rope) == (["a", "b"], "b", 0.1, 0.01)
    assert (scores.folds, scores.repeats, scores.test_train_ratio) == (2, 1, 0.25)
    assert scores.predictions is None and scores.groups is None
    assert scores.table().loc[(0, 1), "a"] == pytest.approx(0.8)
    assert load_run(tmp_path, baseline="a", alpha=0.01).alpha == 0.01


def test_a_missing_metric_or_baseline_is_one_message(tmp_path: Path) -> None:
    _results(tmp_path, {})
    with pytest.raises(HarnessError, match="no metric 'f1_macro' in results.csv"):
        load_run(tmp_path, metric="f1_macro")
    with pytest.raises(HarnessError, match="baseline 'c' has no results.*arms: a, b"):
        load_run(tmp_path, baseline="c")


def test_groups_are_read_from_splits_when_declared(tmp_path: Path) -> None:
    assert read_groups(tmp_path) is None
    pd.DataFrame({"sample_id": ["x", "y", "x"], "group": ["p1", "p2", "p1"]}).to_csv(tmp_path / "splits.csv", index=False)
    assert read_groups(tmp_path) == {"x": "p1", "y": "p2"}
    pd.DataFrame({"sample_id": ["x"], "group": [None]}).to_csv(tmp_path / "splits.csv", index=False)
    assert read_groups(tmp_path) is None
