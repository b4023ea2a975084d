"""The tuning protocols' guards and the tuned values as --set lines (no trial runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.study.loader import load_study
from harness.tuning.protocols import best_overrides, tune_study
from harness.tuning.search import TuneOptions


def test_best_values_become_per_arm_training_lines_and_study_wide_others() -> None:
    summary = {"arms": {"se": {"best_params": {"training.optimizer.lr": 0.01, "dataset.image_size": 48}},
                        "plain": {"best_params": {}}}}
    assert best_overrides(summary) == ["arms.se.training.optimizer.lr=0.01", "dataset.image_size=48"]


def test_a_study_without_tune_or_with_no_trials_is_refused_before_any_trial(write_study, builtin_registry,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no 'tune:' section"):
        tune_study(load_study(write_study()), builtin_registry, TuneOptions(tmp_path / "run"))
    tuned = load_study(write_study({"tune": {"trials": 2, "space": {"training.optimizer.lr": {"low": 0.001, "high": 0.1}}}}))
    with pytest.raises(HarnessError, match="--trials must be at least 1 \\(got 0\\)"):
        tune_study(tuned, builtin_registry, TuneOptions(tmp_path / "run", trials=0))
    assert not (tmp_path / "run").exists()
