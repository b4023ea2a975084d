"""Optuna tuning: a real search on phantom data that prunes, resumes to the total, and feeds the report."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from harness.cli.main import main

pytestmark = pytest.mark.slow  # end-to-end runs: `-m "not slow"` skips them; CI runs them


def _tune_study(write_study, pruner: str = "median", metric: str = "loss"):  # type: ignore[no-untyped-def]
    return write_study({
        "cv": {"folds": 3},
        "tune": {
            "arms": ["plain"], "trials": 4, "metric": metric, "pruner": pruner, "sampler": "random",
            "space": {"training.optimizer.lr": {"low": 1.0e-3, "high": 0.1, "log": True},
                      "training.scheduler.step_size": {"low": 1, "high": 3},
                      "training.scheduler.gamma": {"choices": [0.1, 0.5]}},
            # two sensible trials first, then one whose loss explodes: the median pruner must stop it
            "enqueue": [{"training.optimizer.lr": 0.05, "training.scheduler.step_size": 1, "training.scheduler.gamma": 0.5},
                        {"training.optimizer.lr": 0.02, "training.scheduler.step_size": 2, "training.scheduler.gamma": 0.5},
                        {"training.optimizer.lr": 0.1, "training.scheduler.step_size": 1, "training.scheduler.gamma": 0.1}],
        },
    })


def test_search_prunes_and_resumes_to_the_total(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = _tune_study(write_study)
    data = study.read_text().replace("training.optimizer.lr: 0.1\n", "training.optimizer.lr: 1000.0\n")
    study.write_text(data)
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out), "--quiet"]) == 0
    storage = f"sqlite:///{out / 'tuning.db'}"
    trials = optuna.load_study(study_name="tiny:plain", storage=storage).trials
    states = [t.state.name for t in trials]
    assert len(trials) == 4 and states.count("PRUNED") >= 1, states
    assert trials[2].state.name == "PRUNED" and trials[2].params["training.optimizer.lr"] == 1000.0
    assert trials[0].state.name == "COMPLETE" and len(trials[0].user_attrs["fold_scores"]) == 3
    assert "plain: best loss" in capsys.readouterr().out
    assert main(["tune", str(study), "--out", str(out), "--quiet", "--trials", "6"]) == 0
    assert len(optuna.load_study(study_name="tiny:plain", storage=storage).trials) == 6  # total, not 6 more
    summary = json.loads((out / "tuning.json").read_text())
    info = summary["arms"]["plain"]
    assert info["counts"].get("PRUNED", 0) >= 1 and sum(info["counts"].values()) == 6
    assert {"history", "importances", "slice"} <= set(info["plots"])
    assert not list((out / "tuning").glob("*/*/cells/*/*/*.pt"))  # trial checkpoints are not kept


def test_wilcoxon_pruning_reports_per_fold(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = _tune_study(write_study, pruner="wilcoxon", metric="accuracy")
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out), "--quiet", "--trials", "3"]) == 0
    trials = optuna.load_study(study_name="tiny:plain", storage=f"sqlite:///{out / 'tuning.db'}").trials
    # one intermediate value per fold, keyed by the fold (so trials are paired fold by fold)
    assert all(sorted(t.intermediate_values) == [0, 1, 2] for t in trials if t.state.name == "COMPLETE")


def test_then_run_uses_best_values_and_reports_tuning(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = _tune_study(write_study)
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out), "--quiet", "--trials", "3", "--then-run"]) == 0
    best = json.loads((out / "tuning.json").read_text())["arms"]["plain"]["best_params"]
    resolved = (out / "study.yaml").read_text()
    assert f"lr: {best['training.optimizer.lr']}" in resolved
    assert "<h2>Tuning</h2>" in (out / "report.html").read_text()


def test_invalid_space_is_a_validation_error_with_line(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"tune": {"space": {"training.optimizer.lr": {"low": 0.1, "high": 0.01},
                                            "training.epoch": {"low": 1, "high": 3}}}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "tune.space.training.optimizer.lr: low (0.1) must be below high (0.01)" in err.replace("Value error, ", "")
    study = write_study({"tune": {"space": {"training.epoch": {"low": 1, "high": 3}}}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "tune.space.training.epoch: cannot search 'training.epoch'" in err and "did you mean 'epochs'" in err
    assert f"{study}:" in err
