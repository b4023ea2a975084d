"""Faults: Ctrl-C, SIGKILL (see test_runner), corrupt checkpoints, divergence, disk full. Nothing lost."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.atomic import atomic_write_text
from harness.cli.main import main
from harness.errors import HarnessError

METRICS = ["accuracy", "f1_macro", "loss"]


def _run(study: Path, out: Path, *extra: str) -> int:
    return main(["run", str(study), "--out", str(out), "--quiet", "--no-report", *extra])


def _wait_for(path: Path, process: subprocess.Popen, limit: float = 120) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before the fault could be injected"


def test_ctrl_c_checkpoints_exits_nonzero_and_rerun_resumes(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 3}, "dataset": {"augment": "standard"}})  # mid-epoch augment draws resume
    reference = tmp_path / "reference"
    assert _run(study, reference) == 0
    out = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(study), "--out", str(out),
                                "--quiet", "--no-report"], stderr=subprocess.PIPE, text=True)
    _wait_for(out / "cells" / "plain" / "r0-f0" / "last.pt", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "checkpoint saved in" in err and "rerun the same command to resume" in err
    assert "Traceback" not in err
    assert _run(study, out) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[METRICS], pd.read_csv(reference / "results.csv")[METRICS])


def test_truncated_checkpoint_restarts_the_fold_to_the_same_numbers(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 2, "checkpoints": "all"}})  # keep last.pt to damage
    out = tmp_path / "run"
    assert _run(study, out) == 0
    expected = pd.read_csv(out / "results.csv")
    cell = out / "cells" / "se" / "r0-f1"
    (cell / "result.json").unlink()  # as if the run died before finishing this fold
    (cell / "last.pt").write_bytes((cell / "last.pt").read_bytes()[:500])  # truncated on disk
    assert _run(study, out) == 0
    results = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(results[METRICS], expected[METRICS])  # restarted from scratch: same numbers


def test_corrupt_checkpoint_message(write_study, tmp_path: Path, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    from harness.study.loader import load_study

    out = tmp_path / "run"
    study_path = write_study({"training": {"epochs": 1}})
    assert _run(study_path, out) == 0
    cell = out / "cells" / "plain" / "r0-f0"
    (cell / "result.json").unlink()
    (cell / "last.pt").write_bytes(b"not a checkpoint")
    from harness.run.runner import RunOptions, StudyRunner

    messages: list[str] = []
    runner = StudyRunner(load_study(study_path), builtin_registry, RunOptions(out, quiet=True, report=None))
    runner.log = messages.append  # type: ignore[method-assign]
    runner.run()
    assert any("last.pt is corrupt" in m and "restarting this fold" in m for m in messages)
    assert (cell / "result.json").exists()


def test_diverged_fold_is_marked_and_the_study_goes_on(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 3}, "arms": {"se": {"training": {"optimizer": {"lr": 1.0e12}}}}})
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="diverged"):
        assert main(["run", str(study), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert (results[results.arm == "plain"].status == "ok").all()
    diverged = results[results.arm == "se"]
    assert (diverged.status == "diverged").all() and diverged.note.str.contains("at epoch 1").all()
    # no epoch before the divergence: NaN metrics with the reason, not scores of NaN probabilities
    assert diverged.accuracy.isna().all() and diverged.loss.isna().all()
    assert diverged.note.str.contains("metrics are NaN: the model's probabilities are not finite").all()
    assert "diverged" in (out / "report.html").read_text()


def test_disk_full_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.csv"
    atomic_write_text(target, "arm,accuracy\nplain,0.9\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(HarnessError, match="disk full while writing .*results.csv; the previous version is intact"):
        atomic_write_text(target, "arm,accuracy\nplain,0.1\n")
    assert target.read_text() == "arm,accuracy\nplain,0.9\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temp files left behind


def test_cuda_out_of_memory_fails_the_fold_names_a_batch_size_and_rerun_retries(
        write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """The OOM is injected (no GPU in CI); everything after it is the runner's real handling."""
    import torch

    from harness.run.trainer import FoldTrainer

    study = write_study({"training": {"epochs": 2}})
    reference = tmp_path / "reference"
    assert _run(study, reference) == 0
    real_step = FoldTrainer.train_step

    def step_that_runs_out_of_memory(self: FoldTrainer, *args: object) -> None:
        if any(type(m).__name__ == "SqueezeExcite" for m in self.model.modules()):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real_step(self, *args)  # type: ignore[arg-type]

    out = tmp_path / "run"
    monkeypatch.setattr(FoldTrainer, "train_step", step_that_runs_out_of_memory)
    assert _run(study, out) == 2
    err = capsys.readouterr().err
    assert "se r0 f0: CUDA out of memory at batch size 8; try --set training.batch_size=4" in err
    assert "Traceback" not in err
    partial = pd.read_csv(out / "results.csv")
    assert set(partial.arm) == {"plain"}  # the arm that fitted is kept
    monkeypatch.setattr(FoldTrainer, "train_step", real_step)
    assert _run(study, out) == 0  # the rerun retries only the failed folds
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[METRICS], pd.read_csv(reference / "results.csv")[METRICS])


def test_fold_images_that_do_not_fit_on_the_gpu_are_not_blamed_on_the_batch(
        write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """OOM injected while the fold's images are placed on the device (no GPU in CI)."""
    import torch

    import harness.run.inputs

    def placement_out_of_memory(**fields: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(harness.run.inputs, "FoldInputs", placement_out_of_memory)
    assert _run(write_study(), tmp_path / "run") == 2
    err = capsys.readouterr().err
    # 24 phantom images of 32 x 32, one channel: every image is in the fold's train, val or test part
    assert "plain r0 f0: the fold's decoded images (24.0 KiB as uint8) do not fit in GPU memory" in err
    assert "a smaller batch will not help" in err
    assert "try --set training.batch_size" not in err and "Traceback" not in err
