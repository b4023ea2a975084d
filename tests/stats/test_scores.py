"""A run's scores from frames: settings from the study's compare block, then the defaults; groups from splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.stats.scores import groups_of, run_scores


def _splits(folder: Path) -> pd.DataFrame | None:
    path = folder / "splits.csv"
    return pd.read_csv(path, dtype={"sample_id": str, "group": str}) if path.exists() else None


def test_groups_are_read_from_splits_when_declared(tmp_path: Path) -> None:
    assert groups_of(_splits(tmp_path)) is None
    pd.DataFrame({"sample_id": ["x", "y", "x"], "group": ["p1", "p2", "p1"]}).to_csv(tmp_path / "splits.csv", index=False)
    assert groups_of(_splits(tmp_path)) == {"x": "p1", "y": "p2"}
    pd.DataFrame({"sample_id": ["x"], "group": [None]}).to_csv(tmp_path / "splits.csv", index=False)
    assert groups_of(_splits(tmp_path)) is None


def test_scores_take_the_arguments_over_the_study_and_the_defaults() -> None:
    rows = [{"arm": arm, "repeat": 0, "fold": fold, "accuracy": 0.5 + 0.1 * fold, "n_train": 60, "n_val": 20}
            for arm in ("a", "b") for fold in (0, 1, 2)]
    scores = run_scores(pd.DataFrame(rows), {"baseline": "b", "rope": 0.02}, None, None, alpha=0.1)
    assert (scores.arms, scores.baseline, scores.alpha, scores.rope) == (["a", "b"], "b", 0.1, 0.02)
    assert (scores.folds, scores.repeats, scores.test_train_ratio) == (3, 1, 1 / 3)
