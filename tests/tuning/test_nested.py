"""Nested CV tuning: the inner search never sees the outer fold it is scored on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main

pytestmark = pytest.mark.slow  # end-to-end runs: `-m "not slow"` skips them; CI runs them


def test_nested_cv_tunes_inside_outer_training_parts_only(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from harness.tuning.nested import inner_sample_ids

    study = write_study({"cv": {"folds": 2}, "tune": {
        "arms": ["plain", "se"], "trials": 2, "nested": True, "pruner": "none", "sampler": "random",
        "space": {"training.optimizer.lr": {"low": 1.0e-3, "high": 0.1, "log": True}}}})
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out), "--quiet"]) == 0
    outer = pd.read_csv(out / "splits.csv")
    for fold in (0, 1):
        outer_val = set(outer[(outer.fold == fold) & (outer.role == "val")].sample_id)
        for trial in (out / "nested" / "plain" / f"outer-r0f{fold}").glob("trial-*"):
            seen = inner_sample_ids(trial)
            assert seen and not seen & outer_val  # the tuning never saw the outer fold it is scored on
    results = pd.read_csv(out / "results.csv")
    assert sorted(zip(results.arm, results.fold, strict=True)) == [("plain", 0), ("plain", 1), ("se", 0), ("se", 1)]
    assert results.tuned_params.str.contains("training.optimizer.lr").all()
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["protocol"].startswith("nested CV")
    assert len(summary["arms"]["plain"]["outer"]) == 2
    assert (out / "stats.json").exists()
    assert "nested CV" in (out / "report.html").read_text()
