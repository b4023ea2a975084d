"""harness compare and harness plan on a run directory, and the verdict lines a run ends with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli.main import main
from harness.cli.stats import verdict_lines


def _scores_only_run(run: Path, arms: dict[str, float]) -> Path:
    """results.csv of 5 folds x 2 repeats per arm (arm -> mean accuracy, with fold noise), no study.yaml."""
    rng = np.random.default_rng(0)
    cells = [(arm, r, f) for arm in arms for r in range(2) for f in range(5)]
    pd.DataFrame({"arm": [c[0] for c in cells], "repeat": [c[1] for c in cells], "fold": [c[2] for c in cells],
                  "status": "ok", "n_train": 400, "n_val": 100,
                  "accuracy": [arms[c[0]] + rng.normal(0, 0.01) for c in cells]}).to_csv(run / "results.csv", index=False)
    return run


def test_compare_prints_json_and_a_run_ends_with_a_verdict_per_arm(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict_lines(tmp_path) == ""  # no results yet
    run = _scores_only_run(tmp_path, {"plain": 0.70, "se": 0.80})
    assert "se" in verdict_lines(run) and "better" in verdict_lines(run)
    assert main(["compare", str(run), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["baseline"] == "plain" and not (run / "stats.json").exists()  # written only with --write
    (tmp_path / "one").mkdir()
    assert verdict_lines(_scores_only_run(tmp_path / "one", {"plain": 0.7})) == ""  # one arm: nothing to compare


def test_plan_needs_a_positive_effect_for_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _scores_only_run(tmp_path, {"plain": 0.70, "se": 0.71})
    assert main(["plan", str(run)]) == 2
    assert "give --effect" in capsys.readouterr().err
    assert main(["plan", str(run), "--effect", "-0.01"]) == 2
    assert "--effect must be a positive difference" in capsys.readouterr().err
    assert main(["plan", str(run), "--effect", "0.01"]) == 0
    assert "se vs plain" in capsys.readouterr().out


def test_plan_on_a_one_arm_run_says_why_it_cannot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code printed nothing and exited 0."""
    run = _scores_only_run(tmp_path, {"plain": 0.70})
    assert main(["plan", str(run), "--effect", "0.05"]) == 2
    assert "the run has one arm (plain)" in capsys.readouterr().err


def test_compare_on_a_one_arm_run_says_there_is_no_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code printed the header ("each arm vs plain") and the verdict rule, with no arm and no word why."""
    run = _scores_only_run(tmp_path, {"plain": 0.70})
    assert main(["compare", str(run)]) == 0
    assert "one arm (plain): no comparison" in capsys.readouterr().out
