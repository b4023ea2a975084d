from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main

METRIC_COLUMNS = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted",
                  "recall_weighted", "f1_weighted", "loss"]


def _run(study: Path, out: Path, *extra: str) -> None:
    assert main(["run", str(study), "--out", str(out), "--quiet", *extra]) == 0


def test_study_writes_every_output(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    _run(write_study(), out)
    results = pd.read_csv(out / "results.csv")
    assert sorted(zip(results.arm, results.fold, strict=True)) == [("plain", 0), ("plain", 1), ("se", 0), ("se", 1)]
    assert set(METRIC_COLUMNS + ["params", "flops", "epochs", "seconds"]) <= set(results.columns)
    assert (results.params[results.arm == "se"].iloc[0] > results.params[results.arm == "plain"].iloc[0])
    predictions = pd.read_csv(out / "predictions.csv")
    assert {"arm", "repeat", "fold", "sample_id", "y_true", "y_pred", "p_0", "p_1"} <= set(predictions.columns)
    assert len(predictions) == 2 * 24  # every sample predicted once per arm (out of fold)
    history = pd.read_csv(out / "cells" / "se" / "r0-f1" / "history.csv")
    assert list(history.epoch) == [1, 2] and history.lr.tolist() == [0.05, 0.025]
    splits = pd.read_csv(out / "splits.csv")
    assert set(splits.role) == {"train", "val"}
    for name in ("study.yaml", "report.html", "arms.json", "run.json", "classes.json", "stats.json"):
        assert (out / name).exists(), name
    report = (out / "report.html").read_text()
    assert "Significance (accuracy, each arm vs plain)" in report and "corrected resampled t" in report
    for cell in ("r0-f0", "r0-f1"):
        assert (out / "cells" / "se" / cell / "best.pt").exists()
        assert not (out / "cells" / "se" / cell / "last.pt").exists()  # finished: the scored weights only


def test_same_seed_same_numbers_and_same_folds_for_every_arm(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study()
    _run(study, tmp_path / "a")
    _run(study, tmp_path / "b")
    a, b = (pd.read_csv(tmp_path / r / "results.csv") for r in "ab")
    pd.testing.assert_frame_equal(a[METRIC_COLUMNS], b[METRIC_COLUMNS])
    pa, pb = (pd.read_csv(tmp_path / r / "predictions.csv") for r in "ab")
    pd.testing.assert_frame_equal(pa, pb)
    # every arm saw exactly the same validation samples in each fold
    plain = pa[pa.arm == "plain"][["fold", "sample_id"]].reset_index(drop=True)
    se = pa[pa.arm == "se"][["fold", "sample_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(plain, se)


def test_patient_grouped_folds_never_straddle(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    _run(write_study({"cv": {"group": "patient"}, "training": {"epochs": 1}}), out, "--no-report")
    splits = pd.read_csv(out / "splits.csv")
    for (repeat, fold), part in splits.groupby(["repeat", "fold"]):
        train = set(part.group[part.role == "train"])
        val = set(part.group[part.role == "val"])
        assert train and val and not train & val, (repeat, fold)


def test_rerun_skips_finished_cells(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    study = write_study({"training": {"epochs": 1}})
    _run(study, out, "--no-report")
    stamp = (out / "cells" / "plain" / "r0-f0" / "result.json").stat().st_mtime_ns
    _run(study, out, "--no-report")
    assert (out / "cells" / "plain" / "r0-f0" / "result.json").stat().st_mtime_ns == stamp
    # a changed setting retrains instead of reusing stale numbers
    _run(study, out, "--no-report", "--set", "training.optimizer.lr=0.01")
    assert (out / "cells" / "plain" / "r0-f0" / "result.json").stat().st_mtime_ns != stamp


def test_killed_mid_fold_resumes_to_identical_results(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # augmentation and best-epoch restore on the inner split declared, so their state is resumed too
    study = write_study({"training": {"epochs": 4, "selection": {"rule": "best", "inner_fraction": 0.25}},
                         "dataset": {"augment": "standard"}})
    reference = tmp_path / "reference"
    _run(study, reference, "--no-report")
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "harness.cli", "run", str(study), "--out", str(out), "--quiet", "--no-report"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = out / "cells" / "plain" / "r0-f1" / "last.pt"
    deadline = time.monotonic() + 120
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "cells" / "se").exists() or not (out / "cells" / "se" / "r0-f1" / "result.json").exists()
    _run(study, out, "--no-report")
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4 and not results.duplicated(["arm", "repeat", "fold"]).any()
    expected = pd.read_csv(reference / "results.csv")
    pd.testing.assert_frame_equal(results[METRIC_COLUMNS], expected[METRIC_COLUMNS])
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), pd.read_csv(reference / "predictions.csv"))


def test_second_process_on_same_run_dir_is_refused(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from harness.run.runner import run_lock

    out = tmp_path / "run"
    with run_lock(out):
        assert main(["run", str(write_study()), "--out", str(out), "--quiet"]) == 2
    assert "in use by another harness process" in capsys.readouterr().err
