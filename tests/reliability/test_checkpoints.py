"""Checkpoint attacks and lost cells: a checkpoint from another fold, random bytes as weights,
a cell directory deleted while the study runs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness.errors import HarnessError
from harness.models.weights import safe_torch_load
from harness.run.runner import RunOptions, StudyRunner
from harness.study.loader import load_study

ONE_ARM = {"plain": {"backbone": "resnet20", "attention": "none"}}
METRICS = ["accuracy", "f1_macro", "loss", "epochs"]


def _runner(study: Path, out: Path, registry: Any, **options: Any) -> tuple[StudyRunner, list[str]]:
    messages: list[str] = []
    runner = StudyRunner(load_study(study), registry, RunOptions(out, quiet=True, report=None, **options))
    runner.log = messages.append  # type: ignore[method-assign]
    return runner, messages


def test_checkpoint_copied_from_another_fold_is_refused(write_study, tmp_path: Path, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 2, "checkpoints": "all"}}, arms=ONE_ARM)  # keep last.pt to copy
    reference = tmp_path / "reference"
    _runner(study, reference, builtin_registry)[0].run()
    cells = tmp_path / "run" / "cells" / "plain"
    shutil.copytree(reference / "cells" / "plain", cells)
    (cells / "r0-f1" / "result.json").unlink()  # as if killed before fold 1 was marked done ...
    shutil.copy(cells / "r0-f0" / "last.pt", cells / "r0-f1" / "last.pt")  # ... and fold 0's checkpoint put there
    runner, messages = _runner(study, tmp_path / "run", builtin_registry)
    runner.run()
    assert any("r0-f1/last.pt is corrupt (it belongs to cell 'plain/r0-f0/" in m and "refused" in m
               and "restarting this fold from scratch" in m for m in messages), messages
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "results.csv")[METRICS],
                                  pd.read_csv(reference / "results.csv")[METRICS])


def test_random_bytes_as_weights_are_called_corrupt_not_code(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))  # seeded: does not start like a pickle or a zip
    with pytest.raises(HarnessError, match=r"garbage\.pt: not a readable PyTorch weights file \(corrupt") as caught:
        safe_torch_load(garbage)
    assert "could run code" not in str(caught.value)
    zipped = tmp_path / "truncated.pt"
    torch.save({"w": torch.zeros(3)}, zipped)
    zipped.write_bytes(zipped.read_bytes()[:200])
    with pytest.raises(HarnessError, match="not a readable PyTorch weights file"):
        safe_torch_load(zipped)
    pickled = tmp_path / "object.pt"
    torch.save({"w": Path("x")}, pickled)  # a real object beyond tensors: still refused as possible code
    with pytest.raises(HarnessError, match="could run code"):
        safe_torch_load(pickled)


def test_cell_directory_deleted_mid_run_is_noticed(write_study, tmp_path: Path, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 1}}, arms=ONE_ARM)
    out = tmp_path / "run"

    def delete_the_first_cell(arm: Any, fold: Any, result: dict[str, Any]) -> None:
        if fold.fold == 1:
            shutil.rmtree(out / "cells" / "plain" / "r0-f0")

    runner, _ = _runner(study, out, builtin_registry, on_cell=delete_the_first_cell)
    with pytest.raises(HarnessError, match=r"r0-f0 was deleted while the study ran; rerun to train that cell again"):
        runner.run()
    assert len(pd.read_csv(out / "results.csv")) == 1
    _runner(study, out, builtin_registry)[0].run()  # the rerun trains it again
    assert len(pd.read_csv(out / "results.csv")) == 2
