"""A cell whose training failed is flagged in results.csv and in compare's output (issue 16)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli.main import main
from harness.stats.flags import baseline_rates, training_flag, training_flag_warnings


def test_baseline_rates_are_the_validation_no_information_rate() -> None:
    """The largest validation class's share: no constant prediction scores more there."""
    rates = baseline_rates(np.array([0, 1, 1, 2]), 3)
    assert rates == {"majority_rate": 0.5, "chance_rate": pytest.approx(1 / 3)}


@pytest.mark.parametrize("accuracies,best,flag", [
    ([0.5, 0.7, 0.8], 3, ""),
    ([0.5, 0.5, 0.5], 2, "never beat the majority-class rate (50.0 %; best 50.0 %)"),
    ([0.6, 0.55, 0.52], 1, "best epoch is the first of 3"),
    ([0.7], 1, ""),  # one epoch: its best epoch is trivially the first
])
def test_training_flag(accuracies: list[float], best: int, flag: str) -> None:
    history = [{"epoch": i + 1, "val_accuracy": a} for i, a in enumerate(accuracies)]
    got = training_flag(history, best, 0.5)
    assert (flag in got) if flag else got == ""


def test_a_collapsed_cell_is_flagged_in_results_and_compare(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """lr 1e-9: the weights barely move, so validation accuracy stays at what the init gives."""
    study = write_study({"training": {"epochs": 3, "optimizer": {"lr": 1.0e-9, "momentum": 0.0}},
                         "dataset": {"options": {"per_class": 10}}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert {"majority_rate", "chance_rate", "training_flag"} <= set(results.columns)
    assert (results.training_flag != "").all(), results[["arm", "fold", "accuracy", "best_epoch", "training_flag"]]
    assert main(["compare", str(out)]) == 0
    assert "training failed? " in capsys.readouterr().out


def test_no_flagged_cell_gives_no_warning_line_and_no_pandas_warning() -> None:
    """results.csv read back with no flagged cell has an all-NaN float column; the old str fill made pandas 3 warn
    (a Pandas4Warning on stderr at the end of every healthy run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert training_flag_warnings(pd.DataFrame({"arm": ["a", "b"], "repeat": 0, "fold": 0,
                                                    "training_flag": [np.nan, np.nan]})) == []
        flagged = pd.DataFrame({"arm": ["a", "b"], "repeat": 0, "fold": [0, 1], "training_flag": [np.nan, "loss diverged"]})
        assert training_flag_warnings(flagged) == ["b repeat 0 fold 1: training failed? loss diverged"]
