"""Sample-level comparisons from predictions.csv: fold models averaged per sample, paired over samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.stats import _samples  # not its test_set_tests by name: pytest would collect it
from harness.stats._results import StatsError
from harness.stats._samples import averaged
from harness.stats.registry import resolve_metric


def _predictions(correct: dict[str, np.ndarray], folds: int = 2) -> pd.DataFrame:
    """Test-set predictions of each arm's fold models on the same samples (labels all 1)."""
    frames = [pd.DataFrame({"arm": arm, "repeat": 0, "fold": fold, "role": "test",
                            "sample_id": [f"t{i:02d}" for i in range(len(right))], "y_true": 1,
                            "p_0": np.where(right, 0.2, 0.8), "p_1": np.where(right, 0.8, 0.2)})
              for arm, right in correct.items() for fold in range(folds)]
    return pd.concat(frames, ignore_index=True)


def test_fold_models_are_averaged_per_sample() -> None:
    predictions = _predictions({"a": np.ones(4, bool)})
    predictions.loc[0, "p_1"] = 0.4  # one fold model less sure about t00
    mean = averaged(predictions, "a", "test")
    assert list(mean.index) == ["t00", "t01", "t02", "t03"] and mean.loc["t00", "p_1"] == pytest.approx(0.6)


def test_an_arm_right_where_the_baseline_is_wrong_is_found_and_unpaired_samples_are_refused() -> None:
    right = np.ones(30, bool)
    half = np.arange(30) % 2 == 0
    tests = _samples.test_set_tests(_predictions({"se": right, "plain": half}), None, "se", "plain",
                           resolve_metric("accuracy", allow_test=True), rope=0.01, alpha=0.05)
    assert tests["test_set"]["pvalue"] < 0.001 and tests["samples"]["n"] == 30
    assert tests["samples"]["models_averaged"] == 2 and tests["bootstrap"]["estimate"] == pytest.approx(0.5)
    assert tests["bayes"]["p_a_better"] == 1.0
    shifted = _predictions({"se": right, "plain": half})
    shifted.loc[shifted["arm"] == "plain", "sample_id"] += "x"
    with pytest.raises(StatsError, match="scored on different test samples"):
        _samples.test_set_tests(shifted, None, "se", "plain", resolve_metric("accuracy", allow_test=True), rope=0.01, alpha=0.05)
