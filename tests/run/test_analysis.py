"""A run directory's statistics: the frames read through rundir, the study's compare block, then the defaults;
several datasets (a failed fold is not averaged away) and several settings (a verdict needs Holm across them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.errors import HarnessError
from harness.run.analysis import across_run, compare_run, is_multi_run, load_run
from harness.stats.across import dataset_scores
from harness.stats.settings import analyse_settings


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
    table = dataset_scores({d: pd.read_csv(run / "datasets" / d / "results.csv") for d in ("d1", "d2")}, "accuracy")
    assert table.loc["d1", "plain"] == pytest.approx(0.7) and table.loc["d1", "se"] == pytest.approx(0.8)
    assert pd.isna(table.loc["d2", "plain"]) and table.loc["d2", "se"] == pytest.approx(0.6)
    with pytest.raises(HarnessError, match="dataset 'd1': no metric 'f1_macro'"):
        across_run(run, metric="f1_macro")
    with pytest.raises(HarnessError, match="baseline 'none' has no results"):
        across_run(run, baseline="none")


def test_an_unfinished_dataset_says_to_run_again(tmp_path: Path) -> None:
    run = _multi_run(tmp_path / "run", {"d1": {"plain": [0.6, 0.8]}})
    (run / "datasets" / "d1" / "results.csv").unlink()
    with pytest.raises(HarnessError, match="dataset 'd1' has no results"):
        across_run(run)


def _setting_run(root: Path, differences: np.ndarray, folds: int) -> Path:
    """A run directory compare reads: arms 'plain' and 'se' = plain + differences, (repeat, fold) cells."""
    root.mkdir(parents=True)
    plain = 0.7 + 0.01 * np.sin(np.arange(len(differences)))
    rows = [{"arm": arm, "repeat": i // folds, "fold": i % folds, "status": "ok", "n_train": 80, "n_val": 20,
             "accuracy": v + (d if arm == "se" else 0.0)}
            for arm in ("plain", "se") for i, (v, d) in enumerate(zip(plain, differences, strict=True))]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "s", "seed": 0, "compare": {"baseline": "plain", "rope": 0.0}}))
    return root


def test_a_setting_verdict_needs_holm_across_settings(tmp_path: Path) -> None:
    """Three settings: se 'better' at one with corrected-t p ~0.03 (P(better) > 0.975 there) and nothing elsewhere.
    Holm over the three settings gives p ~0.09: the across-settings verdict and sentence say inconclusive (a false
    better at some setting is otherwise up to three times as likely as at one)."""
    z = np.random.default_rng(7).standard_normal(10)
    z = (z - z.mean()) / z.std(ddof=1)
    shape = {"lr-0.1": 0.02 * (z + 2.6 * np.sqrt(0.35)), "lr-0.01": 0.02 * z, "lr-0.001": 0.02 * z[::-1]}
    comparisons, tables = {}, {}
    for sid, d in shape.items():
        run = _setting_run(tmp_path / sid, d, folds=5)
        comparisons[sid], tables[sid] = compare_run(run), load_run(run).table()
    assert comparisons["lr-0.1"].arms[0].verdict == "better"  # at this setting alone
    p = comparisons["lr-0.1"].arms[0].tests["corrected_t"]["pvalue"]
    assert 0.05 / 3 < p < 0.05
    analysis = analyse_settings(comparisons, tables, axis="lr", span=1.0, bounds=(0.0, 1.0))
    item = analysis["arms"][0]["per_setting"]["lr-0.1"]
    assert item["verdict"] == "inconclusive" and item["holm_p"] == pytest.approx(min(1.0, 3 * p))
    assert "Holm" in item["verdict_note"] and "Holm" in item["verdict_text"]
    assert "inconclusive after Holm across settings" in analysis["arms"][0]["sentence"]
