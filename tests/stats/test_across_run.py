"""A multi-dataset run's scores per dataset (a failed fold is not averaged away) and its across comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.errors import HarnessError
from harness.stats.across_run import across_run, dataset_scores, is_multi_run


def _multi_run(root: Path, scores: dict[str, dict[str, list[float]]]) -> Path:
    """RUN/study.yaml listing the datasets, and RUN/datasets/<id>/results.csv (one row per fold)."""
    root.mkdir(parents=True, exist_ok=True)
    study = {"name": "m", "seed": 0, "datasets": [{"id": d} for d in scores], "compare": {"baseline": "plain"}}
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    for dataset, arms in scores.items():
        (root / "datasets" / dataset).mkdir(parents=True)
        rows = [{"arm": arm, "fold": fold, "accuracy": value} for arm, values in arms.items()
                for fold, value in enumerate(values)]
        pd.DataFrame(rows).to_csv(root / "datasets" / dataset / "results.csv", index=False)
    return root


def test_each_dataset_gives_each_arm_its_mean_and_a_failed_fold_gives_nan(tmp_path: Path) -> None:
    run = _multi_run(tmp_path / "run", {"d1": {"plain": [0.6, 0.8], "se": [0.7, 0.9]},
                                        "d2": {"plain": [0.5, float("nan")], "se": [0.6, 0.6]}})
    assert is_multi_run(run) and not is_multi_run(tmp_path)
    table = dataset_scores(run, "accuracy")
    assert table.loc["d1", "plain"] == pytest.approx(0.7) and table.loc["d1", "se"] == pytest.approx(0.8)
    assert pd.isna(table.loc["d2", "plain"]) and table.loc["d2", "se"] == pytest.approx(0.6)
    with pytest.raises(HarnessError, match="dataset 'd1': no metric 'f1_macro'"):
        dataset_scores(run, "f1_macro")
    with pytest.raises(HarnessError, match="baseline 'none' has no results"):
        across_run(run, baseline="none")


def test_an_unfinished_dataset_says_to_run_again(tmp_path: Path) -> None:
    run = _multi_run(tmp_path / "run", {"d1": {"plain": [0.6, 0.8]}})
    (run / "datasets" / "d1" / "results.csv").unlink()
    with pytest.raises(HarnessError, match="dataset 'd1' has no results"):
        dataset_scores(run, "accuracy")
